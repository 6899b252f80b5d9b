//! Model checks of the wait protocol with loom: every interleaving (within a preemption
//! bound) of a few threads standing in for processes, running `park::word`'s functions —
//! the very code that runs on a block in shared memory — on loom's atomics.
//!
//! What stands for what (docs/ARCHITECTURE.md, "The protocol, model-checked"):
//! - a wait block: a [`Block`] of two loom atomics, claim (u64) and doorbell (u32);
//! - the kernel's futex on the doorbell: [`Futex`], a loom mutex + condvar, whose wait
//!   compares the word and sleeps atomically with respect to a wake, as the kernel's
//!   hash-bucket lock makes it; a wake with nobody asleep wakes nobody;
//! - a timeout: a timer thread that fires (wakes the futex with "expired") at any point
//!   (loom's condvar has no timed wait), or a deadline already past when the waiter
//!   sleeps ([`Deadline::Passed`]);
//! - an object and its lock: a loom mutex over a unit count and a queue of entries
//!   `{waiter, generation}`; wait-all sets lock their objects in one global order.
//!
//! The waiter and signaller routines follow `wait::any::block` / `wait::all::attempt`
//! (waiter) and `obj::queue::hand_off` / `complete_all` (signaller), reduced to the
//! steps that touch the words: single and wait-any waits in `any`, wait-all in `all`;
//! this file holds what both use (the futex, the block, the waiter's sleep loop). A lost wake-up is a waiter asleep when every thread
//! that could ring it has ended ("lost wake-up"; loom's own deadlock check backs it);
//! the other properties are assertions.
//!
//! Bounded by default (`LOOM_PREEMPTIONS_DEFAULT` preemptions: about 5 s in a release
//! build); `PROCSYNC_LOOM_LONG=1` explores `LOOM_PREEMPTIONS_LONG` (a few minutes on
//! two cores), and loom's own `LOOM_MAX_PREEMPTIONS` sets any other bound.
//!
//! Test-only (loom is a dev-dependency). It must not grow its own copy of the word
//! protocol: every transition of the two words goes through `word`, so that what is
//! checked is what ships.

mod all;
mod any;

use std::sync::atomic::Ordering;

use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Condvar, Mutex};

use super::word::{self, Claim, Word32, Word64};
use crate::shm::layout::{CLAIM_IDLE, claim as pack};

impl Word64 for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

impl Word32 for AtomicU32 {
    fn fetch_or(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_or(self, value, order)
    }
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
}

/// Preemptions explored by default: enough for every race below to be hit (each is
/// one or two preemptions deep), small enough for seconds.
const LOOM_PREEMPTIONS_DEFAULT: usize = 3;
/// Preemptions explored with `PROCSYNC_LOOM_LONG=1` (4: ~30 s, 5: 1.5 to 4 min; about
/// eightfold per step).
const LOOM_PREEMPTIONS_LONG: usize = 5;

/// Runs `f` under loom, within a preemption bound (module doc).
fn check(f: impl Fn() + Send + Sync + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        let long = std::env::var_os("PROCSYNC_LOOM_LONG").is_some_and(|v| v == "1");
        b.preemption_bound = Some(if long {
            LOOM_PREEMPTIONS_LONG
        } else {
            LOOM_PREEMPTIONS_DEFAULT
        });
    }
    b.check(f);
}

/// How a sleep ends besides a wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Deadline {
    /// No deadline (INFINITE).
    Never,
    /// The deadline has passed by the time the waiter would sleep: the futex wait
    /// times out at once.
    Passed,
    /// A timer thread fires [`Futex::expire`] at some point.
    Timer,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Woke {
    Woken,
    Again,
    TimedOut,
    /// Asleep with nobody left to wake it ([`Futex::close`]): a lost wake-up.
    Orphaned,
}

#[derive(Default)]
struct FutexState {
    sleepers: usize,
    /// Wakes given to sleepers, not yet taken.
    tokens: usize,
    expired: bool,
    /// Threads that may still wake this futex; none left: a sleeper would sleep for
    /// ever, and is told so ([`Woke::Orphaned`]) rather than left to a loom deadlock,
    /// which aborts the test binary instead of failing one test.
    wakers: usize,
}

