//! Several object locks held at once, always taken in ascending object-id order: the
//! one global lock order of procsync (the analogue of ntsync's "wait-all lock before
//! any object lock"). Whoever holds more than one object lock got them through here;
//! everyone else holds one at a time. So there is no cycle, and no deadlock.
//!
//! Taking a set never sleeps while holding part of it: the first lock is waited for
//! (bounded), every later one is only tried; if one is busy, everything is let go, we
//! wait for that one alone, and start again. After a few rounds we fall back to
//! waiting in order, which the global order keeps deadlock-free.

use std::sync::Arc;

use super::{Guard, Object};
use crate::error::Result;
use crate::sys::time::Deadline;

/// Guards of several objects, in ascending object-id order.
pub(crate) struct LockSet<'a> {
    guards: Vec<Guard<'a>>,
    /// Dropped after `guards` (fields drop in order): the waiters granted under the
    /// locks are rung once every lock is let go, on unwinding too.
    _rings: crate::park::HeldRings,
}

/// Rounds of "try the rest, else let go" before waiting in order.
const POLITE_ROUNDS: usize = 8;

impl<'a> LockSet<'a> {
    /// Locks every object of `objs` (distinct ids), giving up at `deadline` (`None`
    /// when the deadline passed; `Err` when a lock stays held past its bound).
    pub(crate) fn lock(objs: &[&'a Object], deadline: Deadline) -> Result<Option<LockSet<'a>>> {
        let mut order: Vec<&'a Object> = objs.to_vec();
        order.sort_by_key(|o| o.id);
        order.dedup_by_key(|o| o.id);
        for round in 0.. {
            let polite = round < POLITE_ROUNDS;
            let mut guards: Vec<Guard<'a>> = Vec::with_capacity(order.len());
            let mut busy = None;
            for (k, o) in order.iter().enumerate() {
                if k == 0 || !polite {
                    match o.lock_within(deadline)? {
                        Some(g) => guards.push(g),
                        None => return Ok(None),
                    }
                } else if let Some(g) = o.try_lock() {
                    guards.push(g);
                } else {
                    busy = Some(*o);
                    break;
                }
            }
            match busy {
                None => return Ok(Some(LockSet::new(guards))),
                Some(o) => {
                    drop(guards);
                    // Wait for the busy one alone, holding nothing else.
                    match o.lock_within(deadline)? {
                        Some(g) => drop(g),
                        None => return Ok(None),
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// One guard already held.
    pub(crate) fn single(g: Guard<'a>) -> LockSet<'a> {
        LockSet::new(vec![g])
    }

    fn new(guards: Vec<Guard<'a>>) -> LockSet<'a> {
        LockSet {
            guards,
            _rings: crate::park::HeldRings::new(),
        }
    }

    /// The guard of object `id`, if held.
    pub(crate) fn get(&self, id: u64) -> Option<&Guard<'a>> {
        self.guards
            .binary_search_by_key(&id, |g| g.obj().id)
            .ok()
            .map(|k| &self.guards[k])
    }

    /// Every guard, in lock order.
    pub(crate) fn guards(&self) -> &[Guard<'a>] {
        &self.guards
    }
}

/// Where a signaller may find an object of a queued wait-all set that it does not map:
/// the waiter's descriptor of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub id: u64,
    /// The waiting process (kernel-reported creator of its segment).
    pub pid: u32,
    pub fd: u32,
    /// The namespace key the object must have come from: the owner's for a private
    /// segment (all its objects are that user's), `GLOBAL_NS` for a public one.
    pub ns_key: u32,
}

/// The objects of wait-all sets that a signaller can lock: those this process maps
/// (looked up by id; ids are random 64-bit values, unique in practice), and the others
/// fetched from the waiting process by descriptor (`pidfd_getfd`: same user, or root)
/// and kept only if they are what the waiter recorded (the same object id). What
/// cannot be reached is left out; its wait-all is rung instead.
pub(crate) fn reachable(members: &[Member]) -> Vec<Arc<Object>> {
    members
        .iter()
        .filter_map(|m| super::lookup(m.id).or_else(|| fetch(m)))
        .collect()
}

fn fetch(m: &Member) -> Option<Arc<Object>> {
    let fd = crate::sys::unix::take_from_process(m.pid, u64::from(m.fd)).ok()?;
    let o = Object::map(
        super::Backing::Unnamed(fd),
        format!("<descriptor {} of process {}>", m.fd, m.pid).into(),
        std::path::PathBuf::new(),
        super::NsKey::of(m.ns_key),
        format!("<object {:016x} of process {}>", m.id, m.pid),
    )
    .ok()?;
    (o.id == m.id).then_some(o)
}
