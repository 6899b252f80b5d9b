//! Read sections and grace periods for the handle table: a lookup reads an entry inside
//! a [`Section`], which costs no atomic read-modify-write and (where `membarrier(2)`
//! works) no memory fence, and an entry taken out of the table is freed only after
//! [`synchronize`] has seen every section that could have read it end. This is
//! user-space RCU in the manner of liburcu's `membarrier` flavour.
//!
//! Each thread that reads owns a slot with a sequence number, odd while the thread is
//! inside a section. A section stores the odd number and then reads the table; a
//! writer unpublishes an entry, makes every running thread of the process execute a
//! full memory barrier (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`), then waits for each slot
//! it sees odd to change. The writer's barrier stands in for the one the reader would
//! need between its store and its load, so the reader needs only a compiler fence.
//! Where membarrier is refused (old kernels, seccomp), readers issue the full fence
//! themselves: one fence instead of the two read-modify-writes of a read lock.
//!
//! Slots are leaked, never freed: a thread's slot goes back to the free pool when the
//! thread exits, and a child made by `fork` frees the slots of the threads it does not
//! have (they could otherwise stay "inside" forever and hang its `CloseHandle`).
//!
//! It must not know what the table holds.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Once;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, compiler_fence, fence};

use rustix::thread::{MembarrierCommand, membarrier};

/// One thread's reader slot (a cache line of its own: only its thread writes it).
#[repr(align(64))]
struct Slot {
    /// Odd while the owning thread is inside a section.
    seq: AtomicU64,
    /// Owned by a live thread.
    used: AtomicBool,
    /// The next slot in [`SLOTS`] (set before the slot is published, then never again).
    next: AtomicPtr<Slot>,
}

/// Every slot ever made, newest first (a push-only list: no lock, so the `fork` child
/// handler can walk it).
static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());

const UNKNOWN: u8 = 0;
const MEMBARRIER: u8 = 1;
const FENCE: u8 = 2;

/// How readers and writers order themselves: [`MEMBARRIER`] once this process is
/// registered for expedited membarriers, else [`FENCE`].
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

thread_local! {
    /// The calling thread's slot (no destructor: readable in other destructors too).
    static MINE: Cell<Option<&'static Slot>> = const { Cell::new(None) };
    /// Returns the slot to the pool when the thread exits.
    static GIVE_BACK: GiveBack = const { GiveBack };
}

struct GiveBack;

impl Drop for GiveBack {
    fn drop(&mut self) {
        if let Some(s) = MINE.with(Cell::take) {
            s.used.store(false, Release);
        }
    }
}

/// The slot at `p`.
fn slot(p: *mut Slot) -> Option<&'static Slot> {
    // SAFETY: every pointer in SLOTS (and in a slot's `next`) comes from `Box::leak`
    // and slots are never freed, so it is NULL or valid for 'static.
    unsafe { p.as_ref() }
}

fn mode() -> u8 {
    let m = MODE.load(Acquire);
    if m != UNKNOWN {
        return m;
    }
    let m = if membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok() {
        MEMBARRIER
    } else {
        FENCE
    };
    MODE.store(m, Release);
    m
}

/// In a child made by `fork`, only the forking thread exists: every other slot is
/// outside any section and free.
extern "C" fn after_fork_in_child() {
    let me = MINE.with(Cell::get).map(std::ptr::from_ref);
    let mut p = SLOTS.load(Acquire);
    while let Some(s) = slot(p) {
        if Some(std::ptr::from_ref(s)) != me {
            let q = s.seq.load(Relaxed);
            s.seq.store(q + (q & 1), Relaxed);
            s.used.store(false, Relaxed);
        }
        p = s.next.load(Acquire);
    }
}

/// Gives the calling thread a slot (its first section).
#[cold]
fn acquire() -> &'static Slot {
    static AT_FORK: Once = Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler with the C signature pthread_atfork wants; the
        // handler only touches atomics and a const thread-local.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    mode();
    let mut found = None;
    let mut p = SLOTS.load(Acquire);
    while let Some(s) = slot(p) {
        if s.used
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
        {
            found = Some(s);
            break;
        }
        p = s.next.load(Acquire);
    }
    let s = found.unwrap_or_else(|| {
        let s: &'static Slot = Box::leak(Box::new(Slot {
            seq: AtomicU64::new(0),
            used: AtomicBool::new(true),
            next: AtomicPtr::new(std::ptr::null_mut()),
        }));
        let mut head = SLOTS.load(Relaxed);
        loop {
            s.next.store(head, Relaxed);
            match SLOTS.compare_exchange_weak(
                head,
                std::ptr::from_ref(s).cast_mut(),
                Release,
                Relaxed,
            ) {
                Ok(_) => break s,
                Err(h) => head = h,
            }
        }
    });
    // Touching GIVE_BACK registers its destructor; a thread already past its
    // thread-local destructors keeps the slot for good (one leaked slot, still correct).
    let _ = GIVE_BACK.try_with(|_| ());
    MINE.with(|m| m.set(Some(s)));
    s
}

/// A read section: table entries read while it lives stay allocated until it ends.
/// Not `Send`: it is the calling thread's.
pub struct Section {
    slot: &'static Slot,
    outer: bool,
    _thread: PhantomData<*const ()>,
}

