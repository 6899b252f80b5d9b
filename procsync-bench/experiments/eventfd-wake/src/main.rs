//! Cross-process wake latency: sync futex vs io_uring FUTEX_WAIT vs a peer's eventfd
//! obtained with pidfd_getfd, vs tokio Notify (threads). Both sides pinned to CPU 0.
//!
//! Run: see README.md (`cargo run --release` in this directory)
//! (the binary re-executes itself as `child <memfd>` for process B).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use io_uring::{opcode, IoUring};
use tokio::io::unix::AsyncFd;

const FUTEX2_SIZE_U32: u32 = 0x02;
const MATCH_ANY: u64 = 0xFFFF_FFFF;
const BLOCK: Duration = Duration::from_millis(25);
const ROUNDS: usize = 16;
const WARMUP: u64 = 200;

#[repr(C, align(64))]
struct Line<T>(T);

#[repr(C)]
struct Shared {
    cmd: Line<AtomicU32>,     // sequence number of the command (futex)
    variant: Line<AtomicU32>, // which variant / QUIT
    ack: Line<AtomicU32>,     // child: last cmd seq it is ready for (futex)
    stop: Line<AtomicU32>,
    wa: Line<AtomicU32>, // A's word (A waits on it)
    wb: Line<AtomicU32>, // B's word
    pid_a: Line<AtomicI32>,
    pid_b: Line<AtomicI32>,
    efd_a: Line<AtomicI32>,
    efd_b: Line<AtomicI32>,
    sleep_a: Line<AtomicU32>, // 3c: A is (about to be) parked on its eventfd
    sleep_b: Line<AtomicU32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
enum V {
    Sync = 0,
    Uring = 1,
    Efd = 2,        // pure eventfd: read (one read), clear_ready
    EfdTryIo = 3,   // pure eventfd, tokio `try_io` idiom: read until EAGAIN (2 reads/wake)
    EfdWord = 4,    // 3b: word + eventfd doorbell, read to clear
    EfdWordNoRd = 5, // 3b': word + doorbell, never read (EPOLLET re-arms on each write; as mio's waker)
    Notify = 6,
    SyncThreads = 7, // 1 between two threads of one process (the baseline for Notify)
    EfdFlag = 8, // 3c: word + "I'm parked" flag; the doorbell (no read) only when the flag is up
    UringEfd = 9, // 2b: io_uring FUTEX_WAIT as in 2, plus an eventfd written before the FUTEX_WAKE (no read)
    FifoFlag = 10, // 3d: as 3c, the doorbell a named FIFO (opened by path) instead of an eventfd
}
const ALL: [V; 11] = [V::Sync, V::Uring, V::Efd, V::EfdTryIo, V::EfdWord, V::EfdWordNoRd, V::Notify, V::SyncThreads, V::EfdFlag, V::UringEfd, V::FifoFlag];
const QUIT: u32 = 99;

fn name(v: V) -> &'static str {
    match v {
        V::Sync => "1 sync futex",
        V::Uring => "2 io_uring FUTEX_WAIT",
        V::Efd => "3 eventfd (read+clear)",
        V::EfdTryIo => "3 eventfd (try_io, 2 reads)",
        V::EfdWord => "3b word+eventfd (read)",
        V::EfdWordNoRd => "3b word+eventfd (no read)",
        V::Notify => "4 tokio Notify (threads)",
        V::SyncThreads => "1t sync futex (threads)",
        V::EfdFlag => "3c word+flag+eventfd (no read)",
        V::UringEfd => "2b io_uring + eventfd bell",
        V::FifoFlag => "3d word+flag+FIFO (no read)",
    }
}

fn futex_wait(w: &AtomicU32, val: u32) {
    unsafe {
        libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAIT, val, std::ptr::null::<libc::timespec>());
    }
}
fn futex_wake(w: &AtomicU32) {
    unsafe {
        libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

fn pin_cpu0() {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set), 0);
    }
}

