//! Waitable timers: `SetWaitableTimer(Ex)` and `CancelWaitableTimer`, with completion
//! routines delivered as APCs to the setting thread (TM-24); and `QueueUserAPC` on the
//! calling thread (`GetCurrentThread()`).
//!
//! Due times are `LARGE_INTEGER`s in 100 ns units: negative is relative (monotonic
//! clock, TM-05), otherwise an absolute UTC `FILETIME` (TM-02, TM-06). The completion
//! routine's two `DWORD`s are the `FILETIME` of the expiry as the library's callback
//! thread observed it.
//!
//! It must not implement timer expiry; the library does.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

fn filetime_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_nanos() / 100) as u64 + EPOCH_DIFF as u64
}

/// A pointer that may cross threads: the completion routine's argument, which C owns.
#[derive(Clone, Copy)]
struct Arg(usize);

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
    let due = due_of(due);
    match routine {
        None => {
            t.set_timer(due, period as u32)?;
        }
        Some(routine) => {
            let q = Arc::downgrade(&apc::current()?);
            let arg = Arg(arg as usize);
            t.set_timer_with_callback(due, period as u32, move || {
                let now = filetime_now();
                apc::push_to(
                    &q,
                    Box::new(move || {
                        let arg = arg;
                        // SAFETY: a C completion routine, called on its setting thread
                        // with the argument it was given, as Windows does.
                        unsafe { routine(arg.0 as *mut c_void, now as u32, (now >> 32) as u32) }
                    }),
                );
            })?;
        }
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
        f.need(ObjectKind::Timer, modify_bit(ObjectKind::Timer))?
            .cancel_timer()?;
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
        apc::current()?.push(Box::new(move || {
            // SAFETY: a C APC function, called on its thread with its data.
            unsafe { func(data) }
        }));
        Ok(1)
    })
}
