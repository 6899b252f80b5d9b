//! The contention scenarios (procsync-bench/README.md, "Scenarios"): N contenders (2, 4, 8)
//! take and give back one lock in a loop with a short critical section, for a fixed time
//! after a common start gate, procsync's object against two baselines in the same rounds:
//!
//! * `contention/mutex-N-procs`: N processes; procsync's mutex against a robust
//!   process-shared pthread mutex (which barges) and a strict FIFO futex hand-off lock;
//! * `contention/semaphore-N-procs`: N processes; procsync's semaphore of count 1 of 1 used
//!   as a lock against a process-shared POSIX `sem_t` (barging) and the FIFO lock;
//! * `contention/mutex-N-threads`: N threads of one contender process (procsync's mutex is
//!   owned per thread, as in Win32, so threads contend as processes do); the same locks as
//!   `mutex-N-procs`.
//!
//! What it owns: the rounds (spawning, gate, stop, reaping), the contender loop, and the
//! figures of a round (acquisitions per second, owner changes per 1 000 acquisitions,
//! context switches per acquisition, fairness = max/min acquisitions per contender); the
//! locks and the shared file's layout are in [`locks`]. What it must not do: assert anything
//! about the figures (the report states them).
//!
//! A round of one lock: the parent spawns the contenders (this executable again, see
//! [`crate::child_main`]: N processes, or one process that starts N threads), each pins
//! itself to the `i`-th allowed CPU (when there are at least N), opens the
//! lock, says it is ready and sleeps on the gate; the parent opens the gate, sleeps for the
//! round's duration, raises `stop`, and reaps them. Each contender counts its acquisitions
//! and reads its own thread's context switches (`/proc/thread-self/status`) before and
//! after. The critical section notes the owner: when it differs from the previous one, the
//! owner-change counter grows (both are only touched while the lock is held). Rounds rotate
//! the order of the three locks.

mod locks;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use locks::{CHANGES, COUNTS, GATE, LAST_OWNER, Lock, MAX_CONTENDERS, READY, STOP, SharedFile};

use super::{DIR_VAR, PairStats, Report, child_command, futex_wait, futex_wake_all, quantile};

/// One contention scenario: what procsync's object is, its baselines, and who contends.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    /// The object, in the group's name.
    object: &'static str,
    /// procsync's lock first, then the barging baseline, then the FIFO lock.
    locks: [Lock; 3],
    /// Threads of one process rather than processes.
    threads: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        object: "mutex",
        locks: [Lock::ProcsyncMutex, Lock::PthreadRobust, Lock::Fifo],
        threads: false,
    },
    Scenario {
        object: "semaphore",
        locks: [Lock::ProcsyncSemaphore, Lock::PosixSem, Lock::Fifo],
        threads: false,
    },
    Scenario {
        object: "mutex",
        locks: [Lock::ProcsyncMutex, Lock::PthreadRobust, Lock::Fifo],
        threads: true,
    },
];

impl Scenario {
    /// `mutex-4-procs`, `semaphore-2-procs`, `mutex-8-threads`.
    fn tag(self, n: usize) -> String {
        let who = if self.threads { "threads" } else { "procs" };
        format!("{}-{n}-{who}", self.object)
    }
}

/// The sizes of the contention scenarios.
#[derive(Clone, Copy, Debug)]
pub struct ContentionPlan {
    /// Length of one round of one lock.
    pub round: Duration,
    /// Rounds per process count.
    pub rounds: usize,
}

/// The figures of one round of one lock.
#[derive(Clone, Copy, Debug)]
struct Figures {
    ns_per_acquisition: f64,
    acquisitions_per_s: f64,
    owner_changes_per_1000: f64,
    ctx_switches_per_acquisition: f64,
    fairness: f64,
}

/// Runs the contention scenarios with 2, 4 and 8 contenders that `wanted` accepts (by group
/// name: `contention/mutex-N-procs`, `contention/semaphore-N-procs`,
/// `contention/mutex-N-threads`) and adds their rows.
pub fn run(report: &mut Report, plan: ContentionPlan, wanted: &dyn Fn(&str) -> bool) {
    for scenario in SCENARIOS {
        for n in [2usize, 4, 8] {
            let group = format!("contention/{}", scenario.tag(n));
            if wanted(&group) {
                run_group(report, plan, scenario, n, &group);
            }
        }
    }
}

