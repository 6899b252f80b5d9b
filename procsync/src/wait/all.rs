//! Waiting for all of several objects, atomically (WL-01..17).
//!
//! The waiter locks every object of its set in ascending object-id order, checks that
//! each is signaled for it, and if so acquires them all before unlocking any. Every
//! change to an object's state happens under that object's lock, so no thread in any
//! process can observe a partial acquisition, and a timeout leaves everything as it
//! was. Everyone else holds at most one object lock at a time, and wait-all waiters
//! take theirs in one global order, so there is no lock-order cycle: no deadlock, and
//! two wait-all waiters over overlapping sets (WL-16) simply serialize.
//!
//! If the set is not complete, the waiter queues an `ALL` entry in each object and
//! sleeps on its block's `wake` word; a signaler rings it whenever one of its objects
//! becomes signaled, and it re-checks the whole set. (A signaler cannot complete a
//! wait-all itself: it may not have the other objects mapped.)
//!
//! A waiter killed while holding some of the locks leaves them to be recovered from a
//! dead holder (`obj::lock`); the objects it had already acquired count as "acquired,
//! then died": mutexes become abandoned, semaphore units and event signals are gone,
//! exactly as if it had died right after returning.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::any::{check_owners, owner_slice, safety_net};
use super::{WaitBlock, WaitOutcome, abandon};
use crate::error::{Error, Result};
use crate::obj::queue::{self, EntryVal};
use crate::obj::{Guard, Object, ObjectKind, mutex, timer};
use crate::shm::layout::*;
use crate::sys::futex::{self, Woke};
use crate::sys::thread;
use crate::sys::time::Deadline;

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

/// Every object available to us under the locks held (`guards`), honouring what
/// signalers set aside for other wait-all waiters (`mine`: our wait, if queued).
fn complete(guards: &[(usize, Guard<'_>)], me: u64, mine: Option<(u32, u32)>) -> bool {
    guards.iter().all(|(_, g)| {
        let o = g.obj;
        let s = o.state().load(Ordering::Relaxed);
        queue::available(g, me, mine)
            && (o.kind != ObjectKind::Mutex
                || s & OWNER_MASK != me
                || o.file().ctl.recursion.load(Ordering::Relaxed) < mutex::MAX_RECURSION)
    })
}

/// Waits until every object of `objs` can be acquired at once; see the module doc.
pub(crate) fn wait_all(objs: &[&Arc<Object>], deadline: Deadline) -> Result<WaitOutcome> {
    check_duplicates(objs)?;
    let me = thread::ident();
    let mut order: Vec<usize> = (0..objs.len()).collect();
    order.sort_by_key(|&i| objs[i].id);
    let has_mutex = objs.iter().any(|o| o.kind == ObjectKind::Mutex);
    let mut wb: Option<WaitBlock> = None;
    let mut overflow: Vec<usize> = Vec::new();
    loop {
        let mut guards: Vec<(usize, Guard<'_>)> = Vec::with_capacity(order.len());
        for &i in &order {
            match objs[i].lock_until(deadline) {
                Some(g) => guards.push((i, g)),
                None => break,
            }
        }
        if guards.len() < order.len() {
            // The deadline passed while someone sat on a lock: time out, best effort
            // on our entries (they are stale once the claim is cancelled).
            drop(guards);
            if let Some(wb) = &wb {
                let _ = wb.cancel();
            }
            for &i in &overflow {
                let g = objs[i].lock();
                g.obj.file().ctl.overflow.fetch_sub(1, Ordering::Relaxed);
            }
            return Ok(WaitOutcome::TimedOut);
        }
        for (_, g) in &guards {
            g.obj.refresh_locked(g);
        }
        for (_, g) in &guards {
            if g.obj.kind == ObjectKind::Mutex {
                let owner = g.obj.state().load(Ordering::Relaxed) & OWNER_MASK;
                if owner != 0 && owner != me {
                    mutex::check_owner_locked(g);
                }
            }
        }
        let expired = deadline == Deadline::Now || deadline.remaining() == Some(Duration::ZERO);
        let mine = wb.as_ref().map(|b| (b.table.key, b.index));
        let done = complete(&guards, me, mine);
        if done || expired {
            let mut outcome = WaitOutcome::TimedOut;
            if done {
                let mut abandoned = None;
                for (i, g) in guards.iter().map(|(i, g)| (*i, g)) {
                    // `complete` checked every object under these locks, so each
                    // acquisition succeeds.
                    if let Ok(Some(true)) = g.obj.acquire_locked(g, me) {
                        abandoned = Some(abandoned.map_or(i, |k: usize| k.min(i)));
                    }
                }
                outcome = abandoned.map_or(WaitOutcome::Signaled(0), WaitOutcome::Abandoned);
            }
            if let Some(wb) = &wb {
                let _ = wb.cancel();
                for (_, g) in &guards {
                    queue::remove_wait(g, wb.table.key, wb.index, wb.generation);
                }
                for &i in &overflow {
                    objs[i].file().ctl.overflow.fetch_sub(1, Ordering::Relaxed);
                }
            }
            drop(guards);
            if done {
                for o in objs {
                    if o.kind == ObjectKind::Mutex {
                        abandon::note_owned(o);
                    }
                }
            }
            return Ok(outcome);
        }
        if wb.is_none() {
            let b = WaitBlock::take(objs)?;
            for (i, g) in &guards {
                let e = EntryVal {
                    table: b.table.key,
                    block: b.index,
                    generation: b.generation,
                    index: *i,
                    kind: ENTRY_ALL,
                    offered: false,
                };
                if !queue::push(g, e) {
                    g.obj.file().ctl.overflow.fetch_add(1, Ordering::Relaxed);
                    overflow.push(*i);
                }
            }
            wb = Some(b);
        }
        let b = wb.as_ref().expect("set above");
        let wake = &b.block().wake;
        // Still incomplete: give back what signalers set aside for us, so that it
        // goes to the other waiters (or stays for later arrivals) meanwhile.
        for (_, g) in &guards {
            queue::withdraw_offers(g, b.table.key, b.index);
        }
        // Read under the locks: a signal after we unlock changes it.
        let w = wake.load(Ordering::Acquire);
        let seqs: Vec<u32> = overflow
            .iter()
            .map(|&i| objs[i].seq().load(Ordering::Acquire))
            .collect();
        drop(guards);
        let mut slice = if has_mutex {
            owner_slice(objs.iter().copied(), me, deadline)
        } else {
            safety_net(deadline)
        };
        let mut timer_due = false;
        for o in objs.iter().filter(|o| o.kind == ObjectKind::Timer) {
            let due = timer::next_due(o);
            timer_due |= due != Deadline::Never && due.min(slice) == due;
            slice = slice.min(due);
        }
        let mut words = vec![(wake, w)];
        for (n, &i) in overflow.iter().enumerate() {
            words.push((objs[i].seq(), seqs[n]));
        }
        let woke = if timer_due {
            thread::with_precise_timers(|| futex::wait_many(&words, slice))
        } else {
            futex::wait_many(&words, slice)
        };
        if woke == Woke::TimedOut && has_mutex {
            check_owners(objs.iter().copied(), me, deadline);
        }
    }
}
