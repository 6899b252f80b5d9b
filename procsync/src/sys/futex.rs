//! Futexes on shared mappings. Never `FUTEX_PRIVATE`: every word we wait on may be
//! woken from another process. A wake on a read-only mapping is enough for the kernel,
//! which is what lets a waiter's doorbell be woken but not forged.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

use super::Errno;
use super::time::Deadline;

/// Why a futex wait returned. Spurious returns are folded into `Woken`: callers always
/// re-read their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// Woken, value changed, interrupted by a signal, or spuriously.
    Woken,
    /// The deadline passed.
    TimedOut,
}

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Sleeps while `*word == expected`, until woken or `deadline`. EINTR is a wake-up
/// (TO-09: the caller re-checks and sleeps again with the remaining time).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Woke {
    let ts = match deadline.remaining() {
        Some(d) if d.is_zero() => return Woke::TimedOut,
        Some(d) => Some(timespec(d)),
        None => None,
    };
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Err(Errno::TIMEDOUT) => Woke::TimedOut,
        _ => Woke::Woken,
    }
}

/// Wakes up to `n` sleepers on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), n).unwrap_or(0)
}

/// Sleeps until any of `words` no longer holds its expected value, or `deadline`.
/// Used only on the overflow path (more waiters than an object's queue holds).
pub(crate) fn wait_many(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Woke {
    if words.len() == 1 {
        return wait(words[0].0, words[0].1, deadline);
    }
    let mut waits = Vec::with_capacity(words.len());
    for (w, v) in words {
        let mut x = futex::Wait::new();
        x.uaddr = futex::WaitPtr::new(w.as_ptr().cast());
        x.val = u64::from(*v);
        x.flags = futex::WaitFlags::SIZE_U32;
        waits.push(x);
    }
    // futex_waitv takes an absolute timeout on the given clock.
    let abs = match deadline {
        Deadline::Now => return Woke::TimedOut,
        Deadline::Never => None,
        Deadline::At(_) => {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let rem = deadline.remaining().unwrap_or_default();
            let total = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + rem;
            Some(timespec(total))
        }
    };
    match futex::waitv(
        &waits,
        futex::WaitvFlags::empty(),
        abs.as_ref(),
        rustix::time::ClockId::Monotonic,
    ) {
        Err(Errno::TIMEDOUT) => Woke::TimedOut,
        _ => Woke::Woken,
    }
}
