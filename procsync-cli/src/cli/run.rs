//! `procsync run`: run a command while holding a unit of a job pool (`--semaphore`) or a
//! mutex (`--mutex`), and give it back however the command ends.
//!
//! **The pool survives `kill -9` of a runner.** A semaphore unit taken by a process that
//! is then killed would be lost, since semaphores have no owner. So the pool itself is
//! `N` slot mutexes named `<NAME>.slot0` … `<NAME>.slot<N-1>`: a runner takes *any* free
//! slot with one `wait_any` over them, runs the command, and releases its slot. A mutex
//! has an owner, so when a runner is killed its slot becomes free (abandoned) at once,
//! and the next runner gets it with an `abandoned` outcome. `N` mutexes and `wait_any`
//! are therefore an abandonment-aware semaphore, and units are conserved without any
//! repair step.
//!
//! The semaphore `<NAME>` (created with `N` units) mirrors the pool for `ls`, `inspect`
//! and `procsync wait NAME` users: a runner takes one unit after its slot and gives it
//! back before its slot; one that receives an abandoned slot keeps the dead runner's
//! unit instead of taking another. The slot mutexes alone decide who runs. See
//! docs/CLI.md for the (tiny) windows in which the mirror can drift by one.
//!
//! The command runs as a child with `PR_SET_PDEATHSIG = SIGKILL` (set by the hidden
//! `procsync run-child`, which then execs the command: no `pre_exec` hook, no `unsafe`),
//! so that a runner killed with SIGKILL does not leave its command running outside the
//! pool; SIGTERM,
//! SIGHUP and SIGINT sent to the runner are passed on to the command, whose exit status
//! (128 + signal when killed) becomes the runner's.
//!
//! Cluster names (`Cluster\x`) go to [`super::cluster`], which runs the command with
//! [`child`] too.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::Command;
use std::thread;
use std::time::Duration;

use clap::Args;
use procsync::{CreateOptions, Handle, ObjectSpec, ObjectState, WaitOutcome};
use rustix::process::{Pid, Signal, kill_process};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::cluster::{self, Endpoint};
use super::shell::{Failure, Outcome, Timeout, note, timeout_arg};
use super::{exit, peek, scan};

/// Most units a local pool may have (one `wait_any` covers every slot).
const MAX_POOL: u32 = procsync::MAX_WAIT_OBJECTS as u32;

/// `procsync run`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # at most 2 of these run at once, across every shell and script of this user:
  procsync run --semaphore build-slots --max 2 -- make -j4 target
  # one at a time; say so if the previous holder died mid-run:
  procsync run --mutex Global\\\\nightly-backup -- ./backup.sh
  # refuse to run after a crashed holder (exit 3), give up after 10 minutes (exit 1):
  procsync run --mutex nightly --strict --timeout 10m -- ./nightly.sh
  # at most 4 builds at once across every host that shares this etcd cluster:
  procsync --etcd http://10.0.0.1:2379 run --semaphore 'Cluster\\builds' --max 4 -- make

Exit status: the command's own (128+N if killed by signal N); 1 timeout before it
started; 3 (--strict) the previous holder died; 4 error; 5 etcd unavailable or session
lost; 126/127 cannot execute / not found. A pool survives `kill -9` of any runner: its
unit comes back (docs/CLI.md; a cluster pool's when the runner's etcd lease ends).
Under a cluster name the command gets the acquisition's fencing token in PROCSYNC_FENCE.")]
pub struct RunArgs {
    /// Run under one unit of the job pool NAME (created with --max units if missing);
    /// `Cluster\x`: a pool shared by every host of the etcd cluster (--etcd).
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "mutex",
        required_unless_present = "mutex"
    )]
    semaphore: Option<String>,
    /// Units of the pool (1 to 64; a cluster pool up to 2147483647); an existing pool
    /// keeps its own size.
    #[arg(long, value_name = "N", requires = "semaphore",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
    max: Option<u32>,
    /// Run while owning the mutex NAME (created if missing): a fair, abandonment-aware
    /// flock; `Cluster\x`: across every host of the etcd cluster (--etcd).
    #[arg(long, value_name = "NAME")]
    mutex: Option<String>,
    /// With --mutex: do not run if the previous owner died holding it (exit 3).
    #[arg(long, requires = "mutex")]
    strict: bool,
    /// Give up waiting after this long (500ms, 2s, 1m, inf) and exit 1.
    #[arg(long, value_parser = timeout_arg, default_value = "inf", value_name = "DUR")]
    timeout: Timeout,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Runs `procsync run`.
