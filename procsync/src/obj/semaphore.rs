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

// The guessed swap. On some CPUs (Intel's) a load of the state word right before the
// locked compare-and-swap on it costs a third as much again as the swap, so the
// lock-free semaphore operations swap from what this process last left in the word
// (`Object::guess`) and read the word only when that guess would not do. A wrong guess
// costs a failed swap, which returns the word: every outcome is decided on a value read
// from it, never on the guess. Under contention the guess is mostly wrong (another
// process wrote last), and a failed swap takes the line from whoever holds it; so a
// miss turns guessing off for the next `COOL_AFTER_MISS` operations of this process.
//
// `Object::guess`: the state word's bits (0..=30 and 63), and in bits 32..=39 how many
// more operations read the word first.

const COOL_SHIFT: u32 = 32;
const COOL_MASK: u64 = 0xFF << COOL_SHIFT;
const COOL_AFTER_MISS: u64 = 64;

/// What to swap from: the guess, if guessing is on and `usable` accepts it, else the
/// word; with whether it is a guess, and the cool-down left.
#[inline(always)]
fn first_value(obj: &Object, usable: impl Fn(u64) -> bool) -> (u64, bool, u64) {
    let g = obj.guess.load(Ordering::Relaxed);
    let cool = g & COOL_MASK;
    let v = g & !COOL_MASK;
    if cool == 0 && usable(v) {
        (v, true, 0)
    } else {
        (obj.state().load(Ordering::Relaxed), false, cool)
    }
}

/// Records what a successful swap left in the word; `missed`: a guessed swap of this
/// operation failed first.
#[inline(always)]
fn remember(obj: &Object, left: u64, cool: u64, missed: bool) {
    let cool = if missed {
        COOL_AFTER_MISS << COOL_SHIFT
    } else {
        cool.saturating_sub(1 << COOL_SHIFT)
    };
    obj.guess
        .store((left & !COOL_MASK) | cool, Ordering::Relaxed);
}

/// What an unlock (`obj::lock`) or a wait-all's transaction (`wait::all`) left in the
/// word, keeping the cool-down.
#[inline]
pub(crate) fn remember_unlocked(obj: &Object, left: u64) {
    let cool = obj.guess.load(Ordering::Relaxed) & COOL_MASK;
    obj.guess
        .store((left & !COOL_MASK) | cool, Ordering::Relaxed);
}

/// The lock-free wait, a guessed swap (see above).
#[inline]
pub(crate) fn try_wait_fast(obj: &Object) -> Fast {
    let st = obj.state();
    let (mut s, mut guessed, cool) = first_value(obj, |v| v & COUNT_MASK != 0 && v & WAITERS == 0);
    let mut missed = false;
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
                remember(obj, s - 1, cool, missed);
                return Fast::Acquired(false);
            }
            Err(now) => {
                missed |= guessed;
                guessed = false;
                s = now;
            }
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
/// past the maximum; the full path reports what is wrong otherwise). A guessed swap, as
/// [`try_wait_fast`].
#[inline]
pub(crate) fn release_fast(obj: &Object, n: u32) -> Option<u32> {
    let st = obj.state();
    let fits = |s: u64| {
        let c = (s & COUNT_MASK) as u32;
        s & !COUNT_MASK == 0 && c <= obj.max && n != 0 && n <= obj.max - c
    };
    let (mut s, mut guessed, cool) = first_value(obj, fits);
    let mut missed = false;
    loop {
        if !fits(s) {
            return None;
        }
        let to = s + u64::from(n);
        match st.compare_exchange(s, to, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                remember(obj, to, cool, missed);
                return Some((s & COUNT_MASK) as u32);
            }
            Err(now) => {
                missed |= guessed;
                guessed = false;
                s = now;
            }
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

/// The word after one wait from `s`, if `s` is a valid count with a unit and nobody
/// queued: what wait-all's hardware transaction writes (`wait::all`).
pub(crate) fn taken_from(obj: &Object, s: u64) -> Option<u64> {
    let c = (s & COUNT_MASK) as u32;
    (s & !COUNT_MASK == 0 && c != 0 && c <= obj.max).then(|| s - 1)
}

/// `(count, max)`.
pub(crate) fn query(obj: &Object) -> Result<(u32, u32)> {
    Ok((count(obj, obj.state().load(Ordering::Acquire))?, obj.max))
}
