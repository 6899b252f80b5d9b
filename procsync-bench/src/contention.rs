//! `contention/mutex-N-procs` (procsync-bench/README.md, "Scenarios"): N processes (2, 4, 8)
//! lock and unlock one mutex in a loop with a short critical section, for a fixed time after a
//! common start gate; procsync's mutex against a robust process-shared pthread mutex (which
//! barges) and a strict FIFO futex hand-off lock, in the same rounds.
//!
//! What it owns: the contender processes' loop, the three locks' shared layout, and the
//! figures of a round (acquisitions per second, owner changes per 1 000 acquisitions,
//! context switches per acquisition, fairness = max/min acquisitions per process). What it
//! must not do: assert anything about the figures (the report states them).
//!
//! A round of one lock: the parent spawns N contenders (this executable again, see
//! [`crate::child_main`]), each opens the lock, says it is ready and sleeps on the gate;
//! the parent opens the gate, sleeps for the round's duration, raises `stop`, and reaps
//! them. Each contender counts its acquisitions and reads its own context switches
//! (`/proc/self/status`) before and after. The critical section notes the owner: when it
//! differs from the previous one, the owner-change counter grows (both are only touched
//! while the lock is held). Rounds rotate the order of the three locks.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use procsync::{Mutex, WaitOutcome};

use super::{
    DIR_VAR, PairStats, PthreadMutex, Report, Shm, child_command, futex_wait, futex_wake_all,
    quantile,
};

/// The lock implementations measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lock {
    Procsync,
    PthreadRobust,
    Fifo,
}

impl Lock {
    const ALL: [Lock; 3] = [Lock::Procsync, Lock::PthreadRobust, Lock::Fifo];

    fn code(self) -> &'static str {
        match self {
            Lock::Procsync => "procsync",
            Lock::PthreadRobust => "pthread-robust",
            Lock::Fifo => "fifo-futex-lock",
        }
    }

    fn from_code(s: &str) -> Lock {
        Lock::ALL
            .into_iter()
            .find(|l| l.code() == s)
            .unwrap_or_else(|| panic!("unknown lock `{s}`"))
    }
}

// Layout of the shared file (u32 words).
const GATE: usize = 0;
const STOP: usize = 1;
const READY: usize = 2;
const LAST_OWNER: usize = 3;
const CHANGES: usize = 4;
/// Per contender i: acquisitions at `COUNTS + 2i`, context switches at `COUNTS + 2i + 1`.
const COUNTS: usize = 16;
/// Byte offset of the pthread mutex (page 1).
const PTHREAD_AT: usize = 4096;
/// Word index of the FIFO lock (page 2): `FIFO_NEXT`, then [`SLOTS`] slot words.
const FIFO_NEXT: usize = 2048;
const SLOTS: usize = 64;
const FILE_LEN: usize = 3 * 4096;

/// Bit 31 of a FIFO slot word: its waiter sleeps (or is about to) in `FUTEX_WAIT`.
const SLEEPING: u32 = 1 << 31;
const TICKET: u32 = !SLEEPING;

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

