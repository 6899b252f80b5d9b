//! Concurrency stress across real processes (docs/ARCHITECTURE.md, "Testing crash safety").
//!
//! Several `procsync repl` processes (some with two REPL threads) wait on one shared set of named
//! semaphores, mutexes and events with `wait` / `waitany` / `waitall` and finite timeouts, and
//! release what they got. Commands go out in batches, one batch per REPL thread per round, so
//! every thread runs its batch concurrently with all others; the test reads every answer and
//! keeps each thread's books (what it holds, what it acquired and gave back). Because a REPL
//! thread's answers come in order, the books say exactly which answer every later command must
//! get: a `release` of a mutex is `ok` iff the thread owns it, a semaphore's previous count
//! plus what the thread gives back never passes the maximum, and so on.
//!
//! - [`stress_conservation`]: at the end, every semaphore's count is its initial count plus
//!   what was released minus what was acquired, every mutex is free and not abandoned, the auto
//!   event was consumed at most once per set, and no round took much longer than the sum of its
//!   wait timeouts (TO-03, WL-02..04, SM-04/05, MX-04..06, WY-03/08, EV-06..08).
//! - [`stress_kill_during_waitall`]: processes looping on `waitall` over a shared set are
//!   SIGKILLed at random moments while others keep going; afterwards the objects still work
//!   from a fresh process, semaphore counts show only "acquired, then died" losses, and a
//!   process killed while holding mutexes leaves them abandoned (AB-04, AB-07, WL-03, WL-10,
//!   WL-14, LT-05, AB-15).
//!
//! Seeds: `PROCSYNC_STRESS_SEED` (decimal or `0x…`) replaces the fixed default seed. The default
//! runs are short; `PROCSYNC_SOAK=1` (or the `#[ignore]`d `stress_soak`) runs long ones.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::harness::{LONG_WAIT_MS, Repl, Root, unique, wait_for_waiters};

/// How much longer than the sum of its wait timeouts a round may take before the test calls it
/// a hang (process start-up, scheduling on a loaded two-CPU machine, lock recovery after kills).
const ROUND_SLACK: Duration = Duration::from_secs(5);

/// The timeout of the mutex wait that ends the batch of a victim killed while holding: long
/// enough to be satisfied on a loaded machine, and part of the round's time bound.
const HOLD_WAIT_MS: u64 = 3_000;

// A tiny seeded PRNG (SplitMix64), shared with tests/model.rs.
#[path = "../../../procsync/tests/common/rng.rs"]
mod rng;
use rng::Rng;

fn soak() -> bool {
    std::env::var("PROCSYNC_SOAK").is_ok_and(|v| v == "1")
}

fn seed(default: u64) -> u64 {
    let Ok(v) = std::env::var("PROCSYNC_STRESS_SEED") else {
        return default;
    };
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    }
    .unwrap_or_else(|e| panic!("PROCSYNC_STRESS_SEED={v:?}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Semaphore {
        initial: u32,
        max: u32,
    },
    Mutex,
    /// Auto-reset, created set.
    AutoEvent,
    /// Manual-reset, created set and never touched: it must stay set (AB-15).
    ManualEvent,
}

struct Obj {
    alias: String,
    name: String,
    kind: Kind,
}

impl Obj {
    fn new(alias: &str, kind: Kind) -> Obj {
        Obj {
            alias: alias.to_string(),
            name: unique(&format!("stress-{alias}")),
            kind,
        }
    }

    fn create_cmd(&self) -> String {
        let (a, n) = (&self.alias, &self.name);
        match self.kind {
            Kind::Semaphore { initial, max } => {
                format!("create semaphore {a} name={n} initial={initial} max={max}")
            }
            Kind::Mutex => format!("create mutex {a} name={n}"),
            Kind::AutoEvent => format!("create event {a} name={n} initial"),
            Kind::ManualEvent => format!("create event {a} name={n} manual initial"),
        }
    }

    fn open_cmd(&self) -> String {
        let word = match self.kind {
            Kind::Semaphore { .. } => "semaphore",
            Kind::Mutex => "mutex",
            Kind::AutoEvent | Kind::ManualEvent => "event",
        };
        format!("open {word} {} name={}", self.alias, self.name)
    }

    fn max(&self) -> u32 {
        match self.kind {
            Kind::Semaphore { max, .. } => max,
            _ => 0,
        }
    }
}

fn create_all(r: &mut Repl<'_>, objs: &[Obj]) {
    for o in objs {
        r.expect(&o.create_cmd(), "ok created");
    }
}

