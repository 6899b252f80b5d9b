//! `procsync run --semaphore|--mutex Cluster\x -- CMD`: the command runs while this
//! process holds a unit of a cluster pool or the cluster mutex, and the unit or mutex
//! goes back however the command ends (the command itself is started by the local
//! `run`'s [`child`], with its death signal and signal forwarding).
//!
//! What it owns: the pool's shape (a *leased-units* semaphore: each unit taken is an
//! etcd key on the runner's lease, so a runner killed with its job — `kill -9`, a host
//! that dies — gives its unit back when its lease ends, within the session TTL),
//! abandonment reports, and `PROCSYNC_FENCE` (the acquisition's fencing token, given
//! to the command). What it must not do: hold anything past the command's end.

use std::ffi::OsString;

use procsync::WaitOutcome;
use procsync_etcd::Units;

use super::{Endpoint, Interrupt};
use crate::cli::exit;
use crate::cli::run::child;
use crate::cli::shell::{Failure, Outcome, Timeout, note};

/// The environment variable that holds a command's fencing token under `run`.
const FENCE_VAR: &str = "PROCSYNC_FENCE";

/// What happened to the object after the command ran: its give-back's error, if any,
/// reported after the command's own failure (which wins).
fn finish(code: Outcome, back: procsync_etcd::Result<()>, what: &str) -> Outcome {
    match back {
        Ok(()) => code,
        Err(procsync_etcd::Error::SessionLost) => {
            code?;
            Err(Failure::new(
                exit::CLUSTER_UNAVAILABLE,
                format!(
                    "this runner's etcd session ended while the command ran (paused or cut \
                     off past its lease TTL): {what} had already been given back, so another \
                     job may have run alongside it; a resource that checks {FENCE_VAR} \
                     refuses this one's stale token"
                ),
            ))
        }
        Err(e) => {
            code?;
            Err(e.into())
        }
    }
}

/// `run --semaphore Cluster\x --max N -- CMD`.
pub fn run_pool(
    ep: &Endpoint,
    name: &str,
    max: u32,
    timeout: Timeout,
    quiet: bool,
    command: &[OsString],
) -> Outcome {
    let c = ep.connect(name)?;
    let (sem, _) = c.create_semaphore(name, max, max, Units::Leased)?;
    let info = sem.query()?;
    if info.max != max {
        note(
            quiet,
            format!(
                "pool {name} already exists with {} units; using {}",
                info.max, info.max
            ),
        );
    }
    let interrupt = Interrupt::arm(&c);
    let got = sem.wait(timeout.0)?;
    drop(interrupt);
    if got.outcome == WaitOutcome::TimedOut {
        note(
            quiet,
            format!(
                "timed out after {timeout} waiting for a unit of pool {name} (all {} busy; \
                 see `procsync ls`)",
                info.max
            ),
        );
        return Ok(exit::TIMEOUT);
    }
    let code = child(command, &[(FENCE_VAR, got.token.to_string())]);
    let back = sem.release(1).map(drop);
    finish(code, back, &format!("its unit of pool {name}"))
}

/// `run --mutex Cluster\x -- CMD`.
pub fn run_mutex(
    ep: &Endpoint,
    name: &str,
    strict: bool,
    timeout: Timeout,
    quiet: bool,
    command: &[OsString],
) -> Outcome {
    let c = ep.connect(name)?;
    let (m, _) = c.create_mutex(name, false)?;
    let interrupt = Interrupt::arm(&c);
    let got = m.wait(timeout.0)?;
    drop(interrupt);
    match got.outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {timeout} waiting for mutex {name}; another client \
                     holds it (see `procsync ls`)"
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Abandoned(_) if strict => {
            m.release_mutex()?;
            eprintln!(
                "procsync: mutex {name} was abandoned: its previous holder's session ended \
                 (process or host died, or was cut off) while holding it; not running the \
                 command (--strict). Check what it protects, then run again"
            );
            return Ok(exit::ABANDONED);
        }
        WaitOutcome::Abandoned(_) => note(
            quiet,
            format!(
                "mutex {name} was abandoned: its previous holder's session ended while \
                 holding it; running the command anyway (--strict refuses)"
            ),
        ),
        WaitOutcome::Signaled(_) => {}
    }
    let code = child(command, &[(FENCE_VAR, got.token.to_string())]);
    let back = m.release_mutex().map(drop);
    finish(code, back, &format!("mutex {name}"))
}
