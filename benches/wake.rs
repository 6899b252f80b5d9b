//! procsync benchmarks, each group with its baseline measured in the same run
//! (see `benches/README.md` for scenarios, parameters and recorded ratios).
//!
//! * `mutex/uncontended/*`: acquire + release, vs a process-shared pthread mutex.
//! * `semaphore/uncontended/*`: wait(0) + release(1), vs a process-shared `sem_t`.
//! * `event/set-wait0/*`: set + wait(0) on an auto-reset event, vs eventfd write + read.
//! * `event/set-reset/*`: set + reset with no waiter, vs eventfd and a bare atomic flag.
//! * `wake/ping-pong-{same,cross}-cpu/*`: cross-process round trip (two processes, two
//!   auto-reset events) with set + wait on 1 object, signal_and_wait, and wait_any over
//!   8 and 64, vs a raw shared futex; both processes pinned to one CPU, or to two.
//! * `wait_all/8-semaphores/*`: wait_all over 8 semaphores vs 8 single waits.
//!
//! After criterion's report, a full `cargo bench` run prints a table of *paired*
//! ratios, measured in interleaved blocks (see [`Paired`]): the numbers to quote.
//!
//! The partner process of a ping-pong is this very binary, re-executed with
//! `PROCSYNC_BENCH_CHILD` set: `main` checks it before criterion starts, runs the
//! partner loop, and never returns. Partners are killed and reaped when their
//! benchmark ends, and die with this process (`PR_SET_PDEATHSIG`). Every named object
//! lives under a fresh temporary `PROCSYNC_ROOT`, removed at exit (also on SIGINT,
//! SIGTERM and SIGHUP).

#![allow(unsafe_code)]

use std::hint::black_box;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use procsync::{Event, Handle, Mutex, Semaphore, WaitOutcome, signal_and_wait, wait_all, wait_any};

/// Environment variable that turns this binary into a ping-pong partner.
const CHILD_VAR: &str = "PROCSYNC_BENCH_CHILD";
/// The parent's pid, so that a partner whose parent is already gone exits at once.
const PARENT_VAR: &str = "PROCSYNC_BENCH_PARENT";
/// Where the temporary root lives (inherited by partners; they never remove it).
const DIR_VAR: &str = "PROCSYNC_BENCH_DIR";
/// The CPU a partner pins itself to (unset: not pinned).
const CPU_VAR: &str = "PROCSYNC_BENCH_CPU";

fn main() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        child_main(&spec);
    }
    let dir = TempDir::new();
    // SAFETY: no other thread exists yet (criterion has not started, no partner or
    // helper thread has been spawned), so nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("PROCSYNC_ROOT", dir.path.join("root"));
        std::env::set_var(DIR_VAR, &dir.path);
    }
    cleanup_on_signal(&dir.path);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(20_000)
        .configure_from_args();
    let mut t = Paired::from_args();
    mutex_uncontended(&mut c, &mut t);
    semaphore_uncontended(&mut c, &mut t);
    event_set_wait0(&mut c, &mut t);
    event_set_reset(&mut c, &mut t);
    wake_ping_pong(&mut c, &mut t);
    wait_all_8(&mut c, &mut t);
    c.final_summary();
    t.print();
    drop(dir);
}

// ---------------------------------------------------------------------------------
// Temporary root
// ---------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("procsync-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// SIGINT, SIGTERM and SIGHUP remove the temporary directory before the process ends
/// (partners die with it: they asked for `PR_SET_PDEATHSIG`). The signals are blocked
/// in every thread and taken by one thread with `sigwait`; spawned partners start with
/// an empty signal mask (`std::process::Command` resets it).
fn cleanup_on_signal(dir: &Path) {
    // SAFETY: plain signal-set manipulation on a local set; called before any other
    // thread exists, so every later thread inherits the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("signal-cleanup".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: `set` is a valid signal set, `sig` a valid out-parameter.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                let _ = std::fs::remove_dir_all(&dir);
                std::process::exit(128 + sig);
            }
        })
        .expect("spawning the signal thread");
}

