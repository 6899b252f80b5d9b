//! Events. `state` bit 0 is SIGNALED (see `shm::layout`).
//!
//! ```text
//! set:    unset => set; with waiters, under the lock: hand-off (auto: one waiter
//!         consumes it and it reads unset again; manual: every queued waiter passes)
//! reset:  set => unset
//! pulse:  under the lock: set, hand-off, unset (PU-01..05)
//! wait:   auto: set => unset (consumed); manual: unchanged
//! ```

use std::sync::atomic::Ordering;

use super::kind::Kind;
use super::signal::{signal, signal_then};
use super::{Fast, Guard, Object};
use crate::error::Result;
use crate::shm::layout::*;

/// An event's operations (`obj::kind`).
pub(crate) struct EventKind;

impl Kind for EventKind {
    const TAKEN_BY_WORD: bool = true;

    #[inline]
    fn signaled_for(_obj: &Object, s: u64, _who: u64) -> bool {
        s & SIGNALED != 0
    }

    #[inline]
    fn try_fast(obj: &Object, _me: u64) -> Fast {
        try_wait_fast(obj)
    }

    #[inline]
    fn taken_from(obj: &Object, s: u64) -> Option<u64> {
        taken_from(obj, s)
    }

    fn acquire_locked(obj: &Object, g: &Guard<'_>, _who: u64) -> Result<Option<bool>> {
        Ok(acquire_locked(obj, g))
    }

    fn undo_locked(obj: &Object, g: &Guard<'_>, _who: u64, _abandoned: bool) {
        undo_locked(obj, g);
    }
}

#[inline]
pub(crate) fn try_wait_fast(obj: &Object) -> Fast {
    let st = obj.state();
    let mut s = st.load(Ordering::Acquire);
    loop {
        if s & SIGNALED == 0 {
            // Unset is unset, queued waiters or not: nothing to take (and a poll needs
            // no lock).
            return Fast::NotSignaled;
        }
        if s & WAITERS != 0 {
            return Fast::Slow;
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

pub(crate) fn acquire_locked(obj: &Object, _g: &Guard<'_>) -> Option<bool> {
    let s = obj.state().load(Ordering::Relaxed);
    if s & SIGNALED == 0 {
        return None;
    }
    if !obj.manual {
        obj.state().store(s & !SIGNALED, Ordering::Relaxed);
    }
    Some(false)
}

pub(crate) fn undo_locked(obj: &Object, _g: &Guard<'_>) {
    if !obj.manual {
        obj.state().fetch_or(SIGNALED, Ordering::Relaxed);
    }
}

/// `SetEvent`; returns the previous state (EV-03, EV-04).
#[inline]
pub(crate) fn set(obj: &Object) -> Result<bool> {
    let st = obj.state();
    let mut s = st.load(Ordering::Relaxed);
    while s & WAITERS == 0 {
        if s & SIGNALED != 0 {
            return Ok(true);
        }
        match st.compare_exchange_weak(s, s | SIGNALED, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Ok(false),
            Err(now) => s = now,
        }
    }
    set_slow(obj)
}

#[cold]
fn set_slow(obj: &Object) -> Result<bool> {
    signal(obj, |_| {
        Ok(obj.state().fetch_or(SIGNALED, Ordering::Relaxed) & SIGNALED != 0)
    })
}

/// `ResetEvent`; returns the previous state (EV-05).
#[inline]
pub(crate) fn reset(obj: &Object) -> Result<bool> {
    let st = obj.state();
    let mut s = st.load(Ordering::Relaxed);
    while s & WAITERS == 0 {
        if s & SIGNALED == 0 {
            return Ok(false);
        }
        match st.compare_exchange_weak(s, s & !SIGNALED, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(true),
            Err(now) => s = now,
        }
    }
    let _g = obj.lock_bounded()?;
    Ok(obj.state().fetch_and(!SIGNALED, Ordering::Relaxed) & SIGNALED != 0)
}

/// `PulseEvent`; returns the previous state (PU-04). Legacy and racy by design: only
/// threads queued at this instant are released.
pub(crate) fn pulse(obj: &Object) -> Result<bool> {
    signal_then(
        obj,
        |_| Ok(obj.state().fetch_or(SIGNALED, Ordering::Relaxed) & SIGNALED != 0),
        |_| {
            obj.state().fetch_and(!SIGNALED, Ordering::Relaxed);
        },
    )
}

/// The word after one wait from `s`, if `s` is set with nobody queued: what
/// wait-all's hardware transaction writes (`wait::all`).
pub(crate) fn taken_from(obj: &Object, s: u64) -> Option<u64> {
    (s == SIGNALED).then_some(if obj.manual { s } else { 0 })
}

/// `(manual, signaled)`.
pub(crate) fn query(obj: &Object) -> (bool, bool) {
    (
        obj.manual,
        obj.state().load(Ordering::Acquire) & SIGNALED != 0,
    )
}
