//! State changes and handle bookkeeping: `SetEvent`, `ResetEvent`, `PulseEvent`,
//! `ReleaseMutex`, `ReleaseSemaphore`, `CloseHandle`, `Get/SetHandleInformation`,
//! `Get/SetLastError`.
//!
//! It must not wait.

use procsync::ObjectKind;

use crate::last_error::{self, Code, guard};
use crate::ptr;
use crate::table::{self, modify_bit};
use crate::types::*;

fn event_op(h: HANDLE, op: fn(&procsync::Handle) -> procsync::Result<bool>) -> BOOL {
    guard(FALSE, || {
        let need = modify_bit(ObjectKind::Event);
        table::with_sync(h, Some(ObjectKind::Event), need, |e| {
            op(e)?;
            Ok(TRUE)
        })
    })
}

/// `SetEvent`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_SetEvent(h: HANDLE) -> BOOL {
    event_op(h, procsync::Handle::set)
}

/// `ResetEvent`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_ResetEvent(h: HANDLE) -> BOOL {
    event_op(h, procsync::Handle::reset)
}

/// `PulseEvent`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_PulseEvent(h: HANDLE) -> BOOL {
    event_op(h, procsync::Handle::pulse)
}

/// `ReleaseMutex`: needs ownership, not a right (AM-07).
#[unsafe(no_mangle)]
pub extern "C" fn procsync_ReleaseMutex(h: HANDLE) -> BOOL {
    guard(FALSE, || {
        table::with_sync(h, Some(ObjectKind::Mutex), 0, |m| {
            m.release(1)?;
            Ok(TRUE)
        })
    })
}

/// `ReleaseSemaphore`: `prev` (optional) gets the previous count, only on success (SM-05).
///
/// # Safety
/// `prev` is NULL or points to a writable `LONG`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_ReleaseSemaphore(
    h: HANDLE,
    count: LONG,
    prev: *mut LONG,
) -> BOOL {
    guard(FALSE, || {
        let f = table::lookup(h)?;
        let s = f.need(ObjectKind::Semaphore, modify_bit(ObjectKind::Semaphore))?;
        if count <= 0 {
            return Err(Code(ERROR_INVALID_PARAMETER));
        }
        if !prev.is_null() && !prev.is_aligned() {
            return Err(Code(ERROR_INVALID_PARAMETER));
        }
        let p = s.release(count as u32)?;
        // SAFETY: NULL or a writable LONG, as the caller promises.
        unsafe { ptr::write_opt(prev, p as LONG) }?;
        Ok(TRUE)
    })
}

/// `CloseHandle`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_CloseHandle(h: HANDLE) -> BOOL {
    guard(FALSE, || {
        table::close(h)?;
        Ok(TRUE)
    })
}

/// `GetHandleInformation`.
///
/// # Safety
/// `flags` points to a writable `DWORD`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_GetHandleInformation(h: HANDLE, flags: *mut DWORD) -> BOOL {
    guard(FALSE, || {
        let v = table::flags(h)?;
        // SAFETY: checked for NULL and alignment; the caller promises a DWORD.
        unsafe { ptr::write(flags, v) }?;
        Ok(TRUE)
    })
}

/// `SetHandleInformation`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_SetHandleInformation(h: HANDLE, mask: DWORD, flags: DWORD) -> BOOL {
    guard(FALSE, || {
        table::set_flags(h, mask, flags)?;
        Ok(TRUE)
    })
}

/// `GetLastError`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_GetLastError() -> DWORD {
    last_error::get()
}

/// `SetLastError`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_SetLastError(code: DWORD) {
    last_error::set(code);
}
