//! What a completed async wait gives the task: [`Acquired`] (the outcome, plus the
//! ownership of any mutex it took), [`MutexGuard`] and [`SemaphorePermit`].
//!
//! Mutex ownership model: Win32 mutexes belong to a thread, and a tokio task moves
//! between worker threads. So the thread that acquired the mutex — a reactor thread for
//! [`crate::wait`] / [`crate::lock`], the call's own thread for [`crate::wait_all`] —
//! keeps owning it on behalf of the task, and a [`MutexGuard`] is the task's claim on
//! it. Dropping the guard (on any thread, in any task) sends the owner thread a message
//! and it releases the mutex; [`MutexGuard::unlock`] also waits for the release. If
//! the process dies while a guard lives, the owner thread dies with it and the mutex is
//! abandoned (AB-07, AB-08). A guard leaked with `mem::forget` keeps the mutex owned
//! until the process exits, like a sync thread that never releases.
//!
//! It must not wait on objects.

use std::future::poll_fn;
use std::sync::Arc;

use procsync::{Error, Handle, Result, WaitOutcome};

use crate::delivery::{Delivered, MutexOwner};
use crate::oneshot::Oneshot;
use crate::undo;

/// The result of an async wait: the Win32 outcome and, when a mutex was acquired, the
/// guard that keeps it owned. Semaphore units and auto-reset event signals acquired
/// are the caller's, as with the sync API (release a semaphore with `release`).
#[derive(Debug)]
pub struct Acquired {
    outcome: WaitOutcome,
    guard: Option<MutexGuard>,
}

impl Acquired {
    pub(crate) fn from_delivered(d: Delivered) -> Acquired {
        let abandoned = matches!(d.outcome, WaitOutcome::Abandoned(_));
        Acquired {
            outcome: d.outcome,
            guard: d.owner.map(|o| MutexGuard {
                owner: Some(o),
                abandoned,
            }),
        }
    }

    pub(crate) fn plain(outcome: WaitOutcome) -> Acquired {
        Acquired {
            outcome,
            guard: None,
        }
    }

    /// The outcome, as the sync wait would have returned it.
    pub fn outcome(&self) -> WaitOutcome {
        self.outcome
    }

    /// The index of the acquired object (`None` when timed out).
    pub fn index(&self) -> Option<usize> {
        match self.outcome {
            WaitOutcome::Signaled(i) | WaitOutcome::Abandoned(i) => Some(i),
            WaitOutcome::TimedOut => None,
        }
    }

    /// Whether the deadline passed with nothing acquired (TO-05).
    pub fn is_timed_out(&self) -> bool {
        self.outcome == WaitOutcome::TimedOut
    }

    /// The guard of the acquired mutex (or mutexes, for a wait-all), if any.
    pub fn into_guard(self) -> Option<MutexGuard> {
        self.guard
    }
}

/// Ownership of a mutex (or of every mutex of a wait-all) held for a task by the
/// thread that acquired it. Send it to any task; drop it or call
/// [`unlock`](MutexGuard::unlock) to release.
#[derive(Debug)]
#[must_use = "dropping the guard releases the mutex"]
pub struct MutexGuard {
    owner: Option<MutexOwner>,
    abandoned: bool,
}

impl MutexGuard {
    /// Whether the mutex was abandoned by its previous owner (AB-02; reported once).
    pub fn was_abandoned(&self) -> bool {
        self.abandoned
    }

    /// Releases the mutex and waits until its owner thread did: afterwards any thread
    /// or process may acquire it. Returns the previous recursion count (1).
    pub async fn unlock(mut self) -> Result<u32> {
        let Some(owner) = self.owner.take() else {
            return Err(Error::NotOwner);
        };
        let done = Arc::new(Oneshot::new());
        undo::release(owner, Some(done.clone()));
        match poll_fn(|cx| done.poll(cx)).await {
            Some(r) => r,
            None => Err(Error::unsupported(
                "the mutex's owner thread did not answer",
            )),
        }
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        if let Some(o) = self.owner.take() {
            undo::release(o, None);
        }
    }
}

/// One unit of a semaphore, released (`release(1)`) when dropped.
#[derive(Debug)]
#[must_use = "dropping the permit releases the unit at once"]
pub struct SemaphorePermit {
    handle: Option<Arc<Handle>>,
}

impl SemaphorePermit {
    pub(crate) fn new(handle: Arc<Handle>) -> SemaphorePermit {
        SemaphorePermit {
            handle: Some(handle),
        }
    }

    /// Keeps the unit: nothing is released.
    pub fn forget(mut self) {
        self.handle = None;
    }

    /// Releases the unit now; returns the semaphore's previous count.
    pub fn release(mut self) -> Result<u32> {
        match self.handle.take() {
            Some(h) => h.release(1),
            None => Ok(0),
        }
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            // Cannot fail short of another party over-releasing the semaphore meanwhile.
            let _ = h.release(1);
        }
    }
}
