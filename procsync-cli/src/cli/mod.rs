//! The command line of the `procsync` binary: clap definitions and dispatch to the
//! subcommands (`repl`, `demo`, `bench`, and the hidden `demo-worker` and
//! `bench-child` that `demo` and `bench` re-execute).
//!
//! This layer only calls the public library API (`procsync::…`); it never reaches into
//! the library's internals, and it turns every outcome into an exit code from
//! [`exit`]. Nothing here panics on bad input: clap's usage errors exit with
//! [`exit::USAGE`].

mod bench;
mod command;
mod demo;
pub mod exit;
mod parse;
mod repl;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Win32 interprocess synchronization (events, mutexes, semaphores, waits) for Linux.
#[derive(Debug, Parser)]
#[command(name = "procsync", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hold handles in this process and drive them with one command per line on standard
    /// input, one answer per line on standard output (the protocol is in REPL.md).
    Repl(repl::Options),
    /// Run worker processes that coordinate only through named objects (a start gate, a
    /// semaphore of 2 slots, a mutex around a shared counter), then verify the result.
    Demo {
        /// Number of worker processes.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        workers: u32,
        /// Rounds each worker runs (take a slot, update the counter, leave).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        rounds: u32,
    },
    /// Measure procsync against its baselines (pthread mutex, sem_t, futex, timerfd,
    /// waitpid) in one run and print the ratios (the scenarios of benches/README.md).
    Bench(bench::Options),
    /// One worker of `procsync demo` (started by the demo itself).
    #[command(hide = true)]
    DemoWorker(demo::WorkerArgs),
    /// One partner process of `procsync bench` (started by the bench itself).
    #[command(hide = true)]
    BenchChild,
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are "errors" that print to stdout and succeed.
            let usage = err.use_stderr();
            let _ = err.print();
            return exit::code(if usage { exit::USAGE } else { exit::OK });
        }
    };
    match cli.command {
        Command::Repl(opts) => repl::run(&opts),
        Command::Demo { workers, rounds } => demo::run(workers, rounds),
        Command::Bench(opts) => bench::run(&opts),
        Command::DemoWorker(args) => demo::worker(&args),
        Command::BenchChild => bench::child(),
    }
}
