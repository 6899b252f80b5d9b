//! Thousands of concurrent async waits on distinct objects: all complete when
//! signalled, with the thread count (from /proc/self/status) within the documented
//! bound of ⌈objects / 63⌉ reactor threads beyond the runtime's own.

use std::sync::Arc;

use procsync::{Handle, WaitOutcome};
use procsync_tokio as pt;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::basic::{event, signaled};
use crate::harness::{multi_thread, threads, until_async};

const WANTED: usize = 10_000;

/// Each unnamed object costs one descriptor in procsync (its memfd, which is its
/// first handle's value; the waits here share `Arc<Handle>`s and add none), each
/// reactor one more for its control event. Raises the limit to fit `WANTED` objects where permitted
/// (CAP_SYS_RESOURCE), else takes as many as the hard limit allows, saying so.
fn objects_that_fit() -> usize {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0) as u64;
    let need = |n: u64| open + 64 + n + n.div_ceil(63);
    let wanted = WANTED as u64;
    let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
    let raised = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(need(wanted)),
            maximum: Some(need(wanted).max(hard)),
        },
    );
    let limit = match raised {
        Ok(()) => need(wanted),
        Err(_) => {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            );
            hard
        }
    };
    let mut n = wanted;
    while need(n) > limit {
        n -= 1;
    }
    println!(
        "descriptor limit {limit}: {n} objects{}",
        if n < wanted {
            " (raising the hard limit needs CAP_SYS_RESOURCE)"
        } else {
            ""
        }
    );
    n as usize
}

pub fn ten_thousand_waits_on_distinct_objects_bounded_threads() {
    let n = objects_that_fit();
    assert!(
        n >= 1000,
        "the descriptor limit allows only {n} objects; raise `ulimit -n`"
    );
    multi_thread(2).block_on(async {
        let events: Vec<Arc<Handle>> = (0..n).map(|_| event(false, false)).collect();
        let base = threads();
        let rss_before = rss_kib();
        assert_eq!(pt::reactor_threads(), 0);
        let bound = n.div_ceil(pt::OBJECTS_PER_REACTOR);
        for round in 0..2 {
            pend_check_release(&events, round, rss_before, "task, future, reactor share", |now| {
                println!(
                    "round {round}: {n} pending waits, {} reactor threads, {now} threads (runtime and main: {base})",
                    pt::reactor_threads()
                );
                assert_eq!(pt::reactor_threads(), bound, "reactors are packed 63 objects each");
                assert!(
                    now <= base + bound,
                    "{now} threads for {n} waits; the bound is {base} + {bound}"
                );
            })
            .await;
            // Idle reactors exit (REACTOR_IDLE), so the next round starts from none.
            until_async("the idle reactors exit", || {
                pt::reactor_threads() == 0 && crate::harness::procsync_threads().is_empty()
            })
            .await;
            assert_eq!(threads(), base, "only the runtime's threads are left");
            assert!(events.iter().all(|e| e.waiters().unwrap() == 0));
        }
    });
}

/// `VmRSS:` of /proc/self/status, in KiB.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS: line")
}

/// Past the cap on reactor threads, a wait fails with a clear error and registers
/// nothing; the waits already pending are unaffected.
pub fn reactor_cap_is_a_clear_error() {
    multi_thread(2).block_on(async {
        pt::set_max_reactor_threads(1);
        assert_eq!(pt::max_reactor_threads(), 1);
        let events: Vec<Arc<Handle>> = (0..=pt::OBJECTS_PER_REACTOR)
            .map(|_| event(false, false))
            .collect();
        let (last, first) = events.split_last().unwrap();
        let tasks: Vec<_> = first.iter().map(|e| tokio::spawn(pt::wait(e))).collect();
        until_async("63 waits queued", || {
            first.iter().all(|e| e.waiters().unwrap() == 1)
        })
        .await;
        let err = pt::wait(last).await.unwrap_err();
        assert!(matches!(err, procsync::Error::Exhausted { .. }), "{err}");
        assert!(err.to_string().contains("set_max_reactor_threads"), "{err}");
        assert_eq!(last.waiters().unwrap(), 0);
        assert_eq!(pt::reactor_threads(), 1);
        for e in first {
            e.set().unwrap();
        }
        for t in tasks {
            assert_eq!(
                t.await.unwrap().unwrap().outcome(),
                WaitOutcome::Signaled(0)
            );
        }
        last.set().unwrap();
        let a = pt::wait(last).await.unwrap();
        assert_eq!(
            a.outcome(),
            WaitOutcome::Signaled(0),
            "a signaled object needs no reactor"
        );
    });
}

