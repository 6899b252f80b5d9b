//! Mutexes: owned by a thread (identity = tid | start time), recursive, abandoned when
//! the owner dies.
//!
//! ```text
//! state:  bits 0..=61 owner identity (0 = unowned), bit 62 ABANDONED, bit 63 WAITERS
//! recursion: owner's count while owned (stale while unowned: a release leaves it at 1);
//!            written by the owner, or by a hand-off before it publishes the new owner
//!
//! wait by T:     unowned => owned(T, 1), ABANDONED reported once and cleared (AB-02)
//!                owned(T, r) => owned(T, r + 1)         (MX-03; fails past MAX_RECURSION)
//!                owned(U, _), U dead => abandoned, then as unowned (AB-07)
//! release by T:  owned(T, r > 1) => owned(T, r - 1); owned(T, 1) => unowned + hand-off
//!                otherwise NotOwner, unchanged          (MX-04..06)
//! owner death:   owned(U, _) => unowned | ABANDONED + hand-off (AB-01, AB-05)
//! ```

use std::sync::atomic::Ordering;

use super::kind::Kind;
use super::signal::{hand_off_held, signal};
use super::{Fast, Guard, Object};
use crate::error::{Error, Result};
use crate::shm::layout::*;
use crate::sys::thread;

/// Largest recursion count (NT's MINLONG bound, MX-13); one more acquisition fails.
pub(crate) const MAX_RECURSION: u32 = 0x7FFF_FFFF;

/// A mutex's operations (`obj::kind`).
pub(crate) struct MutexKind;

impl Kind for MutexKind {
    const OWNED: bool = true;
    const HELD_BRIEFLY: bool = true;

    #[inline]
    fn signaled_for(_obj: &Object, s: u64, who: u64) -> bool {
        let owner = s & OWNER_MASK;
        owner == 0 || owner == who
    }

    /// Only an unowned mutex goes to the next waiter (a recursive take is its owner's).
    #[inline]
    fn free_for_anyone(_obj: &Object, s: u64) -> bool {
        s & OWNER_MASK == 0
    }

    #[inline]
    fn try_fast(obj: &Object, me: u64) -> Fast {
        try_wait_fast(obj, me)
    }

    #[inline]
    fn worth_spinning(_obj: &Object, s: u64, me: u64) -> bool {
        worth_spinning(s, me)
    }

    fn available_locked(_obj: &Object, g: &Guard<'_>, who: u64, check_owner: bool) -> bool {
        available_locked(g, who, check_owner)
    }

    fn acquire_locked(obj: &Object, g: &Guard<'_>, who: u64) -> Result<Option<bool>> {
        acquire_locked(obj, g, who)
    }

    fn undo_locked(obj: &Object, g: &Guard<'_>, who: u64, abandoned: bool) {
        undo_locked(obj, g, who, abandoned);
    }

    fn repair_locked(g: &Guard<'_>) {
        repair_locked(g);
    }

    fn owner(obj: &Object) -> u64 {
        obj.state().load(Ordering::Relaxed) & OWNER_MASK
    }

    fn abandon_if_dead(obj: &Object, owner: u64) -> Result<()> {
        abandon_if_dead(obj, owner)
    }
}

/// The lock-free `WaitForSingleObject` by `me`: a compare-and-swap from "free" with no
/// read of `state` first. On some CPUs (Intel's) a load of the word right before the
/// locked instruction on it costs a third as much again as the instruction; a failed
/// swap returns the word anyway. (A spinning waiter reads first: `park::spin`.)
#[inline]
pub(crate) fn try_wait_fast(obj: &Object, me: u64) -> Fast {
    let ctl = obj.ctl();
    let s = match ctl
        .state
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            ctl.recursion.store(1, Ordering::Relaxed);
            return Fast::Acquired(false);
        }
        Err(s) => s,
    };
    if s & OWNER_MASK == me {
        // Only the owner changes `recursion` while it owns the mutex.
        let r = ctl.recursion.load(Ordering::Relaxed);
        if (1..MAX_RECURSION).contains(&r) {
            ctl.recursion.store(r + 1, Ordering::Relaxed);
            return Fast::Acquired(false);
        }
    }
    Fast::Slow
}

/// Not ours, nobody queued, not abandoned (state word `s`): a release makes it free for
/// whoever takes it first.
#[inline]
pub(crate) fn worth_spinning(s: u64, me: u64) -> bool {
    s & (WAITERS | ABANDONED) == 0 && s & OWNER_MASK != me
}

/// Takes the mutex for `who` if it is free, owned by `who`, or owned by a dead thread.
pub(crate) fn acquire_locked(obj: &Object, g: &Guard<'_>, who: u64) -> Result<Option<bool>> {
    let ctl = obj.ctl();
    let s = ctl.state.load(Ordering::Relaxed);
    let owner = s & OWNER_MASK;
    if owner != 0 && owner == who {
        let r = ctl.recursion.load(Ordering::Relaxed);
        if r >= MAX_RECURSION {
            return Err(Error::RecursionLimit(r));
        }
        ctl.recursion.store(r.max(1) + 1, Ordering::Relaxed);
        return Ok(Some(false));
    }
    if owner != 0 {
        if thread::ident_alive(owner) {
            return Ok(None);
        }
        // AB-07: the owner died owning it. Queued waiters come first.
        abandon_locked(g);
        hand_off_held(g);
        if obj.state().load(Ordering::Relaxed) & OWNER_MASK != 0 {
            return Ok(None);
        }
    }
    let s = ctl.state.load(Ordering::Relaxed);
    ctl.recursion.store(1, Ordering::Relaxed);
    ctl.state.store((s & WAITERS) | who, Ordering::Relaxed);
    Ok(Some(s & ABANDONED != 0))
}

