//! Cross-process cases: tokio waits on objects that sync processes signal, sync
//! processes waiting on what tokio tasks signal or own, and owner death. The sync
//! side is this binary re-executed in a child role (`child_role`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use procsync::{Event, Mutex, Semaphore, WaitOutcome};
use procsync_tokio as pt;

use crate::basic::{count, owner, poll_once, signaled};
use crate::harness::{Proc, multi_thread, until, until_async};

const LONG: Option<Duration> = Some(Duration::from_secs(60));

/// The child roles (sync procsync code in another process). Exit 0 = as expected.
pub fn child_role(role: &str) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match role {
        "signal-events" => signal_events(&args),
        "set-event" => set_event(&args),
        "hold-and-exit" => hold_and_exit(&args),
        "try-lock" => try_lock(&args),
        "async-wait-and-hang" => async_wait_and_hang(&args),
        "nondumpable-waiter" => nondumpable_waiter(&args),
        "storm-signaller" => crate::storm::signaller(&args),
        "release-random" => crate::storm::release_random(&args),
        "set-random" => crate::storm::set_random(&args),
        "server" => match crate::server::main() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("server: {e}");
                1
            }
        },
        _ => {
            eprintln!("unknown role {role}");
            2
        }
    };
    ExitCode::from(code)
}

/// `E A K`: K times, set auto event E, then wait for the ack semaphore A.
fn signal_events(a: &[String]) -> u8 {
    let e = Event::open(&a[0]).unwrap();
    let ack = Semaphore::open(&a[1]).unwrap();
    let k: u32 = a[2].parse().unwrap();
    for i in 0..k {
        e.set().unwrap();
        if ack.wait(LONG).unwrap() != WaitOutcome::Signaled(0) {
            eprintln!("round {i}: no ack");
            return 3;
        }
    }
    0
}

/// `E`: set event E once; exit 0 if it was not set (EV-03), 10 if it was (EV-04).
fn set_event(a: &[String]) -> u8 {
    if Event::open(&a[0]).unwrap().set().unwrap() {
        10
    } else {
        0
    }
}

/// Sets event `name` from a sync process of its own; returns what its `set` reported
/// (`true`: it was already set).
fn set_elsewhere(name: &str) -> bool {
    let mut p = Proc::spawn("set-event", &[name]);
    let status = crate::harness::wait_bounded(&mut p.child, Duration::from_secs(60));
    match status.and_then(|s| s.code()) {
        Some(0) => false,
        Some(10) => true,
        other => panic!("set-event {name}: ended with {other:?}"),
    }
}

/// TO-06 with EV-03 and EV-04, across processes: a sync process's set hands an
/// auto-reset event's signal to a pending async wait; a second set, from another
/// process, finds the event unset and says so ("was not set"); then the wait is
/// dropped. Both sets reported a new signal, so both must be consumable, once each:
/// the dropped wait's signal is given back banked, not merged into the second.
pub fn dropped_after_handoff_keeps_a_later_sets_signal_ev03_to06() {
    multi_thread(2).block_on(async {
        let name = "Local\\bank-e";
        let e = Arc::new(procsync::Handle::from(
            Event::create(name, false, false).unwrap().0,
        ));
        let mut f = pt::wait(&e);
        let flag = poll_once(&mut f);
        until_async("queued", || e.waiters().unwrap() == 1).await;
        assert!(!set_elsewhere(name), "the first set found the event unset");
        until_async("handed over", || flag.is_set()).await;
        assert!(!signaled(&e), "the signal is in the future's hands");
        assert!(
            !set_elsewhere(name),
            "the second set found the event unset too (EV-03)"
        );
        drop(f);
        for k in 1..=2 {
            assert_eq!(
                e.wait(Some(Duration::ZERO)).unwrap(),
                WaitOutcome::Signaled(0),
                "signal {k} of the two that the sets reported"
            );
        }
        assert_eq!(
            e.wait(Some(Duration::ZERO)).unwrap(),
            WaitOutcome::TimedOut,
            "no third signal: nothing duplicated"
        );
        // The bank is gone with the signals: a set now finds the event unset.
        assert!(!set_elsewhere(name));
        assert!(e.reset().unwrap());
    });
}

