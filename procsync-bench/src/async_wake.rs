//! The async rows (`async/wake`): the wake of an async wait served by procsync-tokio's
//! reactors, against the sync wake and against tokio's own in-process wake
//! (`tokio::sync::Notify`), in paired blocks like every ping-pong.
//!
//! Each side of a ping-pong is one thread: the measuring thread and a partner thread
//! started for the scenario (threads, not processes: the futures live in this
//! process; the objects are unnamed). On the async sides each thread drives a
//! current-thread runtime, so a wake is: the signaller → the reactor thread → the
//! task's thread. A round trip is two wakes of the same kind, so the ratio of round
//! trips is the ratio of wakes. Partners are not pinned; they stop (and are joined)
//! when the scenario ends.
//!
//! It owns no process and must not leave a thread behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;

use procsync::{CreateOptions, Handle, ObjectSpec};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::{PairStats, Plan, Report, paired, quantile};

const GROUP: &str = "async/wake";

fn auto_event() -> Arc<Handle> {
    let spec = ObjectSpec::Event {
        manual: false,
        initial: false,
    };
    let (h, _) = Handle::create(spec, "", &CreateOptions::default())
        .unwrap_or_else(|e| panic!("creating an unnamed event: {e}"));
    Arc::new(h)
}

/// Runs `f` as a spawned task of `rt` (how servers run, rather than in `block_on`)
/// until it completes.
fn in_task(rt: &Runtime, what: &str, f: impl std::future::Future<Output = ()> + Send + 'static) {
    rt.block_on(rt.spawn(f))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("building a tokio runtime: {e}"))
}

/// `n` round trips from a task of `rt`: set `ping`, await `pong`.
fn async_round_trips(rt: &Runtime, ping: &Arc<Handle>, pong: &Arc<Handle>, n: u64) {
    let (ping, pong) = (ping.clone(), pong.clone());
    in_task(rt, "the measuring task", async move {
        for _ in 0..n {
            ping.set().expect("setting ping");
            let _ = procsync_tokio::wait(&pong)
                .await
                .expect("async wait on pong");
        }
    });
}

/// A partner thread answering each ping with a pong until `stop` is raised and one
/// more ping arrives.
struct Partner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Sends the last ping (after `stop`), so that the partner sees the flag.
    ping: Box<dyn Fn()>,
}