/// Enters a read section (nested sections are allowed and cost nothing more).
#[inline]
pub fn read() -> Section {
    let slot = MINE.with(Cell::get).unwrap_or_else(acquire);
    let s = slot.seq.load(Relaxed);
    let outer = s & 1 == 0;
    if outer {
        slot.seq.store(s + 1, Relaxed);
        // Orders the store above before the table reads that follow: against the
        // writer's membarrier (a compiler fence suffices), or by a fence of our own.
        if MODE.load(Relaxed) == MEMBARRIER {
            compiler_fence(SeqCst);
        } else {
            fence(SeqCst);
        }
    }
    Section {
        slot,
        outer,
        _thread: PhantomData,
    }
}

impl Drop for Section {
    #[inline]
    fn drop(&mut self) {
        if self.outer {
            let s = self.slot.seq.load(Relaxed);
            // Release: the section's reads happen before a writer sees it ended.
            self.slot.seq.store(s + 1, Release);
        }
    }
}

/// Makes every thread of the process execute a full memory barrier; `false` if the
/// kernel refuses (then nothing may be freed).
fn barrier_everywhere() -> bool {
    if membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
        return true;
    }
    // A `fork` child may need to register again.
    if membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
        && membarrier(MembarrierCommand::PrivateExpedited).is_ok()
    {
        return true;
    }
    membarrier(MembarrierCommand::Global).is_ok()
}

/// Waiting for a reader to leave its section: sections are short, so spin, then yield;
/// a reader that was preempted inside one needs its CPU back, so then sleep (up to
/// 1 ms at a time) rather than compete for it.
fn backoff(tries: u32) {
    if tries < 128 {
        std::hint::spin_loop();
    } else if tries < 160 {
        std::thread::yield_now();
    } else {
        let us = 1u64 << (tries - 160).min(10);
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

/// Waits until every read section that may have seen the table before this call (the
/// caller has unpublished an entry) has ended. `false` means that could not be made
/// sure of: the caller must leak the entry rather than free it. The caller must not be
/// inside a section itself.
pub fn synchronize() -> bool {
    fence(SeqCst);
    if mode() == MEMBARRIER && !barrier_everywhere() {
        return false;
    }
    let me = MINE.with(Cell::get).map(std::ptr::from_ref);
    let mut p = SLOTS.load(Acquire);
    while let Some(s) = slot(p) {
        let q = s.seq.load(Acquire);
        if q & 1 == 1 {
            if Some(std::ptr::from_ref(s)) == me {
                debug_assert!(false, "synchronize inside a read section");
                return false;
            }
            let mut tries = 0u32;
            while s.seq.load(Acquire) == q {
                backoff(tries);
                tries += 1;
            }
        }
        p = s.next.load(Acquire);
    }
    true
}

/// Something unpublished, freed once no section can see it (after [`synchronize`]);
/// leaked if that cannot be made sure of.
pub struct Retired<T>(Option<Box<T>>);

impl<T> Retired<T> {
    /// Wraps an unpublished `T`.
    pub fn new(b: Option<Box<T>>) -> Retired<T> {
        Retired(b)
    }
}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            if synchronize() {
                drop(b);
            } else {
                std::mem::forget(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_thread_keeps_its_slot_and_nested_sections_end_with_the_outer() {
        let outer = read();
        let inner = read();
        assert!(std::ptr::eq(outer.slot, inner.slot));
        drop(inner);
        assert_eq!(
            outer.slot.seq.load(Relaxed) & 1,
            1,
            "still inside the outer"
        );
        let slot = outer.slot;
        drop(outer);
        assert_eq!(slot.seq.load(Relaxed) & 1, 0, "outside");
        assert!(std::ptr::eq(read().slot, slot));
    }

    #[test]
    fn synchronize_waits_for_a_section_begun_before_it() {
        let (inside, syncing, ended) = (
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                let section = read();
                inside.store(true, SeqCst);
                while !syncing.load(SeqCst) {
                    std::thread::yield_now();
                }
                ended.store(true, SeqCst);
                drop(section);
            });
            while !inside.load(SeqCst) {
                std::thread::yield_now();
            }
            syncing.store(true, SeqCst);
            assert!(synchronize());
            assert!(
                ended.load(SeqCst),
                "synchronize returned inside the section"
            );
        });
    }

    /// A `fork` child has only the forking thread: a section another thread of the
    /// parent was in at the fork must not hold up the child's grace periods.
    #[test]
    fn a_fork_child_does_not_wait_for_the_parents_other_threads() {
        let (inside, done) = (AtomicBool::new(false), AtomicBool::new(false));
        std::thread::scope(|s| {
            s.spawn(|| {
                let _section = read();
                inside.store(true, SeqCst);
                while !done.load(SeqCst) {
                    std::thread::yield_now();
                }
            });
            while !inside.load(SeqCst) {
                std::thread::yield_now();
            }
            drop(read());
            // SAFETY: the child only calls `synchronize` (atomics, membarrier, sleeps)
            // and `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let ok = synchronize();
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            assert!(pid > 0, "fork failed");
            let status = wait_child(pid);
            done.store(true, SeqCst);
            assert_eq!(status, Some(0), "the child's synchronize failed or hung");
        });
    }

    /// The child's exit status, or `None` (after killing it) if it hangs: a guard
    /// against a hung test, not a timing assertion.
    fn wait_child(pid: libc::pid_t) -> Option<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut status = 0;
            // SAFETY: our own child and a local.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: our own child, then reaped.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
