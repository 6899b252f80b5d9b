//! The [`Wait`] future: one async wait-any (a single wait is a wait-any of one), served
//! by the reactor pool, optionally preceded by a signal (signal-and-wait).
//!
//! First poll: signal, then a non-blocking poll of the objects on the polling thread
//! (never when a mutex is listed: its owner would be a runtime worker thread), then
//! registration with the reactors. Drop: cancels; an acquisition already handed over
//! and not yet taken is undone (TO-06).
//!
//! It must not block the polling thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use procsync::{Handle, ObjectKind, Result, WaitOutcome};

use crate::guard::Acquired;
use crate::object::Target;
use crate::oneshot::Oneshot;
use crate::reactor::{self, Waiter};
use crate::undo;

/// A pending async wait on one object or any of up to 64. Output: the [`Acquired`]
/// outcome (never `TimedOut` unless a deadline variant built it). `'static`: it holds
/// its own handles, so it can be spawned.
#[must_use = "futures do nothing unless awaited"]
pub struct Wait {
    stage: Stage,
}

enum Stage {
    Start {
        handles: Result<Vec<Arc<Handle>>>,
        signal: Option<Arc<Handle>>,
    },
    Registered {
        waiter: Arc<Waiter>,
        reactors: Vec<usize>,
    },
    Finished,
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.stage {
            Stage::Start { .. } => "start",
            Stage::Registered { .. } => "registered",
            Stage::Finished => "finished",
        };
        f.debug_struct("Wait").field("stage", &s).finish()
    }
}

impl Wait {
    pub(crate) fn new(handles: Result<Vec<Arc<Handle>>>, signal: Option<Arc<Handle>>) -> Wait {
        Wait {
            stage: Stage::Start { handles, signal },
        }
    }

    fn start(&mut self) -> Poll<Result<Acquired>> {
        let Stage::Start { handles, signal } = std::mem::replace(&mut self.stage, Stage::Finished)
        else {
            unreachable!("start runs in the start stage");
        };
        let handles = handles?;
        if let Some(s) = signal {
            match s.kind() {
                ObjectKind::Event => {
                    s.set()?;
                }
                _ => {
                    s.release(1)?;
                }
            }
        }
        if !handles.iter().any(|h| h.kind() == ObjectKind::Mutex) {
            let refs: Vec<&Handle> = handles.iter().map(|h| &**h).collect();
            match procsync::wait_any(&refs, Some(Duration::ZERO))? {
                WaitOutcome::TimedOut => {}
                got => return Poll::Ready(Ok(Acquired::plain(got))),
            }
        }
        // Identity and undo rule are only needed once a reactor is involved.
        let targets = handles
            .into_iter()
            .map(Target::new)
            .collect::<Result<Vec<_>>>()?;
        let waiter = Arc::new(Oneshot::new());
        let reactors = reactor::register(&targets, &waiter)?;
        self.stage = Stage::Registered { waiter, reactors };
        Poll::Pending
    }
}

impl Future for Wait {
    type Output = Result<Acquired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Stage::Start { .. } = this.stage
            && let Poll::Ready(r) = this.start()
        {
            return Poll::Ready(r);
        }
        let Stage::Registered { waiter, reactors } = &this.stage else {
            panic!("procsync_tokio::Wait polled after it completed");
        };
        match waiter.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(got) => {
                if reactors.len() > 1 {
                    // The other reactors still queue this waiter: let them drop it now
                    // rather than at their next signal.
                    reactor::poke(reactors);
                }
                this.stage = Stage::Finished;
                Poll::Ready(match got {
                    Some(Ok(d)) => Ok(Acquired::from_delivered(d)),
                    Some(Err(e)) => Err(e),
                    None => Err(procsync::Error::unsupported(
                        "the wait was cancelled while being polled",
                    )),
                })
            }
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Stage::Registered { waiter, reactors } = &self.stage {
            undo::cancel(waiter, reactors);
        }
    }
}