fn map(fd: RawFd) -> &'static Shared {
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        assert_ne!(p, libc::MAP_FAILED);
        &*(p as *const Shared)
    }
}

struct RingFd(RawFd);
impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// One per process: its runtime's ring and eventfd, plus the peer's eventfd.
struct Side {
    sh: &'static Shared,
    ring: Mutex<IoUring>,
    ring_fd: AsyncFd<RingFd>,
    efd: AsyncFd<OwnedFd>,
    peer_efd: OwnedFd,
    fifo: AsyncFd<OwnedFd>,
    peer_fifo: OwnedFd,
    is_a: bool,
}

impl Side {
    fn my_word(&self) -> &AtomicU32 {
        if self.is_a { &self.sh.wa.0 } else { &self.sh.wb.0 }
    }
    fn peer_word(&self) -> &AtomicU32 {
        if self.is_a { &self.sh.wb.0 } else { &self.sh.wa.0 }
    }
    fn my_flag(&self) -> &AtomicU32 {
        if self.is_a { &self.sh.sleep_a.0 } else { &self.sh.sleep_b.0 }
    }
    fn peer_flag(&self) -> &AtomicU32 {
        if self.is_a { &self.sh.sleep_b.0 } else { &self.sh.sleep_a.0 }
    }

    /// io_uring FUTEX_WAIT on `w` while it holds `val`; returns once the CQE is reaped.
    /// Submits an io_uring FUTEX_WAIT on `w` while it holds `val`; `true` if it already
    /// completed (EAGAIN: the word had moved).
    fn submit_wait(&self, w: &AtomicU32, val: u32) -> bool {
        let mut r = self.ring.lock().unwrap();
        let e = opcode::FutexWait::new(w.as_ptr(), u64::from(val), MATCH_ANY, FUTEX2_SIZE_U32).build().user_data(1);
        unsafe { r.submission().push(&e).unwrap() };
        r.submit().unwrap();
        let done = r.completion().next().is_some();
        done
    }

    fn take(&self) -> bool {
        self.ring.lock().unwrap().completion().next().is_some()
    }

    async fn uring_wait(&self, w: &AtomicU32, val: u32) {
        let take = || self.take();
        if self.submit_wait(w, val) {
            return; // completed inline (EAGAIN: the word already moved)
        }
        loop {
            let mut g = self.ring_fd.readable().await.unwrap();
            let got = take();
            g.clear_ready();
            if got {
                return;
            }
        }
    }

    /// As `uring_wait`, but the wake-up may also come through the eventfd (the waker
    /// writes it before its FUTEX_WAKE): either readiness drains the completion queue.
    async fn uring_efd_wait(&self, w: &AtomicU32, val: u32) {
        let take = || self.take();
        if self.submit_wait(w, val) {
            return;
        }
        loop {
            tokio::select! {
                g = self.ring_fd.readable() => { let mut g = g.unwrap(); if take() { return; } g.clear_ready(); }
                g = self.efd.readable() => { let mut g = g.unwrap(); g.clear_ready(); if take() { return; } }
            }
        }
    }

    fn efd_read(&self) -> bool {
        let mut b = [0u8; 8];
        rustix::io::read(self.efd.get_ref(), &mut b).is_ok()
    }

    fn ring_peer(&self) {
        rustix::io::write(&self.peer_efd, &1u64.to_ne_bytes()).unwrap();
    }

    /// Waits for the next doorbell on the own eventfd.
    async fn efd_wait(&self, v: V) {
        match v {
            V::Efd | V::EfdWord => loop {
                let mut g = self.efd.readable().await.unwrap();
                let ok = self.efd_read();
                // After a successful read the counter is 0: clearing is safe (EPOLLET
                // reports the next write as a new event at the next epoll_wait).
                g.clear_ready();
                if ok {
                    return;
                }
            },
            V::EfdTryIo => loop {
                let mut g = self.efd.readable().await.unwrap();
                let mut got = false;
                // The usual idiom: read until WouldBlock (only then is readiness cleared).
                while let Ok(r) = g.try_io(|fd| {
                    let mut b = [0u8; 8];
                    rustix::io::read(fd.get_ref(), &mut b).map_err(std::io::Error::from)
                }) {
                    r.unwrap();
                    got = true;
                }
                if got {
                    return;
                }
            },
            V::EfdWordNoRd | V::EfdFlag => {
                let mut g = self.efd.readable().await.unwrap();
                g.clear_ready();
            }
            _ => unreachable!(),
        }
    }

