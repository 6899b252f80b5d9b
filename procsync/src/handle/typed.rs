//! Typed objects: [`Event`], [`Mutex`], [`Semaphore`] and [`Timer`], the Win32 vocabulary
//! on one type each, for programs that know what they hold. Each derefs to [`Handle`] for
//! everything the types share (waits, query, duplication, inheritance), so a list of
//! mixed typed objects goes to [`crate::wait_any`] as `&[&a, &b]`.
//!
//! It must not touch objects directly: every call goes through [`Handle`]. Guards live in
//! `guard`, builders in `builder`, the timer's typed calls in `typed_timer`.

use std::ops::Deref;
use std::time::Duration;

use super::core::Handle;
use super::vocab::{Access, CreateOptions};
use crate::error::{Error, Result};
use crate::obj::{ObjectKind, ObjectSpec};
use crate::shm::file::Created;
use crate::wait::WaitOutcome;

macro_rules! typed {
    ($(#[$m:meta])* $name:ident, $kind:expr, $a_name:literal) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(pub(super) Handle);

        impl Deref for $name {
            type Target = Handle;
            fn deref(&self) -> &Handle {
                &self.0
            }
        }

        impl AsRef<Handle> for $name {
            fn as_ref(&self) -> &Handle {
                &self.0
            }
        }

        impl From<$name> for Handle {
            fn from(t: $name) -> Handle {
                t.0
            }
        }

        impl TryFrom<Handle> for $name {
            type Error = Error;

            #[doc = concat!("Types a handle known to be ", $a_name, " (one from [`crate::adopt`], ")]
            /// [`crate::inherited`] or [`crate::duplicate_from`]); another type is
            /// [`Error::WrongType`] and the handle is closed.
            fn try_from(h: Handle) -> Result<$name> {
                if h.kind() == $kind {
                    Ok($name(h))
                } else {
                    Err(Error::WrongType {
                        what: format!(
                            "handle {} is {}, not {}",
                            h.value(),
                            h.kind().name(),
                            $a_name
                        ),
                    })
                }
            }
        }

        impl $name {
            #[doc = concat!("Opens the existing ", stringify!($name), " named `name` with every right")]
            /// (`Open*(*_ALL_ACCESS, FALSE, name)`). A missing name is
            /// [`Error::NotFound`], another type [`Error::WrongType`].
            pub fn open(name: &str) -> Result<Self> {
                Handle::open($kind, name, Access::ALL, false).map($name)
            }

            /// Opens the existing object named `name` with only the rights in `access`
            /// (for inheritance too, use the builder's [`Builder::open`](super::Builder::open)).
            pub fn open_with(name: &str, access: Access) -> Result<Self> {
                Handle::open($kind, name, access, false).map($name)
            }

            /// The untyped handle.
            pub fn into_handle(self) -> Handle {
                self.0
            }

            /// The untyped handle, borrowed (also what `Deref` gives).
            pub fn handle(&self) -> &Handle {
                &self.0
            }

            /// `WaitForSingleObject`: [`Handle::wait`], with the lock-free acquisition
            #[doc = concat!("of ", $a_name, " inlined at the call site.")]
            #[inline]
            pub fn wait(&self, timeout: Option<Duration>) -> Result<WaitOutcome> {
                self.0.wait_as($kind, timeout)
            }
        }
    };
}

typed!(
    /// An event (`CreateEvent`): manual-reset releases every waiter and stays set until
    /// reset; auto-reset releases exactly one waiter per set.
    ///
    /// Build one with [`Event::builder`]; signal it with [`Handle::set`],
    /// [`Handle::reset`], [`Handle::pulse`]; wait with [`Handle::wait`] (all through
    /// `Deref`).
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::{Event, WaitOutcome};
    /// use std::time::Duration;
    ///
    /// let done = Event::builder().manual_reset().create()?; // unnamed, not set
    /// assert_eq!(done.wait(Some(Duration::ZERO))?, WaitOutcome::TimedOut);
    /// done.set()?;
    /// assert_eq!(done.wait(None)?, WaitOutcome::Signaled(0));
    /// assert_eq!(done.wait(None)?, WaitOutcome::Signaled(0)); // manual-reset: still set
    /// # drop(done);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    Event,
    ObjectKind::Event,
    "an event"
);
typed!(
    /// A mutex (`CreateMutex`): owned by a thread, recursive, abandoned when its owner
    /// dies.
    ///
    /// [`Mutex::lock`] and its timed forms return a [`crate::MutexGuard`] that releases
    /// on drop; [`Mutex::unlock`] is `ReleaseMutex` for Win32-style code that acquired
    /// through a wait ([`Handle::wait`], [`crate::wait_any`], …).
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::Mutex;
    ///
    /// let m = Mutex::builder().name("Local\\doc-mutex-typed").create()?;
    /// {
    ///     let guard = m.lock()?;
    ///     assert!(!guard.is_abandoned());
    ///     // … the protected work …
    /// } // released here
    /// assert!(m.try_lock()?.is_some());
    /// # drop(m);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    Mutex,
    ObjectKind::Mutex,
    "a mutex"
);
typed!(
    /// A semaphore (`CreateSemaphore`): a count between 0 and a maximum; a wait takes
    /// one unit, [`Handle::release`] gives units back.
    ///
    /// [`Semaphore::acquire`] and its forms return a [`crate::SemaphorePermit`] that
    /// gives its unit back on drop.
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::Semaphore;
    ///
    /// let slots = Semaphore::builder().max(2).initial(2).create()?;
    /// let a = slots.acquire()?;
    /// let b = slots.acquire()?;
    /// assert!(slots.try_acquire()?.is_none()); // both units are out
    /// drop(a);
    /// assert!(slots.try_acquire()?.is_some());
    /// # drop(b); drop(slots);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    Semaphore,
    ObjectKind::Semaphore,
    "a semaphore"
);
typed!(
    /// A waitable timer (`CreateWaitableTimer`): signaled at a due time and then every
    /// period; a manual-reset (notification) timer releases every waiter and stays
    /// signaled, an auto-reset (synchronization) one releases one waiter per expiration.
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::{Timer, WaitOutcome};
    /// use std::time::Duration;
    ///
    /// let tick = Timer::builder().create()?; // auto-reset, unnamed, disarmed
    /// tick.set(Duration::from_millis(5), Some(Duration::from_millis(5)))?;
    /// for _ in 0..3 {
    ///     assert_eq!(tick.wait(None)?, WaitOutcome::Signaled(0));
    /// }
    /// tick.cancel()?;
    /// # drop(tick);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    Timer,
    ObjectKind::Timer,
    "a timer"
);

/// [`Handle::create`] with the default options, the handle typed by `wrap`: what the
/// positional `create` calls share.
fn create_with<T>(spec: ObjectSpec, name: &str, wrap: fn(Handle) -> T) -> Result<(T, Created)> {
    let (h, c) = Handle::create(spec, name, &CreateOptions::default())?;
    Ok((wrap(h), c))
}

impl Event {
    /// Creates (or opens, reporting [`Created::Existing`]) an event; `""` = unnamed.
    /// `manual`: manual-reset; `initial`: created set. [`Event::builder`] says the same
    /// with names instead of booleans.
    pub fn create(name: &str, manual: bool, initial: bool) -> Result<(Event, Created)> {
        create_with(ObjectSpec::Event { manual, initial }, name, Event)
    }
}

impl Mutex {
    /// Creates (or opens) a mutex; `owned` takes it for the calling thread if new (then
    /// release it with [`Mutex::unlock`]).
    pub fn create(name: &str, owned: bool) -> Result<(Mutex, Created)> {
        create_with(ObjectSpec::Mutex { owned }, name, Mutex)
    }

    /// `ReleaseMutex`, for ownership taken by a wait ([`Handle::wait`],
    /// [`crate::wait_any`], [`crate::wait_all`]) or at creation; returns the previous
    /// recursion count. A thread that does not own it gets [`Error::NotOwner`].
    #[inline]
    pub fn unlock(&self) -> Result<u32> {
        self.0.release_mutex()
    }
}

impl Semaphore {
    /// Creates (or opens) a semaphore with `initial` ≤ `max`.
    pub fn create(name: &str, initial: u32, max: u32) -> Result<(Semaphore, Created)> {
        create_with(ObjectSpec::Semaphore { initial, max }, name, Semaphore)
    }

    /// `ReleaseSemaphore(count)`: [`Handle::release`], with the lock-free release
    /// (nobody waiting) inlined at the call site; returns the previous count.
    #[inline]
    pub fn release(&self, count: u32) -> Result<u32> {
        self.0.release_semaphore(count)
    }
}
