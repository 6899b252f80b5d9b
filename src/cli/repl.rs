//! `procsync repl`: the line protocol of `REPL.md`. The calling thread reads standard
//! input and hands each command to the REPL thread it names (`main` unless prefixed with
//! `@T `); every REPL thread has its own queue, runs its commands in order, and writes
//! exactly one answer line per command through one shared, flushed writer.
//!
//! Aliases are per process: one map from alias to `Arc<Handle>`, locked only to look up,
//! insert or remove — never across a library call, so a blocked wait holds up only its
//! own thread. This module formats answers and maps aliases; it must not interpret
//! objects itself (every semantic answer and error code comes from the library).
//!
//! At `exit` or end of input the reader waits until every REPL thread has answered all
//! its queued commands, except a thread blocked in a wait without timeout (which may
//! never return); then it closes all handles in the alias map and exits 0 at once, with
//! the writer locked so that no half line can follow.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use procsync::{
    Access, CreateOptions, Created, Handle, ObjectKind, ObjectSpec, ObjectState, Owner, TimerDue,
    WaitOutcome,
};

use super::exit;
use super::parse::{self, AccessSpec, Command, Due, Kind, Spec, SyntaxError};

/// The thread that runs commands without an `@T ` prefix.
const MAIN_THREAD: &str = "main";

/// How long `exit` lets threads blocked in a wait without timeout stay still before it
/// stops waiting for them.
const EXIT_GRACE: Duration = Duration::from_millis(100);

/// Runs the REPL on standard input and output until `exit` or end of input.
pub fn run() -> ExitCode {
    let repl = Arc::new(Repl::default());
    let mut threads: HashMap<String, ReplThread> = HashMap::new();
    // Threads ended by `exit-thread` (their ids), whose exit may not be answered yet: a
    // new thread of the same name starts only after that answer, so that `T`'s commands
    // stay in order.
    let mut ended: HashMap<String, usize> = HashMap::new();
    let mut input = io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("procsync repl: reading standard input failed: {e}; exiting");
                break;
            }
        }
        let Some(line) = parse::parse_line(&String::from_utf8_lossy(&buf)) else {
            continue;
        };
        let prefix = line.thread.clone();
        let name = line.thread.unwrap_or_else(|| MAIN_THREAD.to_owned());
        match line.command {
            Ok(Command::Exit) => break,
            Ok(Command::ExitThread) => {
                // A thread never started (or already ended) is started to be ended, so
                // that its `ok` still comes after its earlier answers.
                let thread = threads
                    .remove(&name)
                    .unwrap_or_else(|| ReplThread::start(&name, &repl, ended.remove(&name)));
                ended.insert(name, thread.id);
                thread.exit(&repl, prefix);
            }
            command => {
                let thread = threads
                    .entry(name)
                    .or_insert_with_key(|name| ReplThread::start(name, &repl, ended.remove(name)));
                thread.send(&repl, Job { prefix, command });
            }
        }
    }
    repl.tracker.wait_quiet();
    repl.close_all();
    let _out = repl.out.lock();
    std::process::exit(exit::OK.into())
}

/// State shared by the reader and every REPL thread.
#[derive(Default)]
struct Repl {
    out: Output,
    tracker: Tracker,
    aliases: Mutex<HashMap<String, Arc<Handle>>>,
}

/// The one writer of standard output: a whole line per answer, flushed at once.
#[derive(Default)]
struct Output {
    lock: Mutex<()>,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `[@T ]text` as one line and flushes it.
    fn answer(&self, prefix: Option<&str>, text: &str) {
        let line = match prefix {
            Some(thread) => format!("@{thread} {text}\n"),
            None => format!("{text}\n"),
        };
        let _guard = self.lock();
        let mut out = io::stdout().lock();
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            eprintln!("procsync repl: writing an answer failed: {e}");
        }
    }
}

