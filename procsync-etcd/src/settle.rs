//! The hand-off: after any change, an available object goes to the oldest queued waiter
//! that it satisfies (a wait-any waiter on any of its objects, a wait-all waiter only
//! when all of its objects are available to it at once), inside the transaction that
//! made it available. Owns the choice of waiter and what a grant takes; must not do I/O.

use procsync::WaitOutcome;

use crate::error::Result;
use crate::state::Who;
use crate::tx::{Grant, World};

/// The index a wait on `objs` would be satisfied with now, if any: the lowest
/// available index for wait-any, 0 for wait-all when every object is available.
pub(crate) fn satisfiable(w: &World, objs: &[String], all: bool, who: &Who) -> Option<usize> {
    let avail = |n: &String| w.objs.get(n).is_some_and(|o| o.available(who));
    if all {
        objs.iter().all(avail).then_some(0)
    } else {
        objs.iter().position(avail)
    }
}

/// Takes what a satisfied wait takes and gives the outcome (wait-all reports the lowest
/// abandoned index, as Win32's `WAIT_ABANDONED_0 + i`).
pub(crate) fn take(
    w: &mut World,
    objs: &[String],
    all: bool,
    index: usize,
    who: &Who,
) -> Result<WaitOutcome> {
    let picked: Vec<usize> = if all {
        (0..objs.len()).collect()
    } else {
        vec![index]
    };
    let mut abandoned = None;
    for i in picked {
        let id = w.unit_id(who.lease);
        let o = w
            .objs
            .get_mut(&objs[i])
            .expect("satisfiable objects are loaded");
        if o.take(who, || id)? && abandoned.is_none() {
            abandoned = Some(i);
        }
    }
    Ok(match abandoned {
        Some(i) => WaitOutcome::Abandoned(i),
        None => WaitOutcome::Signaled(index),
    })
}

/// Hands every available object among `names` to its oldest satisfiable waiters, in
/// queue order, for as long as it stays available.
pub(crate) fn settle(w: &mut World, names: &[String]) -> Result<()> {
    for n in names {
        let queue = w.queues.get(n).cloned().unwrap_or_default();
        for wid in queue {
            if w.grants.iter().any(|g| g.wid == wid) {
                continue;
            }
            let Some(wt) = w.waiters.get(&wid).cloned() else {
                continue;
            };
            if !w.objs.get(n).is_some_and(|o| o.available(&wt.who)) {
                // A mutex or an exhausted semaphore is available to no other waiter
                // either (recursion aside); an event that is not signaled to none.
                continue;
            }
            if let Some(i) = satisfiable(w, &wt.objs, wt.all, &wt.who) {
                let out = take(w, &wt.objs, wt.all, i, &wt.who)?;
                let (index, abandoned) = match out {
                    WaitOutcome::Abandoned(j) => (j, true),
                    _ => (i, false),
                };
                w.grants.push(Grant {
                    wid,
                    index,
                    abandoned,
                });
            }
        }
    }
    Ok(())
}
