//! The word protocol of a wait block, on its own: arming, reading and claiming the claim
//! word, cancelling, and the doorbell's announce / ring / nudge (the two words are
//! described in `block`'s module doc).
//!
//! Every function is generic over the two atomic words ([`Word64`] for the claim,
//! [`Word32`] for the doorbell) so that the very code that runs on a block in shared
//! memory (std's atomics) also runs, in the model tests (`park::model`), on loom's
//! atomics, with threads standing in for processes. `#[inline]` everywhere: a release
//! build compiles each call to the one atomic instruction it was before.
//!
//! It must not sleep, make system calls, or know segments or objects: `block` puts the
//! futex calls around it, `obj::queue` the object lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::shm::layout::{
    CLAIM_ABANDONED, CLAIM_CANCELLED, CLAIM_SIGNALED, CLAIM_WAITING, claim as pack,
};

/// A 64-bit atomic word: a block's claim.
pub(crate) trait Word64 {
    /// `load`, as the atomic types have it.
    fn load(&self, order: Ordering) -> u64;
    /// `store`, as the atomic types have it.
    fn store(&self, value: u64, order: Ordering);
    /// `compare_exchange`, as the atomic types have it.
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

/// A 32-bit atomic word: a block's doorbell.
pub(crate) trait Word32 {
    /// `fetch_or`, as the atomic types have it.
    fn fetch_or(&self, value: u32, order: Ordering) -> u32;
    /// `fetch_and`, as the atomic types have it.
    fn fetch_and(&self, value: u32, order: Ordering) -> u32;
    /// `fetch_add`, as the atomic types have it.
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
}

impl Word64 for AtomicU64 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    #[inline]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

impl Word32 for AtomicU32 {
    #[inline]
    fn fetch_or(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_or(self, value, order)
    }
    #[inline]
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    #[inline]
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
}

/// What a claim word says about a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Still waiting.
    Waiting,
    /// Cancelled by the waiter.
    Cancelled,
    /// Object `i` (a wait-all: 0) handed over.
    Signaled(usize),
    /// Mutex `i` handed over, abandoned.
    Abandoned(usize),
    /// Not a value any procsync process writes for this generation: forged (only
    /// possible in a public segment), treated as "not granted".
    Garbage,
}

/// Decodes the state half of a claim word.
#[inline]
pub(crate) fn decode(state: u32) -> Claim {
    match state {
        CLAIM_WAITING => Claim::Waiting,
        CLAIM_CANCELLED => Claim::Cancelled,
        s if s & !0xFF == CLAIM_SIGNALED && (s & 0xFF) < 64 => Claim::Signaled((s & 0xFF) as usize),
        s if s & !0xFF == CLAIM_ABANDONED && (s & 0xFF) < 64 => {
            Claim::Abandoned((s & 0xFF) as usize)
        }
        _ => Claim::Garbage,
    }
}

/// The claim state for a grant of object `index`.
#[inline]
pub(crate) fn granted(index: usize, abandoned: bool) -> u32 {
    (if abandoned {
        CLAIM_ABANDONED
    } else {
        CLAIM_SIGNALED
    }) + index as u32
}

/// Bit 0 of `wake`: its waiter sleeps, or is about to (`block`'s module doc).
pub(crate) const WAKE_SLEEPING: u32 = 1;
/// What one ring adds to `wake`.
pub(crate) const WAKE_STEP: u32 = 2;

/// Arms a block for a new wait: clears the doorbell's SLEEPING bit, then publishes
/// claim = WAITING with the next generation (`Release`: before any entry names it).
/// Returns the generation.
#[inline]
pub(crate) fn arm(claim: &impl Word64, wake: &impl Word32) -> u32 {
    wake.fetch_and(!WAKE_SLEEPING, Ordering::Relaxed);
    let generation = ((claim.load(Ordering::Relaxed) >> 32) as u32).wrapping_add(1);
    claim.store(pack(generation, CLAIM_WAITING), Ordering::Release);
    generation
}

/// The claim, as far as the wait of `generation` is concerned (`Acquire`: a grant's
/// object state, written before the claim, is visible after it).
#[inline]
pub(crate) fn read(claim: &impl Word64, generation: u32) -> Claim {
    let c = claim.load(Ordering::Acquire);
    if (c >> 32) as u32 != generation {
        return Claim::Garbage;
    }
    decode(c as u32)
}

/// Whether the block still waits with this generation (a signaller's check).
#[inline]
pub(crate) fn is_waiting(claim: &impl Word64, generation: u32) -> bool {
    claim.load(Ordering::Acquire) == pack(generation, CLAIM_WAITING)
}

/// The waiter gives up: WAITING => CANCELLED. On failure returns the claim that won.
#[inline]
pub(crate) fn cancel(claim: &impl Word64, generation: u32) -> Result<(), Claim> {
    match claim.compare_exchange(
        pack(generation, CLAIM_WAITING),
        pack(generation, CLAIM_CANCELLED),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Ok(()),
        Err(c) if (c >> 32) as u32 == generation => Err(decode(c as u32)),
        Err(_) => Err(Claim::Garbage),
    }
}

/// WAITING => `state`, by the waiter itself (it took an object under that object's lock).
#[inline]
pub(crate) fn claim_self(claim: &impl Word64, generation: u32, state: u32) -> bool {
    claim
        .compare_exchange(
            pack(generation, CLAIM_WAITING),
            pack(generation, state),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// WAITING => `state`, by a signaller (under the object's lock, after it changed the
/// object's state on the waiter's behalf: `Release`). Exactly one claim of a
/// generation succeeds, whoever makes it.
#[inline]
pub(crate) fn try_claim(claim: &impl Word64, generation: u32, state: u32) -> bool {
    claim
        .compare_exchange(
            pack(generation, CLAIM_WAITING),
            pack(generation, state),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// The waiter announces that it is about to sleep: sets SLEEPING and returns the
/// doorbell's value to sleep on. Call it before the last check of the claim.
#[inline]
pub(crate) fn announce(wake: &impl Word32) -> u32 {
    wake.fetch_or(WAKE_SLEEPING, Ordering::AcqRel) | WAKE_SLEEPING
}

/// A signaller rings the doorbell (after its claim); `true` when the waiter announced
/// a sleep, so that the ring must be followed by a `FUTEX_WAKE` of the word.
#[inline]
pub(crate) fn ring(wake: &impl Word32) -> bool {
    wake.fetch_add(WAKE_STEP, Ordering::AcqRel) & WAKE_SLEEPING != 0
}

/// The waiter rings its own doorbell (it is awake: never a `FUTEX_WAKE`).
#[inline]
pub(crate) fn nudge(wake: &impl Word32) {
    wake.fetch_add(WAKE_STEP, Ordering::Release);
}
