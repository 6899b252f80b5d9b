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
//! values), `create`, `ops`, `wait`, `apc`, `timer`, `process`.
//!
//! This crate holds the only `unsafe` outside the library's system layer: C hands in
//! raw pointers. Each block says why it is sound.
#![allow(unsafe_code)]
#![allow(non_snake_case)]

mod apc;
mod create;
mod last_error;
mod ops;
mod process;
mod ptr;
mod table;
mod timer;
mod types;
mod wait;

/// Per-process set-up, run before the first call: starts the duplication endpoint, so
/// that other processes can `DuplicateHandle` into this one. Also run at load time by
/// the shared library (see [`LOAD`]).
pub(crate) fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = procsync::accept_duplicates();
    });
}

extern "C" fn on_load() {
    init();
}

/// Runs [`init`] when the library is loaded, so that a process that has made no call
/// yet can already receive handles (an ELF constructor).
#[used]
#[unsafe(link_section = ".init_array")]
static LOAD: extern "C" fn() = on_load;
