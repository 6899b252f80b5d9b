//! Handles: process-local references to objects, with an access mask, created or
//! opened by name, or unnamed. Also the typed objects [`Event`], [`Mutex`],
//! [`Semaphore`] and [`Timer`] with their builders and guards, and the multi-object
//! wait functions that take handles.
//!
//! It must not touch shared memory directly: it validates arguments and rights, then
//! calls `wait` and `obj`.

mod builder;
mod callback;
mod core;
pub(crate) mod detached;
mod dup;
mod guard;
mod identity;
mod inherit;
mod mapped;
pub(crate) mod name;
mod pending;
mod registry;
mod timer;
mod typed;
mod typed_timer;
mod vocab;

pub use builder::Builder;
pub use core::{Handle, signal_and_wait, wait_all, wait_any};
pub use dup::{accept_duplicates, duplicate_from, on_remote_close};
pub use guard::{MutexGuard, SemaphorePermit};
pub use inherit::{CommandExt, INHERIT_ENV, adopt, inherited};
pub use typed::{Event, Mutex, Semaphore, Timer};
pub use vocab::{Access, CreateOptions, ObjectState, Owner, TimerDue};
