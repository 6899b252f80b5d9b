//! The cross-process test harness: a fresh `PROCSYNC_ROOT` per test ([`Root`]) and live
//! `procsync repl` processes driven line by line ([`Repl`]).
//!
//! What it owns: spawning and reaping REPL processes, reading every answer with a deadline, and
//! printing a full transcript (commands, answers and every REPL's stderr) when something is
//! wrong. What it must not do: synchronise positive outcomes with sleeps. "The waiter is
//! queued" is a handshake ([`wait_for_waiters`] polls the REPL's `waiters` command); the only
//! sleeps here are the grace period of the few *negative* checks ("this wake-up must not
//! happen", [`Repl::no_answer_for`]) and the milliseconds between polls while waiting, with a
//! deadline, for an answer, a waiter count or a process exit.
//!
//! Conventions the tests rely on:
//! - A command's answer is looked up by the command's thread: `@T cmd` is answered by the next
//!   line starting with `@T `, an unprefixed command by the next line without `@`. Answers of
//!   other threads that arrive meanwhile are kept for later, so threads may interleave freely.
//! - Dropping a [`Repl`] closes its standard input; the REPL must then close its handles and
//!   exit 0 (docs/REPL.md, "Lines and answers"). Dropping a [`Root`] afterwards checks that no
//!   file is left anywhere under it, which is how every test checks that object names disappear
//!   with their last handle (LT-01, LT-03).

#![allow(dead_code)] // not every test module uses every helper

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `procsync` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_procsync");

/// How long any answer that is expected may take. Generous: it only matters when a test fails.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// How long a wait that must *not* have finished is watched before we call it blocked. This is
/// a negative check, so a short sleep is acceptable here (and only here).
pub const BLOCK_GRACE: Duration = Duration::from_millis(200);

/// The `timeout=` (ms) given to waits that the test expects to be satisfied: long enough to never
/// fire on a slow machine, short enough that a broken implementation cannot hang the suite.
pub const LONG_WAIT_MS: u64 = 8_000;

/// How long a REPL may take to exit after end of input or `exit`. Longer than [`LONG_WAIT_MS`],
/// so that a REPL still finishing a wait is not mistaken for a hung one.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);

/// How many log lines a failure report shows (the most recent ones).
const TRANSCRIPT_TAIL: usize = 400;

/// Log lines longer than this are shortened in reports (some tests send 32 KiB names).
const LOG_LINE_MAX: usize = 240;

/// Bytes one thread appends and others read (a REPL's collected stderr).
type SharedBytes = Arc<Mutex<Vec<u8>>>;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test uses: `prefix` followed by a process-wide counter. Roots are fresh per
/// test anyway; unique names make transcripts unambiguous and catch cross-test leaks.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh, private `PROCSYNC_ROOT`.
///
/// Layout: `<tmp>/procsync-test-<pid>-<counter>-<nanos>/` is the *sandbox*, removed on drop;
/// the root itself is `<sandbox>/l1/l2/l3/root`, so that a name which escaped the root through
/// `..` would still land inside the sandbox, where the drop check finds it.
pub struct Root {
    sandbox: PathBuf,
    path: PathBuf,
    /// Everything sent and received by every REPL of this root, in order (`A> cmd`, `A< answer`).
    log: RefCell<Vec<String>>,
    /// Each REPL's label and collected standard error.
    stderrs: RefCell<Vec<(String, SharedBytes)>>,
    next_label: Cell<usize>,
}

/// The directories between the sandbox and the root (see [`Root`]).
pub const ROOT_DEPTH: [&str; 3] = ["l1", "l2", "l3"];

impl Root {
    /// Creates a fresh sandbox and root directory.
    pub fn fresh() -> Root {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let sandbox =
            std::env::temp_dir().join(format!("procsync-test-{}-{n}-{nanos}", std::process::id()));
        let mut path = sandbox.clone();
        for dir in ROOT_DEPTH {
            path.push(dir);
        }
        path.push("root");
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create test root {}: {e}", path.display()));
        Root {
            sandbox,
            path,
            log: RefCell::new(Vec::new()),
            stderrs: RefCell::new(Vec::new()),
            next_label: Cell::new(0),
        }
    }

