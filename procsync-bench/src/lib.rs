//! Benchmark scenarios, shared by `procsync bench` (`src/cli/bench.rs`) and the
//! criterion benches (`benches/wake.rs` includes this file with `#[path]`), so this
//! module uses only std, libc, rustix, the public `procsync` API, (in `c_abi`, the
//! C ABI's overhead) procsync-ffi's exported functions, and (in `etcd`, the cross-host
//! objects against etcd's lock recipe) procsync-etcd with its hidden test harness, and
//! (in `async_wake`, the async rows) procsync-tokio with tokio's current-thread runtime
//! and `Notify`.
//!
//! It holds, once for both:
//!
//! * the procsync side and the baseline of every scenario (process-shared pthread
//!   mutex, `sem_t`, eventfd, a raw shared-futex ping-pong, `timerfd`, `waitpid`);
//! * the partner processes: ping-pong partners and the mutex holders the abandonment
//!   scenario kills. A partner is the running executable again, started with the
//!   arguments given to [`BenchEnv::setup`] and [`CHILD_VAR`] set; the consumer sends
//!   such a process to [`child_main`] (`procsync bench-child`, or `wake.rs`'s `main`
//!   before criterion starts). Every partner asks for `PR_SET_PDEATHSIG(SIGKILL)`
//!   (and exits at once if its parent is already gone), is spawned by the main thread
//!   (the death signal follows the spawning *thread*), and is killed and reaped when
//!   its scenario ends;
//! * the paired measurement ([`paired`]: subject and baseline in alternating blocks,
//!   one ratio per round) and the latency samples (timer lateness, abandonment);
//! * the [`Report`]: the table both print, with the goals (procsync-bench/README.md, "Goals").
//!
//! Every named object lives under a fresh temporary `PROCSYNC_ROOT` ([`BenchEnv`]),
//! removed at the end (also on SIGINT, SIGTERM and SIGHUP).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod async_wake;
mod c_abi;
pub use async_wake::{pending as async_pending, run as async_wake};
pub use c_abi::CAbiMutexOps;

use procsync::{
    CreateOptions, Event, Handle, Mutex, ObjectSpec, Semaphore, TimerDue, WaitOutcome,
    signal_and_wait, wait_all, wait_any,
};

mod contention;
mod etcd;
mod fanout;
mod json;
mod names;
pub use contention::{ContentionPlan, run as contention};
pub use etcd::{EtcdPlan, run as etcd};
pub use fanout::run as fanout;
pub use json::{Machine, write_json_string};
pub use names::run as names;
mod scale;
pub use scale::run as scale;

/// Environment variable that turns the executable into a partner: its value says which.
pub const CHILD_VAR: &str = "PROCSYNC_BENCH_CHILD";
/// The parent's pid, so that a partner whose parent is already gone exits at once.
const PARENT_VAR: &str = "PROCSYNC_BENCH_PARENT";
/// Where the temporary directory lives (inherited by partners; they never remove it).
const DIR_VAR: &str = "PROCSYNC_BENCH_DIR";
/// The CPU a partner pins itself to (unset: not pinned).
const CPU_VAR: &str = "PROCSYNC_BENCH_CPU";

/// The arguments that make the executable run [`child_main`] (set by [`BenchEnv::setup`]).
static CHILD_ARGS: OnceLock<Vec<String>> = OnceLock::new();

// ---------------------------------------------------------------------------------
// Run environment
// ---------------------------------------------------------------------------------

/// The environment of one benchmark run: a fresh directory under `/dev/shm` (`shm_dir`)
/// holding `PROCSYNC_ROOT` (every named object) and the raw futex file, removed on
/// drop; and how partners are started.
pub struct BenchEnv {
    dir: PathBuf,
}