/// The progress of every REPL thread, under one lock: what `exit` and a restarted
/// thread wait on.
#[derive(Default)]
struct Tracker {
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    /// Indexed by thread id (start order); ended threads keep their entry.
    threads: Vec<ThreadProgress>,
    /// Bumped on every change, so that `exit` can tell a quiet process from a busy one.
    changes: u64,
}

#[derive(Default)]
struct ThreadProgress {
    /// Commands sent and not yet answered (an `exit-thread` counts until answered).
    pending: usize,
    /// Running a wait without timeout.
    waiting_forever: bool,
}

impl Progress {
    /// Some thread has work that will finish on its own.
    fn busy(&self) -> bool {
        self.threads
            .iter()
            .any(|t| t.pending > 0 && !t.waiting_forever)
    }

    fn idle(&self) -> bool {
        self.threads.iter().all(|t| t.pending == 0)
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new thread's id.
    fn register(&self) -> usize {
        let mut progress = self.lock();
        progress.threads.push(ThreadProgress::default());
        progress.threads.len() - 1
    }

    fn update(&self, id: usize, change: impl FnOnce(&mut ThreadProgress)) {
        let mut progress = self.lock();
        change(&mut progress.threads[id]);
        progress.changes += 1;
        drop(progress);
        self.changed.notify_all();
    }

    fn sent(&self, id: usize) {
        self.update(id, |t| t.pending += 1);
    }

    fn waiting_forever(&self, id: usize) {
        self.update(id, |t| t.waiting_forever = true);
    }

    /// One command of thread `id` answered.
    fn answered(&self, id: usize) {
        self.update(id, |t| {
            t.pending = t.pending.saturating_sub(1);
            t.waiting_forever = false;
        });
    }

    /// Blocks until thread `id` has answered everything sent to it.
    fn wait_answered(&self, id: usize) {
        let progress = self.lock();
        let _answered = self
            .changed
            .wait_while(progress, |p| p.threads[id].pending > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Blocks until every thread has answered all it was sent, except threads in a wait
    /// without timeout that stay blocked for [`EXIT_GRACE`] with nothing else changing
    /// (a command just run may have released them; their answers are then awaited).
    fn wait_quiet(&self) {
        let mut progress = self.lock();
        loop {
            progress = self
                .changed
                .wait_while(progress, |p| p.busy())
                .unwrap_or_else(PoisonError::into_inner);
            if progress.idle() {
                return;
            }
            let seen = progress.changes;
            let (guard, timeout) = self
                .changed
                .wait_timeout_while(progress, EXIT_GRACE, |p| p.changes == seen)
                .unwrap_or_else(PoisonError::into_inner);
            if timeout.timed_out() {
                return;
            }
            progress = guard;
        }
    }
}

/// One queued command and the prefix its answer carries.
struct Job {
    prefix: Option<String>,
    command: Result<Command, SyntaxError>,
}

/// A message to a REPL thread.
enum Message {
    Run(Job),
    /// `exit-thread`: return, so that the thread really ends.
    Exit,
}

/// A running REPL thread, as the reader holds it.
struct ReplThread {
    id: usize,
    queue: Sender<Message>,
    join: JoinHandle<()>,
}

impl ReplThread {
    /// Starts thread `name`; it runs nothing before `previous` (an ended thread of the
    /// same name) has answered everything, its `exit-thread` included.
    fn start(name: &str, repl: &Arc<Repl>, previous: Option<usize>) -> ReplThread {
        let (queue, inbox) = mpsc::channel::<Message>();
        let id = repl.tracker.register();
        let repl = Arc::clone(repl);
        let join = thread::Builder::new()
            .name(format!("repl-{name}"))
            .spawn(move || {
                if let Some(previous) = previous {
                    repl.tracker.wait_answered(previous);
                }
                while let Ok(Message::Run(job)) = inbox.recv() {
                    let forever = job.command.as_ref().is_ok_and(Command::waits_forever);
                    if forever {
                        repl.tracker.waiting_forever(id);
                    }
                    let answer = repl.answer_to(job.command);
                    repl.out.answer(job.prefix.as_deref(), &answer);
                    repl.tracker.answered(id);
                }
            })
            // Like `thread::spawn`: running out of threads is not an answerable error.
            .expect("procsync repl: cannot start a thread");
        ReplThread { id, queue, join }
    }

    fn send(&self, repl: &Repl, job: Job) {
        repl.tracker.sent(self.id);
        // The thread only returns after `Message::Exit`, so the queue is open.
        let _ = self.queue.send(Message::Run(job));
    }

    /// Ends the thread after its queued commands, then answers `ok` once it has exited
    /// (so that whatever it owned is already abandoned when the answer is read).
    fn exit(self, repl: &Arc<Repl>, prefix: Option<String>) {
        repl.tracker.sent(self.id);
        let _ = self.queue.send(Message::Exit);
        let repl = Arc::clone(repl);
        thread::spawn(move || {
            if self.join.join().is_err() {
                eprintln!("procsync repl: a thread ended by panicking");
            }
            repl.out.answer(prefix.as_deref(), "ok");
            repl.tracker.answered(self.id);
        });
    }
}

/// A failed command: `err <code> <message>`.
struct Failure {
    code: &'static str,
    message: String,
}

impl From<procsync::Error> for Failure {
    fn from(e: procsync::Error) -> Self {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<SyntaxError> for Failure {
    fn from(e: SyntaxError) -> Self {
        Failure {
            code: "invalid-argument",
            message: e.0,
        }
    }
}

type Answer = Result<String, Failure>;

fn ok() -> Answer {
    Ok("ok".to_owned())
}

impl Repl {
    /// Runs one command and returns its answer line (without prefix). A panic in the
    /// library is answered too, so that a client never waits for a missing line.
    fn answer_to(&self, command: Result<Command, SyntaxError>) -> String {
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.execute(command?)));
        match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(Failure { code, message })) => format!("err {code} {}", one_line(&message)),
            Err(_) => "err io the command panicked (a procsync bug); see standard error".to_owned(),
        }
    }

    fn execute(&self, command: Command) -> Answer {
        match command {
            Command::Create {
                alias,
                spec,
                name,
                mode,
                inherit,
            } => {
                self.check_free(&alias)?;
                let mut opts = CreateOptions::default();
                opts.mode = mode;
                opts.inherit = inherit;
                let (handle, created) = Handle::create(object_spec(spec), &name, &opts)?;
                self.insert(alias, handle)?;
                Ok(match created {
                    Created::New => "ok created",
                    Created::Existing => "ok existed",
                }
                .to_owned())
            }
            Command::Open {
                kind,
                alias,
                name,
                access,
                inherit,
            } => {
                self.check_free(&alias)?;
                let handle = Handle::open(object_kind(kind), &name, access_of(access), inherit)?;
                self.insert(alias, handle)?;
                ok()
            }
            Command::Set(alias) => {
                self.get(&alias)?.set()?;
                ok()
            }
            Command::Reset(alias) => {
                self.get(&alias)?.reset()?;
                ok()
            }
            Command::Pulse(alias) => {
                self.get(&alias)?.pulse()?;
                ok()
            }
            Command::Release { alias, count } => {
                let handle = self.get(&alias)?;
                let previous = handle.release(count)?;
                match handle.kind() {
                    ObjectKind::Mutex => ok(),
                    _ => Ok(format!("ok {previous}")),
                }
            }
            Command::SetTimer {
                alias,
                due,
                period_ms,
            } => {
                let due = match due {
                    Due::Relative(after) => TimerDue::Relative(after),
                    Due::AtUnixMs(ms) => TimerDue::AbsoluteUnixMs(ms),
                };
                self.get(&alias)?.set_timer(due, period_ms)?;
                ok()
            }
            Command::Cancel(alias) => {
                self.get(&alias)?.cancel_timer()?;
                ok()
            }
            Command::Wait { alias, timeout } => Ok(single(self.get(&alias)?.wait(timeout)?)),
            Command::WaitAny { aliases, timeout } => {
                let handles = self.get_all(&aliases)?;
                let refs: Vec<&Handle> = handles.iter().map(Arc::as_ref).collect();
                Ok(match procsync::wait_any(&refs, timeout)? {
                    WaitOutcome::Signaled(k) => format!("signaled {k}"),
                    WaitOutcome::Abandoned(k) => format!("abandoned {k}"),
                    WaitOutcome::TimedOut => "timeout".to_owned(),
                })
            }
            Command::WaitAll { aliases, timeout } => {
                let handles = self.get_all(&aliases)?;
                let refs: Vec<&Handle> = handles.iter().map(Arc::as_ref).collect();
                Ok(match procsync::wait_all(&refs, timeout)? {
                    WaitOutcome::Signaled(_) => "signaled".to_owned(),
                    WaitOutcome::Abandoned(k) => format!("abandoned {k}"),
                    WaitOutcome::TimedOut => "timeout".to_owned(),
                })
            }
            Command::SignalAndWait {
                signal,
                wait,
                timeout,
            } => {
                let (signal, wait) = (self.get(&signal)?, self.get(&wait)?);
                Ok(single(procsync::signal_and_wait(&signal, &wait, timeout)?))
            }
            Command::Query(alias) => Ok(format_state(self.get(&alias)?.query()?)),
            Command::Dup {
                source,
                target,
                access,
                close_source,
            } => {
                self.check_free(&target)?;
                let handle = self.get(&source)?.duplicate(access.map(access_of))?;
                self.insert(target, handle)?;
                if close_source {
                    self.remove(&source)?;
                }
                ok()
            }
            Command::Inheritable { alias, on } => {
                self.get(&alias)?.set_inheritable(on)?;
                ok()
            }
            Command::Pid => Ok(format!("ok {}", std::process::id())),
            Command::HandleValue(alias) => {
                self.get(&alias)?;
                Err(unsupported(
                    "`handle`: handle values are not available in this build",
                ))
            }
            Command::DupFrom { target, .. } => {
                self.check_free(&target)?;
                Err(unsupported(
                    "`dup-from`: duplication between processes is not available in this build",
                ))
            }
            Command::DupTo { alias, .. } => {
                self.get(&alias)?;
                Err(unsupported(
                    "`dup-to`: duplication between processes is not available in this build",
                ))
            }
            Command::Adopt { target, .. } => {
                self.check_free(&target)?;
                Err(unsupported(
                    "`adopt`: adopting inherited or duplicated handles is not available in this build",
                ))
            }
            Command::Spawn { .. } => Err(unsupported(
                "`spawn`: passing inheritable handles to a child is not available in this build",
            )),
            Command::Close(alias) => {
                drop(self.remove(&alias)?);
                ok()
            }
            Command::Sleep(duration) => {
                thread::sleep(duration);
                ok()
            }
            // The reader handles these two itself; they never reach a thread.
            Command::Exit | Command::ExitThread => ok(),
        }
    }

    fn aliases(&self) -> MutexGuard<'_, HashMap<String, Arc<Handle>>> {
        self.aliases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, alias: &str) -> Result<Arc<Handle>, Failure> {
        self.aliases()
            .get(alias)
            .cloned()
            .ok_or_else(|| unknown_alias(alias))
    }