impl Partner {
    fn start(body: impl FnOnce(Arc<AtomicBool>) + Send + 'static, ping: Box<dyn Fn()>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-async-partner".into())
            .spawn(move || body(s))
            .unwrap_or_else(|e| panic!("starting a partner thread: {e}"));
        Partner {
            stop,
            thread: Some(thread),
            ping,
        }
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        (self.ping)();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Two async sides: the measuring thread's runtime, and a partner task awaiting
/// `procsync_tokio::wait` on its own runtime.
struct AsyncPair {
    rt: Runtime,
    ping: Arc<Handle>,
    pong: Arc<Handle>,
    _partner: Partner,
}

impl AsyncPair {
    fn start() -> AsyncPair {
        let (ping, pong) = (auto_event(), auto_event());
        let (p, q) = (ping.clone(), pong.clone());
        let body = move |stop: Arc<AtomicBool>| {
            let rt = runtime();
            in_task(&rt, "the partner task", async move {
                loop {
                    let _ = procsync_tokio::wait(&p).await.expect("async wait on ping");
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    q.set().expect("setting pong");
                }
            });
        };
        let last = ping.clone();
        let partner = Partner::start(
            body,
            Box::new(move || {
                let _ = last.set();
            }),
        );
        AsyncPair {
            rt: runtime(),
            ping,
            pong,
            _partner: partner,
        }
    }

    fn round_trips(&self, n: u64) {
        async_round_trips(&self.rt, &self.ping, &self.pong, n);
    }
}

/// Two sync sides: procsync's blocking `wait`.
struct SyncPair {
    ping: Arc<Handle>,
    pong: Arc<Handle>,
    _partner: Partner,
}

impl SyncPair {
    fn start() -> SyncPair {
        let (ping, pong) = (auto_event(), auto_event());
        let (p, q) = (ping.clone(), pong.clone());
        let body = move |stop: Arc<AtomicBool>| {
            loop {
                let _ = p.wait(None).expect("wait on ping");
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                q.set().expect("setting pong");
            }
        };
        let last = ping.clone();
        let partner = Partner::start(
            body,
            Box::new(move || {
                let _ = last.set();
            }),
        );
        SyncPair {
            ping,
            pong,
            _partner: partner,
        }
    }

    fn round_trips(&self, n: u64) {
        for _ in 0..n {
            self.ping.set().expect("setting ping");
            let _ = self.pong.wait(None).expect("wait on pong");
        }
    }
}

/// Two async sides on `tokio::sync::Notify`: the runtime's own cross-thread wake.
struct NotifyPair {
    rt: Runtime,
    ping: Arc<Notify>,
    pong: Arc<Notify>,
    _partner: Partner,
}

impl NotifyPair {
    fn start() -> NotifyPair {
        let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (p, q) = (ping.clone(), pong.clone());
        let body = move |stop: Arc<AtomicBool>| {
            let rt = runtime();
            in_task(&rt, "the partner task", async move {
                loop {
                    p.notified().await;
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    q.notify_one();
                }
            });
        };
        let last = ping.clone();
        let partner = Partner::start(body, Box::new(move || last.notify_one()));
        NotifyPair {
            rt: runtime(),
            ping,
            pong,
            _partner: partner,
        }
    }

    fn round_trips(&self, n: u64) {
        let (ping, pong) = (self.ping.clone(), self.pong.clone());
        in_task(&self.rt, "the measuring task", async move {
            for _ in 0..n {
                ping.notify_one();
                pong.notified().await;
            }
        });
    }
}

/// A bare io_uring futex waiter in a tokio task: its ring registered in the runtime's
/// epoll, one `IORING_OP_FUTEX_WAIT` per wait, no procsync. The floor of any async
/// wake that goes through the kernel's futex and the runtime's epoll.
struct UringWaiter {
    /// Declared first, so dropped first: deregistered before `ring` closes the
    /// descriptor.
    fd: tokio::io::unix::AsyncFd<RingFd>,
    ring: io_uring::IoUring,
}

struct RingFd(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for RingFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

impl UringWaiter {
    /// In a runtime with I/O (the `AsyncFd` registers there).
    fn new() -> UringWaiter {
        use std::os::fd::AsRawFd;
        let ring = io_uring::IoUring::new(8).expect("an io_uring");
        let raw = ring.as_raw_fd();
        // SAFETY: the ring's descriptor stays open while the AsyncFd lives: both are
        // fields of this struct, and `fd` is dropped before `ring` (field order).
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                RingFd(raw),
                tokio::io::Interest::READABLE,
            )
        }
        .unwrap_or_else(|e| panic!("registering the ring: {e}"));
        UringWaiter { fd, ring }
    }

    /// Returns once `w` no longer reads `seen`.
    async fn changed(&mut self, w: &AtomicU32, seen: u32) {
        while w.load(Ordering::Acquire) == seen {
            let e = io_uring::opcode::FutexWait::new(w.as_ptr(), u64::from(seen), 0xFFFF_FFFF, 2)
                .build()
                .user_data(1);
            // SAFETY: `w` outlives the futex wait: this function returns only after its
            // completion.
            unsafe { self.ring.submission().push(&e) }.expect("room in the queue");
            self.ring.submit().expect("io_uring_enter");
            loop {
                if self.ring.completion().next().is_some() {
                    break;
                }
                let mut ready = self.fd.readable().await.expect("ring readiness");
                if self.ring.completion().is_empty() {
                    ready.clear_ready();
                }
            }
        }
    }
}

/// Two async sides on bare io_uring futex waits over two shared counters.
struct UringPair {
    rt: Runtime,
    ping: Arc<AtomicU32>,
    pong: Arc<AtomicU32>,
    _partner: Partner,
}

impl UringPair {
    fn start() -> UringPair {
        let (ping, pong) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (p, q) = (ping.clone(), pong.clone());
        let body = move |stop: Arc<AtomicBool>| {
            let rt = runtime();
            in_task(&rt, "the partner task", async move {
                let mut w = UringWaiter::new();
                let mut seen = 0;
                loop {
                    w.changed(&p, seen).await;
                    seen = p.load(Ordering::Acquire);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    q.fetch_add(1, Ordering::Release);
                    super::futex_wake(&q);
                }
            });
        };
        let last = ping.clone();
        let partner = Partner::start(
            body,
            Box::new(move || {
                last.fetch_add(1, Ordering::Release);
                super::futex_wake(&last);
            }),
        );
        UringPair {
            rt: runtime(),
            ping,
            pong,
            _partner: partner,
        }
    }

