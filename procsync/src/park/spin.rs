//! Bounded spinning before a sleep: the waiter side of a cheap hand-off.
//!
//! A contended mutex held for a short critical section is released a few hundred
//! nanoseconds later; sleeping in the kernel and being woken costs two context switches
//! and tens of microseconds, during which the releasing process reacquires, finds the
//! mutex handed over, and sleeps in turn (a convoy: every acquisition a wake-up). So a
//! waiter first spins a little: on the object's state before it queues (anyone may take
//! a free object that nobody queues for), then on its own claim word once it is queued
//! (a hand-off to a waiter that is still spinning costs the signaller no `FUTEX_WAKE`,
//! see [`super::block::ring`]).
//!
//! The budget is parking_lot's shape, longer: exponentially growing busy loops (1 to 512
//! `spin_loop`s, some tens of microseconds in all: a wake-up on a virtual machine costs
//! about that much, and a shorter spin gave up just before the hand-off came), then a
//! few `sched_yield`s, then sleep. The yields are the back-off when the CPUs are
//! oversubscribed: they hand the processor to whoever holds what we want (perhaps the
//! owner itself, preempted). On a single CPU there is nobody to wait for while we spin,
//! so we only yield. It must not know objects or blocks: callers say what to test.

use std::sync::OnceLock;

use crate::sys::thread;

/// Busy-loop rounds: round k spins 2^k times (`spin_loop`), k < BUSY_ROUNDS.
const BUSY_ROUNDS: u32 = 10;
/// Then this many `sched_yield`s.
const YIELD_ROUNDS: u32 = 8;

fn multi_cpu() -> bool {
    static MULTI: OnceLock<bool> = OnceLock::new();
    *MULTI.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// One waiter's spin budget.
pub(crate) struct Spin {
    round: u32,
}

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin {
            round: if multi_cpu() { 0 } else { BUSY_ROUNDS },
        }
    }

    /// Spends one round of the budget; `false` once it is spent (time to sleep).
    pub(crate) fn once(&mut self) -> bool {
        if self.round >= BUSY_ROUNDS + YIELD_ROUNDS {
            return false;
        }
        if self.round < BUSY_ROUNDS {
            for _ in 0..(1u32 << self.round) {
                std::hint::spin_loop();
            }
        } else {
            thread::yield_now();
        }
        self.round += 1;
        true
    }

    /// Spins until `done()` holds (returns `true`) or the budget is spent (`false`).
    pub(crate) fn until(mut self, mut done: impl FnMut() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            if !self.once() {
                return false;
            }
        }
    }
}