// ---------------------------------------------------------------------------------
// Baseline primitives (libc)
// ---------------------------------------------------------------------------------

/// A `MAP_SHARED` mapping (anonymous, or of a file both processes open).
struct Shm {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Shm {
    fn anon(len: usize) -> Shm {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Shm { ptr, len }
    }

    fn file(path: &Path, len: usize, create: bool) -> Shm {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        if create {
            f.set_len(len as u64).expect("sizing the futex file");
        }
        // SAFETY: a fresh shared mapping of a file of at least `len` bytes; the
        // descriptor may be closed afterwards (the mapping keeps the file).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Shm { ptr, len }
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        assert!((i + 1) * 4 <= self.len);
        // SAFETY: in bounds (checked), 4-aligned (mappings are page-aligned), valid for
        // the lifetime of `self`; only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(self.ptr.cast::<u32>().add(i)) }
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A `PTHREAD_PROCESS_SHARED` mutex in a shared anonymous mapping.
struct PthreadMutex {
    shm: Shm,
}

impl PthreadMutex {
    fn new(robust: bool) -> PthreadMutex {
        let shm = Shm::anon(4096);
        let m = shm.ptr.cast::<libc::pthread_mutex_t>();
        // SAFETY: the attribute lives on our stack and is destroyed after use; the mutex
        // memory is a fresh, suitably aligned, zeroed shared page.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
            assert_eq!(
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                0
            );
            if robust {
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                    0
                );
            }
            assert_eq!(libc::pthread_mutex_init(m, &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        PthreadMutex { shm }
    }

    #[inline]
    fn lock_unlock(&self) {
        let m = self.shm.ptr.cast::<libc::pthread_mutex_t>();
        // SAFETY: initialised in `new`, unlocked by the thread that locked it.
        unsafe {
            let r = libc::pthread_mutex_lock(m);
            debug_assert_eq!(r, 0);
            let r = libc::pthread_mutex_unlock(m);
            debug_assert_eq!(r, 0);
        }
    }
}

impl Drop for PthreadMutex {
    fn drop(&mut self) {
        // SAFETY: initialised and unlocked.
        unsafe { libc::pthread_mutex_destroy(self.shm.ptr.cast()) };
    }
}

/// A process-shared POSIX semaphore (`sem_init(pshared = 1)`) in a shared mapping.
struct PosixSem {
    shm: Shm,
}

impl PosixSem {
    fn new(initial: u32) -> PosixSem {
        let shm = Shm::anon(4096);
        // SAFETY: fresh, aligned shared memory large enough for a sem_t.
        let r = unsafe { libc::sem_init(shm.ptr.cast(), 1, initial) };
        assert_eq!(r, 0, "sem_init: {}", std::io::Error::last_os_error());
        PosixSem { shm }
    }

    #[inline]
    fn trywait_post(&self) {
        let s = self.shm.ptr.cast::<libc::sem_t>();
        // SAFETY: initialised in `new`.
        unsafe {
            let r = libc::sem_trywait(s);
            debug_assert_eq!(r, 0);
            let r = libc::sem_post(s);
            debug_assert_eq!(r, 0);
        }
    }
}

impl Drop for PosixSem {
    fn drop(&mut self) {
        // SAFETY: initialised, nobody waits on it.
        unsafe { libc::sem_destroy(self.shm.ptr.cast()) };
    }
}

/// A non-blocking eventfd.
struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    fn new() -> EventFd {
        // SAFETY: plain system call; the result is checked before being owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        EventFd { fd }
    }

    #[inline]
    fn write(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        debug_assert_eq!(r, 8);
    }

    #[inline]
    fn read(&self) -> u64 {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8) };
        debug_assert_eq!(r, 8);
        v
    }
}

/// `FUTEX_WAIT` (shared: no `FUTEX_PRIVATE_FLAG`), no timeout.
#[inline]
fn futex_wait(w: &AtomicU32, expected: u32) {
    // SAFETY: `w` is a valid, aligned u32 for the call's duration; null timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// `FUTEX_WAKE` (shared) of one waiter.
#[inline]
fn futex_wake(w: &AtomicU32) {
    // SAFETY: `w` is a valid, aligned u32 for the call's duration.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: zeroed cpu_set_t is an empty set; the call fills it for this thread.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        set
    };
    // SAFETY: CPU_ISSET reads a bit of a valid set, in range.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Restricts the calling thread to `cpus`.
fn pin(cpus: &[usize]) {
    // SAFETY: builds a set of in-range CPUs and applies it to the calling thread.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        r,
        0,
        "sched_setaffinity({cpus:?}): {}",
        std::io::Error::last_os_error()
    );
}

// ---------------------------------------------------------------------------------
// 1, 2: uncontended operations
// ---------------------------------------------------------------------------------

/// Runs `op` `n` times (the loop a paired block times).
fn times(op: impl Fn()) -> impl FnMut(u64) {
    move |n| {
        for _ in 0..n {
            op();
        }
    }
}

fn mutex_uncontended(c: &mut Criterion, t: &mut Paired) {
    let (m, _) = Mutex::create("Local\\bench-mutex", false).expect("creating a mutex");
    let pm = PthreadMutex::new(false);
    let rm = PthreadMutex::new(true);
    let procsync = || {
        black_box(m.lock(None).expect("lock"));
        black_box(m.unlock().expect("unlock"));
    };
    let pthread = || pm.lock_unlock();
    let robust = || rm.lock_unlock();
    let mut g = c.benchmark_group("mutex/uncontended");
    g.bench_function("procsync", |b| b.iter(procsync));
    g.bench_function("pthread-pshared", |b| b.iter(pthread));
    g.bench_function("pthread-pshared-robust", |b| b.iter(robust));
    g.finish();
    t.pair(
        "mutex/uncontended",
        ("procsync", times(procsync)),
        ("pthread-pshared", times(pthread)),
    );
}

fn semaphore_uncontended(c: &mut Criterion, t: &mut Paired) {
    let (s, _) = Semaphore::create("Local\\bench-sem", 1, 1).expect("creating a semaphore");
    let ps = PosixSem::new(1);
    let procsync = || {
        black_box(s.wait(Some(Duration::ZERO)).expect("wait"));
        black_box(s.release(1).expect("release"));
    };
    let posix = || ps.trywait_post();
    let mut g = c.benchmark_group("semaphore/uncontended");
    g.bench_function("procsync", |b| b.iter(procsync));
    g.bench_function("posix-sem-pshared", |b| b.iter(posix));
    g.finish();
    t.pair(
        "semaphore/uncontended",
        ("procsync", times(procsync)),
        ("posix-sem-pshared", times(posix)),
    );
}

fn event_set_wait0(c: &mut Criterion, t: &mut Paired) {
    let (e, _) = Event::create("Local\\bench-auto", false, false).expect("creating an event");
    let efd = EventFd::new();
    let procsync = || {
        black_box(e.set().expect("set"));
        black_box(e.wait(Some(Duration::ZERO)).expect("wait"));
    };
    let eventfd = || {
        efd.write();
        black_box(efd.read());
    };
    let mut g = c.benchmark_group("event/set-wait0");
    g.bench_function("procsync", |b| b.iter(procsync));
    g.bench_function("eventfd", |b| b.iter(eventfd));
    g.finish();
    t.pair(
        "event/set-wait0",
        ("procsync", times(procsync)),
        ("eventfd", times(eventfd)),
    );
}

fn event_set_reset(c: &mut Criterion, t: &mut Paired) {
    let (e, _) = Event::create("Local\\bench-manual", true, false).expect("creating an event");
    let efd = EventFd::new();
    // The floor: a flag word in shared memory, set and cleared by two atomic swaps.
    let shm = Shm::anon(4096);
    let flag = shm.word(0);
    let procsync = || {
        black_box(e.set().expect("set"));
        black_box(e.reset().expect("reset"));
    };
    let eventfd = || {
        efd.write();
        black_box(efd.read());
    };
    let atomic = || {
        black_box(flag.swap(1, Ordering::Release));
        black_box(flag.swap(0, Ordering::Relaxed));
    };
    let mut g = c.benchmark_group("event/set-reset");
    g.bench_function("procsync", |b| b.iter(procsync));
    g.bench_function("eventfd", |b| b.iter(eventfd));
    g.bench_function("atomic-flag", |b| b.iter(atomic));
    g.finish();
    t.pair(
        "event/set-reset",
        ("procsync", times(procsync)),
        ("eventfd", times(eventfd)),
    );
    t.pair(
        "event/set-reset",
        ("procsync", times(procsync)),
        ("atomic-flag", times(atomic)),
    );
}

// ---------------------------------------------------------------------------------
// 3: cross-process wake latency (ping-pong)
// ---------------------------------------------------------------------------------

/// A partner process, killed and reaped on drop. A watchdog thread ends this process
/// (with a message) if the partner dies on its own, instead of letting a round trip
/// hang forever.
struct Partner {
    child: Child,
    expected_exit: Arc<AtomicBool>,
}

impl Partner {
    fn spawn(spec: &str, cpu: Option<usize>) -> Partner {
        let exe = std::env::current_exe().expect("locating the bench binary");
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_VAR, spec)
            .env(PARENT_VAR, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match cpu {
            Some(c) => cmd.env(CPU_VAR, c.to_string()),
            None => cmd.env_remove(CPU_VAR),
        };
        let child = cmd.spawn().expect("spawning the partner process");
        let expected_exit = Arc::new(AtomicBool::new(false));
        let pid = child.id();
        let flag = expected_exit.clone();
        let spec = spec.to_string();
        std::thread::Builder::new()
            .name("partner-watchdog".into())
            .spawn(move || {
                // SAFETY: zeroed siginfo is a valid out-parameter; WNOWAIT leaves the
                // child to be reaped by `Partner::drop`.
                let r = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                if r == 0 && !flag.load(Ordering::SeqCst) {
                    eprintln!(
                        "procsync bench: partner `{spec}` (pid {pid}) died unexpectedly; aborting"
                    );
                    if let Some(d) = std::env::var_os(DIR_VAR) {
                        let _ = std::fs::remove_dir_all(d);
                    }
                    std::process::exit(2);
                }
            })
            .expect("spawning the watchdog thread");
        Partner {
            child,
            expected_exit,
        }
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.expected_exit.store(true, Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parent's side of one ping-pong benchmark: `round_trips(n)` runs n round trips.
trait PingPong {
    fn round_trips(&mut self, n: u64);
}

/// procsync events `<prefix>-ping` (parent → child) and `<prefix>-pong` (child →
/// parent); with `n > 1` each side waits with wait_any over `n - 1` never-set auto-reset
/// events of its own followed by its event (so the signaled one is the last index).
struct ProcsyncPingPong {
    ping: Event,
    pong: Event,
    pong_list: Vec<Event>,
    n: usize,
    mode: Mode,
    _partner: Partner,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `set` then `wait` (n = 1) or `wait_any` (n > 1).
    SetWait,
    /// `signal_and_wait`.
    SignalAndWait,
}

impl Mode {
    fn code(self) -> &'static str {
        match self {
            Mode::SetWait => "setwait",
            Mode::SignalAndWait => "saw",
        }
    }
}

fn dummies(k: usize) -> Vec<Event> {
    (0..k)
        .map(|_| {
            Event::create("", false, false)
                .expect("creating an unnamed event")
                .0
        })
        .collect()
}

impl ProcsyncPingPong {
    fn new(tag: &str, n: usize, mode: Mode, cpu: Option<usize>) -> ProcsyncPingPong {
        let prefix = format!("Local\\bench-pp-{tag}");
        let (ping, _) =
            Event::create(&format!("{prefix}-ping"), false, false).expect("creating ping");
        let (pong, _) =
            Event::create(&format!("{prefix}-pong"), false, false).expect("creating pong");
        let partner = Partner::spawn(&format!("pp-procsync:{}:{n}:{prefix}", mode.code()), cpu);
        let mut p = ProcsyncPingPong {
            ping,
            pong,
            pong_list: dummies(n - 1),
            n,
            mode,
            _partner: partner,
        };
        p.round_trips(1); // the partner is up and has opened both events
        p
    }
}

impl PingPong for ProcsyncPingPong {
    fn round_trips(&mut self, iters: u64) {
        match (self.mode, self.n) {
            (Mode::SignalAndWait, _) => {
                for _ in 0..iters {
                    let r = signal_and_wait(&self.ping, &self.pong, None).expect("signal_and_wait");
                    assert_eq!(r, WaitOutcome::Signaled(0));
                }
            }
            (Mode::SetWait, 1) => {
                for _ in 0..iters {
                    self.ping.set().expect("set");
                    let r = self.pong.wait(None).expect("wait");
                    assert_eq!(r, WaitOutcome::Signaled(0));
                }
            }
            (Mode::SetWait, n) => {
                let list: Vec<&Handle> = self
                    .pong_list
                    .iter()
                    .map(|e| &**e)
                    .chain([&*self.pong])
                    .collect();
                for _ in 0..iters {
                    self.ping.set().expect("set");
                    let r = wait_any(&list, None).expect("wait_any");
                    assert_eq!(r, WaitOutcome::Signaled(n - 1));
                }
            }
        }
    }
}

/// Raw futex ping-pong: words 0 (parent → child) and 1 (child → parent) of a shared
/// file mapping carry a round-trip counter; each side stores, wakes, and sleeps until
/// the other side's word reaches the same count.
struct FutexPingPong {
    shm: Shm,
    seq: u32,
    _partner: Partner,
}

impl FutexPingPong {
    fn new(cpu: Option<usize>) -> FutexPingPong {
        let path =
            PathBuf::from(std::env::var_os(DIR_VAR).expect("bench dir")).join("futex-pingpong");
        let shm = Shm::file(&path, 4096, true);
        let partner = Partner::spawn(&format!("pp-futex:{}", path.display()), cpu);
        let mut p = FutexPingPong {
            shm,
            seq: 0,
            _partner: partner,
        };
        p.round_trips(1);
        p
    }
}

impl PingPong for FutexPingPong {
    fn round_trips(&mut self, iters: u64) {
        let (to, from) = (self.shm.word(0), self.shm.word(1));
        for _ in 0..iters {
            self.seq = self.seq.wrapping_add(1);
            to.store(self.seq, Ordering::Release);
            futex_wake(to);
            loop {
                let v = from.load(Ordering::Acquire);
                if v == self.seq {
                    break;
                }
                futex_wait(from, v);
            }
        }
    }
}

/// Where the two processes of a ping-pong run.
#[derive(Clone, Copy)]
struct Placement {
    /// CPU of this (parent) process.
    parent: usize,
    /// CPU of the partner.
    child: usize,
}

fn bench_ping_pong<P: PingPong>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    at: Placement,
    make: impl Fn(Option<usize>) -> P,
) {
    // Spawned on first use, so a filtered-out benchmark starts no process; dropped
    // (killed and reaped) when this function returns.
    let mut pp: Option<P> = None;
    let saved = allowed_cpus();
    g.bench_function(id, |b| {
        let p = pp.get_or_insert_with(|| {
            pin(&[at.parent]);
            make(Some(at.child))
        });
        b.iter_custom(|iters| {
            let t = Instant::now();
            p.round_trips(iters);
            t.elapsed()
        })
    });
    drop(pp);
    pin(&saved);
}

fn wake_ping_pong(c: &mut Criterion, t: &mut Paired) {
    let cpus = allowed_cpus();
    let mut placements = vec![(
        "wake/ping-pong-same-cpu",
        Placement {
            parent: cpus[0],
            child: cpus[0],
        },
    )];
    if cpus.len() >= 2 {
        placements.push((
            "wake/ping-pong-cross-cpu",
            Placement {
                parent: cpus[0],
                child: cpus[1],
            },
        ));
    } else {
        eprintln!("procsync bench: one CPU available; skipping wake/ping-pong-cross-cpu");
    }
    for (group, at) in placements {
        let mut g = c.benchmark_group(group);
        bench_ping_pong(&mut g, "futex-shared", at, FutexPingPong::new);
        bench_ping_pong(&mut g, "procsync-wait", at, |cpu| {
            ProcsyncPingPong::new("w1", 1, Mode::SetWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-signal_and_wait", at, |cpu| {
            ProcsyncPingPong::new("saw", 1, Mode::SignalAndWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-wait_any-8", at, |cpu| {
            ProcsyncPingPong::new("any8", 8, Mode::SetWait, cpu)
        });
        bench_ping_pong(&mut g, "procsync-wait_any-64", at, |cpu| {
            ProcsyncPingPong::new("any64", 64, Mode::SetWait, cpu)
        });
        g.finish();
        if t.enabled {
            // Both partners alive at once (each sleeps while the other pair runs), so
            // the blocks of a pair can alternate.
            let saved = allowed_cpus();
            pin(&[at.parent]);
            let mut futex = FutexPingPong::new(Some(at.child));
            let subjects = [
                ("procsync-wait", "pw1", 1, Mode::SetWait),
                ("procsync-signal_and_wait", "psaw", 1, Mode::SignalAndWait),
                ("procsync-wait_any-8", "pany8", 8, Mode::SetWait),
                ("procsync-wait_any-64", "pany64", 64, Mode::SetWait),
            ];
            for (id, tag, n, mode) in subjects {
                let mut p = ProcsyncPingPong::new(tag, n, mode, Some(at.child));
                t.pair(
                    group,
                    (id, |k| p.round_trips(k)),
                    ("futex-shared", |k| futex.round_trips(k)),
                );
            }
            drop(futex);
            pin(&saved);
        }
    }
}

// ---------------------------------------------------------------------------------
// 4: wait_all on 8 objects
// ---------------------------------------------------------------------------------

fn wait_all_8(c: &mut Criterion, t: &mut Paired) {
    const N: usize = 8;
    const COUNT: u32 = 1 << 20;
    /// Largest semaphore maximum procsync accepts.
    const MAX_SEMAPHORE: u32 = 0x7FFF_FFFF;
    let sems: Vec<Semaphore> = (0..N)
        .map(|i| {
            Semaphore::create(&format!("Local\\bench-all-{i}"), COUNT, MAX_SEMAPHORE)
                .expect("creating a semaphore")
                .0
        })
        .collect();
    let list: Vec<&Handle> = sems.iter().map(|s| &**s).collect();
    let posix: Vec<PosixSem> = (0..N).map(|_| PosixSem::new(COUNT)).collect();
    let all = || {
        black_box(wait_all(&list, None).expect("wait_all"));
        for s in &sems {
            black_box(s.release(1).expect("release"));
        }
    };
    let singles = || {
        for s in &sems {
            black_box(s.wait(None).expect("wait"));
        }
        for s in &sems {
            black_box(s.release(1).expect("release"));
        }
    };
    let posix8 = || {
        for s in &posix {
            s.trywait_post();
        }
    };
    let mut g = c.benchmark_group("wait_all/8-semaphores");
    g.bench_function("procsync-wait_all", |b| b.iter(all));
    g.bench_function("procsync-8-waits", |b| b.iter(singles));
    g.bench_function("posix-sem-8-trywait-post", |b| b.iter(posix8));
    g.finish();
    t.pair(
        "wait_all/8-semaphores",
        ("procsync-wait_all", times(all)),
        ("procsync-8-waits", times(singles)),
    );
    t.pair(
        "wait_all/8-semaphores",
        ("procsync-8-waits", times(singles)),
        ("posix-sem-8-trywait-post", times(posix8)),
    );
}

// ---------------------------------------------------------------------------------
// Paired ratios
// ---------------------------------------------------------------------------------

/// The interleaved comparison that backs the ratios of `benches/README.md`.
///
/// Criterion measures one benchmark after another, so on a small, shared machine a
/// load change between the baseline and the subject shows up as a ratio. Here each
/// pair runs in alternating blocks (subject, baseline, baseline, subject, …) of about
/// the same duration, and the ratio of each round's two blocks is kept; the table
/// gives the median of those ratios and their interquartile range. Printed after
/// criterion's report, on a full benchmark run only (`cargo bench`: `--bench`, no
/// filter, not `--test`/`--list`/`--profile-time`).
struct Paired {
    enabled: bool,
    rows: Vec<Row>,
}

struct Row {
    group: String,
    subject: String,
    baseline: String,
    /// Median ns per operation of the subject and of the baseline.
    subject_ns: f64,
    baseline_ns: f64,
    /// Per-round ratios subject/baseline: p25, median, p75.
    ratio: [f64; 3],
    rounds: usize,
}

/// Criterion options that take a value (so that value is not mistaken for a filter).
const VALUE_OPTS: &[&str] = &[
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--plotting-backend",
    "--output-format",
    "--format",
];

impl Paired {
    fn from_args() -> Paired {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // Without `--bench` (as under `cargo test --benches`) criterion runs in test mode.
        let mut enabled = args.iter().any(|a| a == "--bench");
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if matches!(
                a,
                "--test" | "--list" | "--profile-time" | "--ignored" | "--exact"
            ) {
                enabled = false;
            } else if VALUE_OPTS.contains(&a) {
                i += 1;
            } else if !a.starts_with('-') {
                enabled = false; // a filter: only part of the benchmarks run
            }
            i += 1;
        }
        Paired {
            enabled,
            rows: Vec::new(),
        }
    }

    /// Measures `subject` against `baseline` (each runs `n` operations per call).
    fn pair(
        &mut self,
        group: &str,
        subject: (&str, impl FnMut(u64)),
        baseline: (&str, impl FnMut(u64)),
    ) {
        if !self.enabled {
            return;
        }
        let (sname, mut s) = subject;
        let (bname, mut b) = baseline;
        let ping_pong = group.starts_with("wake/");
        let (block, rounds) = if ping_pong {
            (Duration::from_millis(25), 16)
        } else {
            (Duration::from_millis(3), 40)
        };
        let ns = calibrate(&mut s, block);
        let nb = calibrate(&mut b, block);
        let mut ts = Vec::with_capacity(rounds);
        let mut tb = Vec::with_capacity(rounds);
        let mut ratios = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let (x, y) = if r % 2 == 0 {
                let x = per_op(&mut s, ns);
                (x, per_op(&mut b, nb))
            } else {
                let y = per_op(&mut b, nb);
                (per_op(&mut s, ns), y)
            };
            ts.push(x);
            tb.push(y);
            ratios.push(x / y);
        }
        let q = |v: &mut Vec<f64>, f: f64| {
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * f).round() as usize]
        };
        self.rows.push(Row {
            group: group.to_string(),
            subject: sname.to_string(),
            baseline: bname.to_string(),
            subject_ns: q(&mut ts, 0.5),
            baseline_ns: q(&mut tb, 0.5),
            ratio: [
                q(&mut ratios, 0.25),
                q(&mut ratios, 0.5),
                q(&mut ratios, 0.75),
            ],
            rounds,
        });
    }

