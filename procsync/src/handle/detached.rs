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
    /// The doorbell, the only word unless `words` has more.
    doorbell: [FutexWord; 1],
    /// Empty when the doorbell is the only word (the usual case: no allocation); else
    /// every word, the doorbell first.
    words: Vec<FutexWord>,
    until: Option<Instant>,
    exact: bool,
    bell: Option<BellSleep>,
}

impl SleepOn {
    /// When the wait named a [`Bell`] ([`DetachedWait::set_bell`]) and this sleep can
    /// use it: the sleep ends when the bell delivers this sleep's [`BellKey`], or when
    /// the fallback word no longer holds its value, or at [`until`](Self::until). Its
    /// signallers do not `FUTEX_WAKE` [`words`](Self::words) then: a futex sleep on them
    /// would not be woken.
    pub fn bell(&self) -> Option<&BellSleep> {
        self.bell.as_ref()
    }

    /// The words (1 or more: the wait's doorbell first, then the change counters of
    /// objects whose waiter queue was full).
    pub fn words(&self) -> &[FutexWord] {
        if self.words.is_empty() {
            &self.doorbell
        } else {
            &self.words
        }
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

/// A sleep served by a [`Bell`]: see [`SleepOn::bell`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BellSleep {
    key: BellKey,
    fallback: FutexWord,
}

impl BellSleep {
    /// The key of the bell message that ends the sleep.
    pub fn key(&self) -> BellKey {
        self.key
    }

    /// The word a signaller that cannot reach the bell (another user, a full pipe)
    /// changes and wakes instead: one per wait-block segment, shared by every belled
    /// wait of the segment, and valid for the life of the process. A sleeper keeps one
    /// futex wait on it per distinct address, from the smallest expected value it was
    /// given; when it fires, every belled wait that gave this word is re-checked.
    pub fn fallback(&self) -> FutexWord {
        self.fallback
    }
}

/// Which wait a bell message is for ([`Bell::drain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BellKey(u64);

/// A doorbell that an event loop can watch: a pipe whose read end turns readable when
/// a signaller rings a [`DetachedWait`] that named it, in this process or any other.
/// One per event loop is enough, however many waits it drives: each message says which
/// wait was rung ([`BellKey`]).
///
/// A signaller reaches it through `/proc/<pid>/fd/<n>` when it runs as the same user
/// (or root) and the waiting process is dumpable; otherwise, and when the pipe is
/// full, it rings the wait's fallback word instead ([`BellSleep::fallback`]). Only
/// waits on blocks that only their own user can write (objects of the user's own
/// `Local\` namespace, unnamed objects) use it.
#[derive(Debug)]
pub struct Bell {
    inner: crate::park::bell::Bell,
}

impl Bell {
    /// A new bell (a non-blocking pipe of the system's default size).
    pub fn new() -> Result<Bell> {
        Ok(Bell {
            inner: crate::park::bell::Bell::new()?,
        })
    }

    /// Reads every message that arrived: `f` gets each rung wait's key. Returns `false`
    /// when the pipe held bytes that are not whole messages (written by something other
    /// than procsync): then any wait may have been rung, and all should be re-checked.
    /// Call it after the read end turned readable, until the next wait on readability.
    pub fn drain(&self, mut f: impl FnMut(BellKey)) -> Result<bool> {
        self.inner.drain(&mut |k| f(BellKey(k)))
    }
}

impl std::os::fd::AsFd for Bell {
    /// The read end, to watch for readability (edge- or level-triggered).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.fd()
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
        let (objs, deadline) = Self::checked(handles, deadline)?;
        Ok(DetachedWait {
            inner: Detached::new_checked(objs, deadline),
        })
    }

    /// [`new`](Self::new), on the heap: built there, not moved there (a wait is a few
    /// hundred bytes; an adaptor that keeps it in a future boxes it anyway).
    pub fn boxed(handles: &[&Handle], deadline: Option<Instant>) -> Result<Box<DetachedWait>> {
        let (objs, deadline) = Self::checked(handles, deadline)?;
        Ok(Box::new(DetachedWait {
            inner: Detached::new_checked(objs, deadline),
        }))
    }

    fn checked(
        handles: &[&Handle],
        deadline: Option<Instant>,
    ) -> Result<(crate::wait::detached::Objs, Deadline)> {
        let objs = super::core::check_list_owned(handles)?;
        Detached::check(&objs)?;
        let deadline = match deadline {
            None => Deadline::Never,
            Some(t) if t <= Instant::now() => Deadline::Now,
            Some(t) => Deadline::At(t),
        };
        Ok((objs, deadline))
    }

    /// Rings this wait through `bell` rather than its doorbell's futex, for the sleeps
    /// that can ([`SleepOn::bell`]): a wait with no deadline and no waitable timer,
    /// whose objects only its own user can write. Call it before [`start`](Self::start);
    /// `bell` must outlive the wait's sleeps (a message for a dropped bell's waits is
    /// lost, and they fall back to the once-a-second re-check).
    pub fn set_bell(&mut self, bell: &Bell) {
        self.inner.set_bell(bell.inner.reference());
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
                doorbell,
                words,
                until,
                exact,
                bell,
            } => Progress::Sleep(SleepOn {
                doorbell: [FutexWord {
                    addr: doorbell.0 as usize,
                    expected: doorbell.1,
                }],
                exact,
                bell: bell.map(|(key, word, value)| BellSleep {
                    key: BellKey(key),
                    fallback: FutexWord {
                        addr: word as usize,
                        expected: value,
                    },
                }),
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