/// A wait-any whose objects are served by two reactors: when both are signaled at
/// once each reactor may acquire its object, exactly one reaches the future and the
/// other is given back (WY-03's "one object" across reactors, TO-06).
pub fn wait_any_across_reactors_takes_exactly_one() {
    multi_thread(2).block_on(async {
        let fillers: Vec<Arc<Handle>> = (0..pt::OBJECTS_PER_REACTOR - 1)
            .map(|_| event(false, false))
            .collect();
        let tasks: Vec<_> = fillers.iter().map(|e| tokio::spawn(pt::wait(e))).collect();
        until_async("62 objects on the first reactor", || {
            fillers.iter().all(|e| e.waiters().unwrap() == 1)
        })
        .await;
        for round in 0..20 {
            // `c` takes the first reactor's last place, `a` starts (or reuses) a second.
            let (c, a) = (event(false, false), event(false, false));
            let mut f = pt::wait_any(&[&c, &a]);
            let flag = crate::basic::poll_once(&mut f);
            until_async("both objects are waited on", || {
                c.waiters().unwrap() == 1 && a.waiters().unwrap() == 1
            })
            .await;
            assert_eq!(pt::reactor_threads(), 2);
            c.set().unwrap();
            a.set().unwrap();
            until_async("the wait completed", || flag.is_set()).await;
            let got = f.await.unwrap().index().unwrap();
            let (taken, left) = if got == 0 { (&c, &a) } else { (&a, &c) };
            until_async(
                "the other reactor gave its object back or never took it",
                || signaled(left) && a.waiters().unwrap() == 0 && c.waiters().unwrap() == 0,
            )
            .await;
            assert!(
                !signaled(taken),
                "round {round}: index {got} was consumed once"
            );
        }
        for e in &fillers {
            e.set().unwrap();
        }
        for t in tasks {
            assert_eq!(
                t.await.unwrap().unwrap().outcome(),
                WaitOutcome::Signaled(0)
            );
        }
    });
}

/// The io_uring path (the default in a runtime with I/O): 10 000 pending waits on
/// distinct objects add no thread at all (each is an io_uring futex wait on its own
/// leased wait block), all complete when signalled, each signal consumed once.
/// Prints the resident memory per pending wait.
pub fn ten_thousand_io_uring_waits_add_no_thread() {
    if !pt::io_uring_available() {
        // Loud, and fatal when the environment says io_uring must be there.
        let msg = "SKIPPED: io_uring futex waits are unavailable here (kernel < 6.7, or io_uring disabled by sysctl or seccomp)";
        assert!(
            std::env::var_os("PROCSYNC_REQUIRE_IO_URING").is_none(),
            "{msg}, and PROCSYNC_REQUIRE_IO_URING is set"
        );
        println!("{msg}");
        return;
    }
    let n = objects_that_fit();
    assert!(
        n >= 1000,
        "the descriptor limit allows only {n} objects; raise `ulimit -n`"
    );
    multi_thread(2).block_on(async {
        let events: Vec<Arc<Handle>> = (0..n).map(|_| event(false, false)).collect();
        // The runtime's driver and completion task exist from the first wait on.
        let first = tokio::spawn(pt::wait(&events[0]));
        until_async("the first wait is queued", || {
            events[0].waiters().unwrap() == 1
        })
        .await;
        events[0].set().unwrap();
        first.await.unwrap().unwrap();
        let base = threads();
        let rss_before = rss_kib();
        for round in 0..2 {
            let what = "task, future, wait block, ring slot";
            pend_check_release(&events, round, rss_before, what, |now| {
                println!("round {round}: {n} pending waits, {now} threads (before: {base})");
                assert_eq!(pt::reactor_threads(), 0, "no reactor serves these waits");
                assert_eq!(now, base, "{n} pending waits added threads");
            })
            .await;
            assert!(events.iter().all(|e| e.waiters().unwrap() == 0));
        }
    });
}

/// Starts one async wait on each of `events`, calls `check` with the thread count while
/// all are queued (printing the resident memory per pending wait, made of `what`), then
/// sets every event and checks that each wait took its own signal, exactly once.
async fn pend_check_release(
    events: &[Arc<Handle>],
    round: usize,
    rss_before: u64,
    what: &str,
    check: impl FnOnce(usize),
) {
    let n = events.len();
    let tasks: Vec<_> = events.iter().map(|e| tokio::spawn(pt::wait(e))).collect();
    until_async("every wait is queued on its object", || {
        events.iter().all(|e| e.waiters().unwrap() == 1)
    })
    .await;
    let now = threads();
    let rss = rss_kib().saturating_sub(rss_before);
    println!(
        "round {round}: resident memory grew {rss} KiB = {} bytes per pending wait ({what})",
        rss * 1024 / n as u64
    );
    check(now);
    for e in events {
        e.set().unwrap();
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
    }
    assert!(
        events.iter().all(|e| !signaled(e)),
        "each set consumed exactly once"
    );
}
