//! The locks of the contention scenarios (procsync-bench/README.md, "Scenarios",
//! `contention/*`) and the shared file they live in: procsync's mutex, procsync's semaphore
//! of count 1 of 1 used as a lock, a robust process-shared pthread mutex, a process-shared
//! POSIX `sem_t`, and a strict FIFO futex hand-off lock.
//!
//! What it owns: the shared file's layout, creating the locks (the bench process) and
//! attaching to them (a contender process, shared by its threads), and one acquire / release
//! per lock. What it must not do: time or count anything (the parent module does), or
//! assert anything about the figures.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use procsync::{Mutex, Semaphore, WaitOutcome};

use super::super::{PthreadMutex, Shm, futex_wait, futex_wake};

// Layout of the shared file. Page 0, u32 words: the round's control words and counters.
pub(super) const GATE: usize = 0;
pub(super) const STOP: usize = 1;
pub(super) const READY: usize = 2;
/// Per contender i: acquisitions at `COUNTS + 2i`, context switches at `COUNTS + 2i + 1`.
pub(super) const COUNTS: usize = 16;
/// Contenders the page-0 counters have room for.
pub(super) const MAX_CONTENDERS: usize = 64;
/// The critical section's data, on a cache line of its own (bytes 640..704): written at
/// every owner change, it must not share a line with `STOP`, which every contender reads
/// at every iteration (the two on one line made each owner change cost the next
/// iteration of every other contender a cache miss).
pub(super) const LAST_OWNER: usize = 160;
pub(super) const CHANGES: usize = 161;
/// Byte offset of the pthread mutex (page 1).
const PTHREAD_AT: usize = 4096;
/// Word index of the FIFO lock (page 2): `FIFO_NEXT`, then [`SLOTS`] slot words.
const FIFO_NEXT: usize = 2048;
const SLOTS: usize = 64;
/// Byte offset of the POSIX semaphore (page 3).
const SEM_AT: usize = 3 * 4096;
const FILE_LEN: usize = 4 * 4096;
const _: () = assert!(COUNTS + 2 * MAX_CONTENDERS <= LAST_OWNER && LAST_OWNER.is_multiple_of(16));
const _: () = assert!(CHANGES < PTHREAD_AT / 4);
const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= 4096);
const _: () = assert!(FIFO_NEXT * 4 == 2 * 4096 && (FIFO_NEXT + 1 + SLOTS) * 4 <= SEM_AT);
const _: () = assert!(SEM_AT + std::mem::size_of::<libc::sem_t>() <= FILE_LEN);
// More contenders than slots would let two tickets share a slot.
const _: () = assert!(MAX_CONTENDERS <= SLOTS);

/// Bit 31 of a FIFO slot word: its waiter sleeps (or is about to) in `FUTEX_WAIT`.
const SLEEPING: u32 = 1 << 31;
const TICKET: u32 = !SLEEPING;

/// The lock implementations measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lock {
    /// `Mutex::wait(None)` + `unlock()`.
    ProcsyncMutex,
    /// A semaphore of count 1 of 1: `wait(None)` + `release(1)`.
    ProcsyncSemaphore,
    /// `pthread_mutex_lock` + `unlock`, robust and process-shared (barging).
    PthreadRobust,
    /// `sem_wait` + `sem_post` on a `sem_init(pshared = 1, 1)` semaphore (barging).
    PosixSem,
    /// A strict FIFO ticket lock with one futex word per ticket slot.
    Fifo,
}

impl Lock {
    const ALL: [Lock; 5] = [
        Lock::ProcsyncMutex,
        Lock::ProcsyncSemaphore,
        Lock::PthreadRobust,
        Lock::PosixSem,
        Lock::Fifo,
    ];

    /// The lock's name in a contender's spec, and a baseline's name in the report.
    pub(super) fn code(self) -> &'static str {
        match self {
            Lock::ProcsyncMutex => "procsync-mutex",
            Lock::ProcsyncSemaphore => "procsync-semaphore",
            Lock::PthreadRobust => "pthread-robust",
            Lock::PosixSem => "posix-sem-pshared",
            Lock::Fifo => "fifo-futex-lock",
        }
    }

    pub(super) fn from_code(s: &str) -> Lock {
        Lock::ALL
            .into_iter()
            .find(|l| l.code() == s)
            .unwrap_or_else(|| panic!("unknown lock `{s}`"))
    }
}

