//! The Win32 scalar types, structures and constants of the C ABI, as Rust sees them.
//! The C view is `include/procsync/win32.h`; the two must agree (values from
//! SEMANTICS.md, "Constants used below").
//!
//! It owns no behaviour.
#![allow(clippy::upper_case_acronyms)] // the Win32 spellings

use std::ffi::c_void;

/// `HANDLE`.
pub type HANDLE = *mut c_void;
/// `BOOL`.
pub type BOOL = i32;
/// `DWORD`.
pub type DWORD = u32;
/// `LONG`.
pub type LONG = i32;

/// `SECURITY_ATTRIBUTES`: only `bInheritHandle` is honoured (no ACLs, see PORTING.md).
#[repr(C)]
pub struct SecurityAttributes {
    /// `nLength`.
    pub n_length: DWORD,
    /// `lpSecurityDescriptor` (ignored).
    pub security_descriptor: *mut c_void,
    /// `bInheritHandle`.
    pub inherit_handle: BOOL,
}

/// `PTIMERAPCROUTINE`.
pub type TimerApcRoutine = Option<unsafe extern "C" fn(*mut c_void, DWORD, DWORD)>;
/// `PAPCFUNC`.
pub type ApcFunc = Option<unsafe extern "C" fn(usize)>;

/// `TRUE`.
pub const TRUE: BOOL = 1;
pub const FALSE: BOOL = 0;

/// `WAIT_OBJECT_0`.
pub const WAIT_OBJECT_0: DWORD = 0;
pub const WAIT_ABANDONED_0: DWORD = 0x80;
pub const WAIT_IO_COMPLETION: DWORD = 0xC0;
pub const WAIT_TIMEOUT: DWORD = 0x102;
pub const WAIT_FAILED: DWORD = 0xFFFF_FFFF;
/// `INFINITE`.
pub const INFINITE: DWORD = 0xFFFF_FFFF;
pub const MAXIMUM_WAIT_OBJECTS: DWORD = 64;

pub const ERROR_SUCCESS: DWORD = 0;
pub const ERROR_FILE_NOT_FOUND: DWORD = 2;
pub const ERROR_TOO_MANY_OPEN_FILES: DWORD = 4;
pub const ERROR_ACCESS_DENIED: DWORD = 5;
pub const ERROR_INVALID_HANDLE: DWORD = 6;
pub const ERROR_NOT_ENOUGH_MEMORY: DWORD = 8;
pub const ERROR_GEN_FAILURE: DWORD = 31;
pub const ERROR_NOT_SUPPORTED: DWORD = 50;
pub const ERROR_INVALID_PARAMETER: DWORD = 87;
pub const ERROR_INVALID_NAME: DWORD = 123;
pub const ERROR_ALREADY_EXISTS: DWORD = 183;
pub const ERROR_NOT_OWNER: DWORD = 288;
pub const ERROR_TOO_MANY_POSTS: DWORD = 298;
pub const ERROR_MUTANT_LIMIT_EXCEEDED: DWORD = 587;
pub const ERROR_INTERNAL_ERROR: DWORD = 1359;
pub const ERROR_PRIVILEGE_NOT_HELD: DWORD = 1314;

pub const READ_CONTROL: DWORD = 0x0002_0000;
pub const SYNCHRONIZE: DWORD = 0x0010_0000;
pub const STANDARD_RIGHTS_REQUIRED: DWORD = 0x000F_0000;
pub const ACCESS_SYSTEM_SECURITY: DWORD = 0x0100_0000;
pub const MAXIMUM_ALLOWED: DWORD = 0x0200_0000;
pub const GENERIC_READ: DWORD = 0x8000_0000;
pub const GENERIC_WRITE: DWORD = 0x4000_0000;
pub const GENERIC_EXECUTE: DWORD = 0x2000_0000;
pub const GENERIC_ALL: DWORD = 0x1000_0000;

pub const HANDLE_FLAG_INHERIT: DWORD = 0x1;
pub const HANDLE_FLAG_PROTECT_FROM_CLOSE: DWORD = 0x2;
pub const DUPLICATE_CLOSE_SOURCE: DWORD = 0x1;
pub const DUPLICATE_SAME_ACCESS: DWORD = 0x2;

pub const CREATE_EVENT_MANUAL_RESET: DWORD = 0x1;
pub const CREATE_EVENT_INITIAL_SET: DWORD = 0x2;
pub const CREATE_MUTEX_INITIAL_OWNER: DWORD = 0x1;
pub const CREATE_WAITABLE_TIMER_MANUAL_RESET: DWORD = 0x1;

pub const PROCESS_DUP_HANDLE: DWORD = 0x0040;
pub const PROCESS_ALL_ACCESS: DWORD = 0x001F_FFFF;