/// The kernel's futex, for one word (see the module doc).
struct Futex {
    state: Mutex<FutexState>,
    cv: Condvar,
}

impl Futex {
    /// A futex that `wakers` threads may wake (each says [`Futex::done`] when it ends).
    fn new(wakers: usize) -> Futex {
        Futex {
            state: Mutex::new(FutexState {
                wakers,
                ..FutexState::default()
            }),
            cv: Condvar::new(),
        }
    }

    /// `FUTEX_WAIT(word, expected)`.
    fn wait(&self, word: &AtomicU32, expected: u32, deadline: Deadline) -> Woke {
        let mut s = self.state.lock().unwrap();
        if deadline == Deadline::Passed || (deadline == Deadline::Timer && s.expired) {
            return Woke::TimedOut;
        }
        // The kernel reads the word after a full barrier, under the bucket lock.
        if word.load(Ordering::SeqCst) != expected {
            return Woke::Again;
        }
        s.sleepers += 1;
        loop {
            if s.tokens > 0 {
                s.tokens -= 1;
                return Woke::Woken;
            }
            if deadline == Deadline::Timer && s.expired {
                s.sleepers -= 1;
                return Woke::TimedOut;
            }
            if s.wakers == 0 {
                s.sleepers -= 1;
                return Woke::Orphaned;
            }
            s = self.cv.wait(s).unwrap();
        }
    }

    /// `FUTEX_WAKE(word, 1)`: how many it woke.
    fn wake(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        if s.sleepers == 0 {
            return 0;
        }
        s.sleepers -= 1;
        s.tokens += 1;
        self.cv.notify_all();
        1
    }

    /// `FUTEX_WAKE(word, INT_MAX)`: how many it woke.
    fn wake_all(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        let n = s.sleepers;
        s.sleepers = 0;
        s.tokens += n;
        self.cv.notify_all();
        n
    }

    /// The waiter's deadline passes.
    fn expire(&self) {
        self.state.lock().unwrap().expired = true;
        self.cv.notify_all();
    }

    /// One of the threads that may wake this futex is done with it.
    fn done(&self) {
        self.state.lock().unwrap().wakers -= 1;
        self.cv.notify_all();
    }

    fn sleepers(&self) -> usize {
        self.state.lock().unwrap().sleepers
    }
}

/// A wait block: the two words, and the futex on the doorbell.
struct Block {
    claim: AtomicU64,
    wake: AtomicU32,
    futex: Futex,
}

impl Block {
    /// A block whose doorbell `wakers` other threads may ring.
    fn new(wakers: usize) -> Block {
        // As a segment leaves a block: idle, at some generation.
        Block {
            claim: AtomicU64::new(pack(41, CLAIM_IDLE)),
            wake: AtomicU32::new(0),
            futex: Futex::new(wakers),
        }
    }

    /// `park::ring`: the ring, and a `FUTEX_WAKE` only if the waiter announced a sleep.
    fn ring(&self) {
        if word::ring(&self.wake) {
            self.futex.wake();
        }
    }
}

/// The waiter's side once it is queued (`wait::any::block` from the spin on): spin
/// `spins` checks of the claim, then announce / check / sleep until the claim changes
/// or the deadline passes, then cancel. Returns the claim that won over the cancel
/// (`None`: cancelled, i.e. timed out).
fn await_claim(b: &Block, generation: u32, spins: usize, deadline: Deadline) -> Option<Claim> {
    let spun = (0..spins).any(|_| word::read(&b.claim, generation) != Claim::Waiting);
    if !spun {
        loop {
            let bell = word::announce(&b.wake);
            if word::read(&b.claim, generation) != Claim::Waiting {
                break;
            }
            match b.futex.wait(&b.wake, bell, deadline) {
                Woke::TimedOut => break,
                Woke::Orphaned => panic!("lost wake-up: asleep, and nobody left to ring"),
                Woke::Woken | Woke::Again => {}
            }
        }
    }
    word::cancel(&b.claim, generation).err()
}
