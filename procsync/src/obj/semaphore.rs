//! Semaphores. `state` bits 0..=30 hold the count (≤ max, validated on every read).
//!
//! ```text
//! release(n): count + n > max => TooManyPosts, unchanged (SM-05, SM-07)
//!             else count += n; with waiters, under the lock: min(n, k) units handed
//!             to the first k queued waiters (SM-09)
//! wait:       count > 0 => count - 1
//! ```

use std::sync::atomic::Ordering;

use super::kind::Kind;
use super::signal::signal;
use super::{Fast, Guard, Object};
use crate::error::{Error, Result};
use crate::shm::layout::*;

/// A semaphore's operations (`obj::kind`).
pub(crate) struct SemaphoreKind;

impl Kind for SemaphoreKind {
    const HELD_BRIEFLY: bool = true;

    #[inline]
    fn signaled_for(_obj: &Object, s: u64, _who: u64) -> bool {
        s & COUNT_MASK != 0
    }

    #[inline]
    fn try_fast(obj: &Object, _me: u64) -> Fast {
        try_wait_fast(obj)
    }

    #[inline]
    fn worth_spinning(obj: &Object, _me: u64) -> bool {
        worth_spinning(obj)
    }

    fn acquire_locked(obj: &Object, g: &Guard<'_>, _who: u64) -> Result<Option<bool>> {
        Ok(acquire_locked(obj, g))
    }

    fn undo_locked(obj: &Object, g: &Guard<'_>, _who: u64, _abandoned: bool) {
        undo_locked(obj, g);
    }
}

/// The lock-free wait: a compare-and-swap from what this process last left in the
/// word (`Object::guess`), read only when that guess has no unit to take. On some CPUs
/// (Intel's) a load of the word right before the locked instruction on it costs a third
/// as much again as the instruction; a wrong guess costs a failed swap, which returns
/// the word, and every outcome is decided on a value read from it.
#[inline]
pub(crate) fn try_wait_fast(obj: &Object) -> Fast {
    let st = obj.state();
    let mut s = obj.guess.load(Ordering::Relaxed);
    if s & COUNT_MASK == 0 || s & WAITERS != 0 {
        s = st.load(Ordering::Relaxed);
    }
    loop {
        if s & COUNT_MASK == 0 {
            // No unit, queued waiters or not: nothing to take without the lock.
            return Fast::NotSignaled;
        }
        if s & WAITERS != 0 {
            return Fast::Slow;
        }
        match st.compare_exchange(s, s - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {
                obj.guess.store(s - 1, Ordering::Relaxed);
                return Fast::Acquired(false);
            }
            Err(now) => s = now,
        }
    }
}

/// Nobody queued: a release makes its unit free for whoever takes it first.
#[inline]
pub(crate) fn worth_spinning(obj: &Object) -> bool {
    obj.state().load(Ordering::Relaxed) & WAITERS == 0
}

pub(crate) fn acquire_locked(obj: &Object, _g: &Guard<'_>) -> Option<bool> {
    let s = obj.state().load(Ordering::Relaxed);
    if s & COUNT_MASK == 0 {
        return None;
    }
    obj.state().store(s - 1, Ordering::Relaxed);
    Some(false)
}

pub(crate) fn undo_locked(obj: &Object, _g: &Guard<'_>) {
    obj.state().fetch_add(1, Ordering::Relaxed);
}

fn count(obj: &Object, s: u64) -> Result<u32> {
    let c = (s & COUNT_MASK) as u32;
    if c > obj.max || s & !(COUNT_MASK | WAITERS) != 0 {
        return Err(obj.corrupt("semaphore count above its maximum"));
    }
    Ok(c)
}

/// The lock-free `ReleaseSemaphore`: the previous count, or `None` when the release
/// needs the full path (nobody may be queued, and a valid count that `n` does not push
/// past the maximum; the full path reports what is wrong otherwise). Swaps from
/// `Object::guess`, as [`try_wait_fast`] does, reading the word only when the guess
/// would not do.
#[inline]
pub(crate) fn release_fast(obj: &Object, n: u32) -> Option<u32> {
    let st = obj.state();
    let fits = |s: u64| {
        let c = (s & COUNT_MASK) as u32;
        s & !COUNT_MASK == 0 && c <= obj.max && n != 0 && n <= obj.max - c
    };
    let mut s = obj.guess.load(Ordering::Relaxed);
    if !fits(s) {
        s = st.load(Ordering::Relaxed);
    }
    loop {
        if !fits(s) {
            return None;
        }
        let to = s + u64::from(n);
        match st.compare_exchange(s, to, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                obj.guess.store(to, Ordering::Relaxed);
                return Some((s & COUNT_MASK) as u32);
            }
            Err(now) => s = now,
        }
    }
}

/// `ReleaseSemaphore`; returns the previous count (SM-04).
#[inline]
pub(crate) fn release(obj: &Object, n: u32) -> Result<u32> {
    match release_fast(obj, n) {
        Some(previous) => Ok(previous),
        None => release_checked(obj, n),
    }
}

/// [`release`] past the lock-free step: every check and its error, and the locked
/// release when waiters are queued.
#[cold]
fn release_checked(obj: &Object, n: u32) -> Result<u32> {
    if n == 0 || n > MAX_SEMAPHORE {
        return Err(Error::invalid(format!(
            "a semaphore release count must be between 1 and {MAX_SEMAPHORE}, not {n}"
        )));
    }
    let st = obj.state();
    let mut s = st.load(Ordering::Relaxed);
    while s & WAITERS == 0 {
        let c = count(obj, s)?;
        if n > obj.max - c {
            return Err(Error::TooManyPosts {
                count: n,
                max: obj.max,
                current: c,
            });
        }
        match st.compare_exchange_weak(s, s + u64::from(n), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Ok(c),
            Err(now) => s = now,
        }
    }
    release_slow(obj, n)
}

#[cold]
fn release_slow(obj: &Object, n: u32) -> Result<u32> {
    signal(obj, |_| {
        let s = obj.state().load(Ordering::Relaxed);
        let c = count(obj, s)?;
        if n > obj.max - c {
            return Err(Error::TooManyPosts {
                count: n,
                max: obj.max,
                current: c,
            });
        }
        obj.state().store(s + u64::from(n), Ordering::Relaxed);
        Ok(c)
    })
}

/// `(count, max)`.
pub(crate) fn query(obj: &Object) -> Result<(u32, u32)> {
    Ok((count(obj, obj.state().load(Ordering::Acquire))?, obj.max))
}
