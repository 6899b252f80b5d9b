//! [`Builder`]: the options of a create or an open, said by name instead of by position
//! (`Event::builder().manual_reset().initially_set().name("Local\\x").create()`).
//!
//! It owns option defaults and their validation messages only; creating and opening go
//! through [`Handle::create`] and [`Handle::open`].

use std::marker::PhantomData;

use super::core::Handle;
use super::typed::{Event, Mutex, Semaphore, Timer};
use super::vocab::{Access, CreateOptions};
use crate::error::{Error, Result};
use crate::obj::ObjectSpec;
use crate::shm::file::Created;

/// Options for creating or opening a [`Event`], [`Mutex`], [`Semaphore`] or [`Timer`];
/// start from `Event::builder()` (and so on). Every setter takes and returns the builder.
///
/// Without [`Builder::name`] the object is unnamed: only this process (and processes it
/// passes the handle to) can reach it.
///
/// ```
/// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
/// # // SAFETY: the doctest has one thread and has not started anything yet.
/// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
/// use procsync::{Access, Created, Event};
///
/// let (gate, created) = Event::builder()
///     .manual_reset()
///     .initially_set()
///     .name("Local\\doc-builder-gate")
///     .mode(0o600)
///     .inheritable(true)
///     .create_or_open()?;
/// assert_eq!(created, Created::New);
///
/// // Another handle to the same event, allowed to wait but not to set it.
/// let waiter = Event::builder()
///     .name("Local\\doc-builder-gate")
///     .access(Access::SYNCHRONIZE)
///     .open()?;
/// assert!(waiter.set().is_err());
/// assert!(waiter.same_object(&gate));
/// # drop((gate, waiter));
/// # std::fs::remove_dir_all(&root).ok();
/// # Ok::<(), procsync::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `create`, `create_or_open` or `open`"]
pub struct Builder<T> {
    spec: ObjectSpec,
    name: String,
    opts: CreateOptions,
    access: Access,
    _type: PhantomData<fn() -> T>,
}

impl<T> Builder<T> {
    pub(super) fn new(spec: ObjectSpec) -> Builder<T> {
        Builder {
            spec,
            name: String::new(),
            opts: CreateOptions::default(),
            access: Access::ALL,
            _type: PhantomData,
        }
    }

    /// The object's name: `Local\X` (or plain `X`) per user, `Global\X` shared by all
    /// users. Without it (or with `""`) a create makes an unnamed object.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Permission bits of a new named object (default `0o600`; at most `0o777`). An
    /// existing object keeps its own.
    pub fn mode(mut self, mode: u32) -> Self {
        self.opts.mode = Some(mode);
        self
    }

    /// Whether children started with [`crate::CommandExt::inherit_procsync_handles`]
    /// inherit the handle (default `false`; `bInheritHandle`).
    pub fn inheritable(mut self, on: bool) -> Self {
        self.opts.inherit = on;
        self
    }

    /// The rights an [`open`](Builder::open) asks for (default [`Access::ALL`]). A create
    /// always gets every right; reduce them with [`Handle::duplicate`].
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    fn create_handle(&self) -> Result<(Handle, Created)> {
        if let ObjectSpec::Semaphore { max: 0, .. } = self.spec {
            return Err(Error::invalid(
                "a semaphore needs a maximum count: call `.max(n)` on its builder",
            ));
        }
        Handle::create(self.spec, &self.name, &self.opts)
    }

    fn open_handle(&self) -> Result<Handle> {
        Handle::open(self.spec.kind(), &self.name, self.access, self.opts.inherit)
    }
}

