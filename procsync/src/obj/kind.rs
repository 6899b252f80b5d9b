//! The one interface every object kind implements, and the dispatch to it.
//!
//! Each kind (`event`, `mutex`, `semaphore`, `timer`) is a zero-sized type implementing
//! [`Kind`]: the same operations on its state word — signaled for whom, the lock-free
//! take, the take and its undo under the lock, what a hand-off may give away, repair
//! after a crash — and the few facts the layers above need to know about it (owned by a
//! thread? worth spinning for? due at some time?). [`Object`]'s methods of the same
//! names pick the implementation from the object's runtime kind with one `match`
//! ([`dispatch`]), so the queue, the signal path and the wait engine never name a kind,
//! and adding one means implementing this trait and adding one arm.
//!
//! It must not own any behaviour itself: the kinds' modules do.

use super::{Fast, Guard, Object};
use crate::error::Result;
use crate::sys::time::Deadline;

/// What the layers above may ask of an object, whatever its kind.
pub(crate) trait Kind {
    /// Owned by a thread: acquisitions count per thread and its death abandons it.
    const OWNED: bool = false;
    /// Usually held briefly, so a waiter spins a little before it sleeps (`park::spin`).
    const HELD_BRIEFLY: bool = false;
    /// Acquired by rewriting the state word alone (no owner, no expiry), so that
    /// wait-all's hardware transaction can take it (`wait::all`; see `taken_from`).
    const TAKEN_BY_WORD: bool = false;

    /// Signaled for thread `who`, judging by the state word `s` alone.
    fn signaled_for(obj: &Object, s: u64, who: u64) -> bool;

    /// What a hand-off may give to the next queued waiter, whoever it is.
    fn free_for_anyone(obj: &Object, s: u64) -> bool {
        Self::signaled_for(obj, s, 0)
    }

    /// The lock-free acquisition by thread `me` (0 for a kind not `OWNED`: unused).
    fn try_fast(obj: &Object, me: u64) -> Fast;

    /// For a kind `TAKEN_BY_WORD`: the state word after one acquisition from `s`, when
    /// `s` is valid, available and has nobody queued; `None` otherwise.
    fn taken_from(_obj: &Object, _s: u64) -> Option<u64> {
        None
    }

    /// Notes `s`, what an unlock or wait-all's transaction left in the state word (a
    /// semaphore's next lock-free swap expects it).
    fn note_left(_obj: &Object, _s: u64) {}

    /// Whether spinning for a lock-free acquisition can succeed soon, judging by the state
    /// word `s`: nobody queued, and a kind held briefly (whether it is taken for now is
    /// [`Kind::free_for_anyone`]'s to say, from the same word).
    fn worth_spinning(_obj: &Object, _s: u64, _me: u64) -> bool {
        false
    }

    /// Whether `who` can take it under the lock; with `check_owner`, a dead owner's
    /// object is abandoned first and counts as free.
    fn available_locked(obj: &Object, _g: &Guard<'_>, who: u64, _check_owner: bool) -> bool {
        Self::signaled_for(
            obj,
            obj.state().load(std::sync::atomic::Ordering::Relaxed),
            who,
        )
    }

