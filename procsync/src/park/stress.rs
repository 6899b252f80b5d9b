//! A stress test of the real wait block (a System V segment, the kernel's futex) with
//! real threads: what `model` checks on loom's atomics, here on the hardware's memory
//! model and the kernel's futex, over many rounds. One waiter arms, queues an entry
//! (a std mutex stands for the object lock), spins or announces and sleeps, and
//! cancels; one signaller claims the entry and rings. Half the rounds have a deadline
//! of a few microseconds, so that claim and cancel race. Test-only; it asserts outcomes,
//! never timings (the 60 s deadline is a watchdog against a hang).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Claim, Segment, WaitBlock, granted, ring, try_claim};
use crate::sys::futex::Woke;
use crate::sys::time::Deadline;

/// Rounds of the stress test.
const ROUNDS: u32 = 2000;

/// The "object": one queued entry at most, and whether the waiter is finished.
#[derive(Default)]
struct Queue {
    entry: Option<(Arc<Segment>, u32, u32)>,
    done: bool,
}

/// One round of the waiter (the steps of `wait::any::block`); `true` if granted.
fn wait_round(q: &(Mutex<Queue>, Condvar), round: u32) -> bool {
    let wb = WaitBlock::arm(false, &[], &[]).expect("a private wait block");
    {
        let mut g = q.0.lock().unwrap();
        g.entry = Some((wb.seg.clone(), wb.index, wb.generation));
        q.1.notify_one();
    }
    let short = round % 2 == 1;
    let deadline = if short {
        Deadline::At(Instant::now() + Duration::from_micros(u64::from(round % 7) * 5))
    } else {
        // Not a timing assertion: a watchdog, so that a lost wake-up fails the test
        // instead of hanging it.
        Deadline::At(Instant::now() + Duration::from_secs(60))
    };
    let spun = round.is_multiple_of(4) && wb.spin();
    if !spun {
        loop {
            let bell = wb.bell();
            if wb.claim() != Claim::Waiting {
                break;
            }
            if wb.sleep(bell, &[], deadline, None) == Woke::TimedOut {
                assert!(short, "lost wake-up: slept 60 s with a signaller at hand");
                break;
            }
        }
    }
    let granted_to_us = match wb.cancel() {
        Ok(()) => false,
        Err(c) => {
            assert_eq!(c, Claim::Signaled(0));
            true
        }
    };
    // Leave no entry behind (`wait::any::block`, timed out).
    let mut g = q.0.lock().unwrap();
    if g.entry
        .as_ref()
        .is_some_and(|(_, _, generation)| *generation == wb.generation)
    {
        g.entry = None;
    }
    granted_to_us
}

#[test]
fn stress_claim_ring_cancel_on_real_blocks_and_futex() {
    let q = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
    let signaller = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut handed = 0u32;
            let mut g = q.0.lock().unwrap();
            loop {
                if let Some((seg, index, generation)) = g.entry.take() {
                    let b = seg.block(index).expect("index in range");
                    if try_claim(b, generation, granted(0, false)) {
                        handed += 1;
                        ring(&seg, index);
                    }
                } else if g.done {
                    return handed;
                } else {
                    g = q.1.wait(g).unwrap();
                }
            }
        })
    };
    let mut got = 0u32;
    for round in 0..ROUNDS {
        got += u32::from(wait_round(&q, round));
    }
    q.0.lock().unwrap().done = true;
    q.1.notify_one();
    let handed = signaller.join().unwrap();
    assert_eq!(
        got, handed,
        "grants seen by the waiter != claims won by the signaller"
    );
    // Every round without a short deadline must have been granted.
    assert!(got >= ROUNDS / 2, "{got} grants in {ROUNDS} rounds");
}