fn open_all(r: &mut Repl<'_>, objs: &[Obj]) {
    let cmds: Vec<String> = objs.iter().map(Obj::open_cmd).collect();
    r.send_batch(&cmds);
    for (cmd, got) in cmds.iter().zip(r.answers(cmds.len())) {
        if got != "ok" {
            r.fail(&format!("`{cmd}`: expected `ok`, got `{got}`"));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    One,
    Any,
    All,
}

/// One planned command and what the books need to check its answer.
#[derive(Clone, Debug)]
enum Plan {
    /// `wait` / `waitany` / `waitall` over these objects (by index).
    Acquire {
        objs: Vec<usize>,
        mode: Mode,
        timeout_ms: u64,
    },
    /// Give back `count` units of a semaphore this thread holds: must be `ok P` with
    /// `P + count ≤ max` (SM-04, SM-05).
    GiveBack { obj: usize, count: u32 },
    /// Release a mutex once whether or not the thread got it: `ok` iff it owns it, else
    /// `not-owner` (MX-04..06).
    ReleaseMutex { obj: usize },
    /// Release one semaphore unit nobody took: `ok P` with `P < max`. Gifts come out of a
    /// budget of `max − initial` units, so they can never pass the maximum and the books'
    /// invariant "count + units held ≤ max" holds throughout.
    Gift { obj: usize },
    /// Release `max + 1` units: always `too-many-posts`, and nothing changes (SM-05).
    Overpost { obj: usize },
    /// Set the auto event again after a wait that may have consumed it.
    Set { obj: usize },
}

impl Plan {
    fn command(&self, objs: &[Obj]) -> String {
        let a = |i: &usize| objs[*i].alias.as_str();
        match self {
            Plan::Acquire {
                objs: list,
                mode,
                timeout_ms,
            } => {
                let names: Vec<&str> = list.iter().map(a).collect();
                let verb = match mode {
                    Mode::One => "wait",
                    Mode::Any => "waitany",
                    Mode::All => "waitall",
                };
                format!("{verb} {} timeout={timeout_ms}", names.join(" "))
            }
            Plan::GiveBack { obj, count } => format!("release {} count={count}", a(obj)),
            Plan::ReleaseMutex { obj } => format!("release {}", a(obj)),
            Plan::Gift { obj } => format!("release {} count=1", a(obj)),
            Plan::Overpost { obj } => format!("release {} count={}", a(obj), objs[*obj].max() + 1),
            Plan::Set { obj } => format!("set {}", a(obj)),
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Plan::Acquire { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
            _ => Duration::ZERO,
        }
    }

    /// Semaphore units this command could acquire (an upper bound, for killed processes).
    fn could_take(&self, objs: &[Obj], out: &mut [u32]) {
        if let Plan::Acquire { objs: list, .. } = self {
            let mut seen = Vec::new();
            for &o in list {
                if matches!(objs[o].kind, Kind::Semaphore { .. }) && !seen.contains(&o) {
                    seen.push(o);
                    out[o] += 1;
                }
            }
        }
    }
}

/// Totals over every thread of every process.
#[derive(Default)]
struct Tally {
    acquired: Vec<u64>,
    given_back: Vec<u64>,
    gifts: Vec<u64>,
    sets: Vec<u64>,
    abandoned_reports: u64,
    successes: u64,
    timeouts: u64,
    /// Every command with its answer, in the order the answers were read (for failure reports).
    log: Vec<String>,
}

impl Tally {
    fn new(n: usize) -> Tally {
        Tally {
            acquired: vec![0; n],
            given_back: vec![0; n],
            gifts: vec![0; n],
            sets: vec![0; n],
            ..Tally::default()
        }
    }
}

/// The books of one REPL thread.
struct Agent {
    /// Index of its process in the test's list of REPLs.
    proc: usize,
    /// `None` = thread `main`; `Some("@x")` = REPL thread `x`.
    thread: Option<&'static str>,
    /// Semaphore units it holds, per object.
    held: Vec<u32>,
    /// Mutex recursion it holds, per object.
    owned: Vec<u32>,
    /// Whether a mutex abandoned by a killed process may show up here (`abandoned` answers).
    may_see_abandoned: bool,
}

impl Agent {
    fn new(proc: usize, thread: Option<&'static str>, n: usize, may_see_abandoned: bool) -> Agent {
        Agent {
            proc,
            thread,
            held: vec![0; n],
            owned: vec![0; n],
            may_see_abandoned,
        }
    }

    fn line(&self, plan: &Plan, objs: &[Obj]) -> String {
        match self.thread {
            Some(t) => format!("{t} {}", plan.command(objs)),
            None => plan.command(objs),
        }
    }

    fn read(&self, r: &mut Repl<'_>) -> String {
        match self.thread {
            Some(t) => {
                let line = r.answer_for(t);
                line.strip_prefix(t)
                    .map_or(line.clone(), |s| s.trim_start().to_string())
            }
            None => r.answer(),
        }
    }

    /// Plans a batch: give back what it holds, then `k` acquisitions, each followed by releases
    /// of the mutexes it may have taken and a set of the auto event it may have consumed.
    /// `gifts[o]` is what is left of semaphore `o`'s gift budget (see [`Plan::Gift`]).
    fn compose(
        &self,
        rng: &mut Rng,
        objs: &[Obj],
        k: usize,
        modes: &[Mode],
        timeouts: &[u64],
        gifts: &mut [u32],
    ) -> Vec<Plan> {
        let mut plans: Vec<Plan> = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, h)| **h > 0)
            .map(|(obj, &count)| Plan::GiveBack { obj, count })
            .collect();
        let sems: Vec<usize> = (0..objs.len())
            .filter(|&o| matches!(objs[o].kind, Kind::Semaphore { .. }))
            .collect();
        for _ in 0..k {
            let mode = rng.pick(modes);
            let list = match mode {
                Mode::One => vec![rng.below(objs.len())],
                Mode::Any => {
                    let k = 1 + rng.below(4);
                    let mut l = rng.distinct(objs.len(), k);
                    if rng.chance(15) {
                        let twin = rng.pick(&l);
                        l.insert(rng.below(l.len() + 1), twin); // WY-08
                    }
                    l
                }
                Mode::All => {
                    let k = 2 + rng.below(3);
                    rng.distinct(objs.len(), k)
                }
            };
            let timeout_ms = rng.pick(timeouts);
            let mut after = Vec::new();
            for (i, &o) in list.iter().enumerate() {
                if list[..i].contains(&o) {
                    continue;
                }
                match objs[o].kind {
                    Kind::Mutex => after.push(Plan::ReleaseMutex { obj: o }),
                    Kind::AutoEvent => after.push(Plan::Set { obj: o }),
                    _ => {}
                }
            }
            plans.push(Plan::Acquire {
                objs: list,
                mode,
                timeout_ms,
            });
            plans.extend(after);
            if !sems.is_empty() && rng.chance(8) {
                let o = rng.pick(&sems);
                if gifts[o] > 0 {
                    gifts[o] -= 1;
                    plans.push(Plan::Gift { obj: o });
                } else {
                    plans.push(Plan::Overpost { obj: o });
                }
            }
        }
        plans
    }

    fn take(&mut self, o: usize, objs: &[Obj], t: &mut Tally) {
        t.acquired[o] += 1;
        match objs[o].kind {
            Kind::Semaphore { .. } => self.held[o] += 1,
            Kind::Mutex => self.owned[o] += 1,
            Kind::AutoEvent | Kind::ManualEvent => {}
        }
    }

    /// Checks one answer against the books and updates them; `Err` says what is wrong.
    fn check(&mut self, plan: &Plan, got: &str, objs: &[Obj], t: &mut Tally) -> Result<(), String> {
        let bad = || Err(format!("unexpected answer `{got}`"));
        match plan {
            Plan::Acquire {
                objs: list, mode, ..
            } => {
                let (word, index) = match got.split_once(' ') {
                    Some((w, k)) => (
                        w,
                        Some(
                            k.parse::<usize>()
                                .map_err(|_| format!("bad index in `{got}`"))?,
                        ),
                    ),
                    None => (got, None),
                };
                match (mode, word, index) {
                    (_, "timeout", None) => {
                        t.timeouts += 1;
                        return Ok(());
                    }
                    (Mode::One, "signaled", None) => self.take(list[0], objs, t),
                    (Mode::One, "abandoned", None)
                        if self.may_see_abandoned && objs[list[0]].kind == Kind::Mutex =>
                    {
                        t.abandoned_reports += 1;
                        self.take(list[0], objs, t);
                    }
                    // WY-03/08: the index names an entry; a duplicate is reported at its first
                    // position.
                    (Mode::Any, "signaled" | "abandoned", Some(k))
                        if k < list.len() && !list[..k].contains(&list[k]) =>
                    {
                        if word == "abandoned" {
                            if !self.may_see_abandoned || objs[list[k]].kind != Kind::Mutex {
                                return bad();
                            }
                            t.abandoned_reports += 1;
                        }
                        self.take(list[k], objs, t);
                    }
                    // WL-01/02: everything at once; WL-10: `abandoned K` names a mutex.
                    (Mode::All, "signaled", None) => {
                        for &o in list {
                            self.take(o, objs, t);
                        }
                    }
                    (Mode::All, "abandoned", Some(k))
                        if self.may_see_abandoned
                            && k < list.len()
                            && objs[list[k]].kind == Kind::Mutex =>
                    {
                        t.abandoned_reports += 1;
                        for &o in list {
                            self.take(o, objs, t);
                        }
                    }
                    _ => return bad(),
                }
                t.successes += 1;
            }
            Plan::GiveBack { obj, count } => {
                let Some(p) = got.strip_prefix("ok ").and_then(|p| p.parse::<u32>().ok()) else {
                    return bad();
                };
                if u64::from(p) + u64::from(*count) > u64::from(objs[*obj].max()) {
                    return Err(format!(
                        "`{got}`: previous count {p} + {count} units this thread holds passes the maximum {}: \
                         units were created or not taken (SM-04/05)",
                        objs[*obj].max()
                    ));
                }
                self.held[*obj] -= count;
                t.given_back[*obj] += u64::from(*count);
            }
            Plan::ReleaseMutex { obj } => {
                if self.owned[*obj] > 0 {
                    if got != "ok" {
                        return Err(format!(
                            "`{got}`: this thread acquired the mutex, the release must be `ok` (MX-04)"
                        ));
                    }
                    self.owned[*obj] -= 1;
                } else if !(got == "err not-owner" || got.starts_with("err not-owner ")) {
                    return Err(format!(
                        "`{got}`: this thread does not own the mutex, expected `err not-owner` (MX-06)"
                    ));
                }
            }
            Plan::Gift { obj } => {
                let Some(p) = got.strip_prefix("ok ").and_then(|p| p.parse::<u32>().ok()) else {
                    return Err(format!(
                        "`{got}`: gifts stay within max - initial, so the count plus the units held \
                         is below the maximum before this release (SM-04)"
                    ));
                };
                if p >= objs[*obj].max() {
                    return Err(format!(
                        "`{got}`: a release of 1 succeeded on a count already at its maximum (SM-05)"
                    ));
                }
                t.gifts[*obj] += 1;
            }
            Plan::Overpost { .. } => {
                if !(got == "err too-many-posts" || got.starts_with("err too-many-posts ")) {
                    return Err(format!(
                        "`{got}`: a release of max + 1 must be `err too-many-posts` (SM-05, SM-07)"
                    ));
                }
            }
            Plan::Set { obj } => {
                if got != "ok" {
                    return bad();
                }
                t.sets[*obj] += 1;
            }
        }
        Ok(())
    }
}

/// Sends each agent's plans, one batch per process (threads interleaved), and returns when
/// the batches are sent.
fn send_round(
    repls: &mut [Repl<'_>],
    agents: &[Agent],
    plans: &[Vec<Plan>],
    objs: &[Obj],
    rng: &mut Rng,
) {
    for (p, repl) in repls.iter_mut().enumerate() {
        let mut queues: Vec<std::collections::VecDeque<String>> = agents
            .iter()
            .zip(plans)
            .filter(|(a, _)| a.proc == p)
            .map(|(a, ps)| ps.iter().map(|plan| a.line(plan, objs)).collect())
            .collect();
        if queues.is_empty() {
            continue;
        }
        let mut lines = Vec::new();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len())
                .filter(|&i| !queues[i].is_empty())
                .collect();
            let q = rng.pick(&live);
            lines.push(queues[q].pop_front().expect("non-empty"));
        }
        repl.send_batch(&lines);
    }
}

