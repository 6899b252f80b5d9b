//! # procsync
//!
//! The Win32 interprocess synchronization model on Linux: **events** (manual and
//! auto-reset), **mutexes** (thread-owned, recursive, abandonment reported),
//! **semaphores** and **waitable timers**, shared between processes by name, by
//! inheritance or by duplication, with the wait functions over them: one object, any of
//! up to 64, all of up to 64 atomically, and signal-and-wait. No daemon: every operation
//! runs in the calling process on shared memory, and uncontended operations are a
//! single atomic instruction.
//!
//! ```
//! # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
//! # // SAFETY: the doctest has one thread and has not started anything yet.
//! # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
//! use procsync::{Event, Semaphore, WaitOutcome, wait_any};
//! use std::time::Duration;
//!
//! // Two processes that use these names share the objects.
//! let shutdown = Event::builder().manual_reset().name("Local\\doc-shutdown").create()?;
//! let work = Semaphore::builder().max(16).name("Local\\doc-work").create()?;
//! work.release(1)?; // one job queued
//!
//! let mut jobs = 0;
//! loop {
//!     match wait_any(&[&shutdown, &work], Some(Duration::from_secs(1)))? {
//!         WaitOutcome::Signaled(0) => break, // the lowest signaled index wins
//!         WaitOutcome::Signaled(_) => {
//!             jobs += 1; // took one unit of `work`: do the job…
//!             shutdown.set()?; // …which here is to ask for the shutdown
//!         }
//!         other => panic!("no job and no shutdown within a second: {other:?}"),
//!     }
//! }
//! assert_eq!(jobs, 1);
//! # drop((shutdown, work));
//! # std::fs::remove_dir_all(&root).ok();
//! # Ok::<(), procsync::Error>(())
//! ```
//!
//! The typed objects are [`Event`], [`Mutex`], [`Semaphore`] and [`Timer`], each made
//! by a [`Builder`] (`Event::builder()…create()`) or opened by name (`Event::open`). They
//! deref to [`Handle`], which carries what every type shares: [`Handle::wait`],
//! [`Handle::query`], duplication, inheritance. [`Mutex::lock`] returns a
//! [`MutexGuard`], [`Semaphore::acquire`] a [`SemaphorePermit`]; both release on drop.
//! Errors are one [`Error`] type whose [`Error::code`] is stable, and which converts to
//! [`std::io::Error`].
//!
//! Names: `Local\X` (or plain `X`) is per user, `Global\X` is shared by all users; the
//! objects live under `PROCSYNC_ROOT` (default [`DEFAULT_ROOT`]) and go away with their
//! last handle in any process. Examples of whole programs (a job pool, a single-instance
//! guard, a start gate, a shutdown loop, a periodic timer, handing handles to other
//! processes) are in the crate's `examples/` directory.
//!
//! ## Coming from Win32
//!
//! Timeouts are `Option<Duration>`: `None` is `INFINITE`, `Some(Duration::ZERO)` polls.
//! `WAIT_FAILED` is an `Err`; `WAIT_OBJECT_0 + i`, `WAIT_ABANDONED_0 + i` and
//! `WAIT_TIMEOUT` are the variants of [`WaitOutcome`]. `CloseHandle` is a drop.
//!
//! | Win32 | procsync |
//! |---|---|
//! | `CreateEvent` / `OpenEvent` | [`Event::builder`]`()[.manual_reset()][.initially_set()].name(n).create()` / [`Event::open`] |
//! | `SetEvent` / `ResetEvent` / `PulseEvent` | [`Handle::set`] / [`Handle::reset`] / [`Handle::pulse`] (previous state) |
//! | `CreateMutex` / `OpenMutex` | [`Mutex::builder`]`()[.initially_owned()].name(n).create()` / [`Mutex::open`] |
//! | `WaitForSingleObject` on a mutex + `ReleaseMutex` | [`Mutex::lock`] → [`MutexGuard`] (drop releases); or [`Handle::wait`] + [`Mutex::unlock`] |
//! | `CreateSemaphore` / `OpenSemaphore` | [`Semaphore::builder`]`().max(m).initial(i).name(n).create()` / [`Semaphore::open`] |
//! | `WaitForSingleObject` on a semaphore + `ReleaseSemaphore` | [`Semaphore::acquire`] → [`SemaphorePermit`]; or [`Handle::wait`] + [`Handle::release`]`(n)` (previous count) |
//! | `CreateWaitableTimer` / `OpenWaitableTimer` | [`Timer::builder`]`()[.manual_reset()].name(n).create()` / [`Timer::open`] |
//! | `SetWaitableTimer` / `CancelWaitableTimer` | [`Timer::set`]`(due, period)` / [`Timer::cancel`]; completion routine: [`Timer::set_with_callback`] |
//! | `WaitForSingleObject` | [`Handle::wait`]`(timeout)` |
//! | `WaitForMultipleObjects(FALSE)` / `(TRUE)` | [`wait_any`]`(&[&a, &b], timeout)` / [`wait_all`] (atomic) |
//! | `SignalObjectAndWait` | [`signal_and_wait`] |
//! | `DuplicateHandle` (same process) | [`Handle::duplicate`] |
//! | `DuplicateHandle` (other process) | [`Handle::duplicate_into`] / [`duplicate_from`]; the other side calls [`accept_duplicates`] and [`adopt`] |
//! | `bInheritHandle`, `bInheritHandles` | [`Builder::inheritable`], [`Handle::set_inheritable`]; `Command::`[`inherit_procsync_handles`](CommandExt::inherit_procsync_handles); the child: [`inherited`] / [`adopt`] |
//! | `CloseHandle` | drop |
//! | `GetLastError() == ERROR_ALREADY_EXISTS` | [`Builder::create_or_open`] → [`Created::Existing`] |
//! | `NtQueryEvent` and friends | [`Handle::query`] |
//!
//! ## Coming from `std::sync`
//!
//! A procsync [`Mutex`] protects no data: it is a lock that other *processes* can share,
//! so [`Mutex::lock`] returns a [`MutexGuard`] without `Deref`; what it protects lives
//! elsewhere (a file, shared memory, an external resource). Where std reports poisoning,
//! procsync reports **abandonment**: a thread or process that died holding the mutex
//! leaves it to the next locker with [`MutexGuard::is_abandoned`] set (once), and the
//! lock is held either way. The mutex is recursive (the owning thread may lock again;
//! each guard releases once), owned by a thread (the guard is not `Send`), and all
//! calls return a [`Result`], because the objects live outside the process. Timed forms
//! follow parking_lot: [`Mutex::try_lock`], [`Mutex::lock_for`] (`try_lock_for`),
//! [`Mutex::lock_until`] (`try_lock_until`). [`Semaphore`] is a counting semaphore with
//! a maximum, closer to tokio's than to anything in std: [`Semaphore::acquire`] gives a
//! [`SemaphorePermit`] that returns the unit on drop or is kept with
//! [`SemaphorePermit::forget`]. [`Event`] has no std counterpart; it is closest to a
//! `Condvar` with its predicate built in (manual-reset: a flag everyone waits for;
//! auto-reset: one wake-up per set, never lost).
//!
//! Semantics follow Windows item by item: `docs/SEMANTICS.md` in the repository lists
//! them, with the ids the code and tests cite; the design is in `docs/ARCHITECTURE.md`.

