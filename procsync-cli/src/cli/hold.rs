//! `procsync hold`: create (or open) named objects and keep them alive until
//! interrupted, printing every state change on standard output, one line each.
//!
//! States are polled with the library's `query` every [`POLL`] (there is no change
//! notification to subscribe to), so a change that is undone within one poll is not
//! seen. SIGINT, SIGTERM and SIGHUP end the loop; the handles are then closed normally,
//! so that the names go away with their last holder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use procsync::{CreateOptions, Created, Handle, ObjectSpec, ObjectState, Owner};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::cluster;
use super::exit;
use super::shell::{Failure, Outcome};

/// How often states are looked at.
const POLL: Duration = Duration::from_millis(50);

/// The type of the objects `hold` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HoldType {
    /// A manual-reset event (unset unless --set).
    Event,
    /// An auto-reset event (unset unless --set).
    AutoEvent,
    /// A mutex, not owned.
    Mutex,
    /// A semaphore with --count units available out of --max.
    Semaphore,
    /// A manual-reset waitable timer, not armed.
    Timer,
}

/// `procsync hold`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  procsync hold start-gate &          # a gate: workers `procsync wait start-gate`
  procsync set start-gate             # ... and this opens it for all of them
  procsync hold build-slots --type semaphore --max 4

Prints `NAME created|existed STATE` for each object, then `NAME STATE` on every change,
until interrupted (Ctrl-C, SIGTERM). An object that already exists is held as it is.")]
pub struct HoldArgs {
    /// Objects to hold: `Local\x`, `Global\x` or bare names.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Type of the objects created.
    #[arg(
        long = "type",
        value_enum,
        default_value = "event",
        value_name = "TYPE"
    )]
    kind: HoldType,
    /// Events: create them set.
    #[arg(long)]
    set: bool,
    /// Semaphores: most units.
    #[arg(long, default_value_t = 1, value_name = "N")]
    max: u32,
    /// Semaphores: units available at first (default: --max).
    #[arg(long, value_name = "N")]
    count: Option<u32>,
    /// Permission bits of the objects created (octal, default 600).
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    mode: Option<u32>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("`{text}` is not an octal mode such as 600 or 666"))
}

/// Runs `procsync hold`.
pub fn hold(args: &HoldArgs) -> Outcome {
    cluster::local_only(&args.names, "hold")?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Failure::new(exit::ERROR, format!("cannot handle signal {sig}: {e}")))?;
    }
    let spec = match args.kind {
        HoldType::Event | HoldType::AutoEvent => ObjectSpec::Event {
            manual: args.kind == HoldType::Event,
            initial: args.set,
        },
        HoldType::Mutex => ObjectSpec::Mutex { owned: false },
        HoldType::Semaphore => ObjectSpec::Semaphore {
            initial: args.count.unwrap_or(args.max),
            max: args.max,
        },
        HoldType::Timer => ObjectSpec::Timer { manual: true },
    };
    let opts = CreateOptions {
        mode: args.mode,
        inherit: false,
    };
    let mut held = Vec::new();
    for name in &args.names {
        let (h, created) = Handle::create(spec, name, &opts)?;
        let state = h.query()?;
        let how = match created {
            Created::New => "created",
            Created::Existing => "existed",
        };
        println!("{name} {how} {}", words(state));
        held.push((name, h, state));
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        for (name, h, last) in &mut held {
            let Ok(now) = h.query() else { continue };
            if now != *last {
                println!("{name} {}", words(now));
                *last = now;
            }
        }
    }
    Ok(exit::OK)
}

/// A state in words, as `hold` prints it.
pub fn words(state: ObjectState) -> String {
    match state {
        ObjectState::Event { manual, signaled } => format!(
            "event {} {}",
            if manual { "manual" } else { "auto" },
            if signaled { "set" } else { "unset" }
        ),
        ObjectState::Mutex {
            owner, abandoned, ..
        } => format!(
            "mutex {}{}",
            if owner == Owner::None {
                "free"
            } else {
                "owned"
            },
            if abandoned { " abandoned" } else { "" }
        ),
        ObjectState::Semaphore { count, max } => format!("semaphore count={count} max={max}"),
        ObjectState::Timer {
            signaled, armed, ..
        } => format!(
            "timer {}{}",
            if signaled { "signaled" } else { "unsignaled" },
            if armed { " armed" } else { "" }
        ),
    }
}
