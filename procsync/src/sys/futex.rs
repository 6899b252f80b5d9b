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
    wait_at_most(word, expected, deadline, None)
}

/// [`wait`], for at most `cap` as well, counted from now (the kernel's relative
/// timeout: no clock is read for it when `deadline` is infinite).
pub(crate) fn wait_at_most(
    word: &AtomicU32,
    expected: u32,
    deadline: Deadline,
    cap: Option<Duration>,
) -> Woke {
    let ts = match (deadline.remaining(), cap) {
        (Some(d), _) if d.is_zero() => return Woke::TimedOut,
        (Some(d), Some(cap)) => Some(timespec(d.min(cap))),
        (Some(d), None) | (None, Some(d)) => Some(timespec(d)),
        (None, None) => None,
    };
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Err(Errno::TIMEDOUT) => Woke::TimedOut,
        _ => Woke::Woken,
    }
}

/// Wakes up to `n` sleepers on `word` (`u32::MAX`: all of them); returns how many were
/// woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    // The kernel reads the count as an `int`: `u32::MAX` would be -1, which wakes one.
    let n = n.min(i32::MAX as u32);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Whether thread `tid` of this process sleeps in `futex(2)` (its current system call).
    fn in_futex(tid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            .is_ok_and(|s| s.split(' ').next() == Some(&libc::SYS_futex.to_string()))
    }

    /// `wake(w, u32::MAX)` wakes every sleeper, not one: the overflow path and the
    /// manual-reset broadcast rely on it (a count the kernel reads as -1 wakes one).
    #[test]
    fn wake_all_wakes_every_sleeper() {
        let word = Arc::new(AtomicU32::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (w, tx) = (word.clone(), tx.clone());
                std::thread::spawn(move || {
                    tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                        .unwrap();
                    while w.load(Ordering::Acquire) == 0 {
                        wait(
                            &w,
                            0,
                            Deadline::At(Instant::now() + Duration::from_secs(20)),
                        );
                    }
                })
            })
            .collect();
        let tids: Vec<i32> = (0..4).map(|_| rx.recv().unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tids.iter().all(|&t| in_futex(t)) {
            assert!(Instant::now() < deadline, "the threads never slept");
            std::thread::sleep(Duration::from_millis(5));
        }
        word.store(1, Ordering::Release);
        let woken = wake(&word, u32::MAX);
        assert_eq!(woken, 4, "one wake of all woke {woken} of 4 sleepers");
        for t in threads {
            t.join().unwrap();
        }
    }
}
