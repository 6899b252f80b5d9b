//! The signal path: every operation that may make an object available to a waiter
//! (event set and pulse, semaphore release, mutex release and abandonment) runs here,
//! so that the hand-off happens inside the signalling call, as NT does it.
//!
//! 1. Lock the object. If no wait-all waiter is queued on it (the `all_waiters` hint),
//!    apply the change and hand the object to its queued waiters: the common case,
//!    one lock.
//! 2. Otherwise read the sets of the queued wait-alls (object ids, from their wait
//!    blocks), look up which of those objects this process maps, let go of the lock,
//!    and take all of them together with this one in the global lock order
//!    (`lockset`). Then apply the change and hand off: a wait-all whose whole set is
//!    now held and available is acquired on its waiter's behalf and claimed before
//!    the call returns (WL-18); nothing is set aside for one that cannot complete
//!    (WL-19).
//!
//! The change is applied exactly once, under whichever locks were finally taken. A
//! wait-all whose objects this process does not map (another process's unnamed object,
//! another user's private one) is rung instead and completes itself when it wakes: the
//! remaining limit, documented in docs/ARCHITECTURE.md.

use super::lockset::{self, LockSet};
use super::queue;
use super::{Guard, Object};
use crate::error::Result;
use crate::sys::time::Deadline;

/// Applies `change` to `obj` under its lock, then hands the object to its waiters,
/// completing the wait-alls it completes; see the module doc.
pub(crate) fn signal<R>(obj: &Object, change: impl FnOnce(&Guard<'_>) -> Result<R>) -> Result<R> {
    signal_then(obj, change, |_| ())
}

/// As [`signal`], then `after` under the same locks (a pulse resets its event).
pub(crate) fn signal_then<R>(
    obj: &Object,
    change: impl FnOnce(&Guard<'_>) -> Result<R>,
    after: impl FnOnce(&Guard<'_>),
) -> Result<R> {
    let g = obj.lock_bounded()?;
    if !queue::has_all_waiters(&g) {
        let r = change(&g)?;
        queue::hand_off(&g, None);
        after(&g);
        return Ok(r);
    }
    let others = lockset::reachable(&queue::all_set_members(&g));
    if others.is_empty() {
        let r = change(&g)?;
        let set = LockSet::single(g);
        queue::hand_off(&set.guards()[0], Some(&set));
        after(&set.guards()[0]);
        return Ok(r);
    }
    drop(g);
    let mut objs: Vec<&Object> = others.iter().map(|o| &**o).collect();
    objs.push(obj);
    let set = LockSet::lock(&objs, Deadline::Never)?
        .expect("a lock set without a deadline is always taken or an error");
    let g = set
        .get(obj.id)
        .expect("the signalled object is in its own set");
    let r = change(g)?;
    queue::hand_off(g, Some(&set));
    after(g);
    Ok(r)
}

/// Gives back one acquisition of `obj` that a wait of `who` made, long after the fact
/// (a cancelled wait that cannot block its signaller: `wait::detached`, or an
/// adaptor's, `Handle::give_back`), as if that wait had timed out before the signal
/// (TO-06): the kind's undo (an auto-reset event banks a signal that would otherwise
/// merge, `obj::event`), then the hand-off to the next waiter in line, wait-alls
/// completed (WL-18). Not for a kind owned by a thread: its owner releases it.
pub(crate) fn give_back(obj: &Object, who: u64) -> Result<()> {
    debug_assert!(!obj.owned());
    signal(obj, |g| {
        obj.undo_acquire_locked(g, who, false);
        Ok(())
    })
}

/// Hands an object whose state changed under `g` (a mutex abandoned by a dead owner, a
/// timer that expired) to its waiters, with the lock already held: wait-alls among
/// them are rung, not completed, since taking more locks now could break the order.
pub(crate) fn hand_off_held(g: &Guard<'_>) {
    queue::hand_off(g, None);
}
