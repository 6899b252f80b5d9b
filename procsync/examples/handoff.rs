//! Handing handles of unnamed objects to other processes: to a child by inheritance, and
//! to an unrelated process by duplication, both directions.
//!
//! Run it with `cargo run -p procsync --example handoff`.
//!
//! - **Inheritance** (Win32 `bInheritHandles`): the parent creates an *inheritable*
//!   unnamed event and starts the child with `Command::inherit_procsync_handles()`; the
//!   child takes it with `procsync::adopt(value)` (the value is the same in both) and
//!   sets it.
//! - **Duplication** (`DuplicateHandle`): a process that calls
//!   `procsync::accept_duplicates()` can receive handles (`Handle::duplicate_into(pid, …)`,
//!   then `adopt` on its side) and give them (`procsync::duplicate_from(pid, value, …)`).
//!   Here the second child is started *without* inheritance and tells the parent its pid
//!   and the value of an event of its own; the parent pulls that event and sets it, and
//!   pushes one of its events, which the child sets.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use procsync::{Access, CommandExt, Event, WaitOutcome};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("heir") => heir(args[1].parse()?),
        Some("stranger") => stranger(),
        _ => parent(),
    }
}

fn expect_signaled(what: &str, out: WaitOutcome) -> Result<()> {
    if out == WaitOutcome::Signaled(0) {
        Ok(())
    } else {
        Err(format!("{what}: {out:?}").into())
    }
}

fn parent() -> Result<ExitCode> {
    let exe = std::env::current_exe()?;

    // 1. Inheritance.
    let from_heir = Event::builder().inheritable(true).create()?;
    let mut heir = Command::new(&exe)
        .args(["heir", &from_heir.value().to_string()])
        .inherit_procsync_handles()
        .spawn()?;
    expect_signaled("the heir's signal", from_heir.wait(TIMEOUT)?)?;
    if !heir.wait()?.success() {
        return Err("the heir failed".into());
    }
    println!("parent: the child set the event it inherited");

    // 2. Duplication, with a process that inherits nothing.
    let from_stranger = Event::builder().create()?;
    let mut stranger = Command::new(&exe)
        .arg("stranger")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(stranger.stdout.take().expect("piped")).lines();
    let hello = lines.next().ok_or("the stranger said nothing")??;
    let theirs: u64 = hello
        .strip_prefix("ready ")
        .ok_or("the stranger did not say `ready VALUE`")?
        .parse()?;
    let pid = stranger.id();
    // Pull: a handle here to the stranger's event, allowed to set it.
    let pulled = Event::try_from(procsync::duplicate_from(
        pid,
        theirs,
        Some(Access::MODIFY),
        false,
        false,
    )?)?;
    pulled.set()?;
    // Push: a handle there to our event; the stranger learns its value from us.
    let value = from_stranger.duplicate_into(pid, Some(Access::MODIFY), false)?;
    let mut stdin = stranger.stdin.take().expect("piped");
    writeln!(stdin, "{value}")?;
    drop(stdin);
    expect_signaled("the stranger's signal", from_stranger.wait(TIMEOUT)?)?;
    for line in lines {
        println!("  stranger: {}", line?);
    }
    if !stranger.wait()?.success() {
        return Err("the stranger failed".into());
    }
    println!("handoff: inherited by a child, pulled from and pushed into another process");
    Ok(ExitCode::SUCCESS)
}

/// The child started with inheritance: the value came on the command line.
fn heir(value: u64) -> Result<ExitCode> {
    let ev = Event::try_from(procsync::adopt(value)?)?;
    ev.set()?;
    Ok(ExitCode::SUCCESS)
}

/// The process without inheritance: it accepts duplicates and offers its own event.
fn stranger() -> Result<ExitCode> {
    procsync::accept_duplicates()?;
    let mine = Event::builder().create()?;
    println!("ready {}", mine.value());
    std::io::stdout().flush()?;
    // The parent pulls `mine` and sets it.
    expect_signaled("the parent's set of my event", mine.wait(TIMEOUT)?)?;
    println!("the parent set my event through a pulled duplicate");
    // Then it pushes one of its events and tells us the value.
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let theirs = Event::try_from(procsync::adopt(line.trim().parse()?)?)?;
    theirs.set()?;
    println!("set the parent's event through a pushed duplicate");
    Ok(ExitCode::SUCCESS)
}
