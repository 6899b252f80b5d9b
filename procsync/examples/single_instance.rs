//! A single-instance guard that recovers when the running instance crashes.
//!
//! Every instance takes a named mutex with `try_lock`: the first gets it and runs, later
//! ones see it held and exit. When the running instance dies without unlocking (here it is
//! SIGKILLed), the mutex is *abandoned*: the next instance to lock it gets it, with
//! `MutexGuard::is_abandoned()` set, and knows to repair what the dead one left behind.
//!
//! Run it with `cargo run -p procsync --example single_instance`. The parent plays the
//! launcher: it starts instance A (which runs and holds the lock), starts instance B
//! (which must find A running and exit with code 2), kills A, and then becomes the next
//! instance itself, expecting to recover an abandoned lock.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use procsync::Mutex;

/// Exit code of an instance that found another one running.
const ALREADY_RUNNING: i32 = 2;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("instance") => instance(&args[1]),
        _ => launcher(),
    }
}

fn lock_name(id: &str) -> String {
    format!("Local\\procsync-example-single-{id}")
}

/// One instance of the application.
fn instance(id: &str) -> Result<ExitCode> {
    let m = Mutex::builder().name(&lock_name(id)).create()?;
    let Some(guard) = m.try_lock()? else {
        println!(
            "instance {}: another instance is running; exiting",
            std::process::id()
        );
        return Ok(ExitCode::from(ALREADY_RUNNING as u8));
    };
    if guard.is_abandoned() {
        println!("instance: the previous instance crashed; repairing its state first");
    }
    println!("instance {}: running", std::process::id());
    // The application's work; this instance runs until it is killed.
    loop {
        std::thread::park();
    }
}

/// A child killed (and reaped) when dropped, so that no path out of the launcher leaves
/// instance A running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn launcher() -> Result<ExitCode> {
    let id = std::process::id().to_string();
    // Holding a handle keeps the mutex (and its abandoned state) alive between instances.
    let m = Mutex::builder().name(&lock_name(&id)).create()?;
    let exe = std::env::current_exe()?;

    // Instance A: wait for its "running" line, so that it holds the lock.
    let mut a = KillOnDrop(
        Command::new(&exe)
            .args(["instance", &id])
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let mut line = String::new();
    BufReader::new(a.0.stdout.take().expect("piped")).read_line(&mut line)?;
    if !line.contains("running") {
        return Err(format!("instance A said {line:?}").into());
    }
    print!("launcher: A says: {line}");

    // Instance B finds A running.
    let b = Command::new(&exe).args(["instance", &id]).status()?;
    let b_ok = b.code() == Some(ALREADY_RUNNING);

    // A crashes while holding the lock.
    a.0.kill()?;
    a.0.wait()?;
    println!("launcher: killed instance A while it held the lock");
    if !b_ok {
        return Err(format!("instance B should have found A running, but exited with {b}").into());
    }

    // The next instance (this process) recovers.
    let Some(guard) = m.lock_for(Duration::from_secs(30))? else {
        return Err("the lock of a dead instance was not handed over within 30 s".into());
    };
    if !guard.is_abandoned() {
        return Err("the lock should have been reported abandoned".into());
    }
    println!("single instance: recovered the lock abandoned by the killed instance");
    Ok(ExitCode::SUCCESS)
}
