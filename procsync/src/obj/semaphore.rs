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
    const TAKEN_BY_WORD: bool = true;

    #[inline]
    fn signaled_for(_obj: &Object, s: u64, _who: u64) -> bool {
        s & COUNT_MASK != 0
    }

    #[inline]
    fn try_fast(obj: &Object, _me: u64) -> Fast {
        try_wait_fast(obj)
    }

    #[inline]
    fn taken_from(obj: &Object, s: u64) -> Option<u64> {
        taken_from(obj, s)
    }

    /// Keeps the cool-down (see "The guessed swap").
    #[inline]
    fn note_left(obj: &Object, s: u64) {
        let cool = obj.guess.load(Ordering::Relaxed) & COOL_MASK;
        obj.guess.store((s & !COOL_MASK) | cool, Ordering::Relaxed);
    }

    #[inline]
    fn worth_spinning(_obj: &Object, s: u64, _me: u64) -> bool {
        worth_spinning(s)
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

/// The guessed swap: from the guess (if guessing is on and `next` accepts it) or else
/// from the word, swaps the word `s` for `next(s)` until a swap succeeds (`Ok(s)`, the
/// word it replaced) or `next` refuses the word as read (`Err(s)`: the caller decides
/// on it). `success`: the swap's ordering.
#[inline(always)]
fn guessed_swap(
    obj: &Object,
    next: impl Fn(u64) -> Option<u64>,
    success: Ordering,
) -> std::result::Result<u64, u64> {
    let g = obj.guess.load(Ordering::Relaxed);
    // Cool-down left after this operation, unless it misses.
    let mut cool = (g & COOL_MASK).saturating_sub(1 << COOL_SHIFT);
    let mut guessed = g & COOL_MASK == 0 && next(g & !COOL_MASK).is_some();
    let mut s = if guessed {
        g & !COOL_MASK
    } else {
        obj.state().load(Ordering::Relaxed)
    };
    loop {
        let to = next(s).ok_or(s)?;
        match obj
            .state()
            .compare_exchange(s, to, success, Ordering::Relaxed)
        {
            Ok(_) => {
                obj.guess.store((to & !COOL_MASK) | cool, Ordering::Relaxed);
                return Ok(s);
            }
            Err(now) => {
                if guessed {
                    cool = COOL_AFTER_MISS << COOL_SHIFT;
                    guessed = false;
                }
                s = now;
            }
        }
    }
}

/// The lock-free wait, a guessed swap (see above).
#[inline]
pub(crate) fn try_wait_fast(obj: &Object) -> Fast {
    let take = |s: u64| (s & COUNT_MASK != 0 && s & WAITERS == 0).then(|| s - 1);
    match guessed_swap(obj, take, Ordering::Acquire) {
        Ok(_) => Fast::Acquired(false),
        // No unit, queued waiters or not: nothing to take without the lock.
        Err(s) if s & COUNT_MASK == 0 => Fast::NotSignaled,
        Err(_) => Fast::Slow,
    }
}

/// Nobody queued (state word `s`): a release makes its unit free for whoever takes it
/// first.
#[inline]
pub(crate) fn worth_spinning(s: u64) -> bool {
    s & WAITERS == 0
}

pub(crate) fn acquire_locked(obj: &Object, _g: &Guard<'_>) -> Option<bool> {
    let s = obj.state().load(Ordering::Relaxed);
    if s & COUNT_MASK == 0 {
        return None;
    }
    obj.state().store(s - 1, Ordering::Relaxed);
    Some(false)
}

/// Gives back one unit. A unit given back long after it was taken (a cancelled async
/// wait, `Handle::give_back`) may find the count at its maximum, when someone released
/// more than was taken meanwhile: a count above the maximum is not a legal state, so that
/// unit is dropped (as the over-release itself would have failed, SM-05).
pub(crate) fn undo_locked(obj: &Object, _g: &Guard<'_>) {
    let s = obj.state().load(Ordering::Relaxed);
    if s & COUNT_MASK < u64::from(obj.max) {
        obj.state().store(s + 1, Ordering::Relaxed);
    }
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
    let add = |s: u64| {
        let c = (s & COUNT_MASK) as u32;
        (s & !COUNT_MASK == 0 && c <= obj.max && n != 0 && n <= obj.max - c)
            .then(|| s + u64::from(n))
    };
    let previous = guessed_swap(obj, add, Ordering::Release).ok()?;
    Some((previous & COUNT_MASK) as u32)
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
