//! `procsync repl`: the line protocol of `docs/REPL.md`. The calling thread reads standard
//! input and hands each command to the REPL thread it names (`main` unless prefixed with
//! `@T `); every REPL thread has its own queue, runs its commands in order, and writes
//! exactly one answer line per command through one shared, flushed writer.
//!
//! Aliases are per process: one map from alias to `Arc<Handle>`, locked only to look up,
//! insert or remove — never across a library call, so a blocked wait holds up only its
//! own thread. This module formats answers and maps aliases; it must not interpret
//! objects itself (every semantic answer and error code comes from the library).
//!
//! At end of input the reader waits until every REPL thread has answered every command
//! it was sent, however long that takes (a piped `wait e` blocks until `e` is signaled,
//! as a shell script would). At `exit` it waits only for threads that are not blocked in
//! a wait without timeout: once only such threads are left and nothing has changed for a
//! short grace period (enough for a wait that a just-run command satisfied to answer),
//! it stops waiting. Either way it then closes every handle in the alias map and exits 0,
//! with the writer locked so that no half line can follow. Handles that a still-blocked
//! thread uses are closed by the exit itself, as for a killed process.
//!
//! When standard input is a terminal, a prompt is written to standard error before each
//! line; line editing is the terminal's own (canonical mode), so no answer ever mixes
//! with prompt bytes on standard output.

mod handles;
mod help;
mod threads;

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use procsync::{
    Access, CreateOptions, Created, Handle, ObjectKind, ObjectState, Owner, TimerDue, WaitOutcome,
};

use super::command::{AccessSpec, Command, Due, SyntaxError};
use super::{exit, parse};
use threads::{Job, Output, ReplThread, Tracker};

/// The thread that runs commands without an `@T ` prefix.
const MAIN_THREAD: &str = "main";

/// Written to standard error before each line when standard input is a terminal.
const PROMPT: &str = "procsync> ";

pub use handles::Options;

/// Runs the REPL on standard input and output (or the hidden `--input`/`--output`
/// paths) until `exit` or end of input.
pub fn run(opts: &Options) -> ExitCode {
    let io = match handles::open_io(opts) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("procsync repl: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    let repl = Arc::new(Repl::default());
    if let Some(output) = io.output {
        repl.out.redirect(output);
    }
    handles::start(&repl, opts);
    let mut threads: HashMap<String, ReplThread> = HashMap::new();
    // Threads ended by `exit-thread` (their ids), whose exit may not be answered yet: a
    // new thread of the same name starts only after that answer, so that `T`'s commands
    // stay in order.
    let mut ended: HashMap<String, usize> = HashMap::new();
    let mut input = io.input;
    let prompt = opts.input.is_none() && io::stdin().is_terminal();
    let mut buf = Vec::new();
    let mut exit_asked = false;
    loop {
        buf.clear();
        if prompt {
            let mut err = io::stderr().lock();
            let _ = err.write_all(PROMPT.as_bytes()).and_then(|()| err.flush());
        }
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("procsync repl: reading standard input failed: {e}; exiting");
                break;
            }
        }
        let Some(line) = parse::parse_bytes(&buf) else {
            continue;
        };
        let prefix = line.thread.clone();
        let name = line.thread.unwrap_or_else(|| MAIN_THREAD.to_owned());
        match line.command {
            Ok(Command::Exit) => {
                exit_asked = true;
                break;
            }
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
    if exit_asked {
        repl.tracker.wait_quiet();
    } else {
        repl.tracker.wait_idle();
    }
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
            code: e.code,
            message: e.message,
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
                let opts = CreateOptions { mode, inherit };
                let (handle, created) = Handle::create(spec, &name, &opts)?;
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
                let handle = Handle::open(kind, &name, access_of(access), inherit)?;
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
            Command::Waiters(alias) => Ok(format!("ok {}", self.get(&alias)?.waiters()?)),
            Command::Inheritable { alias, on } => {
                self.get(&alias)?.set_inheritable(on)?;
                ok()
            }
            Command::Pid => Ok(format!("ok {}", std::process::id())),
            command @ (Command::Dup { .. }
            | Command::HandleValue(_)
            | Command::DupFrom { .. }
            | Command::DupTo { .. }
            | Command::Adopt { .. }
            | Command::Spawn { .. }) => self.between_processes(command),
            Command::Close(alias) => {
                drop(self.remove(&alias)?);
                ok()
            }
            Command::Sleep(duration) => {
                thread::sleep(duration);
                ok()
            }
            Command::Help(topic) => help::answer(topic.as_deref()),
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
        if self.aliases().contains_key(alias) {
            return Err(alias_in_use(alias));
        }
        Ok(())
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

/// Keeps an error message on its answer line, printable: line breaks become spaces,
/// other control characters (a NUL in a name, an escape sequence) are written escaped
/// (`\u{0}`), so that what a client reads is what the message says.
fn one_line(message: &str) -> String {
    let joined = message
        .split(['\n', '\r'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    let flag = u8::from;
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

/// `access=` of a duplication command; `None` when absent, which the library reads as
/// the source handle's own access (docs/REPL.md's default, Win32 `DUPLICATE_SAME_ACCESS`).
fn access_or_same(access: Option<AccessSpec>) -> Option<Access> {
    access.map(access_of)
}
