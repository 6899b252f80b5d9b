//! `procsync demo`: N worker processes (this binary again, as the hidden `demo-worker`
//! subcommand) that coordinate only through named objects, then a verification.
//!
//! The objects carry a run id in their names, so concurrent demos never meet: a
//! manual-reset start gate, a `ready` and a `done` semaphore the parent counts, a
//! semaphore of [`SLOTS`] slots, and a mutex guarding a small state file in a private
//! temporary directory (`counter inside max_inside`). Each round a worker takes a slot,
//! increments `inside` under the mutex (recording the maximum seen), sleeps a little,
//! then increments `counter` and decrements `inside` under the mutex, and leaves.
//! The parent streams what the workers print, then checks `counter == workers × rounds`,
//! `max_inside <= SLOTS`, `inside == 0`, the slots semaphore back at `SLOTS`, and that
//! every worker exited 0. It removes its directory, and closing its handles after the
//! workers' removes the objects' names, so nothing is left under the procsync root.
//!
//! This module only uses the public API; it must not depend on timing for correctness
//! (the sleeps make overlap likely, the checks do not rely on it).

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procsync::{
    Access, CreateOptions, Created, Handle, ObjectKind, ObjectSpec, ObjectState, WaitOutcome,
};

use super::exit;

/// Workers allowed inside the slots at once.
const SLOTS: u32 = 2;
/// How long the parent waits for the workers' next step before it gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a worker waits for the gate, a slot or the mutex before it gives up.
const WORKER_TIMEOUT: Duration = Duration::from_secs(60);
/// The parent polls children this often while it waits for them.
const POLL: Duration = Duration::from_millis(200);
/// Name of the state file inside the run's directory.
const STATE_FILE: &str = "state";

/// Arguments of the hidden `demo-worker` subcommand, filled in by the parent.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The run id that makes the object names unique.
    #[arg(long)]
    run_id: String,
    /// This worker's number, from 1.
    #[arg(long)]
    index: u32,
    /// Rounds to run.
    #[arg(long)]
    rounds: u32,
    /// The directory holding the state file.
    #[arg(long)]
    dir: PathBuf,
}

/// Any reason the demo could not run or verify; printed once, then exit 1.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<procsync::Error> for Failure {
    fn from(e: procsync::Error) -> Self {
        Failure(format!("{} ({})", e, e.code()))
    }
}

fn fail<T>(what: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(what.into()))
}

/// The names of one run's objects.
struct Names {
    gate: String,
    ready: String,
    done: String,
    slots: String,
    lock: String,
}

impl Names {
    fn new(run_id: &str) -> Names {
        let name = |what: &str| format!("procsync-demo-{run_id}-{what}");
        Names {
            gate: name("gate"),
            ready: name("ready"),
            done: name("done"),
            slots: name("slots"),
            lock: name("lock"),
        }
    }
}

/// The shared state file: `counter inside max_inside`. Only read or written under the
/// mutex.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    counter: u64,
    inside: u32,
    max_inside: u32,
}

impl State {
    fn load(dir: &Path) -> Result<State, Failure> {
        let path = dir.join(STATE_FILE);
        let text = fs::read_to_string(&path)
            .map_err(|e| Failure(format!("reading {}: {e}", path.display())))?;
        let numbers: Vec<&str> = text.split_whitespace().collect();
        match numbers.as_slice() {
            [c, i, m] => match (c.parse(), i.parse(), m.parse()) {
                (Ok(counter), Ok(inside), Ok(max_inside)) => Ok(State {
                    counter,
                    inside,
                    max_inside,
                }),
                _ => fail(format!(
                    "{} holds `{}`, not three numbers",
                    path.display(),
                    text.trim()
                )),
            },
            _ => fail(format!(
                "{} holds `{}`, not three numbers",
                path.display(),
                text.trim()
            )),
        }
    }

    fn store(&self, dir: &Path) -> Result<(), Failure> {
        let path = dir.join(STATE_FILE);
        let text = format!("{} {} {}\n", self.counter, self.inside, self.max_inside);
        fs::write(&path, text).map_err(|e| Failure(format!("writing {}: {e}", path.display())))
    }
}

/// Runs the demo with `workers` processes of `rounds` rounds each.
pub fn run(workers: u32, rounds: u32) -> ExitCode {
    match demo(workers, rounds) {
        Ok(summary) => {
            println!("verification passed: {summary}");
            exit::code(exit::OK)
        }
        Err(Failure(why)) => {
            println!("verification FAILED: {why}");
            exit::code(exit::FAILURE)
        }
    }
}

