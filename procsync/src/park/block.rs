//! One blocking wait's block: armed with a fresh generation, claimed exactly once,
//! slept on, cancelled.
//!
//! ```text
//! claim (u64) = generation << 32 | state
//!   IDLE => WAITING(gen)                  the waiter arms it (new generation)
//!   WAITING(gen) => SIGNALED(gen) + i     a signaller, or the waiter itself: exactly one CAS wins
//!   WAITING(gen) => ABANDONED(gen) + i    ... with an abandoned mutex
//!   WAITING(gen) => CANCELLED(gen)        the waiter gives up (timeout, error)
//! ```
//! The waiter publishes WAITING with `Release` before any entry names it; a signaller
//! publishes the object's new state (under the object's lock) before its `Release`
//! claim, which the waiter reads with `Acquire`.
//!
//! ```text
//! wake (u32) = rings << 1 | SLEEPING
//!   a ring adds 2; it makes a FUTEX_WAKE only if SLEEPING was set
//!   the waiter sets SLEEPING (announce) before its last check of the claim, then
//!   sleeps on the value it set; arming a block clears it
//! ```
//! The announce and the ring are read-modify-writes of the one word, so one of them
//! sees the other: either the ring sees SLEEPING and wakes, or the waiter's announce
//! reads the ring's value (acquiring the claim made before it) and does not sleep. A
//! waiter that spins on its claim (`spin`) has not announced: handing it an object
//! costs no system call.
//!
//! The transitions of both words are `word`'s functions (generic over the atomic type,
//! so that `model` checks this very code under loom); this file puts the segments, the
//! futex sleep and the wake around them.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::bell::{self, BellRef};
use super::segment::{self, Segment};
use super::spin::Spin;
use super::word;
pub(crate) use super::word::{Claim, decode, granted};
use crate::shm::layout::*;
use crate::sys::futex::{self, Woke};
use crate::sys::time::Deadline;

/// A block held for the duration of one blocking wait.
pub(crate) struct WaitBlock {
    pub seg: Arc<Segment>,
    pub index: u32,
    pub generation: u32,
    /// Leased for a detached wait (given back on drop), not the thread's own block.
    leased: bool,
}

impl WaitBlock {
    /// Arms the calling thread's block (public or private, see `segment`): claim =
    /// WAITING with a fresh generation; `ids` is the set of a wait-all (empty for a
    /// wait-any), readable by signallers that complete it.
    /// (`fds`: the waiter's descriptor of each object, same order.)
    pub(crate) fn arm(public: bool, ids: &[u64], fds: &[u32]) -> crate::error::Result<WaitBlock> {
        let (seg, index) = segment::my_block(public)?;
        Ok(Self::arm_at(seg, index, ids, fds, false))
    }

    /// Arms a block that no thread keeps (a wait-any of a detached wait): leased for
    /// this wait, given back when it is dropped. Its doorbell may be slept on from
    /// anywhere (an io_uring futex wait); the caller must not let a sleep on it outlive
    /// the `WaitBlock`, or the next lessee's ring could wake that sleep instead.
    pub(crate) fn arm_leased(public: bool) -> crate::error::Result<WaitBlock> {
        let (seg, index) = segment::lease(public)?;
        Ok(Self::arm_at(seg, index, &[], &[], true))
    }

    fn arm_at(seg: Arc<Segment>, index: u32, ids: &[u64], fds: &[u32], leased: bool) -> WaitBlock {
        let b = seg
            .block(index)
            .expect("my_block returns an index in range");
        for (slot, id) in b.ids.iter().zip(ids) {
            slot.store(*id, Ordering::Relaxed);
        }
        for (slot, fd) in b.fds.iter().zip(fds) {
            slot.store(*fd, Ordering::Relaxed);
        }
        b.count.store(ids.len() as u32, Ordering::Relaxed);
        bell::clear(b);
        let generation = word::arm(&b.claim, &b.wake);
        WaitBlock {
            seg,
            index,
            generation,
            leased,
        }
    }

