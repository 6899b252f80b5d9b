//! Typed wrappers: the Win32 vocabulary on one type each, for programs that know what
//! they hold. Each derefs to [`Handle`] for everything else (waits, query, duplicate).

use std::ops::Deref;
use std::time::Duration;

use super::core::{CreateOptions, Handle};
use crate::error::Result;
use crate::obj::{ObjectKind, ObjectSpec};
use crate::shm::file::Created;
use crate::wait::WaitOutcome;

macro_rules! typed {
    ($(#[$m:meta])* $name:ident, $kind:expr) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(Handle);

        impl Deref for $name {
            type Target = Handle;
            fn deref(&self) -> &Handle {
                &self.0
            }
        }

        impl $name {
            /// Opens an existing object of this type by name, with every right.
            pub fn open(name: &str) -> Result<Self> {
                Handle::open($kind, name, super::Access::ALL, false).map($name)
            }

            /// The untyped handle.
            pub fn into_handle(self) -> Handle {
                self.0
            }
        }
    };
}

typed!(
    /// An event (`CreateEvent`): manual-reset releases every waiter and stays set;
    /// auto-reset releases exactly one waiter per set.
    Event,
    ObjectKind::Event
);
typed!(
    /// A mutex (`CreateMutex`): owned by a thread, recursive, abandoned when its owner
    /// dies.
    Mutex,
    ObjectKind::Mutex
);
typed!(
    /// A semaphore (`CreateSemaphore`): a count between 0 and a maximum.
    Semaphore,
    ObjectKind::Semaphore
);

impl Event {
    /// Creates (or opens, reporting [`Created::Existing`]) an event; `""` = unnamed.
    pub fn create(name: &str, manual: bool, initial: bool) -> Result<(Event, Created)> {
        let (h, c) = Handle::create(
            ObjectSpec::Event { manual, initial },
            name,
            &CreateOptions::default(),
        )?;
        Ok((Event(h), c))
    }
}

impl Mutex {
    /// Creates (or opens) a mutex; `owned` takes it for the calling thread if new.
    pub fn create(name: &str, owned: bool) -> Result<(Mutex, Created)> {
        let (h, c) = Handle::create(ObjectSpec::Mutex { owned }, name, &CreateOptions::default())?;
        Ok((Mutex(h), c))
    }

    /// Waits for ownership; `None` waits forever.
    pub fn lock(&self, timeout: Option<Duration>) -> Result<WaitOutcome> {
        self.0.wait(timeout)
    }

    /// `ReleaseMutex`; returns the previous recursion count.
    pub fn unlock(&self) -> Result<u32> {
        self.0.release(1)
    }
}

impl Semaphore {
    /// Creates (or opens) a semaphore with `initial` ≤ `max`.
    pub fn create(name: &str, initial: u32, max: u32) -> Result<(Semaphore, Created)> {
        let (h, c) = Handle::create(
            ObjectSpec::Semaphore { initial, max },
            name,
            &CreateOptions::default(),
        )?;
        Ok((Semaphore(h), c))
    }
}
