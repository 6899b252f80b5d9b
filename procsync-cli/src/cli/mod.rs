//! The command line of the `procsync` binary: clap definitions and dispatch to the
//! subcommands: the shell ones (`run`, `wait`, `set`, `reset`, `pulse`, `release`,
//! `hold`, `ls`, `inspect`, `gc`), `repl`, `demo`, `bench`, and the hidden
//! `demo-worker` and `bench-child` that `demo` and `bench` re-execute.
//! `Cluster\x` names (procsync-etcd) are routed by the shell subcommands to
//! [`cluster`], with the endpoint of the global `--etcd` option or `PROCSYNC_ETCD`.
//!
//! This layer only calls the public library API (`procsync::…`); it never reaches into
//! the library's internals, and it turns every outcome into an exit code from
//! [`exit`]. Nothing here panics on bad input: clap's usage errors exit with
//! [`exit::USAGE`].

mod bench;
mod cluster;
mod command;
mod demo;
mod docs;
pub mod exit;
mod hold;
mod json;
mod ls;
mod oneshot;
mod parse;
mod peek;
mod repl;
mod run;
mod scan;
mod shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Win32 interprocess synchronization (events, mutexes, semaphores, waits) for Linux.
#[derive(Debug, Parser)]
#[command(
    name = "procsync",
    version,
    about,
    long_about = None,
    after_help = "\
Examples:
  procsync run --semaphore build-slots --max 2 -- make test   # at most 2 at once
  procsync run --mutex nightly --strict -- ./nightly.sh       # one at a time
  procsync wait start-gate --create event & procsync set start-gate
  procsync wait a b c --any --timeout 30s                     # prints 0, 1 or 2
  procsync ls --json
  procsync --etcd http://10.0.0.1:2379 run --semaphore 'Cluster\\builds' --max 4 -- make

Names: `Local\\x` or a bare `x` (this user's), `Global\\x` (every user's), `Cluster\\x`
(kept in etcd, shared by every host: needs --etcd or PROCSYNC_ETCD; docs/ETCD.md).
Durations: 500ms, 2s, 1m, inf. Exit status: 0 success, 1 timeout, 2 usage, 3 abandoned
mutex, 4 other errors, 5 etcd unavailable or session lost (`run`: the command's own).
`procsync help COMMAND` for each command."
)]
struct Cli {
    /// No notes on standard error (results on standard output and errors still appear).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// etcd endpoints for `Cluster\x` names (run, wait, set, reset, pulse, release, ls):
    /// comma-separated client URLs, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379.
    /// Default: the PROCSYNC_ETCD environment variable. Local names stay local. A dead or
    /// cut-off client's holds end PROCSYNC_ETCD_TTL seconds later (default 10).
    #[arg(long, global = true, value_name = "URLS")]
    etcd: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command while holding a unit of a job pool or a mutex; give it back however
    /// the command ends (even killed with SIGKILL).
    Run(run::RunArgs),
    /// Wait until named objects are signaled (one, any or all), with a timeout.
    Wait(oneshot::WaitArgs),
    /// Set an event (wakes its waiters; a manual-reset one stays set).
    Set(oneshot::EventArgs),
    /// Reset an event to unsignaled.
    Reset(oneshot::EventArgs),
    /// Pulse an event: release its current waiters, leave it unset.
    Pulse(oneshot::EventArgs),
    /// Give units back to a semaphore; prints its count before.
    Release(oneshot::ReleaseArgs),
    /// Create named objects and keep them alive until interrupted, printing changes.
    Hold(hold::HoldArgs),
    /// List every live named object: type, state, holders, waiters.
    Ls(ls::LsArgs),
    /// Show one named object in detail.
    Inspect(ls::InspectArgs),
    /// Remove files that killed holders left behind (normally done automatically).
    Gc(ls::GcArgs),
    /// Print a completion script for bash, zsh, fish, elvish or PowerShell.
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff): `procsync man > procsync.1`.
    #[command(hide = true)]
    Man,
    /// The command of a `procsync run` (started by `run` itself).
    #[command(hide = true)]
    RunChild {
        /// The runner's pid.
        parent: u32,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Hold handles in this process and drive them with one command per line on standard
    /// input, one answer per line on standard output (the protocol is in docs/REPL.md).
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
    /// waitpid) in one run and print the ratios (the scenarios of procsync-bench/README.md).
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
    let quiet = cli.quiet;
    let ep = cluster::Endpoint::resolve(cli.etcd);
    let outcome = match cli.command {
        Command::Run(args) => run::run(&args, &ep, quiet),
        Command::Wait(args) => oneshot::wait(&args, &ep, quiet),
        Command::Set(args) => oneshot::event(oneshot::EventOp::Set, &args, &ep),
        Command::Reset(args) => oneshot::event(oneshot::EventOp::Reset, &args, &ep),
        Command::Pulse(args) => oneshot::event(oneshot::EventOp::Pulse, &args, &ep),
        Command::Release(args) => oneshot::release(&args, &ep),
        Command::Hold(args) => hold::hold(&args),
        Command::Ls(args) => ls::ls(&args, &ep),
        Command::Inspect(args) => ls::inspect(&args),
        Command::Gc(args) => ls::gc(&args, quiet),
        Command::Completions(args) => docs::completions::<Cli>(&args),
        Command::Man => docs::man::<Cli>(),
        Command::RunChild { parent, command } => run::run_child(parent, &command),
        other => return run_other(other),
    };
    match outcome {
        Ok(code) => exit::code(code),
        Err(failure) => {
            shell::report(&failure);
            exit::code(failure.code)
        }
    }
}

/// The subcommands that predate the shell ones and return their own exit code.
fn run_other(command: Command) -> ExitCode {
    match command {
        Command::Repl(opts) => repl::run(&opts),
        Command::Demo { workers, rounds } => demo::run(workers, rounds),
        Command::Bench(opts) => bench::run(&opts),
        Command::DemoWorker(args) => demo::worker(&args),
        Command::BenchChild => bench::child(),
        _ => exit::code(exit::USAGE),
    }
}