/// Reads and checks every answer of `agent`'s batch.
fn read_all(
    r: &mut Repl<'_>,
    agent: &mut Agent,
    plans: &[Plan],
    objs: &[Obj],
    t: &mut Tally,
    ctx: &str,
) {
    for plan in plans {
        let got = agent.read(r);
        let cmd = plan.command(objs);
        let thread = agent.thread.unwrap_or("main");
        t.log
            .push(format!("{ctx} {}/{thread}: {cmd} -> {got}", r.label()));
        if let Err(e) = agent.check(plan, &got, objs, t) {
            // The books of every object this command names, in answer order (per thread, the
            // order the commands ran in).
            let words: Vec<&str> = cmd
                .split(' ')
                .skip(1)
                .filter(|w| !w.contains('='))
                .collect();
            let mut history = String::new();
            for line in &t.log {
                let named = line.split(": ").nth(1).unwrap_or("");
                if named.split(' ').skip(1).any(|w| words.contains(&w)) {
                    let _ = writeln!(history, "  {line}");
                }
            }
            r.fail(&format!(
                "{ctx}: `{cmd}` (thread {thread}): {e}\nevery answer about {words:?} so far (read order; \
                 each thread's answers are in the order it ran them):\n{history}"
            ));
        }
    }
}

fn batch_bound(plans: &[Plan]) -> Duration {
    plans.iter().map(Plan::timeout).sum()
}