fn demo(workers: u32, rounds: u32) -> Result<String, Failure> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run_id = format!("{}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff);
    let dir = TempDir::create(&std::env::temp_dir().join(format!("procsync-demo-{run_id}")))?;
    State::default().store(&dir.0)?;

    let names = Names::new(&run_id);
    let create = |spec, name: &str| -> Result<Handle, Failure> {
        match Handle::create(spec, name, &CreateOptions::default())? {
            (handle, Created::New) => Ok(handle),
            (_, Created::Existing) => fail(format!(
                "`{name}` already existed; is another demo running as {run_id}?"
            )),
        }
    };
    let semaphore = |initial, max| ObjectSpec::Semaphore { initial, max };
    let gate = create(
        ObjectSpec::Event {
            manual: true,
            initial: false,
        },
        &names.gate,
    )?;
    let ready = create(semaphore(0, workers), &names.ready)?;
    let done = create(semaphore(0, workers), &names.done)?;
    let slots = create(semaphore(SLOTS, SLOTS), &names.slots)?;
    let _lock = create(ObjectSpec::Mutex { owned: false }, &names.lock)?;
    println!(
        "[parent] run {run_id}: {workers} workers × {rounds} rounds, {SLOTS} slots, state in {}",
        dir.0.display()
    );

    let mut children = Children::default();
    let exe = std::env::current_exe().map_err(|e| Failure(format!("finding this program: {e}")))?;
    for index in 1..=workers {
        children.spawn(&exe, &run_id, index, rounds, &dir.0)?;
    }

    children.count_down(&ready, workers, "ready at the start gate")?;
    println!("[parent] all {workers} workers are ready; opening the start gate");
    gate.set()?;
    children.count_down(&done, workers, "done")?;

    let statuses = children.wait_all()?;
    let state = State::load(&dir.0)?;
    let slots_left = match slots.query()? {
        ObjectState::Semaphore { count, .. } => count,
        _ => return fail("the slots object is not a semaphore"),
    };
    let expected = u64::from(workers) * u64::from(rounds);
    let problems = check(&state, slots_left, &statuses, expected);
    if !problems.is_empty() {
        return fail(problems.join("; "));
    }
    Ok(format!(
        "counter = {expected} ({workers} workers × {rounds} rounds), at most {} of {SLOTS} slots \
         in use at once, all workers exited 0",
        state.max_inside
    ))
}

/// Everything wrong with the end state of a run; empty when the run was correct.
fn check(state: &State, slots_left: u32, statuses: &[ExitStatus], expected: u64) -> Vec<String> {
    let mut problems = Vec::new();
    if state.counter != expected {
        problems.push(format!("counter is {}, expected {expected}", state.counter));
    }
    if state.max_inside > SLOTS {
        problems.push(format!(
            "{} workers were inside at once, at most {SLOTS} allowed",
            state.max_inside
        ));
    }
    if state.inside != 0 {
        problems.push(format!("{} workers are still counted inside", state.inside));
    }
    if slots_left != SLOTS {
        problems.push(format!(
            "the slots semaphore holds {slots_left}, expected {SLOTS}"
        ));
    }
    for (index, status) in statuses.iter().enumerate() {
        if !status.success() {
            problems.push(format!("worker {} exited with {status}", index + 1));
        }
    }
    problems
}

/// The worker processes and the threads that stream their output.
#[derive(Default)]
struct Children {
    children: Vec<Child>,
    streams: Vec<JoinHandle<()>>,
}