/// Runs the contention scenarios for 2, 4 and 8 processes that `wanted` accepts (by group
/// name, `contention/mutex-N-procs`) and adds their rows.
pub fn run(report: &mut Report, plan: ContentionPlan, wanted: &dyn Fn(&str) -> bool) {
    for n in [2usize, 4, 8] {
        let group = format!("contention/mutex-{n}-procs");
        if !wanted(&group) {
            continue;
        }
        let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("bench dir"));
        let path = dir.join(format!("contend-{n}"));
        let name = format!("Local\\bench-contend-{n}");
        let (procsync_mutex, _) = Mutex::create(&name, false).expect("creating the mutex");
        let shm = Shm::file(&path, FILE_LEN, true);
        // SAFETY: page 1 of a fresh zeroed shared mapping, reserved for this mutex.
        let pthread = unsafe { PthreadMutex::init_at(shm.ptr.cast::<u8>().add(PTHREAD_AT), true) };
        init_fifo(&shm);
        let mut figures: Vec<[Figures; 3]> = Vec::with_capacity(plan.rounds);
        for r in 0..plan.rounds {
            let mut f = [None; 3];
            for k in 0..3 {
                let i = (k + r) % 3;
                f[i] = Some(round(Lock::ALL[i], n, &shm, &path, plan.round));
            }
            figures.push(f.map(|x| x.expect("every lock ran")));
        }
        for (b, baseline) in [(1, Lock::PthreadRobust), (2, Lock::Fifo)] {
            add_row(report, &group, baseline, &figures, b);
        }
        drop(pthread);
        drop(procsync_mutex);
        let _ = std::fs::remove_file(&path);
    }
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
    let mut ratios: Vec<f64> = figures
        .iter()
        .map(|r| r[0].ns_per_acquisition / r[b].ns_per_acquisition)
        .collect();
    let stats = PairStats {
        subject_ns: med(&|f| f.ns_per_acquisition, 0),
        baseline_ns: med(&|f| f.ns_per_acquisition, b),
        ratio: [
            quantile(&mut ratios, 0.25),
            quantile(&mut ratios, 0.5),
            quantile(&mut ratios, 0.75),
        ],
        rounds: figures.len(),
    };
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

/// Slot i starts out holding the ticket that used it "before" ticket i, so that only
/// ticket 0 is served at first.
fn init_fifo(shm: &Shm) {
    shm.word(FIFO_NEXT).store(0, Ordering::Relaxed);
    for i in 0..SLOTS {
        let before = (i as u32).wrapping_sub(SLOTS as u32) & TICKET;
        shm.word(FIFO_NEXT + 1 + i)
            .store(if i == 0 { 0 } else { before }, Ordering::Release);
    }
}

