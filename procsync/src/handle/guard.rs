//! RAII acquisition: [`MutexGuard`] (from [`Mutex::lock`] and its forms) releases the
//! mutex on drop, [`SemaphorePermit`] (from [`Semaphore::acquire`] and its forms) gives
//! its unit back on drop.
//!
//! It only waits and releases through [`Handle`](crate::Handle); the explicit Win32 forms
//! ([`Mutex::unlock`], [`Handle::release`](crate::Handle::release)) stay for code that acquires
//! through a wait.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::typed::{Mutex, Semaphore};
use crate::error::Result;
use crate::wait::WaitOutcome;

/// Ownership of a [`Mutex`], released when dropped (or by [`MutexGuard::unlock`], which
/// reports a failed release that a drop can only ignore).
///
/// Not `Send`: a Win32 mutex is owned by a thread, and only that thread may release it.
/// The mutex is recursive, so one thread may hold several guards of it at once; each
/// releases one acquisition.
///
/// ```compile_fail,E0277
/// fn needs_send<T: Send>(_: T) {}
/// let m = procsync::Mutex::builder().create().unwrap();
/// needs_send(m.lock().unwrap()); // a guard may not leave its thread
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard releases the mutex at once"]
pub struct MutexGuard<'a> {
    mutex: &'a Mutex,
    abandoned: bool,
    /// `!Send` and `!Sync`: ownership belongs to the acquiring thread.
    _thread: PhantomData<*const ()>,
}

impl MutexGuard<'_> {
    /// Whether the previous owner died holding the mutex (`WAIT_ABANDONED`): the caller
    /// owns it now, but what it protects may be half-updated. Reported to one acquirer
    /// only (AB-04).
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &Mutex {
        self.mutex
    }

    /// Releases now, reporting an error (for instance when another process closed the
    /// handle with a close-source duplication) that a drop would ignore.
    pub fn unlock(self) -> Result<()> {
        let m = self.mutex;
        std::mem::forget(self);
        m.unlock().map(|_| ())
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = self.mutex.unlock();
    }
}

/// One unit of a [`Semaphore`], given back when dropped. [`SemaphorePermit::forget`]
/// keeps the unit taken (to be released later with [`crate::Handle::release`], perhaps by
/// another process).
#[derive(Debug)]
#[must_use = "dropping the permit gives its unit back at once"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the unit taken: nothing is released, now or later.
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::{ObjectState, Semaphore};
    ///
    /// let s = Semaphore::builder().max(1).initial(1).create()?;
    /// s.acquire()?.forget(); // e.g. another process will release it
    /// assert_eq!(s.query()?, ObjectState::Semaphore { count: 0, max: 1 });
    /// assert_eq!(s.release(1)?, 0); // the Win32-style release, returns the previous count
    /// # drop(s);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The semaphore this permit belongs to.
    pub fn semaphore(&self) -> &Semaphore {
        self.semaphore
    }

    /// Gives the unit back now, reporting an error that a drop would ignore; returns the
    /// count before the release.
    pub fn release(self) -> Result<u32> {
        let s = self.semaphore;
        std::mem::forget(self);
        s.release(1)
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = self.semaphore.release(1);
    }
}

fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Mutex {
    #[inline]
    fn guard(&self, timeout: Option<Duration>) -> Result<Option<MutexGuard<'_>>> {
        let abandoned = match self.wait(timeout)? {
            WaitOutcome::Signaled(_) => false,
            WaitOutcome::Abandoned(_) => true,
            WaitOutcome::TimedOut => return Ok(None),
        };
        Ok(Some(MutexGuard {
            mutex: self,
            abandoned,
            _thread: PhantomData,
        }))
    }

    /// Waits as long as it takes for ownership (`WaitForSingleObject(INFINITE)`). The
    /// guard says whether the previous owner abandoned it
    /// ([`MutexGuard::is_abandoned`]). Errors: the handle lacks the synchronize right,
    /// or the recursion count would overflow.
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::Mutex;
    /// use std::sync::Arc;
    ///
    /// let m = Arc::new(Mutex::builder().create()?);
    /// let m2 = m.clone();
    /// // A thread that ends while holding the mutex abandons it…
    /// std::thread::spawn(move || std::mem::forget(m2.lock().unwrap())).join().unwrap();
    /// // …and the next locker owns it, and is told (once).
    /// let guard = m.lock()?;
    /// assert!(guard.is_abandoned());
    /// drop(guard);
    /// assert!(!m.lock()?.is_abandoned());
    /// # drop(m);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'_>> {
        Ok(self
            .guard(None)?
            .expect("a wait without timeout does not time out"))
    }

    /// Takes ownership if nobody else holds the mutex, without waiting; `None` if
    /// another thread owns it.
    #[inline]
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        self.guard(Some(Duration::ZERO))
    }

    /// Waits at most `timeout` for ownership; `None` when it passed (parking_lot's
    /// `try_lock_for`).
    #[doc(alias = "try_lock_for")]
    pub fn lock_for(&self, timeout: Duration) -> Result<Option<MutexGuard<'_>>> {
        self.guard(Some(timeout))
    }

    /// Waits until `deadline` at most for ownership; `None` when it passed
    /// (parking_lot's `try_lock_until`).
    #[doc(alias = "try_lock_until")]
    pub fn lock_until(&self, deadline: Instant) -> Result<Option<MutexGuard<'_>>> {
        self.guard(Some(until(deadline)))
    }
}

impl Semaphore {
    #[inline]
    fn permit(&self, timeout: Option<Duration>) -> Result<Option<SemaphorePermit<'_>>> {
        Ok(match self.wait(timeout)? {
            WaitOutcome::Signaled(_) | WaitOutcome::Abandoned(_) => {
                Some(SemaphorePermit { semaphore: self })
            }
            WaitOutcome::TimedOut => None,
        })
    }

    /// Waits as long as it takes for a unit. Error: the handle lacks the synchronize
    /// right.
    #[inline]
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>> {
        Ok(self
            .permit(None)?
            .expect("a wait without timeout does not time out"))
    }

    /// Takes a unit if the count is above zero, without waiting; `None` otherwise.
    #[inline]
    pub fn try_acquire(&self) -> Result<Option<SemaphorePermit<'_>>> {
        self.permit(Some(Duration::ZERO))
    }

    /// Waits at most `timeout` for a unit; `None` when it passed.
    pub fn acquire_for(&self, timeout: Duration) -> Result<Option<SemaphorePermit<'_>>> {
        self.permit(Some(timeout))
    }

    /// Waits until `deadline` at most for a unit; `None` when it passed.
    pub fn acquire_until(&self, deadline: Instant) -> Result<Option<SemaphorePermit<'_>>> {
        self.permit(Some(until(deadline)))
    }
}
