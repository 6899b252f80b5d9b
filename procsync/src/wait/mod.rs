//! Waiting: one object, any of up to 64, all of up to 64, signal-and-wait.
//!
//! A waiter first tries every object (lock-free, or under its lock when waiters are
//! queued or a mutex's owner must be checked). If it must block, it arms its thread's
//! wait block (`park`): one futex word of its own and a claim word. It queues an entry
//! naming that block in each object, then sleeps on its doorbell alone, however many
//! objects it waits on. Signallers hand objects over under their lock
//! (`obj::queue::hand_off`): a wait-any is claimed with one compare-and-swap, so
//! exactly one object satisfies it; a wait-all is completed by the signal that makes
//! its whole set available (`obj::signal`). A waiter whose block lives in a public
//! segment confirms its grant in the object before believing it (a signaller marks the
//! queue entry granted; see `any::public_outcome` and the end of `all::attempt`).
//!
//! It must not touch an object's state except through `obj`.

pub(crate) mod abandon;
pub(crate) mod all;
pub(crate) mod any;
pub(crate) mod detached;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::obj::Object;
use crate::park::Claim;
use crate::sys::time::Deadline;

/// Win32 wait results (`WAIT_OBJECT_0 + i`, `WAIT_ABANDONED_0 + i`, `WAIT_TIMEOUT`).
/// Failures (`WAIT_FAILED`) are `Err`.
#[must_use = "a wait may time out or report an abandoned mutex; match on the outcome"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Object `i` (0 for a single wait or a wait-all) was acquired.
    Signaled(usize),
    /// Mutex `i` was acquired, abandoned by its previous owner; this is reported once.
    Abandoned(usize),
    /// The timeout passed; nothing was acquired or changed (TO-05).
    TimedOut,
}

/// Largest number of objects in one wait (LM-01, `MAXIMUM_WAIT_OBJECTS`).
pub use crate::shm::layout::MAX_WAIT_OBJECTS;

/// Whether a wait on `objs` needs a public wait block (see `park::segment`).
pub(crate) fn needs_public(objs: &[&Arc<Object>]) -> bool {
    objs.iter().any(|o| !o.own_ns)
}

/// The outcome a claim announces, if it is a grant.
pub(crate) fn outcome_of(c: Claim) -> Option<WaitOutcome> {
    match c {
        Claim::Signaled(i) => Some(WaitOutcome::Signaled(i)),
        Claim::Abandoned(i) => Some(WaitOutcome::Abandoned(i)),
        _ => None,
    }
}

/// A short deadline for clean-up that must not hold a wait up for long.
pub(crate) fn soon() -> Deadline {
    Deadline::At(Instant::now() + Duration::from_millis(200))
}

/// The value of `obj`'s change counter (bumped by every locked state change), for
/// [`until_changed`].
pub(crate) fn change_count(obj: &Object) -> u32 {
    obj.seq().load(std::sync::atomic::Ordering::Acquire)
}

/// Sleeps until `obj` changes (its change counter moves from `seen`, see
/// [`change_count`]), [`wake_watchers`] is called, or `deadline`: for watchers that
/// take nothing (a timer's completion-callback thread).
pub(crate) fn until_changed(obj: &Object, seen: u32, deadline: Deadline) {
    crate::sys::futex::wait(obj.seq(), seen, deadline);
}

/// Wakes every thread in [`until_changed`] on `obj`.
pub(crate) fn wake_watchers(obj: &Object) {
    obj.seq().fetch_add(1, std::sync::atomic::Ordering::Release);
    crate::sys::futex::wake(obj.seq(), u32::MAX);
}