// ---------------------------------------------------------------------------------------------

/// See the module doc: conservation of units and ownership under real concurrency.
#[test]
fn stress_conservation() {
    let rounds = if soak() { 400 } else { 50 };
    conservation(seed(0x5713_E550_0000_0001), rounds);
}

/// See the module doc: processes killed in the middle of `waitall` loops.
#[test]
fn stress_kill_during_waitall() {
    let rounds = if soak() { 120 } else { 10 };
    kill_during_waitall(seed(0x5713_E550_0000_0002), rounds);
}

/// The long variants (also `PROCSYNC_SOAK=1` on the two tests above).
#[test]
#[ignore = "soak: minutes; run with --ignored"]
fn stress_soak() {
    let s = seed(0x5713_E550_0000_0003);
    conservation(s, 400);
    kill_during_waitall(s ^ 1, 120);
}

fn conservation(seed: u64, rounds: usize) {
    const PROCS: usize = 4;
    let root = Root::fresh();
    let mut rng = Rng(seed);
    let objs = vec![
        Obj::new("s0", Kind::Semaphore { initial: 2, max: 5 }),
        Obj::new("s1", Kind::Semaphore { initial: 1, max: 2 }),
        Obj::new("s2", Kind::Semaphore { initial: 3, max: 3 }),
        Obj::new("m0", Kind::Mutex),
        Obj::new("m1", Kind::Mutex),
        Obj::new("e0", Kind::AutoEvent),
    ];
    let n = objs.len();
    let mut gift_budget: Vec<u32> = objs
        .iter()
        .map(|o| match o.kind {
            Kind::Semaphore { initial, max } => max - initial,
            _ => 0,
        })
        .collect();
    let mut repls: Vec<Repl<'_>> = (0..PROCS).map(|_| root.repl()).collect();
    create_all(&mut repls[0], &objs);
    for r in &mut repls[1..] {
        open_all(r, &objs);
    }
    // Two REPL threads in every process: ownership is per thread (MX-07).
    let mut agents: Vec<Agent> = (0..PROCS)
        .flat_map(|p| {
            [
                Agent::new(p, None, n, false),
                Agent::new(p, Some("@x"), n, false),
            ]
        })
        .collect();
    let mut t = Tally::new(n);
    let started = Instant::now();
    for round in 0..=rounds {
        let last = round == rounds;
        // The last round only gives back what is held.
        let k = if last { 0 } else { 3 + rng.below(3) };
        let plans: Vec<Vec<Plan>> = agents
            .iter()
            .map(|a| {
                a.compose(
                    &mut rng,
                    &objs,
                    k,
                    &[Mode::One, Mode::Any, Mode::Any, Mode::All, Mode::All],
                    &[0, 2, 10, 30],
                    &mut gift_budget,
                )
            })
            .collect();
        let bound = plans
            .iter()
            .map(|p| batch_bound(p))
            .max()
            .unwrap_or_default()
            + ROUND_SLACK;
        let t0 = Instant::now();
        send_round(&mut repls, &agents, &plans, &objs, &mut rng);
        for (a, p) in agents.iter_mut().zip(&plans) {
            read_all(
                &mut repls[a.proc],
                a,
                p,
                &objs,
                &mut t,
                &format!("seed {seed:#x} round {round}"),
            );
            if a.owned.iter().any(|&r| r != 0) {
                repls[a.proc].fail(&format!(
                    "seed {seed:#x} round {round}: books say a mutex is still owned: {:?}",
                    a.owned
                ));
            }
        }
        let took = t0.elapsed();
        if took > bound {
            repls[0].fail(&format!(
                "seed {seed:#x} round {round}: the round took {took:?}, more than the sum of its wait timeouts plus \
                 {ROUND_SLACK:?} ({bound:?}): a wait overran its timeout (TO-03)"
            ));
        }
    }
    // Conservation, read from a process that did not take part.
    let mut check = root.repl();
    open_all(&mut check, &objs);
    let mut report = String::new();
    for (o, obj) in objs.iter().enumerate() {
        let got = check.ask(&format!("query {}", obj.alias));
        let want = match obj.kind {
            Kind::Semaphore { initial, max } => {
                let count = u64::from(initial) + t.gifts[o] + t.given_back[o] - t.acquired[o];
                format!("ok semaphore count={count} max={max}")
            }
            Kind::Mutex => "ok mutex owner=none recursion=0 abandoned=0".into(),
            Kind::AutoEvent | Kind::ManualEvent => {
                // EV-06/07/10: each set satisfies at most one wait.
                if t.acquired[o] > 1 + t.sets[o] {
                    check.fail(&format!(
                        "auto event {} was acquired {} times with only 1 initial signal + {} sets",
                        obj.alias, t.acquired[o], t.sets[o]
                    ));
                }
                got.clone()
            }
        };
        if got != want {
            check.fail(&format!(
                "seed {seed:#x}: `query {}` = `{got}`, the books say `{want}` (acquired {}, given back {}, gifts {})",
                obj.alias, t.acquired[o], t.given_back[o], t.gifts[o]
            ));
        }
        let _ = write!(
            report,
            " {}: acquired {} given back {} gifts {} sets {};",
            obj.alias, t.acquired[o], t.given_back[o], t.gifts[o], t.sets[o]
        );
    }
    if t.successes == 0 || t.timeouts == 0 {
        check.fail(&format!(
            "no contention to speak of: {} successes, {} timeouts",
            t.successes, t.timeouts
        ));
    }
    eprintln!(
        "stress_conservation: seed {seed:#x}, {rounds} rounds, {} waits satisfied, {} timed out, {:.2?};{report}",
        t.successes,
        t.timeouts,
        started.elapsed()
    );
}

