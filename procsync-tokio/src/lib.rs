//! # procsync-tokio
//!
//! Async waits on [procsync] objects — events, mutexes, semaphores, waitable timers,
//! shared across processes — from tokio (or any executor), **without a thread per
//! wait**. Built on procsync's public API only.
//!
//! - **io_uring path** (default in a tokio runtime with I/O enabled, Linux ≥ 6.7):
//!   waits on events, semaphores and timers are [`procsync::detached::DetachedWait`]s
//!   queued in their objects like blocked threads, each sleeping as an io_uring futex
//!   wait whose completion wakes the runtime's own thread (the ring is in its epoll).
//!   No thread beyond the runtime's.
//! - **Reactor path** (waits that list a mutex, runtimes without I/O, other executors,
//!   no io_uring futex waits, or [`set_io_uring`]`(false)`): a small pool of reactor
//!   threads, each blocked in one procsync `wait_any` over up to 63 objects plus a
//!   private control event, completes the futures.
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
//!   timed out just before the signal (`procsync::Handle::give_back`): a semaphore
//!   unit is released, an auto-reset event or timer is set again (to the next waiter
//!   in line; an event that a later set already set again keeps the signal banked, so
//!   every set that reported "was not set" is consumed once, TO-06a), a mutex is
//!   released by its owner thread; a manual-reset event is not consumed by a wait.
//!   Limit of the reactor path: an *abandoned* mutex given back is no longer reported
//!   abandoned to the next owner.
//! - Mutex ownership: the thread that acquired the mutex (a reactor, or the wait-all
//!   thread) owns it on behalf of the task; the guard can move between tasks and
//!   threads; dropping it makes the owner thread release it.
//! - Threads: none on the io_uring path. On the reactor path at most ⌈distinct
//!   objects with pending waits / 63⌉ reactors (10 000
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
mod uring;
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
pub use uring::{WakeCounts, io_uring_available, set_io_uring, wake_counts};
pub use wait::Wait;