pub(crate) fn undo_locked(obj: &Object, _g: &Guard<'_>, who: u64, abandoned: bool) {
    let ctl = obj.ctl();
    let s = ctl.state.load(Ordering::Relaxed);
    if s & OWNER_MASK != who {
        return;
    }
    let r = ctl.recursion.load(Ordering::Relaxed);
    if r > 1 {
        ctl.recursion.store(r - 1, Ordering::Relaxed);
    } else {
        ctl.recursion.store(0, Ordering::Relaxed);
        ctl.state.store(
            (s & WAITERS) | if abandoned { ABANDONED } else { 0 },
            Ordering::Relaxed,
        );
    }
}

/// The owner is gone: unowned, ABANDONED, recursion dropped at once (AB-05).
pub(crate) fn abandon_locked(g: &Guard<'_>) {
    let ctl = g.obj().ctl();
    let s = ctl.state.load(Ordering::Relaxed);
    ctl.recursion.store(0, Ordering::Relaxed);
    ctl.state
        .store((s & WAITERS) | ABANDONED, Ordering::Relaxed);
}

/// Whether `who` can take the mutex under the lock: free, or its own below the recursion
/// limit; with `check_owner`, an owner that died is abandoned first (AB-07, AB-16: every
/// acquisition path notices a dead owner, whatever its timeout), and the mutex is free.
pub(crate) fn available_locked(g: &Guard<'_>, who: u64, check_owner: bool) -> bool {
    let ctl = g.obj().ctl();
    let owner = ctl.state.load(Ordering::Relaxed) & OWNER_MASK;
    if owner == 0 {
        return true;
    }
    if owner == who {
        return ctl.recursion.load(Ordering::Relaxed) < MAX_RECURSION;
    }
    if check_owner && !thread::ident_alive(owner) {
        abandon_locked(g);
        return true;
    }
    false
}

pub(crate) fn repair_locked(g: &Guard<'_>) {
    let ctl = g.obj().ctl();
    let owner = ctl.state.load(Ordering::Relaxed) & OWNER_MASK;
    if owner != 0 && (ctl.recursion.load(Ordering::Relaxed) == 0 || !thread::ident_alive(owner)) {
        abandon_locked(g);
    }
}

/// `ReleaseMutex` by `me`; returns the previous recursion count (MX-09). The common
/// case, owned once and nobody queued, is one compare-and-swap, with no read of `state`
/// before it (see [`try_wait_fast`]) and `recursion` left at 1: it means something
/// only while the mutex is owned, and every acquisition writes it. A thread that does
/// not own the mutex fails the swap, whatever `recursion` says.
#[inline]
pub(crate) fn release(obj: &Object, me: u64) -> Result<u32> {
    let ctl = obj.ctl();
    if ctl.recursion.load(Ordering::Relaxed) == 1
        && ctl
            .state
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    {
        return Ok(1);
    }
    release_owned(obj, ctl, me)
}

/// [`release`] past the single swap: recursion, queued waiters, errors.
#[inline(never)]
fn release_owned(obj: &Object, ctl: &Control, me: u64) -> Result<u32> {
    let s = ctl.state.load(Ordering::Relaxed);
    if s & OWNER_MASK != me {
        return Err(Error::NotOwner);
    }
    let r = ctl.recursion.load(Ordering::Relaxed);
    if r > 1 {
        ctl.recursion.store(r - 1, Ordering::Relaxed);
        return Ok(r);
    }
    if s == me {
        ctl.recursion.store(0, Ordering::Relaxed);
        if ctl
            .state
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(1);
        }
    }
    release_slow(obj, me)
}

#[cold]
fn release_slow(obj: &Object, me: u64) -> Result<u32> {
    signal(obj, |_| {
        let ctl = obj.ctl();
        let s = ctl.state.load(Ordering::Relaxed);
        if s & OWNER_MASK != me {
            return Err(Error::NotOwner);
        }
        ctl.recursion.store(0, Ordering::Relaxed);
        ctl.state.store(s & WAITERS, Ordering::Relaxed);
        Ok(1)
    })
}

/// Called when thread `me` ends: abandons the mutex if it still owns it (AB-01).
pub(crate) fn abandon_by(obj: &Object, me: u64) {
    if obj.state().load(Ordering::Relaxed) & OWNER_MASK != me {
        return;
    }
    let _ = signal(obj, |g| {
        if obj.state().load(Ordering::Relaxed) & OWNER_MASK == me {
            abandon_locked(g);
        }
        Ok(())
    });
}

/// The owner-death path of a waiter or the watcher: abandons the mutex if its owner
/// `owner` is dead, through the signal path (so a wait-all it completes is completed
/// inside it).
pub(crate) fn abandon_if_dead(obj: &Object, owner: u64) -> Result<()> {
    if obj.state().load(Ordering::Relaxed) & OWNER_MASK != owner || thread::ident_alive(owner) {
        return Ok(());
    }
    signal(obj, |g| {
        let now = obj.state().load(Ordering::Relaxed) & OWNER_MASK;
        if now != 0 && now == owner {
            abandon_locked(g);
        }
        Ok(())
    })
}

/// Who owns it, as seen by `me`.
pub(crate) struct MutexView {
    pub owner: u64,
    pub recursion: u32,
    pub abandoned: bool,
}

pub(crate) fn query(obj: &Object) -> MutexView {
    let ctl = obj.ctl();
    let s = ctl.state.load(Ordering::Acquire);
    let owner = s & OWNER_MASK;
    MutexView {
        owner,
        recursion: if owner == 0 {
            0
        } else {
            ctl.recursion.load(Ordering::Relaxed)
        },
        abandoned: s & ABANDONED != 0,
    }
}