fn kill_during_waitall(seed: u64, rounds: usize) {
    const SURVIVORS: usize = 2;
    const VICTIMS: usize = 3;
    let root = Root::fresh();
    let mut rng = Rng(seed);
    // max > initial, so a unit given back twice (or never taken) would show as count > initial.
    let objs = vec![
        Obj::new("s0", Kind::Semaphore { initial: 2, max: 4 }),
        Obj::new("s1", Kind::Semaphore { initial: 3, max: 5 }),
        Obj::new("m0", Kind::Mutex),
        Obj::new("m1", Kind::Mutex),
        Obj::new("go", Kind::ManualEvent),
    ];
    let n = objs.len();
    let never = Obj::new("never", Kind::AutoEvent);
    // The creator holds every object for the whole test and takes no part.
    let mut repls: Vec<Repl<'_>> = vec![root.repl()];
    create_all(&mut repls[0], &objs);
    repls[0].expect(
        &format!("create event never name={}", never.name),
        "ok created",
    );
    let mut agents: Vec<Agent> = Vec::new();
    for _ in 0..SURVIVORS + VICTIMS {
        let mut r = root.repl();
        open_all(&mut r, &objs);
        repls.push(r);
        agents.push(Agent::new(repls.len() - 1, None, n, true));
    }
    let is_victim = |i: usize| i >= SURVIVORS;
    let mut t = Tally::new(n);
    // Upper bound on the semaphore units that died with killed processes.
    let mut lost_max = vec![0u32; n];
    let mut kills = 0u64;
    // Kills of a process whose books said it owned a mutex: each one must be reported
    // `abandoned` by the mutex's next acquirer (AB-07).
    let mut kills_holding = 0u64;
    let started = Instant::now();
    for round in 0..=rounds {
        let last = round == rounds;
        let mut plans: Vec<Vec<Plan>> = agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let k = if last {
                    0
                } else if is_victim(i) {
                    10 + rng.below(10)
                } else {
                    4 + rng.below(3)
                };
                a.compose(&mut rng, &objs, k, &[Mode::All], &[5, 20, 50], &mut [0; 5])
            })
            .collect();
        // Which victims die this round, and how: at a random point of their batch, or (half of
        // them) right after a plain `wait` on a mutex that ends their batch, so that no release
        // follows it: when that wait succeeded (its generous timeout makes that all but certain;
        // every live holder gives the mutex back, a dead one abandons it), the kill certainly
        // abandons the mutex, whatever the timing (the default seed must produce abandonments).
        let mutexes: Vec<usize> = (0..n).filter(|&o| objs[o].kind == Kind::Mutex).collect();
        let mut kill_at: Vec<Option<usize>> = vec![None; agents.len()];
        for (i, plan) in plans.iter_mut().enumerate() {
            if !is_victim(i) || last || !rng.chance(60) {
                continue;
            }
            kill_at[i] = Some(if rng.chance(50) {
                let keep = rng.below(plan.len() + 1);
                plan.truncate(keep);
                plan.push(Plan::Acquire {
                    objs: vec![rng.pick(&mutexes)],
                    mode: Mode::One,
                    timeout_ms: HOLD_WAIT_MS,
                });
                plan.len()
            } else {
                rng.below(plan.len() + 1)
            });
        }
        let bound = plans
            .iter()
            .map(|p| batch_bound(p))
            .max()
            .unwrap_or_default()
            + ROUND_SLACK;
        let t0 = Instant::now();
        send_round(&mut repls, &agents, &plans, &objs, &mut rng);
        for i in 0..agents.len() {
            let ctx = format!("seed {seed:#x} round {round}");
            let p = agents[i].proc;
            if let Some(read) = kill_at[i] {
                // Kill it after `read` of its answers, possibly in the middle of a `waitall`.
                read_all(
                    &mut repls[p],
                    &mut agents[i],
                    &plans[i][..read],
                    &objs,
                    &mut t,
                    &ctx,
                );
                if rng.chance(50) {
                    std::thread::sleep(Duration::from_millis(rng.below(4) as u64));
                }
                let holding = agents[i].owned.iter().any(|&r| r > 0);
                repls[p].kill();
                kills += 1;
                kills_holding += u64::from(holding && read == plans[i].len());
                let mut could = agents[i].held.clone();
                for plan in &plans[i][read..] {
                    plan.could_take(&objs, &mut could);
                }
                for (o, c) in could.iter().enumerate() {
                    lost_max[o] += c;
                }
                // A replacement keeps the pressure on.
                let mut r = root.repl();
                open_all(&mut r, &objs);
                repls.push(r);
                agents[i] = Agent::new(repls.len() - 1, None, n, true);
            } else {
                read_all(
                    &mut repls[p],
                    &mut agents[i],
                    &plans[i],
                    &objs,
                    &mut t,
                    &ctx,
                );
                if agents[i].owned.iter().any(|&r| r != 0) {
                    repls[p].fail(&format!(
                        "{ctx}: books say a mutex is still owned: {:?}",
                        agents[i].owned
                    ));
                }
            }
        }
        let took = t0.elapsed();
        if took > bound {
            repls[0].fail(&format!(
                "seed {seed:#x} round {round}: the round took {took:?}, more than the longest batch's wait timeouts \
                 plus {ROUND_SLACK:?} ({bound:?}): a wait overran its timeout or an object stayed locked by a dead \
                 process"
            ));
        }
    }
    if t.successes == 0 {
        repls[0].fail("no waitall was ever satisfied");
    }
    // Only "acquired, then died" may be missing; nothing may be created (WL-03: a killed waiter
    // acquired nothing it was still waiting for).
    for (o, obj) in objs.iter().enumerate() {
        let Kind::Semaphore { initial, max } = obj.kind else {
            continue;
        };
        let got = repls[0].ask(&format!("query {}", obj.alias));
        let count = got
            .strip_prefix("ok semaphore count=")
            .and_then(|r| r.strip_suffix(&format!(" max={max}")))
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or_else(|| {
                repls[0].fail(&format!("`query {}`: unexpected `{got}`", obj.alias))
            });
        let floor = initial.saturating_sub(lost_max[o]);
        if count > initial || count < floor {
            repls[0].fail(&format!(
                "seed {seed:#x}: {} has count {count} after every live process gave back what it held; \
                 it must be between {floor} (initial {initial} minus at most {} units taken by the {kills} killed \
                 processes) and {initial}",
                obj.alias, lost_max[o]
            ));
        }
        // Give the lost units back, so that the rest starts from the initial counts.
        if count < initial {
            repls[0].expect(
                &format!("release {} count={}", obj.alias, initial - count),
                &format!("ok {count}"),
            );
        }
    }
    // Mutexes: free (a dead owner reads as none + abandoned, AB-04), whatever the kills did.
    for obj in objs.iter().filter(|o| o.kind == Kind::Mutex) {
        let got = repls[0].ask(&format!("query {}", obj.alias));
        if !got.starts_with("ok mutex owner=none recursion=0 abandoned=") {
            repls[0].fail(&format!(
                "seed {seed:#x}: `query {}` = `{got}`: no live process owns it",
                obj.alias
            ));
        }
    }

    // A process killed while holding both mutexes and a unit of s0, blocked in another
    // `waitall`: the mutexes are abandoned (AB-07, AB-04), the unit is gone ("acquired, then
    // died"), and the waitall it was blocked in took nothing (WL-03).
    let mut holder = root.repl();
    open_all(&mut holder, &objs);
    holder.expect(&format!("open event never name={}", never.name), "ok");
    let got = holder.ask(&format!("waitall s0 m0 m1 timeout={LONG_WAIT_MS}"));
    if !(got == "signaled" || got == "abandoned 1" || got == "abandoned 2") {
        holder.fail(&format!("seed {seed:#x}: `waitall s0 m0 m1`: expected `signaled` or `abandoned 1|2`, got `{got}`"));
    }
    // The rounds' abandonments that nobody had acquired yet are reported here.
    let holder_saw_abandoned = got.starts_with("abandoned");
    if kills_holding == 0 {
        holder.fail(&format!(
            "seed {seed:#x}: none of the {kills} kills hit a process holding a mutex: the test did \
             not exercise abandonment (AB-07); change the seed or the rounds"
        ));
    }
    if t.abandoned_reports == 0 && !holder_saw_abandoned {
        holder.fail(&format!(
            "seed {seed:#x}: {kills_holding} processes were killed owning a mutex, yet no acquisition \
             reported `abandoned` (AB-07)"
        ));
    }
    holder.send(&format!("waitall s1 never timeout={LONG_WAIT_MS}"));
    // Blocked (queued on `never`, which the creator holds): the kill lands mid-wait.
    wait_for_waiters(&mut repls[0], "never", 1);
    holder.no_answer_now();
    holder.kill();

    // A fresh process: everything still works.
    let mut fresh = root.repl();
    open_all(&mut fresh, &objs);
    fresh.expect("query m0", "ok mutex owner=none recursion=0 abandoned=1");
    fresh.expect("query m1", "ok mutex owner=none recursion=0 abandoned=1");
    fresh.expect("query go", "ok event manual set"); // AB-15
    fresh.expect("query s0", "ok semaphore count=1 max=4"); // 2, minus the dead holder's unit
    fresh.expect("query s1", "ok semaphore count=3 max=5"); // untouched by the killed waitall
    // Restore the initial counts, then one waitall over the whole set must succeed and report
    // the first abandoned mutex (WL-10; docs/REPL.md: `abandoned K`).
    fresh.expect("release s0 count=1", "ok 1");
    fresh.expect(
        &format!("waitall s0 s1 m0 m1 go timeout={LONG_WAIT_MS}"),
        "abandoned 2",
    );
    fresh.expect("query m0", "ok mutex owner=self recursion=1 abandoned=0");
    fresh.expect("query m1", "ok mutex owner=self recursion=1 abandoned=0");
    fresh.expect("query s0", "ok semaphore count=1 max=4");
    fresh.expect("query s1", "ok semaphore count=2 max=5");
    for cmd in ["release m0", "release m1"] {
        fresh.expect(cmd, "ok");
    }
    fresh.expect("release s0", "ok 1");
    fresh.expect("release s1", "ok 2");
    // AB-03: reported once.
    fresh.expect(
        &format!("waitall s0 s1 m0 m1 go timeout={LONG_WAIT_MS}"),
        "signaled",
    );
    for cmd in ["release m0", "release m1"] {
        fresh.expect(cmd, "ok");
    }
    fresh.expect("release s0", "ok 1");
    fresh.expect("release s1", "ok 2");
    // The survivors' books: every abandoned report needs a death behind it (each death can
    // abandon each mutex once).
    if t.abandoned_reports > 2 * (kills + 1) {
        fresh.fail(&format!(
            "{} `abandoned` answers but only {kills} processes were killed",
            t.abandoned_reports
        ));
    }
    eprintln!(
        "stress_kill_during_waitall: seed {seed:#x}, {rounds} rounds, {kills} kills ({kills_holding} owning a \
         mutex), {} waitalls satisfied ({} abandoned), {} timed out, {:.2?}",
        t.successes,
        t.abandoned_reports,
        t.timeouts,
        started.elapsed()
    );
}
