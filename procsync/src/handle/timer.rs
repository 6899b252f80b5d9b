//! Waitable timers on handles: set, cancel, and set with a completion callback.
//!
//! It checks the handle's type and rights and converts the due time; the timer's state
//! is `obj::timer`'s, and the callback threads are `callback`'s.

use super::callback;
use super::core::Handle;
use super::vocab::{Access, TimerDue};
use crate::error::{Error, Result};
use crate::obj::{ObjectKind, timer};
use crate::sys::time;

/// Longest period (LM-05: a Win32 LONG of milliseconds).
const MAX_PERIOD_MS: u32 = i32::MAX as u32;

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
        callback::stop(self.serial, o);
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
        callback: impl FnMut() + Send + 'static,
    ) -> Result<bool> {
        let prev = self.set_timer(due, period_ms)?;
        callback::start(self.serial, self.obj.clone(), callback)?;
        Ok(prev)
    }

    /// `CancelWaitableTimer`: disarms the timer; its signaled state is unchanged and
    /// blocked waiters keep waiting (TM-17). Returns the previous signaled state.
    pub fn cancel_timer(&self) -> Result<bool> {
        let o = self.need(ObjectKind::Timer, "cancel", Some(Access::MODIFY))?;
        let prev = timer::cancel(o)?;
        callback::stop(self.serial, o);
        Ok(prev)
    }
}
