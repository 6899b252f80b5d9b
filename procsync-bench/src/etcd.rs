//! `etcd/…` (procsync-bench/README.md, "Scenarios"): procsync-etcd's cluster objects
//! against etcd's own lock recipe (`procsync_etcd::recipe::LeaseLock`, Go
//! `concurrency.Mutex`'s algorithm: a key on the session lease, the oldest create
//! revision holds, a waiter watches the next-older key's deletion), both on a private
//! one-member etcd that this module starts and stops (procsync-etcd's test harness).
//! Each row samples both sides in alternating blocks of the same run:
//!
//! - `etcd/uncontended`: a mutex `wait(None)` + `release_mutex()` / recipe `lock` +
//!   `unlock`;
//! - `etcd/hand-off`: a second client (its own session, a thread of this process, so one
//!   clock) is queued — handshake: the queue shows it, then 5 ms for it to open its watch,
//!   the same for both sides — and the time from the holder's release call to the
//!   waiter's return is one sample;
//! - `etcd/wait-all-8`: `wait_all` over 8 mutexes (then 8 releases) / the recipe's way to
//!   hold 8 locks: lock each in a fixed order (then unlock each); two rows, "acquire" and
//!   "acquire+release".
//!
//! What it owns: the etcd member of the run (killed and its data removed when the
//! scenarios end; it dies with the thread that started it, the main thread, however the
//! run ends) and the names it uses. What it must not do: run without an etcd binary —
//! it then leaves a note in the report and adds no row.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use procsync_etcd::recipe::LeaseLock;
use procsync_etcd::testing::{EtcdCluster, etcd_binary};
use procsync_etcd::{Cluster, Config, Handle, wait_all};

use super::Report;

/// The sizes of the etcd scenarios: `rounds` alternating rounds, each with a block of
/// this many samples per side.
#[derive(Clone, Copy, Debug)]
pub struct EtcdPlan {
    /// Alternating rounds (procsync block, then recipe block).
    pub rounds: usize,
    /// Samples per block of `etcd/uncontended`.
    pub uncontended: usize,
    /// Samples per block of `etcd/hand-off`.
    pub hand_off: usize,
    /// Samples per block of `etcd/wait-all-8`.
    pub wait_all: usize,
}

/// The scenario names, for `--only`.
pub const GROUPS: [&str; 3] = ["etcd/uncontended", "etcd/hand-off", "etcd/wait-all-8"];

const SUBJECT: &str = "procsync-etcd-mutex";
const BASELINE: &str = "etcd-recipe-lock";

fn connect(eps: &str) -> Cluster {
    Cluster::connect_with(&Config::new(eps).ttl(Duration::from_secs(10))).expect("etcd connect")
}

fn name(tag: &str) -> String {
    format!("Cluster\\bench-{tag}-{}", std::process::id())
}

fn recipe_name(tag: &str) -> String {
    format!("bench-{tag}-{}", std::process::id())
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Runs the wanted etcd scenarios and adds their rows; without an etcd binary, a note.
pub fn run(report: &mut Report, plan: EtcdPlan, wanted: &dyn Fn(&str) -> bool) {
    let want: Vec<&str> = GROUPS.into_iter().filter(|g| wanted(g)).collect();
    if want.is_empty() {
        return;
    }
    if etcd_binary().is_none() {
        let note = format!(
            "{}: not run, no etcd binary found (install Debian's etcd-server, or set \
             PROCSYNC_ETCD_BIN to an etcd executable)",
            want.join(", ")
        );
        eprintln!("procsync bench: {note}");
        report.note(note);
        return;
    }
    let e = EtcdCluster::start(1);
    let eps = e.endpoints();
    if want.contains(&"etcd/uncontended") {
        uncontended(report, &eps, plan);
    }
    if want.contains(&"etcd/hand-off") {
        hand_off(report, &eps, plan);
    }
    if want.contains(&"etcd/wait-all-8") {
        wait_all_8(report, &eps, plan);
    }
}

fn uncontended(report: &mut Report, eps: &str, plan: EtcdPlan) {
    let c = connect(eps);
    let (m, _) = c.create_mutex(&name("u"), false).expect("create");
    let l = LeaseLock::new(&c, &recipe_name("u"));
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        for _ in 0..plan.uncontended {
            ours.push(time(|| {
                m.wait(None).expect("wait");
                m.release_mutex().expect("release");
            }));
        }
        for _ in 0..plan.uncontended {
            base.push(time(|| {
                l.lock().expect("recipe lock");
                l.unlock().expect("recipe unlock");
            }));
        }
    }
    report.latency(
        "etcd/uncontended",
        SUBJECT,
        BASELINE,
        "acquire+release",
        &ours,
        &base,
    );
}

