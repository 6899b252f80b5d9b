//! [`DetachedWait`]: a wait on one object or any of up to 64 that no thread blocks in,
//! for executors. procsync-tokio drives it with io_uring futex waits; any event loop
//! that can wait on a shared futex word can.
//!
//! It must not sleep; it checks arguments and rights, then calls `wait::detached`.

use std::sync::atomic::AtomicU32;
use std::time::Instant;

use super::core::Handle;
use crate::error::Result;
use crate::sys::futex::Woke;
use crate::sys::time::Deadline;
use crate::wait::WaitOutcome;
use crate::wait::detached::{Detached, Turn};

/// A `WaitForMultipleObjects(bWaitAll = FALSE)` (or a single wait) whose sleeping is
/// left to the caller, so that an executor can keep thousands pending without a thread
/// each. The protocol is the blocking wait's: the wait queues in each object and a
/// signaller hands it an object by claiming it and ringing its doorbell, a futex word.
///
/// Drive it like this:
///
/// 1. [`start`](Self::start): takes what is available now (lowest index first), or
///    queues and returns [`Progress::Sleep`].
/// 2. Sleep until a word of the [`SleepOn`] no longer holds its expected value or is
///    woken through the futex (a shared, 32-bit futex: not `FUTEX_PRIVATE_FLAG`), or
///    until [`SleepOn::until`]; spurious wake-ups are fine.
/// 3. [`woken`](Self::woken) or [`timed_out`](Self::timed_out), which again ends the
///    wait or asks for a sleep; repeat.
///
/// Dropping it, or [`cancel`](Self::cancel), ends a pending wait as a timeout would:
/// what a signaller handed over before that is given back (a semaphore unit released,
/// an auto-reset event set again, or its signal banked if a later set already set it:
/// TO-06a) to the next waiter, so a cancelled wait never consumes a signal (TO-06).
///
/// Restrictions: no mutex in the list (a mutex is owned by a thread; wait for it from
/// one); a futex sleep on the words must not outlive the next call on the wait or its
/// drop (the doorbell's block is then reused by another wait, whose wake-up such a
/// sleep could swallow).
pub struct DetachedWait {
    inner: Detached,
}

impl std::fmt::Debug for DetachedWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedWait").finish_non_exhaustive()
    }
}

/// What to do after a call on a [`DetachedWait`].
#[derive(Debug)]
pub enum Progress {
    /// The wait is over: an object was acquired, or the deadline passed.
    Done(WaitOutcome),
    /// Sleep as described, then call [`DetachedWait::woken`] or
    /// [`DetachedWait::timed_out`].
    Sleep(SleepOn),
}

/// The futex words to sleep on, and until when.
#[derive(Debug)]
pub struct SleepOn {
    words: Vec<FutexWord>,
    until: Option<Instant>,
    exact: bool,
}

impl SleepOn {
    /// The words (1 or more: the wait's doorbell first, then the change counters of
    /// objects whose waiter queue was full).
    pub fn words(&self) -> &[FutexWord] {
        &self.words
    }

    /// Wake up by then at the latest (`None`: no limit). Never later than the
    /// deadline; earlier for a waitable timer's due time, and for a safety-net
    /// re-check once a second.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Whether [`until`](Self::until) must be kept to the instant: it is the wait's
    /// deadline or a waitable timer's due time. When `false` it is only the periodic
    /// safety-net re-check (a signaller killed between handing the object over and
    /// ringing the doorbell cannot leave the wait asleep for ever), which may come a
    /// little late: an executor can serve many such re-checks with one periodic timer.
    pub fn exact(&self) -> bool {
        self.exact
    }
}

/// One shared 32-bit futex word and the value it is expected to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FutexWord {
    addr: usize,
    expected: u32,
}

impl FutexWord {
    /// The word's address: valid (mapped) until the next call on the wait that gave
    /// it, or its drop.
    pub fn addr(&self) -> *const AtomicU32 {
        self.addr as *const AtomicU32
    }

    /// Sleep only while the word holds this value.
    pub fn expected(&self) -> u32 {
        self.expected
    }
}

impl DetachedWait {
    /// A wait on `handles` (1 to 64, duplicates allowed, no mutex), each with the
    /// `synchronize` right, until `deadline` (`None`: no limit; a past instant polls).
    /// Nothing happens before [`start`](Self::start).
    pub fn new(handles: &[&Handle], deadline: Option<Instant>) -> Result<DetachedWait> {
        let objs = super::core::check_list(handles)?
            .into_iter()
            .cloned()
            .collect();
        let deadline = match deadline {
            None => Deadline::Never,
            Some(t) if t <= Instant::now() => Deadline::Now,
            Some(t) => Deadline::At(t),
        };
        Ok(DetachedWait {
            inner: Detached::new(objs, deadline)?,
        })
    }

    /// Takes an object if one is available, or queues the wait.
    pub fn start(&mut self) -> Result<Progress> {
        self.turn(None)
    }

    /// After a sleep that ended otherwise than by [`SleepOn::until`] passing.
    pub fn woken(&mut self) -> Result<Progress> {
        self.turn(Some(Woke::Woken))
    }

    /// After a sleep that ended because [`SleepOn::until`] passed.
    pub fn timed_out(&mut self) -> Result<Progress> {
        self.turn(Some(Woke::TimedOut))
    }

    /// Ends a pending wait as if it had timed out, giving back anything handed over to
    /// it meanwhile. Idempotent; the drop does it too.
    pub fn cancel(&mut self) -> Result<()> {
        self.inner.cancel()
    }

    fn turn(&mut self, woke: Option<Woke>) -> Result<Progress> {
        Ok(match self.inner.turn(woke)? {
            Turn::Done(outcome) => Progress::Done(outcome),
            Turn::Sleep {
                words,
                until,
                exact,
            } => Progress::Sleep(SleepOn {
                exact,
                words: words
                    .into_iter()
                    .map(|(w, v)| FutexWord {
                        addr: w as usize,
                        expected: v,
                    })
                    .collect(),
                until: match until {
                    Deadline::Never => None,
                    Deadline::Now => Some(Instant::now()),
                    Deadline::At(t) => Some(t),
                },
            }),
        })
    }
}
