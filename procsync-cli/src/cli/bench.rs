//! `procsync bench`: the scenarios of `cargo bench` (benches/wake.rs), without
//! criterion, for users: each procsync operation next to its baseline measured in the
//! same run, printed as one table with the ratios, then the goals
//! (3: wake latency, 4: abandonment latency, 6: timer lateness); with `--json`, the
//! same results as one JSON document (procsync-bench/src/json.rs) instead.
//!
//! The scenarios themselves live in `bench/scenarios.rs`, shared with the criterion
//! benches. Partner processes are this binary again, as the hidden `bench-child`
//! subcommand (with `PROCSYNC_BENCH_CHILD` saying which partner); none outlives the
//! run (death signal, kill and reap), and the temporary `PROCSYNC_ROOT` is removed at
//! the end, on failure, and on SIGINT/SIGTERM/SIGHUP.

use procsync_bench as scenarios;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Instant;

use scenarios::{
    Abandonment, BenchEnv, CAbiMutexOps, EventOps, MutexOps, Plan, Report, SemaphoreOps,
    TimerLateness, WaitAllOps,
};

use super::exit;

/// Options of `procsync bench`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// A short run (a few seconds): fewer rounds and shorter blocks; a first look, not
    /// numbers to quote.
    #[arg(long)]
    quick: bool,
    /// Run only the scenarios whose name contains this text (e.g. `wake/`, `timer`,
    /// `abandon`); repeatable.
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Print the results as one JSON document on standard output instead of the table:
    /// `machine` and `results`, one object per scenario row with the stable fields
    /// `scenario`, `impl`, `baseline`, `measure`, `median_ns`, `p99_ns`, `ratio`, `p25`,
    /// `p75` (see procsync-bench/README.md). Progress still goes to standard error.
    #[arg(long)]
    json: bool,
}

/// Runs every scenario and prints the table; exit 1 if a scenario failed.
pub fn run(opts: &Options) -> ExitCode {
    let plan = if opts.quick { Plan::QUICK } else { Plan::FULL };
    let env = BenchEnv::setup(&["bench-child"]);
    let run_kind = if opts.quick { "quick" } else { "full" };
    // Probed before the run, so that the load average is the machine's, not ours.
    let machine = scenarios::Machine::probe();
    if !opts.json {
        println!("procsync bench ({run_kind} run): {}", scenarios::machine());
    }
    let started = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_all(&plan, &opts.only)));
    drop(env);
    match result {
        Ok(report) if opts.json => {
            print!("{}", report.to_json(&machine, run_kind));
            eprintln!(
                "procsync bench: total time {:.1} s",
                started.elapsed().as_secs_f64()
            );
            exit::code(exit::OK)
        }
        Ok(report) => {
            report.print();
            println!();
            println!("total time {:.1} s", started.elapsed().as_secs_f64());
            exit::code(exit::OK)
        }
        Err(_) => {
            eprintln!("procsync bench: a scenario failed (see above)");
            exit::code(exit::FAILURE)
        }
    }
}

fn run_all(plan: &Plan, only: &[String]) -> Report {
    let mut report = Report::default();
    // Whether to run the scenario(s) `names`, saying so on stderr.
    let step = |names: &[&str]| {
        let run = only.is_empty() || names.iter().any(|n| only.iter().any(|o| n.contains(o)));
        if run {
            eprintln!("procsync bench: {} …", names.join(", "));
        }
        run
    };
    if step(&["mutex/uncontended"]) {
        MutexOps::create().paired(&mut report, plan);
    }
    if step(&["mutex/c-abi"]) {
        CAbiMutexOps::create().paired(&mut report, plan);
    }
    if step(&["semaphore/uncontended"]) {
        SemaphoreOps::create().paired(&mut report, plan);
    }
    if step(&["event/set-wait0", "event/set-reset"]) {
        EventOps::create().paired(&mut report, plan);
    }
    for (group, at) in scenarios::placements() {
        if step(&[group]) {
            scenarios::paired_ping_pong(&mut report, plan, group, at);
        }
    }
    if step(&["async/wake"]) {
        scenarios::async_wake(&mut report, plan);
    }
    if step(&["async/pending"]) {
        scenarios::async_pending(&mut report);
    }
    if step(&["wait_all/8-semaphores"]) {
        WaitAllOps::create().paired(&mut report, plan);
    }
    if step(&["timer/lateness"]) {
        TimerLateness::create().paired(&mut report, plan);
    }
    if step(&["abandon/kill"]) {
        Abandonment::create().paired(&mut report, plan);
    }
    scenarios::names(&mut report, plan, &|group| step(&[group]));
    // One scenario per process count: each is its own step.
    scenarios::contention(&mut report, plan.contention, &|group| step(&[group]));
    scenarios::fanout(&mut report, plan.fanout_rounds, &|group| step(&[group]));
    scenarios::scale(&mut report, plan.scale, plan.uncontended, &|group| {
        step(&[group])
    });
    // Against a private one-member etcd, when an etcd binary is installed.
    scenarios::etcd(&mut report, plan.etcd, &|group| step(&[group]));
    report
}

/// The hidden `bench-child` subcommand: one partner process of `procsync bench`.
pub fn child() -> ExitCode {
    match scenarios::child_spec() {
        Some(spec) => scenarios::child_main(&spec),
        None => {
            eprintln!(
                "procsync bench-child: internal to `procsync bench` ({} is not set)",
                scenarios::CHILD_VAR
            );
            exit::code(exit::USAGE)
        }
    }
}
