//! Waitable timers: `SetWaitableTimer(Ex)` and `CancelWaitableTimer`, with completion
//! routines delivered as APCs to the setting thread (TM-24); and `QueueUserAPC` on the
//! calling thread (`GetCurrentThread()`).
//!
//! Due times are `LARGE_INTEGER`s in 100 ns units: negative is relative (monotonic
//! clock, TM-05), otherwise an absolute UTC `FILETIME` (TM-02, TM-06). The completion
//! routine's two `DWORD`s are the `FILETIME` at which the alertable wait collected it.
//!
//! It must not implement timer expiry (the library does) nor run routines (`apc` does).

use std::ffi::c_void;
use std::time::{Duration, Instant, UNIX_EPOCH};

use procsync::{ObjectKind, TimerDue};

use crate::apc;
use crate::last_error::{self, Code, W, guard};
use crate::ptr;
use crate::table::{self, CURRENT_THREAD, modify_bit};
use crate::types::*;

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: i64 = 116_444_736_000_000_000;

fn due_of(due: i64) -> TimerDue {
    if due < 0 {
        TimerDue::Relative(Duration::from_nanos(
            (due.unsigned_abs()).saturating_mul(100),
        ))
    } else {
        // Before 1970: in the past, fires at once (TM-04).
        TimerDue::AbsoluteUnixMs(u64::try_from((due - EPOCH_DIFF) / 10_000).unwrap_or(0))
    }
}

/// # Safety
/// `due` is NULL or points to a `LARGE_INTEGER`.
unsafe fn set(
    h: HANDLE,
    due: *const i64,
    period: LONG,
    routine: TimerApcRoutine,
    arg: *mut c_void,
    resume: BOOL,
) -> W<BOOL> {
    let f = table::lookup(h)?;
    let t = f.need(ObjectKind::Timer, modify_bit(ObjectKind::Timer))?;
    // SAFETY: checked for NULL and alignment; the caller promises a LARGE_INTEGER.
    let due = unsafe { ptr::read(due) }?;
    if period < 0 {
        return Err(Code(ERROR_INVALID_PARAMETER));
    }
    // The routine's due time is taken before the timer's, so it is never later (see apc).
    let now_mono = Instant::now();
    let due = due_of(due);
    t.set_timer(due, period as u32)?;
    apc::disarm(t);
    if routine.is_some() {
        let at = match due {
            TimerDue::Relative(d) => apc::Due::Mono(now_mono + d),
            TimerDue::AbsoluteUnixMs(ms) => apc::Due::Wall(UNIX_EPOCH + Duration::from_millis(ms)),
        };
        apc::arm(t, at, period as u32, routine, arg);
    }
    if resume != 0 {
        // TM-22: no resume support; the call succeeds.
        last_error::set(ERROR_NOT_SUPPORTED);
    }
    Ok(TRUE)
}

/// `SetWaitableTimer`.
///
/// # Safety
/// `due` points to a `LARGE_INTEGER`; `routine`, if any, is callable with `arg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_SetWaitableTimer(
    h: HANDLE,
    due: *const i64,
    period: LONG,
    routine: TimerApcRoutine,
    arg: *mut c_void,
    resume: BOOL,
) -> BOOL {
    // SAFETY: forwarded from the caller.
    guard(FALSE, || unsafe {
        set(h, due, period, routine, arg, resume)
    })
}

/// `SetWaitableTimerEx` (the wake context and tolerable delay are ignored).
///
/// # Safety
/// As [`procsync_SetWaitableTimer`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_SetWaitableTimerEx(
    h: HANDLE,
    due: *const i64,
    period: LONG,
    routine: TimerApcRoutine,
    arg: *mut c_void,
    _wake_context: *mut c_void,
    _tolerable_delay: u32,
) -> BOOL {
    // SAFETY: forwarded from the caller.
    guard(FALSE, || unsafe {
        set(h, due, period, routine, arg, FALSE)
    })
}

/// `CancelWaitableTimer`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_CancelWaitableTimer(h: HANDLE) -> BOOL {
    guard(FALSE, || {
        let f = table::lookup(h)?;
        let t = f.need(ObjectKind::Timer, modify_bit(ObjectKind::Timer))?;
        t.cancel_timer()?;
        apc::disarm(t);
        Ok(TRUE)
    })
}

/// `GetCurrentThread()`: the pseudo-handle `(HANDLE)-2`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_GetCurrentThread() -> HANDLE {
    CURRENT_THREAD as HANDLE
}

/// `GetCurrentThreadId`: the kernel thread id.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_GetCurrentThreadId() -> DWORD {
    rustix::thread::gettid().as_raw_nonzero().get() as DWORD
}

/// `QueueUserAPC`, for the calling thread only (`GetCurrentThread()`); other thread
/// handles do not exist here (`ERROR_INVALID_HANDLE`). Returns nonzero on success.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_QueueUserAPC(func: ApcFunc, thread: HANDLE, data: usize) -> DWORD {
    guard(0, || {
        if thread as usize != CURRENT_THREAD {
            return Err(Code(ERROR_INVALID_HANDLE));
        }
        let func = func.ok_or(Code(ERROR_INVALID_PARAMETER))?;
        apc::queue_self(Box::new(move || {
            // SAFETY: a C APC function, called on its thread with its data.
            unsafe { func(data) }
        }));
        Ok(1)
    })
}
