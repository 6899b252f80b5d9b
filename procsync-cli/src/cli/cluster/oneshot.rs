//! `procsync wait|set|reset|pulse|release Cluster\x…`: one session, one `open` (or
//! `--create`) per name, one call, as the local one-shot subcommands do.
//!
//! What it owns: the cluster side of those subcommands. What it must not do: keep a
//! mutex (a mutex acquired by `wait` is released before it returns).

use procsync::{ObjectKind, WaitOutcome};
use procsync_etcd::{Cluster, Handle, Units};

use super::{Endpoint, Interrupt};
use crate::cli::exit;
use crate::cli::oneshot::{CreateType, EventOp};
use crate::cli::shell::{Failure, Outcome, Timeout, note};

/// What `wait` was asked.
pub struct WaitAsk<'a> {
    /// The names, all cluster names.
    pub names: &'a [String],
    /// `--any` (or one name without `--all`).
    pub any: bool,
    /// `--any` given: print the index.
    pub print_index: bool,
    /// `--timeout`.
    pub timeout: Timeout,
    /// `--create TYPE`.
    pub create: Option<CreateType>,
    /// `--max` of `--create semaphore`.
    pub max: u32,
}

fn open_or_create(c: &Cluster, name: &str, ask: &WaitAsk<'_>) -> Result<Handle, Failure> {
    let made = match ask.create {
        None => return Ok(c.open(name)?),
        Some(CreateType::Event) => c.create_event(name, true, false),
        Some(CreateType::AutoEvent) => c.create_event(name, false, false),
        Some(CreateType::Mutex) => c.create_mutex(name, false),
        Some(CreateType::Semaphore) => c.create_semaphore(name, 0, ask.max, Units::Win32),
    };
    Ok(made?.0)
}

/// `wait Cluster\x…`.
pub fn wait(ep: &Endpoint, ask: &WaitAsk<'_>, quiet: bool) -> Outcome {
    let c = ep.connect(&ask.names[0])?;
    let handles = ask
        .names
        .iter()
        .map(|n| open_or_create(&c, n, ask))
        .collect::<Result<Vec<Handle>, Failure>>()?;
    let refs: Vec<&Handle> = handles.iter().collect();
    let interrupt = Interrupt::arm(&c);
    let got = if ask.any {
        procsync_etcd::wait_any(&refs, ask.timeout.0)?
    } else {
        procsync_etcd::wait_all(&refs, ask.timeout.0)?
    };
    drop(interrupt);
    let (index, abandoned) = match got.outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {} waiting for {}",
                    ask.timeout,
                    ask.names.join(", ")
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Signaled(k) => (k, false),
        WaitOutcome::Abandoned(k) => (k, true),
    };
    let acquired: Vec<&Handle> = if ask.any { vec![refs[index]] } else { refs };
    for h in acquired {
        if h.kind() == ObjectKind::Mutex {
            h.release_mutex()?;
        }
    }
    if ask.print_index {
        println!("{index}");
    }
    if abandoned {
        note(
            quiet,
            format!(
                "mutex {} was abandoned: its previous owner's session ended while holding \
                 it; check what it protects",
                ask.names[index]
            ),
        );
        return Ok(exit::ABANDONED);
    }
    Ok(exit::OK)
}

/// `set|reset|pulse Cluster\x`.
pub fn event(ep: &Endpoint, op: EventOp, name: &str) -> Outcome {
    let c = ep.connect(name)?;
    let h = c.open(name)?;
    match op {
        EventOp::Set => h.set()?,
        EventOp::Reset => h.reset()?,
        EventOp::Pulse => h.pulse()?,
    };
    Ok(exit::OK)
}

/// `release Cluster\x [--count N]`: prints the count before.
pub fn release(ep: &Endpoint, name: &str, count: u32) -> Outcome {
    let c = ep.connect(name)?;
    let h = c.open(name)?;
    if h.kind() == ObjectKind::Mutex {
        return Err(Failure::new(
            exit::ERROR,
            format!(
                "{name} is a mutex, which only the thread that acquired it can release; \
                 run the command under it with `procsync run --mutex {name} -- CMD`"
            ),
        ));
    }
    println!("{}", h.release(count)?);
    Ok(exit::OK)
}
