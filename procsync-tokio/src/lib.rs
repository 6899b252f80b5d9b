//! # procsync-tokio
//!
//! Async waits on [procsync] objects — events, mutexes, semaphores, waitable timers,
//! shared across processes — from tokio (or any executor), **without a thread per
//! wait**: a small pool of reactor threads, each blocked in one procsync `wait_any`
//! over up to 63 objects plus a private control event, completes the futures. Built on
//! procsync's public API only.
//!
//! ```no_run
//! # async fn demo() -> procsync::Result<()> {
//! use procsync::{Event, Semaphore};
//! let (slots, _) = Semaphore::create("Local\\jobs", 4, 4)?;
//! let (stop, _) = Event::create("Local\\stop", true, false)?;
//! let permit = procsync_tokio::acquire(&slots).await?; // a unit, released on drop
//! procsync_tokio::wait(&stop).await?;                   // cancel-safe
//! drop(permit);
//! # Ok(()) }
//! ```
//!
//! - Functions: [`wait`], [`wait_any`], [`wait_all`], [`signal_and_wait`], with
//!   `_until` deadline variants (or `tokio::time::timeout` around any of them),
//!   [`lock`] → [`MutexGuard`], [`acquire`] → [`SemaphorePermit`], and the
//!   [`AsyncWait`] method forms.
//! - Cancel safety (TO-06): dropping a pending future never loses a signal, a unit or
//!   a mutex. What was handed over to a dropped future is given back as if it had
//!   timed out just before the signal: a semaphore unit is released, an auto-reset
//!   event is set again, a mutex is released by its owner thread; a manual-reset event
//!   is not consumed by a wait. Limits: an auto-reset *timer*'s signal cannot be put
//!   back through the public API, and an *abandoned* mutex given back is no longer
//!   reported abandoned to the next owner.
//! - Mutex ownership: the thread that acquired the mutex (a reactor, or the wait-all
//!   thread) owns it on behalf of the task; the guard can move between tasks and
//!   threads; dropping it makes the owner thread release it.
//! - Threads: at most ⌈distinct objects with pending waits / 63⌉ reactors (10 000
//!   distinct objects → 159 threads), capped by [`set_max_reactor_threads`]; waits on
//!   one object share its slot; a reactor idle for [`REACTOR_IDLE`] exits. A pending [`wait_all`] costs a thread of its own.
//!
//! `docs/ASYNC.md` in the repository has the full design and limits.

mod all;
mod api;
mod delivery;
mod guard;
mod object;
mod oneshot;
mod reactor;
mod undo;
mod wait;

pub use all::{SLICE as WAIT_ALL_SLICE, WaitAll, wait_all_threads};
pub use api::{
    AsHandle, AsyncWait, acquire, acquire_until, lock, lock_until, signal_and_wait,
    signal_and_wait_until, until, wait, wait_all, wait_all_until, wait_any, wait_any_until,
    wait_until,
};
pub use guard::{Acquired, MutexGuard, SemaphorePermit};
pub use reactor::{
    DEFAULT_MAX_REACTOR_THREADS, OBJECTS_PER_REACTOR, REACTOR_IDLE, max_reactor_threads,
    reactor_threads, set_max_reactor_threads,
};
pub use wait::Wait;
