//! A worker loop over `wait_any`: one wait for "there is work" (a semaphore counting
//! queued jobs) or "stop" (a manual-reset shutdown event), across processes.
//!
//! Run it with `cargo run -p procsync --example shutdown`. The parent queues 5 jobs by
//! releasing the work semaphore, waits until the worker process reports each one done
//! (through a `done` semaphore), then sets the shutdown event. `wait_any` takes the
//! lowest signaled index, so listing the shutdown event first makes it win over queued
//! work.

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use procsync::{Event, Semaphore, WaitOutcome, wait_any};

const JOBS: u32 = 5;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1]),
        _ => parent(),
    }
}

fn names(id: &str) -> [String; 3] {
    ["stop", "work", "done"].map(|n| format!("Local\\procsync-example-shutdown-{n}-{id}"))
}

fn parent() -> Result<ExitCode> {
    let id = std::process::id().to_string();
    let [stop, work, done] = names(&id);
    let stop = Event::builder().manual_reset().name(&stop).create()?;
    let work = Semaphore::builder().name(&work).max(64).create()?;
    let done = Semaphore::builder().name(&done).max(64).create()?;

    let mut worker = Command::new(std::env::current_exe()?)
        .args(["worker", &id])
        .stdout(Stdio::piped())
        .spawn()?;
    work.release(JOBS)?;
    for _ in 0..JOBS {
        // Take one "done" unit per finished job, and keep it.
        match done.acquire_for(Duration::from_secs(60))? {
            Some(unit) => unit.forget(),
            None => {
                let _ = worker.kill();
                let _ = worker.wait();
                return Err("the worker stopped reporting jobs".into());
            }
        }
    }
    stop.set()?;
    let out = worker.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() || !text.contains(&format!("{JOBS} jobs done")) {
        return Err(format!("the worker failed: {}", out.status).into());
    }
    println!("shutdown: the worker did {JOBS} jobs and stopped when asked");
    Ok(ExitCode::SUCCESS)
}

fn worker(id: &str) -> Result<ExitCode> {
    let [stop, work, done] = names(id);
    let (stop, work, done) = (
        Event::open(&stop)?,
        Semaphore::open(&work)?,
        Semaphore::open(&done)?,
    );
    let mut jobs = 0;
    loop {
        match wait_any(&[&stop, &work], Some(Duration::from_secs(60)))? {
            WaitOutcome::Signaled(0) => break,
            WaitOutcome::Signaled(_) => {
                // We took one unit of `work`: one job. Do it, then say so.
                jobs += 1;
                done.release(1)?;
            }
            other => {
                return Err(format!("neither work nor shutdown for a minute: {other:?}").into());
            }
        }
    }
    println!("worker: {jobs} jobs done, shutting down");
    Ok(ExitCode::SUCCESS)
}