    /// Wait until own word != `last`, with variant `v`'s primitive. Returns the new value.
    async fn wait_word(&self, v: V, last: u32) -> u32 {
        let w = self.my_word();
        loop {
            let cur = w.load(SeqCst);
            if cur != last {
                return cur;
            }
            match v {
                V::Uring => self.uring_wait(w, last).await,
                V::UringEfd => self.uring_efd_wait(w, last).await,
                V::EfdWord | V::EfdWordNoRd => self.efd_wait(v).await,
                V::FifoFlag => {
                    self.my_flag().store(1, SeqCst);
                    if w.load(SeqCst) == last {
                        let mut g = self.fifo.readable().await.unwrap();
                        g.clear_ready();
                    }
                    self.my_flag().store(0, SeqCst);
                }
                V::EfdFlag => {
                    // Dekker with the waker: flag up, then re-check the word.
                    self.my_flag().store(1, SeqCst);
                    if w.load(SeqCst) == last {
                        self.efd_wait(v).await;
                    }
                    self.my_flag().store(0, SeqCst);
                }
                _ => unreachable!(),
            }
        }
    }

    fn wake_word(&self, v: V, val: u32) {
        let p = self.peer_word();
        p.store(val, SeqCst);
        match v {
            V::Uring => futex_wake(p),
            V::UringEfd => {
                self.ring_peer();
                futex_wake(p)
            }
            V::EfdWord | V::EfdWordNoRd => self.ring_peer(),
            V::EfdFlag => {
                if self.peer_flag().load(SeqCst) != 0 {
                    self.ring_peer();
                }
            }
            V::FifoFlag => {
                if self.peer_flag().swap(0, SeqCst) != 0 {
                    let _ = rustix::io::write(&self.peer_fifo, &[1u8]);
                }
            }
            _ => unreachable!(),
        }
    }

    /// B's responder for one block.
    async fn respond(&self, v: V) {
        match v {
            V::Uring | V::UringEfd | V::EfdWord | V::EfdWordNoRd | V::EfdFlag | V::FifoFlag => {
                let mut last = 0;
                loop {
                    last = self.wait_word(v, last).await;
                    let stop = self.sh.stop.0.load(SeqCst) != 0;
                    self.wake_word(v, last);
                    if stop {
                        return;
                    }
                }
            }
            V::Efd | V::EfdTryIo => loop {
                self.efd_wait(v).await;
                let stop = self.sh.stop.0.load(SeqCst) != 0;
                self.ring_peer();
                if stop {
                    return;
                }
            },
            _ => unreachable!(),
        }
    }

    /// A's initiator for one block: returns (round trips, elapsed) after the warm-up.
    async fn initiate(&self, v: V) -> (u64, Duration) {
        let mut clock = BlockClock::new();
        loop {
            let (i, last) = clock.tick();
            if last {
                self.sh.stop.0.store(1, SeqCst);
            }
            match v {
                V::Uring | V::UringEfd | V::EfdWord | V::EfdWordNoRd | V::EfdFlag | V::FifoFlag => {
                    let n = i as u32;
                    self.wake_word(v, n);
                    let got = self.wait_word(v, n - 1).await;
                    assert_eq!(got, n);
                }
                V::Efd | V::EfdTryIo => {
                    self.ring_peer();
                    self.efd_wait(v).await;
                }
                _ => unreachable!(),
            }
            if last {
                return clock.result();
            }
        }
    }
}