impl Children {
    fn spawn(
        &mut self,
        exe: &Path,
        run_id: &str,
        index: u32,
        rounds: u32,
        dir: &Path,
    ) -> Result<(), Failure> {
        let mut child = Command::new(exe)
            .arg("demo-worker")
            .args([
                "--run-id",
                run_id,
                "--index",
                &index.to_string(),
                "--rounds",
                &rounds.to_string(),
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Failure(format!("starting worker {index}: {e}")))?;
        if let Some(out) = child.stdout.take() {
            self.streams.push(thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    println!("{line}");
                }
            }));
        }
        self.children.push(child);
        Ok(())
    }

    /// Waits until `sem` was released `n` times, failing early if a worker exits with
    /// an error.
    fn count_down(&mut self, sem: &Handle, n: u32, what: &str) -> Result<(), Failure> {
        for got in 0..n {
            let started = Instant::now();
            loop {
                match sem.wait(Some(POLL))? {
                    WaitOutcome::Signaled(_) => break,
                    WaitOutcome::Abandoned(_) => {
                        return fail(format!("waiting for workers {what}: abandoned"));
                    }
                    WaitOutcome::TimedOut => {}
                }
                self.check_alive()?;
                if started.elapsed() > STEP_TIMEOUT {
                    return fail(format!(
                        "only {got} of {n} workers {what} after {} s",
                        STEP_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), Failure> {
        for (index, child) in self.children.iter_mut().enumerate() {
            match child.try_wait() {
                Ok(Some(status)) if !status.success() => {
                    return fail(format!("worker {} exited early with {status}", index + 1));
                }
                Ok(_) => {}
                Err(e) => return fail(format!("checking worker {}: {e}", index + 1)),
            }
        }
        Ok(())
    }

    /// Reaps every worker and finishes streaming their output.
    fn wait_all(&mut self) -> Result<Vec<ExitStatus>, Failure> {
        let mut statuses = Vec::new();
        for (index, child) in self.children.iter_mut().enumerate() {
            let status = child
                .wait()
                .map_err(|e| Failure(format!("waiting for worker {}: {e}", index + 1)))?;
            statuses.push(status);
        }
        self.children.clear();
        for stream in self.streams.drain(..) {
            let _ = stream.join();
        }
        Ok(statuses)
    }
}

impl Drop for Children {
    /// On an early failure, no worker outlives the demo.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for stream in self.streams.drain(..) {
            let _ = stream.join();
        }
    }
}

/// The run's private directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(path: &Path) -> Result<TempDir, Failure> {
        fs::create_dir(path).map_err(|e| Failure(format!("creating {}: {e}", path.display())))?;
        Ok(TempDir(path.to_owned()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("procsync demo: removing {}: {e}", self.0.display());
        }
    }
}

/// Entry point of the hidden `demo-worker` subcommand.
pub fn worker(args: &WorkerArgs) -> ExitCode {
    match work(args) {
        Ok(()) => exit::code(exit::OK),
        Err(Failure(why)) => {
            println!("[worker {}] FAILED: {why}", args.index);
            exit::code(exit::FAILURE)
        }
    }
}

fn work(args: &WorkerArgs) -> Result<(), Failure> {
    let me = args.index;
    let names = Names::new(&args.run_id);
    let open = |kind, name: &str| Handle::open(kind, name, Access::ALL, false);
    let gate = open(ObjectKind::Event, &names.gate)?;
    let ready = open(ObjectKind::Semaphore, &names.ready)?;
    let done = open(ObjectKind::Semaphore, &names.done)?;
    let slots = open(ObjectKind::Semaphore, &names.slots)?;
    let lock = open(ObjectKind::Mutex, &names.lock)?;
    println!(
        "[worker {me}] pid {}: opened the objects, waiting at the start gate",
        std::process::id()
    );
    ready.release(1)?;
    acquire(&gate, "the start gate")?;

    for round in 1..=args.rounds {
        acquire(&slots, "a slot")?;
        let inside = locked(&lock, &args.dir, |state| {
            state.inside += 1;
            state.max_inside = state.max_inside.max(state.inside);
            state.inside
        })?;
        println!(
            "[worker {me}] round {round}/{}: got a slot (inside: {inside})",
            args.rounds
        );
        // Stay a while, differently per worker and round, so that slots overlap.
        thread::sleep(Duration::from_millis(
            5 + u64::from((me * 7 + round * 3) % 20),
        ));
        let counter = locked(&lock, &args.dir, |state| {
            state.inside = state.inside.saturating_sub(1);
            state.counter += 1;
            state.counter
        })?;
        slots.release(1)?;
        println!(
            "[worker {me}] round {round}/{}: left its slot (counter: {counter})",
            args.rounds
        );
    }
    done.release(1)?;
    println!("[worker {me}] done");
    Ok(())
}

/// Waits for `handle` (an event, semaphore or mutex), treating anything but a plain
/// signal as a failure.
fn acquire(handle: &Handle, what: &str) -> Result<(), Failure> {
    match handle.wait(Some(WORKER_TIMEOUT))? {
        WaitOutcome::Signaled(_) => Ok(()),
        WaitOutcome::Abandoned(_) => fail(format!(
            "{what} was abandoned by a worker that died holding it; the state may be torn"
        )),
        WaitOutcome::TimedOut => fail(format!("no {what} after {} s", WORKER_TIMEOUT.as_secs())),
    }
}

/// Runs `update` on the state file while holding the mutex, and stores the result.
fn locked<T>(
    lock: &Handle,
    dir: &Path,
    update: impl FnOnce(&mut State) -> T,
) -> Result<T, Failure> {
    acquire(lock, "the state mutex")?;
    let result = (|| {
        let mut state = State::load(dir)?;
        let value = update(&mut state);
        state.store(dir)?;
        Ok(value)
    })();
    lock.release(1)?;
    result
}