    /// Names `bell` as the way to wake this wait (`park::bell`): before the announce,
    /// on a private block only. Returns the fallback word and its value now, which the
    /// sleeper must watch too, and the key the bell's message will carry.
    pub(crate) fn set_bell(&self, bell: BellRef) -> (u64, &std::sync::atomic::AtomicU32, u32) {
        debug_assert!(!self.seg.public, "a public block rings no bell");
        bell::mark(self.block(), bell);
        let word = self.seg.fallback();
        (
            bell::key(self.seg.id(), self.index),
            word,
            word.load(Ordering::Acquire),
        )
    }

    /// The doorbell word (for a detached wait's sleeper).
    pub(crate) fn doorbell(&self) -> &std::sync::atomic::AtomicU32 {
        &self.block().wake
    }

    pub(crate) fn block(&self) -> &Block {
        self.seg.block(self.index).expect("index checked at alloc")
    }

    /// Whether writers other than our user may have touched the claim word.
    pub(crate) fn public(&self) -> bool {
        self.seg.public
    }

    /// The claim, as far as this wait's generation is concerned.
    pub(crate) fn claim(&self) -> Claim {
        word::read(&self.block().claim, self.generation)
    }

    /// WAITING => CANCELLED. On failure returns the claim that won.
    pub(crate) fn cancel(&self) -> Result<(), Claim> {
        word::cancel(&self.block().claim, self.generation)
    }

    /// WAITING => `state`, by the waiter itself.
    pub(crate) fn claim_self(&self, state: u32) -> bool {
        word::claim_self(&self.block().claim, self.generation, state)
    }

    /// Announces that we are about to sleep and returns the doorbell's value to sleep
    /// on: call it before the last check, then [`sleep`](Self::sleep) on it. From here
    /// on, every ring makes a `FUTEX_WAKE` (until the block is armed again).
    pub(crate) fn bell(&self) -> u32 {
        word::announce(&self.block().wake)
    }

    /// Spins (see [`super::spin`]) until the claim is no longer WAITING; `true` if it
    /// changed within the budget.
    pub(crate) fn spin(&self) -> bool {
        Spin::new().until(|| self.claim() != Claim::Waiting)
    }

    /// Sleeps until the doorbell rings (changes from `bell`), one of `more` words
    /// changes (overflow sleepers also watch objects' `seq`), or `deadline`, and for
    /// at most `cap` (counted from now: the doorbell alone reads no clock for it).
    pub(crate) fn sleep(
        &self,
        bell: u32,
        more: &[(&std::sync::atomic::AtomicU32, u32)],
        deadline: Deadline,
        cap: Option<std::time::Duration>,
    ) -> Woke {
        if more.is_empty() {
            return futex::wait_at_most(&self.block().wake, bell, deadline, cap);
        }
        let deadline = match cap {
            Some(cap) => deadline.min(Deadline::At(std::time::Instant::now() + cap)),
            None => deadline,
        };
        let mut words = Vec::with_capacity(1 + more.len());
        words.push((&self.block().wake, bell));
        words.extend_from_slice(more);
        futex::wait_many(&words, deadline)
    }
}

impl Drop for WaitBlock {
    fn drop(&mut self) {
        // The block stays the thread's; only the wait's view of it ends. Leave the claim
        // in a final state so that no entry of this generation is ever claimed again.
        let _ = self.cancel();
        if self.leased {
            segment::give_back(&self.seg, self.index);
        }
    }
}

/// Doorbells set aside by [`ring_after_unlock`], and whether they are held back.
struct Deferred {
    /// Lock sets the thread holds (`obj::lockset`): the rings wait for the last to go.
    hold: Cell<u32>,
    rings: RefCell<Vec<(Arc<Segment>, u32)>>,
}

thread_local! {
    static DEFERRED: Deferred = const {
        Deferred {
            hold: Cell::new(0),
            rings: RefCell::new(Vec::new()),
        }
    };
}

/// Rings block `index` of `seg` once the calling thread holds no object lock any more
/// ([`ring_deferred`]): for a waiter that will want one of those locks as soon as it
/// wakes.
pub(crate) fn ring_after_unlock(seg: &Arc<Segment>, index: u32) {
    let queued = DEFERRED
        .try_with(|d| d.rings.borrow_mut().push((seg.clone(), index)))
        .is_ok();
    if !queued {
        ring(seg, index); // a thread that is ending: ring at once
    }
}

