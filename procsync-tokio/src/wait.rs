//! The [`Wait`] future: one async wait-any (a single wait is a wait-any of one), served
//! by the reactor pool, optionally preceded by a signal (signal-and-wait).
//!
//! First poll: signal, then a non-blocking poll of the objects on the polling thread
//! (never when a mutex is listed: its owner would be a runtime worker thread), then
//! registration with the reactors. Drop: cancels; an acquisition already handed over
//! and not yet taken is undone (TO-06).
//!
//! Inside a tokio runtime with I/O enabled, and when no mutex is listed, the wait takes
//! the io_uring path instead (`uring`): a [`DetachedWait`] whose sleeps are rung through
//! the runtime's bell (a pipe in its epoll) or, where a bell cannot serve, are io_uring
//! futex waits, so that a signal wakes the runtime's thread directly.
//!
//! It must not block the polling thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use procsync::detached::{DetachedWait, Progress};
use procsync::{Handle, ObjectKind, Result, WaitOutcome};

use crate::guard::Acquired;
use crate::object::Target;
use crate::oneshot::Oneshot;
use crate::reactor::{self, Waiter};
use crate::undo;
use crate::uring::{self, Driver, Ended};

/// A wait's own handles: most waits name one, which then needs no allocation.
pub(crate) enum Handles {
    One([Arc<Handle>; 1]),
    Many(Vec<Arc<Handle>>),
}

impl std::ops::Deref for Handles {
    type Target = [Arc<Handle>];
    fn deref(&self) -> &[Arc<Handle>] {
        match self {
            Handles::One(one) => one,
            Handles::Many(v) => v,
        }
    }
}

impl Handles {
    pub(crate) fn into_vec(self) -> Vec<Arc<Handle>> {
        match self {
            Handles::One(one) => one.into(),
            Handles::Many(v) => v,
        }
    }
}

/// A pending async wait on one object or any of up to 64. Output: the [`Acquired`]
/// outcome (never `TimedOut` unless a deadline variant built it). `'static`: it holds
/// its own handles, so it can be spawned.
#[must_use = "futures do nothing unless awaited"]
pub struct Wait {
    stage: Stage,
}

enum Stage {
    Start {
        handles: Result<Handles>,
        signal: Option<Arc<Handle>>,
    },
    Registered {
        waiter: Arc<Waiter>,
        reactors: Vec<usize>,
    },
    /// The io_uring path: `op` is the outstanding futex wait, `until` its timeout.
    Direct {
        wait: Box<DetachedWait>,
        driver: Arc<Driver>,
        op: Option<(u64, Option<std::time::Instant>)>,
    },
    Finished,
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.stage {
            Stage::Start { .. } => "start",
            Stage::Registered { .. } => "registered",
            Stage::Direct { .. } => "direct",
            Stage::Finished => "finished",
        };
        f.debug_struct("Wait").field("stage", &s).finish()
    }
}

impl Wait {
    pub(crate) fn new(handles: Result<Handles>, signal: Option<Arc<Handle>>) -> Wait {
        Wait {
            stage: Stage::Start { handles, signal },
        }
    }

    fn start(&mut self, cx: &mut Context<'_>) -> Poll<Result<Acquired>> {
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
        if !handles.iter().any(|h| h.kind() == ObjectKind::Mutex)
            && let Some(driver) = uring::driver()
        {
            let mut wait = match &handles[..] {
                [one] => DetachedWait::boxed(&[&**one], None)?,
                _ => {
                    let refs: Vec<&Handle> = handles.iter().map(|h| &**h).collect();
                    DetachedWait::boxed(&refs, None)?
                }
            };
            if let Some(bell) = driver.bell() {
                wait.set_bell(bell);
            }
            self.stage = Stage::Direct {
                wait,
                driver,
                op: None,
            };
            return self.poll_direct(cx);
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
            .into_vec()
            .into_iter()
            .map(Target::new)
            .collect::<Result<Vec<_>>>()?;
        let waiter = Arc::new(Oneshot::new());
        let reactors = reactor::register(&targets, &waiter)?;
        self.stage = Stage::Registered { waiter, reactors };
        Poll::Pending
    }
}

impl Wait {
    /// Advances the io_uring path as far as it goes without sleeping.
    fn poll_direct(&mut self, cx: &mut Context<'_>) -> Poll<Result<Acquired>> {
        let Stage::Direct { wait, driver, op } = &mut self.stage else {
            unreachable!("poll_direct runs in the direct stage");
        };
        let r = loop {
            let progress = match *op {
                None => wait.start(),
                Some((key, until)) => match driver.poll(key, cx) {
                    Poll::Pending => return Poll::Pending,
                    // The driver is gone (its runtime shut down) with the futex wait
                    // still outstanding: `op` stays, for the orphaning below.
                    Poll::Ready(Err(e)) => break Err(procsync::Error::from(e)),
                    Poll::Ready(ended) => {
                        *op = None;
                        match ended {
                            Ok(Ended::Woken) => wait.woken(),
                            Ok(Ended::Cancelled)
                                if until.is_some_and(|t| std::time::Instant::now() >= t) =>
                            {
                                wait.timed_out()
                            }
                            Ok(Ended::Cancelled) => wait.woken(),
                            Err(e) => Err(procsync::Error::from(e)),
                        }
                    }
                },
            };
            match progress {
                Ok(Progress::Done(outcome)) => break Ok(Acquired::plain(outcome)),
                Ok(Progress::Sleep(on)) => {
                    let key = match on.bell() {
                        Some(bell) => driver.park(&on, bell, cx.waker().clone()),
                        None => match driver.submit(&on, cx.waker().clone()) {
                            Ok(key) => key,
                            Err(e) => break Err(procsync::Error::from(e)),
                        },
                    };
                    *op = Some((key, on.until()));
                }
                Err(e) => break Err(e),
            }
        };
        // After an error, nothing the wait took is kept.
        end_direct(std::mem::replace(&mut self.stage, Stage::Finished));
        Poll::Ready(r)
    }
}

/// Ends the io_uring path's stage: the wait is cancelled, giving back whatever a
/// signaller handed over (TO-06); while its futex wait is outstanding the driver keeps
/// it (and so its block) until the kernel reports the futex wait finished.
fn end_direct(stage: Stage) {
    if let Stage::Direct { wait, driver, op } = stage {
        match op {
            Some((key, _)) => driver.orphan(key, wait),
            None => drop(wait), // its drop cancels
        }
    }
}

impl Future for Wait {
    type Output = Result<Acquired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Stage::Start { .. } = this.stage
            && let Poll::Ready(r) = this.start(cx)
        {
            return Poll::Ready(r);
        }
        if let Stage::Direct { .. } = this.stage {
            return this.poll_direct(cx);
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
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::Registered { waiter, reactors } => undo::cancel(&waiter, &reactors),
            direct @ Stage::Direct { .. } => end_direct(direct),
            _ => {}
        }
    }
}