pub fn run(args: &RunArgs, ep: &Endpoint, quiet: bool) -> Outcome {
    if let Some(name) = &args.mutex {
        if cluster::is_cluster(name) {
            let (strict, t) = (args.strict, args.timeout);
            return cluster::run_mutex(ep, name, strict, t, quiet, &args.command);
        }
        return under_mutex(name, args, quiet);
    }
    let name = args.semaphore.as_deref().unwrap_or_default();
    let Some(max) = args.max else {
        return Err(Failure::usage(format!(
            "--semaphore {name} needs --max N, the number of jobs that may run at once"
        )));
    };
    if cluster::is_cluster(name) {
        return cluster::run_pool(ep, name, max, args.timeout, quiet, &args.command);
    }
    if max > MAX_POOL {
        return Err(Failure::usage(format!(
            "--max {max}: a local pool has at most {MAX_POOL} units (one wait covers every slot)"
        )));
    }
    in_pool(name, max, args, quiet)
}

fn create(spec: ObjectSpec, name: &str) -> Result<Handle, Failure> {
    Ok(Handle::create(spec, name, &CreateOptions::default())?.0)
}

/// Whether `name` is, right now, the orphaned file of a mutex whose last holder died
/// owning it (no process keeps the object, so the next open would silently start a
/// fresh one): then the crash is reported as an abandonment all the same.
fn died_owning(name: &str) -> bool {
    scan::file_of(name).is_some_and(|(ns, file)| {
        let path = scan::dir(&scan::root(), ns).join(file);
        peek::owned_mutex(&path) && scan::probe_orphan(&path, false) == Some(true)
    })
}

fn under_mutex(name: &str, args: &RunArgs, quiet: bool) -> Outcome {
    let crashed = died_owning(name);
    let m = create(ObjectSpec::Mutex { owned: false }, name)?;
    let outcome = match m.wait(args.timeout.0)? {
        WaitOutcome::Signaled(k) if crashed => WaitOutcome::Abandoned(k),
        other => other,
    };
    match outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {} waiting for mutex {name}; it is held by another \
                     process (see `procsync inspect {name}`)",
                    args.timeout
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Abandoned(_) if args.strict => {
            m.release(1)?;
            eprintln!(
                "procsync: mutex {name} was abandoned: its previous holder died while \
                 holding it; not running the command (--strict). Check what it protects, \
                 then run again"
            );
            return Ok(exit::ABANDONED);
        }
        WaitOutcome::Abandoned(_) => note(
            quiet,
            format!(
                "mutex {name} was abandoned: its previous holder died while holding it; \
                 running the command anyway (--strict refuses)"
            ),
        ),
        WaitOutcome::Signaled(_) => {}
    }
    let code = child(&args.command, &[]);
    // Whatever happened to the command, the mutex goes back.
    m.release(1)?;
    code
}

fn in_pool(name: &str, max: u32, args: &RunArgs, quiet: bool) -> Outcome {
    let sem = create(ObjectSpec::Semaphore { initial: max, max }, name)?;
    let units = match sem.query()? {
        ObjectState::Semaphore { max: existing, .. } => existing,
        _ => max,
    };
    if units != max {
        note(
            quiet,
            format!("pool {name} already exists with {units} units; using {units}"),
        );
    }
    if units > MAX_POOL {
        return Err(Failure::new(
            exit::ERROR,
            format!("semaphore {name} has {units} units; a pool has at most {MAX_POOL}"),
        ));
    }
    let slots = (0..units)
        .map(|i| {
            create(
                ObjectSpec::Mutex { owned: false },
                &format!("{name}.slot{i}"),
            )
        })
        .collect::<Result<Vec<Handle>, Failure>>()?;
    let (slot, mirrored) = match take_slot(&slots, args.timeout)? {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {} waiting for a unit of pool {name} (all {units} \
                     busy; see `procsync ls`)",
                    args.timeout
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Signaled(k) => {
            let took = matches!(sem.wait(Some(Duration::ZERO))?, WaitOutcome::Signaled(_));
            (k, took)
        }
        WaitOutcome::Abandoned(k) => {
            note(
                quiet,
                format!(
                    "a job of pool {name} was killed while running; its unit is back in \
                     the pool"
                ),
            );
            // The dead runner's mirror unit becomes ours.
            (k, true)
        }
    };
    let code = child(&args.command, &[]);
    if mirrored {
        // At the maximum already (the mirror drifted): nothing to give back.
        let _ = sem.release(1);
    }
    slots[slot].release(1)?;
    code
}

