//! Waitable timers, without a timer thread: the signal state is a function of the due
//! time, the period and a SIGNALED flag in shared memory. Whoever looks at the timer
//! after its due time (a waiter waking at the due time, a poll, a query, a
//! completion-callback thread) *expires* it under the lock: sets SIGNALED, advances or
//! disarms it, and hands it to the queued waiters.
//!
//! ```text
//! state:     bit 0 SIGNALED, bit 1 ARMED, bit 2 REALTIME (due is wall-clock), bit 63 WAITERS
//! timer[0]:  due, ns on CLOCK_MONOTONIC (relative due times) or CLOCK_REALTIME (absolute)
//! timer[1]:  period, ns (0 = one-shot)
//! timer[2]:  expirations so far (for completion callbacks)
//!
//! set(due, period): SIGNALED cleared (TM-16), ARMED, due/period stored; waiters rung
//!                   so they sleep until the new due time (TM-15)
//! cancel:           ARMED cleared; SIGNALED unchanged (TM-17)
//! expire (now ≥ due, ARMED): SIGNALED; one-shot ⇒ disarmed (TM-08); periodic ⇒
//!                   due += k·period, the first k putting it in the future: missed
//!                   periods do not accumulate (TM-13) and there is no drift (TM-14)
//! wait:             manual: unchanged while signaled (TM-10); sync: SIGNALED cleared (TM-11)
//! ```
//! All changes run under the object lock; only a wait on a disarmed, signaled timer
//! with no waiters is lock-free.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::kind::Kind;
use super::queue::ring_all;
use super::signal::hand_off_held;
use super::{Fast, Guard, Object};
use crate::shm::layout::*;
use crate::sys::time::{self, Deadline};

/// `state` bit 1: the timer will expire at `due`.
pub(crate) const ARMED: u64 = 1 << 1;
/// `state` bit 2: `due` is on the wall clock.
pub(crate) const REALTIME: u64 = 1 << 2;

fn now_for(s: u64) -> u64 {
    if s & REALTIME != 0 {
        time::realtime_ns()
    } else {
        time::monotonic_ns()
    }
}

/// A waitable timer's operations (`obj::kind`): consumed like an event once expired.
pub(crate) struct TimerKind;

impl Kind for TimerKind {
    #[inline]
    fn signaled_for(_obj: &Object, s: u64, _who: u64) -> bool {
        s & SIGNALED != 0
    }

    #[inline]
    fn try_fast(obj: &Object, _me: u64) -> Fast {
        try_wait_fast(obj)
    }

    /// The SIGNALED bit is consumed like an event's (the caller expired it first:
    /// `refresh_locked`).
    fn acquire_locked(
        obj: &Object,
        g: &Guard<'_>,
        _who: u64,
    ) -> crate::error::Result<Option<bool>> {
        Ok(acquire_locked(obj, g))
    }

    fn undo_locked(obj: &Object, g: &Guard<'_>, _who: u64, _abandoned: bool) {
        undo_locked(obj, g);
    }

    fn refresh_locked(g: &Guard<'_>) {
        expire_locked(g);
    }

    fn next_due(obj: &Object) -> Deadline {
        next_due(obj)
    }
}

#[inline]
pub(crate) fn try_wait_fast(obj: &Object) -> Fast {
    let st = obj.state();
    let mut s = st.load(Ordering::Acquire);
    loop {
        if s & (WAITERS | ARMED) != 0 {
            // Waiters queued, or perhaps due (expirations that nobody has recorded
            // must be folded in before a consumption, TM-13): go through the lock.
            return Fast::Slow;
        }
        if s & SIGNALED == 0 {
            return Fast::NotSignaled;
        }
        if obj.manual {
            return Fast::Acquired(false);
        }
        match st.compare_exchange_weak(s, s & !SIGNALED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Fast::Acquired(false),
            Err(now) => s = now,
        }
    }
}

fn acquire_locked(obj: &Object, _g: &Guard<'_>) -> Option<bool> {
    let s = obj.state().load(Ordering::Relaxed);
    if s & SIGNALED == 0 {
        return None;
    }
    if !obj.manual {
        obj.state().store(s & !SIGNALED, Ordering::Relaxed);
    }
    Some(false)
}

