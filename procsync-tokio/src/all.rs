//! The [`WaitAll`] future: an async `WaitForMultipleObjects(bWaitAll = TRUE)`.
//!
//! A wait-all is atomic over its objects, which a reactor's wait-any cannot express,
//! so each pending wait-all runs procsync's blocking `wait_all` on a thread of its
//! own, in slices of [`SLICE`] so that it notices cancellation. A slice that times out
//! acquires nothing (TO-05); one that succeeds after the future was dropped gives
//! everything back (TO-06). When the list holds mutexes the thread owns them on the
//! task's behalf and lives until the guard is dropped.
//!
//! It must not block the polling thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use procsync::{Error, Handle, Result, WaitOutcome};

use crate::delivery::{Delivered, MutexOwner, UnlockDone};
use crate::guard::Acquired;
use crate::object::{Target, give_back};
use crate::oneshot::Oneshot;
use crate::undo;

/// How long one blocking slice of a wait-all lasts: the bound on how long a dropped
/// wait-all keeps its thread.
pub const SLICE: Duration = Duration::from_millis(50);

type Waiter = Oneshot<Result<Delivered>>;

/// Wait-all threads started and not yet done closing their handles.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many wait-all threads are running (pending wait-alls, and wait-alls whose
/// guard still holds mutexes). It drops only once a thread closed its handles.
pub fn wait_all_threads() -> usize {
    LIVE.load(Ordering::SeqCst)
}
type Start = (Result<Vec<Arc<Handle>>>, Option<Instant>);

/// A pending async wait-all. `'static`; one thread while pending (see the module).
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct WaitAll {
    /// The checked handles and the deadline, until the first poll starts the thread.
    start: Option<Start>,
    waiter: Option<Arc<Waiter>>,
}

impl WaitAll {
    pub(crate) fn new(handles: Result<Vec<Arc<Handle>>>, deadline: Option<Instant>) -> WaitAll {
        WaitAll {
            start: Some((handles, deadline)),
            waiter: None,
        }
    }
}

impl Future for WaitAll {
    type Output = Result<Acquired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some((handles, deadline)) = this.start.take() {
            let targets = handles?
                .into_iter()
                .map(Target::new)
                .collect::<Result<Vec<_>>>()?;
            let waiter = Arc::new(Oneshot::new());
            let w = waiter.clone();
            LIVE.fetch_add(1, Ordering::SeqCst);
            std::thread::Builder::new()
                .name("procsync-wait-all".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    run(targets, deadline, &w);
                    LIVE.fetch_sub(1, Ordering::SeqCst);
                })
                .map_err(|e| {
                    LIVE.fetch_sub(1, Ordering::SeqCst);
                    Error::unsupported(format!(
                        "starting a wait-all thread failed ({e}); raise the thread limit"
                    ))
                })?;
            this.waiter = Some(waiter);
        }
        let Some(waiter) = &this.waiter else {
            panic!("procsync_tokio::WaitAll polled after it completed");
        };
        match waiter.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(got) => {
                this.waiter = None;
                Poll::Ready(match got {
                    Some(Ok(d)) => Ok(Acquired::from_delivered(d)),
                    Some(Err(e)) => Err(e),
                    None => Err(Error::unsupported("the wait-all thread went away")),
                })
            }
        }
    }
}

impl Drop for WaitAll {
    fn drop(&mut self) {
        if let Some(w) = &self.waiter
            && let Some(Ok(d)) = w.cancel()
        {
            undo::undo(d);
        }
    }
}

fn run(targets: Vec<Target>, deadline: Option<Instant>, waiter: &Waiter) {
    let refs: Vec<&Handle> = targets.iter().map(|t| &*t.handle).collect();
    let outcome = loop {
        if !waiter.is_pending() {
            return;
        }
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        match procsync::wait_all(&refs, Some(slice)) {
            Ok(WaitOutcome::TimedOut) if deadline.is_some_and(|d| Instant::now() >= d) => {
                // Nothing was acquired (TO-05).
                let _ = waiter.complete(Ok(Delivered {
                    outcome: WaitOutcome::TimedOut,
                    taken: Vec::new(),
                    owner: None,
                }));
                return;
            }
            Ok(WaitOutcome::TimedOut) => continue,
            Ok(o) => break o,
            Err(e) => {
                let _ = waiter.complete(Err(e));
                return;
            }
        }
    };
    let mutexes: Vec<&Target> = targets.iter().filter(|t| t.is_mutex()).collect();
    let (tx, rx) = mpsc::channel::<Option<UnlockDone>>();
    let d = Delivered {
        outcome,
        taken: targets.iter().filter(|t| !t.is_mutex()).cloned().collect(),
        owner: (!mutexes.is_empty()).then_some(MutexOwner::Thread(tx)),
    };
    match waiter.complete(Ok(d)) {
        Ok(()) => {
            if mutexes.is_empty() {
                return;
            }
            // Owner of the mutexes until the guard says so (or is dropped: Err).
            let done = rx.recv().ok().flatten();
            let mut res = Ok(1);
            for m in &mutexes {
                let r = m.handle.release(1);
                if r.is_err() {
                    res = r;
                }
            }
            if let Some(d) = done {
                let _ = d.complete(res);
            }
        }
        Err(Ok(d)) => {
            // Dropped meanwhile: as if the wait had timed out before the signal. The
            // mutexes are released here, by their owner.
            drop(d.owner);
            for t in &targets {
                give_back(t);
            }
        }
        Err(Err(_)) => {}
    }
}