/// procsync's object of a scenario, named after the shared file.
enum Subject {
    Mutex(Mutex),
    Semaphore(Semaphore),
}

/// The shared file of one scenario with its locks: created by the bench process (which
/// keeps it for the scenario's rounds), attached by each contender process (whose threads
/// share it, as threads of one program share one mapping and one handle).
pub(super) struct SharedFile {
    /// procsync's object: always in the creator, only when its lock is measured in a
    /// contender.
    subject: Option<Subject>,
    pthread: PthreadMutex,
    sem: *mut libc::sem_t,
    /// Whether dropping it destroys the `sem_t` (the creator only).
    owner: bool,
    /// Last: the locks above live in it.
    shm: Shm,
}

// Handles are shared by threads (checked here, relied on by the `Sync` below).
const _: fn() = || {
    fn sync<T: Sync>() {}
    sync::<Mutex>();
    sync::<Semaphore>();
};

// SAFETY: the raw pointers (`shm`'s mapping, the pthread mutex and the `sem_t` in it) stay
// valid as long as `self`; the mapping is only touched through atomics (`Shm::word`) and
// through `pthread_mutex_*` and `sem_*` calls, which are made for concurrent use by threads
// (and processes: both are process-shared); procsync's handles are `Sync` (checked above).
unsafe impl Sync for SharedFile {}

impl SharedFile {
    /// The bench process: creates the file at `path`, procsync's object `subject`
    /// ([`Lock::ProcsyncMutex`] or [`Lock::ProcsyncSemaphore`]) and the baselines.
    pub(super) fn create(path: &Path, subject: Lock) -> SharedFile {
        let name = object_name(path);
        let subject = match subject {
            Lock::ProcsyncMutex => {
                Subject::Mutex(Mutex::create(&name, false).expect("creating the mutex").0)
            }
            Lock::ProcsyncSemaphore => Subject::Semaphore(
                Semaphore::create(&name, 1, 1)
                    .expect("creating the semaphore")
                    .0,
            ),
            other => panic!("{} is not procsync's", other.code()),
        };
        let shm = Shm::file(path, FILE_LEN, true);
        // SAFETY: page 1 of a fresh zeroed shared mapping, reserved for this mutex; the
        // mapping outlives it (field order).
        let pthread = unsafe { PthreadMutex::init_at(shm.ptr.cast::<u8>().add(PTHREAD_AT), true) };
        // SAFETY: page 3 of the same mapping, reserved for the semaphore, is in bounds.
        let sem = unsafe { shm.ptr.cast::<u8>().add(SEM_AT).cast::<libc::sem_t>() };
        // SAFETY: `sem` is aligned (page start), writable, unused memory of the mapping.
        let r = unsafe { libc::sem_init(sem, 1, 1) };
        assert_eq!(r, 0, "sem_init: {}", std::io::Error::last_os_error());
        init_fifo(&shm);
        SharedFile {
            subject: Some(subject),
            pthread,
            sem,
            owner: true,
            shm,
        }
    }

    /// A contender: maps the file the bench process created at `path`, and opens
    /// procsync's object if `lock` is procsync's.
    pub(super) fn attach(path: &Path, lock: Lock) -> SharedFile {
        let name = object_name(path);
        let subject = match lock {
            Lock::ProcsyncMutex => Some(Subject::Mutex(
                Mutex::open(&name).expect("opening the mutex"),
            )),
            Lock::ProcsyncSemaphore => Some(Subject::Semaphore(
                Semaphore::open(&name).expect("opening the semaphore"),
            )),
            _ => None,
        };
        let shm = Shm::file(path, FILE_LEN, false);
        // SAFETY: page 1 of the shared file, initialised by the creator before we started;
        // the mapping outlives it (field order).
        let pthread = unsafe { PthreadMutex::attach_at(shm.ptr.cast::<u8>().add(PTHREAD_AT)) };
        // SAFETY: page 3 of the mapping is in bounds; the creator initialised it.
        let sem = unsafe { shm.ptr.cast::<u8>().add(SEM_AT).cast::<libc::sem_t>() };
        SharedFile {
            subject,
            pthread,
            sem,
            owner: false,
            shm,
        }
    }

