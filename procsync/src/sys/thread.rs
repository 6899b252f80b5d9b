//! Thread identity and liveness.
//!
//! A thread is named in shared memory by an *identity*: its Linux thread id in the low
//! 32 bits and the low 30 bits of its start time (clock ticks since boot, from
//! `/proc/<tid>/stat`) in bits 32..=61. Bits 62 and 63 are left to the words that embed
//! an identity. The start time guards against thread-id reuse: a recycled id names a
//! thread with a different start time. The identity is read once per thread and cached,
//! so the fast paths make no `gettid` call; a fork handler drops the cache in the child.

use std::cell::Cell;
use std::sync::Once;

/// Bits of an identity that carry the thread id.
pub(crate) const IDENT_TID_MASK: u64 = 0xFFFF_FFFF;
/// Bits of an identity (tid + start time); bits 62..=63 are free for flags.
pub(crate) const IDENT_MASK: u64 = (1 << 62) - 1;

/// The calling thread, as other processes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    /// Thread id.
    pub tid: u32,
    /// Process id (thread-group id).
    pub pid: u32,
    /// `tid | start << 32`, never 0.
    pub ident: u64,
}

static ATFORK: Once = Once::new();

/// Runs in the child of a `fork`, in the only thread there (the one that forked):
/// its cached identity is the parent's, so drop it.
extern "C" fn after_fork_in_child() {
    IDENT.with(|c| c.set(0));
}

thread_local! {
    /// The identity alone, for the fast paths: 0 until first computed.
    static IDENT: Cell<u64> = const { Cell::new(0) };
    static ME: Cell<Option<Me>> = const { Cell::new(None) };
}

/// The calling thread's identity (`tid | start << 32`), from a thread-local cache.
#[inline]
pub(crate) fn ident() -> u64 {
    let v = IDENT.with(Cell::get);
    if v != 0 { v } else { me_slow().ident }
}

/// The calling thread's full identity; a system call only on the first use per thread.
#[inline]
pub(crate) fn me() -> Me {
    match ME.with(Cell::get) {
        Some(me) if IDENT.with(Cell::get) == me.ident => me,
        _ => me_slow(),
    }
}

#[cold]
fn me_slow() -> Me {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only writes a thread-local of the calling
        // thread, which is valid in a freshly forked child.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let start = match read_stat(tid) {
        Some(Stat { start, .. }) => start,
        None => 0,
    };
    let me = Me {
        tid,
        pid,
        ident: make_ident(tid, start),
    };
    ME.with(|c| c.set(Some(me)));
    IDENT.with(|c| c.set(me.ident));
    me
}

fn make_ident(tid: u32, start: u64) -> u64 {
    u64::from(tid) | ((start & 0x3FFF_FFFF) << 32)
}

/// Bit 62 of a waiter's identity in a queue entry: the waiter is no thread but a
/// detached wait (`wait::detached`, the async waits) of the process whose main thread
/// the other bits name. It is never a thread's identity, so no thread takes such a
/// waiter for itself (and rings it without a system call); its liveness is the main
/// thread's, that is, the process's.
pub(crate) const DETACHED: u64 = 1 << 62;

/// This process's identity for detached waits: its main thread's identity | [`DETACHED`].
pub(crate) fn detached_ident() -> u64 {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    // Per process: a forked child computes its own. Threads racing here store the
    // same value.
    static FOR_PID: AtomicU32 = AtomicU32::new(0);
    static IDENT: AtomicU64 = AtomicU64::new(0);
    let pid = me().pid; // cached per thread (and renewed in a forked child)
    if FOR_PID.load(Ordering::Acquire) == pid {
        return IDENT.load(Ordering::Relaxed);
    }
    let start = read_stat(pid).map_or(0, |s| s.start);
    let ident = make_ident(pid, start) | DETACHED;
    IDENT.store(ident, Ordering::Relaxed);
    FOR_PID.store(pid, Ordering::Release);
    ident
}

/// The thread id inside an identity.
pub(crate) fn ident_tid(ident: u64) -> u32 {
    (ident & IDENT_TID_MASK) as u32
}

struct Stat {
    state: u8,
    start: u64,
}

fn read_stat(tid: u32) -> Option<Stat> {
    let text = std::fs::read(format!("/proc/{tid}/stat")).ok()?;
    // `pid (comm) S ppid …`: comm may hold spaces and parentheses, so split after the last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.bytes().next()?;
    // Field 22 (starttime) is the 20th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start })
}

/// Whether the thread named by `ident` still runs. Reads `/proc`, so it is for slow
/// paths only (lock recovery, abandonment checks). Zombies count as dead.
pub(crate) fn ident_alive(ident: u64) -> bool {
    let tid = ident_tid(ident);
    if tid == 0 {
        return false;
    }
    match read_stat(tid) {
        None => false,
        Some(s) => {
            s.state != b'Z' && s.state != b'X' && make_ident(tid, s.start) == ident & IDENT_MASK
        }
    }
}

/// Cheap liveness test of thread `tid` of process `pid` (one `tgkill(…, 0)`).
pub(crate) fn thread_exists(pid: u32, tid: u32) -> bool {
    if pid == 0 || tid == 0 {
        return false;
    }
    // SAFETY: tgkill with signal 0 sends nothing; it only checks that the thread exists.
    let r = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            pid as libc::c_long,
            tid as libc::c_long,
            0,
        )
    };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Yields the processor (used between spins on an internal lock).
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

/// This process's id, read from the kernel (not cached: used to notice a fork).
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// Runs `f` with the calling thread's timer slack at 1 ns, so that a futex timeout
/// that is a waitable timer's due time fires on time rather than up to 50 µs late (the
/// default slack of a normal thread); restores the previous slack afterwards.
pub(crate) fn with_precise_timers<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: PR_GET_TIMERSLACK/PR_SET_TIMERSLACK take integer arguments and touch
    // only the calling thread's scheduling attribute.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    if old <= 1 {
        return f();
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    let r = f();
    // SAFETY: as above; `old` is the value the kernel gave.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, old as libc::c_ulong, 0, 0, 0) };
    r
}

/// The inode of this process's PID namespace (`/proc/self/ns/pid`), 0 if unknown.
/// Identities are thread ids, which mean something only within one PID namespace.
pub(crate) fn pid_namespace() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| rustix::fs::stat("/proc/self/ns/pid").map_or(0, |st| st.st_ino))
}
