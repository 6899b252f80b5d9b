//! The typed timer's calls: [`Timer::set`] with a due time given as a [`Duration`]
//! (relative) or a [`SystemTime`] (absolute) and an optional period as a [`Duration`].
//!
//! It only converts arguments; arming, cancelling and callbacks are [`Handle`](crate::Handle)'s
//! (`handle::timer`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::typed::Timer;
use super::vocab::TimerDue;
use crate::error::{Error, Result};

impl From<Duration> for TimerDue {
    /// That long from now, on the monotonic clock.
    fn from(d: Duration) -> TimerDue {
        TimerDue::Relative(d)
    }
}

impl From<SystemTime> for TimerDue {
    /// At that wall-clock time (to the millisecond; a time before 1970 is due at once).
    fn from(t: SystemTime) -> TimerDue {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        TimerDue::AbsoluteUnixMs(ms)
    }
}

/// A period in whole milliseconds, as Win32 takes it (`None` or zero = one-shot).
fn period_ms(period: Option<Duration>) -> Result<u32> {
    let Some(p) = period.filter(|p| !p.is_zero()) else {
        return Ok(0);
    };
    let ms = p.as_millis();
    if ms == 0 {
        return Err(Error::invalid(format!(
            "a timer period is counted in whole milliseconds; {p:?} is less than one (use at least 1 ms, or None for a one-shot timer)"
        )));
    }
    // Too long a period is refused by `set_timer` with the limit in its message.
    Ok(u32::try_from(ms).unwrap_or(u32::MAX))
}

impl Timer {
    /// `SetWaitableTimer`: arms the timer for `due` (a [`Duration`] from now, a
    /// [`SystemTime`], or a [`TimerDue`]) and then every `period` (`None` = once;
    /// whole milliseconds). Resets the signaled state (TM-16); returns the previous one.
    ///
    /// ```
    /// # let root = std::env::temp_dir().join(format!("procsync-doc-{}", std::process::id()));
    /// # // SAFETY: the doctest has one thread and has not started anything yet.
    /// # unsafe { std::env::set_var("PROCSYNC_ROOT", &root) };
    /// use procsync::{Timer, WaitOutcome};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let t = Timer::builder().manual_reset().create()?;
    /// t.set(SystemTime::now() + Duration::from_millis(10), None)?;
    /// assert_eq!(t.wait(None)?, WaitOutcome::Signaled(0));
    /// # drop(t);
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), procsync::Error>(())
    /// ```
    pub fn set(&self, due: impl Into<TimerDue>, period: Option<Duration>) -> Result<bool> {
        self.0.set_timer(due.into(), period_ms(period)?)
    }

    /// As [`Timer::set`], and `callback` runs once per expiration on a thread the
    /// library starts in this process (Win32's completion routine, see
    /// [`Handle::set_timer_with_callback`](crate::Handle::set_timer_with_callback)),
    /// until the timer is cancelled, set again, or this handle dropped.
    pub fn set_with_callback(
        &self,
        due: impl Into<TimerDue>,
        period: Option<Duration>,
        callback: impl FnMut() + Send + 'static,
    ) -> Result<bool> {
        self.0
            .set_timer_with_callback(due.into(), period_ms(period)?, callback)
    }

    /// `CancelWaitableTimer`: disarms the timer; the signaled state is unchanged and
    /// waiters keep waiting (TM-17). Returns the previous signaled state.
    pub fn cancel(&self) -> Result<bool> {
        self.0.cancel_timer()
    }
}
