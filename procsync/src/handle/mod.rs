//! Handles: process-local references to objects, with an access mask, created or
//! opened by name, or unnamed. Also the typed wrappers [`Event`], [`Mutex`] and
//! [`Semaphore`], and the multi-object wait functions that take handles.
//!
//! It must not touch shared memory directly: it validates arguments and rights, then
//! calls `wait` and `obj`.

mod core;
mod dup;
mod inherit;
pub(crate) mod name;
mod registry;
mod timer;
mod typed;

pub use core::{
    Access, CreateOptions, Handle, ObjectState, Owner, TimerDue, signal_and_wait, wait_all,
    wait_any,
};
pub use dup::{accept_duplicates, duplicate_from, on_remote_close};
pub use inherit::{CommandExt, INHERIT_ENV, adopt, inherited};
pub use typed::{Event, Mutex, Semaphore};
