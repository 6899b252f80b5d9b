//! The object lock: a word holding the holder's identity, recoverable from a dead
//! holder.
//!
//! ```text
//! lock (u64):  bits 0..=61 holder identity (tid | start << 32), 0 = free
//!              bit  63     CONTENDED: someone sleeps on `lock_seq`
//! ```
//! `free => held(me)` by compare-and-swap; the unlocker swaps in 0 and, if CONTENDED
//! was set, bumps `lock_seq` and wakes one sleeper. A contender spins briefly, then
//! sleeps on `lock_seq` in slices of [`RECOVERY_SLICE_MS`]; after each slice it checks
//! the holder through `/proc` and, if the holder is dead (or its id was reused by
//! another thread: the start time differs), takes the lock over by compare-and-swap
//! and repairs the object ([`super::queue::repair_locked`]).
//!
//! While the lock is held, `state` carries WAITERS, so every lock-free path fails and
//! takes the lock: the holder sees a frozen state. On unlock, WAITERS is cleared again
//! when the queue and the overflow count are empty.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Object;
use crate::shm::layout::*;
use crate::sys::futex::{self, Woke};
use crate::sys::thread;
use crate::sys::time::Deadline;

/// How long a contender sleeps before checking whether the holder died.
pub(crate) const RECOVERY_SLICE_MS: u64 = 20;
/// Attempts before a contender sleeps (half of them after a `sched_yield`).
const SPINS: u32 = 64;

/// Proof that the calling thread holds an object's lock: the only door to an object's
/// locked state (its field is private, so a guard cannot be made up elsewhere).
#[derive(Debug)]
pub(crate) struct Guard<'a> {
    obj: &'a Object,
}

impl<'a> Guard<'a> {
    /// The locked object.
    #[inline]
    pub(crate) fn obj(&self) -> &'a Object {
        self.obj
    }
}

/// How long any lock acquisition waits for a *live* holder before it reports the
/// object as busy: procsync holds object locks for microseconds, so a holder that
/// keeps one this long is stopped (a debugger, SIGSTOP) or hostile. Dead holders are
/// recovered long before (see the module doc).
pub(crate) const LOCK_BOUND: Duration = Duration::from_secs(5);

