//! procsync benchmarks, each group with its baseline measured in the same run
//! (see `procsync-bench/README.md` for scenarios, parameters and recorded ratios).
//!
//! * `mutex/uncontended/*`: acquire + release, vs a process-shared pthread mutex.
//! * `semaphore/uncontended/*`: wait(0) + release(1), vs a process-shared `sem_t`.
//! * `event/set-wait0/*`: set + wait(0) on an auto-reset event, vs eventfd write + read
//!   (and, in the paired table, an atomic floor: swap + compare-exchange).
//! * `event/set-reset/*`: set + reset with no waiter, vs eventfd and a bare atomic flag.
//! * `wake/ping-pong-{same,cross}-cpu/*`: cross-process round trip (two processes, two
//!   auto-reset events) with set + wait on 1 object, signal_and_wait, and wait_any over
//!   8 and 64, vs a raw shared futex that wakes only a sleeping partner (as procsync's
//!   `set()` skips the wake when nobody waits); both processes pinned to one CPU, or to two.
//! * `wait_all/8-semaphores/*`: wait_all over 8 semaphores vs 8 single waits.
//! * `timer/lateness-1ms/*`: one-shot 1 ms timers, procsync vs timerfd; the "time" criterion
//!   reports is the mean *lateness* per timer (due → waiter returns), not the period.
//! * `abandon/kill/*`: kill → a blocked wait returns `Abandoned`, vs kill → `waitpid`
//!   returns; the "time" is the mean latency per kill (each iteration spawns a holder).
//!
//! After criterion's report, a full `cargo bench` run prints the table of *paired*
//! ratios (subject and baseline in alternating blocks, and the latency scenarios with
//! both sides sampled in the same rounds): the numbers to quote. It is the same table
//! `procsync bench` prints: the scenarios live in `src/cli/bench/scenarios.rs`, shared
//! with the binary.
//!
//! The partner processes are this very binary, re-executed with `PROCSYNC_BENCH_CHILD`
//! set: `main` checks it before criterion starts, runs the partner, and never returns.

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};

use procsync_bench as scenarios;

use scenarios::{
    Abandonment, BenchEnv, EventOps, FutexPingPong, Mode, MutexOps, PingPong, Placement, Plan,
    ProcsyncPingPong, Report, SemaphoreOps, TimerLateness, WaitAllOps,
};

fn main() {
    if let Some(spec) = scenarios::child_spec() {
        scenarios::child_main(&spec);
    }
    // Partners are this binary with no arguments (and PROCSYNC_BENCH_CHILD set).
    let env = BenchEnv::setup(&[]);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(20_000)
        .configure_from_args();
    let mut t = Paired::from_args();
    if t.enabled {
        println!("machine: {}", scenarios::machine());
    }
    mutex_uncontended(&mut c, &mut t);
    semaphore_uncontended(&mut c, &mut t);
    events(&mut c, &mut t);
    wake_ping_pong(&mut c, &mut t);
    wait_all_8(&mut c, &mut t);
    timer_lateness(&mut c, &mut t);
    abandonment(&mut c, &mut t);
    c.final_summary();
    t.print();
    drop(env);
}

// ---------------------------------------------------------------------------------
// 1, 2: uncontended operations
// ---------------------------------------------------------------------------------

