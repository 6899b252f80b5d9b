//! Chaos and kill storms (docs/ARCHITECTURE.md, "Testing crash safety"): real `procsync repl`
//! processes hammer a shared set of named objects while the test SIGKILLs them at random
//! moments, and the test checks, live and at the end, the promises a crash must not break.
//!
//! - [`chaos_short`] (default suite, a few seconds) and [`chaos_long`] (`#[ignore]`; its
//!   duration comes from `PROCSYNC_CHAOS_SECS`, default 60) run [`run_chaos`]: N workers
//!   (`PROCSYNC_CHAOS_WORKERS`, default 6) do random operations with finite timeouts —
//!   single waits, `waitany`, `waitall`, event set/reset/pulse, semaphore releases, mutex
//!   critical sections, queries, timer set/cancel when the build has timers — while the
//!   supervisor (this test) SIGKILLs a random worker every few dozen milliseconds and
//!   starts a new one. The seed is fixed by default and printed; `PROCSYNC_CHAOS_SEED`
//!   chooses another one (or replays a printed one).
//! - [`kill_storm_inside_internal_locks`] starts many short-lived REPLs running tight
//!   loops of `waitall`/`waitany`/`release`/`set`/`pulse` on a few shared objects and
//!   kills each one 0–5 ms after it started working, so that kills land inside the
//!   objects' internal locks; then a fresh process must be able to use every object,
//!   within a generous bound (recovering a lock from a dead holder takes 20 ms slices).
//!
//! The supervisor drives each worker asynchronously (one command in flight per worker,
//! answers from every worker through one channel), and models what each worker holds,
//! from the answers it has read, so that it can tell certain from uncertain facts when a
//! worker dies with a command in flight:
//!
//! - **Mutual exclusion.** Each mutex `m<i>` has an "inside marker", a semaphore `i<i>`
//!   with max 1 and count 0. A worker that acquires `m<i>` releases `i<i>` at once (the
//!   answer must be `ok 0`: `too-many-posts` means someone else is inside), and takes it
//!   back (`wait i<i> timeout=0` must be `signaled`) right before its last release of
//!   `m<i>`. When a holder is killed with the marker possibly up, the next owner (who
//!   learns of it by `abandoned`) lowers it first. The supervisor also checks that no
//!   worker acquires a mutex that another live worker certainly holds.
//! - **Abandonment.** A mutex whose certain holder was killed must be reported
//!   `abandoned` by its next acquisition (wait, waitany, waitall, or the final check);
//!   `abandoned` may never be reported for a mutex no dead worker could have held.
//! - **Semaphore units conserved.** Units certainly held (acquired, answer read, release
//!   not yet sent) by live or killed workers, plus the count, never exceed the initial
//!   count: checked at each `release` answer (`ok P`), each worker `query`, and by a
//!   monitor querying every 100 ms. At the end, with every worker gone, the count equals
//!   the initial count minus the units of killed holders, up to the units that were in
//!   flight (being taken or given back) at a kill.
//! - **No wait answered long after its timeout**, and no command left unanswered.
//! - **Every object usable afterwards**, by a fresh REPL: each mutex is acquired (and
//!   reports `abandoned` exactly once when its last holder was killed), the semaphores
//!   have the expected count and can be taken and given back, events and the timer work,
//!   and a `waitall` over all of them succeeds.
//! - **No file left** under the root once every process is gone: the harness checks this
//!   when the [`Root`] is dropped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Repl, Root, unique};

// ---------------------------------------------------------------------------------------------
// Parameters

/// How late a wait may answer after its timeout, and how long any other command may take,
/// before it counts as a violation. Generous: a 2-core machine running ~10 processes, and a
/// lock held by a killed process costs its next user at least one 20 ms recovery slice per
/// object.
const LATE_LIMIT: Duration = Duration::from_millis(2_000);
/// A command still unanswered this long after its timeout is a stuck worker (a violation):
/// it is killed so that the run goes on.
const STUCK_LIMIT: Duration = Duration::from_millis(6_000);
/// How often the monitor queries the semaphores.
const MONITOR_EVERY: Duration = Duration::from_millis(100);

const EVENTS: usize = 3; // e0 manual, e1 auto, e2 auto (initially set)
const MUTEXES: usize = 3; // m0..m2, each with its inside marker i0..i2
const SEMS: usize = 2; // s0, s1
/// Initial count = maximum of each semaphore.
const SEM_MAX: [u32; SEMS] = [3, 2];