/// Hand-off latency of `samples` releases to a queued second client. The holder holds
/// the mutex whenever it tells the other client to wait, so every acquisition of the
/// other client is a hand-off.
fn hand_off_ours(eps: &str, n: &str, samples: usize) -> Vec<Duration> {
    let a = connect(eps);
    let (m, _) = a.create_mutex(n, true).expect("create owned");
    let (tx, rx) = mpsc::channel::<Instant>();
    let (go, went) = mpsc::channel::<()>();
    let (eps2, n2) = (eps.to_string(), n.to_string());
    let b = thread::spawn(move || {
        let c = connect(&eps2);
        let m = c.open(&n2).expect("open");
        while went.recv().is_ok() {
            m.wait(None).expect("wait");
            tx.send(Instant::now()).expect("send");
            m.release_mutex().expect("release");
        }
    });
    let mut out = Vec::new();
    for i in 0..samples {
        if i > 0 {
            m.wait(None).expect("wait");
        }
        go.send(()).expect("go");
        while m.waiters().expect("waiters") == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // Queued; the same time as the recipe's waiter gets to open its watch.
        thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        m.release_mutex().expect("release");
        out.push(rx.recv().expect("the waiter returned") - t0);
    }
    drop(go);
    b.join().expect("waiter thread");
    out
}

fn hand_off_recipe(eps: &str, n: &str, samples: usize) -> Vec<Duration> {
    let a = connect(eps);
    let l = LeaseLock::new(&a, n);
    l.lock().expect("recipe lock");
    let (tx, rx) = mpsc::channel::<Instant>();
    let (go, went) = mpsc::channel::<()>();
    let (eps2, n2) = (eps.to_string(), n.to_string());
    let b = thread::spawn(move || {
        let c = connect(&eps2);
        let l = LeaseLock::new(&c, &n2);
        while went.recv().is_ok() {
            l.lock().expect("recipe lock");
            tx.send(Instant::now()).expect("send");
            l.unlock().expect("recipe unlock");
        }
    });
    let mut out = Vec::new();
    for i in 0..samples {
        if i > 0 {
            l.lock().expect("recipe lock");
        }
        go.send(()).expect("go");
        while l.contenders().expect("contenders") < 2 {
            thread::sleep(Duration::from_millis(1));
        }
        // The waiter's key exists; give it time to start watching its predecessor.
        thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        l.unlock().expect("recipe unlock");
        out.push(rx.recv().expect("the waiter returned") - t0);
    }
    drop(go);
    b.join().expect("waiter thread");
    out
}

fn hand_off(report: &mut Report, eps: &str, plan: EtcdPlan) {
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for r in 0..plan.rounds {
        ours.extend(hand_off_ours(eps, &name(&format!("h{r}")), plan.hand_off));
        base.extend(hand_off_recipe(
            eps,
            &recipe_name(&format!("h{r}")),
            plan.hand_off,
        ));
    }
    report.latency(
        "etcd/hand-off",
        SUBJECT,
        BASELINE,
        "release-to-return",
        &ours,
        &base,
    );
}

fn wait_all_8(report: &mut Report, eps: &str, plan: EtcdPlan) {
    let c = connect(eps);
    let ms: Vec<Handle> = (0..8)
        .map(|i| {
            c.create_mutex(&name(&format!("a{i}")), false)
                .expect("create")
                .0
        })
        .collect();
    let refs: Vec<&Handle> = ms.iter().collect();
    let ls: Vec<LeaseLock> = (0..8)
        .map(|i| LeaseLock::new(&c, &recipe_name(&format!("a{i}"))))
        .collect();
    let (mut oa, mut ba, mut ot, mut bt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        for _ in 0..plan.wait_all {
            let t = Instant::now();
            wait_all(&refs, None).expect("wait_all");
            oa.push(t.elapsed());
            for m in &ms {
                m.release_mutex().expect("release");
            }
            ot.push(t.elapsed());
        }
        for _ in 0..plan.wait_all {
            let t = Instant::now();
            for l in &ls {
                l.lock().expect("recipe lock");
            }
            ba.push(t.elapsed());
            for l in &ls {
                l.unlock().expect("recipe unlock");
            }
            bt.push(t.elapsed());
        }
    }
    let g = "etcd/wait-all-8";
    report.latency(g, SUBJECT, BASELINE, "acquire", &oa, &ba);
    report.latency(g, SUBJECT, BASELINE, "acquire+release", &ot, &bt);
}