/// The rounds of one scenario with `n` contenders, and its two rows.
fn run_group(report: &mut Report, plan: ContentionPlan, scenario: Scenario, n: usize, group: &str) {
    assert!(n <= MAX_CONTENDERS, "at most {MAX_CONTENDERS} contenders");
    let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("bench dir"));
    let path = dir.join(format!("contend-{}", scenario.tag(n)));
    let file = SharedFile::create(&path, scenario.locks[0]);
    let mut figures: Vec<[Figures; 3]> = Vec::with_capacity(plan.rounds);
    for r in 0..plan.rounds {
        let mut f = [None; 3];
        for k in 0..3 {
            let i = (k + r) % 3;
            f[i] = Some(round(
                scenario.locks[i],
                n,
                scenario.threads,
                &file,
                &path,
                plan.round,
            ));
        }
        figures.push(f.map(|x| x.expect("every lock ran")));
    }
    for b in [1, 2] {
        add_row(report, group, scenario.locks[b], &figures, b);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
}

/// One row: procsync (index 0) against lock `b` of each round's figures.
fn add_row(report: &mut Report, group: &str, baseline: Lock, figures: &[[Figures; 3]], b: usize) {
    let med = |f: &dyn Fn(&Figures) -> f64, i: usize| {
        let mut v: Vec<f64> = figures.iter().map(|r| f(&r[i])).collect();
        quantile(&mut v, 0.5)
    };
    let worst = |f: &dyn Fn(&Figures) -> f64, i: usize| {
        figures
            .iter()
            .map(|r| f(&r[i]))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let side = |i: usize| figures.iter().map(|r| r[i].ns_per_acquisition).collect();
    let ratios = figures
        .iter()
        .map(|r| r[0].ns_per_acquisition / r[b].ns_per_acquisition)
        .collect();
    let stats = PairStats::of_rounds(side(0), side(b), ratios);
    let extras = vec![
        (
            "acquisitions_per_s",
            med(&|f| f.acquisitions_per_s, 0),
            med(&|f| f.acquisitions_per_s, b),
        ),
        (
            "worst_round_ns_per_acquisition",
            worst(&|f| f.ns_per_acquisition, 0),
            worst(&|f| f.ns_per_acquisition, b),
        ),
        (
            "owner_changes_per_1000",
            med(&|f| f.owner_changes_per_1000, 0),
            med(&|f| f.owner_changes_per_1000, b),
        ),
        (
            "ctx_switches_per_acquisition",
            med(&|f| f.ctx_switches_per_acquisition, 0),
            med(&|f| f.ctx_switches_per_acquisition, b),
        ),
        (
            "fairness_max_min",
            med(&|f| f.fairness, 0),
            med(&|f| f.fairness, b),
        ),
        (
            "worst_round_fairness_max_min",
            worst(&|f| f.fairness, 0),
            worst(&|f| f.fairness, b),
        ),
    ];
    report.pair_with(
        group,
        "procsync",
        baseline.code(),
        "per acquisition",
        stats,
        extras,
    );
}

/// One round of `lock` with `n` contenders: `n` processes, or `n` threads of one process.
fn round(
    lock: Lock,
    n: usize,
    threads: bool,
    file: &SharedFile,
    path: &Path,
    length: Duration,
) -> Figures {
    for w in [GATE, STOP, READY, LAST_OWNER, CHANGES] {
        file.word(w).store(0, Ordering::Relaxed);
    }
    for i in 0..2 * n {
        file.word(COUNTS + i).store(0, Ordering::Relaxed);
    }
    let who: Vec<String> = if threads {
        vec![format!("threads-{n}")]
    } else {
        (0..n).map(|i| format!("{i}/{n}")).collect()
    };
    let mut children: Vec<Child> = who
        .iter()
        .map(|who| {
            child_command(
                &format!("contend:{}:{who}:{}", lock.code(), path.display()),
                None,
            )
            .spawn()
            .expect("spawning a contender")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while file.word(READY).load(Ordering::Acquire) < n as u32 {
        if let Some(i) = children
            .iter_mut()
            .position(|c| matches!(c.try_wait(), Ok(Some(_))))
        {
            panic!("contender {i} of {} exited before the start", lock.code());
        }
        assert!(Instant::now() < deadline, "contenders never became ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    file.word(GATE).store(1, Ordering::Release);
    futex_wake_all(file.word(GATE));
    std::thread::sleep(length);
    file.word(STOP).store(1, Ordering::Release);
    let elapsed = t0.elapsed();
    for c in &mut children {
        let status = c.wait().expect("reaping a contender");
        assert!(
            status.success(),
            "a contender of {} ended with {status}",
            lock.code()
        );
    }
    let counts: Vec<u64> = (0..n)
        .map(|i| u64::from(file.word(COUNTS + 2 * i).load(Ordering::Acquire)))
        .collect();
    let ctx: u64 = (0..n)
        .map(|i| u64::from(file.word(COUNTS + 2 * i + 1).load(Ordering::Acquire)))
        .sum();
    let total: u64 = counts.iter().sum::<u64>().max(1);
    let (max, min) = (
        *counts.iter().max().expect("n > 0"),
        *counts.iter().min().expect("n > 0"),
    );
    Figures {
        ns_per_acquisition: elapsed.as_nanos() as f64 / total as f64,
        acquisitions_per_s: total as f64 / elapsed.as_secs_f64(),
        owner_changes_per_1000: f64::from(file.word(CHANGES).load(Ordering::Acquire)) * 1000.0
            / total as f64,
        ctx_switches_per_acquisition: ctx as f64 / total as f64,
        // A contender that never got the lock makes the ratio infinite: report it as such.
        fairness: if min == 0 {
            f64::INFINITY
        } else {
            max as f64 / min as f64
        },
    }
}

/// The contender process `contend:<lock>:<who>:<path>` (see [`crate::child_main`]): `who`
/// is `i/N`, contender `i` of N, or `threads-N` for a process of N contender threads
/// (indices 0..N), which share one mapping of the file and one procsync handle.
pub(crate) fn child(lock: &str, who: &str, path: &str) -> ! {
    let lock = Lock::from_code(lock);
    let file = SharedFile::attach(Path::new(path), lock);
    match who.strip_prefix("threads-") {
        Some(n) => {
            let n: u32 = n.parse().expect("contender thread count");
            std::thread::scope(|s| {
                for me in 0..n {
                    let file = &file;
                    std::thread::Builder::new()
                        .name(format!("contender-{me}"))
                        .spawn_scoped(s, move || contend(file, lock, me, n))
                        .expect("spawning a contender thread");
                }
            });
        }
        None => {
            let (me, n) = who.split_once('/').expect("contender `index/count`");
            let parse = |v: &str| v.parse::<u32>().expect("contender index and count");
            contend(&file, lock, parse(me), parse(n));
        }
    }
    std::process::exit(0);
}

/// Contender `me`'s loop, on the calling thread: ready, the gate, then take and give back
/// `lock` until `stop`; leaves its counts in the file.
fn contend(file: &SharedFile, lock: Lock, me: u32, n: u32) {
    // As many contenders as CPUs (or fewer): contender `me` on the `me`-th, so that they
    // contend for the whole round. Left to the scheduler, two contenders on two CPUs
    // sometimes shared one for a time slice, during which one took the lock unopposed:
    // that flattered throughput (up to 2x) and moved fairness by as much between rounds.
    // More contenders than CPUs are left to the scheduler (oversubscription is the point).
    let cpus = crate::allowed_cpus();
    if n as usize <= cpus.len() {
        crate::pin(&[cpus[me as usize]]);
    }
    let ctx_before = context_switches();
    file.word(READY).fetch_add(1, Ordering::AcqRel);
    while file.word(GATE).load(Ordering::Acquire) == 0 {
        futex_wait(file.word(GATE), 0);
    }
    let (stop, last, changes) = (file.word(STOP), file.word(LAST_OWNER), file.word(CHANGES));
    let mut count: u32 = 0;
    while stop.load(Ordering::Relaxed) == 0 {
        let ticket = file.acquire(lock);
        // The critical section: note the owner (only ever touched under the lock).
        if last.load(Ordering::Relaxed) != me + 1 {
            last.store(me + 1, Ordering::Relaxed);
            changes.store(changes.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        file.release(lock, ticket);
        count = count.wrapping_add(1);
    }
    let ctx = context_switches().saturating_sub(ctx_before);
    file.word(COUNTS + 2 * me as usize)
        .store(count, Ordering::Release);
    file.word(COUNTS + 2 * me as usize + 1)
        .store(u32::try_from(ctx).unwrap_or(u32::MAX), Ordering::Release);
}

/// Voluntary + involuntary context switches of the calling thread so far (a process's
/// `/proc/self/status` counts its main thread only).
fn context_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
        .sum()
}
