//! A tokio server that runs jobs, at most SLOTS at once across *every process* running
//! it (a named procsync semaphore of slots), and shuts down when a named manual-reset
//! event is set — by any process, e.g. `procsync repl` (`open event s name=…` then
//! `set s`).
//!
//! ```text
//! cargo run -p procsync-tokio --example server -- [SLOTS_NAME] [STOP_NAME] [SLOTS]
//! ```
//!
//! Jobs arrive on stdin, one per line: `job <id> sleep <ms>` (work that takes a while)
//! or `job <id> wait <event-name>` (work that ends when a named event is set). Each job
//! takes a slot (`procsync_tokio::acquire`, a `SemaphorePermit` released on drop),
//! prints `started <id>`, works, prints `done <id>`. On the stop event, jobs still
//! running or queued for a slot are cancelled: their permits are released and their
//! pending acquisitions dropped, which is cancel-safe (no slot is lost). It prints
//! `stopped: <n> done, <m> cancelled` and exits.

use std::sync::Arc;
use std::time::Duration;

use procsync::{Event, Handle, Semaphore};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinSet;

enum Work {
    Sleep(Duration),
    WaitFor(String),
}

fn parse(line: &str) -> Result<(String, Work), String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    match f.as_slice() {
        ["job", id, "sleep", ms] => ms
            .parse()
            .map(|ms| (id.to_string(), Work::Sleep(Duration::from_millis(ms))))
            .map_err(|_| format!("`{ms}` is not a number of milliseconds")),
        ["job", id, "wait", name] => Ok((id.to_string(), Work::WaitFor(name.to_string()))),
        _ => Err("expected `job <id> sleep <ms>` or `job <id> wait <event-name>`".into()),
    }
}

async fn job(id: String, work: Work, slots: Arc<Handle>) -> procsync::Result<()> {
    // Waits for a slot without a thread; other processes' jobs hold the rest.
    let permit = procsync_tokio::acquire(&slots).await?;
    println!("started {id}");
    match work {
        Work::Sleep(d) => tokio::time::sleep(d).await,
        Work::WaitFor(name) => {
            let e = Event::open(&name)?;
            procsync_tokio::wait(&e).await?;
        }
    }
    println!("done {id}");
    drop(permit);
    Ok(())
}

/// Runs the server until the stop event is set.
pub fn main() -> procsync::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| procsync::Error::unsupported(format!("starting tokio: {e}")))?;
    let r = rt.block_on(serve());
    // tokio's stdin reader may sit in a blocking read: do not wait for it.
    rt.shutdown_background();
    r
}

async fn serve() -> procsync::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let slots_name = arg(0, "Local\\procsync-example-slots");
    let stop_name = arg(1, "Local\\procsync-example-stop");
    let n: u32 = arg(2, "2")
        .parse()
        .map_err(|_| procsync::Error::InvalidArgument {
            why: "SLOTS must be a number from 1 up".into(),
        })?;
    // Every server process names the same objects: the first creates them.
    let (slots, _) = Semaphore::create(&slots_name, n, n)?;
    let (stop, _) = Event::create(&stop_name, true, false)?;
    let slots = Arc::new(slots.into_handle());

    let mut jobs = JoinSet::new();
    let mut done = 0;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let stopped = procsync_tokio::wait(&stop);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            r = &mut stopped => {
                r?;
                break;
            }
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) => match parse(&l) {
                    Ok((id, work)) => {
                        jobs.spawn(job(id, work, slots.clone()));
                    }
                    Err(why) => eprintln!("ignored `{l}`: {why}"),
                },
                Ok(None) | Err(_) => stdin_open = false,
            },
            Some(r) = jobs.join_next(), if !jobs.is_empty() => {
                match r {
                    Ok(Ok(())) => done += 1,
                    Ok(Err(e)) => eprintln!("a job failed: {e}"),
                    Err(e) => eprintln!("a job panicked: {e}"),
                }
            }
        }
    }
    let cancelled = jobs.len();
    // Aborting drops each job's future: held permits are released, queued
    // acquisitions are withdrawn (a unit handed over meanwhile is given back).
    jobs.shutdown().await;
    println!("stopped: {done} done, {cancelled} cancelled");
    Ok(())
}