    fn print(&self) {
        if !self.enabled || self.rows.is_empty() {
            return;
        }
        println!();
        println!(
            "paired ratios (interleaved blocks; median ns/op; ratio = subject/baseline, median [p25, p75] of rounds)"
        );
        println!(
            "{:<26} {:<26} {:>11}   {:<26} {:>11}   {:>7}  {:<17} {:>6}",
            "group", "subject", "ns/op", "baseline", "ns/op", "ratio", "[p25, p75]", "rounds"
        );
        for r in &self.rows {
            println!(
                "{:<26} {:<26} {:>11.1}   {:<26} {:>11.1}   {:>7.3}  [{:.3}, {:.3}]   {:>6}",
                r.group,
                r.subject,
                r.subject_ns,
                r.baseline,
                r.baseline_ns,
                r.ratio[1],
                r.ratio[0],
                r.ratio[2],
                r.rounds
            );
        }
    }
}

/// Operations per block so that a block lasts about `block` (after a warm-up).
fn calibrate(f: &mut impl FnMut(u64), block: Duration) -> u64 {
    let mut n = 1;
    loop {
        let t = Instant::now();
        f(n);
        let e = t.elapsed();
        if e >= block / 4 || n >= 1 << 40 {
            let scaled = (n as f64 * block.as_secs_f64() / e.as_secs_f64().max(1e-9)) as u64;
            return scaled.max(1);
        }
        n *= 2;
    }
}