/// While one lives, what [`ring_after_unlock`] sets aside is held back; the last one
/// dropped rings it. For a thread holding several object locks at once (a lock set,
/// which drops its guards first): its first unlock would otherwise ring while it still
/// holds the others, and a waiter on its CPU could take the processor and find one of
/// them held (in a same-CPU ping-pong of wait-alls, a `sched_yield` and two more
/// context switches per wake). Not `Send`: the hold is the calling thread's.
#[derive(Debug)]
pub(crate) struct HeldRings {
    _thread: std::marker::PhantomData<*const ()>,
}

impl HeldRings {
    pub(crate) fn new() -> HeldRings {
        let _ = DEFERRED.try_with(|d| d.hold.set(d.hold.get() + 1));
        HeldRings {
            _thread: std::marker::PhantomData,
        }
    }
}

impl Drop for HeldRings {
    fn drop(&mut self) {
        let _ = DEFERRED.try_with(|d| {
            debug_assert!(d.hold.get() > 0, "a ring hold released twice");
            d.hold.set(d.hold.get().saturating_sub(1));
        });
        ring_deferred();
    }
}

/// Rings what [`ring_after_unlock`] set aside (called by the object lock's release),
/// unless a lock set holds it back.
pub(crate) fn ring_deferred() {
    let pending = DEFERRED
        .try_with(|d| {
            let mut r = d.rings.borrow_mut();
            if r.is_empty() || d.hold.get() != 0 {
                Vec::new()
            } else {
                std::mem::take(&mut *r)
            }
        })
        .unwrap_or_default();
    for (seg, index) in pending {
        ring(&seg, index);
    }
}

/// Rings block `index` of `seg`; returns how many threads the kernel woke (0 or 1: 0
/// also when the waiter had not announced a sleep, e.g. while it spins). A detached
/// wait that named a bell is woken through it (`park::bell`): counted as one.
pub(crate) fn ring(seg: &Segment, index: u32) -> usize {
    let Some(b) = seg.block(index) else {
        return 0;
    };
    if !word::ring(&b.wake) {
        return 0;
    }
    if let Some(woke) = bell::ring(seg, index, b) {
        return woke;
    }
    futex::wake(&b.wake, 1)
}

/// Rings a waiter's doorbell without waking it; returns whether it had announced a
/// sleep, in which case the caller must wake it through another word it sleeps on (an
/// object's `seq`: `queue::hand_off`).
pub(crate) fn ring_quietly(b: &Block) -> bool {
    word::ring(&b.wake)
}

/// Rings the calling thread's own doorbell (it is awake: no system call).
pub(crate) fn nudge(b: &Block) {
    word::nudge(&b.wake);
}

/// Claims a waiter for a grant: WAITING(gen) => `state`. Exactly one claim of a
/// generation succeeds, whoever makes it.
pub(crate) fn try_claim(b: &Block, generation: u32, state: u32) -> bool {
    word::try_claim(&b.claim, generation, state)
}

/// Whether the block still waits with this generation.
pub(crate) fn is_waiting(b: &Block, generation: u32) -> bool {
    word::is_waiting(&b.claim, generation)
}

/// The object ids of a wait-all set recorded in `b` (validated: at most 64).
pub(crate) fn set_ids(b: &Block) -> Option<Vec<u64>> {
    Some(set_members(b)?.into_iter().map(|(id, _)| id).collect())
}

/// The wait-all set recorded in `b`: each object's id and the waiter's descriptor of it.
pub(crate) fn set_members(b: &Block) -> Option<Vec<(u64, u32)>> {
    let n = b.count.load(Ordering::Relaxed) as usize;
    if n == 0 || n > 64 {
        return None;
    }
    Some(
        (0..n)
            .map(|k| {
                (
                    b.ids[k].load(Ordering::Relaxed),
                    b.fds[k].load(Ordering::Relaxed),
                )
            })
            .collect(),
    )
}
