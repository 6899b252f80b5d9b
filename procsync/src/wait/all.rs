//! Waiting for all of several objects, atomically (WL-01..19).
//!
//! The waiter takes the locks of its whole set (`obj::lockset`: ascending object id,
//! never sleeping on one lock while holding others), checks that each object is
//! available to it, and if so acquires them all before unlocking any. Every change to
//! an object's state happens under that object's lock, so no thread in any process
//! can observe a partial acquisition, and a timeout leaves everything as it was.
//!
//! If the set is not complete, the waiter records its set (object ids) in its wait
//! block, queues an `ALL` entry in each object, lets the locks go and sleeps. A signal
//! that makes the whole set available completes the wait itself, inside the signalling
//! call (`obj::signal`, WL-18): it takes the same locks, acquires everything on the
//! waiter's behalf and claims it. Nothing is ever set aside for a wait-all that cannot
//! complete (WL-19). When the signaller cannot reach every object of the set (it does
//! not map one of them), it rings the waiter, which re-checks its set under all its
//! locks and completes itself.
//!
//! A waiter killed while holding some of the locks leaves them to be recovered from a
//! dead holder (`obj::lock`); a wait-all cannot be half-acquired, since acquisitions
//! happen with every lock held.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::any::{SAFETY_NET_MS, check_owners, owner_slice, safety_net};
use super::{WaitOutcome, abandon};
use crate::error::{Error, Result};
use crate::obj::lockset::LockSet;
use crate::obj::queue::{self, EntryVal};
use crate::obj::{Guard, Object};
use crate::park::{self, Claim, WaitBlock};
use crate::shm::layout::*;
use crate::sys::futex::Woke;
use crate::sys::htm;
use crate::sys::thread;
use crate::sys::time::Deadline;
use crate::wait::MAX_WAIT_OBJECTS;

/// Rejects the same object twice (WL-07, HD-13: compared by object, not by handle).
pub(crate) fn check_duplicates(objs: &[&Arc<Object>]) -> Result<()> {
    for j in 0..objs.len() {
        for i in 0..j {
            if objs[i].id == objs[j].id {
                return Err(Error::DuplicateObject {
                    first: i,
                    second: j,
                });
            }
        }
    }
    Ok(())
}

/// Waits until every object of `objs` can be acquired at once; see the module doc.
pub(crate) fn wait_all(objs: &[&Arc<Object>], deadline: Deadline) -> Result<WaitOutcome> {
    // The lock order (indices by ascending id), which also shows a duplicate as two
    // neighbours.
    let (mut ids, mut order) = ([0u64; MAX_WAIT_OBJECTS], [0u8; MAX_WAIT_OBJECTS]);
    let order = &mut order[..objs.len()];
    for (k, (slot, o)) in order.iter_mut().zip(objs).enumerate() {
        (*slot, ids[k]) = (k as u8, o.id);
    }
    order.sort_unstable_by_key(|&i| ids[usize::from(i)]);
    if order
        .windows(2)
        .any(|w| ids[usize::from(w[0])] == ids[usize::from(w[1])])
    {
        check_duplicates(objs)?; // names the first pair, as WL-07 wants
    }
    let mut got = match take_all_at_once(objs) {
        Some(outcome) => Some(outcome),
        None => take_all_now(objs, order, thread::ident()).transpose()?,
    };
    loop {
        if let Some(outcome) = got {
            if matches!(
                outcome,
                WaitOutcome::Signaled(_) | WaitOutcome::Abandoned(_)
            ) {
                for o in objs {
                    if o.owned() {
                        abandon::note_owned(o);
                    }
                }
            }
            return Ok(outcome);
        }
        // Not all at once (or a forged claim on a public block): the whole wait, same
        // deadline.
        got = attempt(objs, deadline)?;
    }
}

/// The first look on a CPU with hardware transactions (`sys::htm`), for a set of
/// semaphores and events (distinct: checked before): one transaction reads each
/// object's lock word (free) and state word (available, nobody queued) and writes each
/// taken state. Every other change to an object either takes its lock or swaps its
/// state word, and the transaction commits only if no other CPU wrote any line it read
/// meanwhile; so the set is taken all at once, as under the locks, with no locked
/// instruction at all, and a process killed inside leaves nothing behind. `None`: not
/// such a set, an object not available, or the transaction aborted: the locked first
/// look decides.
fn take_all_at_once(objs: &[&Arc<Object>]) -> Option<WaitOutcome> {
    if !htm::available() || !objs.iter().all(|o| o.taken_by_word()) {
        return None;
    }
    let mut left = [0u64; MAX_WAIT_OBJECTS];
    let left = &mut left[..objs.len()];
    htm::atomically(|| {
        for (o, l) in objs.iter().zip(left.iter_mut()) {
            let ctl = o.ctl();
            if ctl.lock.load(Ordering::Acquire) != 0 {
                return None;
            }
            *l = o.taken_from(ctl.state.load(Ordering::Acquire))?;
        }
        for (o, &l) in objs.iter().zip(left.iter()) {
            o.ctl().state.store(l, Ordering::Relaxed);
        }
        Some(())
    })?;
    for (o, &l) in objs.iter().zip(left.iter()) {
        o.note_left(l);
    }
    Some(WaitOutcome::Signaled(0))
}

