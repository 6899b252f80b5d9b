//! Hardware transactions (Intel's Restricted Transactional Memory, RTM), where the CPU
//! has them: a block of loads and stores that other CPUs see happen all at once or not
//! at all. What runs inside may read and write shared memory only: a system call, a
//! page fault, an interrupt, a conflicting access by another CPU (to any line the block
//! read or wrote) or running out of cache aborts it, and the CPU then rolls every store
//! of the block back and resumes at its start with the abort reason. A process killed
//! inside a transaction leaves nothing behind, which a lock cannot promise.
//!
//! Callers use it only as a fast path with a full fallback: [`atomically`] returns
//! `None` whenever the block did not commit, for whatever reason. `PROCSYNC_HTM=0` in
//! the environment turns it off (read once per process).

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether transactions can be tried on this CPU (and are not turned off).
#[inline]
pub(crate) fn available() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => detect(),
    }
}

#[cold]
fn detect() -> bool {
    let wanted = std::env::var_os("PROCSYNC_HTM").is_none_or(|v| v != "0");
    #[cfg(target_arch = "x86_64")]
    let on = wanted && std::arch::is_x86_feature_detected!("rtm");
    #[cfg(not(target_arch = "x86_64"))]
    let on = {
        let _ = wanted;
        false
    };
    STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
    on
}

/// Turns transactions on or off for this process (tests compare both paths; turning
/// them on where the CPU has none leaves them off).
#[cfg(test)]
pub(crate) fn set_enabled(on: bool) {
    STATE.store(UNKNOWN, Ordering::Relaxed);
    let has = available();
    STATE.store(if on && has { ON } else { OFF }, Ordering::Relaxed);
}

/// Runs `block` as one hardware transaction: `Some` if it returned `Some` and
/// committed, `None` if it returned `None` (the transaction is aborted: nothing it
/// wrote stays) or the CPU aborted it (then `block` ran partly, or not at all, and its
/// stores are undone). Call only when [`available`]. `block` must touch nothing but
/// memory, and keep to a few cache lines.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn atomically<R>(block: impl FnOnce() -> Option<R>) -> Option<R> {
    const STARTED: u32 = u32::MAX;
    let status: u32;
    // SAFETY: `xbegin` starts a transaction whose abort path is the instruction right
    // after it (label 2), reached with the abort status in eax and every register and
    // memory location as they were at `xbegin`; so either way the block below looks,
    // to the compiler, like code after one return of this asm with eax its output. The
    // caller checked that the CPU has RTM (`available`).
    unsafe {
        std::arch::asm!("xbegin 2f", "2:", inout("eax") STARTED => status, options(nostack));
    }
    if status != STARTED {
        return None;
    }
    match block() {
        Some(r) => {
            // SAFETY: inside the transaction that `xbegin` started (an abort would not
            // have come here): commits it.
            unsafe { std::arch::asm!("xend", options(nostack)) };
            Some(r)
        }
        None => {
            // SAFETY: inside that transaction: aborts it, which resumes after `xbegin`
            // above with a status other than STARTED (so this returns from there).
            unsafe { std::arch::asm!("xabort 0xff", options(nostack)) };
            None
        }
    }
}

/// Without RTM: never runs `block`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn atomically<R>(_block: impl FnOnce() -> Option<R>) -> Option<R> {
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A committed block's stores all land; an aborted one's none.
    #[test]
    fn a_transaction_commits_whole_or_not_at_all() {
        if !super::available() {
            eprintln!("SKIPPED: this CPU has no RTM (or PROCSYNC_HTM=0)");
            return;
        }
        let words = [AtomicU64::new(1), AtomicU64::new(2)];
        // A CPU may abort any transaction (an interrupt): retry the committing one.
        let committed = (0..1000).any(|_| {
            super::atomically(|| {
                words[0].store(10, Ordering::Relaxed);
                words[1].store(20, Ordering::Relaxed);
                Some(())
            })
            .is_some()
        });
        assert!(committed, "1000 transactions aborted in a row");
        assert_eq!(
            words.each_ref().map(|w| w.load(Ordering::Relaxed)),
            [10, 20]
        );
        let aborted = super::atomically(|| {
            words[0].store(11, Ordering::Relaxed);
            None::<()>
        });
        assert!(aborted.is_none());
        assert_eq!(words[0].load(Ordering::Relaxed), 10);
    }
}
