//! # procsync
//!
//! The Win32 interprocess synchronization model on Linux: **events** (manual and
//! auto-reset), **mutexes** (thread-owned, recursive, abandonment reported),
//! **semaphores** and **waitable timers**, shared between processes by name (or unnamed, within a process
//! tree), with the wait functions over them: one object, any of up to 64, all of up to
//! 64 atomically, and signal-and-wait. No daemon: every operation runs in the calling
//! process on shared memory, and uncontended operations are a single atomic
//! instruction.
//!
//! ```no_run
//! use procsync::{Event, Semaphore, WaitOutcome, wait_any};
//! use std::time::Duration;
//!
//! let (ready, _) = Event::create("Local\\build-ready", true, false)?;
//! let (slots, _) = Semaphore::create("Local\\build-slots", 2, 2)?;
//! match wait_any(&[&ready, &slots], Some(Duration::from_secs(1)))? {
//!     WaitOutcome::Signaled(0) => println!("ready"),
//!     WaitOutcome::Signaled(1) => { println!("got a slot"); slots.release(1)?; }
//!     other => println!("{other:?}"),
//! }
//! # Ok::<(), procsync::Error>(())
//! ```
//!
//! Semantics follow Windows item by item (see `SEMANTICS.md` in the design docs);
//! the design is in `docs/ARCHITECTURE.md`.

mod error;
mod handle;
mod obj;
mod shm;
mod sys;
mod wait;

#[cfg(test)]
mod test_root;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use handle::{
    Access, CreateOptions, Event, Handle, Mutex, ObjectState, Owner, Semaphore, TimerDue,
    signal_and_wait, wait_all, wait_any,
};
pub use obj::{ObjectKind, ObjectSpec};
pub use shm::file::Created;
pub use shm::root::DEFAULT_ROOT;
pub use wait::{MAX_WAIT_OBJECTS, WaitOutcome};

impl Error {
    /// An [`Error::Unsupported`] with this message.
    pub fn unsupported(msg: impl Into<String>) -> Error {
        Error::Unsupported(msg.into())
    }
}