/// One round of `lock` with `n` contenders.
fn round(lock: Lock, n: usize, shm: &Shm, path: &Path, length: Duration) -> Figures {
    for w in [GATE, STOP, READY, LAST_OWNER, CHANGES] {
        shm.word(w).store(0, Ordering::Relaxed);
    }
    for i in 0..2 * n {
        shm.word(COUNTS + i).store(0, Ordering::Relaxed);
    }
    let mut children: Vec<Child> = (0..n)
        .map(|i| {
            child_command(
                &format!("contend:{}:{i}:{}", lock.code(), path.display()),
                None,
            )
            .spawn()
            .expect("spawning a contender")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shm.word(READY).load(Ordering::Acquire) < n as u32 {
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
    shm.word(GATE).store(1, Ordering::Release);
    futex_wake_all(shm.word(GATE));
    std::thread::sleep(length);
    shm.word(STOP).store(1, Ordering::Release);
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
        .map(|i| u64::from(shm.word(COUNTS + 2 * i).load(Ordering::Acquire)))
        .collect();
    let ctx: u64 = (0..n)
        .map(|i| u64::from(shm.word(COUNTS + 2 * i + 1).load(Ordering::Acquire)))
        .sum();
    let total: u64 = counts.iter().sum::<u64>().max(1);
    let (max, min) = (
        *counts.iter().max().expect("n > 0"),
        *counts.iter().min().expect("n > 0"),
    );
    Figures {
        ns_per_acquisition: elapsed.as_nanos() as f64 / total as f64,
        acquisitions_per_s: total as f64 / elapsed.as_secs_f64(),
        owner_changes_per_1000: f64::from(shm.word(CHANGES).load(Ordering::Acquire)) * 1000.0
            / total as f64,
        ctx_switches_per_acquisition: ctx as f64 / total as f64,
        // A process that never got the lock makes the ratio infinite: report it as such.
        fairness: if min == 0 {
            f64::INFINITY
        } else {
            max as f64 / min as f64
        },
    }
}

/// The contender process `contend:<lock>:<index>:<path>` (see [`crate::child_main`]).
pub(crate) fn child(lock: &str, index: &str, path: &str) -> ! {
    let lock = Lock::from_code(lock);
    let me: u32 = index.parse().expect("contender index");
    let path = Path::new(path);
    let shm = Shm::file(path, FILE_LEN, false);
    let n_tag = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_prefix("contend-"))
        .expect("contend-N file");
    let procsync_mutex = (lock == Lock::Procsync)
        .then(|| Mutex::open(&format!("Local\\bench-contend-{n_tag}")).expect("opening the mutex"));
    // SAFETY: page 1 of the shared file, initialised by the parent before we started.
    let pthread = unsafe { PthreadMutex::attach_at(shm.ptr.cast::<u8>().add(PTHREAD_AT)) };
    let ctx_before = context_switches();
    shm.word(READY).fetch_add(1, Ordering::AcqRel);
    while shm.word(GATE).load(Ordering::Acquire) == 0 {
        futex_wait(shm.word(GATE), 0);
    }
    let (stop, last, changes) = (shm.word(STOP), shm.word(LAST_OWNER), shm.word(CHANGES));
    let mut count: u32 = 0;
    let mut ticket = 0;
    while stop.load(Ordering::Relaxed) == 0 {
        match lock {
            Lock::Procsync => {
                let m = procsync_mutex.as_ref().expect("opened");
                let r = m.wait(None).expect("lock");
                debug_assert_eq!(r, WaitOutcome::Signaled(0));
            }
            Lock::PthreadRobust => pthread.lock(),
            Lock::Fifo => ticket = fifo_lock(&shm),
        }
        // The critical section: note the owner (only ever touched under the lock).
        if last.load(Ordering::Relaxed) != me + 1 {
            last.store(me + 1, Ordering::Relaxed);
            changes.store(changes.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        match lock {
            Lock::Procsync => {
                procsync_mutex
                    .as_ref()
                    .expect("opened")
                    .unlock()
                    .expect("unlock");
            }
            Lock::PthreadRobust => pthread.unlock(),
            Lock::Fifo => fifo_unlock(&shm, ticket),
        }
        count = count.wrapping_add(1);
    }
    let ctx = context_switches().saturating_sub(ctx_before);
    shm.word(COUNTS + 2 * me as usize)
        .store(count, Ordering::Release);
    shm.word(COUNTS + 2 * me as usize + 1)
        .store(u32::try_from(ctx).unwrap_or(u32::MAX), Ordering::Release);
    std::process::exit(0);
}

/// Strict FIFO: takes a ticket and sleeps on its own slot until the previous holder hands
/// the lock to that ticket. Returns the ticket (the unlock hands off to the next one).
fn fifo_lock(shm: &Shm) -> u32 {
    let t = shm.word(FIFO_NEXT).fetch_add(1, Ordering::AcqRel) & TICKET;
    let slot = slot(shm, t);
    loop {
        let v = slot.load(Ordering::Acquire);
        if v & TICKET == t {
            return t;
        }
        if v & SLEEPING == 0
            && slot
                .compare_exchange(v, v | SLEEPING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        futex_wait(slot, v | SLEEPING);
    }
}

/// Hands the lock to ticket `t + 1`, waking its waiter only if it sleeps.
fn fifo_unlock(shm: &Shm, t: u32) {
    let next = t.wrapping_add(1) & TICKET;
    let slot = slot(shm, next);
    if slot.swap(next, Ordering::AcqRel) & SLEEPING != 0 {
        super::futex_wake(slot);
    }
}

fn slot(shm: &Shm, ticket: u32) -> &AtomicU32 {
    shm.word(FIFO_NEXT + 1 + (ticket as usize % SLOTS))
}

/// Voluntary + involuntary context switches of this process so far.
fn context_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
        .sum()
}
