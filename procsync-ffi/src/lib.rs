//! # procsync-ffi
//!
//! A C ABI with the Win32 names over procsync, so that Windows C and C++ code that
//! synchronizes processes builds and runs on Linux: `CreateEventW`, `OpenMutexA`,
//! `WaitForMultipleObjectsEx`, `SignalObjectAndWait`, `SetWaitableTimer` with
//! completion routines, `DuplicateHandle` between processes, `GetLastError`, ….
//!
//! Every function is exported as `procsync_<Win32 name>`; the header
//! `include/procsync/win32.h` maps the Win32 names onto them unless
//! `PROCSYNC_NO_WIN32_NAMES` is defined. Porting notes: `docs/PORTING.md`.
//!
//! Modules: `types` (C types and constants), `last_error` (per-thread last error,
//! error mapping, the panic guard), `ptr` (checked pointer access), `table` (HANDLE
//! values; stored in `index`, freed through `reclaim`), `create`, `ops`, `wait`, `apc`, `timer`, `process`.
//!
//! This crate holds the only `unsafe` outside the library's system layer: C hands in
//! raw pointers. Each block says why it is sound.
#![allow(unsafe_code)]
#![allow(non_snake_case)]

mod apc;
mod create;
mod index;
mod last_error;
mod ops;
mod process;
mod ptr;
mod reclaim;
mod table;
mod timer;
mod types;
mod wait;

/// The exported functions as Rust sees them, for Rust callers that want the C ABI's
/// exact behaviour (`HANDLE` values, the thread's last error) and for the `mutex/c-abi`
/// row of `procsync bench`, which measures its overhead over the Rust API.
pub mod c_abi {
    pub use crate::create::{procsync_CreateMutexA, procsync_OpenMutexA};
    pub use crate::ops::{procsync_CloseHandle, procsync_GetLastError, procsync_ReleaseMutex};
    pub use crate::types::{BOOL, DWORD, HANDLE, INFINITE, TRUE, WAIT_OBJECT_0};
    pub use crate::wait::procsync_WaitForSingleObject;
}

/// Per-process set-up, run by the first call into the library (every exported function
/// but `GetLastError`/`SetLastError`): starts the duplication endpoint, so that other
/// processes can `DuplicateHandle` into this one from then on.
///
/// Not an ELF constructor: the rlib is linked into Rust programs too (`procsync bench`),
/// which must not get a thread at load time.
pub(crate) fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = procsync::accept_duplicates();
    });
}