/// `M H G`: lock mutex M, set event H, wait for event G (if given), exit owning M.
fn hold_and_exit(a: &[String]) -> u8 {
    let m = Mutex::open(&a[0]).unwrap();
    assert_eq!(m.wait(LONG).unwrap(), WaitOutcome::Signaled(0));
    Event::open(&a[1]).unwrap().set().unwrap();
    if let Some(g) = a.get(2) {
        assert_eq!(
            Event::open(g).unwrap().wait(LONG).unwrap(),
            WaitOutcome::Signaled(0)
        );
    }
    0
}

/// `E S R`: async waits (the io_uring path) on auto event E and semaphore S; once both
/// are queued, set R; then hang until killed.
fn async_wait_and_hang(a: &[String]) -> u8 {
    let e = std::sync::Arc::new(procsync::Handle::from(Event::open(&a[0]).unwrap()));
    let s = std::sync::Arc::new(procsync::Handle::from(Semaphore::open(&a[1]).unwrap()));
    let ready = Event::open(&a[2]).unwrap();
    multi_thread(2).block_on(async move {
        let _we = tokio::spawn(pt::wait(&e));
        let _ws = tokio::spawn(pt::wait(&s));
        until_async("both async waits queued", || {
            e.waiters().unwrap() == 1 && s.waiters().unwrap() == 1
        })
        .await;
        ready.set().unwrap();
        std::future::pending::<()>().await;
    });
    0
}

/// `M T`: the mutex must be owned elsewhere; set T; then wait for it, release, exit.
fn try_lock(a: &[String]) -> u8 {
    let m = Mutex::open(&a[0]).unwrap();
    if m.wait(Some(Duration::ZERO)).unwrap() != WaitOutcome::TimedOut {
        eprintln!("the mutex was free although a task's guard holds it");
        return 3;
    }
    Event::open(&a[1]).unwrap().set().unwrap();
    if m.wait(LONG).unwrap() != WaitOutcome::Signaled(0) {
        return 4;
    }
    m.unlock().unwrap();
    0
}