    /// The `i`-th u32 of the file.
    pub(super) fn word(&self, i: usize) -> &AtomicU32 {
        self.shm.word(i)
    }

    /// Takes `lock`; returns the FIFO lock's ticket (0 for the others), for [`Self::release`].
    #[inline]
    pub(super) fn acquire(&self, lock: Lock) -> u32 {
        match lock {
            Lock::ProcsyncMutex | Lock::ProcsyncSemaphore => {
                let r = match self.subject.as_ref().expect("opened") {
                    Subject::Mutex(m) => m.wait(None),
                    Subject::Semaphore(s) => s.wait(None),
                };
                debug_assert_eq!(r.expect("wait"), WaitOutcome::Signaled(0));
                0
            }
            Lock::PthreadRobust => {
                self.pthread.lock();
                0
            }
            Lock::PosixSem => {
                // SAFETY: an initialised process-shared semaphore (constructors).
                while unsafe { libc::sem_wait(self.sem) } != 0 {
                    let e = std::io::Error::last_os_error();
                    assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "sem_wait: {e}");
                }
                0
            }
            Lock::Fifo => fifo_lock(&self.shm),
        }
    }

    /// Gives back `lock`, taken by this thread with [`Self::acquire`] (which returned `ticket`).
    #[inline]
    pub(super) fn release(&self, lock: Lock, ticket: u32) {
        match lock {
            Lock::ProcsyncMutex | Lock::ProcsyncSemaphore => {
                match self.subject.as_ref().expect("opened") {
                    Subject::Mutex(m) => m.unlock(),
                    Subject::Semaphore(s) => s.release(1),
                }
                .expect("release");
            }
            Lock::PthreadRobust => self.pthread.unlock(),
            Lock::PosixSem => {
                // SAFETY: an initialised process-shared semaphore (constructors).
                let r = unsafe { libc::sem_post(self.sem) };
                debug_assert_eq!(r, 0);
            }
            Lock::Fifo => fifo_unlock(&self.shm, ticket),
        }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        if self.owner {
            // SAFETY: initialised in `create`; the contenders are gone, nobody waits on it.
            unsafe { libc::sem_destroy(self.sem) };
        }
    }
}

/// procsync's object of the scenario whose shared file is `path`.
fn object_name(path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("a file name");
    format!("Local\\bench-{file}")
}

/// Slot i starts out holding the ticket that used it "before" ticket i, so that only
/// ticket 0 is served at first.
fn init_fifo(shm: &Shm) {
    shm.word(FIFO_NEXT).store(0, Ordering::Relaxed);
    for i in 0..SLOTS {
        let before = (i as u32).wrapping_sub(SLOTS as u32) & TICKET;
        shm.word(FIFO_NEXT + 1 + i)
            .store(if i == 0 { 0 } else { before }, Ordering::Release);
    }
}

/// Strict FIFO: takes a ticket and sleeps on its own slot until the previous holder hands
/// the lock to that ticket. Returns the ticket (the unlock hands off to the next one).
fn fifo_lock(shm: &Shm) -> u32 {
    let t = shm.word(FIFO_NEXT).fetch_add(1, Ordering::AcqRel) & TICKET;
    let slot = slot(shm, t);
    loop {
        let v = slot.load(Ordering::Acquire);
        if v & TICKET == t {
            return t;
        }
        if v & SLEEPING == 0
            && slot
                .compare_exchange(v, v | SLEEPING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        futex_wait(slot, v | SLEEPING);
    }
}

/// Hands the lock to ticket `t + 1`, waking its waiter only if it sleeps.
fn fifo_unlock(shm: &Shm, t: u32) {
    let next = t.wrapping_add(1) & TICKET;
    let slot = slot(shm, next);
    if slot.swap(next, Ordering::AcqRel) & SLEEPING != 0 {
        futex_wake(slot);
    }
}

fn slot(shm: &Shm, ticket: u32) -> &AtomicU32 {
    shm.word(FIFO_NEXT + 1 + (ticket as usize % SLOTS))
}