    fn round_trips(&self, n: u64) {
        let (ping, pong) = (self.ping.clone(), self.pong.clone());
        in_task(&self.rt, "the measuring task", async move {
            let mut w = UringWaiter::new();
            for _ in 0..n {
                let seen = pong.load(Ordering::Acquire);
                ping.fetch_add(1, Ordering::Release);
                super::futex_wake(&ping);
                w.changed(&pong, seen).await;
            }
        });
    }
}

/// Across processes: this thread's tokio task ping-pongs two named auto-reset events
/// with a sync partner process (the `wake/ping-pong` rows' `pp-procsync` partner, on the
/// same CPU): a round trip is one async wake (here, rung through the runtime's bell from
/// the other process) and one sync wake (there).
struct CrossPair {
    rt: Runtime,
    ping: Arc<Handle>,
    pong: Arc<Handle>,
    _partner: crate::Partner,
}

impl CrossPair {
    fn start(cpu: Option<usize>) -> CrossPair {
        let prefix = format!("Local\\bench-async-x-{}", std::process::id());
        let event = |name: String| {
            let (e, _) = procsync::Event::create(&name, false, false)
                .unwrap_or_else(|e| panic!("creating {name}: {e}"));
            Arc::new(Handle::from(e))
        };
        let (ping, pong) = (
            event(format!("{prefix}-ping")),
            event(format!("{prefix}-pong")),
        );
        let partner = crate::Partner::spawn(&format!("pp-procsync:setwait:1:{prefix}"), cpu);
        let pair = CrossPair {
            rt: runtime(),
            ping,
            pong,
            _partner: partner,
        };
        pair.round_trips(1); // the partner is up and has opened both events
        pair
    }

    fn round_trips(&self, n: u64) {
        async_round_trips(&self.rt, &self.ping, &self.pong, n);
    }
}

/// The `async/wake` rows: procsync-tokio against procsync's sync wait, against
/// tokio's `Notify`, and against the bare io_uring futex floor.
pub fn run(report: &mut Report, plan: &Plan) {
    // Every thread of these rows on one CPU, as in `wake/ping-pong-same-cpu`: the
    // measuring thread is pinned here and the partner (and reactor) threads it starts
    // inherit the mask. Unpinned, a wake-up costs whatever the scheduler's placement
    // and a halted vCPU make of it, and the ratios swung from 0.2× to 1.8× between
    // runs on the 2-vCPU VM.
    let cpus = crate::allowed_cpus();
    if let Some(&cpu) = cpus.first() {
        crate::pin(&[cpu]);
    }
    run_pinned(report, plan);
    cross_process(report, plan, cpus.first().copied());
    if !cpus.is_empty() {
        crate::pin(&cpus);
    }
}

fn run_pinned(report: &mut Report, plan: &Plan) {
    // The reactor threads first (the path without io_uring), then the default path.
    procsync_tokio::set_io_uring(false);
    let r = AsyncPair::start();
    let s = SyncPair::start();
    let st = paired(
        &mut |n| r.round_trips(n),
        &mut |n| s.round_trips(n),
        plan.ping_pong,
    );
    report.pair(
        GROUP,
        "procsync-tokio-reactor",
        "procsync-sync",
        "per round trip",
        st,
    );
    drop((r, s));
    procsync_tokio::set_io_uring(true);
    let a = AsyncPair::start();
    let s = SyncPair::start();
    let st = paired(
        &mut |n| a.round_trips(n),
        &mut |n| s.round_trips(n),
        plan.ping_pong,
    );
    report.pair(
        GROUP,
        "procsync-tokio",
        "procsync-sync",
        "per round trip",
        st,
    );
    drop(s);
    let t = NotifyPair::start();
    let st = paired(
        &mut |n| a.round_trips(n),
        &mut |n| t.round_trips(n),
        plan.ping_pong,
    );
    report.pair(
        GROUP,
        "procsync-tokio",
        "tokio-notify",
        "per round trip",
        st,
    );
    drop(t);
    let u = UringPair::start();
    let st = paired(
        &mut |n| a.round_trips(n),
        &mut |n| u.round_trips(n),
        plan.ping_pong,
    );
    report.pair(
        GROUP,
        "procsync-tokio",
        "tokio-io_uring-futex",
        "per round trip",
        st,
    );
}

/// The cross-process row: half-async round trips (one async wake, one sync) against
/// all-sync ones, with the same kind of partner process on the same CPU. The async
/// wake's own ratio is twice this one, less one.
fn cross_process(report: &mut Report, plan: &Plan, cpu: Option<usize>) {
    let a = CrossPair::start(cpu);
    let mut s = crate::ProcsyncPingPong::new("async-xs", 1, crate::Mode::SetWait, cpu);
    let st = paired(
        &mut |n| a.round_trips(n),
        &mut |n| crate::PingPong::round_trips(&mut s, n),
        plan.ping_pong,
    );
    report.pair(
        GROUP,
        "procsync-tokio-cross-process",
        "procsync-sync-cross-process",
        "per round trip (half async)",
        st,
    );
}

/// Pending async waits started per round of the `async/pending` row.
const PENDING: usize = 2000;
/// Rounds (alternating sides) of the `async/pending` row.
const PENDING_ROUNDS: usize = 6;

/// Bytes of the heap in use (glibc's `mallinfo2`: allocated, not merely resident, so
/// memory freed by an earlier round and reused does not hide a cost).
fn heap_in_use() -> f64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as f64
}