mod doctest;
mod error;
mod fuzz;
mod handle;
mod obj;
mod park;
mod shm;
mod sys;
mod wait;

/// The README's Rust example, compiled and run as a doctest so that it keeps working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod test_root;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use handle::{
    Access, Builder, CreateOptions, Event, Handle, Mutex, MutexGuard, ObjectState, Owner,
    Semaphore, SemaphorePermit, Timer, TimerDue, signal_and_wait, wait_all, wait_any,
};
pub use handle::{
    CommandExt, INHERIT_ENV, accept_duplicates, adopt, duplicate_from, inherited, on_remote_close,
};
pub use obj::{ObjectKind, ObjectSpec};
pub use shm::file::Created;
pub use shm::root::DEFAULT_ROOT;
pub use wait::{MAX_WAIT_OBJECTS, WaitOutcome};

/// Waits that no thread blocks in, for executors (procsync-tokio builds its async
/// waits on them): see [`DetachedWait`](detached::DetachedWait).
pub mod detached {
    pub use crate::handle::detached::{
        Bell, BellKey, BellSleep, DetachedWait, FutexWord, Progress, SleepOn,
    };
}

#[doc(hidden)]
pub use doctest::{__doctest_root, DoctestRoot};
#[doc(hidden)]
pub use fuzz::__fuzz_open_object;

impl Error {
    /// An [`Error::Unsupported`] with this message.
    pub fn unsupported(msg: impl Into<String>) -> Error {
        Error::Unsupported(msg.into())
    }
}