/// Runs a `signal-events` process that sets event `e` (named `en`) `rounds` times, each
/// time waiting for the ack semaphore `ack` (named `an`); awaits each set here and acks
/// it. Every set must be consumed exactly once.
async fn answer_sets(e: &Event, ack: &Semaphore, en: &str, an: &str, rounds: u32) {
    let child = Proc::spawn("signal-events", &[en, an, &rounds.to_string()]);
    for _ in 0..rounds {
        // Tokio waits for the sync process's set; the sync process waits for tokio's
        // release.
        assert_eq!(
            pt::wait(e).await.unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        ack.release(1).unwrap();
    }
    child.expect_success("the sync signaller");
    assert!(!signaled(e), "every set was consumed exactly once");
}

pub fn async_waits_on_sync_signallers_in_other_processes() {
    multi_thread(2).block_on(async {
        let (e, _) = Event::create("Local\\pt-e", false, false).unwrap();
        let (ack, _) = Semaphore::create("Local\\pt-ack", 0, 1000).unwrap();
        answer_sets(&e, &ack, "Local\\pt-e", "Local\\pt-ack", 200).await;
        assert_eq!(count(&ack), 0, "every ack was consumed by the child");
    });
}

/// The usual way a sync process's signal reaches a pending async wait on an object of
/// the waiter's own `Local\` namespace: the runtime's bell (a pipe in its epoll), not
/// a futex wait of the wait's own, and never the fallback word.
pub fn async_waits_are_rung_through_the_bell_across_processes() {
    let before = pt::wake_counts();
    multi_thread(2).block_on(async {
        let e = Arc::new(procsync::Handle::from(
            Event::create("Local\\pt-bell-e", false, false).unwrap().0,
        ));
        let (ack, _) = Semaphore::create("Local\\pt-bell-ack", 0, 1000).unwrap();
        let child = Proc::spawn(
            "signal-events",
            &["Local\\pt-bell-e", "Local\\pt-bell-ack", "2000"],
        );
        for _ in 0..2000 {
            // A task of its own each time: the waits start on either worker.
            let e = e.clone();
            let got = tokio::spawn(async move { pt::wait(&e).await.unwrap().outcome() });
            assert_eq!(got.await.unwrap(), WaitOutcome::Signaled(0));
            ack.release(1).unwrap();
        }
        child.expect_success("the sync signaller");
        assert!(!signaled(&e), "every set was consumed exactly once");
    });
    let after = pt::wake_counts();
    assert!(
        after.bell > before.bell,
        "some waits slept and were rung through the bell: {before:?} -> {after:?}"
    );
    assert_eq!(after.fallback, before.fallback, "nothing fell back");
    assert_eq!(after.futex, before.futex, "no futex wait of a wait's own");
    // Each wait is answered within microseconds: one that the once-a-second re-check
    // had to end was rung and missed (a ring that reached the driver, on the other
    // worker, between the wait's announce and its registration).
    assert_eq!(
        after.sweep, before.sweep,
        "no wait was left to the re-check"
    );
}

/// A signaller that cannot reach the bell — here the waiter is not dumpable, so a
/// process of its user without `CAP_SYS_PTRACE` may not open its descriptors through
/// /proc — rings the segment's fallback word instead, and every signal still arrives
/// once. Run as uid 65534 (root may open any process's descriptors).
pub fn belled_waits_fall_back_when_the_bell_is_out_of_reach() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: needs root, to run the waiter and the signaller as uid 65534");
        return;
    }
    let root = std::env::var("PROCSYNC_ROOT").expect("the driver sets PROCSYNC_ROOT");
    let nobody = Some(rustix::process::Uid::from_raw(65534));
    let nogroup = Some(rustix::process::Gid::from_raw(65534));
    rustix::fs::chown(root.as_str(), nobody, nogroup).expect("giving the root to uid 65534");
    let exe = std::env::current_exe().expect("own executable");
    let mut child = std::process::Command::new(exe);
    std::os::unix::process::CommandExt::uid(&mut child, 65534);
    std::os::unix::process::CommandExt::gid(&mut child, 65534);
    let mut p = crate::harness::Proc {
        child: child
            .env(crate::harness::ROLE, "nondumpable-waiter")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawning the waiter as uid 65534"),
    };
    let status = crate::harness::wait_bounded(&mut p.child, Duration::from_secs(120));
    assert!(
        matches!(status, Some(s) if s.success()),
        "the non-dumpable waiter: {status:?}"
    );
}

/// The waiter of `belled_waits_fall_back_when_the_bell_is_out_of_reach`.
fn nondumpable_waiter(_: &[String]) -> u8 {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .expect("PR_SET_DUMPABLE");
    let rounds = 50;
    multi_thread(2).block_on(async {
        let (e, _) = Event::create("Local\\pt-fb-e", false, false).unwrap();
        let (ack, _) = Semaphore::create("Local\\pt-fb-ack", 0, 1000).unwrap();
        answer_sets(&e, &ack, "Local\\pt-fb-e", "Local\\pt-fb-ack", rounds).await;
    });
    let c = pt::wake_counts();
    if c.fallback == 0 || c.bell != 0 {
        eprintln!("expected wake-ups through the fallback word only: {c:?}");
        return 5;
    }
    0
}

pub fn sync_waiter_in_other_process_sees_async_mutex_owner() {
    multi_thread(2).block_on(async {
        let (m, _) = Mutex::create("Local\\pt-m", false).unwrap();
        let (tried, _) = Event::create("Local\\pt-tried", false, false).unwrap();
        let g = pt::lock(&m).await.unwrap();
        let child = Proc::spawn("try-lock", &["Local\\pt-m", "Local\\pt-tried"]);
        pt::wait(&tried).await.unwrap();
        until_async("the child blocks on the mutex", || {
            m.waiters().unwrap() == 1
        })
        .await;
        // The guard moves to another task before it is released.
        let t = tokio::spawn(async move { g.unlock().await });
        assert_eq!(t.await.unwrap().unwrap(), 1);
        child.expect_success("the sync waiter");
        assert_eq!(owner(&m), procsync::Owner::None);
    });
}

