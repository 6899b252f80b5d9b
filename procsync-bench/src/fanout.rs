//! `fanout/K-waiters` (procsync-bench/README.md, "Scenarios"): one `set` of a manual-reset
//! event releases K waiting processes (K = 1, 4, 16, 64); the baseline is one `FUTEX_WAKE` of
//! every waiter sleeping on one shared word. The figure is the time from just before the
//! signalling call to the moment the *last* waiter has returned from its wait, per round.
//!
//! What it owns: the waiter processes' loops and the rounds. What it must not do: assert
//! anything about the figures.
//!
//! Both sides have their K waiters alive at once and take turns, round by round. Before
//! each round the parent knows every waiter is about to sleep (procsync: the event's
//! `waiters()` count; futex: a counter each waiter raises right before `FUTEX_WAIT`) and
//! then leaves them 1 ms to get there, the same on both sides. Each waiter writes the
//! `CLOCK_MONOTONIC` time at which its wait returned into its own slot; the round's figure
//! is the latest of them minus the time taken before the signal. Then the parent re-arms:
//! it resets the event, clears the counters and bumps a generation word the waiters sleep
//! on between rounds.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use procsync::{Event, WaitOutcome};

use super::{DIR_VAR, Report, Shm, child_command, futex_wait, futex_wake_all};

// Layout of a side's shared file (u32 words; u64 slots from `STAMPS`, 8-aligned).
const GEN: usize = 0;
const READY: usize = 1;
const SLEEPERS: usize = 2;
const WOKE: usize = 3;
const FIRE: usize = 4;
/// Word index of waiter i's wake time (u64, two words).
const STAMPS: usize = 16;
const FILE_LEN: usize = 4096;

/// Waiter counts measured.
const FAN: [usize; 4] = [1, 4, 16, 64];

/// One side of the scenario: K waiter processes and their shared file.
struct Side {
    shm: Shm,
    event: Option<Event>,
    children: Vec<Child>,
    k: usize,
}

impl Side {
    fn start(kind: &str, k: usize) -> Side {
        let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("bench dir"));
        let path = dir.join(format!("fanout-{kind}-{k}"));
        let shm = Shm::file(&path, FILE_LEN, true);
        let event = (kind == "procsync").then(|| {
            Event::create(&event_name(&path), true, false)
                .expect("creating the event")
                .0
        });
        let children = (0..k)
            .map(|i| {
                child_command(&format!("fanout:{kind}:{i}:{}", path.display()), None)
                    .spawn()
                    .expect("spawning a waiter")
            })
            .collect();
        let mut side = Side {
            shm,
            event,
            children,
            k,
        };
        side.until(READY, k, "the waiters to start");
        side
    }

    /// Waits (polling, outside any timing) until word `w` reaches `n`.
    fn until(&mut self, w: usize, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while (self.shm.word(w).load(Ordering::Acquire) as usize) < n {
            if let Some(i) = self
                .children
                .iter_mut()
                .position(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                panic!("fan-out waiter {i} exited while waiting for {what}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// One round: returns the time from the signal to the last waiter's return.
    fn round(&mut self) -> Duration {
        // Every waiter is about to sleep (or asleep): then 1 ms to get there.
        match &self.event {
            Some(e) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while e.waiters().expect("waiters") < self.k {
                    assert!(Instant::now() < deadline, "waiters never queued");
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            None => self.until(SLEEPERS, self.k, "the waiters to sleep"),
        }
        std::thread::sleep(Duration::from_millis(1));
        let t0 = mono_ns();
        match &self.event {
            Some(e) => {
                e.set().expect("set");
            }
            None => {
                self.shm.word(FIRE).fetch_add(1, Ordering::AcqRel);
                futex_wake_all(self.shm.word(FIRE));
            }
        }
        self.until(WOKE, self.k, "the waiters to wake");
        let last = (0..self.k)
            .map(|i| stamp(&self.shm, i).load(Ordering::Acquire))
            .max()
            .unwrap_or(t0);
        // Re-arm for the next round.
        if let Some(e) = &self.event {
            e.reset().expect("reset");
        }
        self.shm.word(SLEEPERS).store(0, Ordering::Release);
        self.shm.word(WOKE).store(0, Ordering::Release);
        self.shm.word(GEN).fetch_add(1, Ordering::AcqRel);
        futex_wake_all(self.shm.word(GEN));
        Duration::from_nanos(last.saturating_sub(t0))
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the fan-out scenarios that `wanted` accepts (by group name, `fanout/K-waiters`),
/// `rounds` rounds per side.
pub fn run(report: &mut Report, rounds: usize, wanted: &dyn Fn(&str) -> bool) {
    for k in FAN {
        let group = format!("fanout/{k}-waiters");
        if !wanted(&group) {
            continue;
        }
        let mut s = Side::start("procsync", k);
        let mut b = Side::start("futex", k);
        let (mut xs, mut ys) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for r in 0..rounds {
            if r % 2 == 0 {
                xs.push(s.round());
                ys.push(b.round());
            } else {
                ys.push(b.round());
                xs.push(s.round());
            }
        }
        report.latency(
            &group,
            "procsync-manual-event",
            "futex-wake-all",
            "set→last woke",
            &xs,
            &ys,
        );
    }
}

/// The waiter process `fanout:<kind>:<index>:<path>` (see [`crate::child_main`]).
pub(crate) fn child(kind: &str, index: &str, path: &str) -> ! {
    let i: usize = index.parse().expect("waiter index");
    let path = Path::new(path);
    let shm = Shm::file(path, FILE_LEN, false);
    let event =
        (kind == "procsync").then(|| Event::open(&event_name(path)).expect("opening the event"));
    shm.word(READY).fetch_add(1, Ordering::AcqRel);
    loop {
        let generation = shm.word(GEN).load(Ordering::Acquire);
        match &event {
            Some(e) => {
                assert_eq!(e.wait(None).expect("wait"), WaitOutcome::Signaled(0));
            }
            None => {
                let fire = shm.word(FIRE);
                let f = fire.load(Ordering::Acquire);
                shm.word(SLEEPERS).fetch_add(1, Ordering::AcqRel);
                while fire.load(Ordering::Acquire) == f {
                    futex_wait(fire, f);
                }
            }
        }
        stamp(&shm, i).store(mono_ns(), Ordering::Release);
        shm.word(WOKE).fetch_add(1, Ordering::AcqRel);
        while shm.word(GEN).load(Ordering::Acquire) == generation {
            futex_wait(shm.word(GEN), generation);
        }
    }
}

fn event_name(path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file name");
    format!("Local\\bench-{file}")
}

fn stamp(shm: &Shm, i: usize) -> &std::sync::atomic::AtomicU64 {
    shm.word64(STAMPS / 2 + i)
}

/// `CLOCK_MONOTONIC` in nanoseconds (comparable across processes, unlike `Instant`).
fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
