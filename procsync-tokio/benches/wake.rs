//! Wake latency of an async wait against a sync one, and against tokio's `Notify`.
//!
//! `cargo bench -p procsync-tokio --bench wake` (a plain timing loop, no harness).
//! Each scenario is a ping-pong of two auto-reset events; a round trip is two wakes:
//!
//! - `sync<->sync`: two threads, both in procsync's blocking `wait`.
//! - `async<->sync`: a tokio task (`procsync_tokio::wait`, served by a reactor thread)
//!   against a sync thread. Its async wake ≈ round trip − half the sync round trip.
//! - `notify<->notify`: two tokio tasks on two `tokio::sync::Notify` (in-process only,
//!   the runtime's own wake path), for scale.
//!
//! Ratios are printed; nothing is asserted (benchmarks are benchmarks). The scenarios
//! run one after the other, so on a loaded machine the ratios mix two moments: the
//! numbers to quote are `procsync bench --only async` (paired blocks, the `async/wake`
//! rows of procsync-bench).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use procsync::{CreateOptions, Handle, ObjectSpec};

const ROUNDS: u32 = 20_000;
const WARMUP: u32 = 1_000;

fn auto_event() -> Arc<Handle> {
    let spec = ObjectSpec::Event {
        manual: false,
        initial: false,
    };
    Arc::new(
        Handle::create(spec, "", &CreateOptions::default())
            .unwrap()
            .0,
    )
}

/// The far side: a sync thread answering each ping with a pong.
fn echo(ping: Arc<Handle>, pong: Arc<Handle>, rounds: u32) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..rounds {
            let _ = ping.wait(None).unwrap();
            pong.set().unwrap();
        }
    })
}

fn sync_sync() -> Duration {
    let (ping, pong) = (auto_event(), auto_event());
    let far = echo(ping.clone(), pong.clone(), WARMUP + ROUNDS);
    let mut start = Instant::now();
    for i in 0..WARMUP + ROUNDS {
        if i == WARMUP {
            start = Instant::now();
        }
        ping.set().unwrap();
        let _ = pong.wait(None).unwrap();
    }
    let t = start.elapsed();
    far.join().unwrap();
    t / ROUNDS
}

fn async_sync(rt: &tokio::runtime::Runtime) -> Duration {
    let (ping, pong) = (auto_event(), auto_event());
    let far = echo(ping.clone(), pong.clone(), WARMUP + ROUNDS);
    let t = rt.block_on(async {
        let mut start = Instant::now();
        for i in 0..WARMUP + ROUNDS {
            if i == WARMUP {
                start = Instant::now();
            }
            ping.set().unwrap();
            let _ = procsync_tokio::wait(&pong).await.unwrap();
        }
        start.elapsed()
    });
    far.join().unwrap();
    t / ROUNDS
}

/// As [`async_sync`], but the wait is registered with its reactor before the ping is
/// sent (first poll, then `set`): the wake of an async wait that is already pending,
/// without the re-registration that a ping-pong puts on the critical path.
fn async_sync_pending(rt: &tokio::runtime::Runtime) -> Duration {
    let (ping, pong) = (auto_event(), auto_event());
    let far = echo(ping.clone(), pong.clone(), WARMUP + ROUNDS);
    let t = rt.block_on(async {
        let mut start = Instant::now();
        for i in 0..WARMUP + ROUNDS {
            if i == WARMUP {
                start = Instant::now();
            }
            let mut w = std::pin::pin!(procsync_tokio::wait(&pong));
            let first = std::future::poll_fn(|cx| Poll::Ready(w.as_mut().poll(cx))).await;
            ping.set().unwrap();
            if first.is_pending() {
                let _ = w.await.unwrap();
            }
        }
        start.elapsed()
    });
    far.join().unwrap();
    t / ROUNDS
}

fn notify_notify(rt: &tokio::runtime::Runtime) -> Duration {
    let ping = Arc::new(tokio::sync::Notify::new());
    let pong = Arc::new(tokio::sync::Notify::new());
    let (p2, q2) = (ping.clone(), pong.clone());
    let far = rt.spawn(async move {
        for _ in 0..WARMUP + ROUNDS {
            p2.notified().await;
            q2.notify_one();
        }
    });
    let t = rt.block_on(async {
        let mut start = Instant::now();
        for i in 0..WARMUP + ROUNDS {
            if i == WARMUP {
                start = Instant::now();
            }
            ping.notify_one();
            pong.notified().await;
        }
        start.elapsed()
    });
    rt.block_on(far).unwrap();
    t / ROUNDS
}

/// An async wait on an already-signaled manual event: the per-call overhead (no
/// reactor involved).
fn fast_path(rt: &tokio::runtime::Runtime) -> Duration {
    let spec = ObjectSpec::Event {
        manual: true,
        initial: true,
    };
    let e = Arc::new(
        Handle::create(spec, "", &CreateOptions::default())
            .unwrap()
            .0,
    );
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            let _ = procsync_tokio::wait(&e).await.unwrap();
        }
        start.elapsed() / ROUNDS
    })
}

fn main() {
    // Objects are unnamed, but wait tables live under the root: run in a private one
    // (re-executing this program with it) so nothing is left under the default root.
    if std::env::var_os("PROCSYNC_ROOT").is_none() {
        let root =
            std::env::temp_dir().join(format!("procsync-tokio-bench-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env("PROCSYNC_ROOT", &root)
            .status()
            .unwrap();
        let _ = std::fs::remove_dir_all(&root);
        std::process::exit(status.code().unwrap_or(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let ss = sync_sync();
    let as_ = async_sync(&rt);
    let ap = async_sync_pending(&rt);
    let nn = notify_notify(&rt);
    let fp = fast_path(&rt);
    println!(
        "async wait, already signaled {:>8.2} µs",
        fp.as_secs_f64() * 1e6
    );
    let sync_wake = ss / 2;
    let async_wake = as_.saturating_sub(sync_wake);
    println!(
        "round trip  sync<->sync     {:>8.2} µs",
        ss.as_secs_f64() * 1e6
    );
    println!(
        "round trip  async<->sync    {:>8.2} µs",
        as_.as_secs_f64() * 1e6
    );
    println!(
        "round trip  async<->sync, wait pending before the ping {:>8.2} µs",
        ap.as_secs_f64() * 1e6
    );
    println!(
        "round trip  notify<->notify {:>8.2} µs",
        nn.as_secs_f64() * 1e6
    );
    println!(
        "one wake    sync {:.2} µs, async {:.2} µs: async/sync = {:.2}x (goal 1.5x); async/notify = {:.2}x",
        sync_wake.as_secs_f64() * 1e6,
        async_wake.as_secs_f64() * 1e6,
        async_wake.as_secs_f64() / sync_wake.as_secs_f64(),
        async_wake.as_secs_f64() / (nn / 2).as_secs_f64()
    );
    let pending_wake = ap.saturating_sub(sync_wake);
    println!(
        "one wake of a pending async wait {:.2} µs: async/sync = {:.2}x",
        pending_wake.as_secs_f64() * 1e6,
        pending_wake.as_secs_f64() / sync_wake.as_secs_f64()
    );
}