/// Counts the round trips of one block: `WARMUP` uncounted ones, then `BLOCK` of time
/// (checked every 32 round trips).
struct BlockClock {
    i: u64,
    t0: Instant,
    deadline: Instant,
}

impl BlockClock {
    fn new() -> BlockClock {
        let t0 = Instant::now();
        BlockClock { i: 0, t0, deadline: t0 + BLOCK }
    }

    /// The next round trip's number, and whether it is the block's last.
    fn tick(&mut self) -> (u64, bool) {
        self.i += 1;
        if self.i == WARMUP + 1 {
            self.t0 = Instant::now();
            self.deadline = self.t0 + BLOCK;
        }
        let last = self.i % 32 == 0 && self.i > WARMUP && Instant::now() >= self.deadline;
        (self.i, last)
    }

    /// Round trips counted, and the time they took.
    fn result(&self) -> (u64, Duration) {
        (self.i - WARMUP, self.t0.elapsed())
    }
}

fn sync_respond(sh: &Shared) {
    let mut last = 0;
    loop {
        while sh.wb.0.load(SeqCst) == last {
            futex_wait(&sh.wb.0, last);
        }
        last = sh.wb.0.load(SeqCst);
        let stop = sh.stop.0.load(SeqCst) != 0;
        sh.wa.0.store(last, SeqCst);
        futex_wake(&sh.wa.0);
        if stop {
            return;
        }
    }
}

fn sync_initiate(sh: &Shared) -> (u64, Duration) {
    let mut clock = BlockClock::new();
    loop {
        let (i, last) = clock.tick();
        if last {
            sh.stop.0.store(1, SeqCst);
        }
        let n = i as u32;
        sh.wb.0.store(n, SeqCst);
        futex_wake(&sh.wb.0);
        while sh.wa.0.load(SeqCst) == n - 1 {
            futex_wait(&sh.wa.0, n - 1);
        }
        if last {
            return clock.result();
        }
    }
}

fn notify_block() -> (u64, Duration) {
    use tokio::sync::Notify;
    let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let far = {
        let (ping, pong, stop) = (ping.clone(), pong.clone(), stop.clone());
        std::thread::spawn(move || {
            pin_cpu0();
            rt().block_on(async move {
                tokio::spawn(async move {
                    loop {
                        ping.notified().await;
                        let s = stop.load(SeqCst);
                        pong.notify_one();
                        if s {
                            return;
                        }
                    }
                })
                .await
                .unwrap()
            })
        })
    };
    let r = std::thread::spawn(move || {
        pin_cpu0();
        rt().block_on(async move {
            tokio::spawn(async move {
                let mut clock = BlockClock::new();
                loop {
                    let (_, last) = clock.tick();
                    if last {
                        stop.store(true, SeqCst);
                    }
                    ping.notify_one();
                    pong.notified().await;
                    if last {
                        return clock.result();
                    }
                }
            })
            .await
            .unwrap()
        })
    })
    .join()
    .unwrap();
    far.join().unwrap();
    r
}

