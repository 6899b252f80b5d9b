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

/// Converts one of the constants above into the [`ExitCode`] `main` returns.
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}