    fn get_all(&self, aliases: &[String]) -> Result<Vec<Arc<Handle>>, Failure> {
        let map = self.aliases();
        aliases
            .iter()
            .map(|a| map.get(a).cloned().ok_or_else(|| unknown_alias(a)))
            .collect()
    }

    fn check_free(&self, alias: &str) -> Result<(), Failure> {
        match self.aliases().contains_key(alias) {
            true => Err(alias_in_use(alias)),
            false => Ok(()),
        }
    }

    /// Stores a new handle; if another thread took the alias meanwhile, the handle is
    /// closed again and the answer is `alias-in-use`.
    fn insert(&self, alias: String, handle: Handle) -> Result<(), Failure> {
        let mut map = self.aliases();
        if map.contains_key(&alias) {
            drop(map);
            drop(handle);
            return Err(alias_in_use(&alias));
        }
        map.insert(alias, Arc::new(handle));
        Ok(())
    }

    fn remove(&self, alias: &str) -> Result<Arc<Handle>, Failure> {
        self.aliases()
            .remove(alias)
            .ok_or_else(|| unknown_alias(alias))
    }

    /// Closes every handle in the alias map (a handle a blocked thread is waiting on
    /// stays open until the process exits).
    fn close_all(&self) {
        let all = std::mem::take(&mut *self.aliases());
        drop(all);
    }
}

