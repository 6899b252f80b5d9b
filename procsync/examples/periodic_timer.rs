//! A periodic waitable timer: due after 10 ms, then every 10 ms, waited on 5 times and
//! then cancelled; and the same with a completion callback instead of waits.
//!
//! Run it with `cargo run -p procsync --example periodic_timer`. An auto-reset
//! (synchronization) timer releases one wait per expiration; periods that pass while
//! nobody waits are not queued up (a timer is signaled or not, as on Windows).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use procsync::{Timer, WaitOutcome};

const TICKS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let period = Duration::from_millis(10);
    let timer = Timer::builder().create()?; // unnamed, auto-reset, disarmed
    let start = Instant::now();
    timer.set(period, Some(period))?;
    for i in 1..=TICKS {
        match timer.wait(Some(Duration::from_secs(10)))? {
            WaitOutcome::Signaled(_) => println!("tick {i} at {:?}", start.elapsed()),
            other => return Err(format!("tick {i}: {other:?}").into()),
        }
    }
    timer.cancel()?;

    // The completion-routine form: the closure runs on a thread of the library.
    let (tx, rx) = mpsc::channel();
    timer.set_with_callback(period, Some(period), move || {
        let _ = tx.send(Instant::now());
    })?;
    for i in 1..=TICKS {
        let at = rx.recv_timeout(Duration::from_secs(10))?;
        println!("callback {i} at {:?}", at - start);
    }
    timer.cancel()?;
    println!("periodic timer: {TICKS} ticks waited, {TICKS} callbacks, cancelled");
    Ok(())
}