/// Nanoseconds per operation of one block of `n` operations.
fn per_op(f: &mut impl FnMut(u64), n: u64) -> f64 {
    let t = Instant::now();
    f(n);
    t.elapsed().as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------------
// Partner process
// ---------------------------------------------------------------------------------

fn child_main(spec: &str) -> ! {
    // Die with the parent, whatever way it goes; and if it is already gone, go now.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent: Option<u32> = std::env::var(PARENT_VAR).ok().and_then(|p| p.parse().ok());
    // SAFETY: getppid has no preconditions.
    if parent.is_some_and(|p| unsafe { libc::getppid() } as u32 != p) {
        std::process::exit(0);
    }
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|c| c.parse().ok()) {
        pin(&[cpu]);
    }
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    match parts.as_slice() {
        ["pp-futex", path] => child_futex(Path::new(path)),
        ["pp-procsync", mode, n, prefix] => {
            child_procsync(mode, n.parse().expect("object count"), prefix)
        }
        _ => {
            eprintln!("procsync bench: unknown {CHILD_VAR} `{spec}`");
            std::process::exit(3);
        }
    }
}

fn child_futex(path: &Path) -> ! {
    let shm = Shm::file(path, 4096, false);
    let (from, to) = (shm.word(0), shm.word(1));
    let mut seq: u32 = 0;
    loop {
        seq = seq.wrapping_add(1);
        loop {
            let v = from.load(Ordering::Acquire);
            if v == seq {
                break;
            }
            futex_wait(from, v);
        }
        to.store(seq, Ordering::Release);
        futex_wake(to);
    }
}

fn child_procsync(mode: &str, n: usize, prefix: &str) -> ! {
    let ping = Event::open(&format!("{prefix}-ping")).expect("opening ping");
    let pong = Event::open(&format!("{prefix}-pong")).expect("opening pong");
    let own = dummies(n.saturating_sub(1));
    let list: Vec<&Handle> = own.iter().map(|e| &**e).chain([&*ping]).collect();
    match mode {
        "saw" => {
            assert_eq!(ping.wait(None).expect("wait"), WaitOutcome::Signaled(0));
            loop {
                assert_eq!(
                    signal_and_wait(&pong, &ping, None).expect("signal_and_wait"),
                    WaitOutcome::Signaled(0)
                );
            }
        }
        _ if n <= 1 => loop {
            assert_eq!(ping.wait(None).expect("wait"), WaitOutcome::Signaled(0));
            pong.set().expect("set");
        },
        _ => loop {
            assert_eq!(
                wait_any(&list, None).expect("wait_any"),
                WaitOutcome::Signaled(n - 1)
            );
            pong.set().expect("set");
        },
    }
}