fn mutex_uncontended(c: &mut Criterion, t: &mut Paired) {
    let ops = MutexOps::create();
    let mut g = c.benchmark_group("mutex/uncontended");
    g.bench_function("procsync", |b| b.iter(|| ops.procsync()));
    g.bench_function("pthread-pshared", |b| b.iter(|| ops.pthread()));
    g.bench_function("pthread-pshared-robust", |b| {
        b.iter(|| ops.pthread_robust())
    });
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

fn semaphore_uncontended(c: &mut Criterion, t: &mut Paired) {
    let ops = SemaphoreOps::create();
    let mut g = c.benchmark_group("semaphore/uncontended");
    g.bench_function("procsync", |b| b.iter(|| ops.procsync()));
    g.bench_function("posix-sem-pshared", |b| b.iter(|| ops.posix()));
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

fn events(c: &mut Criterion, t: &mut Paired) {
    let ops = EventOps::create();
    let mut g = c.benchmark_group("event/set-wait0");
    g.bench_function("procsync", |b| b.iter(|| ops.set_wait0()));
    g.bench_function("eventfd", |b| b.iter(|| ops.eventfd()));
    g.finish();
    let mut g = c.benchmark_group("event/set-reset");
    g.bench_function("procsync", |b| b.iter(|| ops.set_reset()));
    g.bench_function("eventfd", |b| b.iter(|| ops.eventfd()));
    g.bench_function("atomic-flag", |b| b.iter(|| ops.atomic_flag()));
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

// ---------------------------------------------------------------------------------
// 3: cross-process wake latency (ping-pong)
// ---------------------------------------------------------------------------------

fn bench_ping_pong<P: PingPong>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    at: Placement,
    make: impl Fn(Option<usize>) -> P,
) {
    // Spawned on first use, so a filtered-out benchmark starts no process; dropped
    // (killed and reaped) when this function returns.
    let mut pp: Option<P> = None;
    let saved = scenarios::allowed_cpus();
    g.bench_function(id, |b| {
        let p = pp.get_or_insert_with(|| {
            scenarios::pin(&[at.parent]);
            make(Some(at.child))
        });
        b.iter_custom(|iters| {
            let t = std::time::Instant::now();
            p.round_trips(iters);
            t.elapsed()
        })
    });
    drop(pp);
    scenarios::pin(&saved);
}

fn wake_ping_pong(c: &mut Criterion, t: &mut Paired) {
    for (group, at) in scenarios::placements() {
        let mut g = c.benchmark_group(group);
        bench_ping_pong(&mut g, "futex-wake-if-waiting", at, |cpu| {
            FutexPingPong::new("criterion", cpu)
        });
        bench_ping_pong(&mut g, "procsync-wait", at, |cpu| {
            ProcsyncPingPong::new("w1", 1, Mode::SetWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-signal_and_wait", at, |cpu| {
            ProcsyncPingPong::new("saw", 1, Mode::SignalAndWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-wait_any-8", at, |cpu| {
            ProcsyncPingPong::new("any8", 8, Mode::SetWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-wait_any-64", at, |cpu| {
            ProcsyncPingPong::new("any64", 64, Mode::SetWait, cpu)
        });
        g.finish();
        if t.enabled {
            scenarios::paired_ping_pong(&mut t.report, &t.plan, group, at);
        }
    }
}

// ---------------------------------------------------------------------------------
// 4: wait_all on 8 objects
// ---------------------------------------------------------------------------------

fn wait_all_8(c: &mut Criterion, t: &mut Paired) {
    let ops = WaitAllOps::create();
    let mut g = c.benchmark_group("wait_all/8-semaphores");
    g.bench_function("procsync-wait_all", |b| b.iter(|| ops.wait_all()));
    g.bench_function("procsync-8-waits", |b| b.iter(|| ops.single_waits()));
    g.bench_function("posix-sem-8-trywait-post", |b| b.iter(|| ops.posix()));
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

// ---------------------------------------------------------------------------------
// 5, 6: latencies (timer lateness, abandonment)
// ---------------------------------------------------------------------------------

/// Criterion settings for benchmarks whose `iter_custom` returns a latency sum rather
/// than the elapsed time: the warm-up and measurement "times" are latency totals, so
/// they are tiny, and flat sampling keeps the iteration count small.
fn latency_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    warm_up: Duration,
    measure: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measure)
        .sampling_mode(SamplingMode::Flat);
    g
}

fn timer_lateness(c: &mut Criterion, t: &mut Paired) {
    let ops = TimerLateness::create();
    let due = Duration::from_millis(1);
    // ~50-100 µs of lateness per timer: a few hundred timers of warm-up, 500-1000
    // measured (1.1 ms each: about 1 s per benchmark).
    let mut g = latency_group(
        c,
        "timer/lateness-1ms",
        Duration::from_millis(20),
        Duration::from_millis(50),
    );
    g.bench_function("procsync", |b| {
        b.iter_custom(|n| (0..n).map(|_| ops.procsync(due)).sum())
    });
    g.bench_function("timerfd", |b| {
        b.iter_custom(|n| (0..n).map(|_| ops.timerfd(due)).sum())
    });
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

fn abandonment(c: &mut Criterion, t: &mut Paired) {
    let ops = Abandonment::create();
    // ~200-300 µs per kill and ~5 ms per round (a holder process is spawned each time):
    // ~20 rounds of warm-up, ~100 measured (about 0.6 s per benchmark).
    let mut g = latency_group(
        c,
        "abandon/kill",
        Duration::from_millis(5),
        Duration::from_millis(25),
    );
    g.bench_function("procsync-wait-abandoned", |b| {
        b.iter_custom(|n| (0..n).map(|_| ops.round().0).sum())
    });
    g.bench_function("waitpid", |b| {
        b.iter_custom(|n| (0..n).map(|_| ops.round().1).sum())
    });
    g.finish();
    if t.enabled {
        ops.paired(&mut t.report, &t.plan);
    }
}

// ---------------------------------------------------------------------------------
// Paired ratios
// ---------------------------------------------------------------------------------

/// The interleaved comparison that backs the ratios of `procsync-bench/README.md`, run after
/// each group's criterion benchmarks and printed after criterion's report, on a full
/// benchmark run only (`cargo bench`: `--bench`, no filter, not
/// `--test`/`--list`/`--profile-time`).
struct Paired {
    enabled: bool,
    plan: Plan,
    report: Report,
}

/// Criterion options that take a value (so that value is not mistaken for a filter).
const VALUE_OPTS: &[&str] = &[
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--plotting-backend",
    "--output-format",
    "--format",
];

impl Paired {
    fn from_args() -> Paired {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // Without `--bench` (as under `cargo test --benches`) criterion runs in test mode.
        let mut enabled = args.iter().any(|a| a == "--bench");
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if matches!(
                a,
                "--test" | "--list" | "--profile-time" | "--ignored" | "--exact"
            ) {
                enabled = false;
            } else if VALUE_OPTS.contains(&a) {
                i += 1;
            } else if !a.starts_with('-') {
                enabled = false; // a filter: only part of the benchmarks run
            }
            i += 1;
        }
        Paired {
            enabled,
            plan: Plan::FULL,
            report: Report::default(),
        }
    }

    fn print(&self) {
        if self.enabled {
            println!();
            println!("paired ratios (the table of `procsync bench`)");
            self.report.print();
        }
    }
}
