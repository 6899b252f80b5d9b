//! Failure behaviour against a private three-member etcd cluster: the leader killed
//! while waits and hand-offs are in flight (mutual exclusion of fenced holds and
//! conservation of semaphore units checked over the history of several client
//! processes), a client process killed while holding a mutex, a client paused past
//! its lease whose fencing token is refused afterwards.

mod common;

use std::thread;
use std::time::Duration;

use common::history::{Hold, check_mutual_exclusion, check_units};
use common::{Client, connect, signal, unique};
use procsync_etcd::WaitOutcome;
use procsync_etcd::testing::{EtcdCluster, etcd_available};

#[test]
#[ignore = "client process entry point, started by the tests with PSE_CHILD set"]
fn child_process() {
    assert!(
        std::env::var_os("PSE_CHILD").is_some(),
        "run by the tests only"
    );
    common::child_main();
}

fn parse_hold(l: &str) -> Hold {
    let f: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    Hold {
        pid: f[0] as u32,
        token: f[1],
        begin: f[2],
        end: f[3],
        release: f[4],
    }
}

#[test]
fn leader_killed_during_hand_offs_keeps_exclusion_units_and_abandonment() {
    if !etcd_available("leader_killed_during_hand_offs_keeps_exclusion_units_and_abandonment") {
        return;
    }
    let mut e = EtcdCluster::start(3);
    let eps = e.endpoints();
    let (mx, sem, res, held) = (
        unique("fm"),
        unique("fs"),
        format!("res-{}", std::process::id()),
        unique("fh"),
    );
    // A client that holds a mutex and will be killed along with the leader.
    let mut victim = Client::spawn(&eps, 2);
    let got = victim.ask(&format!("mutex {held}"));
    assert!(got.starts_with("acquired signaled "), "{got}");
    let c = connect(&eps, 5);
    let h = c.open(&held).unwrap();
    let (s, _) = c
        .create_semaphore(&sem, 2, 2, procsync_etcd::Units::Win32)
        .unwrap();
    let mut workers: Vec<Client> = (0..3).map(|_| Client::spawn(&eps, 5)).collect();
    let mut sems: Vec<Client> = (0..2).map(|_| Client::spawn(&eps, 5)).collect();
    for w in &mut workers {
        w.send(&format!("work-mutex {mx} {res} 12"));
    }
    for w in &mut sems {
        w.send(&format!("work-sem {sem} 2 12"));
    }
    let abandoned = thread::spawn(move || {
        let a = h.wait(Some(Duration::from_secs(60))).unwrap();
        (a, h)
    });
    // Handshake: hand-offs are under way once a worker reports its third hold.
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); workers.len()];
    while lines[0].len() < 3 {
        lines[0].push(workers[0].line());
    }
    let leader = e.wait_leader();
    e.kill(leader);
    victim.kill();
    for (i, w) in workers.into_iter().enumerate() {
        lines[i].extend(w.finish());
    }
    let mut holds = Vec::new();
    for l in lines.iter().flatten() {
        assert!(
            !l.starts_with("stale"),
            "no lease expired, yet a fenced write was refused: {l}"
        );
        if l.starts_with("hold ") {
            holds.push(parse_hold(l));
        }
    }
    assert_eq!(holds.len(), 36, "every worker finished all holds");
    check_mutual_exclusion(&holds).unwrap();
    let mut units = Vec::new();
    for w in sems {
        for l in w.finish() {
            if let Some(r) = l.strip_prefix("unit ") {
                let f: Vec<u64> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
                units.push((f[0], f[1]));
            }
        }
    }
    assert_eq!(units.len(), 24);
    check_units(&units, 2).unwrap();
    assert_eq!(s.query().unwrap().count, 2, "every unit came back");
    let (a, _h) = abandoned.join().unwrap();
    assert_eq!(
        a.outcome,
        WaitOutcome::Abandoned(0),
        "the killed client's mutex is abandoned"
    );
}

#[test]
fn client_paused_past_its_lease_has_its_fencing_token_refused() {
    if !etcd_available("client_paused_past_its_lease_has_its_fencing_token_refused") {
        return;
    }
    let e = EtcdCluster::start(3);
    let eps = e.endpoints();
    let (mx, res) = (unique("pause"), format!("pause-{}", std::process::id()));
    let mut child = Client::spawn(&eps, 1);
    let got = child.ask(&format!("mutex {mx}"));
    let t1: u64 = got
        .strip_prefix("acquired signaled ")
        .expect(&got)
        .parse()
        .unwrap();
    assert_eq!(
        child.ask(&format!("fence {res} {t1}")).split(' ').next(),
        Some("accepted")
    );
    let c = connect(&eps, 5);
    let m = c.open(&mx).unwrap();
    signal(child.pid(), "STOP");
    // The paused client's lease expires: the mutex comes to us, abandoned.
    let a = m.wait(Some(Duration::from_secs(60))).unwrap();
    assert_eq!(a.outcome, WaitOutcome::Abandoned(0));
    assert!(a.token > t1);
    let f = c.fenced(&res).unwrap();
    assert!(f.write(a.token, "new owner").unwrap().is_ok());
    signal(child.pid(), "CONT");
    // The old holder resumes believing it holds the mutex; the resource refuses it.
    assert_eq!(
        child.ask(&format!("fence {res} {t1}")),
        format!("refused {}", a.token)
    );
    assert_eq!(f.read().unwrap(), Some((a.token, "new owner".to_string())));
    f.remove().unwrap();
    m.release_mutex().unwrap();
}

#[test]
fn history_checker_rejects_overlap_duplicate_tokens_and_excess_units() {
    let h = |token, begin, end, release| Hold {
        pid: 1,
        token,
        begin,
        end,
        release,
    };
    check_mutual_exclusion(&[h(10, 11, 12, 13), h(13, 14, 15, 16)]).unwrap();
    assert!(
        check_mutual_exclusion(&[h(10, 11, 12, 15), h(13, 14, 16, 17)]).is_err(),
        "overlap"
    );
    assert!(
        check_mutual_exclusion(&[h(10, 11, 12, 13), h(10, 14, 15, 16)]).is_err(),
        "same token"
    );
    assert!(
        check_mutual_exclusion(&[h(10, 12, 11, 13)]).is_err(),
        "writes out of order"
    );
    check_units(&[(1, 5), (2, 6), (5, 7)], 2).unwrap();
    assert!(
        check_units(&[(1, 5), (2, 6), (3, 7)], 2).is_err(),
        "three units out of two"
    );
    assert!(check_units(&[(5, 4)], 2).is_err(), "released before taken");
}
