//! Cluster objects against one real etcd member started by the test (Debian's
//! `etcd-server`); each test starts its own member on free loopback ports. Without an
//! etcd binary each test prints a loud SKIP, or fails under PROCSYNC_REQUIRE_ETCD=1.

mod common;

use std::thread;
use std::time::Duration;

use common::{Client, connect, unique};
use procsync_etcd::testing::{EtcdCluster, count_keys as count_keys_under, etcd_available};
use procsync_etcd::{
    Cluster, Config, Created, Handle, Units, WaitOutcome, signal_and_wait, wait_all, wait_any,
};

#[test]
#[ignore = "client process entry point, started by the tests with PSE_CHILD set"]
fn child_process() {
    assert!(
        std::env::var_os("PSE_CHILD").is_some(),
        "run by the tests only"
    );
    common::child_main();
}

fn etcd(test: &str) -> Option<EtcdCluster> {
    etcd_available(test).then(|| EtcdCluster::start(1))
}

/// Blocks until `n` waits are queued on `h` (the handshake before a signal).
fn until_waiters(h: &Handle, n: usize) {
    while h.waiters().expect("waiters") != n {
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn auto_event_is_handed_to_the_oldest_waiter_and_manual_releases_all() {
    let Some(e) = etcd("auto_event_is_handed_to_the_oldest_waiter_and_manual_releases_all") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let name = unique("ev");
    let (ev, created) = c.create_event(&name, false, false).unwrap();
    assert_eq!(created, Created::New);
    let spawn_waiter = |eps: String, name: String| {
        thread::spawn(move || {
            let c = connect(&eps, 5);
            let h = c.open(&name).unwrap();
            h.wait(None).unwrap()
        })
    };
    let first = spawn_waiter(eps.clone(), name.clone());
    until_waiters(&ev, 1);
    let second = spawn_waiter(eps.clone(), name.clone());
    until_waiters(&ev, 2);
    // Auto-reset: one set hands the event to the oldest waiter and leaves it reset.
    assert!(!ev.set().unwrap());
    let a = first.join().unwrap();
    assert_eq!(a.outcome, WaitOutcome::Signaled(0));
    assert!(a.token > 0);
    assert_eq!(ev.waiters().unwrap(), 1, "the younger waiter still waits");
    assert!(!ev.query().unwrap().signaled, "consumed by the hand-off");
    ev.pulse().unwrap();
    assert_eq!(second.join().unwrap().outcome, WaitOutcome::Signaled(0));
    assert!(!ev.query().unwrap().signaled, "pulse leaves it reset");

    // Manual-reset: set releases every waiter and stays signaled.
    let mname = unique("mev");
    let (m, _) = c.create_event(&mname, true, false).unwrap();
    let ws: Vec<_> = (0..3)
        .map(|_| spawn_waiter(eps.clone(), mname.clone()))
        .collect();
    until_waiters(&m, 3);
    m.set().unwrap();
    for w in ws {
        assert_eq!(w.join().unwrap().outcome, WaitOutcome::Signaled(0));
    }
    assert!(m.query().unwrap().signaled);
    assert_eq!(
        m.wait(Some(Duration::ZERO)).unwrap().outcome,
        WaitOutcome::Signaled(0)
    );
    assert!(m.reset().unwrap());
    assert_eq!(
        m.wait(Some(Duration::ZERO)).unwrap().outcome,
        WaitOutcome::TimedOut
    );
}

#[test]
fn mutex_is_recursive_thread_owned_and_handed_off_in_queue_order() {
    let Some(e) = etcd("mutex_is_recursive_thread_owned_and_handed_off_in_queue_order") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let name = unique("mx");
    let (m, _) = c.create_mutex(&name, true).unwrap();
    let t0 = m.fence_token().unwrap();
    assert_eq!(
        m.wait(None).unwrap().outcome,
        WaitOutcome::Signaled(0),
        "recursive"
    );
    assert_eq!(m.query().unwrap().recursion, 2);
    // Another thread of the same session does not own it.
    let other = thread::scope(|s| s.spawn(|| m.release_mutex().unwrap_err()).join().unwrap());
    assert_eq!(other.code(), "not-owner");
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let waiter = |tag: &'static str| {
        let (eps, name, order) = (eps.clone(), name.clone(), order.clone());
        thread::spawn(move || {
            let c = connect(&eps, 5);
            let h = c.open(&name).unwrap();
            let a = h.wait(None).unwrap();
            order.lock().unwrap().push(tag);
            assert_eq!(h.fence_token().unwrap(), a.token);
            h.release_mutex().unwrap();
            a.token
        })
    };
    let a = waiter("a");
    until_waiters(&m, 1);
    let b = waiter("b");
    until_waiters(&m, 2);
    m.release_mutex().unwrap();
    assert_eq!(m.waiters().unwrap(), 2, "still held once");
    let rel = m.release_mutex().unwrap();
    let (ta, tb) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    assert_eq!(ta, rel, "handed off inside the releasing transaction");
    assert!(t0 < ta && ta < tb, "tokens increase: {t0} {ta} {tb}");
    assert_eq!(m.release_mutex().unwrap_err().code(), "not-owner");
}

#[test]
fn semaphore_counts_follow_win32() {
    let Some(e) = etcd("semaphore_counts_follow_win32") else {
        return;
    };
    let c = connect(&e.endpoints(), 5);
    let name = unique("sem");
    let (s, _) = c.create_semaphore(&name, 1, 2, Units::Win32).unwrap();
    assert_eq!(
        s.wait(Some(Duration::ZERO)).unwrap().outcome,
        WaitOutcome::Signaled(0)
    );
    assert_eq!(
        s.wait(Some(Duration::from_millis(100))).unwrap().outcome,
        WaitOutcome::TimedOut
    );
    assert_eq!(
        s.waiters().unwrap(),
        0,
        "a timed-out wait leaves no queue entry"
    );
    assert_eq!(s.release(2).unwrap(), 0);
    let e2 = s.release(1).unwrap_err();
    assert_eq!(e2.code(), "too-many-posts");
    assert_eq!(
        s.query().unwrap().count,
        2,
        "a refused release changes nothing"
    );
    assert_eq!(
        c.create_semaphore(&unique("bad"), 3, 2, Units::Win32)
            .unwrap_err()
            .code(),
        "invalid-argument"
    );
    // Reopening by name gives the same object; another type under the name is refused.
    let (again, created) = c.create_semaphore(&name, 0, 9, Units::Win32).unwrap();
    assert_eq!(created, Created::Existing);
    assert_eq!(again.query().unwrap().max, 2);
    assert_eq!(
        c.create_event(&name, true, true).unwrap_err().code(),
        "wrong-type"
    );
    assert_eq!(c.open(&unique("missing")).unwrap_err().code(), "not-found");
    assert_eq!(c.open("builds").unwrap_err().code(), "invalid-name");
}

#[test]
fn wait_all_takes_everything_in_one_transaction_or_nothing() {
    let Some(e) = etcd("wait_all_takes_everything_in_one_transaction_or_nothing") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let (mx, _) = c.create_mutex(&unique("all-m"), false).unwrap();
    let (ev, _) = c.create_event(&unique("all-e"), false, false).unwrap();
    let (sem, _) = c
        .create_semaphore(&unique("all-s"), 1, 1, Units::Win32)
        .unwrap();
    assert_eq!(
        wait_all(&[&mx, &mx], None).unwrap_err().code(),
        "duplicate-object"
    );
    let (mn, en, sn) = (mx.name(), ev.name(), sem.name());
    let w = thread::spawn(move || {
        let c = connect(&eps, 5);
        let (m, e, s) = (
            c.open(&mn).unwrap(),
            c.open(&en).unwrap(),
            c.open(&sn).unwrap(),
        );
        let a = wait_all(&[&m, &e, &s], None).unwrap();
        let info = m.query().unwrap();
        (a, info.owner.is_some(), m.fence_token().unwrap())
    });
    until_waiters(&ev, 1);
    // Nothing is taken while the event is not signaled.
    assert!(mx.query().unwrap().owner.is_none());
    assert_eq!(sem.query().unwrap().count, 1);
    ev.set().unwrap();
    let (a, owned, token) = w.join().unwrap();
    assert_eq!(a.outcome, WaitOutcome::Signaled(0));
    assert!(owned);
    assert_eq!(token, a.token, "all three taken by one transaction");
    assert_eq!(sem.query().unwrap().count, 0);
    assert!(!ev.query().unwrap().signaled);

    // Wait-any takes the lowest available index only.
    let (e1, _) = c.create_event(&unique("any1"), true, false).unwrap();
    let (e2, _) = c.create_event(&unique("any2"), false, true).unwrap();
    let (e3, _) = c.create_event(&unique("any3"), false, true).unwrap();
    assert_eq!(
        wait_any(&[&e1, &e2, &e3], None).unwrap().outcome,
        WaitOutcome::Signaled(1)
    );
    assert!(e3.query().unwrap().signaled, "only index 1 was taken");
}

#[test]
fn signal_and_wait_signals_and_queues_in_one_transaction() {
    let Some(e) = etcd("signal_and_wait_signals_and_queues_in_one_transaction") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let (ping, _) = c.create_event(&unique("ping"), false, false).unwrap();
    let (pong, _) = c.create_event(&unique("pong"), false, false).unwrap();
    let (pn, qn) = (ping.name(), pong.name());
    let peer = thread::spawn(move || {
        let c = connect(&eps, 5);
        let (ping, pong) = (c.open(&pn).unwrap(), c.open(&qn).unwrap());
        assert_eq!(ping.wait(None).unwrap().outcome, WaitOutcome::Signaled(0));
        pong.set().unwrap();
    });
    until_waiters(&ping, 1);
    let a = signal_and_wait(&ping, &pong, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(a.outcome, WaitOutcome::Signaled(0));
    peer.join().unwrap();
    // Signalling a mutex it does not own fails and queues nothing.
    let (m, _) = c.create_mutex(&unique("sw"), false).unwrap();
    assert_eq!(
        signal_and_wait(&m, &pong, None).unwrap_err().code(),
        "not-owner"
    );
    assert_eq!(pong.waiters().unwrap(), 0);
}

#[test]
fn killed_client_process_abandons_its_mutex_and_the_next_owner_is_told_once() {
    let Some(e) = etcd("killed_client_process_abandons_its_mutex_and_the_next_owner_is_told_once")
    else {
        return;
    };
    let eps = e.endpoints();
    let name = unique("ab");
    let mut child = Client::spawn(&eps, 1);
    let got = child.ask(&format!("mutex {name}"));
    let t1: u64 = got
        .strip_prefix("acquired signaled ")
        .expect(&got)
        .parse()
        .unwrap();
    let c = connect(&eps, 5);
    let m = c.open(&name).unwrap();
    child.kill();
    // The wait ends when the dead client's lease expires.
    let a = m.wait(Some(Duration::from_secs(60))).unwrap();
    assert_eq!(a.outcome, WaitOutcome::Abandoned(0));
    assert!(a.token > t1);
    m.release_mutex().unwrap();
    assert_eq!(
        m.wait(None).unwrap().outcome,
        WaitOutcome::Signaled(0),
        "reported once"
    );
}

#[test]
fn keys_are_gone_when_the_last_holder_closes_or_its_lease_ends() {
    let Some(e) = etcd("keys_are_gone_when_the_last_holder_closes_or_its_lease_ends") else {
        return;
    };
    let eps = e.endpoints();
    {
        let c = connect(&eps, 5);
        let (m, _) = c.create_mutex(&unique("gc"), true).unwrap();
        let (s, _) = c
            .create_semaphore(&unique("gc"), 2, 2, Units::Leased)
            .unwrap();
        s.wait(None).unwrap();
        let (ev, _) = c.create_event(&unique("gc"), false, false).unwrap();
        assert_eq!(
            ev.wait(Some(Duration::from_millis(50))).unwrap().outcome,
            WaitOutcome::TimedOut
        );
        drop((m, s, ev));
        // Only the session's own idempotence marker is left, until the session ends.
        assert_eq!(
            count_keys(&eps),
            1,
            "closing the last handles deleted every object"
        );
        assert_eq!(count_keys_under(&eps, "procsync/v1/x/"), 1);
    }
    // A client that dies holding objects: its leased keys go with its lease, and the
    // persistent object keys go at the next sweep (any client's connect).
    let name = unique("gc-dead");
    let mut child = Client::spawn(&eps, 1);
    child.ask(&format!("mutex {name}"));
    let c = connect(&eps, 5);
    let m = c.open(&name).unwrap();
    child.kill();
    assert_eq!(
        m.wait(None).unwrap().outcome,
        WaitOutcome::Abandoned(0),
        "its lease ended"
    );
    drop(m);
    drop(c);
    drop(connect(&eps, 5));
    assert_eq!(count_keys(&eps), 0);
}

/// Keys under procsync's root.
fn count_keys(eps: &str) -> usize {
    count_keys_under(eps, "procsync/v1/")
}

#[test]
fn losing_etcd_fails_pending_waits_instead_of_reporting_success() {
    let Some(mut e) = etcd("losing_etcd_fails_pending_waits_instead_of_reporting_success") else {
        return;
    };
    let c =
        Cluster::connect_with(&Config::new(&e.endpoints()).ttl(Duration::from_secs(2))).unwrap();
    let (ev, _) = c.create_event(&unique("lost"), false, false).unwrap();
    let (forever, _) = c.create_event(&unique("lost"), false, false).unwrap();
    thread::scope(|s| {
        let timed = s.spawn(|| ev.wait(Some(Duration::from_secs(1))));
        let infinite = s.spawn(|| forever.wait(None));
        until_waiters(&ev, 1);
        until_waiters(&forever, 1);
        e.kill(0);
        let r1 = timed.join().unwrap();
        let r2 = infinite.join().unwrap();
        assert!(
            matches!(
                r1.as_ref().map_err(|e| e.code()),
                Err("unavailable" | "session-lost")
            ),
            "{r1:?}"
        );
        assert!(
            matches!(
                r2.as_ref().map_err(|e| e.code()),
                Err("unavailable" | "session-lost")
            ),
            "{r2:?}"
        );
    });
    assert!(c.is_lost());
    assert_eq!(ev.set().unwrap_err().code(), "session-lost");
}

#[test]
fn bad_endpoints_and_unreachable_clusters_are_clear_errors() {
    assert_eq!(
        Cluster::connect("127.0.0.1:2379").unwrap_err().code(),
        "invalid-argument"
    );
    assert_eq!(Cluster::connect("").unwrap_err().code(), "invalid-argument");
    // A port nobody listens on: refused until the deadline, then `unavailable`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = Config::new(&format!("http://127.0.0.1:{port}")).ttl(Duration::from_secs(1));
    let err = Cluster::connect_with(&cfg).unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert!(err.to_string().contains("quorum"), "{err}");
}

#[test]
fn leased_units_of_a_dead_client_come_back_and_win32_units_do_not() {
    let Some(e) = etcd("leased_units_of_a_dead_client_come_back_and_win32_units_do_not") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let (leased, win32, gate) = (unique("ls"), unique("ws"), unique("gate"));
    let (l, _) = c.create_semaphore(&leased, 2, 2, Units::Leased).unwrap();
    let (w, _) = c.create_semaphore(&win32, 2, 2, Units::Win32).unwrap();
    let mut child = Client::spawn(&eps, 1);
    assert!(
        child
            .ask(&format!("lsem {leased} 2"))
            .starts_with("acquired signaled")
    );
    assert!(
        child
            .ask(&format!("sem {win32} 2"))
            .starts_with("acquired signaled")
    );
    assert!(
        child
            .ask(&format!("mutex {gate}"))
            .starts_with("acquired signaled")
    );
    let g = c.open(&gate).unwrap();
    // Leased mode: only a holder gives units back.
    assert_eq!(l.release(1).unwrap_err().code(), "invalid-argument");
    // Take the leased semaphore's other unit, then wait for the dead client's one.
    assert_eq!(l.wait(None).unwrap().outcome, WaitOutcome::Signaled(0));
    let waiter = thread::scope(|s| {
        let t = s.spawn(|| l.wait(Some(Duration::from_secs(60))).unwrap());
        until_waiters(&l, 1);
        child.kill();
        t.join().unwrap()
    });
    assert_eq!(
        waiter.outcome,
        WaitOutcome::Signaled(0),
        "the dead client's unit came back"
    );
    // Its lease has ended (the gate mutex is abandoned), and the Win32 unit stayed out.
    assert_eq!(g.wait(None).unwrap().outcome, WaitOutcome::Abandoned(0));
    assert_eq!(w.query().unwrap().count, 1);
    assert_eq!(l.release(2).unwrap(), 0);
}

#[test]
fn a_signal_racing_a_registering_waiter_is_never_lost() {
    // Ping-pong on two auto-reset events: each side's set races the other side's
    // registration of its next wait. A set that read the queue before the waiter
    // registered, and committed after it, would leave the event signaled with the
    // waiter still queued: that wait would then time out (a lost wake-up).
    let Some(e) = etcd("a_signal_racing_a_registering_waiter_is_never_lost") else {
        return;
    };
    let eps = e.endpoints();
    let c = connect(&eps, 5);
    let (ping, _) = c.create_event(&unique("rping"), false, false).unwrap();
    let (pong, _) = c.create_event(&unique("rpong"), false, false).unwrap();
    let (pn, qn) = (ping.name(), pong.name());
    const ROUNDS: usize = 60;
    let limit = Some(Duration::from_secs(20));
    let peer = thread::spawn(move || {
        let c = connect(&eps, 5);
        let (ping, pong) = (c.open(&pn).unwrap(), c.open(&qn).unwrap());
        for i in 0..ROUNDS {
            let a = ping.wait(limit).unwrap();
            assert_eq!(a.outcome, WaitOutcome::Signaled(0), "peer round {i}");
            pong.set().unwrap();
        }
    });
    for i in 0..ROUNDS {
        ping.set().unwrap();
        let a = pong.wait(limit).unwrap();
        assert_eq!(a.outcome, WaitOutcome::Signaled(0), "round {i}");
    }
    peer.join().unwrap();
    assert!(!ping.query().unwrap().signaled && !pong.query().unwrap().signaled);
}