    /// Takes it for `who` under the lock if signaled for it: `Some(abandoned)`.
    fn acquire_locked(obj: &Object, g: &Guard<'_>, who: u64) -> Result<Option<bool>>;

    /// Reverses an `acquire_locked(g, who)` that returned `Some(abandoned)`: right after
    /// it, under the same lock (a claim lost its race), or long after, under a later
    /// lock (a give-back, `signal::give_back`), when the state may have moved on; every
    /// signal must still count once (an auto-reset event banks one, `obj::event`).
    fn undo_locked(obj: &Object, g: &Guard<'_>, who: u64, abandoned: bool);

    /// Brings time-dependent state up to date before a take (a due timer expires).
    fn refresh_locked(_g: &Guard<'_>) {}

    /// After a crash inside the lock: back to a legal state.
    fn repair_locked(_g: &Guard<'_>) {}

    /// When the state will change by itself (a timer's next expiry), else `Never`.
    fn next_due(_obj: &Object) -> Deadline {
        Deadline::Never
    }

    /// The owning thread's identity (0: none; always 0 unless `OWNED`).
    fn owner(_obj: &Object) -> u64 {
        0
    }

    /// Abandons the object (through the signal path) if `owner` still owns it and is
    /// dead; nothing unless `OWNED`.
    fn abandon_if_dead(_obj: &Object, _owner: u64) -> Result<()> {
        Ok(())
    }
}

/// Calls `Kind::$f` of `$obj`'s kind: `dispatch!(obj, K => K::f(obj, …))`.
macro_rules! dispatch {
    ($obj:expr, $k:ident => $call:expr) => {
        dispatch!(@kind $obj.kind, $k => $call)
    };
    (@kind $kind:expr, $k:ident => $call:expr) => {
        match $kind {
            $crate::obj::ObjectKind::Event => {
                type $k = $crate::obj::event::EventKind;
                $call
            }
            $crate::obj::ObjectKind::Mutex => {
                type $k = $crate::obj::mutex::MutexKind;
                $call
            }
            $crate::obj::ObjectKind::Semaphore => {
                type $k = $crate::obj::semaphore::SemaphoreKind;
                $call
            }
            $crate::obj::ObjectKind::Timer => {
                type $k = $crate::obj::timer::TimerKind;
                $call
            }
        }
    };
}

/// The calling thread's identity for a kind owned by a thread, 0 (unused) for the
/// others: their lock-free takes skip the thread-local read.
#[inline(always)]
fn me_if<K: Kind>() -> u64 {
    if K::OWNED {
        crate::sys::thread::ident()
    } else {
        0
    }
}

impl Object {
    /// Owned by a thread (a mutex).
    #[inline]
    pub(crate) fn owned(&self) -> bool {
        dispatch!(self, K => K::OWNED)
    }

    /// Usually held briefly (mutex, semaphore): its waiters spin before they sleep.
    #[inline]
    pub(crate) fn held_briefly(&self) -> bool {
        dispatch!(self, K => K::HELD_BRIEFLY)
    }

    /// What a hand-off may give to the next queued waiter, whoever it is.
    #[inline]
    pub(crate) fn free_for_anyone(&self, s: u64) -> bool {
        dispatch!(self, K => K::free_for_anyone(self, s))
    }

    /// Tries the lock-free acquisition for the calling thread.
    #[inline]
    pub(crate) fn try_acquire_fast(&self) -> Fast {
        self.try_acquire_as(self.kind)
    }

    /// [`Object::try_acquire_fast`] for a caller that knows the kind (`kind` is the
    /// object's; a constant at the typed wrappers' call sites, where the `match` folds
    /// away and the attempt is inlined).
    #[inline(always)]
    pub(crate) fn try_acquire_as(&self, kind: super::ObjectKind) -> Fast {
        debug_assert_eq!(kind, self.kind);
        dispatch!(@kind kind, K => K::try_fast(self, me_if::<K>()))
    }

    /// Acquired by rewriting the state word alone ([`Object::taken_from`]).
    #[inline]
    pub(crate) fn taken_by_word(&self) -> bool {
        dispatch!(self, K => K::TAKEN_BY_WORD)
    }

    /// The state word after one acquisition from `s` (valid, available, nobody queued),
    /// for a kind taken by rewriting the word alone; `None` otherwise. What wait-all's
    /// hardware transaction writes (`wait::all`).
    #[inline]
    pub(crate) fn taken_from(&self, s: u64) -> Option<u64> {
        dispatch!(self, K => K::taken_from(self, s))
    }

    /// Notes `s`, what an unlock or wait-all's transaction left in the state word.
    #[inline]
    pub(crate) fn note_left(&self, s: u64) {
        dispatch!(self, K => K::note_left(self, s))
    }

    /// Whether spinning for a lock-free acquisition can succeed soon, judging by the state
    /// word `s`: nobody is queued for it (a queued waiter gets it first), and it is a
    /// kind that is held briefly (for a mutex: not ours, not abandoned).
    #[inline]
    pub(crate) fn worth_spinning(&self, s: u64, me: u64) -> bool {
        dispatch!(self, K => K::worth_spinning(self, s, me))
    }

    /// Whether the object, as it stands under the lock `g`, can be taken by thread `who`.
    /// With `check_owner`, a mutex whose owner died is abandoned first and counts as
    /// free (AB-16); without, a caller that checks the owner right afterwards anyway
    /// spares a read of `/proc`.
    pub(crate) fn available_locked(&self, g: &Guard<'_>, who: u64, check_owner: bool) -> bool {
        dispatch!(self, K => K::available_locked(self, g, who, check_owner))
    }

    /// Acquires for `who` under the lock if the object is signaled for it; returns
    /// `Some(abandoned)`.
    pub(crate) fn acquire_locked(&self, g: &Guard<'_>, who: u64) -> Result<Option<bool>> {
        dispatch!(self, K => K::acquire_locked(self, g, who))
    }

    /// Reverses `acquire_locked(g, who)` that returned `Some(abandoned)` (a claim lost
    /// the race, or the waiter turned out dead).
    pub(crate) fn undo_acquire_locked(&self, g: &Guard<'_>, who: u64, abandoned: bool) {
        dispatch!(self, K => K::undo_locked(self, g, who, abandoned))
    }

    /// Brings a timer's state up to date (expires it if due, handing it to queued
    /// waiters first); nothing for the other kinds. Call before `acquire_locked` when
    /// acting for the calling thread.
    pub(crate) fn refresh_locked(&self, g: &Guard<'_>) {
        dispatch!(self, K => K::refresh_locked(g))
    }

    /// After a crash inside the lock: bring the kind's own state back to a legal one
    /// (a mutex whose owner is dead or whose recursion is 0 becomes abandoned).
    pub(crate) fn repair_state_locked(&self, g: &Guard<'_>) {
        dispatch!(self, K => K::repair_locked(g))
    }

    /// When the state will next change by itself (`Never` but for an armed timer).
    pub(crate) fn next_due(&self) -> Deadline {
        dispatch!(self, K => K::next_due(self))
    }

    /// The owning thread's identity; 0 when unowned or not an owned kind.
    pub(crate) fn owner(&self) -> u64 {
        dispatch!(self, K => K::owner(self))
    }

    /// Abandons the object if thread `owner` owns it and is dead (owned kinds only).
    pub(crate) fn abandon_if_dead(&self, owner: u64) -> Result<()> {
        dispatch!(self, K => K::abandon_if_dead(self, owner))
    }
}