/// Takes a free slot: an abandoned one first if there is one (so that the dead runner's
/// mirror unit is taken over as soon as possible), else any, waiting up to `timeout`.
fn take_slot(slots: &[Handle], timeout: Timeout) -> Result<WaitOutcome, Failure> {
    let abandoned = slots.iter().position(|s| {
        matches!(
            s.query(),
            Ok(ObjectState::Mutex {
                abandoned: true,
                ..
            })
        )
    });
    if let Some(k) = abandoned {
        match slots[k].wait(Some(Duration::ZERO))? {
            WaitOutcome::Abandoned(_) => return Ok(WaitOutcome::Abandoned(k)),
            WaitOutcome::Signaled(_) => return Ok(WaitOutcome::Signaled(k)),
            WaitOutcome::TimedOut => {} // taken meanwhile
        }
    }
    let refs: Vec<&Handle> = slots.iter().collect();
    Ok(procsync::wait_any(&refs, timeout.0)?)
}

/// Runs the command to its end, with the environment variables `env` added, and returns
/// its exit status as ours. It is started through the hidden `procsync run-child` (see
/// [`run_child`]), which arms `PR_SET_PDEATHSIG` and then becomes the command.
pub fn child(command: &[OsString], env: &[(&str, String)]) -> Outcome {
    let shown = command
        .first()
        .ok_or_else(|| Failure::usage("no command given after `--`"))?
        .to_string_lossy()
        .into_owned();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("run-child")
        .arg(std::process::id().to_string())
        .arg("--")
        .args(command)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let mut running = cmd.spawn().map_err(|e| {
        Failure::new(
            exit::ERROR,
            format!("cannot start a process for {shown}: {e}"),
        )
    })?;
    forward_signals(running.id());
    let status = running
        .wait()
        .map_err(|e| Failure::new(exit::ERROR, format!("waiting for {shown} failed: {e}")))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(u8::MAX),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
        (None, None) => exit::ERROR,
    })
}

/// The hidden `procsync run-child PARENT -- CMD…` that `run` starts: asks for SIGKILL
/// when the runner dies (`PR_SET_PDEATHSIG`, kept across `exec`), so that a runner
/// killed with `kill -9`, whose unit goes back to the pool, leaves no job running
/// outside it; then replaces itself with the command. Returns only on failure: 127 when
/// the command is not found, 126 when it cannot be executed, as a shell does.
pub fn run_child(parent: u32, command: &[OsString]) -> Outcome {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Failure::usage("no command given after `--`"))?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| Failure::new(exit::CANNOT_EXECUTE, format!("prctl: {e}")))?;
    // The runner may have died before the prctl took effect: then do not start at all.
    if rustix::process::getppid().map(Pid::as_raw_pid) != i32::try_from(parent).ok() {
        return Err(Failure::new(
            exit::ERROR,
            "procsync run ended before the command started",
        ));
    }
    let e = Command::new(program).args(rest).exec();
    let shown = program.to_string_lossy();
    Err(match e.kind() {
        io::ErrorKind::NotFound => {
            Failure::new(exit::NOT_FOUND, format!("{shown}: command not found"))
        }
        io::ErrorKind::PermissionDenied => Failure::new(
            exit::CANNOT_EXECUTE,
            format!("{shown}: permission denied (is it executable?)"),
        ),
        _ => Failure::new(exit::CANNOT_EXECUTE, format!("{shown}: cannot run it: {e}")),
    })
}

/// Passes SIGTERM, SIGHUP and SIGINT on to the command (the runner survives them, so
/// that it still gives its unit back after the command ends).
fn forward_signals(pid: u32) {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]) else {
        return;
    };
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    thread::spawn(move || {
        for sig in signals.forever() {
            let sig = match sig {
                SIGTERM => Signal::TERM,
                SIGHUP => Signal::HUP,
                _ => Signal::INT,
            };
            let _ = kill_process(pid, sig);
        }
    });
}
