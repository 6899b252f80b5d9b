//! Events. `state` bit 0 is SIGNALED, bits 32..=47 BANKED (see `shm::layout`).
//!
//! ```text
//! set:       unset => set; with waiters, under the lock: hand-off (auto: one waiter
//!            consumes it and it reads unset again; manual: every queued waiter passes)
//! reset:     set => unset (banked signals too)
//! pulse:     under the lock: set, hand-off, unset (PU-01..05)
//! wait:      auto: banked => one fewer banked, still set; set => unset; manual: unchanged
//! give back: auto: unset => set; set => one more banked signal
//! ```
//!
//! Banked signals exist for cancel safety (TO-06 for a wait that cannot block a
//! signaller: an async wait, `wait::detached`, or an adaptor's, `Handle::give_back`).
//! A signal handed to such a wait at the set may be given back after a later set found
//! the event unset and reported "was not set" (EV-03). Setting the event again would
//! merge the two into one (EV-04), and a signal that every set reported would be lost;
//! so the given-back signal is banked: the event stays set until one wait per banked
//! signal, plus one, has consumed it. Every set that reported "was not set" is then
//! consumed exactly once. A reset or pulse clears the bank with the signal (nothing of
//! it was consumed). The bank saturates at 65 535 pending give-backs.

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
        if obj.manual {
            return if s & WAITERS != 0 {
                Fast::Slow
            } else {
                Fast::Acquired(false)
            };
        }
        if s & (WAITERS | BANKED_MASK) != 0 {
            // Waiters queued, or a banked signal (rare: a give-back's) to take first,
            // which the lock's path does.
            return Fast::Slow;
        }
        match st.compare_exchange_weak(s, s & !SIGNALED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Fast::Acquired(false),
            Err(now) => s = now,
        }
    }
}

/// The word after one wait consumes a signal from the set word `s` (auto-reset).
#[inline]
fn taken(s: u64) -> u64 {
    if s & BANKED_MASK != 0 {
        s - BANKED_ONE
    } else {
        s & !SIGNALED
    }
}

/// The word after a set of `s`: set, and a bank that only a set event may hold cleared
/// (a hostile writer's bits without SIGNALED never become signals).
#[inline]
fn set_word(s: u64) -> u64 {
    if s & SIGNALED != 0 {
        s
    } else {
        (s & !BANKED_MASK) | SIGNALED
    }
}

pub(crate) fn acquire_locked(obj: &Object, _g: &Guard<'_>) -> Option<bool> {
    let s = obj.state().load(Ordering::Relaxed);
    if s & SIGNALED == 0 {
        return None;
    }
    if !obj.manual {
        // A store: no lock-free writer runs under the lock (`rewrite_locked`).
        obj.state().store(taken(s), Ordering::Relaxed);
    }
    Some(false)
}

/// Rewrites the word with `f` under the object lock and returns what it was. A load and
/// a store: no lock-free writer runs while the lock is held (holding it sets WAITERS,
/// which every lock-free path tests in its compare-and-swap).
fn rewrite_locked(obj: &Object, f: impl FnOnce(u64) -> u64) -> u64 {
    let st = obj.state();
    let s = st.load(Ordering::Relaxed);
    st.store(f(s), Ordering::Relaxed);
    s
}

/// Gives back one consumed signal (auto-reset): the event is set again, or, if it was
/// set again meanwhile, one more signal is banked (module doc). The exact inverse of
/// `acquire_locked` and of the lock-free take.
pub(crate) fn undo_locked(obj: &Object, _g: &Guard<'_>) {
    if obj.manual {
        return;
    }
    rewrite_locked(obj, |s| {
        if s & SIGNALED == 0 {
            set_word(s)
        } else if s & BANKED_MASK == BANKED_MASK {
            s // saturated: the module doc's limit
        } else {
            s + BANKED_ONE
        }
    });
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
        match st.compare_exchange_weak(s, set_word(s), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Ok(false),
            Err(now) => s = now,
        }
    }
    set_slow(obj)
}

#[cold]
fn set_slow(obj: &Object) -> Result<bool> {
    signal(obj, |_| Ok(set_locked(obj)))
}

/// Sets the event under its lock; returns whether it was set.
fn set_locked(obj: &Object) -> bool {
    rewrite_locked(obj, set_word) & SIGNALED != 0
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
        match st.compare_exchange_weak(
            s,
            s & !(SIGNALED | BANKED_MASK),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(true),
            Err(now) => s = now,
        }
    }
    let _g = obj.lock_bounded()?;
    Ok(obj
        .state()
        .fetch_and(!(SIGNALED | BANKED_MASK), Ordering::Relaxed)
        & SIGNALED
        != 0)
}

/// `PulseEvent`; returns the previous state (PU-04). Legacy and racy by design: only
/// threads queued at this instant are released.
pub(crate) fn pulse(obj: &Object) -> Result<bool> {
    signal_then(
        obj,
        |_| Ok(set_locked(obj)),
        |_| {
            obj.state()
                .fetch_and(!(SIGNALED | BANKED_MASK), Ordering::Relaxed);
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