fn make_side(sh: &'static Shared, rt: &tokio::runtime::Runtime, is_a: bool) -> Side {
    let _e = rt.enter();
    let ring = match std::env::var("EVFD_RING").as_deref() {
        Ok("coop") => IoUring::builder().setup_coop_taskrun().build(8).unwrap(),
        Ok("coopflag") => IoUring::builder().setup_coop_taskrun().setup_taskrun_flag().build(8).unwrap(),
        Ok("defer") => IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(8).unwrap(),
        _ => IoUring::new(8).unwrap(),
    };
    let ring_fd = unsafe { AsyncFd::register_with_interest(RingFd(ring.as_raw_fd()), tokio::io::Interest::READABLE) }.unwrap();
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC).unwrap();
    let (my_pid, my_efd) = if is_a { (&sh.pid_a.0, &sh.efd_a.0) } else { (&sh.pid_b.0, &sh.efd_b.0) };
    my_efd.store(efd.as_raw_fd(), SeqCst);
    my_pid.store(std::process::id() as i32, SeqCst);
    let efd = unsafe { AsyncFd::register_with_interest(efd, tokio::io::Interest::READABLE) }.unwrap();
    // placeholder; the peer's eventfd is fetched once the peer has published it
    let peer_efd = unsafe { OwnedFd::from_raw_fd(libc::dup(efd.as_raw_fd())) };
    let path = |a: bool| format!("/tmp/evfd-fifo-{}-{}", std::env::var("EVFD_TAG").unwrap(), if a { "a" } else { "b" });
    let open = |a: bool| -> OwnedFd {
        let p = path(a);
        let _ = rustix::fs::mkfifoat(rustix::fs::CWD, p.as_str(), rustix::fs::Mode::from_raw_mode(0o600));
        rustix::fs::open(p.as_str(), rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty()).unwrap()
    };
    let fifo = unsafe { AsyncFd::register_with_interest(open(is_a), tokio::io::Interest::READABLE) }.unwrap();
    let peer_fifo = open(!is_a);
    Side { sh, ring: Mutex::new(ring), ring_fd, efd, peer_efd, fifo, peer_fifo, is_a }
}

/// pidfd_open(peer) + pidfd_getfd(peer's eventfd number), once.
fn fetch_peer(side: &mut Side) {
    let sh = side.sh;
    let (pid, fd) = if side.is_a {
        (sh.pid_b.0.load(SeqCst), sh.efd_b.0.load(SeqCst))
    } else {
        (sh.pid_a.0.load(SeqCst), sh.efd_a.0.load(SeqCst))
    };
    let pidfd = rustix::process::pidfd_open(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::PidfdFlags::empty()).unwrap();
    let got = rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        .unwrap_or_else(|e| panic!("pidfd_getfd({pid}, {fd}) from {}: {e}", std::process::id()));
    side.peer_efd = got;
}

fn drain_efd(side: &Side) {
    while side.efd_read() {}
}

fn child(fd: RawFd) {
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    pin_cpu0();
    let sh = map(fd);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut side = make_side(sh, &rt, false);
    fetch_peer(&mut side); // A published before spawning us
    let side: &'static Side = Box::leak(Box::new(side));
    let mut seen = 0;
    sh.ack.0.store(0xFFFF_FFFF, SeqCst); // "set up"
    futex_wake(&sh.ack.0);
    loop {
        while sh.cmd.0.load(SeqCst) == seen {
            futex_wait(&sh.cmd.0, seen);
        }
        seen = sh.cmd.0.load(SeqCst);
        let v = sh.variant.0.load(SeqCst);
        if v == QUIT {
            return;
        }
        let v = ALL[v as usize];
        drain_efd(side);
        sh.ack.0.store(seen, SeqCst);
        futex_wake(&sh.ack.0);
        if v == V::Sync {
            sync_respond(sh);
        } else {
            rt.block_on(async move { tokio::spawn(side.respond(v)).await.unwrap() });
        }
    }
}