/// The first look, when nobody else holds the locks: each lock is only tried (in `order`:
/// indices in `objs` by ascending id), and if every object is available to `me`, all are
/// taken at once before any lock is let go. No allocation and no lookup: the guards sit
/// in lock order on the stack. `None` when a lock is busy or an object is not
/// available: the full path ([`attempt`]) decides, and queues.
fn take_all_now(objs: &[&Arc<Object>], order: &[u8], me: u64) -> Option<Result<WaitOutcome>> {
    let mut guards: [Option<Guard<'_>>; MAX_WAIT_OBJECTS] = [const { None }; MAX_WAIT_OBJECTS];
    for (slot, &i) in guards.iter_mut().zip(order) {
        *slot = Some(objs[usize::from(i)].try_lock()?);
    }
    let guards = &guards[..order.len()];
    if !all_available(guards.iter().flatten(), me) {
        return None;
    }
    let locked = guards
        .iter()
        .zip(order)
        .filter_map(|(g, &i)| Some((g.as_ref()?, usize::from(i))));
    Some(
        take_each(locked, objs, me)
            .map(|abandoned| abandoned.map_or(WaitOutcome::Signaled(0), WaitOutcome::Abandoned)),
    )
}

/// Under the locks `guards`: brings every object up to date (a due timer expires), then
/// says whether each is available to `me`. `available_locked` abandons a mutex whose
/// owner died (AB-16), whatever the timeout.
fn all_available<'g, 'a: 'g>(guards: impl Iterator<Item = &'g Guard<'a>> + Clone, me: u64) -> bool {
    for g in guards.clone() {
        g.obj().refresh_locked(g);
    }
    guards
        .into_iter()
        .all(|g| g.obj().available_locked(g, me, true))
}

/// Acquires, for `me`, each object of `locked` (its guard and its index in `objs`; each
/// was found available); returns the lowest index of an abandoned mutex, if any.
fn take_each<'g, 'a: 'g>(
    locked: impl Iterator<Item = (&'g Guard<'a>, usize)>,
    objs: &[&Arc<Object>],
    me: u64,
) -> Result<Option<usize>> {
    let mut abandoned: Option<usize> = None;
    for (g, i) in locked {
        if let Some(true) = objs[i].acquire_locked(g, me)? {
            abandoned = Some(abandoned.map_or(i, |k| k.min(i)));
        }
    }
    Ok(abandoned)
}