pub fn owner_process_dies_async_lock_reports_abandoned_ab07() {
    multi_thread(2).block_on(async {
        let (m, _) = Mutex::create("Local\\pt-m", false).unwrap();
        let (held, _) = Event::create("Local\\pt-held", false, false).unwrap();
        let (go, _) = Event::create("Local\\pt-go", false, false).unwrap();

        // AB-07/AB-08: the owner process is gone before the async lock.
        let child = Proc::spawn("hold-and-exit", &["Local\\pt-m", "Local\\pt-held"]);
        pt::wait(&held).await.unwrap();
        child.expect_success("the owner");
        let g = pt::lock(&m).await.unwrap();
        assert!(
            g.was_abandoned(),
            "AB-02: the next acquirer hears of the abandonment"
        );
        g.unlock().await.unwrap();
        let g = pt::lock(&m).await.unwrap();
        assert!(!g.was_abandoned(), "AB-03: reported once");
        g.unlock().await.unwrap();

        // AB-06: the async waiter is already queued when the owner exits.
        let child = Proc::spawn(
            "hold-and-exit",
            &["Local\\pt-m", "Local\\pt-held", "Local\\pt-go"],
        );
        pt::wait(&held).await.unwrap();
        let t = tokio::spawn(pt::lock(&m));
        until_async("the reactor waits on the mutex", || {
            m.waiters().unwrap() == 1
        })
        .await;
        go.set().unwrap();
        let g = t.await.unwrap().unwrap();
        assert!(g.was_abandoned());
        child.expect_success("the owner");
        g.unlock().await.unwrap();
        assert_eq!(owner(&m), procsync::Owner::None);
    });
}

/// A process killed while its async waits (io_uring path) are queued loses no signal:
/// a set or release that reaches its entries finds the waiter gone (its process's main
/// thread no longer exists) and goes on to the next waiter, or stays (WM-style
/// dead-waiter rule of the sync waits, for the process identity of detached waits).
pub fn killed_async_waiter_process_loses_no_signal() {
    for round in 0..10 {
        let (e, _) = Event::create("Local\\pt-dead-e", false, false).unwrap();
        let (s, _) = Semaphore::create("Local\\pt-dead-s", 0, 10).unwrap();
        let (ready, _) = Event::create("Local\\pt-dead-r", false, false).unwrap();
        let child = Proc::spawn(
            "async-wait-and-hang",
            &["Local\\pt-dead-e", "Local\\pt-dead-s", "Local\\pt-dead-r"],
        );
        assert_eq!(ready.wait(LONG).unwrap(), WaitOutcome::Signaled(0));
        assert_eq!((e.waiters().unwrap(), s.waiters().unwrap()), (1, 1));
        let mut child = Some(child);
        if round % 2 == 1 {
            // SIGKILL, and not reaped until the end of the round: a zombie, whose main
            // thread still answers tgkill.
            let c = &mut child.as_mut().expect("spawned").child;
            c.kill().unwrap();
            let (stat, tasks) = (
                format!("/proc/{}/stat", c.id()),
                format!("/proc/{}/task", c.id()),
            );
            until("the child is a zombie, its other threads gone", || {
                std::fs::read_dir(&tasks).is_ok_and(|d| d.count() == 1)
                    && std::fs::read_to_string(&stat).is_ok_and(|st| {
                        st.rsplit(')')
                            .next()
                            .is_some_and(|r| r.trim_start().starts_with('Z'))
                    })
            });
        } else {
            child = None; // SIGKILL, and reaped
        }
        assert!(!e.set().unwrap());
        assert_eq!(
            e.wait(Some(Duration::ZERO)).unwrap(),
            WaitOutcome::Signaled(0),
            "round {round}: the set went to the dead process's wait"
        );
        assert_eq!(s.release(1).unwrap(), 0);
        assert_eq!(
            count(&s),
            1,
            "round {round}: the unit went to the dead process's wait"
        );
        assert_eq!((e.waiters().unwrap(), s.waiters().unwrap()), (0, 0));
        drop(child);
    }
}