/// Gives back one consumed expiry: signaled again. Unlike an event's, a timer's
/// signal is not banked when it was signaled again meanwhile: expiries that nobody
/// consumed merge (TM-13), so the result is what it would have been had the wait timed
/// out before the expiry (TO-06).
fn undo_locked(obj: &Object, _g: &Guard<'_>) {
    if !obj.manual {
        obj.state().fetch_or(SIGNALED, Ordering::Relaxed);
    }
}

/// Expires the timer if it is due; hands it to queued waiters. Returns whether it did.
pub(crate) fn expire_locked(g: &Guard<'_>) -> bool {
    let ctl = g.obj().ctl();
    let s = ctl.state.load(Ordering::Relaxed);
    if s & ARMED == 0 {
        return false;
    }
    let due = ctl.timer[0].load(Ordering::Relaxed);
    let now = now_for(s);
    if now < due {
        return false;
    }
    let period = ctl.timer[1].load(Ordering::Relaxed);
    let mut next = s | SIGNALED;
    if let Some(late) = (now - due).checked_div(period) {
        let missed = late + 1;
        ctl.timer[0].store(
            due.saturating_add(missed.saturating_mul(period)),
            Ordering::Relaxed,
        );
    } else {
        next &= !ARMED; // one-shot (period 0)
    }
    ctl.state.store(next, Ordering::Relaxed);
    ctl.timer[2].fetch_add(1, Ordering::Relaxed);
    hand_off_held(g);
    true
}

/// `SetWaitableTimer`: `due_ns` on the wall clock if `realtime`, else on the monotonic
/// clock; `period_ns` 0 for one-shot. Returns the previous signaled state (TM-19).
pub(crate) fn set(
    obj: &Object,
    due_ns: u64,
    realtime: bool,
    period_ns: u64,
) -> crate::error::Result<bool> {
    let g = obj.lock_bounded()?;
    let ctl = obj.ctl();
    let s = ctl.state.load(Ordering::Relaxed);
    ctl.timer[0].store(due_ns, Ordering::Relaxed);
    ctl.timer[1].store(period_ns, Ordering::Relaxed);
    let flags = ARMED | if realtime { REALTIME } else { 0 };
    ctl.state.store((s & WAITERS) | flags, Ordering::Relaxed);
    // TM-04: a due time already passed fires at once.
    if !expire_locked(&g) {
        // Waiters sleep until the old due time: wake them to sleep until the new one.
        ring_all(&g);
    }
    Ok(s & SIGNALED != 0)
}

/// `CancelWaitableTimer`: disarms, keeps the signaled state (TM-17). Returns the
/// previous signaled state.
pub(crate) fn cancel(obj: &Object) -> crate::error::Result<bool> {
    let g = obj.lock_bounded()?;
    expire_locked(&g);
    let s = obj.state().fetch_and(!ARMED, Ordering::Relaxed);
    Ok(s & SIGNALED != 0)
}

/// `(manual, signaled, armed)` after expiring a due timer.
pub(crate) fn query(obj: &Object) -> crate::error::Result<(bool, bool, bool)> {
    let s = obj.state().load(Ordering::Acquire);
    let s = if s & ARMED != 0 && s & SIGNALED == 0 {
        let g = obj.lock_bounded()?;
        expire_locked(&g);
        drop(g);
        obj.state().load(Ordering::Acquire)
    } else {
        s
    };
    Ok((obj.manual, s & SIGNALED != 0, s & ARMED != 0))
}

/// When an armed timer will next expire, as a deadline on the monotonic clock (`Never`
/// when disarmed). A wall-clock due time is converted at the time of the call; a
/// sleeper re-reads it at least every safety-net slice, so a clock change is followed.
pub(crate) fn next_due(obj: &Object) -> Deadline {
    let ctl = obj.ctl();
    let s = ctl.state.load(Ordering::Acquire);
    if s & ARMED == 0 {
        return Deadline::Never;
    }
    let due = ctl.timer[0].load(Ordering::Relaxed);
    let now = now_for(s);
    Deadline::At(Instant::now() + Duration::from_nanos(due.saturating_sub(now)))
}

/// Number of expirations so far.
pub(crate) fn expirations(obj: &Object) -> u64 {
    obj.ctl().timer[2].load(Ordering::Acquire)
}