impl BenchEnv {
    /// Sets the run up: creates the directory, points `PROCSYNC_ROOT` into it, removes
    /// it on SIGINT/SIGTERM/SIGHUP, and records `child_args`, the arguments that make
    /// this executable call [`child_main`]. Sets environment variables, so it must run
    /// while the process has one thread: it panics otherwise.
    pub fn setup(child_args: &[&str]) -> BenchEnv {
        assert_eq!(
            thread_count(),
            Some(1),
            "BenchEnv::setup must run before any other thread exists"
        );
        let _ = CHILD_ARGS.set(child_args.iter().map(|a| a.to_string()).collect());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = shm_dir().join(format!("procsync-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // SAFETY: the process has a single thread (checked above), so nothing reads or
        // writes the environment concurrently.
        unsafe {
            std::env::set_var("PROCSYNC_ROOT", dir.join("root"));
            std::env::set_var(DIR_VAR, &dir);
        }
        cleanup_on_signal(&dir);
        BenchEnv { dir }
    }
}

impl Drop for BenchEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the run's directory goes: `/dev/shm` (tmpfs, where procsync's default root
/// is, so name operations cost what they cost users; a disk file system's inode
/// allocation would be measured instead), or the temp dir where there is none.
fn shm_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && rustix::fs::statfs(shm).is_ok_and(|s| s.f_type as u64 == libc::TMPFS_MAGIC as u64)
    {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The number of threads of this process (`/proc/self/status`).
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// SIGINT, SIGTERM and SIGHUP remove the temporary directory before the process ends
/// (partners die with it: they asked for `PR_SET_PDEATHSIG`). The signals are blocked
/// in every thread and taken by one thread with `sigwait`; spawned partners start with
/// an empty signal mask (`std::process::Command` resets it).
fn cleanup_on_signal(dir: &Path) {
    // SAFETY: plain signal-set manipulation on a local set; called while the process has
    // one thread, so every later thread inherits the mask.
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

/// A description of the machine for the report's header: CPU, CPUs usable, kernel,
/// load average.
pub fn machine() -> String {
    let m = Machine::probe();
    format!(
        "{}, {} CPUs usable, kernel {}, load average {}",
        m.cpu,
        m.cpus_usable,
        m.kernel,
        m.load_average.map(|l| format!("{l:.2}")).join(" ")
    )
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

    /// The `i`-th u64 of the mapping.
    fn word64(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!((i + 1) * 8 <= self.len);
        // SAFETY: in bounds (checked), 8-aligned (mappings are page-aligned), valid for
        // the lifetime of `self`; only ever accessed atomically.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(self.ptr.cast::<u64>().add(i)) }
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

/// A `PTHREAD_PROCESS_SHARED` mutex: in a shared anonymous mapping of its own
/// ([`PthreadMutex::new`]), or at a given place of a mapping shared by several processes
/// ([`PthreadMutex::init_at`] by the creator, [`PthreadMutex::attach_at`] by the others).
struct PthreadMutex {
    m: *mut libc::pthread_mutex_t,
    /// The mapping it lives in, when it owns one.
    _shm: Option<Shm>,
    /// Whether dropping it destroys the mutex (its creator only).
    owner: bool,
}

impl PthreadMutex {
    fn new(robust: bool) -> PthreadMutex {
        let shm = Shm::anon(4096);
        // SAFETY: a fresh, zeroed, page-aligned shared mapping that `shm` keeps alive
        // as long as the returned value.
        let mut m = unsafe { PthreadMutex::init_at(shm.ptr.cast(), robust) };
        m._shm = Some(shm);
        m
    }

    /// Initialises a mutex at `at`.
    ///
    /// # Safety
    /// `at` is suitably aligned, writable memory of at least `size_of::<pthread_mutex_t>()`
    /// bytes that nothing else uses, and it outlives the returned value.
    unsafe fn init_at(at: *mut u8, robust: bool) -> PthreadMutex {
        let m = at.cast::<libc::pthread_mutex_t>();
        // SAFETY: the attribute lives on our stack and is destroyed after use; the mutex
        // memory is as the caller promised.
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
        PthreadMutex {
            m,
            _shm: None,
            owner: true,
        }
    }

    /// Uses the mutex another process initialised at `at` (never destroys it).
    ///
    /// # Safety
    /// `at` points at a process-shared mutex initialised by [`PthreadMutex::init_at`] in
    /// a mapping that outlives the returned value.
    unsafe fn attach_at(at: *mut u8) -> PthreadMutex {
        PthreadMutex {
            m: at.cast(),
            _shm: None,
            owner: false,
        }
    }

    #[inline]
    fn lock(&self) {
        // SAFETY: an initialised process-shared mutex (constructors' contracts).
        let r = unsafe { libc::pthread_mutex_lock(self.m) };
        assert!(r == 0, "pthread_mutex_lock failed");
    }

    #[inline]
    fn unlock(&self) {
        // SAFETY: as in `lock`; called by the thread that locked it.
        let r = unsafe { libc::pthread_mutex_unlock(self.m) };
        assert!(r == 0, "pthread_mutex_unlock failed");
    }

    #[inline]
    fn lock_unlock(&self) {
        self.lock();
        self.unlock();
    }
}

impl Drop for PthreadMutex {
    fn drop(&mut self) {
        if self.owner {
            // SAFETY: initialised by us and unlocked; nobody uses it any more.
            unsafe { libc::pthread_mutex_destroy(self.m) };
        }
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
            assert!(r == 0, "sem_trywait failed");
            let r = libc::sem_post(s);
            assert!(r == 0, "sem_post failed");
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

    /// `write(1)` + `read`.
    #[inline]
    fn write_read(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        debug_assert_eq!(r, 8);
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8) };
        debug_assert_eq!(r, 8);
        black_box(v);
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
pub(crate) fn futex_wake(w: &AtomicU32) {
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

/// Bit 31 of a futex ping-pong word: its reader sleeps (or is about to) in `FUTEX_WAIT`.
const SLEEPING: u32 = 1 << 31;

/// Publishes round-trip count `seq` (31 bits) in `w` and wakes the reader only if it said
/// it sleeps: the futex equivalent of procsync's `set()`, which skips `FUTEX_WAKE` when no
/// one waits.
#[inline]
fn post(w: &AtomicU32, seq: u32) {
    if w.swap(seq & !SLEEPING, Ordering::AcqRel) & SLEEPING != 0 {
        futex_wake(w);
    }
}

/// Returns once `w` holds round-trip count `seq`; before each `FUTEX_WAIT` it sets
/// [`SLEEPING`] in `w` (a compare-exchange, so a count published meanwhile is never
/// missed: the wait then sees a changed word and returns at once).
#[inline]
fn await_seq(w: &AtomicU32, seq: u32) {
    let seq = seq & !SLEEPING;
    loop {
        let v = w.load(Ordering::Acquire);
        if v & !SLEEPING == seq {
            return;
        }
        if v & SLEEPING == 0
            && w.compare_exchange(v, v | SLEEPING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        futex_wait(w, v | SLEEPING);
    }
}

/// `FUTEX_WAKE` (shared) of every waiter.
#[inline]
fn futex_wake_all(w: &AtomicU32) {
    // SAFETY: `w` is a valid, aligned u32 for the call's duration.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX as u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
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
pub fn pin(cpus: &[usize]) {
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
// Paired measurement
// ---------------------------------------------------------------------------------

/// How a pair is measured: `rounds` rounds of two blocks (one per side), each block
/// lasting about `block`.
#[derive(Clone, Copy, Debug)]
pub struct Blocks {
    /// Duration of one block.
    pub block: Duration,
    /// Number of rounds (one ratio each).
    pub rounds: usize,
}

/// The sizes of a whole run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Blocks of the uncontended (no system call) pairs.
    pub uncontended: Blocks,
    /// Blocks of the ping-pong pairs.
    pub ping_pong: Blocks,
    /// One-shot timers per side for the lateness scenario.
    pub timers: usize,
    /// Kill rounds of the abandonment scenario.
    pub abandons: usize,
    /// Rounds of the contention scenarios.
    pub contention: ContentionPlan,
    /// Rounds per side of each fan-out scenario.
    pub fanout_rounds: usize,
    /// Object counts of the scale scenarios.
    pub scale: &'static [usize],
    /// Sizes of the `etcd/…` scenarios.
    pub etcd: EtcdPlan,
}

impl Plan {
    /// The full run (the numbers to quote).
    pub const FULL: Plan = Plan {
        uncontended: Blocks {
            block: Duration::from_millis(3),
            rounds: 40,
        },
        ping_pong: Blocks {
            block: Duration::from_millis(25),
            rounds: 16,
        },
        timers: 400,
        abandons: 30,
        contention: ContentionPlan {
            round: Duration::from_millis(300),
            rounds: 10,
        },
        fanout_rounds: 1000,
        scale: &[1_000, 10_000, 50_000],
        etcd: EtcdPlan {
            rounds: 5,
            uncontended: 20,
            hand_off: 10,
            wait_all: 5,
        },
    };

    /// A short run: a first look, not for quoting.
    #[allow(
        dead_code,
        reason = "`procsync bench --quick` only, not the criterion benches"
    )]
    pub const QUICK: Plan = Plan {
        uncontended: Blocks {
            block: Duration::from_millis(2),
            rounds: 12,
        },
        ping_pong: Blocks {
            block: Duration::from_millis(10),
            rounds: 8,
        },
        timers: 50,
        abandons: 10,
        contention: ContentionPlan {
            round: Duration::from_millis(60),
            rounds: 3,
        },
        fanout_rounds: 20,
        scale: &[1_000],
        etcd: EtcdPlan {
            rounds: 2,
            uncontended: 5,
            hand_off: 3,
            wait_all: 2,
        },
    };
}

/// The result of [`paired`].
#[derive(Clone, Copy, Debug)]
pub struct PairStats {
    /// Median ns per operation of the subject.
    pub subject_ns: f64,
    /// Median ns per operation of the baseline.
    pub baseline_ns: f64,
    /// Per-round ratios subject/baseline: p25, median, p75.
    pub ratio: [f64; 3],
    /// Rounds measured.
    pub rounds: usize,
}

impl PairStats {
    /// Of rounds measured in pairs: each round's ns per operation of the subject and of
    /// the baseline, and its ratio (taken by the caller, who knows what to guard).
    pub fn of_rounds(
        mut subject: Vec<f64>,
        mut baseline: Vec<f64>,
        mut ratios: Vec<f64>,
    ) -> PairStats {
        PairStats {
            subject_ns: quantile(&mut subject, 0.5),
            baseline_ns: quantile(&mut baseline, 0.5),
            ratio: [
                quantile(&mut ratios, 0.25),
                quantile(&mut ratios, 0.5),
                quantile(&mut ratios, 0.75),
            ],
            rounds: ratios.len(),
        }
    }
}

/// Runs `subject` and `baseline` (each runs `n` operations per call) in alternating
/// blocks of about the same duration (S B, B S, S B, …), keeping the ratio of each
/// round's two blocks: a load change during the run moves both sides of a round,
/// not the ratio.
pub fn paired(
    subject: &mut impl FnMut(u64),
    baseline: &mut impl FnMut(u64),
    blocks: Blocks,
) -> PairStats {
    let ns = calibrate(subject, blocks.block);
    let nb = calibrate(baseline, blocks.block);
    let mut ts = Vec::with_capacity(blocks.rounds);
    let mut tb = Vec::with_capacity(blocks.rounds);
    let mut ratios = Vec::with_capacity(blocks.rounds);
    for r in 0..blocks.rounds {
        let (x, y) = if r % 2 == 0 {
            let x = per_op(subject, ns);
            (x, per_op(baseline, nb))
        } else {
            let y = per_op(baseline, nb);
            (per_op(subject, ns), y)
        };
        ts.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    PairStats::of_rounds(ts, tb, ratios)
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

/// The `q` quantile (0..=1) of `v`, nearest rank; sorts `v`.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Runs `op` `n` times (the loop a paired block times).
fn times(op: impl Fn()) -> impl FnMut(u64) {
    move |n| {
        for _ in 0..n {
            op();
        }
    }
}

// ---------------------------------------------------------------------------------
// Uncontended operations
// ---------------------------------------------------------------------------------

/// `mutex/uncontended`: lock + unlock, vs process-shared pthread mutexes.
pub struct MutexOps {
    m: Mutex,
    pm: PthreadMutex,
    robust: PthreadMutex,
}

impl MutexOps {
    /// Creates the procsync mutex (named) and the two pthread mutexes.
    pub fn create() -> MutexOps {
        let (m, _) = Mutex::create("Local\\bench-mutex", false).expect("creating a mutex");
        MutexOps {
            m,
            pm: PthreadMutex::new(false),
            robust: PthreadMutex::new(true),
        }
    }

    /// `wait(None)` + `unlock()` on a `Mutex` (the Win32 form).
    #[inline]
    pub fn procsync(&self) {
        let locked = matches!(self.m.wait(None), Ok(WaitOutcome::Signaled(0)));
        assert!(locked, "Mutex::wait failed");
        let unlocked = matches!(self.m.unlock(), Ok(1));
        assert!(unlocked, "Mutex::unlock failed");
    }

    /// `pthread_mutex_lock` + `unlock`, `PTHREAD_PROCESS_SHARED`.
    #[inline]
    pub fn pthread(&self) {
        self.pm.lock_unlock();
    }

    /// The same with `PTHREAD_MUTEX_ROBUST` (owner death reported, like procsync).
    #[inline]
    pub fn pthread_robust(&self) {
        self.robust.lock_unlock();
    }

    /// The paired rows.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        let g = "mutex/uncontended";
        let s = paired(
            &mut times(|| self.procsync()),
            &mut times(|| self.pthread()),
            plan.uncontended,
        );
        report.pair(g, "procsync", "pthread-pshared", "per op", s);
        let s = paired(
            &mut times(|| self.procsync()),
            &mut times(|| self.pthread_robust()),
            plan.uncontended,
        );
        report.pair(g, "procsync", "pthread-pshared-robust", "per op", s);
    }
}

/// `semaphore/uncontended`: wait(0) + release(1) at count 1 of 1, vs `sem_t`.
pub struct SemaphoreOps {
    s: Semaphore,
    posix: PosixSem,
}

impl SemaphoreOps {
    /// Creates the procsync semaphore (named) and the POSIX one.
    pub fn create() -> SemaphoreOps {
        let (s, _) = Semaphore::create("Local\\bench-sem", 1, 1).expect("creating a semaphore");
        SemaphoreOps {
            s,
            posix: PosixSem::new(1),
        }
    }

    /// `wait(Some(0))` + `release(1)`.
    #[inline]
    pub fn procsync(&self) {
        let took = matches!(
            self.s.wait(Some(Duration::ZERO)),
            Ok(WaitOutcome::Signaled(0))
        );
        assert!(took, "Semaphore::wait failed");
        let released = matches!(self.s.release(1), Ok(0));
        assert!(released, "Semaphore::release failed");
    }

    /// `sem_trywait` + `sem_post` on a `sem_init(pshared = 1)` semaphore.
    #[inline]
    pub fn posix(&self) {
        self.posix.trywait_post();
    }

    /// The paired row.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        let s = paired(
            &mut times(|| self.procsync()),
            &mut times(|| self.posix()),
            plan.uncontended,
        );
        report.pair(
            "semaphore/uncontended",
            "procsync",
            "posix-sem-pshared",
            "per op",
            s,
        );
    }
}

/// `event/set-wait0` (auto-reset: set + wait(0)) and `event/set-reset` (manual-reset,
/// no waiter: set + reset), vs an eventfd write + read (two system calls) and the atomic
/// floors: a swap + compare-exchange (set-wait0), two swaps (set-reset).
pub struct EventOps {
    auto: Event,
    manual: Event,
    efd: EventFd,
    flag: Shm,
}

impl EventOps {
    /// Creates the two procsync events (named), the eventfd and the flag word.
    pub fn create() -> EventOps {
        let (auto, _) =
            Event::create("Local\\bench-auto", false, false).expect("creating an event");
        let (manual, _) =
            Event::create("Local\\bench-manual", true, false).expect("creating an event");
        EventOps {
            auto,
            manual,
            efd: EventFd::new(),
            flag: Shm::anon(4096),
        }
    }

    /// Auto-reset event: `set()` + `wait(Some(0))`.
    #[inline]
    pub fn set_wait0(&self) {
        black_box(self.auto.set().expect("set"));
        let _ = black_box(self.auto.wait(Some(Duration::ZERO)).expect("wait"));
    }

    /// Manual-reset event: `set()` + `reset()`.
    #[inline]
    pub fn set_reset(&self) {
        black_box(self.manual.set().expect("set"));
        black_box(self.manual.reset().expect("reset"));
    }

    /// Non-blocking eventfd: `write(1)` + `read`.
    #[inline]
    pub fn eventfd(&self) {
        self.efd.write_read();
    }

    /// The floor: a flag word in shared memory, set and cleared by two swaps.
    #[inline]
    pub fn atomic_flag(&self) {
        let flag = self.flag.word(0);
        black_box(flag.swap(1, Ordering::Release));
        black_box(flag.swap(0, Ordering::Relaxed));
    }

    /// The floor of `set-wait0`: a flag word raised by a swap and taken back by a
    /// compare-exchange, the least an auto-reset event's set and try-acquire must do.
    #[inline]
    pub fn atomic_set_take(&self) {
        let flag = self.flag.word(1);
        black_box(flag.swap(1, Ordering::Release));
        black_box(flag.compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed))
            .expect("the flag was just raised");
    }

    /// The paired rows.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        let b = plan.uncontended;
        let s = paired(
            &mut times(|| self.set_wait0()),
            &mut times(|| self.eventfd()),
            b,
        );
        report.pair("event/set-wait0", "procsync", "eventfd", "per op", s);
        let s = paired(
            &mut times(|| self.set_wait0()),
            &mut times(|| self.atomic_set_take()),
            b,
        );
        report.pair(
            "event/set-wait0",
            "procsync",
            "atomic-set-take",
            "per op",
            s,
        );
        let s = paired(
            &mut times(|| self.set_reset()),
            &mut times(|| self.eventfd()),
            b,
        );
        report.pair("event/set-reset", "procsync", "eventfd", "per op", s);
        let s = paired(
            &mut times(|| self.set_reset()),
            &mut times(|| self.atomic_flag()),
            b,
        );
        report.pair("event/set-reset", "procsync", "atomic-flag", "per op", s);
    }
}

/// `wait_all/8-semaphores`: wait_all over 8 semaphores (count 2^20), then release(1)
/// each, vs 8 single waits, vs 8 POSIX `sem_trywait` + `sem_post`.
pub struct WaitAllOps {
    sems: Vec<Semaphore>,
    posix: Vec<PosixSem>,
}

impl WaitAllOps {
    const N: usize = 8;
    const COUNT: u32 = 1 << 20;
    /// Largest semaphore maximum procsync accepts.
    const MAX_SEMAPHORE: u32 = 0x7FFF_FFFF;

    /// Creates the 8 procsync semaphores (named) and the 8 POSIX ones.
    pub fn create() -> WaitAllOps {
        let sems = (0..Self::N)
            .map(|i| {
                Semaphore::create(
                    &format!("Local\\bench-all-{i}"),
                    Self::COUNT,
                    Self::MAX_SEMAPHORE,
                )
                .expect("creating a semaphore")
                .0
            })
            .collect();
        let posix = (0..Self::N).map(|_| PosixSem::new(Self::COUNT)).collect();
        WaitAllOps { sems, posix }
    }

    /// `wait_all(8, None)`, then `release(1)` each.
    #[inline]
    pub fn wait_all(&self) {
        let list: [&Handle; Self::N] = std::array::from_fn(|i| &*self.sems[i]);
        let _ = black_box(wait_all(&list, None).expect("wait_all"));
        for s in &self.sems {
            black_box(s.release(1).expect("release"));
        }
    }

    /// `wait(None)` on each, then `release(1)` each.
    #[inline]
    pub fn single_waits(&self) {
        for s in &self.sems {
            let _ = black_box(s.wait(None).expect("wait"));
        }
        for s in &self.sems {
            black_box(s.release(1).expect("release"));
        }
    }

    /// `sem_trywait` + `sem_post` on each of 8 POSIX semaphores.
    #[inline]
    pub fn posix(&self) {
        for s in &self.posix {
            s.trywait_post();
        }
    }

    /// The paired rows.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        let g = "wait_all/8-semaphores";
        let b = plan.uncontended;
        let s = paired(
            &mut times(|| self.wait_all()),
            &mut times(|| self.single_waits()),
            b,
        );
        report.pair(g, "procsync-wait_all", "procsync-8-waits", "per op", s);
        let s = paired(
            &mut times(|| self.single_waits()),
            &mut times(|| self.posix()),
            b,
        );
        report.pair(
            g,
            "procsync-8-waits",
            "posix-sem-8-trywait-post",
            "per op",
            s,
        );
    }
}

// ---------------------------------------------------------------------------------
// Cross-process wake latency (ping-pong)
// ---------------------------------------------------------------------------------

/// The command that starts this executable as the partner `spec`.
fn child_command(spec: &str, cpu: Option<usize>) -> Command {
    let exe = std::env::current_exe().expect("locating the running executable");
    let mut cmd = Command::new(exe);
    cmd.args(CHILD_ARGS.get().map_or(&[][..], Vec::as_slice))
        .env(CHILD_VAR, spec)
        .env(PARENT_VAR, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match cpu {
        Some(c) => cmd.env(CPU_VAR, c.to_string()),
        None => cmd.env_remove(CPU_VAR),
    };
    cmd
}

/// A partner process, killed and reaped on drop. A watchdog thread ends this process
/// (with a message, after removing the temporary directory) if the partner dies on its
/// own, instead of letting a round trip hang forever.
struct Partner {
    child: Child,
    expected_exit: Arc<AtomicBool>,
}

impl Partner {
    fn spawn(spec: &str, cpu: Option<usize>) -> Partner {
        let child = child_command(spec, cpu)
            .spawn()
            .expect("spawning the partner process");
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
                    std::process::exit(1); // failure (`procsync`'s exit::FAILURE)
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

/// The parent's side of one ping-pong: `round_trips(n)` runs n round trips.
pub trait PingPong {
    /// Runs `n` round trips.
    fn round_trips(&mut self, n: u64);
}

/// How a procsync ping-pong signals and waits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// `set` then `wait` (n = 1) or `wait_any` (n > 1).
    SetWait,
    /// `signal_and_wait`.
    SignalAndWait,
    /// `set`, then `wait_all` over the event and a manual "gate" event that is always
    /// set, so that every set completes a wait-all inside the signal (WL-18). `fetched`:
    /// each side's gate is an unnamed event of its own, which the signaller does not map
    /// and fetches from the waiter by descriptor; otherwise both sides map both gates.
    WaitAll {
        /// The signaller must fetch the waiter's gate.
        fetched: bool,
    },
}

impl Mode {
    fn code(self) -> &'static str {
        match self {
            Mode::SetWait => "setwait",
            Mode::SignalAndWait => "saw",
            Mode::WaitAll { fetched: false } => "waitall",
            Mode::WaitAll { fetched: true } => "waitall-fetched",
        }
    }
}

/// A manual-reset event created set (or opened, if it exists): a wait-all's always-
/// available second object.
fn gate(name: &str) -> Event {
    Event::create(name, true, true).expect("creating a gate").0
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

/// procsync events `<prefix>-ping` (parent → child) and `<prefix>-pong` (child →
/// parent); with `n > 1` each side waits with wait_any over `n - 1` never-set
/// auto-reset events of its own followed by its event (the signaled one is the last
/// index).
pub struct ProcsyncPingPong {
    ping: Event,
    pong: Event,
    pong_list: Vec<Event>,
    /// Wait-all modes: the parent's gate (and, shared, the child's, kept open).
    gates: Vec<Event>,
    n: usize,
    mode: Mode,
    _partner: Partner,
}

impl ProcsyncPingPong {
    /// Creates the events (names tagged with `tag`) and starts the partner, pinned to
    /// `cpu`; returns after one round trip.
    pub fn new(tag: &str, n: usize, mode: Mode, cpu: Option<usize>) -> ProcsyncPingPong {
        ProcsyncPingPong::in_namespace("Local", tag, n, mode, cpu)
    }

    /// As [`ProcsyncPingPong::new`], with the events in namespace `ns` (`Local` or
    /// `Global`). `Global` events are waited on with *public* wait blocks, as any wait
    /// that other users may signal: the waiter confirms each grant in the object.
    pub fn in_namespace(
        ns: &str,
        tag: &str,
        n: usize,
        mode: Mode,
        cpu: Option<usize>,
    ) -> ProcsyncPingPong {
        let prefix = format!("{ns}\\bench-pp-{tag}");
        let (ping, _) =
            Event::create(&format!("{prefix}-ping"), false, false).expect("creating ping");
        let (pong, _) =
            Event::create(&format!("{prefix}-pong"), false, false).expect("creating pong");
        let gates = match mode {
            Mode::WaitAll { fetched: false } => vec![
                gate(&format!("{prefix}-gate-p")),
                gate(&format!("{prefix}-gate-c")),
            ],
            Mode::WaitAll { fetched: true } => vec![gate("")],
            _ => Vec::new(),
        };
        let partner = Partner::spawn(&format!("pp-procsync:{}:{n}:{prefix}", mode.code()), cpu);
        let mut p = ProcsyncPingPong {
            ping,
            pong,
            pong_list: dummies(n - 1),
            gates,
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
            (Mode::WaitAll { .. }, _) => {
                let list: Vec<&Handle> = vec![&*self.pong, &*self.gates[0]];
                for _ in 0..iters {
                    self.ping.set().expect("set");
                    let r = wait_all(&list, None).expect("wait_all");
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
/// file mapping carry a round-trip counter; each side publishes its count and sleeps
/// until the other side's word reaches the same count.
///
/// A fair baseline: it does the work procsync does and no more. A side that
/// is about to sleep says so in bit 31 of the word it sleeps on (`await_seq`), and the
/// other side calls `FUTEX_WAKE` only when that bit is set (`post`), as procsync's
/// `set()` skips the wake when nobody waits. (Waking on every hand-off, as this baseline
/// once did, makes 33–41 % of the calls wake nobody and flatters procsync.)
pub struct FutexPingPong {
    shm: Shm,
    seq: u32,
    _partner: Partner,
}

impl FutexPingPong {
    /// Creates the futex file (named `tag`) and starts the partner, pinned to `cpu`;
    /// returns after one round trip.
    pub fn new(tag: &str, cpu: Option<usize>) -> FutexPingPong {
        let path = PathBuf::from(std::env::var_os(DIR_VAR).expect("bench dir"))
            .join(format!("futex-{tag}"));
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
            post(to, self.seq);
            await_seq(from, self.seq);
        }
    }
}

/// Where the two processes of a ping-pong run.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// CPU of this (parent) process.
    pub parent: usize,
    /// CPU of the partner.
    pub child: usize,
}

/// The ping-pong groups this machine allows: same CPU always, cross-CPU with 2 CPUs.
pub fn placements() -> Vec<(&'static str, Placement)> {
    let cpus = allowed_cpus();
    let mut v = vec![(
        "wake/ping-pong-same-cpu",
        Placement {
            parent: cpus[0],
            child: cpus[0],
        },
    )];
    if cpus.len() >= 2 {
        v.push((
            "wake/ping-pong-cross-cpu",
            Placement {
                parent: cpus[0],
                child: cpus[1],
            },
        ));
    } else {
        eprintln!("procsync bench: one CPU available; skipping wake/ping-pong-cross-cpu");
    }
    v
}

/// The paired rows of one ping-pong group: each procsync variant against the futex
/// ping-pong, and (same CPU) `wait_any-64` against the single-object wait. All the
/// partners are alive at once (each sleeps while the other pairs run), so the blocks
/// of a pair alternate.
pub fn paired_ping_pong(report: &mut Report, plan: &Plan, group: &str, at: Placement) {
    let saved = allowed_cpus();
    pin(&[at.parent]);
    let cpu = Some(at.child);
    let mut futex = FutexPingPong::new("paired", cpu);
    let mut w1 = ProcsyncPingPong::new("pw1", 1, Mode::SetWait, cpu);
    let mut saw = ProcsyncPingPong::new("psaw", 1, Mode::SignalAndWait, cpu);
    let mut any8 = ProcsyncPingPong::new("pany8", 8, Mode::SetWait, cpu);
    let mut any64 = ProcsyncPingPong::new("pany64", 64, Mode::SetWait, cpu);
    let mut all2 = ProcsyncPingPong::new("pall2", 1, Mode::WaitAll { fetched: false }, cpu);
    let mut all2f = ProcsyncPingPong::new("pall2f", 1, Mode::WaitAll { fetched: true }, cpu);
    let mut public = ProcsyncPingPong::in_namespace("Global", "pglob", 1, Mode::SetWait, cpu);
    let b = plan.ping_pong;
    let m = "per round trip";
    let mut fut = |k| futex.round_trips(k);
    let s = paired(&mut |k| w1.round_trips(k), &mut fut, b);
    report.pair(group, "procsync-wait", "futex-wake-if-waiting", m, s);
    let s = paired(&mut |k| saw.round_trips(k), &mut fut, b);
    report.pair(
        group,
        "procsync-signal_and_wait",
        "futex-wake-if-waiting",
        m,
        s,
    );
    let s = paired(&mut |k| any8.round_trips(k), &mut fut, b);
    report.pair(group, "procsync-wait_any-8", "futex-wake-if-waiting", m, s);
    let s = paired(&mut |k| any64.round_trips(k), &mut fut, b);
    report.pair(group, "procsync-wait_any-64", "futex-wake-if-waiting", m, s);
    if at.parent == at.child {
        let s = paired(&mut |k| any64.round_trips(k), &mut |k| w1.round_trips(k), b);
        report.pair(group, "procsync-wait_any-64", "procsync-wait", m, s);
        // WL-18: every set completes the partner's wait-all inside the signal.
        let s = paired(&mut |k| all2.round_trips(k), &mut |k| w1.round_trips(k), b);
        report.pair(group, "procsync-wait_all-2", "procsync-wait", m, s);
        let s = paired(&mut |k| all2f.round_trips(k), &mut |k| w1.round_trips(k), b);
        report.pair(group, "procsync-wait_all-2-fetched", "procsync-wait", m, s);
        // A wake through a public wait block (a Global\ object: any user may signal it)
        // against the same wake through a private one.
        let s = paired(
            &mut |k| public.round_trips(k),
            &mut |k| w1.round_trips(k),
            b,
        );
        report.pair(group, "procsync-wait-global", "procsync-wait", m, s);
    }
    drop((futex, w1, saw, any8, any64, all2, all2f, public));
    pin(&saved);
}

// ---------------------------------------------------------------------------------
// Timer expiry lateness
// ---------------------------------------------------------------------------------

/// `timer/lateness`: one-shot relative timers, the time from the due time to the
/// waiter's return; a procsync synchronization timer (`set_timer(Relative)` +
/// `wait(None)`) vs a `timerfd` (CLOCK_MONOTONIC, one-shot, blocking `read`). The due
/// time counts from just before the set call, on both sides.
pub struct TimerLateness {
    timer: Handle,
    tfd: OwnedFd,
}

impl TimerLateness {
    /// Creates the procsync timer (named) and the timerfd.
    pub fn create() -> TimerLateness {
        let (timer, _) = Handle::create(
            ObjectSpec::Timer { manual: false },
            "Local\\bench-timer",
            &CreateOptions::default(),
        )
        .expect("creating a timer");
        let tfd = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::CLOEXEC,
        )
        .expect("timerfd_create");
        TimerLateness { timer, tfd }
    }

    /// One procsync timer due in `due`: its lateness.
    pub fn procsync(&self, due: Duration) -> Duration {
        let t0 = Instant::now();
        self.timer
            .set_timer(TimerDue::Relative(due), 0)
            .expect("set_timer");
        let r = self.timer.wait(None).expect("waiting for the timer");
        let late = t0.elapsed().saturating_sub(due);
        assert_eq!(r, WaitOutcome::Signaled(0));
        late
    }

    /// One timerfd expiry due in `due`: its lateness.
    pub fn timerfd(&self, due: Duration) -> Duration {
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = rustix::time::Itimerspec {
            it_interval: zero,
            it_value: due.try_into().expect("a due time in range"),
        };
        let t0 = Instant::now();
        rustix::time::timerfd_settime(&self.tfd, rustix::time::TimerfdTimerFlags::empty(), &spec)
            .expect("timerfd_settime");
        let mut buf = [0u8; 8];
        loop {
            match rustix::io::read(&self.tfd, &mut buf) {
                Ok(8) => break,
                Err(rustix::io::Errno::INTR) => continue,
                r => panic!("reading the timerfd: {r:?}"),
            }
        }
        t0.elapsed().saturating_sub(due)
    }

    /// The due time of the `i`-th timer of the paired run: 1.0 to 3.0 ms in steps of
    /// 0.1 ms, shuffled, so that no due time lines up with a periodic tick.
    fn due(i: usize) -> Duration {
        Duration::from_micros(1000 + (i * 13 % 21) as u64 * 100)
    }

    /// The latency rows: `plan.timers` timers per side, alternating (procsync first in
    /// even rounds, timerfd first in odd ones), after a few discarded warm-up timers.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        for i in 0..4 {
            self.procsync(Self::due(i));
            self.timerfd(Self::due(i));
        }
        let mut s = Vec::with_capacity(plan.timers);
        let mut b = Vec::with_capacity(plan.timers);
        for i in 0..plan.timers {
            let due = Self::due(i);
            if i % 2 == 0 {
                s.push(self.procsync(due));
                b.push(self.timerfd(due));
            } else {
                b.push(self.timerfd(due));
                s.push(self.procsync(due));
            }
        }
        report.latency(
            "timer/lateness",
            "procsync-wait",
            "timerfd",
            "lateness",
            &s,
            &b,
        );
    }
}

// ---------------------------------------------------------------------------------
// Abandonment latency
// ---------------------------------------------------------------------------------

/// `abandon/kill`: a partner process owns a named mutex, this process's main thread
/// blocks in `wait` on it, another thread SIGKILLs the partner; the latency is from
/// the kill to the wait returning `Abandoned` (procsync), and from the kill to
/// `waitpid` returning in the killing thread (the kernel's own notification), measured
/// in the same round.
pub struct Abandonment {
    name: String,
    m: Mutex,
}

impl Abandonment {
    /// Creates the mutex (named, not owned).
    pub fn create() -> Abandonment {
        let name = "Local\\bench-abandon".to_string();
        let (m, _) = Mutex::create(&name, false).expect("creating a mutex");
        Abandonment { name, m }
    }

    /// One round: (kill → `wait` returns `Abandoned`, kill → `waitpid` returns). Must
    /// run on the main thread (the partner's death signal follows the spawning thread).
    pub fn round(&self) -> (Duration, Duration) {
        let mut cmd = child_command(&format!("abandon:{}", self.name), None);
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the mutex holder");
        let out = child.stdout.take().expect("the holder's stdout");
        let mut line = String::new();
        let held = BufReader::new(out).read_line(&mut line).is_ok() && line.trim() == "held";
        if !held {
            let _ = child.kill();
            let status = child.wait();
            panic!("the mutex holder ended before taking the mutex ({status:?})");
        }
        let tid = rustix::thread::gettid();
        let killer = std::thread::Builder::new()
            .name("bench-killer".into())
            .spawn(move || {
                wait_until_blocked(tid);
                let kill = Instant::now();
                let _ = child.kill();
                let _ = child.wait();
                (kill, Instant::now())
            })
            .expect("spawning the killer thread");
        let r = self
            .m
            .wait(Some(Duration::from_secs(10)))
            .expect("waiting on the mutex");
        let returned = Instant::now();
        let (kill, reaped) = killer.join().expect("the killer thread");
        assert_eq!(
            r,
            WaitOutcome::Abandoned(0),
            "a wait on a mutex whose owner was killed"
        );
        self.m.unlock().expect("unlock");
        (
            returned.saturating_duration_since(kill),
            reaped.saturating_duration_since(kill),
        )
    }

    /// The latency rows: `plan.abandons` rounds, after one discarded warm-up round.
    pub fn paired(&self, report: &mut Report, plan: &Plan) {
        self.round();
        let (s, b): (Vec<Duration>, Vec<Duration>) =
            (0..plan.abandons).map(|_| self.round()).unzip();
        report.latency(
            "abandon/kill",
            "procsync-wait-abandoned",
            "waitpid",
            "kill → return",
            &s,
            &b,
        );
    }
}

/// Returns once thread `tid` of this process sleeps in a futex wait (seen twice in a
/// row, 200 µs apart, in `/proc/self/task/<tid>/syscall`), or after 2 s; if that file
/// cannot be read, after a fixed 5 ms.
fn wait_until_blocked(tid: rustix::thread::Pid) {
    let path = format!("/proc/self/task/{}/syscall", tid.as_raw_nonzero());
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = 0;
    while seen < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
        let Ok(s) = std::fs::read_to_string(&path) else {
            std::thread::sleep(Duration::from_millis(5));
            return;
        };
        let nr = s
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<i64>().ok());
        seen = if nr == Some(libc::SYS_futex) {
            seen + 1
        } else {
            0
        };
    }
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

/// One line of the table. Values in ns.
struct Row {
    group: String,
    subject: String,
    baseline: String,
    measure: String,
    subject_ns: f64,
    baseline_ns: f64,
    ratio: f64,
    /// p25, p75 of the per-round ratios (paired rows only).
    spread: Option<(f64, f64)>,
    /// Rounds (paired) or samples per side (latency).
    n: usize,
    /// Latency rows: the p99 of both sides (subject, baseline), on the median row.
    p99: Option<(f64, f64)>,
    /// Further figures of the row: (name, subject, baseline), in their own units.
    extras: Vec<(&'static str, f64, f64)>,
    /// Whether the row is its own entry in `--json` (the p99 row of a latency pair is
    /// folded into its median row's `p99_ns`).
    in_json: bool,
}

/// The table of a run, and the goals checked against it.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    /// What the run left out and why (printed under the table).
    notes: Vec<String>,
}

impl Report {
    /// Records why something was not measured (printed under the table).
    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// Adds a paired row.
    pub fn pair(
        &mut self,
        group: &str,
        subject: &str,
        baseline: &str,
        measure: &str,
        s: PairStats,
    ) {
        self.rows.push(Row {
            group: group.into(),
            subject: subject.into(),
            baseline: baseline.into(),
            measure: measure.into(),
            subject_ns: s.subject_ns,
            baseline_ns: s.baseline_ns,
            ratio: s.ratio[1],
            spread: Some((s.ratio[0], s.ratio[2])),
            n: s.rounds,
            p99: None,
            extras: Vec::new(),
            in_json: true,
        });
    }

    /// Adds a paired row with further figures: (name, subject, baseline).
    pub fn pair_with(
        &mut self,
        group: &str,
        subject: &str,
        baseline: &str,
        measure: &str,
        s: PairStats,
        extras: Vec<(&'static str, f64, f64)>,
    ) {
        self.pair(group, subject, baseline, measure, s);
        self.rows.last_mut().expect("just pushed").extras = extras;
    }

    /// Adds two latency rows (median and p99) from samples of both sides.
    pub fn latency(
        &mut self,
        group: &str,
        subject: &str,
        baseline: &str,
        measure: &str,
        s: &[Duration],
        b: &[Duration],
    ) {
        let ns = |v: &[Duration]| v.iter().map(|d| d.as_nanos() as f64).collect::<Vec<_>>();
        let (mut s, mut b) = (ns(s), ns(b));
        let p99 = (quantile(&mut s, 0.99), quantile(&mut b, 0.99));
        for (q, name) in [(0.5, "median"), (0.99, "p99")] {
            let (x, y) = (quantile(&mut s, q), quantile(&mut b, q));
            let median = name == "median";
            self.rows.push(Row {
                group: group.into(),
                subject: subject.into(),
                baseline: baseline.into(),
                measure: format!("{measure} {name}"),
                subject_ns: x,
                baseline_ns: y,
                ratio: x / y.max(1.0),
                spread: None,
                n: s.len(),
                p99: median.then_some(p99),
                extras: Vec::new(),
                in_json: median,
            });
        }
    }

    fn find(&self, group: &str, subject: &str, baseline: &str, measure: &str) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.group == group
                && r.subject == subject
                && r.baseline == baseline
                && r.measure.ends_with(measure)
        })
    }

    /// Prints the table, then the goals.
    pub fn print(&self) {
        println!();
        println!(
            "{:<28} {:<24} {:<24} {:<24} {:>10} {:>10} {:>7}  {:<15} {:>4}",
            "scenario",
            "procsync",
            "baseline",
            "measure",
            "procsync",
            "baseline",
            "RATIO",
            "[p25, p75]",
            "n"
        );
        for r in &self.rows {
            let spread = r
                .spread
                .map_or_else(|| "-".to_string(), |(a, b)| format!("[{a:.2}, {b:.2}]"));
            let unit = unit_for(r.subject_ns.min(r.baseline_ns));
            println!(
                "{:<28} {:<24} {:<24} {:<24} {:>10} {:>10} {:>7.3}  {:<15} {:>4}",
                r.group,
                r.subject,
                r.baseline,
                r.measure,
                in_unit(r.subject_ns, unit),
                in_unit(r.baseline_ns, unit),
                r.ratio,
                spread,
                r.n
            );
        }
        println!();
        println!(
            "RATIO = procsync / baseline (paired rows: median of per-round ratios of alternating blocks)"
        );
        for n in &self.notes {
            println!("note: {n}");
        }
        self.print_extras();
        self.print_goals();
    }

    /// The further figures of the rows that have them (contention), one line per figure.
    fn print_extras(&self) {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| !r.extras.is_empty()).collect();
        if rows.is_empty() {
            return;
        }
        println!();
        println!(
            "{:<28} {:<24} {:<32} {:>12} {:>12}",
            "scenario", "baseline", "figure (median of rounds)", "procsync", "baseline"
        );
        for r in rows {
            for (name, x, y) in &r.extras {
                println!(
                    "{:<28} {:<24} {:<32} {:>12} {:>12}",
                    r.group,
                    r.baseline,
                    name,
                    figure(*x),
                    figure(*y)
                );
            }
        }
    }

    fn print_goals(&self) {
        let same = "wake/ping-pong-same-cpu";
        let mut goals: Vec<(String, String, bool)> = Vec::new();
        let mut ratio_goal = |label: &str, row: Option<&Row>, max: f64| {
            if let Some(r) = row {
                goals.push((
                    format!("{label} ≤ {max}×"),
                    format!("{:.2}×", r.ratio),
                    r.ratio <= max,
                ));
            }
        };
        ratio_goal(
            "wake: wait_any-64 wake / single-object wake (same CPU)",
            self.find(same, "procsync-wait_any-64", "procsync-wait", ""),
            1.5,
        );
        ratio_goal(
            "wake: single-object wake / futex ping-pong (same CPU)",
            self.find(same, "procsync-wait", "futex-wake-if-waiting", ""),
            1.1,
        );
        ratio_goal(
            "async: procsync-tokio wake / sync wake (same process)",
            self.find("async/wake", "procsync-tokio", "procsync-sync", ""),
            1.5,
        );
        ratio_goal(
            "C ABI: WaitForSingleObject+ReleaseMutex / Rust API",
            self.find(
                "mutex/c-abi",
                "procsync C ABI",
                "procsync Rust API",
                "per op",
            ),
            1.2,
        );
        ratio_goal(
            "timer: lateness / timerfd, median",
            self.find("timer/lateness", "procsync-wait", "timerfd", "median"),
            1.5,
        );
        ratio_goal(
            "timer: lateness / timerfd, p99",
            self.find("timer/lateness", "procsync-wait", "timerfd", "p99"),
            1.5,
        );
        if let Some(r) = self.find("timer/lateness", "procsync-wait", "timerfd", "median") {
            goals.push((
                "timer: lateness, median < 1 ms (idle machine)".into(),
                fmt_ns(r.subject_ns),
                r.subject_ns < 1e6,
            ));
        }
        if let Some(r) = self.find("abandon/kill", "procsync-wait-abandoned", "waitpid", "p99") {
            goals.push((
                "abandonment: kill → Abandoned, p99 < 5 ms".into(),
                fmt_ns(r.subject_ns),
                r.subject_ns < 5e6,
            ));
        }
        if goals.is_empty() {
            return;
        }
        println!();
        println!("goals:");
        for (goal, got, ok) in goals {
            println!(
                "  {:<66} {:>10}  {}",
                goal,
                got,
                if ok { "met" } else { "MISSED" }
            );
        }
        println!(
            "  (a p99 is one of the few largest samples: another process delaying the woken thread \
             moves it; compare with the load average in the header)"
        );
    }
}

/// A figure without a unit, 3–4 significant digits (`inf` for a process that never won).
fn figure(v: f64) -> String {
    if !v.is_finite() {
        "inf".into()
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The unit (and its size in ns) in which `v` ns reads best.
fn unit_for(v: f64) -> (&'static str, f64) {
    if v < 1_000.0 {
        ("ns", 1.0)
    } else if v < 1_000_000.0 {
        ("µs", 1e3)
    } else {
        ("ms", 1e6)
    }
}

/// `v` ns in `unit` (of size `div` ns), with 3 significant digits.
fn in_unit(v: f64, (unit, div): (&str, f64)) -> String {
    let x = v / div;
    let decimals = if x < 10.0 {
        2
    } else if x < 100.0 {
        1
    } else {
        0
    };
    format!("{x:.decimals$} {unit}")
}

/// `v` ns in the unit of [`unit_for`].
fn fmt_ns(v: f64) -> String {
    in_unit(v, unit_for(v))
}

// ---------------------------------------------------------------------------------
// Partner processes
// ---------------------------------------------------------------------------------

/// The partner spec this process was started with, if it is a partner.
pub fn child_spec() -> Option<String> {
    std::env::var(CHILD_VAR).ok()
}

/// Runs the partner `spec` (see [`CHILD_VAR`]) and never returns: it is killed by its
/// parent, or dies with it.
pub fn child_main(spec: &str) -> ! {
    // Die with the parent, whatever way it goes; and if it is already gone, go now.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent: Option<u32> = std::env::var(PARENT_VAR).ok().and_then(|p| p.parse().ok());
    // SAFETY: getppid has no preconditions.
    if parent.is_none_or(|p| unsafe { libc::getppid() } as u32 != p) {
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
        ["abandon", name] => child_abandon(name),
        ["contend", lock, index, path] => contention::child(lock, index, path),
        ["fanout", kind, index, path] => fanout::child(kind, index, path),
        ["scale-open", run, n, sides] => scale::child(run, n, sides),
        _ => {
            eprintln!("procsync bench: unknown {CHILD_VAR} `{spec}`");
            std::process::exit(2); // usage error (`procsync`'s exit::USAGE)
        }
    }
}

fn child_futex(path: &Path) -> ! {
    let shm = Shm::file(path, 4096, false);
    let (from, to) = (shm.word(0), shm.word(1));
    let mut seq: u32 = 0;
    loop {
        seq = seq.wrapping_add(1);
        await_seq(from, seq);
        post(to, seq);
    }
}

fn child_procsync(mode: &str, n: usize, prefix: &str) -> ! {
    let ping = Event::open(&format!("{prefix}-ping")).expect("opening ping");
    let pong = Event::open(&format!("{prefix}-pong")).expect("opening pong");
    let own = dummies(n.saturating_sub(1));
    let list: Vec<&Handle> = own.iter().map(|e| &**e).chain([&*ping]).collect();
    match mode {
        "waitall" | "waitall-fetched" => {
            let own = if mode == "waitall" {
                let _parents = gate(&format!("{prefix}-gate-p"));
                (gate(&format!("{prefix}-gate-c")), Some(_parents))
            } else {
                (gate(""), None)
            };
            let list: Vec<&Handle> = vec![&*ping, &*own.0];
            loop {
                assert_eq!(
                    wait_all(&list, None).expect("wait_all"),
                    WaitOutcome::Signaled(0)
                );
                pong.set().expect("set");
            }
        }
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

/// Takes the mutex `name`, says `held` on stdout, and sleeps until killed.
fn child_abandon(name: &str) -> ! {
    let m = Mutex::open(name).expect("opening the mutex");
    let r = m
        .wait(Some(Duration::from_secs(10)))
        .expect("locking the mutex");
    assert!(
        matches!(r, WaitOutcome::Signaled(0) | WaitOutcome::Abandoned(0)),
        "locking the mutex: {r:?}"
    );
    let mut out = std::io::stdout();
    let _ = writeln!(out, "held");
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