struct Kid(std::process::Child);
impl Drop for Kid {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "child" {
        child(args[2].parse().unwrap());
        return;
    }
    unsafe { std::env::set_var("EVFD_TAG", std::process::id().to_string()) };
    pin_cpu0();
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap();
    // memfd without CLOEXEC: inherited by the child; nothing in /dev/shm.
    let mfd = unsafe { libc::memfd_create(c"evfd-proto".as_ptr(), 0) };
    assert!(mfd >= 0);
    assert_eq!(unsafe { libc::ftruncate(mfd, 4096) }, 0);
    let sh = map(mfd);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut side = make_side(sh, &rt, true);
    let mut kid = Kid(std::process::Command::new("/proc/self/exe").arg("child").arg(mfd.to_string()).spawn().unwrap());
    while sh.ack.0.load(SeqCst) != 0xFFFF_FFFF {
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 100_000_000 };
        unsafe { libc::syscall(libc::SYS_futex, sh.ack.0.as_ptr(), libc::FUTEX_WAIT, 0, &ts) };
        if let Some(st) = kid.0.try_wait().unwrap() {
            panic!("child exited: {st}");
        }
    }
    fetch_peer(&mut side);
    let side: &'static Side = Box::leak(Box::new(side));

    let mut per: Vec<Vec<f64>> = vec![Vec::new(); ALL.len()]; // ns per round trip
    let mut seq = 0u32;
    for round in 0..ROUNDS {
        let only = std::env::var("EVFD_ONLY").ok();
        let mut order: Vec<V> = ALL.iter().copied().filter(|v| only.as_ref().is_none_or(|o| o.split(',').any(|x| x.parse::<u32>().ok() == Some(*v as u32)))).collect();
        let k = round % order.len();
        order.rotate_left(k);
        if round % 2 == 1 {
            order.reverse();
        }
        for v in order {
            sh.stop.0.store(0, SeqCst);
            sh.wa.0.store(0, SeqCst);
            sh.wb.0.store(0, SeqCst);
            sh.sleep_a.0.store(0, SeqCst);
            sh.sleep_b.0.store(0, SeqCst);
            let (n, t) = if v == V::Notify {
                notify_block()
            } else if v == V::SyncThreads {
                let far = std::thread::spawn(move || {
                    pin_cpu0();
                    sync_respond(sh)
                });
                let r = sync_initiate(sh);
                far.join().unwrap();
                r
            } else {
                drain_efd(side);
                seq += 1;
                sh.variant.0.store(v as u32, SeqCst);
                sh.cmd.0.store(seq, SeqCst);
                futex_wake(&sh.cmd.0);
                loop {
                    let a = sh.ack.0.load(SeqCst);
                    if a == seq {
                        break;
                    }
                    futex_wait(&sh.ack.0, a);
                }
                if v == V::Sync {
                    sync_initiate(sh)
                } else {
                    rt.block_on(async move { tokio::spawn(side.initiate(v)).await.unwrap() })
                }
            };
            per[v as usize].push(t.as_nanos() as f64 / n as f64);
            if std::env::var_os("EVFD_VERBOSE").is_some() {
                eprintln!("{:?} {} rt (+{} warm-up)", v, n, WARMUP);
            }
        }
    }
    seq += 1;
    sh.variant.0.store(QUIT, SeqCst);
    sh.cmd.0.store(seq, SeqCst);
    futex_wake(&sh.cmd.0);
    let st = kid.0.wait().unwrap();
    drop(kid);
    for x in ["a", "b"] {
        let _ = std::fs::remove_file(format!("/tmp/evfd-fifo-{}-{x}", std::env::var("EVFD_TAG").unwrap()));
    }
    let load1 = std::fs::read_to_string("/proc/loadavg").unwrap();

    println!("loadavg start {} end {}", load0.trim(), load1.trim());
    println!("child exit: {st}; {ROUNDS} rounds x {} ms blocks per variant, both sides on CPU 0", BLOCK.as_millis());
    println!("{:<30} {:>10} {:>10} {:>10} {:>8}", "variant", "med ns/rt", "min ns/rt", "max ns/rt", "ratio");
    let sync = per[V::Sync as usize].clone();
    for v in ALL {
        if per[v as usize].is_empty() || sync.is_empty() {
            continue;
        }
        let xs = &per[v as usize];
        let mut ratios: Vec<f64> = xs.iter().zip(&sync).map(|(x, s)| x / s).collect();
        let mut m = xs.clone();
        let mn = m.iter().cloned().fold(f64::MAX, f64::min);
        let mx = m.iter().cloned().fold(0.0, f64::max);
        println!("{:<30} {:>10.0} {:>10.0} {:>10.0} {:>7.2}x", name(v), median(&mut m), mn, mx, median(&mut ratios));
    }
}
