//! The one-shot subcommands that act on named objects and exit: `wait`, `set`, `reset`,
//! `pulse` and `release`. Each opens (or with `wait --create`, creates) its objects,
//! makes one library call, prints what a script needs on standard output (the index
//! for `wait --any`, the previous count for `release`), and returns an exit code.
//!
//! A one-shot process cannot keep a mutex: `wait` releases every mutex it acquired
//! before exiting (it waits until the mutex is free), instead of abandoning it.
//!
//! Cluster names (`Cluster\x`) go to [`super::cluster`], which does the same on etcd.

use clap::{Args, ValueEnum};
use procsync::{Access, CreateOptions, Handle, ObjectKind, ObjectSpec, WaitOutcome};

use super::cluster::{self, Endpoint};
use super::exit;
use super::shell::{Failure, Outcome, Timeout, note, open_any, timeout_arg};

/// The type `wait --create` gives a missing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CreateType {
    /// A manual-reset event, unset (a gate: `procsync set NAME` opens it for everyone).
    Event,
    /// An auto-reset event, unset (each `set` releases one waiter).
    AutoEvent,
    /// A mutex, not owned.
    Mutex,
    /// A semaphore with no unit available and `--max` units at most.
    Semaphore,
}

/// `procsync wait`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  procsync wait build-done --create event       # block until someone runs `procsync set build-done`
  procsync wait a b c --any --timeout 30s       # prints 0, 1 or 2: which one fired
  procsync wait Global\\\\deploy-lock --timeout 0  # is the mutex free right now? (0 yes, 1 no)
  procsync wait 'Cluster\\go' --create event --etcd http://10.0.0.1:2379  # a gate for every host

Exit status: 0 signaled, 1 timeout, 3 an abandoned mutex was acquired, 4 error, 5 etcd
unavailable or session lost. A mutex acquired by `wait` is released again before
exiting; a semaphore unit is kept (taken): give it back with `procsync release NAME`
(a unit of a cluster pool made by `run` goes back when `wait` exits: it is leased).")]
pub struct WaitArgs {
    /// Objects to wait on: `Local\x`, `Global\x` or a bare name (up to 64); or all
    /// `Cluster\x` names (with --etcd).
    #[arg(required = true, num_args = 1..=64, value_name = "NAME")]
    names: Vec<String>,
    /// Return as soon as one object is signaled and print its 0-based index.
    #[arg(long, conflicts_with = "all")]
    any: bool,
    /// Return when all objects are signaled at once (the default for several names).
    #[arg(long)]
    all: bool,
    /// Give up after this long (500ms, 2s, 1m, inf) and exit 1.
    #[arg(long, value_parser = timeout_arg, default_value = "inf", value_name = "DUR")]
    timeout: Timeout,
    /// Create objects that do not exist yet with this type (so that this waiter keeps
    /// them alive until they are signaled).
    #[arg(long, value_enum, value_name = "TYPE")]
    create: Option<CreateType>,
    /// Most units of a semaphore made by `--create semaphore`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    max: u32,
}

/// `procsync set|reset|pulse NAME`.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// The event: `Local\x`, `Global\x`, a bare name, or `Cluster\x` (with --etcd).
    #[arg(value_name = "NAME")]
    name: String,
}

/// `procsync release`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  procsync release build-slots              # give one unit back; prints the count before
  procsync release build-slots --count 3

A mutex is owned by a thread, so a one-shot process never owns one: to hold a mutex
while a command runs, use `procsync run --mutex NAME -- CMD`.")]
pub struct ReleaseArgs {
    /// The semaphore: `Local\x`, `Global\x`, a bare name, or `Cluster\x` (with --etcd).
    #[arg(value_name = "NAME")]
    name: String,
    /// Units to give back.
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u32,
}

/// Runs `procsync wait`.
pub fn wait(args: &WaitArgs, ep: &Endpoint, quiet: bool) -> Outcome {
    if cluster::all_cluster(&args.names)? {
        let ask = cluster::WaitAsk {
            names: &args.names,
            any: args.any || args.names.len() == 1 && !args.all,
            print_index: args.any,
            timeout: args.timeout,
            create: args.create,
            max: args.max,
        };
        return cluster::wait(ep, &ask, quiet);
    }
    let handles = args
        .names
        .iter()
        .map(|name| open_or_create(name, args.create, args.max))
        .collect::<Result<Vec<Handle>, Failure>>()?;
    let refs: Vec<&Handle> = handles.iter().collect();
    let any = args.any || refs.len() == 1 && !args.all;
    let outcome = if any {
        procsync::wait_any(&refs, args.timeout.0)?
    } else {
        procsync::wait_all(&refs, args.timeout.0)?
    };
    let (index, abandoned) = match outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {} waiting for {}",
                    args.timeout,
                    args.names.join(", ")
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Signaled(k) => (k, false),
        WaitOutcome::Abandoned(k) => (k, true),
    };
    // Give back the mutexes this process now owns: it is about to exit.
    let acquired: Vec<&Handle> = if any { vec![refs[index]] } else { refs };
    for h in acquired {
        if h.kind() == ObjectKind::Mutex {
            h.release(1)?;
        }
    }
    if args.any {
        println!("{index}");
    }
    if abandoned {
        note(
            quiet,
            format!(
                "mutex {} was abandoned: its previous owner died holding it; \
                 check what it protects",
                args.names[index]
            ),
        );
        return Ok(exit::ABANDONED);
    }
    Ok(exit::OK)
}

fn open_or_create(name: &str, create: Option<CreateType>, max: u32) -> Result<Handle, Failure> {
    let Some(kind) = create else {
        return Ok(open_any(name, Access::ALL)?);
    };
    let spec = match kind {
        CreateType::Event => ObjectSpec::Event {
            manual: true,
            initial: false,
        },
        CreateType::AutoEvent => ObjectSpec::Event {
            manual: false,
            initial: false,
        },
        CreateType::Mutex => ObjectSpec::Mutex { owned: false },
        CreateType::Semaphore => ObjectSpec::Semaphore { initial: 0, max },
    };
    Ok(Handle::create(spec, name, &CreateOptions::default())?.0)
}

/// Which event operation `event` runs.
#[derive(Debug, Clone, Copy)]
pub enum EventOp {
    /// `SetEvent`
    Set,
    /// `ResetEvent`
    Reset,
    /// `PulseEvent`
    Pulse,
}

/// Runs `procsync set|reset|pulse NAME`.
pub fn event(op: EventOp, args: &EventArgs, ep: &Endpoint) -> Outcome {
    if cluster::is_cluster(&args.name) {
        return cluster::event(ep, op, &args.name);
    }
    let h = Handle::open(ObjectKind::Event, &args.name, Access::MODIFY, false)?;
    match op {
        EventOp::Set => h.set()?,
        EventOp::Reset => h.reset()?,
        EventOp::Pulse => h.pulse()?,
    };
    Ok(exit::OK)
}

/// Runs `procsync release NAME [--count N]`.
pub fn release(args: &ReleaseArgs, ep: &Endpoint) -> Outcome {
    if cluster::is_cluster(&args.name) {
        return cluster::release(ep, &args.name, args.count);
    }
    let h = open_any(&args.name, Access::MODIFY)?;
    if h.kind() == ObjectKind::Mutex {
        return Err(Failure::new(
            exit::ERROR,
            format!(
                "{} is a mutex, which only the thread that acquired it can release; \
                 run the command under it with `procsync run --mutex {} -- CMD`",
                args.name, args.name
            ),
        ));
    }
    let previous = h.release(args.count)?;
    println!("{previous}");
    Ok(exit::OK)
}