/// One wait; `None` when a public block's claim turned out forged.
fn attempt(objs: &[&Arc<Object>], deadline: Deadline) -> Result<Option<WaitOutcome>> {
    let me = thread::ident();
    let plain: Vec<&Object> = objs.iter().map(|o| &***o).collect();
    let has_mutex = objs.iter().any(|o| o.owned());
    let mut wb: Option<WaitBlock> = None;
    let mut overflow: Vec<usize> = Vec::new();
    let claimed = loop {
        let Some(set) = LockSet::lock(&plain, deadline)? else {
            // The deadline passed while someone sat on a lock.
            match wb.as_ref().map(WaitBlock::cancel) {
                Some(Err(c)) => break c, // completed by a signal just before
                _ => {
                    release_overflow(objs, &overflow);
                    return Ok(Some(WaitOutcome::TimedOut));
                }
            }
        };
        if let Some(b) = &wb {
            let c = b.claim();
            if c != Claim::Waiting {
                drop(set);
                break c; // a signal completed us (or the claim was forged)
            }
        }
        let done = all_available(set.guards().iter(), me);
        let expired = deadline == Deadline::Now || deadline.remaining() == Some(Duration::ZERO);
        if done || expired {
            let mut outcome = WaitOutcome::TimedOut;
            if done {
                let state = take_all(&set, objs, me)?;
                outcome = super::outcome_of(park::block::decode(state))
                    .unwrap_or(WaitOutcome::Signaled(0));
                if let Some(b) = &wb
                    && !b.claim_self(state)
                {
                    // Nobody claims a wait-all without all its locks, which we hold:
                    // the claim word was written by someone else (public block).
                    undo_all(&set, objs, me, state);
                    drop(set);
                    release_overflow(objs, &overflow);
                    return Ok(None);
                }
            } else if let Some(b) = &wb {
                let _ = b.cancel(); // no signaller can claim us: we hold every lock
            }
            if let Some(b) = &wb {
                for g in set.guards() {
                    queue::remove_wait(g, b.seg.id(), b.index, b.generation);
                }
            }
            drop(set);
            release_overflow(objs, &overflow);
            return Ok(Some(outcome));
        }
        if wb.is_none() {
            let ids: Vec<u64> = objs.iter().map(|o| o.id).collect();
            let fds: Vec<u32> = objs.iter().map(|o| o.backing_fd_number()).collect();
            let b = WaitBlock::arm(super::needs_public(objs), &ids, &fds)?;
            for (i, o) in objs.iter().enumerate() {
                let g = set.get(o.id).expect("every object of the set is locked");
                let e = EntryVal {
                    seg: b.seg.id(),
                    block: b.index,
                    generation: b.generation,
                    index: i,
                    kind: ENTRY_ALL,
                    granted: None,
                    who: me,
                    seq_sleeper: false,
                };
                if !queue::push(g, e) {
                    g.obj().ctl().overflow.fetch_add(1, Ordering::Relaxed);
                    overflow.push(i);
                }
            }
            wb = Some(b);
        }
        let b = wb.as_ref().expect("armed above");
        // Read under the locks: a signal after we unlock rings, so the sleep returns.
        let bell = b.bell();
        let seqs: Vec<u32> = overflow
            .iter()
            .map(|&i| objs[i].seq().load(Ordering::Acquire))
            .collect();
        drop(set);
        // The earliest due time of a timer in the set (each read takes the clock).
        let due = objs
            .iter()
            .fold(Deadline::Never, |d, o| d.min(o.next_due()));
        // An infinite wait's safety net: a relative timeout of the sleep (no clock read).
        // (Not with an armed timer: see `any::Sleeper::step`.)
        let net = !has_mutex && deadline == Deadline::Never && due == Deadline::Never;
        let slice = if has_mutex {
            owner_slice(objs.iter().copied(), me, deadline)
        } else if net {
            deadline
        } else {
            safety_net(deadline)
        };
        let cap = net.then_some(Duration::from_millis(SAFETY_NET_MS));
        let timer_due = due != Deadline::Never && due.min(slice) == due;
        let slice = slice.min(due);
        let more: Vec<(&std::sync::atomic::AtomicU32, u32)> = overflow
            .iter()
            .enumerate()
            .map(|(n, &i)| (objs[i].seq(), seqs[n]))
            .collect();
        let woke = if timer_due {
            thread::with_precise_timers(|| b.sleep(bell, &more, slice, cap))
        } else {
            b.sleep(bell, &more, slice, cap)
        };
        if woke == Woke::TimedOut && has_mutex {
            check_owners(objs.iter().copied(), me);
        }
    };
    release_overflow(objs, &overflow);
    let b = wb.expect("only a queued wait is claimed");
    if !b.public() {
        return Ok(super::outcome_of(claimed));
    }
    // A public block's claim word may have been written by anyone: the objects are the
    // truth. A signaller that completed us marked a grant in every object of the set.
    let mut grants: Vec<(usize, bool)> = Vec::with_capacity(objs.len());
    for (i, o) in objs.iter().enumerate() {
        let Ok(g) = o.lock_bounded() else { continue };
        if let Some((k, a)) = queue::remove_wait(&g, b.seg.id(), b.index, b.generation)
            && k == i
            && (!o.owned() || o.owner() == me)
        {
            grants.push((i, a));
        }
    }
    if grants.len() == objs.len() {
        let abandoned = grants.iter().filter(|(_, a)| *a).map(|(i, _)| *i).min();
        return Ok(Some(
            abandoned.map_or(WaitOutcome::Signaled(0), WaitOutcome::Abandoned),
        ));
    }
    // Forged, or cut short: give back whatever was marked ours, and wait again.
    for (i, a) in grants {
        if let Ok(g) = objs[i].lock_bounded() {
            objs[i].undo_acquire_locked(&g, me, a);
            crate::obj::signal::hand_off_held(&g);
        }
    }
    Ok(None)
}

/// Acquires every object of the locked set for `me` (each was checked available);
/// returns the claim state: signaled, or abandoned at the lowest abandoned index.
fn take_all(set: &LockSet<'_>, objs: &[&Arc<Object>], me: u64) -> Result<u32> {
    let locked = objs.iter().enumerate().map(|(i, o)| {
        let g = set.get(o.id).expect("every object of the set is locked");
        (g, i)
    });
    Ok(take_each(locked, objs, me)?.map_or(park::granted(0, false), |i| park::granted(i, true)))
}

fn undo_all(set: &LockSet<'_>, objs: &[&Arc<Object>], me: u64, state: u32) {
    let abandoned_at = match park::block::decode(state) {
        Claim::Abandoned(i) => Some(i),
        _ => None,
    };
    for (i, o) in objs.iter().enumerate() {
        let g = set.get(o.id).expect("every object of the set is locked");
        o.undo_acquire_locked(g, me, abandoned_at == Some(i));
    }
}

fn release_overflow(objs: &[&Arc<Object>], overflow: &[usize]) {
    for &i in overflow {
        if let Ok(Some(g)) = objs[i].lock_within(super::soon()) {
            let o = &g.obj().ctl().overflow;
            o.store(
                o.load(Ordering::Relaxed).saturating_sub(1),
                Ordering::Relaxed,
            );
        }
    }
}
