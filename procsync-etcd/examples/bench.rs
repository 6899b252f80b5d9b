//! Benchmark rows for procsync-etcd, each next to etcd's own lock recipe
//! (`concurrency.Mutex`-style: a key on the session lease, the oldest key holds) measured
//! in the same run, in alternating blocks:
//!
//! - `uncontended`: a mutex `wait(None)` + `release_mutex()` / recipe `lock` + `unlock`;
//! - `hand-off`: a second client is queued (handshake: the queue shows it); time from
//!   the holder's release call to the waiter's return, same process, one clock;
//! - `wait-all/8`: `wait_all` over 8 mutexes then 8 releases / the recipe's way to hold
//!   8 locks (lock each in a fixed order, then unlock each).
//!
//! `cargo run --release -p procsync-etcd --example bench [-- ROUNDS]` against a private
//! one-member etcd started here (needs Debian's `etcd-server`), or against the cluster
//! named by `PROCSYNC_ETCD`. A benchmark, not a test: it asserts nothing about time.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use procsync_etcd::recipe::LeaseLock;
use procsync_etcd::testing::{EtcdCluster, etcd_binary};
use procsync_etcd::{Cluster, Config, Handle, wait_all};

fn connect(eps: &str) -> Cluster {
    Cluster::connect_with(&Config::new(eps).ttl(Duration::from_secs(10))).expect("connect")
}

fn name(tag: &str) -> String {
    format!("Cluster\\bench-{tag}-{}", std::process::id())
}

/// Median and 90th percentile, in milliseconds.
fn stats(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 9 / 10).min(v.len() - 1)]),
    )
}

fn row(what: &str, ours: &mut [Duration], base: &mut [Duration]) {
    let (m1, p1) = stats(ours);
    let (m2, p2) = stats(base);
    println!(
        "{what:<34} {m1:>9.2} {p1:>9.2}   {m2:>9.2} {p2:>9.2}   {:>6.2}x",
        m1 / m2
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn uncontended(eps: &str, rounds: usize, block: usize) {
    let c = connect(eps);
    let (m, _) = c.create_mutex(&name("u"), false).unwrap();
    let l = LeaseLock::new(&c, &format!("u-{}", std::process::id()));
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..block {
            ours.push(time(|| {
                m.wait(None).unwrap();
                m.release_mutex().unwrap();
            }));
        }
        for _ in 0..block {
            base.push(time(|| {
                l.lock().unwrap();
                l.unlock().unwrap();
            }));
        }
    }
    row("uncontended acquire+release", &mut ours, &mut base);
}

/// Hand-off latency of `samples` releases to a queued second client. A holds the
/// lock whenever it tells B to wait, so every acquisition of B is a hand-off.
fn hand_off_ours(eps: &str, n: &str, samples: usize) -> Vec<Duration> {
    let a = connect(eps);
    let (m, _) = a.create_mutex(n, true).unwrap();
    let (tx, rx) = mpsc::channel::<Instant>();
    let (go, went) = mpsc::channel::<()>();
    let (eps2, n2) = (eps.to_string(), n.to_string());
    let b = thread::spawn(move || {
        let c = connect(&eps2);
        let m = c.open(&n2).unwrap();
        while went.recv().is_ok() {
            m.wait(None).unwrap();
            tx.send(Instant::now()).unwrap();
            m.release_mutex().unwrap();
        }
    });
    let mut out = Vec::new();
    for i in 0..samples {
        if i > 0 {
            m.wait(None).unwrap();
        }
        go.send(()).unwrap();
        while m.waiters().unwrap() == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // Queued; give it the same time as the recipe's waiter to open its watch.
        thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        m.release_mutex().unwrap();
        out.push(rx.recv().unwrap() - t0);
    }
    drop(go);
    b.join().unwrap();
    out
}

fn hand_off_recipe(eps: &str, n: &str, samples: usize) -> Vec<Duration> {
    let a = connect(eps);
    let l = LeaseLock::new(&a, n);
    l.lock().unwrap();
    let (tx, rx) = mpsc::channel::<Instant>();
    let (go, went) = mpsc::channel::<()>();
    let (eps2, n2) = (eps.to_string(), n.to_string());
    let b = thread::spawn(move || {
        let c = connect(&eps2);
        let l = LeaseLock::new(&c, &n2);
        while went.recv().is_ok() {
            l.lock().unwrap();
            tx.send(Instant::now()).unwrap();
            l.unlock().unwrap();
        }
    });
    let mut out = Vec::new();
    for i in 0..samples {
        if i > 0 {
            l.lock().unwrap();
        }
        go.send(()).unwrap();
        while l.contenders().unwrap() < 2 {
            thread::sleep(Duration::from_millis(1));
        }
        // The waiter's key exists; give it time to start watching its predecessor.
        thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        l.unlock().unwrap();
        out.push(rx.recv().unwrap() - t0);
    }
    drop(go);
    b.join().unwrap();
    out
}

fn hand_off(eps: &str, rounds: usize, block: usize) {
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        ours.extend(hand_off_ours(eps, &name(&format!("h{r}")), block));
        base.extend(hand_off_recipe(
            eps,
            &format!("h{r}-{}", std::process::id()),
            block,
        ));
    }
    row("hand-off release -> waiter", &mut ours, &mut base);
}

fn wait_all_8(eps: &str, rounds: usize, block: usize) {
    let c = connect(eps);
    let ms: Vec<Handle> = (0..8)
        .map(|i| c.create_mutex(&name(&format!("a{i}")), false).unwrap().0)
        .collect();
    let refs: Vec<&Handle> = ms.iter().collect();
    let ls: Vec<LeaseLock> = (0..8)
        .map(|i| LeaseLock::new(&c, &format!("a{i}-{}", std::process::id())))
        .collect();
    let (mut oa, mut ba, mut ot, mut bt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..block {
            let t = Instant::now();
            wait_all(&refs, None).unwrap();
            oa.push(t.elapsed());
            for m in &ms {
                m.release_mutex().unwrap();
            }
            ot.push(t.elapsed());
        }
        for _ in 0..block {
            let t = Instant::now();
            for l in &ls {
                l.lock().unwrap();
            }
            ba.push(t.elapsed());
            for l in &ls {
                l.unlock().unwrap();
            }
            bt.push(t.elapsed());
        }
    }
    row("wait-all over 8: acquire", &mut oa, &mut ba);
    row("wait-all over 8: acquire+release", &mut ot, &mut bt);
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS must be a number"))
        .unwrap_or(5);
    let (_private, eps) = match std::env::var("PROCSYNC_ETCD") {
        Ok(eps) if !eps.trim().is_empty() => (None, eps),
        _ => {
            if etcd_binary().is_none() {
                eprintln!(
                    "no etcd binary: install Debian's etcd-server, set PROCSYNC_ETCD_BIN, or point PROCSYNC_ETCD at a cluster"
                );
                std::process::exit(2);
            }
            let e = EtcdCluster::start(1);
            let eps = e.endpoints();
            (Some(e), eps)
        }
    };
    println!("etcd at {eps}; {rounds} alternating rounds per row; times in ms");
    println!(
        "{:<34} {:>9} {:>9}   {:>9} {:>9}   {:>7}",
        "row", "procsync", "p90", "recipe", "p90", "ratio"
    );
    uncontended(&eps, rounds, 20);
    hand_off(&eps, rounds, 10);
    wait_all_8(&eps, rounds, 5);
}
