//! The public async functions and the [`AsHandle`] / [`AsyncWait`] traits: argument
//! checks (the same as the sync calls, so bad input fails before anything happens),
//! then a [`Wait`] or [`WaitAll`] future.
//!
//! It must not wait or signal anything itself.

use std::future::Future;
use std::sync::Arc;

use procsync::{
    Access, Error, Event, Handle, MAX_WAIT_OBJECTS, Mutex, ObjectKind, ObjectState, Result,
    Semaphore,
};
use tokio::time::Instant;

use crate::all::WaitAll;
use crate::guard::{Acquired, MutexGuard, SemaphorePermit};
use crate::wait::{Handles, Wait};

/// Something that names a procsync object. A wait holds its own reference to the
/// object while pending, so that its future is `'static`: for a [`Handle`] (and the
/// typed wrappers) that is a duplicate handle, one more descriptor per pending wait
/// until a reactor serves the object (then one per object); an `Arc<Handle>` is shared
/// instead, at no cost.
pub trait AsHandle {
    /// The handle.
    fn as_handle(&self) -> &Handle;

    /// A reference to the same object that the wait may keep.
    fn share(&self) -> Result<Arc<Handle>> {
        self.as_handle().duplicate(None).map(Arc::new)
    }
}

impl AsHandle for Handle {
    fn as_handle(&self) -> &Handle {
        self
    }
}

impl AsHandle for Arc<Handle> {
    fn as_handle(&self) -> &Handle {
        self
    }

    fn share(&self) -> Result<Arc<Handle>> {
        Ok(self.clone())
    }
}

macro_rules! typed {
    ($($t:ty),*) => {$(
        impl AsHandle for $t {
            fn as_handle(&self) -> &Handle {
                self
            }
        }
    )*};
}
typed!(Event, Mutex, Semaphore);

fn checked(h: Arc<Handle>) -> Result<Arc<Handle>> {
    if !h.access().contains(Access::SYNCHRONIZE) {
        return Err(Error::AccessDenied {
            what: "an async wait needs the `synchronize` right, which this handle lacks; open it with that right".into(),
        });
    }
    // Cancel safety gives back a semaphore unit or an auto-reset signal with
    // `Handle::give_back`, which needs the modify right; without it a cancelled wait
    // could lose what it took, so such a wait is refused up front.
    if h.access().contains(Access::MODIFY) {
        return Ok(h);
    }
    let consumable = match h.query()? {
        ObjectState::Semaphore { .. } => Some("a semaphore"),
        ObjectState::Event { manual: false, .. } => Some("an auto-reset event"),
        ObjectState::Timer { manual: false, .. } => Some("a synchronization timer"),
        _ => None,
    };
    if let Some(what) = consumable
        && !h.access().contains(Access::MODIFY)
    {
        return Err(Error::AccessDenied {
            what: format!(
                "an async wait on {what} also needs the `modify` right, so that a cancelled wait can give back what it took; open the handle with all rights"
            ),
        });
    }
    Ok(h)
}

fn targets<H: AsHandle + ?Sized>(hs: &[&H]) -> Result<Handles> {
    if hs.is_empty() || hs.len() > MAX_WAIT_OBJECTS {
        return Err(Error::InvalidArgument {
            why: format!(
                "a wait takes 1 to {MAX_WAIT_OBJECTS} objects, not {}",
                hs.len()
            ),
        });
    }
    Ok(match hs {
        [one] => Handles::One([checked(one.share()?)?]),
        _ => Handles::Many(
            hs.iter()
                .map(|h| checked(h.share()?))
                .collect::<Result<_>>()?,
        ),
    })
}

/// `WaitForSingleObject`, async: completes when the object is acquired. Cancel-safe:
/// dropping the future never loses a signal, unit or mutex (see the crate docs).
pub fn wait<H: AsHandle + ?Sized>(h: &H) -> Wait {
    Wait::new(targets(&[h]), None)
}

/// `WaitForMultipleObjects(bWaitAll = FALSE)`, async: acquires one object; the
/// outcome's index says which. Objects already signaled when the future is first polled
/// are taken lowest index first (WY-03), unless the list holds a mutex.
pub fn wait_any<H: AsHandle + ?Sized>(hs: &[&H]) -> Wait {
    Wait::new(targets(hs), None)
}

/// `WaitForMultipleObjects(bWaitAll = TRUE)`, async: all objects in one atomic step.
/// Costs one thread while pending (see [`WaitAll`]).
pub fn wait_all<H: AsHandle + ?Sized>(hs: &[&H]) -> WaitAll {
    WaitAll::new(targets(hs).map(Handles::into_vec), None)
}

/// [`wait_all`] with a deadline, enforced by the blocking wait-all itself.
pub fn wait_all_until<H: AsHandle + ?Sized>(hs: &[&H], deadline: Instant) -> WaitAll {
    WaitAll::new(
        targets(hs).map(Handles::into_vec),
        Some(deadline.into_std()),
    )
}