impl Object {
    /// Takes the object lock (recovering it from a dead holder), waiting at most
    /// [`LOCK_BOUND`]; a live holder that keeps it longer is an error for this
    /// object only.
    pub(crate) fn lock_bounded(&self) -> crate::error::Result<Guard<'_>> {
        self.lock_within(Deadline::Never)?
            .ok_or_else(|| self.busy())
    }

    /// As [`Object::lock_bounded`], giving up at `deadline` too (`Ok(None)`).
    pub(crate) fn lock_within(
        &self,
        deadline: Deadline,
    ) -> crate::error::Result<Option<Guard<'_>>> {
        // Uncontended: no clock read; contended, none while it spins either.
        if let Some(g) = self.try_lock() {
            return Ok(Some(g));
        }
        match self.lock_until(deadline, true) {
            Some(g) => Ok(Some(g)),
            None if deadline.remaining() == Some(Duration::ZERO) => Ok(None),
            None => Err(self.busy()),
        }
    }

    /// One attempt, no waiting.
    pub(crate) fn try_lock(&self) -> Option<Guard<'_>> {
        let me = thread::ident();
        self.ctl()
            .lock
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| self.freeze(me))
    }

    fn busy(&self) -> crate::error::Error {
        crate::error::Error::Busy {
            what: format!(
                "the internal lock of `{}` (under `{}`) has been held for more than {} s by a \
                 live process (stopped in a debugger, or not a procsync process)",
                self.display,
                self.root.display(),
                LOCK_BOUND.as_secs()
            ),
        }
    }

    /// Takes the lock, giving up at `deadline` (a timed wait must not outlive its
    /// timeout because a hostile or stopped process sits on the lock), and `bounded`:
    /// after [`LOCK_BOUND`] as well, counted from the end of the spin (the clock is
    /// read only once the lock is worth sleeping for).
    fn lock_until(&self, deadline: Deadline, bounded: bool) -> Option<Guard<'_>> {
        let mut limit = None;
        let mut limit = move || {
            *limit.get_or_insert_with(|| {
                if bounded {
                    deadline.min(Deadline::At(Instant::now() + LOCK_BOUND))
                } else {
                    deadline
                }
            })
        };
        let ctl = self.ctl();
        let me = thread::ident();
        let mut want = me;
        let mut spins = 0;
        let mut slept_since: Option<Instant> = None;
        loop {
            match ctl
                .lock
                .compare_exchange_weak(0, want, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(0) => continue,
                Err(LOCK_CONTENDED) => {
                    // CONTENDED without a holder: no procsync process leaves that (an
                    // unlock swaps in 0); take it, keeping the bit for the sleepers.
                    if ctl
                        .lock
                        .compare_exchange(
                            LOCK_CONTENDED,
                            me | LOCK_CONTENDED,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        break;
                    }
                }
                Err(cur) => {
                    if spins < SPINS {
                        // Every other attempt yields the CPU rather than pausing: a failed
                        // swap takes the control line, which also holds `state`, from
                        // the holder, so swapping at every pause slowed the very critical
                        // section we wait for (pinned 2-process contention on a mutex:
                        // 11–14 → 22–24 M acquisitions/s); and on one CPU the holder can
                        // only finish if we give it the processor (a cross-process wake
                        // there: 1.25 → 1.16× a bare futex ping-pong).
                        spins += 1;
                        if spins % 2 == 0 {
                            thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                        continue;
                    }
                    let deadline = limit();
                    if deadline.remaining() == Some(Duration::ZERO) {
                        return None;
                    }
                    let seq = ctl.lock_seq.load(Ordering::Relaxed);
                    if cur & LOCK_CONTENDED == 0
                        && ctl
                            .lock
                            .compare_exchange(
                                cur,
                                cur | LOCK_CONTENDED,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            )
                            .is_err()
                    {
                        continue;
                    }
                    // Once we have slept, take the lock as CONTENDED so that our unlock
                    // wakes whoever else may still sleep.
                    want = me | LOCK_CONTENDED;
                    let slice = deadline.min(Deadline::At(
                        Instant::now() + Duration::from_millis(RECOVERY_SLICE_MS),
                    ));
                    let started = *slept_since.get_or_insert_with(Instant::now);
                    if futex::wait(&ctl.lock_seq, seq, slice) == Woke::TimedOut
                        && started.elapsed() >= Duration::from_millis(RECOVERY_SLICE_MS)
                    {
                        let holder = ctl.lock.load(Ordering::Relaxed);
                        let ident = holder & !LOCK_CONTENDED;
                        // A lock word naming ourselves is forged or stale: we do not
                        // hold it (the lock is not recursive), so it is recoverable.
                        if ident != 0
                            && (ident == me || !thread::ident_alive(ident))
                            && ctl
                                .lock
                                .compare_exchange(
                                    holder,
                                    want,
                                    Ordering::Acquire,
                                    Ordering::Relaxed,
                                )
                                .is_ok()
                        {
                            let g = self.freeze(me);
                            super::queue::repair_locked(&g);
                            return Some(g);
                        }
                    }
                }
            }
        }
        Some(self.freeze(me))
    }

    fn freeze(&self, me: u64) -> Guard<'_> {
        // Acquire: see what lock-free releasers published before we froze the state.
        // With WAITERS already set no lock-free path has run since whoever set it,
        // and our lock acquisition synchronizes with that holder: a load suffices.
        if self.state().load(Ordering::Acquire) & WAITERS == 0 {
            self.state().fetch_or(WAITERS, Ordering::AcqRel);
        }
        let _ = me;
        Guard { obj: self }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let ctl = self.obj.ctl();
        if ctl.queue_len.load(Ordering::Relaxed) == 0 && ctl.overflow.load(Ordering::Relaxed) == 0 {
            // A store, not a locked instruction: while WAITERS is set every lock-free
            // path fails its compare-and-swap and takes the lock, so the holder is the
            // only writer of the frozen word. Release: lock-free acquirers after us see
            // what we wrote under the lock.
            let left = ctl.state.load(Ordering::Relaxed) & !WAITERS;
            ctl.state.store(left, Ordering::Release);
            self.obj.note_left(left);
        }
        let prev = ctl.lock.swap(0, Ordering::Release);
        if prev & LOCK_CONTENDED != 0 {
            ctl.lock_seq.fetch_add(1, Ordering::Release);
            futex::wake(&ctl.lock_seq, 1);
        }
        // Waiters granted under this lock (public ones, completed wait-alls): wake them
        // now that it is free, unless a lock set still holds others (`park::HeldRings`).
        crate::park::ring_deferred();
    }
}
