//! The exit codes of the `procsync` binary, one documented constant each.
//!
//! Scripts and the integration tests rely on these numbers; add new codes, never
//! renumber. Nothing here decides *when* a code is used: the subcommands do.

use std::process::ExitCode;

/// Success: the subcommand did what was asked (for `repl`: end of input or `exit`, even
/// when individual commands answered `err …`; for `demo`: verification passed).
pub const OK: u8 = 0;

/// Failure: the subcommand could not run (a library or I/O error it cannot answer on a
/// protocol line), or `demo` ran and its verification failed.
pub const FAILURE: u8 = 1;

/// Usage error: the command line itself was wrong (unknown subcommand or flag, a value
/// out of range). clap prints the reason on standard error.
pub const USAGE: u8 = 2;

/// Timeout: a wait (`wait`, `run`, `hold`'s creation) ended by its `--timeout` before
/// the object was signaled. Same number as [`FAILURE`], which only `repl`, `demo` and
/// `bench` use.
pub const TIMEOUT: u8 = 1;

/// Abandoned: the previous owner of a mutex died holding it, and the command does not
/// go on (`run --mutex --strict`), or `wait` acquired an abandoned mutex.
pub const ABANDONED: u8 = 3;

/// Any other error: the object does not exist, has another type, the name is invalid,
/// access is denied, or the operating system refused something. The message on
/// standard error names the object and the library's error code.
pub const ERROR: u8 = 4;

/// Cluster names (`Cluster\x`, on etcd): no etcd member answered in time
/// (`unavailable`: whether the last change took effect may be unknown), or this
/// client's session lease ended (`session-lost`: every hold it had is gone). Distinct
/// from [`ERROR`] because retrying may succeed, and from [`TIMEOUT`] because no wait ran
/// out: the cluster could not be asked.
pub const CLUSTER_UNAVAILABLE: u8 = 5;

/// `run`: the command exists but could not be executed (as in a shell).
pub const CANNOT_EXECUTE: u8 = 126;

/// `run`: the command was not found (as in a shell).
pub const NOT_FOUND: u8 = 127;

/// Converts one of the constants above into the [`ExitCode`] `main` returns.
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}
