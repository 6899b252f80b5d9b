//! Waitable timers on handles: set, cancel, and completion callbacks.
//!
//! A completion callback (Win32's completion routine, TM-24) runs on a thread the
//! library starts in the setting process. The thread never acquires the timer (a
//! synchronization timer is left for the waiters); it sleeps until the due time,
//! expires the timer if nobody has, and calls the closure once per expiration it
//! observes. Limits, as documented on [`Handle::set_timer_with_callback`]: the
//! closure runs on that thread, not the setting thread (there are no APCs on Linux),
//! one expiration after another; missed periods are not replayed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::core::{Access, Handle, TimerDue};
use crate::error::{Error, Result};
use crate::obj::{ObjectKind, timer};
use crate::sys::futex;
use crate::sys::time::{self, Deadline};

/// Longest period (LM-05: a Win32 LONG of milliseconds).
const MAX_PERIOD_MS: u32 = i32::MAX as u32;

/// A callback thread: its stop flag, and the thread to join once told to stop.
type Callback = (Arc<AtomicBool>, std::thread::JoinHandle<()>);

/// Callback threads of this process, by handle serial.
type Callbacks = Mutex<HashMap<u64, Callback>>;
static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

fn callbacks() -> std::sync::MutexGuard<'static, HashMap<u64, Callback>> {
    CALLBACKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn key(h: &Handle) -> u64 {
    h.serial
}

/// Stops the callback thread a handle started, if any (on re-set, cancel, drop), and
/// waits for it to end (unless called from the callback itself): the thread holds the
/// object, so a process that returns from `main` right after would otherwise exit with
/// the object (and its wait-block table file) still referenced, skipping their cleanup.
pub(super) fn stop_callback(h: &Handle) {
    if h.obj.kind != ObjectKind::Timer {
        return;
    }
    let entry = callbacks().remove(&key(h));
    if let Some((stop, thread)) = entry {
        stop.store(true, Ordering::Release);
        let seq = h.obj.seq();
        seq.fetch_add(1, Ordering::Release);
        futex::wake(seq, u32::MAX);
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

impl Handle {
    /// `SetWaitableTimer`: arms the timer for `due` and then every `period_ms`
    /// milliseconds (0 = once). Resets its signaled state (TM-16); blocked waiters keep
    /// waiting for the new due time (TM-15). Returns the previous signaled state.
    pub fn set_timer(&self, due: TimerDue, period_ms: u32) -> Result<bool> {
        let o = self.need(ObjectKind::Timer, "settimer", Some(Access::MODIFY))?;
        if period_ms > MAX_PERIOD_MS {
            return Err(Error::invalid(format!(
                "a timer period is at most {MAX_PERIOD_MS} ms, not {period_ms}"
            )));
        }
        stop_callback(self);
        let (due_ns, realtime) = match due {
            TimerDue::Relative(d) => {
                let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                (time::monotonic_ns().saturating_add(d), false)
            }
            TimerDue::AbsoluteUnixMs(ms) => (ms.saturating_mul(1_000_000), true),
        };
        timer::set(o, due_ns, realtime, u64::from(period_ms) * 1_000_000)
    }

    /// `SetWaitableTimer` with a completion routine: as [`Handle::set_timer`], and
    /// `callback` runs once per expiration on a thread procsync manages in this
    /// process, until the timer is cancelled, set again, or this handle is dropped.
    /// The callback must not block for long (expirations during it are coalesced:
    /// missed periods are not replayed, as with the timer's own state, TM-13), and
    /// stopping it (cancel, set again, drop) waits for a running call to return.
    pub fn set_timer_with_callback(
        &self,
        due: TimerDue,
        period_ms: u32,
        mut callback: impl FnMut() + Send + 'static,
    ) -> Result<bool> {
        let prev = self.set_timer(due, period_ms)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let obj = self.obj.clone();
        let mut seen = timer::expirations(&obj);
        let thread = std::thread::Builder::new()
            .name("procsync-timer".into())
            .spawn(move || {
                loop {
                    if thread_stop.load(Ordering::Acquire) {
                        return;
                    }
                    let seq = obj.seq().load(Ordering::Acquire);
                    let now = timer::expirations(&obj);
                    if now != seen {
                        seen = now;
                        callback();
                        continue;
                    }
                    let due = timer::next_due(&obj);
                    if due == Deadline::Never {
                        return; // cancelled, or a one-shot that has fired
                    }
                    if due.remaining() == Some(Duration::ZERO) {
                        if let Ok(g) = obj.lock_bounded() {
                            timer::expire_locked(&g);
                        }
                        continue;
                    }
                    let slice = due.min(Deadline::At(Instant::now() + Duration::from_secs(1)));
                    futex::wait(obj.seq(), seq, slice);
                }
            })
            .map_err(|_| {
                Error::os(
                    "starting the timer callback thread",
                    rustix::io::Errno::AGAIN,
                )
            })?;
        callbacks().insert(key(self), (stop, thread));
        Ok(prev)
    }

    /// `CancelWaitableTimer`: disarms the timer; its signaled state is unchanged and
    /// blocked waiters keep waiting (TM-17). Returns the previous signaled state.
    pub fn cancel_timer(&self) -> Result<bool> {
        let o = self.need(ObjectKind::Timer, "cancel", Some(Access::MODIFY))?;
        let prev = timer::cancel(o)?;
        stop_callback(self);
        Ok(prev)
    }
}
