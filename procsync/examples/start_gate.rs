//! A start gate: N worker processes get ready, then all start at once when a
//! manual-reset event is set.
//!
//! Run it with `cargo run -p procsync --example start_gate`. The parent creates the gate
//! (not set), starts the workers (this program, re-executed with `worker`), waits until
//! all of them are blocked on the gate (`Handle::waiters` counts the waiters in every
//! process), then sets it once: a manual-reset event releases every waiter and stays set.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use procsync::{Event, WaitOutcome};

const WORKERS: usize = 4;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1], &args[2]),
        _ => parent(),
    }
}

fn gate_name(id: &str) -> String {
    format!("Local\\procsync-example-gate-{id}")
}

fn parent() -> Result<ExitCode> {
    let id = std::process::id().to_string();
    let gate = Event::builder()
        .manual_reset()
        .name(&gate_name(&id))
        .create()?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..WORKERS {
        children.push(
            Command::new(&exe)
                .args(["worker", &id, &i.to_string()])
                .spawn()?,
        );
    }
    // Wait until every worker waits on the gate (or one of them already died).
    let give_up = Instant::now() + Duration::from_secs(60);
    while gate.waiters()? < WORKERS {
        for c in &mut children {
            if let Some(status) = c.try_wait()? {
                return Err(format!("a worker exited before the gate opened: {status}").into());
            }
        }
        if Instant::now() > give_up {
            return Err("the workers did not all reach the gate within a minute".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("parent: all {WORKERS} workers wait at the gate; opening it");
    gate.set()?;
    let mut ok = 0;
    for mut c in children {
        ok += usize::from(c.wait()?.success());
    }
    if ok != WORKERS {
        eprintln!("start gate: {} of {WORKERS} workers failed", WORKERS - ok);
        return Ok(ExitCode::FAILURE);
    }
    println!("start gate: {WORKERS} workers started together");
    Ok(ExitCode::SUCCESS)
}

fn worker(id: &str, index: &str) -> Result<ExitCode> {
    let gate = Event::open(&gate_name(id))?;
    // …get ready (load data, open files)…, then wait for the signal to start.
    match gate.wait(Some(Duration::from_secs(60)))? {
        WaitOutcome::Signaled(_) => {
            println!("worker {index}: through the gate");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("worker {index}: the gate did not open: {other:?}").into()),
    }
}
