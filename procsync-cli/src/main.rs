//! The `procsync` command: a line-protocol REPL over every handle operation
//! (`procsync repl`, specified in `docs/REPL.md`), a multi-process demonstration
//! (`procsync demo`) and the benchmark entry point (`procsync bench`).
//!
//! This file only hands over to [`cli::run`]; parsing, dispatch and the meaning of
//! each exit code (see `cli/exit.rs`) live under `src/cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
