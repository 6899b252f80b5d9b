//! A job pool across processes: 4 worker processes share 2 slots of a named semaphore, so
//! at most 2 jobs run at once, machine-wide.
//!
//! Run it with `cargo run -p procsync --example job_pool`. The parent creates the objects,
//! starts the workers (this same program, re-executed with `worker`) and checks that every
//! one succeeded. Each worker also proves the limit: while it holds a slot it adds a unit
//! to a second semaphore, `inside`, whose maximum is the number of slots, so a third
//! concurrent job would get `too-many-posts` and fail.

use std::process::{Command, ExitCode};
use std::time::Duration;

use procsync::{Semaphore, WaitOutcome};

const WORKERS: usize = 4;
const SLOTS: u32 = 2;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1], &args[2]),
        _ => parent(),
    }
}

fn names(id: &str) -> (String, String) {
    (
        format!("Local\\procsync-example-pool-slots-{id}"),
        format!("Local\\procsync-example-pool-inside-{id}"),
    )
}

fn parent() -> Result<ExitCode> {
    let id = std::process::id().to_string();
    let (slots_name, inside_name) = names(&id);
    // The parent holds both objects while the workers run, so they exist for everyone.
    let _slots = Semaphore::builder()
        .name(&slots_name)
        .max(SLOTS)
        .initial(SLOTS)
        .create()?;
    let _inside = Semaphore::builder()
        .name(&inside_name)
        .max(SLOTS)
        .create()?;

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..WORKERS {
        let child = Command::new(&exe)
            .args(["worker", &id, &i.to_string()])
            .spawn()?;
        children.push(child);
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait()?.success() {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("job pool: {failed} of {WORKERS} workers failed");
        return Ok(ExitCode::FAILURE);
    }
    println!("job pool: {WORKERS} jobs done, never more than {SLOTS} at a time");
    Ok(ExitCode::SUCCESS)
}

fn worker(id: &str, index: &str) -> Result<ExitCode> {
    let (slots_name, inside_name) = names(id);
    let slots = Semaphore::open(&slots_name)?;
    let inside = Semaphore::open(&inside_name)?;

    let Some(slot) = slots.acquire_for(Duration::from_secs(60))? else {
        return Err("no slot within a minute".into());
    };
    // Count ourselves in; a release past the maximum (more jobs than slots) is an error.
    inside.release(1)?;
    println!("worker {index}: running its job");
    std::thread::sleep(Duration::from_millis(20)); // the job
    // Count ourselves out (a unit is there: ours), then give the slot back by dropping it.
    let out = inside.wait(Some(Duration::ZERO))?;
    if out != WaitOutcome::Signaled(0) {
        return Err(format!("counting out of `inside`: {out:?}").into());
    }
    drop(slot);
    Ok(ExitCode::SUCCESS)
}