/// Starts `n` tasks, each awaiting `wait(k)`, and returns once every one has been
/// polled (its wait queued): (nanoseconds per wait, heap bytes per pending wait, the
/// tasks).
fn start_pending<F>(
    rt: &Runtime,
    n: usize,
    wait: impl Fn(usize) -> F,
) -> (f64, f64, Vec<tokio::task::JoinHandle<()>>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heap = heap_in_use();
    let t0 = std::time::Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|k| {
            let (w, started) = (wait(k), started.clone());
            rt.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                w.await
            })
        })
        .collect();
    rt.block_on(async {
        while started.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    });
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    (ns, (heap_in_use() - heap) / n as f64, tasks)
}

/// The `async/pending` row: starting 2 000 pending waits on distinct objects, and
/// the heap each pending wait holds (task, future, driver slot; the wait block, 832
/// bytes of shared memory, and the kernel's io_uring request are not heap), against
/// 2 000 tasks awaiting distinct `tokio::sync::Notify`s.
pub fn pending(report: &mut Report) {
    procsync_tokio::set_io_uring(true);
    let rt = runtime();
    let events: Vec<Arc<Handle>> = (0..PENDING).map(|_| auto_event()).collect();
    let notifies: Vec<Arc<Notify>> = (0..PENDING).map(|_| Arc::new(Notify::new())).collect();
    let (mut ps, mut bs, mut ratios, mut pm, mut bm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PENDING_ROUNDS {
        let (p, mem, tasks) = start_pending(&rt, PENDING, |k| {
            let w = procsync_tokio::wait(&events[k]);
            async move {
                let _ = w.await.expect("async wait");
            }
        });
        for e in &events {
            e.set().expect("set");
        }
        rt.block_on(async {
            for t in tasks {
                t.await.expect("a waiting task");
            }
        });
        let (b, bmem, tasks) = start_pending(&rt, PENDING, |k| {
            let n = notifies[k].clone();
            async move { n.notified().await }
        });
        for n in &notifies {
            n.notify_one();
        }
        rt.block_on(async {
            for t in tasks {
                t.await.expect("a notified task");
            }
        });
        ratios.push(p / b.max(1.0));
        ps.push(p);
        bs.push(b);
        pm.push(mem);
        bm.push(bmem);
    }
    report.pair_with(
        "async/pending",
        "procsync-tokio",
        "tokio-notify",
        "start a pending wait",
        PairStats::of_rounds(ps, bs, ratios),
        vec![(
            "heap_bytes_per_pending_wait",
            quantile(&mut pm, 0.5),
            quantile(&mut bm, 0.5),
        )],
    );
}