macro_rules! finish {
    ($t:ident) => {
        impl Builder<$t> {
            /// Creates the object, or opens the existing one of that name
            /// (`Create*`, which opens too; [`Error::WrongType`] if the name is taken by
            /// another type). To learn which happened, use
            /// [`create_or_open`](Builder::create_or_open).
            pub fn create(self) -> Result<$t> {
                self.create_handle().map(|(h, _)| $t(h))
            }

            /// As [`create`](Builder::create), and says whether the object is new
            /// ([`Created::New`]) or existed ([`Created::Existing`], Win32's
            /// `ERROR_ALREADY_EXISTS`; the initial state options were then ignored).
            pub fn create_or_open(self) -> Result<($t, Created)> {
                self.create_handle().map(|(h, c)| ($t(h), c))
            }

            /// Opens the existing object of this name (`Open*`) with the rights of
            /// [`access`](Builder::access) and the inheritability of
            /// [`inheritable`](Builder::inheritable). A missing name is
            /// [`Error::NotFound`]; the initial-state options do not apply.
            pub fn open(self) -> Result<$t> {
                self.open_handle().map($t)
            }
        }
    };
}

finish!(Event);
finish!(Mutex);
finish!(Semaphore);
finish!(Timer);

impl Builder<Event> {
    /// Manual-reset (notification): a set releases every waiter and the event stays set
    /// until reset. The default is auto-reset: a set releases one waiter.
    pub fn manual_reset(mut self) -> Self {
        if let ObjectSpec::Event { manual, .. } = &mut self.spec {
            *manual = true;
        }
        self
    }

    /// Created set (signaled). The default is not set.
    pub fn initially_set(mut self) -> Self {
        if let ObjectSpec::Event { initial, .. } = &mut self.spec {
            *initial = true;
        }
        self
    }
}

impl Builder<Mutex> {
    /// A new mutex is owned by the calling thread (recursion 1; release it with
    /// [`Mutex::unlock`]). An existing one is not taken (CO-03).
    pub fn initially_owned(mut self) -> Self {
        self.spec = ObjectSpec::Mutex { owned: true };
        self
    }
}

impl Builder<Semaphore> {
    /// The maximum count, 1 to `0x7FFF_FFFF` (required).
    pub fn max(mut self, max: u32) -> Self {
        if let ObjectSpec::Semaphore { max: m, .. } = &mut self.spec {
            *m = max;
        }
        self
    }

    /// The initial count, at most the maximum (default 0: every unit taken).
    pub fn initial(mut self, initial: u32) -> Self {
        if let ObjectSpec::Semaphore { initial: i, .. } = &mut self.spec {
            *i = initial;
        }
        self
    }
}

impl Builder<Timer> {
    /// Manual-reset (notification): an expiration releases every waiter and the timer
    /// stays signaled until set again. The default is auto-reset (synchronization): one
    /// waiter per expiration.
    pub fn manual_reset(mut self) -> Self {
        self.spec = ObjectSpec::Timer { manual: true };
        self
    }
}

// The typed objects' entry points to their builders.

impl Event {
    /// A builder: auto-reset, not set, unnamed, mode 0600, not inheritable, until told
    /// otherwise.
    pub fn builder() -> Builder<Event> {
        Builder::new(ObjectSpec::Event {
            manual: false,
            initial: false,
        })
    }
}

impl Mutex {
    /// A builder: not owned, unnamed, mode 0600, not inheritable, until told otherwise.
    pub fn builder() -> Builder<Mutex> {
        Builder::new(ObjectSpec::Mutex { owned: false })
    }
}

impl Semaphore {
    /// A builder for a semaphore: give its maximum with [`Builder::max`] (and its initial
    /// count with [`Builder::initial`], default 0).
    pub fn builder() -> Builder<Semaphore> {
        Builder::new(ObjectSpec::Semaphore { initial: 0, max: 0 })
    }
}

impl Timer {
    /// A builder: auto-reset (synchronization), unnamed, mode 0600, not inheritable,
    /// until told otherwise. A new timer is disarmed and not signaled.
    pub fn builder() -> Builder<Timer> {
        Builder::new(ObjectSpec::Timer { manual: false })
    }
}