    /// The directory given to the REPLs as `PROCSYNC_ROOT`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The private directory that contains the root (see [`Root`]).
    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    /// `procsync` with `PROCSYNC_ROOT` pointing at this root; arguments are up to the caller.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("PROCSYNC_ROOT", &self.path);
        cmd
    }

    /// Starts a `procsync repl` on this root. REPLs are labelled A, B, C… in transcripts.
    pub fn repl(&self) -> Repl<'_> {
        let n = self.next_label.get();
        self.next_label.set(n + 1);
        let label = label_for(n);

        let mut child = self
            .command()
            .arg("repl")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{BIN} repl`: {e}"));

        // One thread per pipe: stdout lines go into a channel (read with deadlines), stderr is
        // collected chunk by chunk so that a partial stderr is available at any moment.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::Builder::new()
            .name(format!("repl-{label}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn stdout reader");

        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        thread::Builder::new()
            .name(format!("repl-{label}-stderr"))
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            })
            .expect("spawn stderr reader");

        self.stderrs.borrow_mut().push((label.clone(), stderr));
        self.log(format!("{label}: started, pid {}", child.id()));
        Repl {
            root: self,
            label,
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            buffered: VecDeque::new(),
        }
    }

    /// Every non-directory entry anywhere in the sandbox (the root and the directories above it).
    /// Empty directories are allowed: the library may keep its namespace directories.
    pub fn leftover_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.sandbox, &mut |path, meta| {
            if meta.is_file() || meta.is_symlink() {
                found.push(path.to_path_buf());
            }
        });
        found
    }

    /// Every entry (of any kind) in the sandbox that is not inside the root and is not one of the
    /// directories leading to it: anything here escaped the root.
    pub fn entries_outside_root(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut allowed = vec![self.sandbox.clone()];
        let mut dir = self.sandbox.clone();
        for d in ROOT_DEPTH {
            dir.push(d);
            allowed.push(dir.clone());
        }
        walk(&self.sandbox, &mut |path, _| {
            if !path.starts_with(&self.path) && !allowed.iter().any(|a| a == path) {
                found.push(path.to_path_buf());
            }
        });
        found
    }

    fn log(&self, line: String) {
        self.log.borrow_mut().push(shorten(&line));
    }

    /// Everything this root's REPLs were sent and answered, then each REPL's standard error.
    pub fn transcript(&self) -> String {
        let log = self.log.borrow();
        let mut out = String::from("---- transcript (> sent, < received) ----\n");
        let skip = log.len().saturating_sub(TRANSCRIPT_TAIL);
        if skip > 0 {
            let _ = writeln!(out, "  ({skip} earlier lines omitted)");
        }
        for line in &log[skip..] {
            let _ = writeln!(out, "  {line}");
        }
        for (label, stderr) in self.stderrs.borrow().iter() {
            let bytes = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let text = String::from_utf8_lossy(&bytes);
            let _ = writeln!(out, "---- stderr of {label} ----");
            for line in text.lines() {
                let _ = writeln!(out, "  {}", shorten(line));
            }
        }
        out
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // Every Repl borrows the Root, so all of them have exited by now.
        let leftovers = if thread::panicking() {
            Vec::new()
        } else {
            self.leftover_files()
        };
        let transcript = if leftovers.is_empty() {
            String::new()
        } else {
            self.transcript()
        };
        if let Err(e) = fs::remove_dir_all(&self.sandbox) {
            eprintln!(
                "warning: cannot remove test sandbox {}: {e}",
                self.sandbox.display()
            );
        }
        if !leftovers.is_empty() {
            panic!(
                "files left under the test root after every repl exited (names must disappear \
                 with their last handle, LT-01/LT-03):\n{}\n{transcript}",
                leftovers
                    .iter()
                    .map(|p| format!("  {}", p.display()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// A live `procsync repl` process.
pub struct Repl<'r> {
    root: &'r Root,
    label: String,
    /// `None` once the process has been reaped.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Answers that arrived while another thread's answer was being looked for.
    buffered: VecDeque<String>,
}

/// Why no answer was found.
enum Missing {
    Deadline,
    Exited,
}

/// Which answers a command's answer is looked up among.
#[derive(Clone, Copy)]
enum Thread<'a> {
    /// Thread `main`: answers without an `@T ` prefix.
    Main,
    /// Thread `T`, given as `@T`.
    Named(&'a str),
    /// Any answer at all.
    Any,
}

impl Thread<'_> {
    fn of(cmd: &str) -> Thread<'_> {
        if cmd.starts_with('@') {
            Thread::Named(cmd.split(' ').next().unwrap_or(cmd))
        } else {
            Thread::Main
        }
    }

    fn matches(self, line: &str) -> bool {
        match self {
            Thread::Main => !line.starts_with('@'),
            Thread::Named(p) => {
                line == p || line.strip_prefix(p).is_some_and(|r| r.starts_with(' '))
            }
            Thread::Any => true,
        }
    }

    fn describe(self) -> String {
        match self {
            Thread::Main => "thread main".into(),
            Thread::Named(p) => format!("thread {p}"),
            Thread::Any => "any thread".into(),
        }
    }
}

impl<'r> Repl<'r> {
    /// This REPL's label in transcripts (A, B, C…).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The REPL's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| self.fail("pid of a reaped repl"))
    }

    /// Sends one command line without reading its answer (for waits expected to block).
    pub fn send(&mut self, cmd: &str) {
        self.send_batch(&[cmd]);
    }

    /// Sends many command lines in one write, without reading answers: they run back to back,
    /// which is how tests make several processes contend. Keep batches well under the pipe
    /// buffer (64 KiB) so the write never blocks on a REPL that waits for another one.
    pub fn send_batch<S: AsRef<str>>(&mut self, cmds: &[S]) {
        let mut text = String::new();
        for cmd in cmds {
            let cmd = cmd.as_ref();
            debug_assert!(!cmd.contains('\n'), "one command per line");
            self.root.log(format!("{}> {cmd}", self.label));
            text.push_str(cmd);
            text.push('\n');
        }
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail("send after standard input was closed")
        };
        if let Err(e) = stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
        {
            self.fail(&format!("cannot write to the repl (did it exit?): {e}"));
        }
    }

    /// Sends one line of raw bytes (a newline is added) and returns thread `main`'s next
    /// answer: for input that is not text.
    pub fn ask_raw(&mut self, line: &[u8]) -> String {
        self.root
            .log(format!("{}> {}", self.label, line.escape_ascii()));
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail("send after standard input was closed")
        };
        if let Err(e) = stdin
            .write_all(line)
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
        {
            self.fail(&format!("cannot write to the repl (did it exit?): {e}"));
        }
        self.answer_by(Thread::Main, ANSWER_DEADLINE, "(raw line)")
    }

    /// Sends `cmd` and returns its answer (looked up by the command's thread).
    pub fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.answer_by(Thread::of(cmd), ANSWER_DEADLINE, cmd)
    }

    /// Sends `cmd` and asserts that its answer is exactly `want`. Prefixed commands (`@T …`)
    /// are answered with the same prefix, which `want` must include: `@T signaled`.
    #[track_caller]
    pub fn expect(&mut self, cmd: &str, want: &str) {
        let got = self.ask(cmd);
        if got != want {
            self.fail(&format!("`{cmd}`: expected `{want}`, got `{got}`"));
        }
    }

    /// Sends `cmd` and asserts that it fails with `err <code> …` (after the thread prefix, if
    /// any). Returns the whole answer.
    #[track_caller]
    pub fn expect_err(&mut self, cmd: &str, code: &str) -> String {
        let got = self.ask(cmd);
        let body = match Thread::of(cmd) {
            Thread::Named(p) => got.strip_prefix(p).map(str::trim_start).unwrap_or(&got),
            _ => &got,
        };
        let want = format!("err {code}");
        if !(body == want || body.starts_with(&format!("{want} "))) {
            self.fail(&format!("`{cmd}`: expected `{want} …`, got `{got}`"));
        }
        got
    }

    /// Sends a command whose answer must be `ok` followed by a number, and returns that number
    /// (semaphore `release`, `pid`, `handle`).
    #[track_caller]
    pub fn expect_ok_number(&mut self, cmd: &str) -> u64 {
        let got = self.ask(cmd);
        match got.strip_prefix("ok ").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => self.fail(&format!("`{cmd}`: expected `ok <number>`, got `{got}`")),
        }
    }

    /// The next answer of thread `main` (unprefixed), within [`ANSWER_DEADLINE`].
    pub fn answer(&mut self) -> String {
        self.answer_by(Thread::Main, ANSWER_DEADLINE, "(earlier command)")
    }

    /// The next answer of thread `main` within `within`; fails the test if there is none.
    pub fn answer_within(&mut self, within: Duration) -> String {
        self.answer_by(Thread::Main, within, "(earlier command)")
    }

    /// The next answer carrying `prefix` (`"@t2"`), within [`ANSWER_DEADLINE`]; answers of
    /// other threads that arrive meanwhile are kept for later.
    pub fn answer_for(&mut self, prefix: &str) -> String {
        assert!(prefix.starts_with('@'), "thread prefixes look like `@T`");
        self.answer_by(Thread::Named(prefix), ANSWER_DEADLINE, "(earlier command)")
    }

    /// Reads the next `n` answers of thread `main` (the answers of a [`Repl::send_batch`]).
    pub fn answers(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.answer()).collect()
    }

    /// Asserts that nothing at all is answered for `d` (a blocked wait stays blocked). A
    /// negative check: it sleeps for `d`.
    pub fn no_answer_for(&mut self, d: Duration) {
        self.no_answer_by(Thread::Any, d);
    }

    /// Like [`Repl::no_answer_for`], for the answers of thread `prefix` (`"@t2"`) only.
    pub fn no_answer_from(&mut self, prefix: &str, d: Duration) {
        self.no_answer_by(Thread::Named(prefix), d);
    }

    /// Asserts that no answer of any thread has arrived by now, without waiting.
    pub fn no_answer_now(&mut self) {
        self.drain_ready();
        if let Some(line) = self.buffered.front() {
            let line = line.clone();
            self.fail(&format!(
                "expected no answer yet (a wait should still be blocked), got `{line}`"
            ));
        }
    }

    /// Sends `exit`, then checks that the process exits with status 0 (docs/REPL.md: on `exit` the
    /// REPL closes all its handles and exits 0).
    pub fn exit(&mut self) {
        self.send("exit");
        self.close_and_reap();
    }

    /// Closes standard input and checks that the process exits with status 0 (docs/REPL.md: at
    /// end of input the REPL closes all its handles and exits 0).
    pub fn close_and_reap(&mut self) {
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return;
        };
        match wait_with_deadline(&mut child, EXIT_DEADLINE) {
            Some(status) if status.success() => {
                self.root.log(format!("{}: exited, {status}", self.label));
            }
            Some(status) => {
                self.root.log(format!("{}: exited, {status}", self.label));
                self.fail(&format!("repl exited with {status}; expected status 0"));
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.root.log(format!(
                    "{}: killed, still running after {EXIT_DEADLINE:?}",
                    self.label
                ));
                self.fail(&format!(
                    "repl did not exit within {EXIT_DEADLINE:?} after end of input or `exit`"
                ));
            }
        }
    }

    /// Closes standard input and returns at once: the REPL must still answer every command it
    /// has read (docs/REPL.md, "Lines and answers"); [`Repl::close_and_reap`] later checks that
    /// it exits 0.
    pub fn close_input(&mut self) {
        drop(self.stdin.take());
        self.root.log(format!("{}: end of input", self.label));
    }

    /// Whether the process is still running (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends signal `sig` (`"STOP"`, `"CONT"`, …) to the process, whose id it asks with the
    /// `pid` command (docs/REPL.md), so that it is the REPL itself and not a wrapper. For tests
    /// that must freeze a waiter deterministically (SIGSTOP after [`wait_for_waiters`]) instead
    /// of hoping the scheduler does. A stopped REPL cannot answer `pid`: ask before stopping
    /// ([`Repl::repl_pid`]) and pass the number to [`signal_pid`].
    pub fn repl_pid(&mut self) -> u32 {
        let pid = self.expect_ok_number("pid");
        u32::try_from(pid).unwrap_or_else(|_| self.fail(&format!("`pid` answered {pid}")))
    }

    /// Kills the process with SIGKILL (no chance to close anything) and reaps it.
    pub fn kill(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let status = child.wait();
            self.root
                .log(format!("{}: killed ({status:?})", self.label));
        }
    }

    /// Fails the test with `msg`, this root's transcript and every REPL's stderr.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        panic!("repl {}: {msg}\n{}", self.label, self.root.transcript());
    }

    // ---- internals ----

    #[track_caller]
    fn answer_by(&mut self, thread: Thread<'_>, within: Duration, what: &str) -> String {
        match self.next_matching(thread, Instant::now() + within) {
            Ok(line) => line,
            Err(Missing::Deadline) => self.fail(&format!(
                "`{what}`: no answer from {} within {within:?}",
                thread.describe()
            )),
            Err(Missing::Exited) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                self.fail(&format!(
                    "`{what}`: the repl closed its standard output before answering on {} (exit status: {status:?})",
                    thread.describe()
                ))
            }
        }
    }

    #[track_caller]
    fn no_answer_by(&mut self, thread: Thread<'_>, d: Duration) {
        let deadline = Instant::now() + d;
        match self.next_matching(thread, deadline) {
            Err(Missing::Deadline) => {}
            Ok(line) => self.fail(&format!(
                "expected no answer on {} for {d:?} (a wait should still be blocked), got `{line}`",
                thread.describe()
            )),
            Err(Missing::Exited) => self.fail("the repl exited while a wait should be blocked"),
        }
    }

    /// The first buffered or incoming line that `thread` matches; others are buffered.
    fn next_matching(&mut self, thread: Thread<'_>, deadline: Instant) -> Result<String, Missing> {
        if let Some(i) = self.buffered.iter().position(|l| thread.matches(l)) {
            return Ok(self.buffered.remove(i).expect("index is in range"));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.root.log(format!("{}< {line}", self.label));
                    if thread.matches(&line) {
                        return Ok(line);
                    }
                    self.buffered.push_back(line);
                }
                Err(RecvTimeoutError::Timeout) => return Err(Missing::Deadline),
                Err(RecvTimeoutError::Disconnected) => return Err(Missing::Exited),
            }
        }
    }

    /// Moves every line that has already arrived into the buffer.
    fn drain_ready(&mut self) {
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    self.root.log(format!("{}< {line}", self.label));
                    self.buffered.push_back(line);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Takes the next already-arrived answer of thread `main`, if any, without waiting.
    fn try_answer(&mut self) -> Option<String> {
        self.drain_ready();
        let i = self.buffered.iter().position(|l| Thread::Main.matches(l))?;
        self.buffered.remove(i)
    }
}

impl Drop for Repl<'_> {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if thread::panicking() {
            // The test already failed: don't wait for anything, just leave no orphan behind.
            self.kill();
        } else {
            // Normal end of a test: end of input must make the repl close its handles and exit 0.
            self.close_and_reap();
        }
    }
}

/// Waits for the first thread-`main` answer from any of `repls`, within [`ANSWER_DEADLINE`], and
/// returns the index of the REPL that answered and the answer. For "exactly one of these
/// blocked waiters is released" checks, where the test cannot know which one in advance
/// (EV-11). Polls every few milliseconds; the positive outcome is still an answer, not a sleep.
pub fn first_answer(repls: &mut [&mut Repl<'_>]) -> (usize, String) {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        for (i, r) in repls.iter_mut().enumerate() {
            if let Some(line) = r.try_answer() {
                return (i, line);
            }
        }
        if Instant::now() >= deadline {
            let labels: Vec<_> = repls.iter().map(|r| r.label.clone()).collect();
            repls[0].fail(&format!(
                "none of {labels:?} answered within {ANSWER_DEADLINE:?}"
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The handshake that replaces "sleep until the waiter is queued": asks `repl` (on its thread
/// `main`, which must not be blocked) `waiters <alias>` until it answers exactly `ok <n>`,
/// within [`ANSWER_DEADLINE`]; fails the test with the last answer otherwise. The count is that
/// of the object, across every process (docs/REPL.md, `waiters`), so `repl` may be any process
/// that holds a handle to it. Exact, not "at least": a waiter that left early (or one too many)
/// fails.
#[track_caller]
pub fn wait_for_waiters(repl: &mut Repl<'_>, alias: &str, n: usize) {
    let cmd = format!("waiters {alias}");
    let want = format!("ok {n}");
    let deadline = Instant::now() + ANSWER_DEADLINE;
    let mut pause = Duration::from_millis(1);
    loop {
        let got = repl.ask(&cmd);
        if got == want {
            return;
        }
        if !got.starts_with("ok ") {
            repl.fail(&format!("`{cmd}`: expected `ok <count>`, got `{got}`"));
        }
        if Instant::now() >= deadline {
            repl.fail(&format!(
                "`{cmd}`: expected `{want}` (that many queued waiters) within {ANSWER_DEADLINE:?}, \
                 last answer `{got}`"
            ));
        }
        // Polling between answers, not a guess at how long queueing takes.
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Asserts that none of `repls` has answered anything yet, without waiting: after
/// [`wait_for_waiters`] has seen their waits queued, this is the "still blocked" check.
#[track_caller]
pub fn assert_none_answered(repls: &mut [&mut Repl<'_>]) {
    for r in repls.iter_mut() {
        r.no_answer_now();
    }
}

/// `true` when the environment says this is a CI run (`CI=true` or `CI=1`): a test that must
/// skip for lack of something on the machine fails there instead.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the rest of a test for `reason`, loudly: prints `SKIPPED <test>: <reason>` on stderr,
/// and panics instead when [`on_ci`] (a skip on CI is a failure: the machine lacks something
/// the suite needs). Use as `return skip("…");`.
#[track_caller]
pub fn skip(test: &str, reason: &str) {
    if on_ci() {
        panic!("{test}: cannot run here and CI=true: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason} (this would fail under CI=true)");
}

/// Sends signal `sig` (`"STOP"`, `"CONT"`) to process `pid` with `kill(1)`; panics if that
/// fails. A test that stops a REPL must continue it on every path that does not fail the test
/// (a failing test's [`Repl`] drop sends SIGKILL, which ends a stopped process too).
pub fn signal_pid(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("cannot run `kill -{sig} {pid}`: {e}"));
    assert!(status.success(), "`kill -{sig} {pid}` failed: {status}");
}

/// Runs `cmd` to completion with its standard output and error collected, killing it if it
/// takes longer than `within`. Returns the exit status (`None` if it had to be killed), stdout
/// and stderr.
pub fn run_with_deadline(
    cmd: &mut Command,
    within: Duration,
) -> (Option<ExitStatus>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("stdout is piped")));
    let err = collect(Box::new(child.stderr.take().expect("stderr is piped")));
    let status = wait_with_deadline(&mut child, within);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// `A`, `B`, … `Z`, `AA`, `AB`, …
fn label_for(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
        n -= 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

fn shorten(line: &str) -> String {
    if line.len() <= LOG_LINE_MAX {
        return line.to_string();
    }
    let mut cut = LOG_LINE_MAX;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &line[..cut], line.len())
}

fn wait_with_deadline(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Calls `f` for every entry below `dir` (not `dir` itself), depth first, never following links.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        f(&path, &meta);
        if meta.is_dir() {
            walk(&path, f);
        }
    }
}
