//! `GetLastError` / `SetLastError` (one value per thread), the mapping of procsync
//! errors onto Win32 error codes, and [`guard`], which every exported function runs
//! its body in: it turns an `Err(code)` into the Win32 failure value plus the thread's
//! last error, and a panic into `ERROR_INTERNAL_ERROR` (a panic never unwinds into C).
//!
//! It must not decide *when* Windows sets the last error on success; callers do.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::types::*;

thread_local! {
    static LAST: Cell<DWORD> = const { Cell::new(0) };
}

/// The calling thread's last error.
pub fn get() -> DWORD {
    LAST.with(Cell::get)
}

/// Sets the calling thread's last error.
pub fn set(code: DWORD) {
    LAST.with(|c| c.set(code));
}

/// A Win32 error code as the `Err` of an exported function's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub DWORD);

/// Result of an exported function's body.
pub type W<T> = Result<T, Code>;

impl From<procsync::Error> for Code {
    fn from(e: procsync::Error) -> Code {
        use procsync::Error as E;
        Code(match e {
            E::NotFound { .. } => ERROR_FILE_NOT_FOUND,
            E::WrongType { .. } | E::InvalidHandle(_) | E::NotInheritable(_) => {
                ERROR_INVALID_HANDLE
            }
            E::InvalidName { .. } => ERROR_INVALID_NAME,
            E::InvalidArgument { .. } | E::DuplicateObject { .. } => ERROR_INVALID_PARAMETER,
            E::NotOwner => ERROR_NOT_OWNER,
            E::RecursionLimit(_) => ERROR_MUTANT_LIMIT_EXCEEDED,
            E::TooManyPosts { .. } => ERROR_TOO_MANY_POSTS,
            E::AccessDenied { .. } => ERROR_ACCESS_DENIED,
            E::Unsupported(_) => ERROR_NOT_SUPPORTED,
            E::Exhausted {
                what: "open file descriptors",
                ..
            } => ERROR_TOO_MANY_OPEN_FILES,
            E::Exhausted { .. } => ERROR_NOT_ENOUGH_MEMORY,
            _ => ERROR_GEN_FAILURE,
        })
    }
}

/// Runs an exported function's body: `Ok(v)` → `v`; `Err(code)` → `fail` with the last
/// error set to `code`; a panic → `fail` with `ERROR_INTERNAL_ERROR`.
pub fn guard<T>(fail: T, body: impl FnOnce() -> W<T>) -> T {
    crate::init();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(Code(code))) => {
            set(code);
            fail
        }
        Err(_) => {
            set(ERROR_INTERNAL_ERROR);
            fail
        }
    }
}