// ---------------------------------------------------------------------------------------------
// A small deterministic RNG (xorshift64*), so that a failing run can be replayed by its seed.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// The seed of a chaos run or kill storm: `PROCSYNC_CHAOS_SEED` (decimal) when set, else the
/// fixed `default`, so that the default suite makes the same random choices every run (the
/// timing of kills still varies; the seed is printed either way). A value that does not parse
/// is an error, not a silent fallback.
fn seed_from_env(default: u64) -> u64 {
    match std::env::var("PROCSYNC_CHAOS_SEED") {
        Ok(v) => v.trim().parse().unwrap_or_else(|e| {
            panic!("PROCSYNC_CHAOS_SEED={v:?} is not a decimal u64 ({e}); unset it for the default")
        }),
        Err(_) => default,
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Asynchronously driven REPL processes

/// What a reader thread reports: a line of standard output, or its end.
type Report = (usize, Option<String>);

/// A `procsync repl` driven without blocking: lines are written to its standard input, and
/// its answers arrive, tagged with its id, on a channel shared with other processes.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Proc {
    /// Starts `procsync repl` on `root`; standard output lines go to `tx` as `(id, line)`.
    fn spawn(root: &Root, id: usize, tx: &Sender<Report>) -> Proc {
        let mut child = root
            .command()
            .arg("repl")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn procsync repl: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((id, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((id, None));
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes lines; `false` if the process no longer reads.
    fn send(&mut self, text: &str) -> bool {
        match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.flush())
                .is_ok(),
            None => false,
        }
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes standard input and waits (up to `within`) for the exit status.
    fn finish(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => {
                    self.kill();
                    return None;
                }
            }
        }
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Every stderr of every process started, to look for panics at the end.
#[derive(Default)]
struct Stderrs(Vec<(String, Arc<Mutex<Vec<u8>>>)>);

impl Stderrs {
    fn add(&mut self, label: String, p: &Proc) {
        self.0.push((label, Arc::clone(&p.stderr)));
    }
    /// Labels and stderr text of the processes that reported a panic.
    fn panics(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|(label, bytes)| {
                let text =
                    String::from_utf8_lossy(&bytes.lock().unwrap_or_else(|p| p.into_inner()))
                        .into_owned();
                text.contains("panicked")
                    .then(|| format!("{label}: {text}"))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The chaos model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    Event(usize),
    Mutex(usize),
    Sem(usize),
    Timer,
}

impl Obj {
    fn alias(self) -> String {
        match self {
            Obj::Event(i) => format!("e{i}"),
            Obj::Mutex(i) => format!("m{i}"),
            Obj::Sem(i) => format!("s{i}"),
            Obj::Timer => "t".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitMode {
    One,
    Any,
    All,
}

#[derive(Clone, Debug)]
enum Cmd {
    /// `open …` line `i` of the object list.
    Open(usize),
    Wait {
        objs: Vec<Obj>,
        mode: WaitMode,
        timeout: u64,
    },
    /// `release m<i>`; `last`: the final recursion level (the mutex is given up).
    ReleaseMutex {
        m: usize,
        last: bool,
    },
    ReleaseSem(usize),
    /// `release i<m>`: raise the inside marker; must answer `ok 0`.
    Raise(usize),
    /// `wait i<m> timeout=0` before the last release: must answer `signaled`.
    Lower(usize),
    /// `wait i<m> timeout=0` by a new owner whose predecessor died inside: either answer.
    ResetMarker(usize),
    EventOp(usize, &'static str),
    Query(Obj),
    TimerSet {
        due: u64,
        period: u64,
    },
    TimerCancel,
}

impl Cmd {
    fn text(&self, opens: &[String]) -> String {
        match self {
            Cmd::Open(i) => opens[*i].clone(),
            Cmd::Wait {
                objs,
                mode,
                timeout,
            } => {
                let verb = match mode {
                    WaitMode::One => "wait",
                    WaitMode::Any => "waitany",
                    WaitMode::All => "waitall",
                };
                let list: Vec<String> = objs.iter().map(|o| o.alias()).collect();
                format!("{verb} {} timeout={timeout}", list.join(" "))
            }
            Cmd::ReleaseMutex { m, .. } => format!("release m{m}"),
            Cmd::ReleaseSem(s) => format!("release s{s}"),
            Cmd::Raise(m) => format!("release i{m}"),
            Cmd::Lower(m) | Cmd::ResetMarker(m) => format!("wait i{m} timeout=0"),
            Cmd::EventOp(e, op) => format!("{op} e{e}"),
            Cmd::Query(o) => format!("query {}", o.alias()),
            Cmd::TimerSet { due, period } => format!("settimer t due={due} period={period}"),
            Cmd::TimerCancel => "cancel t".to_string(),
        }
    }

    /// Objects this command may acquire.
    fn acquires(&self) -> &[Obj] {
        match self {
            Cmd::Wait { objs, .. } => objs,
            _ => &[],
        }
    }
}

/// What the supervisor knows about a mutex's abandonment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    /// No dead worker can have held it since its last acquisition.
    None,
    /// A worker died with an acquisition or its last release in flight: either answer.
    Maybe,
    /// A worker died certainly holding it: the next acquisition must say `abandoned`.
    Certain,
}

/// A semaphore unit certainly taken (its acquisition was answered) and not given back
/// (no release sent): by a live worker, or lost with a killed one.
struct Unit {
    sem: usize,
    owner: usize,
    acquired_seq: u64,
}

struct InFlight {
    cmd: Cmd,
    text: String,
    sent: Instant,
    seq: u64,
}

struct Worker {
    proc: Proc,
    label: String,
    out: Option<InFlight>,
    plan: VecDeque<Cmd>,
    /// Recursion count per mutex, as far as answers tell (0 = not held).
    rec: [u32; MUTEXES],
    /// The inside marker of each held mutex is up.
    marker_up: [bool; MUTEXES],
    /// Units held per semaphore.
    units: [u32; SEMS],
    /// Finishing: only give back what it holds, then exit.
    draining: bool,
}

impl Worker {
    fn holds_anything(&self) -> bool {
        self.rec.iter().any(|&r| r > 0) || self.units.iter().any(|&u| u > 0)
    }
}

#[derive(Default)]
struct Figures {
    operations: u64,
    kills: u64,
    spawned: u64,
    recoveries: u64,
    verifier_recoveries: u64,
    waits: u64,
    timeouts: u64,
    max_late_ms: u64,
    monitor_checks: u64,
    violations: Vec<String>,
}

struct Chaos<'r> {
    root: &'r Root,
    rng: Rng,
    tx: Sender<Report>,
    opens: Vec<String>,
    workers: BTreeMap<usize, Worker>,
    next_id: usize,
    seq: u64,
    holder: [Option<usize>; MUTEXES],
    pending: [Pending; MUTEXES],
    marker_dirty: [bool; MUTEXES],
    /// Workers killed with an acquisition of the mutex in flight (diagnostics only).
    dead_waiters: [u32; MUTEXES],
    units: Vec<Unit>,
    lost_sure: [u32; SEMS],
    lost_maybe: [u32; SEMS],
    figures: Figures,
    log: VecDeque<String>,
    stderrs: Stderrs,
    started: Instant,
}

impl<'r> Chaos<'r> {
    fn note(&mut self, line: String) {
        if self.log.len() == 600 {
            self.log.pop_front();
        }
        let t = self.started.elapsed().as_millis();
        self.log.push_back(format!("{t:>6} ms {line}"));
    }

    fn violation(&mut self, who: &str, what: String) {
        let mut v = format!("{who}: {what}");
        self.note(format!("VIOLATION {v}"));
        if self.figures.violations.len() < 5 {
            // The log is a ring: keep the context of the first violations with them.
            v.push_str("\n      context (most recent last):");
            for l in self.log.iter().skip(self.log.len().saturating_sub(30)) {
                v.push_str("\n        ");
                v.push_str(l);
            }
        }
        self.figures.violations.push(v);
    }

    fn spawn_worker(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let proc = Proc::spawn(self.root, id, &self.tx);
        let label = format!("W{id}");
        self.stderrs.add(label.clone(), &proc);
        self.note(format!("{label}: started, pid {}", proc.pid()));
        self.figures.spawned += 1;
        let plan = (0..self.opens.len()).map(Cmd::Open).collect();
        let w = Worker {
            proc,
            label,
            out: None,
            plan,
            rec: [0; MUTEXES],
            marker_up: [false; MUTEXES],
            units: [0; SEMS],
            draining: false,
        };
        self.workers.insert(id, w);
        self.advance(id);
    }

    /// Units certainly taken before `seq` and not given back (live or dead holders).
    fn definitely_out(&self, sem: usize, seq: u64) -> u32 {
        self.units
            .iter()
            .filter(|u| u.sem == sem && u.acquired_seq < seq)
            .count() as u32
    }

    /// Sends the worker's next command, if it has one; a drained worker is told to exit.
    fn advance(&mut self, id: usize) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.out.is_some() {
            return;
        }
        let cmd = match w.plan.pop_front() {
            Some(c) => c,
            None => {
                let drain = w.draining;
                match self.choose(id, drain) {
                    Some(c) => c,
                    None => return, // drained: nothing held, nothing to do
                }
            }
        };
        self.seq += 1;
        let seq = self.seq;
        // Bookkeeping at send time: what is given back stops being "certainly held".
        match cmd {
            Cmd::ReleaseMutex { m, last } => {
                let w = self.workers.get_mut(&id).expect("live");
                w.rec[m] = w.rec[m].saturating_sub(1);
                if last {
                    self.holder[m] = None;
                }
            }
            Cmd::ReleaseSem(s) => {
                let w = self.workers.get_mut(&id).expect("live");
                w.units[s] = w.units[s].saturating_sub(1);
                if let Some(k) = self.units.iter().position(|u| u.owner == id && u.sem == s) {
                    self.units.remove(k);
                }
            }
            _ => {}
        }
        let text = cmd.text(&self.opens);
        let w = self.workers.get_mut(&id).expect("live");
        let label = w.label.clone();
        let ok = w.proc.send(&format!("{text}\n"));
        w.out = Some(InFlight {
            cmd,
            text: text.clone(),
            sent: Instant::now(),
            seq,
        });
        self.note(format!("{label}> {text}"));
        if !ok {
            // Its answer (or its end) will tell; a write error alone means it exited.
            self.note(format!("{label}: write failed"));
        }
    }

    /// A random next operation, or when `drain`, the next give-back (None: nothing held).
    fn choose(&mut self, id: usize, drain: bool) -> Option<Cmd> {
        let w = self.workers.get(&id).expect("live");
        let held_m: Vec<usize> = (0..MUTEXES).filter(|&m| w.rec[m] > 0).collect();
        let held_s: Vec<usize> = (0..SEMS).filter(|&s| w.units[s] > 0).collect();
        let n_units: u32 = w.units.iter().sum();
        let holding = !held_m.is_empty() || !held_s.is_empty();
        let rng = &mut self.rng;
        let must_release = drain || held_m.len() >= 2 || n_units >= 3;
        if holding && (must_release || rng.chance(40)) {
            let k = rng.below((held_m.len() + held_s.len()) as u64) as usize;
            if k < held_m.len() {
                let m = held_m[k];
                if w.rec[m] > 1 {
                    return Some(Cmd::ReleaseMutex { m, last: false });
                }
                let w = self.workers.get_mut(&id).expect("live");
                w.plan.push_back(Cmd::ReleaseMutex { m, last: true });
                return Some(Cmd::Lower(m));
            }
            return Some(Cmd::ReleaseSem(held_s[k - held_m.len()]));
        }
        if drain {
            return None;
        }
        let mut pool: Vec<Obj> = (0..EVENTS).map(Obj::Event).collect();
        pool.extend((0..MUTEXES).map(Obj::Mutex));
        pool.extend((0..SEMS).map(Obj::Sem));
        pool.push(Obj::Timer);
        let timeout = if rng.chance(20) { 0 } else { rng.range(1, 80) };
        let r = rng.below(100);
        Some(match r {
            0..=19 => Cmd::Wait {
                objs: vec![Obj::Mutex(rng.below(MUTEXES as u64) as usize)],
                mode: WaitMode::One,
                timeout,
            },
            20..=31 => Cmd::Wait {
                objs: vec![Obj::Sem(rng.below(SEMS as u64) as usize)],
                mode: WaitMode::One,
                timeout,
            },
            32..=39 => Cmd::Wait {
                objs: vec![Obj::Event(rng.below(EVENTS as u64) as usize)],
                mode: WaitMode::One,
                timeout,
            },
            40..=54 => {
                // Duplicates are allowed in a waitany (reported at the lowest index).
                let n = rng.range(2, 5) as usize;
                let objs = (0..n)
                    .map(|_| pool[rng.below(pool.len() as u64) as usize])
                    .collect();
                Cmd::Wait {
                    objs,
                    mode: WaitMode::Any,
                    timeout,
                }
            }
            55..=69 => {
                let n = rng.range(2, 4) as usize;
                let mut objs = Vec::new();
                while objs.len() < n {
                    let o = pool[rng.below(pool.len() as u64) as usize];
                    if !objs.contains(&o) {
                        objs.push(o);
                    }
                }
                Cmd::Wait {
                    objs,
                    mode: WaitMode::All,
                    timeout,
                }
            }
            70..=84 => {
                let op = ["set", "set", "reset", "pulse"][rng.below(4) as usize];
                Cmd::EventOp(rng.below(EVENTS as u64) as usize, op)
            }
            85..=93 => Cmd::Query(pool[rng.below(pool.len() as u64) as usize]),
            _ if rng.chance(70) => Cmd::TimerSet {
                due: rng.range(0, 30),
                period: rng.range(0, 40),
            },
            _ => Cmd::TimerCancel,
        })
    }

    /// Handles one answer of worker `id`.
    fn answer(&mut self, id: usize, line: String) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        }; // a killed worker's last words
        let label = w.label.clone();
        let Some(out) = w.out.take() else {
            self.violation(
                &label,
                format!("an answer with no command in flight: `{line}`"),
            );
            return;
        };
        self.seq += 1;
        let now_seq = self.seq;
        self.figures.operations += 1;
        let elapsed = out.sent.elapsed();
        self.note(format!("{label}< {line}   ({} ms)", elapsed.as_millis()));
        if line.contains("panicked") {
            self.violation(&label, format!("`{}` answered `{line}`", out.text));
        }
        // Lateness: a wait may take its timeout, plus LATE_LIMIT; anything else LATE_LIMIT.
        let allowed = match &out.cmd {
            Cmd::Wait { timeout, .. } => Duration::from_millis(*timeout),
            _ => Duration::ZERO,
        };
        let late = elapsed.saturating_sub(allowed);
        self.figures.max_late_ms = self.figures.max_late_ms.max(late.as_millis() as u64);
        if late > LATE_LIMIT {
            self.violation(
                &label,
                format!(
                    "`{}` answered {} ms after its timeout",
                    out.text,
                    late.as_millis()
                ),
            );
        }
        let bad = |this: &mut Self, want: &str| {
            this.violation(
                &label,
                format!("`{}`: expected {want}, got `{line}`", out.text),
            );
        };
        match out.cmd.clone() {
            Cmd::Open(_) | Cmd::EventOp(..) | Cmd::TimerSet { .. } | Cmd::TimerCancel => {
                if line != "ok" {
                    bad(self, "`ok`");
                }
            }
            Cmd::Wait { objs, mode, .. } => {
                self.figures.waits += 1;
                self.wait_answer(id, &label, &out, &objs, mode, &line, now_seq);
            }
            Cmd::ReleaseMutex { .. } => {
                if line != "ok" {
                    bad(self, "`ok`");
                }
            }
            Cmd::ReleaseSem(s) => {
                match line.strip_prefix("ok ").and_then(|p| p.parse::<u32>().ok()) {
                    Some(p) => {
                        let out_units = self.definitely_out(s, out.seq);
                        if p + 1 + out_units > SEM_MAX[s] {
                            self.violation(
                            &label,
                            format!(
                                "`{}` answered `{line}` while {out_units} other units of s{s} were certainly held: \
                                 count + held would pass the initial {}",
                                out.text, SEM_MAX[s]
                            ),
                        );
                        }
                    }
                    None => bad(self, "`ok P`"),
                }
            }
            Cmd::Raise(m) => {
                if line == "ok 0" {
                    self.workers.get_mut(&id).expect("live").marker_up[m] = true;
                } else {
                    bad(self, "`ok 0` (mutual exclusion: nobody else may be inside)");
                }
            }
            Cmd::Lower(m) => {
                self.workers.get_mut(&id).expect("live").marker_up[m] = false;
                if line != "signaled" {
                    bad(self, "`signaled` (our own inside marker must still be up)");
                }
            }
            Cmd::ResetMarker(m) => {
                if line == "signaled" || line == "timeout" {
                    self.marker_dirty[m] = false;
                } else {
                    bad(self, "`signaled` or `timeout`");
                }
            }
            Cmd::Query(o) => self.query_answer(id, &label, &out, o, &line),
        }
        self.advance(id);
    }

    #[allow(clippy::too_many_arguments)]
    fn wait_answer(
        &mut self,
        id: usize,
        label: &str,
        out: &InFlight,
        objs: &[Obj],
        mode: WaitMode,
        line: &str,
        now_seq: u64,
    ) {
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or("");
        let index: Option<usize> = words.next().and_then(|k| k.parse().ok());
        let rest = words.next();
        let malformed = |this: &mut Self| {
            this.violation(
                label,
                format!("`{}`: malformed or unexpected answer `{line}`", out.text),
            )
        };
        if rest.is_some() {
            return malformed(self);
        }
        // (acquired objects, index reported abandoned)
        let (acquired, abandoned): (Vec<usize>, Option<usize>) = match (mode, verb, index) {
            (_, "timeout", None) => {
                self.figures.timeouts += 1;
                return;
            }
            (WaitMode::One, "signaled", None) => (vec![0], None),
            (WaitMode::One, "abandoned", None) => (vec![0], Some(0)),
            (WaitMode::Any, "signaled", Some(k)) if k < objs.len() => (vec![k], None),
            (WaitMode::Any, "abandoned", Some(k)) if k < objs.len() => (vec![k], Some(k)),
            (WaitMode::All, "signaled", None) => ((0..objs.len()).collect(), None),
            (WaitMode::All, "abandoned", Some(k)) if k < objs.len() => {
                ((0..objs.len()).collect(), Some(k))
            }
            _ => return malformed(self),
        };
        if mode == WaitMode::Any
            && let Some(&k) = acquired.first()
            && objs[..k].contains(&objs[k])
        {
            self.violation(
                label,
                format!(
                    "`{}` answered `{line}`: a duplicate is reported at its lowest index",
                    out.text
                ),
            );
        }
        if let Some(k) = abandoned {
            let Obj::Mutex(m) = objs[k] else {
                return self.violation(
                    label,
                    format!(
                        "`{}` answered `{line}`: only a mutex can be abandoned",
                        out.text
                    ),
                );
            };
            if self.workers[&id].rec[m] > 0 {
                self.violation(
                    label,
                    format!(
                        "`{}` answered `{line}`, but this worker already owned m{m}",
                        out.text
                    ),
                );
            } else if self.pending[m] == Pending::None {
                let hint = if self.dead_waiters[m] > 0 {
                    format!(
                        " ({} workers were killed while waiting on m{m}: a dead waiter's queue entry handed the mutex \
                         and turned it abandoned?)",
                        self.dead_waiters[m]
                    )
                } else {
                    String::new()
                };
                self.violation(
                    label,
                    format!(
                        "`{}` answered `{line}`: m{m} reported abandoned, but no worker that could have held it died{hint}",
                        out.text
                    ),
                );
            }
            if mode == WaitMode::All {
                for (j, o) in objs.iter().enumerate() {
                    if let Obj::Mutex(mm) = *o
                        && j < k
                        && self.pending[mm] == Pending::Certain
                        && self.workers[&id].rec[mm] == 0
                    {
                        self.violation(
                            label,
                            format!("`{}` answered `{line}`, but m{mm} at the lower index {j} was certainly abandoned", out.text),
                        );
                    }
                }
            }
        } else {
            for &k in &acquired {
                if let Obj::Mutex(m) = objs[k]
                    && self.pending[m] == Pending::Certain
                    && self.workers[&id].rec[m] == 0
                {
                    self.violation(
                        label,
                        format!(
                            "`{}` answered `{line}`: m{m} was held by a killed worker and must be reported abandoned",
                            out.text
                        ),
                    );
                }
            }
        }
        if abandoned.is_some() {
            self.figures.recoveries += 1;
        }
        let mut seen: Vec<Obj> = Vec::new();
        for &k in &acquired {
            let o = objs[k];
            if seen.contains(&o) {
                continue;
            }
            seen.push(o);
            match o {
                Obj::Mutex(m) => {
                    let w = self.workers.get_mut(&id).expect("live");
                    if w.rec[m] > 0 {
                        w.rec[m] += 1; // recursive acquisition by the owner
                        continue;
                    }
                    if let Some(other) = self.holder[m]
                        && other != id
                    {
                        let other_label = self
                            .workers
                            .get(&other)
                            .map_or(format!("W{other}"), |w| w.label.clone());
                        self.violation(
                            label,
                            format!("`{}` answered `{line}`: acquired m{m} while {other_label} certainly holds it", out.text),
                        );
                    }
                    self.holder[m] = Some(id);
                    self.pending[m] = Pending::None;
                    let w = self.workers.get_mut(&id).expect("live");
                    w.rec[m] = 1;
                    // The critical-section protocol comes before anything else.
                    w.plan.push_front(Cmd::Raise(m));
                    if self.marker_dirty[m] {
                        w.plan.push_front(Cmd::ResetMarker(m));
                    }
                }
                Obj::Sem(s) => {
                    self.workers.get_mut(&id).expect("live").units[s] += 1;
                    self.units.push(Unit {
                        sem: s,
                        owner: id,
                        acquired_seq: now_seq,
                    });
                }
                Obj::Event(_) | Obj::Timer => {}
            }
        }
    }

    fn query_answer(&mut self, id: usize, label: &str, out: &InFlight, o: Obj, line: &str) {
        let ok = match o {
            Obj::Event(e) => {
                let kind = if e == 0 { "manual" } else { "auto" };
                line == format!("ok event {kind} set") || line == format!("ok event {kind} unset")
            }
            Obj::Timer => line.starts_with("ok timer sync "),
            Obj::Mutex(m) => {
                let rec = self.workers[&id].rec[m];
                if rec > 0 {
                    line == format!("ok mutex owner=self recursion={rec} abandoned=0")
                } else {
                    line.starts_with("ok mutex owner=") && !line.starts_with("ok mutex owner=self")
                }
            }
            Obj::Sem(s) => {
                let count = line
                    .strip_prefix("ok semaphore count=")
                    .and_then(|r| r.strip_suffix(&format!(" max={}", SEM_MAX[s])))
                    .and_then(|c| c.parse::<u32>().ok());
                match count {
                    Some(c) => {
                        let held = self.definitely_out(s, out.seq);
                        if c + held > SEM_MAX[s] {
                            self.violation(label, format!("`{}` = `{line}` with {held} units certainly held: units created", out.text));
                        }
                        true
                    }
                    None => false,
                }
            }
        };
        if !ok {
            self.violation(label, format!("`{}`: unexpected answer `{line}`", out.text));
        }
    }

    /// SIGKILLs worker `id` and records what may have died with it.
    fn kill(&mut self, id: usize, why: &str) {
        let Some(mut w) = self.workers.remove(&id) else {
            return;
        };
        w.proc.kill();
        self.figures.kills += 1;
        let in_flight = w.out.as_ref().map(|o| o.text.clone()).unwrap_or_default();
        self.note(format!(
            "{}: KILLED ({why}); in flight: `{in_flight}`; rec {:?} units {:?}",
            w.label, w.rec, w.units
        ));
        for m in 0..MUTEXES {
            if w.rec[m] > 0 {
                // Certainly held (including a non-final release in flight).
                self.pending[m] = Pending::Certain;
                if self.holder[m] == Some(id) {
                    self.holder[m] = None;
                }
            }
            if w.marker_up[m] {
                self.marker_dirty[m] = true;
            }
        }
        if let Some(out) = &w.out {
            match &out.cmd {
                Cmd::Wait { .. } => {
                    for o in out.cmd.acquires() {
                        match *o {
                            Obj::Mutex(m) if w.rec[m] == 0 => {
                                self.pending[m] = self.pending[m].max(Pending::Maybe);
                                self.dead_waiters[m] += 1;
                            }
                            Obj::Sem(s) => self.lost_maybe[s] += 1,
                            _ => {}
                        }
                    }
                }
                Cmd::ReleaseMutex { m, last: true } => {
                    self.pending[*m] = self.pending[*m].max(Pending::Maybe)
                }
                Cmd::ReleaseSem(s) => self.lost_maybe[*s] += 1,
                Cmd::Raise(m) | Cmd::Lower(m) => self.marker_dirty[*m] = true,
                _ => {}
            }
        }
        for s in 0..SEMS {
            self.lost_sure[s] += w.units[s];
        }
        // Its certainly-held units stay in `units` (lost), still counted as out.
    }

    fn transcript(&self) -> String {
        let mut s = String::from("\n---- chaos log (most recent last) ----\n");
        for l in &self.log {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// The whole chaos run; returns the figures (violations included, not asserted here).
#[allow(clippy::needless_range_loop)] // semaphores are numbered: s<i> has SEM_MAX[i]
fn run_chaos(duration: Duration, workers: usize, kill_every_ms: (u64, u64)) -> Figures {
    let seed = seed_from_env(0xC4A0_5000_0000_0001);
    println!(
        "chaos: seed {seed} (PROCSYNC_CHAOS_SEED replays it), {workers} workers, {duration:?}"
    );
    let root = Root::fresh();
    let (tx, rx): (Sender<Report>, Receiver<Report>) = mpsc::channel();

    // The keeper creates every object and holds it for the whole run (so that killing every
    // worker at once cannot end an object's life), and doubles as the semaphore monitor.
    let mut keeper = root.repl();
    let mut names: Vec<(String, String, String)> = Vec::new(); // (kind, alias, name)
    let mut create = |keeper: &mut Repl<'_>, kind: &str, alias: &str, extra: &str| {
        let name = unique(&format!("chaos-{alias}"));
        let answer = keeper.ask(format!("create {kind} {alias} name={name} {extra}").trim_end());
        if answer != "ok created" {
            keeper.fail(&format!("create {kind} {alias}: `{answer}`"))
        }
        names.push((kind.to_string(), alias.to_string(), name));
    };
    create(&mut keeper, "event", "e0", "manual");
    create(&mut keeper, "event", "e1", "");
    create(&mut keeper, "event", "e2", "initial");
    for m in 0..MUTEXES {
        create(&mut keeper, "mutex", &format!("m{m}"), "");
        create(
            &mut keeper,
            "semaphore",
            &format!("i{m}"),
            "initial=0 max=1",
        );
    }
    for (s, max) in SEM_MAX.iter().enumerate() {
        create(
            &mut keeper,
            "semaphore",
            &format!("s{s}"),
            &format!("initial={max} max={max}"),
        );
    }
    create(&mut keeper, "timer", "t", "");
    keeper.expect("settimer t due=5 period=7", "ok");
    let opens: Vec<String> = names
        .iter()
        .map(|(kind, alias, name)| format!("open {kind} {alias} name={name}"))
        .collect();

    let started = Instant::now();
    let mut chaos = Chaos {
        root: &root,
        rng: Rng::new(seed),
        tx,
        opens,
        workers: BTreeMap::new(),
        next_id: 0,
        seq: 0,
        holder: [None; MUTEXES],
        pending: [Pending::None; MUTEXES],
        marker_dirty: [false; MUTEXES],
        dead_waiters: [0; MUTEXES],
        units: Vec::new(),
        lost_sure: [0; SEMS],
        lost_maybe: [0; SEMS],
        figures: Figures::default(),
        log: VecDeque::new(),
        stderrs: Stderrs::default(),
        started,
    };
    for _ in 0..workers {
        chaos.spawn_worker();
    }

    let end = started + duration;
    let mut next_kill =
        started + Duration::from_millis(chaos.rng.range(kill_every_ms.0, kill_every_ms.1));
    let mut next_monitor = started + MONITOR_EVERY;
    let mut next_report = started + Duration::from_secs(10);
    let mut stopping = false;
    loop {
        let now = Instant::now();
        if !stopping && now >= end {
            stopping = true;
            chaos.note("---- stopping: workers give back what they hold and exit ----".into());
            let ids: Vec<usize> = chaos.workers.keys().copied().collect();
            for id in ids {
                chaos.workers.get_mut(&id).expect("live").draining = true;
                chaos.workers.get_mut(&id).expect("live").plan.retain(|c| {
                    matches!(
                        c,
                        Cmd::Open(_)
                            | Cmd::Raise(_)
                            | Cmd::ResetMarker(_)
                            | Cmd::Lower(_)
                            | Cmd::ReleaseMutex { .. }
                    )
                });
                chaos.advance(id);
            }
        }
        if stopping {
            // Workers with nothing in flight and nothing held are done: they must exit 0.
            let done: Vec<usize> = chaos
                .workers
                .iter()
                .filter(|(_, w)| w.out.is_none() && w.plan.is_empty() && !w.holds_anything())
                .map(|(id, _)| *id)
                .collect();
            for id in done {
                let mut w = chaos.workers.remove(&id).expect("live");
                match w.proc.finish(Duration::from_secs(15)) {
                    Some(status) if status.success() => {
                        chaos.note(format!("{}: exited, {status}", w.label))
                    }
                    other => {
                        let label = w.label.clone();
                        chaos.violation(
                            &label,
                            format!("did not exit cleanly at end of input: {other:?}"),
                        );
                    }
                }
            }
            if chaos.workers.is_empty() {
                break;
            }
        }
        if !stopping && now >= next_kill {
            let ids: Vec<usize> = chaos.workers.keys().copied().collect();
            let victim = ids[chaos.rng.below(ids.len() as u64) as usize];
            chaos.kill(victim, "chaos");
            chaos.spawn_worker();
            next_kill =
                now + Duration::from_millis(chaos.rng.range(kill_every_ms.0, kill_every_ms.1));
        }
        if now >= next_monitor {
            chaos.seq += 1;
            let q = chaos.seq;
            for s in 0..SEMS {
                let answer = keeper.ask(&format!("query s{s}"));
                let count = answer
                    .strip_prefix("ok semaphore count=")
                    .and_then(|r| r.strip_suffix(&format!(" max={}", SEM_MAX[s])))
                    .and_then(|c| c.parse::<u32>().ok());
                chaos.figures.monitor_checks += 1;
                match count {
                    Some(c) if c + chaos.definitely_out(s, q) <= SEM_MAX[s] => {}
                    _ => {
                        let held = chaos.definitely_out(s, q);
                        chaos.violation(
                            "monitor",
                            format!("`query s{s}` = `{answer}` with {held} units certainly held"),
                        );
                    }
                }
            }
            next_monitor = Instant::now() + MONITOR_EVERY;
        }
        if now >= next_report {
            println!(
                "chaos: {:>4} s: {} operations, {} kills, {} recoveries, {} violations",
                started.elapsed().as_secs(),
                chaos.figures.operations,
                chaos.figures.kills,
                chaos.figures.recoveries,
                chaos.figures.violations.len()
            );
            next_report += Duration::from_secs(10);
        }
        // Stuck workers: no answer long after the timeout of their command.
        let stuck: Vec<(usize, String)> = chaos
            .workers
            .iter()
            .filter_map(|(id, w)| {
                let out = w.out.as_ref()?;
                let allowed = match &out.cmd {
                    Cmd::Wait { timeout, .. } => Duration::from_millis(*timeout),
                    _ => Duration::ZERO,
                };
                (out.sent.elapsed() > allowed + STUCK_LIMIT).then(|| {
                    (
                        *id,
                        format!("`{}` unanswered after {:?}", out.text, out.sent.elapsed()),
                    )
                })
            })
            .collect();
        for (id, what) in stuck {
            let label = chaos.workers[&id].label.clone();
            chaos.violation(&label, format!("stuck: {what}"));
            chaos.kill(id, "stuck");
            if !stopping {
                chaos.spawn_worker();
            }
        }
        let wake = [next_kill, next_monitor, end]
            .into_iter()
            .filter(|t| *t > now)
            .min()
            .unwrap_or(now);
        let wait = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match rx.recv_timeout(wait) {
            Ok((id, Some(line))) => chaos.answer(id, line),
            Ok((id, None)) => {
                if let Some(w) = chaos.workers.get(&id) {
                    // The process ended without being killed or told to exit.
                    let label = w.label.clone();
                    let err = w.proc.stderr_text();
                    chaos.violation(&label, format!("the repl exited on its own; stderr: {err}"));
                    chaos.kill(id, "exited");
                    if !stopping {
                        chaos.spawn_worker();
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the supervisor holds a sender"),
        }
    }
    let run_time = started.elapsed();

    // ---- every worker is gone: a fresh process checks and uses every object ----
    let verify_started = Instant::now();
    let mut v = root.repl();
    for (kind, alias, name) in &names {
        v.expect(&format!("open {kind} {alias} name={name}"), "ok");
    }
    // Units: nothing live is held any more, so the count is the initial count minus the
    // units lost with killed holders (exactly, unless some were in flight at a kill).
    let mut left_before_all: Vec<u32> = Vec::new();
    for s in 0..SEMS {
        assert!(
            chaos
                .units
                .iter()
                .all(|u| u.sem != s || !chaos.workers.contains_key(&u.owner))
        );
        let answer = v.ask(&format!("query s{s}"));
        let count = answer
            .strip_prefix("ok semaphore count=")
            .and_then(|r| r.strip_suffix(&format!(" max={}", SEM_MAX[s])))
            .and_then(|c| c.parse::<u32>().ok());
        let high = SEM_MAX[s].saturating_sub(chaos.lost_sure[s]);
        let low = high.saturating_sub(chaos.lost_maybe[s]);
        match count {
            Some(c) if (low..=high).contains(&c) => {}
            _ => chaos.violation(
                "final",
                format!(
                    "`query s{s}` = `{answer}`; expected a count in {low}..={high} (initial {}, {} units lost with killed holders, {} in flight at a kill)",
                    SEM_MAX[s], chaos.lost_sure[s], chaos.lost_maybe[s]
                ),
            ),
        }
        // Usable: take one and give it back (or the reverse when it is empty).
        let c = count.unwrap_or(0);
        left_before_all.push(c.max(1));
        if c > 0 {
            v.expect(&format!("wait s{s} timeout=5000"), "signaled");
            v.expect(&format!("release s{s}"), &format!("ok {}", c - 1));
        } else {
            v.expect(&format!("release s{s}"), "ok 0");
            v.expect(&format!("wait s{s} timeout=5000"), "signaled");
            v.expect(&format!("release s{s}"), "ok 0"); // one unit left for the wait-all below
        }
    }
    for m in 0..MUTEXES {
        let answer = v.ask(&format!("wait m{m} timeout=5000"));
        let fine = match chaos.pending[m] {
            Pending::None => answer == "signaled",
            Pending::Maybe => answer == "signaled" || answer == "abandoned",
            Pending::Certain => answer == "abandoned",
        };
        if !fine {
            chaos.violation(
                "final",
                format!(
                    "`wait m{m}` = `{answer}`; its abandonment state was {:?}",
                    chaos.pending[m]
                ),
            );
        }
        if answer == "abandoned" {
            chaos.figures.verifier_recoveries += 1;
        }
        if chaos.marker_dirty[m] {
            let a = v.ask(&format!("wait i{m} timeout=0"));
            assert!(a == "signaled" || a == "timeout", "reset of i{m}: `{a}`");
        }
        v.expect(&format!("release i{m}"), "ok 0");
        v.expect(&format!("wait i{m} timeout=0"), "signaled");
        v.expect(&format!("release m{m}"), "ok");
        // Abandonment is reported once; then the mutex is normal again.
        v.expect(&format!("wait m{m} timeout=5000"), "signaled");
        v.expect(
            &format!("query m{m}"),
            "ok mutex owner=self recursion=1 abandoned=0",
        );
        v.expect(&format!("release m{m}"), "ok");
        v.expect(
            &format!("query m{m}"),
            "ok mutex owner=none recursion=0 abandoned=0",
        );
    }
    v.expect("set e0", "ok");
    v.expect("set e1", "ok");
    v.expect("set e2", "ok");
    v.expect("wait e1 timeout=5000", "signaled");
    v.expect("query e1", "ok event auto unset");
    v.expect("set e1", "ok");
    // One wait-all over every object (the timer, periodic, fires within its period).
    let mut all: Vec<String> = vec!["e0".into(), "e1".into(), "e2".into()];
    all.extend((0..MUTEXES).map(|m| format!("m{m}")));
    all.extend((0..SEMS).map(|s| format!("s{s}")));
    all.push("t".into());
    v.expect("settimer t due=1 period=5", "ok");
    v.expect(
        &format!("waitall {} timeout=8000", all.join(" ")),
        "signaled",
    );
    for m in 0..MUTEXES {
        v.expect(&format!("release m{m}"), "ok");
    }
    for (s, left) in left_before_all.iter().enumerate() {
        // The wait-all took one unit of each; giving it back finds one less than before.
        v.expect(&format!("release s{s}"), &format!("ok {}", left - 1));
    }
    v.expect("cancel t", "ok");
    v.exit();
    keeper.exit();
    let verify_time = verify_started.elapsed();

    for p in chaos.stderrs.panics() {
        chaos.violation("stderr", p);
    }
    let f = &chaos.figures;
    println!(
        "chaos figures: {:.1} s run (+{:.1} s final check), seed {seed}: {} operations ({} waits, {} timed out), \
         {} workers started, {} kills, {} recoveries (abandoned observed by workers) + {} by the final check, \
         max lateness {} ms, {} monitor checks, {} violations",
        run_time.as_secs_f64(),
        verify_time.as_secs_f64(),
        f.operations,
        f.waits,
        f.timeouts,
        f.spawned,
        f.kills,
        f.recoveries,
        f.verifier_recoveries,
        f.max_late_ms,
        f.monitor_checks,
        f.violations.len()
    );
    if !chaos.figures.violations.is_empty() {
        let mut msg = format!(
            "{} chaos violations (seed {seed}):\n",
            chaos.figures.violations.len()
        );
        for v in chaos.figures.violations.iter().take(40) {
            let _ = writeln!(msg, "  - {v}");
        }
        msg.push_str(&chaos.transcript());
        msg.push_str(&root.transcript());
        panic!("{msg}");
    }
    // The Root's drop (at the end of this function) checks that no file is left under it.
    std::mem::take(&mut chaos.figures)
}

/// The default-suite variant: a few seconds, 6 workers, a kill every 40–200 ms.
#[test]
fn chaos_short() {
    let secs = 4;
    let f = run_chaos(
        Duration::from_secs(secs),
        env_u64("PROCSYNC_CHAOS_WORKERS", 6) as usize,
        (40, 200),
    );
    assert!(f.kills >= 5, "too few kills to mean anything: {}", f.kills);
    assert!(
        f.operations >= 200,
        "too few operations to mean anything: {}",
        f.operations
    );
}

/// The long variant: `PROCSYNC_CHAOS_SECS` (default 60) seconds; run with
/// `cargo test --release --test procs chaos_long -- --ignored --nocapture`.
#[test]
#[ignore = "minutes long; run on request"]
fn chaos_long() {
    let secs = env_u64("PROCSYNC_CHAOS_SECS", 60);
    let f = run_chaos(
        Duration::from_secs(secs),
        env_u64("PROCSYNC_CHAOS_WORKERS", 6) as usize,
        (20, 150),
    );
    assert!(f.kills > 0);
}

// ---------------------------------------------------------------------------------------------
// Kill storm

/// The tight loop a storm process runs (answers are not read: a release of something not
/// held simply fails). Everything has a small timeout.
const STORM_LOOP: &[&str] = &[
    "waitall m0 s0 e0 timeout=3",
    "release m0",
    "release s0",
    "set e0",
    "waitany m1 s0 e1 t0 timeout=2",
    "release m1",
    "release s0",
    "pulse e1",
    "set e1",
    "waitall m0 m1 e1 timeout=2",
    "release m0",
    "release m1",
    "reset e1",
    "waitall s0 s1 m1 timeout=2",
    "release s0",
    "release s1",
    "release m1",
    "wait m0 timeout=1",
    "release m0",
    "waitany e0 m0 m1 s1 timeout=2",
    "release m0",
    "release m1",
    "release s1",
    "set e0",
    "settimer t0 due=1 period=2",
    "waitall t0 e1 s1 timeout=2",
    "release s1",
    "set e1",
];

/// The objects of the storm: (kind, alias, extra create arguments).
const STORM_OBJECTS: &[(&str, &str, &str)] = &[
    ("mutex", "m0", ""),
    ("mutex", "m1", ""),
    ("semaphore", "s0", "initial=2 max=4"),
    ("semaphore", "s1", "initial=1 max=2"),
    ("event", "e0", ""),
    ("event", "e1", "manual"),
    ("timer", "t0", ""),
];

/// A process that runs the storm loop until told to stop (a contender that is never
/// killed), fed by a writer thread with flow control so that stopping is quick.
struct Steady {
    proc: Proc,
    stop: Arc<AtomicBool>,
    answers: Arc<AtomicUsize>,
    bad: Arc<Mutex<Vec<String>>>,
    writer: Option<thread::JoinHandle<()>>,
}

#[test]
fn kill_storm_inside_internal_locks() {
    let storm_time = Duration::from_millis(env_u64("PROCSYNC_STORM_MS", 3_000));
    let parallel = 3;
    let seed = seed_from_env(0x5704_0000_0000_0001);
    println!("kill storm: seed {seed} (PROCSYNC_CHAOS_SEED replays it)");
    let mut rng = Rng::new(seed);
    let root = Root::fresh();
    let mut keeper = root.repl();
    let mut opens = Vec::new();
    for (kind, alias, extra) in STORM_OBJECTS {
        let name = unique(&format!("storm-{alias}"));
        keeper.expect(
            format!("create {kind} {alias} name={name} {extra}").trim_end(),
            "ok created",
        );
        opens.push(format!("open {kind} {alias} name={name}"));
    }
    let script_loop: Vec<&str> = STORM_LOOP.to_vec();
    let mut script = opens.join("\n");
    script.push_str("\npid\n");
    for _ in 0..40 {
        for c in &script_loop {
            script.push_str(c);
            script.push('\n');
        }
    }

    let (tx, rx) = mpsc::channel::<Report>();
    let mut stderrs = Stderrs::default();
    let mut next_id = 0usize;

    // Two contenders that are never killed, so that locks are contended when kills land.
    let mut steadies: Vec<Steady> = Vec::new();
    for _ in 0..2 {
        let (stx, srx) = mpsc::channel::<Report>();
        let mut proc = Proc::spawn(&root, next_id, &stx);
        stderrs.add(format!("steady{next_id}"), &proc);
        next_id += 1;
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(AtomicUsize::new(0));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let (a2, b2) = (Arc::clone(&answers), Arc::clone(&bad));
        thread::spawn(move || {
            while let Ok((_, Some(line))) = srx.recv() {
                a2.fetch_add(1, Ordering::Relaxed);
                if !storm_answer_expected(&line) {
                    b2.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
        let mut stdin = proc.stdin.take().expect("piped");
        let (stop2, a3) = (Arc::clone(&stop), Arc::clone(&answers));
        let head = format!("{}\n", opens.join("\n"));
        let body: String = script_loop.iter().map(|c| format!("{c}\n")).collect();
        let writer = thread::spawn(move || {
            let mut sent = opens_count(&head);
            if stdin.write_all(head.as_bytes()).is_err() {
                return;
            }
            while !stop2.load(Ordering::Relaxed) {
                // Keep at most ~2 loops in flight, so that stopping takes milliseconds.
                if sent > a3.load(Ordering::Relaxed) + 2 * opens_count(&body) {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                if stdin
                    .write_all(body.as_bytes())
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    return;
                }
                sent += opens_count(&body);
            }
            // Dropping stdin: end of input, the REPL finishes and exits.
        });
        steadies.push(Steady {
            proc,
            stop,
            answers,
            bad,
            writer: Some(writer),
        });
    }

    struct Stormer {
        proc: Proc,
        kill_at: Option<Instant>,
        lines: usize,
    }
    let mut storm: BTreeMap<usize, Stormer> = BTreeMap::new();
    let started = Instant::now();
    let mut kills = 0u64;
    let mut storm_lines = 0usize;
    let mut working = 0usize; // storm processes that got past their opens
    // Lock words seen naming a dead holder right after a kill: kills that landed inside an
    // object's internal lock (deduplicated by object and word).
    let files: Vec<PathBuf> = opens
        .iter()
        .map(|o| object_file(&root, o.rsplit("name=").next().expect("name")))
        .collect();
    let mut dead_locks: Vec<(usize, u64)> = Vec::new();
    let mut early_exits = Vec::new();
    let opens_n = opens.len();
    // The storm goes on past `storm_time` until at least one kill has been seen landing inside
    // an internal lock (the point of the test), up to `storm_cap`.
    let storm_cap = storm_time * 8;
    while started.elapsed() < storm_time || (dead_locks.is_empty() && started.elapsed() < storm_cap)
    {
        while storm.len() < parallel {
            let mut p = Proc::spawn(&root, next_id, &tx);
            stderrs.add(format!("storm{next_id}"), &p);
            // The whole script fits in the pipe buffer: the REPL reads it as fast as it runs.
            let _ = p.send(&script);
            storm.insert(
                next_id,
                Stormer {
                    proc: p,
                    kill_at: None,
                    lines: 0,
                },
            );
            next_id += 1;
        }
        let now = Instant::now();
        let due: Vec<usize> = storm
            .iter()
            .filter(|(_, s)| s.kill_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let mut s = storm.remove(&id).expect("present");
            s.proc.kill();
            kills += 1;
            for (k, f) in files.iter().enumerate() {
                let word = read_u64(f, 64);
                let tid = word & 0xFFFF_FFFF;
                if tid != 0
                    && !Path::new(&format!("/proc/{tid}")).exists()
                    && !dead_locks.contains(&(k, word))
                {
                    dead_locks.push((k, word));
                }
            }
        }
        let next = storm.values().filter_map(|s| s.kill_at).min();
        let wait = next.map_or(Duration::from_millis(5), |t| {
            t.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait.min(Duration::from_millis(5))) {
            Ok((id, Some(_line))) => {
                storm_lines += 1;
                if let Some(s) = storm.get_mut(&id) {
                    s.lines += 1;
                    if s.lines == opens_n + 1 {
                        working += 1;
                    }
                    // The `pid` answer comes right after the opens: it is now working.
                    if s.lines == opens_n + 1 && s.kill_at.is_none() {
                        s.kill_at = Some(Instant::now() + Duration::from_micros(rng.below(5_000)));
                    }
                }
            }
            Ok((id, None)) => {
                if let Some(mut s) = storm.remove(&id) {
                    early_exits.push(format!(
                        "storm{id} ended before its kill: {}",
                        s.proc.stderr_text()
                    ));
                    s.proc.kill();
                }
            }
            Err(_) => {}
        }
    }
    for (_, mut s) in std::mem::take(&mut storm) {
        s.proc.kill();
        kills += 1;
    }
    // Stop the contenders: they must finish their last commands and exit 0.
    let mut steady_answers = 0;
    for st in &mut steadies {
        st.stop.store(true, Ordering::Relaxed);
    }
    for st in &mut steadies {
        if let Some(w) = st.writer.take() {
            w.join().expect("writer thread");
        }
        let status = st.proc.finish(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "a contender did not exit 0 after the storm: {status:?}; stderr: {}",
            st.proc.stderr_text()
        );
        steady_answers += st.answers.load(Ordering::Relaxed);
        let bad = st.bad.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(
            bad.is_empty(),
            "a contender got failures during the storm: {bad:?}"
        );
    }
    assert!(
        early_exits.is_empty(),
        "storm processes ended on their own: {early_exits:?}"
    );
    assert!(
        !dead_locks.is_empty(),
        "seed {seed}: none of {kills} kills in {:.1} s was seen landing inside an object's internal \
         lock (lock word naming the dead process right after the kill): the storm did not test \
         what it is for",
        started.elapsed().as_secs_f64()
    );

    // A fresh process must be able to use every object, within a generous bound.
    let bound = Duration::from_secs(10);
    let check = Instant::now();
    let mut v = root.repl();
    let within = |v: &mut Repl<'_>, cmd: &str| -> String {
        v.send(cmd);
        v.answer_within(
            bound
                .saturating_sub(check.elapsed())
                .max(Duration::from_millis(1)),
        )
    };
    for o in &opens {
        let alias = o.split(' ').nth(2).expect("alias");
        assert_eq!(
            within(
                &mut v,
                &o.replace(&format!(" {alias} "), &format!(" v{alias} "))
            ),
            "ok",
            "{o}"
        );
    }
    for m in ["vm0", "vm1"] {
        let a = within(&mut v, &format!("wait {m} timeout=8000"));
        assert!(a == "signaled" || a == "abandoned", "wait {m}: `{a}`");
        assert_eq!(within(&mut v, &format!("release {m}")), "ok");
        assert_eq!(
            within(&mut v, &format!("wait {m} timeout=8000")),
            "signaled",
            "{m}: abandonment is reported once"
        );
        assert_eq!(within(&mut v, &format!("release {m}")), "ok");
    }
    for (s, max) in [("vs0", 4u32), ("vs1", 2)] {
        let q = within(&mut v, &format!("query {s}"));
        let c: u32 = q
            .strip_prefix("ok semaphore count=")
            .and_then(|r| r.strip_suffix(&format!(" max={max}")))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("query {s}: `{q}`"));
        if c == 0 {
            assert_eq!(within(&mut v, &format!("release {s}")), "ok 0");
        }
    }
    assert_eq!(within(&mut v, "set ve0"), "ok");
    assert_eq!(within(&mut v, "set ve1"), "ok");
    let all = ["vm0", "vm1", "vs0", "vs1", "ve0", "ve1", "vt0"];
    assert_eq!(within(&mut v, "settimer vt0 due=0"), "ok");
    assert_eq!(
        within(&mut v, &format!("waitall {} timeout=8000", all.join(" "))),
        "signaled"
    );
    assert_eq!(within(&mut v, "release vm0"), "ok");
    assert_eq!(within(&mut v, "release vm1"), "ok");
    assert_eq!(within(&mut v, "release vs0").split(' ').next(), Some("ok"));
    assert_eq!(within(&mut v, "release vs1").split(' ').next(), Some("ok"));
    assert_eq!(within(&mut v, "pulse ve1"), "ok");
    let took = check.elapsed();
    assert!(
        took < bound,
        "using every object after the storm took {took:?}"
    );
    v.exit();
    keeper.exit();
    let panics = stderrs.panics();
    assert!(panics.is_empty(), "panics during the storm: {panics:?}");
    println!(
        "kill storm: seed {seed}, {kills} processes killed in {:.1} s ({working} of them killed 0-5 ms into their loop, \
         which answered {} commands), {} kills left an object lock held by the dead process; contenders answered \
         {steady_answers} commands; a fresh process used every object in {} ms",
        started.elapsed().as_secs_f64(),
        storm_lines.saturating_sub(working * (opens_n + 1)),
        dead_locks.len(),
        took.as_millis()
    );
    // The Root's drop checks that no file is left.
}

/// Whether `line` is one of the answers a storm loop command may get from a contender that
/// is never killed: success of any kind (`ok …`, `signaled …`, `abandoned …`, `timeout`), or
/// the two refusals the loop provokes on purpose (a `release` of a mutex it does not own, a
/// semaphore release past its maximum). Anything else (`err io`, a caught panic, `wrong-type`,
/// `unsupported`, …) is a failure.
fn storm_answer_expected(line: &str) -> bool {
    let word = line.split(' ').next().unwrap_or("");
    matches!(word, "ok" | "signaled" | "abandoned" | "timeout")
        || line.starts_with("err not-owner")
        || line.starts_with("err too-many-posts")
}

/// The file of the `Local\` object named `name` (plain names only: `[A-Za-z0-9._-]`).
fn object_file(root: &Root, name: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(root.path()).expect("root").uid();
    root.path()
        .join(format!("local-{uid}"))
        .join(format!("o{name}"))
}

/// The little-endian u64 at `off` in `path` (0 if unreadable).
fn read_u64(path: &Path, off: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 8];
    match std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut b, off)) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => 0,
    }
}

/// Number of lines in `text`.
fn opens_count(text: &str) -> usize {
    text.lines().count()
}