/// `SignalObjectAndWait`, async: signals `signal` (event: set; semaphore: release 1)
/// when first polled, then waits on `wait`. The wait side is checked first, so an error
/// signals nothing (SW-02). A mutex cannot be the signal side: a task does not own a
/// mutex, its [`MutexGuard`] does; use [`MutexGuard::unlock`] then [`wait`].
pub fn signal_and_wait<S, W>(signal: &S, wait: &W) -> Wait
where
    S: AsHandle + ?Sized,
    W: AsHandle + ?Sized,
{
    let checked = targets(&[wait]).and_then(|t| {
        let s = signal.as_handle();
        match s.kind() {
            ObjectKind::Event | ObjectKind::Semaphore => Ok((t, signal.share()?)),
            ObjectKind::Mutex => Err(Error::InvalidArgument {
                why: "an async task releases a mutex through its MutexGuard, not signal_and_wait; call guard.unlock().await, then wait".into(),
            }),
            ObjectKind::Timer => Err(Error::WrongType {
                what: "signal_and_wait cannot signal a timer".into(),
            }),
        }
    });
    match checked {
        Ok((t, s)) => Wait::new(Ok(t), Some(s)),
        Err(e) => Wait::new(Err(e), None),
    }
}

/// Runs `wait` until `deadline`: `TimedOut` with nothing acquired, or the acquisition
/// (never both, TO-06). Any `Wait` future works, so this is also how a deadline is put
/// on [`wait_any`] and [`signal_and_wait`]; `tokio::time::timeout` works the same way.
pub async fn until(deadline: Instant, wait: Wait) -> Result<Acquired> {
    match tokio::time::timeout_at(deadline, wait).await {
        Ok(r) => r,
        // The future was dropped inside timeout_at: whatever reached it was given back.
        Err(_) => Ok(Acquired::plain(procsync::WaitOutcome::TimedOut)),
    }
}

/// [`wait`] with a deadline.
pub fn wait_until<H: AsHandle + ?Sized>(
    h: &H,
    deadline: Instant,
) -> impl Future<Output = Result<Acquired>> + Send + 'static {
    until(deadline, wait(h))
}

/// [`wait_any`] with a deadline.
pub fn wait_any_until<H: AsHandle + ?Sized>(
    hs: &[&H],
    deadline: Instant,
) -> impl Future<Output = Result<Acquired>> + Send + 'static {
    until(deadline, wait_any(hs))
}

/// [`signal_and_wait`] with a deadline on the wait.
pub fn signal_and_wait_until<S, W>(
    signal: &S,
    wait: &W,
    deadline: Instant,
) -> impl Future<Output = Result<Acquired>> + Send + 'static
where
    S: AsHandle + ?Sized,
    W: AsHandle + ?Sized,
{
    until(deadline, signal_and_wait(signal, wait))
}

fn need(h: &Handle, kind: ObjectKind, op: &str) -> Result<()> {
    if h.kind() == kind {
        Ok(())
    } else {
        Err(Error::WrongType {
            what: format!("`{op}` needs a {kind:?}, not a {:?}", h.kind()),
        })
    }
}

/// Async `WaitForSingleObject` on a mutex, as a guard (see [`MutexGuard`] for who
/// owns the mutex while the guard lives).
pub fn lock<H: AsHandle + ?Sized>(
    m: &H,
) -> impl Future<Output = Result<MutexGuard>> + Send + 'static {
    let w = need(m.as_handle(), ObjectKind::Mutex, "lock").map(|()| wait(m));
    async move { guard_of(w?.await?) }
}

/// [`lock`] with a deadline: `None` when it passed with the mutex not acquired.
pub fn lock_until<H: AsHandle + ?Sized>(
    m: &H,
    deadline: Instant,
) -> impl Future<Output = Result<Option<MutexGuard>>> + Send + 'static {
    let w = need(m.as_handle(), ObjectKind::Mutex, "lock").map(|()| wait(m));
    async move {
        let a = until(deadline, w?).await?;
        if a.is_timed_out() {
            return Ok(None);
        }
        guard_of(a).map(Some)
    }
}

fn guard_of(a: Acquired) -> Result<MutexGuard> {
    a.into_guard()
        .ok_or_else(|| Error::unsupported("a mutex wait completed without a guard (a bug)"))
}

/// Async wait on a semaphore, as a permit that releases its unit when dropped.
pub fn acquire<H: AsHandle + ?Sized>(
    s: &H,
) -> impl Future<Output = Result<SemaphorePermit>> + Send + 'static {
    let p = prepare_acquire(s);
    async move {
        let (h, w) = p?;
        let a = w.await?;
        debug_assert!(!a.is_timed_out());
        Ok(SemaphorePermit::new(h))
    }
}

/// [`acquire`] with a deadline: `None` when it passed with no unit taken.
pub fn acquire_until<H: AsHandle + ?Sized>(
    s: &H,
    deadline: Instant,
) -> impl Future<Output = Result<Option<SemaphorePermit>>> + Send + 'static {
    let p = prepare_acquire(s);
    async move {
        let (h, w) = p?;
        let a = until(deadline, w).await?;
        Ok((!a.is_timed_out()).then(|| SemaphorePermit::new(h)))
    }
}

fn prepare_acquire<H: AsHandle + ?Sized>(s: &H) -> Result<(Arc<Handle>, Wait)> {
    need(s.as_handle(), ObjectKind::Semaphore, "acquire")?;
    let h = s.share()?;
    let w = Wait::new(checked(h.clone()).map(|h| Handles::One([h])), None);
    Ok((h, w))
}

/// Method forms of [`wait`] and [`wait_until`] on anything that names an object.
pub trait AsyncWait: AsHandle {
    /// [`wait`].
    fn wait_async(&self) -> Wait {
        wait(self)
    }

    /// [`wait_until`].
    fn wait_async_until(
        &self,
        deadline: Instant,
    ) -> impl Future<Output = Result<Acquired>> + Send + 'static {
        wait_until(self, deadline)
    }
}

impl<T: AsHandle + ?Sized> AsyncWait for T {}