fn unknown_alias(alias: &str) -> Failure {
    Failure {
        code: "unknown-alias",
        message: format!("no handle has the alias `{alias}`; create or open one first"),
    }
}

fn alias_in_use(alias: &str) -> Failure {
    Failure {
        code: "alias-in-use",
        message: format!(
            "the alias `{alias}` already names a handle; close it or pick another alias"
        ),
    }
}

fn unsupported(message: &str) -> Failure {
    procsync::Error::unsupported(message).into()
}

/// Keeps an error message on its answer line.
fn one_line(message: &str) -> String {
    message
        .split(['\n', '\r'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The answer to `wait` and `signalandwait`: no index.
fn single(outcome: WaitOutcome) -> String {
    match outcome {
        WaitOutcome::Signaled(_) => "signaled",
        WaitOutcome::Abandoned(_) => "abandoned",
        WaitOutcome::TimedOut => "timeout",
    }
    .to_owned()
}

fn format_state(state: ObjectState) -> String {
    let flag = |on: bool| if on { 1 } else { 0 };
    match state {
        ObjectState::Event { manual, signaled } => format!(
            "ok event {} {}",
            if manual { "manual" } else { "auto" },
            if signaled { "set" } else { "unset" }
        ),
        ObjectState::Mutex {
            owner,
            recursion,
            abandoned,
        } => {
            let owner = match owner {
                Owner::None => "none",
                Owner::Current => "self",
                Owner::Other => "other",
            };
            format!(
                "ok mutex owner={owner} recursion={recursion} abandoned={}",
                flag(abandoned)
            )
        }
        ObjectState::Semaphore { count, max } => format!("ok semaphore count={count} max={max}"),
        ObjectState::Timer {
            manual,
            signaled,
            armed,
        } => format!(
            "ok timer {} {} armed={}",
            if manual { "manual" } else { "sync" },
            if signaled { "signaled" } else { "unsignaled" },
            flag(armed)
        ),
    }
}

fn object_kind(kind: Kind) -> ObjectKind {
    match kind {
        Kind::Event => ObjectKind::Event,
        Kind::Mutex => ObjectKind::Mutex,
        Kind::Semaphore => ObjectKind::Semaphore,
        Kind::Timer => ObjectKind::Timer,
    }
}

fn object_spec(spec: Spec) -> ObjectSpec {
    match spec {
        Spec::Event { manual, initial } => ObjectSpec::Event { manual, initial },
        Spec::Mutex { owned } => ObjectSpec::Mutex { owned },
        Spec::Semaphore { initial, max } => ObjectSpec::Semaphore { initial, max },
        Spec::Timer { manual } => ObjectSpec::Timer { manual },
    }
}

fn access_of(access: AccessSpec) -> Access {
    match access {
        AccessSpec::All => Access::ALL,
        AccessSpec::Rights {
            synchronize: true,
            modify: true,
        } => Access::SYNCHRONIZE.union(Access::MODIFY),
        AccessSpec::Rights {
            synchronize: true,
            modify: false,
        } => Access::SYNCHRONIZE,
        AccessSpec::Rights {
            synchronize: false, ..
        } => Access::MODIFY,
    }
}
