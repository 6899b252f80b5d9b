//! Waiting for one of several objects (and for one object: the same path with n = 1).
//!
//! 1. Try each distinct object lock-free, lowest index first (WY-03, WY-08).
//! 2. Otherwise take a wait block, and for each object, under its lock: stop if a
//!    signaler already claimed us; take the object if it became signaled (claiming our
//!    own block, so that no signaler can also claim it); else queue an entry.
//! 3. Sleep on the block's `wake` word until the claim changes or the deadline passes
//!    (plus the `seq` word of objects whose queue was full: the overflow path).
//! 4. Cancel with a compare-and-swap: if it fails, a signaler claimed us first and the
//!    object is ours (TO-06: never "timed out but acquired").
//!
//! Entries of a satisfied wait in the other objects are left behind as stale (their
//! generation no longer matches) and dropped by the next holder of those locks, so a
//! wake costs the same for 1 or 64 objects.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{MAX_WAIT_OBJECTS, WaitOutcome, abandon, outcome_of};
use crate::error::{Error, Result};
use crate::obj::queue::{self, EntryVal};
use crate::obj::{Fast, Object, signal};
use crate::park::{self, Claim, WaitBlock};
use crate::shm::layout::*;
use crate::sys::futex::{self, Woke};
use crate::sys::thread;
use crate::sys::time::Deadline;

/// How often a waiter blocked on a mutex checks that its owner still lives, when the
/// owner cannot be watched through a pidfd (kernels before 6.9).
pub(crate) const OWNER_CHECK_MS: u64 = 50;
/// The same, as a safety net, when the owner is watched.
pub(crate) const WATCHED_CHECK_MS: u64 = SAFETY_NET_MS;

pub(super) fn won(obj: &Arc<Object>, i: usize, abandoned: bool) -> WaitOutcome {
    if obj.owned() {
        abandon::note_owned(obj);
    }
    if abandoned {
        WaitOutcome::Abandoned(i)
    } else {
        WaitOutcome::Signaled(i)
    }
}

/// Lists up to this long are deduplicated by comparing every pair.
const SHORT_LIST: usize = 8;

/// Runs `f` with the first occurrence of each object, in index order (WY-08: a
/// duplicate is reported at its lowest index and consumed once), each with its index.
/// The list lives on the stack (a wait takes at most [`MAX_WAIT_OBJECTS`]; a short
/// one, most waits, in a short array): a blocking wait allocates nothing for it.
pub(super) fn with_distinct<'a, R>(
    objs: &[&'a Arc<Object>],
    f: impl FnOnce(&[(usize, &'a Arc<Object>)]) -> R,
) -> R {
    let Some(&first) = objs.first() else {
        return f(&[]);
    };
    assert!(
        objs.len() <= MAX_WAIT_OBJECTS,
        "wait lists are checked at the API"
    );
    let mut n = 0;
    if objs.len() <= SHORT_LIST {
        let mut uniq = [(0, first); SHORT_LIST];
        for (i, o) in objs.iter().enumerate() {
            if !uniq[..n].iter().any(|(_, u)| u.id == o.id) {
                uniq[n] = (i, o);
                n += 1;
            }
        }
        return f(&uniq[..n]);
    }
    let mut uniq = [(0, first); MAX_WAIT_OBJECTS];
    // A small open-addressing set of ids (ids are random and never 0), twice the
    // largest list: one pass, no sorting.
    let mut seen = [0u64; 2 * MAX_WAIT_OBJECTS];
    for (i, o) in objs.iter().enumerate() {
        let mut h = (o.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as usize;
        loop {
            if seen[h] == 0 {
                seen[h] = o.id;
                uniq[n] = (i, o);
                n += 1;
                break;
            }
            if seen[h] == o.id {
                break;
            }
            h = (h + 1) % seen.len();
        }
    }
    f(&uniq[..n])
}

/// Waits until one of `objs` is acquired; see the module doc.
pub(crate) fn wait_any(objs: &[&Arc<Object>], deadline: Deadline) -> Result<WaitOutcome> {
    with_distinct(objs, |uniq| wait_distinct(uniq, objs, deadline))
}

/// [`wait_any`], with the distinct objects in hand.
fn wait_distinct(
    uniq: &[(usize, &Arc<Object>)],
    objs: &[&Arc<Object>],
    deadline: Deadline,
) -> Result<WaitOutcome> {
    let me = thread::ident();
    if let Some(outcome) = try_now(uniq, me, deadline, true)? {
        return Ok(outcome);
    }
    if deadline == Deadline::Now || deadline.remaining() == Some(Duration::ZERO) {
        return Ok(WaitOutcome::TimedOut);
    }
    if let [(i, o)] = uniq[..]
        && o.worth_spinning(o.state().load(Ordering::Relaxed), me)
    {
        // Briefly, before we queue: a mutex or semaphore held for a short while comes
        // free for anyone who is not queued (park::spin). We stop as soon as someone
        // queues (then only a hand-off gets it, and we must queue behind them).
        let mut took = None;
        park::Spin::new().until(|| {
            // Read before we try: a lock-free attempt may write the word (a mutex's
            // is a blind compare-and-swap), and a spinner that writes it takes the
            // cache line from the holder at every turn.
            let s = o.state().load(Ordering::Relaxed);
            if !o.worth_spinning(s, me) {
                return true;
            }
            if !o.free_for_anyone(s) {
                return false;
            }
            if let Fast::Acquired(a) = o.try_acquire_fast() {
                took = Some(a);
                return true;
            }
            false
        });
        if let Some(a) = took {
            return Ok(won(o, i, a));
        }
    }
    loop {
        if let Some(outcome) = block(uniq, objs, me, deadline)? {
            return Ok(outcome);
        }
        // A forged claim on a public block: wait again, same deadline.
        if deadline.remaining() == Some(Duration::ZERO) {
            return Ok(WaitOutcome::TimedOut);
        }
    }
}

/// Step 1: what can be taken without blocking, lowest index first. `skip_busy`: an
/// object taken by another thread with nobody queued is left to the spin and the
/// queueing that follow (a blocking waiter that spins).
pub(super) fn try_now(
    uniq: &[(usize, &Arc<Object>)],
    me: u64,
    deadline: Deadline,
    skip_busy: bool,
) -> Result<Option<WaitOutcome>> {
    for &(i, o) in uniq {
        match o.try_acquire_fast() {
            Fast::Acquired(a) => return Ok(Some(won(o, i, a))),
            Fast::NotSignaled => {}
            // Taken by another thread and nobody queued: a blocking wait could take
            // nothing under the lock (it checks the owner as it queues), so it goes
            // straight to the spin and the queueing below.
            Fast::Slow if skip_busy && deadline != Deadline::Now && busy_elsewhere(o, me) => {}
            Fast::Slow => {
                let Some(g) = o.lock_within(deadline)? else {
                    continue;
                };
                queue::purge(&g, false);
                o.refresh_locked(&g);
                // Whatever is available under the lock is free for anyone: a signal
                // hands objects to queued waiters at once, and nothing is set aside.
                // A mutex whose owner died is abandoned (AB-16): here for a poll; a
                // blocking wait checks the owner once, as it queues (`block`), rather
                // than reading /proc twice per contended acquisition.
                let available = if deadline == Deadline::Now {
                    o.available_locked(&g, me, true)
                } else {
                    o.available_locked(&g, me, false)
                };
                if !available {
                    continue;
                }
                if let Some(a) = o.acquire_locked(&g, me)? {
                    drop(g);
                    return Ok(Some(won(o, i, a)));
                }
            }
        }
    }
    Ok(None)
}

/// Taken by another thread with nobody queued, as one read of the word says: then a
/// blocking wait can take nothing from it now, not even under its lock, and [`try_now`]
/// leaves it to the spin and the queueing. "Nobody queued" alone is not enough: a
/// lock-free attempt that failed because someone held the object's lock (WAITERS set
/// while they hold it), followed by that lock's release, would leave a semaphore with
/// units, or a free mutex, skipped for a later object of the list (WY-03: the lowest
/// index wins; found by the model's differential test).
pub(crate) fn busy_elsewhere(o: &Object, me: u64) -> bool {
    let s = o.state().load(Ordering::Relaxed);
    o.worth_spinning(s, me) && !o.free_for_anyone(s)
}

/// What step 2 left: the entries queued, and anything taken or failed on the way.
pub(super) struct Queued {
    /// Positions in `uniq` of the objects whose queue was full (watched by `seq`).
    pub(super) overflow: Vec<usize>,
    /// How many objects of `uniq` (a prefix) may hold an entry of ours.
    registered: usize,
    /// What we took ourselves, claiming our own block: ours, whatever the claim word
    /// (which others may write, for a public block) says afterwards.
    pub(super) took: Option<(usize, bool)>,
    pub(super) failure: Option<Error>,
    /// First in line at a mutex or semaphore: worth a spin before sleeping.
    first_in_line: bool,
    /// Positions in `uniq` of the manual-reset objects queued with
    /// [`ENTRY_SEQ_SLEEPER`]: the thread sleeps on their `seq` words too.
    pub(super) watch: Vec<usize>,
}

/// Step 2: for each object, under its lock, stop if a signaller already claimed us,
/// take it if it became signaled, else queue an entry naming `wb`. `thread_sleeps`:
/// this thread sleeps in `futex` (not a detached wait), and so can sleep on a
/// manual-reset object's `seq` as well ([`ENTRY_SEQ_SLEEPER`]).
pub(super) fn enqueue(
    wb: &WaitBlock,
    uniq: &[(usize, &Arc<Object>)],
    me: u64,
    deadline: Deadline,
    thread_sleeps: bool,
) -> Queued {
    let mut q = Queued {
        overflow: Vec::new(),
        registered: 0,
        took: None,
        failure: None,
        first_in_line: false,
        watch: Vec::new(),
    };
    for (k, &(i, o)) in uniq.iter().enumerate() {
        let g = match o.lock_within(deadline) {
            Ok(Some(g)) => g,
            Ok(None) => break, // the deadline passed while someone sat on the lock
            Err(e) => {
                q.failure = Some(e);
                break;
            }
        };
        if wb.claim() != Claim::Waiting {
            break;
        }
        o.refresh_locked(&g);
        // Most objects of a long list are simply unavailable: say so without the
        // general acquisition path (which a dead mutex owner's object goes through).
        match if !o.available_locked(&g, me, true) {
            Ok(None)
        } else {
            o.acquire_locked(&g, me)
        } {
            Ok(Some(a)) => {
                if wb.claim_self(park::granted(i, a)) {
                    q.took = Some((i, a));
                } else {
                    o.undo_acquire_locked(&g, me, a);
                    signal::hand_off_held(&g);
                }
                break;
            }
            Ok(None) => {}
            Err(e) => {
                q.failure = Some(e);
                break;
            }
        }
        // A thread on a private block waiting for a manual-reset object behind another
        // waiter sleeps on its `seq` too: a set then wakes every such waiter with one
        // system call. The first in line sleeps on its doorbell alone (a `futex_waitv`
        // costs a lone waiter more than the `FUTEX_WAKE` it saves) and is rung alone.
        let queued = queue::len(&g);
        let seq_sleeper = thread_sleeps && o.manual && !wb.public() && queued > 0;
        let e = EntryVal {
            seg: wb.seg.id(),
            block: wb.index,
            generation: wb.generation,
            index: i,
            kind: ENTRY_ANY,
            granted: None,
            who: me,
            seq_sleeper,
        };
        // Only the first in line of a mutex or semaphore spins before it sleeps (below):
        // the others would burn the processor that the owner and the first need.
        q.first_in_line |= o.held_briefly() && queued == 0;
        if !queue::push(&g, e) {
            o.ctl().overflow.fetch_add(1, Ordering::Relaxed);
            q.overflow.push(k);
        } else if seq_sleeper {
            q.watch.push(k);
        }
        q.registered = k + 1;
    }
    q
}

/// One blocking attempt; `None` when a public block's claim turned out forged.
fn block(
    uniq: &[(usize, &Arc<Object>)],
    objs: &[&Arc<Object>],
    me: u64,
    deadline: Deadline,
) -> Result<Option<WaitOutcome>> {
    let wb = WaitBlock::arm(super::needs_public(objs), &[], &[])?;
    let mut q = enqueue(&wb, uniq, me, deadline, true);
    let has_mutex = uniq.iter().any(|(_, o)| o.owned());
    // A mutex or semaphore is often handed over within microseconds: its first waiter
    // spins on the claim before sleeping, so that the hand-off costs neither side a
    // system call.
    let spun = q.first_in_line && q.overflow.is_empty() && wb.spin();
    if q.failure.is_none() && q.took.is_none() && !spun {
        let mut s = Sleeper::new(uniq, &q.overflow, has_mutex, deadline, false);
        // A single-object wait queued as a `seq` sleeper (behind another waiter of a
        // manual-reset object) sleeps on that `seq` word alone: whatever grants or rings
        // it also bumps and wakes `seq` (`queue::hand_off`, `queue::ring_all`), and a
        // plain futex wait is cheaper to wake than a `futex_waitv` over two words (the
        // woken waiter need not take its other word's hash-bucket lock: a fan-out's
        // waiters run one after another). Its value is read before `step`'s last look
        // at the claim, so a grant after that look has changed it.
        let seq_only = match (uniq, &q.watch[..], &q.overflow[..]) {
            ([(_, o)], [_], []) => Some(o.seq()),
            _ => None,
        };
        let mut woke = None;
        q.took = loop {
            let seen = seq_only.map(|w| (w, w.load(Ordering::Acquire)));
            match s.step(&wb, uniq, &q.overflow, me, woke, &mut q.failure) {
                Step::Done(took) => break took,
                Step::Sleep {
                    bell,
                    slice,
                    net,
                    precise,
                    ..
                } => {
                    let cap = net.then_some(Duration::from_millis(SAFETY_NET_MS));
                    let nap = || match seen {
                        Some((word, value)) => futex::wait_at_most(word, value, slice, cap),
                        None => wb.sleep(bell, &s.more(uniq, &q.overflow, &q.watch), slice, cap),
                    };
                    woke = Some(if precise {
                        // The sleep ends at a timer's due time: no timer slack.
                        thread::with_precise_timers(nap)
                    } else {
                        nap()
                    });
                }
            }
        };
    }
    conclude(&wb, uniq, objs, me, q)
}

/// Step 4: cancels the claim and reads the outcome (TO-06: a claim that beat the
/// cancel is a grant). Leaves no entry behind for a wait that is over; `None` when a
/// public block's claim turned out forged.
pub(super) fn conclude(
    wb: &WaitBlock,
    uniq: &[(usize, &Arc<Object>)],
    objs: &[&Arc<Object>],
    me: u64,
    q: Queued,
) -> Result<Option<WaitOutcome>> {
    let Queued {
        overflow,
        registered,
        took,
        failure,
        ..
    } = q;
    let claim = wb.cancel().err();
    for &k in &overflow {
        // The count must come down, or the object stays on the slow path for good.
        if let Ok(Some(g)) = uniq[k].1.lock_within(super::soon()) {
            let o = &g.obj().ctl().overflow;
            o.store(
                o.load(Ordering::Relaxed).saturating_sub(1),
                Ordering::Relaxed,
            );
        }
    }
    if wb.public() {
        return public_outcome(wb, uniq, registered, objs, me, took, claim, failure);
    }
    if let Some((i, a)) = took {
        return Ok(Some(won(objs[i], i, a)));
    }
    let outcome = claim.and_then(outcome_of);
    if outcome.is_none() {
        // Timed out or failed: leave no entry behind for a wait that is over. Best
        // effort: an entry left behind is stale (the claim is cancelled) and dropped by
        // the next holder of that lock.
        for &(_, o) in &uniq[..registered] {
            if let Ok(Some(g)) = o.lock_within(super::soon()) {
                queue::remove_wait(&g, wb.seg.id(), wb.index, wb.generation);
            }
        }
    }
    if let Some(e) = failure
        && outcome.is_none()
    {
        return Err(e);
    }
    match outcome {
        None if matches!(claim, Some(Claim::Garbage)) => Ok(None),
        None => Ok(Some(WaitOutcome::TimedOut)),
        Some(WaitOutcome::Signaled(i)) if i < objs.len() => Ok(Some(won(objs[i], i, false))),
        Some(WaitOutcome::Abandoned(i)) if i < objs.len() => Ok(Some(won(objs[i], i, true))),
        // Only a forged claim names an index we never gave.
        Some(_) => Ok(None),
    }
}

/// The end of a wait on a public block, whose claim word anyone may write: the objects
/// are the truth. Every granted entry of this wait is collected (and removed); the first
/// grant is the outcome, any other one (only possible when someone rewrote the claim
/// word so that a second signaller could claim it again) is given back. No grant: a
/// claim that announced one was forged, and the wait starts again (`None`).
#[allow(clippy::too_many_arguments)]
fn public_outcome(
    wb: &WaitBlock,
    uniq: &[(usize, &Arc<Object>)],
    registered: usize,
    objs: &[&Arc<Object>],
    me: u64,
    took: Option<(usize, bool)>,
    claim: Option<Claim>,
    failure: Option<Error>,
) -> Result<Option<WaitOutcome>> {
    let mut grant = took;
    for &(k, o) in &uniq[..registered] {
        let Ok(g) = o.lock_bounded() else { continue };
        let Some((i, a)) = queue::remove_wait(&g, wb.seg.id(), wb.index, wb.generation) else {
            continue;
        };
        // A grant counts only for the object that holds it, at the index we queued it
        // with: an entry planted in one object cannot speak for another.
        if i != k || (o.owned() && o.owner() != me) {
            continue;
        }
        if grant.is_none() {
            grant = Some((i, a));
        } else {
            o.undo_acquire_locked(&g, me, a);
            signal::hand_off_held(&g);
        }
    }
    if let Some((i, a)) = grant {
        return Ok(Some(won(objs[i], i, a)));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(match claim {
        None | Some(Claim::Cancelled | Claim::Waiting) => Some(WaitOutcome::TimedOut),
        // Announced a grant no object confirms, or garbage: forged; wait again.
        Some(_) => None,
    })
}

/// What step 3 does next: the wait is over (what we took ourselves from an overflowed
/// object, if anything: otherwise the claim says), or sleep on the doorbell's value
/// `bell` (and the overflowed objects' `seq` words, [`Sleeper::more`]) until `slice`.
pub(crate) enum Step {
    Done(Option<(usize, bool)>),
    Sleep {
        bell: u32,
        slice: Deadline,
        /// The sleep lasts at most [`SAFETY_NET_MS`] as well, counted from when it
        /// starts (a relative timeout: no clock read for the common infinite wait).
        /// Only for a thread that sleeps itself, never [`Sleeper`]'s `by_caller`.
        net: bool,
        /// The slice ends at a timer's due time: sleep without timer slack.
        precise: bool,
        /// The slice ends at the deadline or a timer's due time (not a periodic
        /// re-check, which may come a little late).
        exact: bool,
    },
}

/// Step 3 as a state machine, so that the sleep itself can happen elsewhere: a thread
/// sleeps in `futex` (`block`), a detached wait wherever its owner sleeps
/// ([`Detached`]). Each [`step`](Self::step) is given how the previous sleep ended.
pub(crate) struct Sleeper {
    seqs: Vec<u32>,
    /// After a safety-net slice on a public block, try every object ourselves: a writer
    /// of the block may have made it unreachable for signallers (a wrecked header).
    poll_all: bool,
    /// Mutexes or semaphores only, no overflow: a waiter rung awake without a grant
    /// spins for the hand-off (see `step`).
    brief: bool,
    has_mutex: bool,
    deadline: Deadline,
    /// The caller sleeps (a detached wait), not this thread: it serves the safety-net
    /// re-check late (by up to one more period, [`SAFETY_NET_MS`]), so a deadline or due
    /// time that falls within two periods is slept to directly, exactly, rather than
    /// after a late re-check.
    by_caller: bool,
}

impl Sleeper {
    pub(super) fn new(
        uniq: &[(usize, &Arc<Object>)],
        overflow: &[usize],
        has_mutex: bool,
        deadline: Deadline,
        by_caller: bool,
    ) -> Sleeper {
        Sleeper {
            seqs: overflow
                .iter()
                .map(|&k| uniq[k].1.seq().load(Ordering::Acquire))
                .collect(),
            poll_all: false,
            brief: !by_caller && overflow.is_empty() && uniq.iter().any(|(_, o)| o.held_briefly()),
            has_mutex,
            deadline,
            by_caller,
        }
    }

    /// The words to sleep on with the doorbell: the overflowed objects' `seq` words
    /// and the values last seen, and the `seq` words of the objects in `watch` (queued
    /// with [`ENTRY_SEQ_SLEEPER`]) as they are now. Reading those after the doorbell is
    /// safe: a signaller rings the doorbell before it bumps and wakes `seq`, so a grant
    /// after the doorbell was read fails the sleep on the doorbell itself.
    pub(super) fn more<'a>(
        &self,
        uniq: &[(usize, &'a Arc<Object>)],
        overflow: &[usize],
        watch: &[usize],
    ) -> Vec<(&'a std::sync::atomic::AtomicU32, u32)> {
        overflow
            .iter()
            .enumerate()
            .map(|(n, &k)| (uniq[k].1.seq(), self.seqs[n]))
            .chain(watch.iter().map(|&k| {
                let seq = uniq[k].1.seq();
                (seq, seq.load(Ordering::Acquire))
            }))
            .collect()
    }

    /// One turn: `woke` is how the previous sleep ended (`None` before the first).
    pub(super) fn step(
        &mut self,
        wb: &WaitBlock,
        uniq: &[(usize, &Arc<Object>)],
        overflow: &[usize],
        me: u64,
        woke: Option<Woke>,
        failure: &mut Option<Error>,
    ) -> Step {
        let deadline = self.deadline;
        if woke == Some(Woke::TimedOut) {
            // Due timers first: expiring one hands it to the first queued waiter
            // (perhaps us), even when our own deadline has come too.
            expire_timers(uniq.iter().map(|(_, o)| *o), deadline);
            if deadline.remaining() == Some(Duration::ZERO) {
                return Step::Done(None);
            }
            if self.has_mutex {
                check_owners(uniq.iter().map(|(_, o)| *o), me);
            }
            if wb.public() {
                wb.seg.repair_own_header();
                self.poll_all = true;
            }
        }
        // A waiter rung awake without a grant is usually the new head of a mutex's
        // queue (`queue::ring_head`): the object is about to be handed to it, so it
        // spins for that before it sleeps again, and the wake-up it already paid for
        // overlaps the current owner's critical section instead of following it.
        if woke == Some(Woke::Woken) && self.brief && wb.spin() {
            return Step::Done(None);
        }
        // Woken by a grant (the usual case): done, without announcing another sleep
        // (a read-modify-write of the doorbell line the signaller just wrote).
        if woke.is_some() && wb.claim() != Claim::Waiting {
            return Step::Done(None);
        }
        let bell = wb.bell();
        if wb.claim() != Claim::Waiting {
            return Step::Done(None);
        }
        let all: Vec<usize>;
        let tries: &[usize] = if self.poll_all {
            all = (0..uniq.len()).collect();
            &all
        } else {
            overflow
        };
        // Overflowed objects: not queued, so nobody hands them to us; try ourselves.
        for &k in tries {
            let (i, o) = uniq[k];
            if let Some(n) = overflow.iter().position(|&x| x == k) {
                self.seqs[n] = o.seq().load(Ordering::Acquire);
            }
            let g = match o.lock_within(deadline) {
                Ok(Some(g)) => g,
                Ok(None) => return Step::Done(None),
                Err(e) => {
                    *failure = Some(e);
                    return Step::Done(None);
                }
            };
            if wb.claim() != Claim::Waiting {
                return Step::Done(None);
            }
            o.refresh_locked(&g);
            if !o.available_locked(&g, me, true) {
                continue;
            }
            match o.acquire_locked(&g, me) {
                Ok(Some(a)) => {
                    if wb.claim_self(park::granted(i, a)) {
                        return Step::Done(Some((i, a)));
                    }
                    o.undo_acquire_locked(&g, me, a);
                    signal::hand_off_held(&g);
                    return Step::Done(None);
                }
                Ok(None) => {}
                Err(e) => {
                    *failure = Some(e);
                    return Step::Done(None);
                }
            }
        }
        self.poll_all = false;
        // The earliest due time of a timer among the objects (each read takes the clock).
        let due = uniq
            .iter()
            .fold(Deadline::Never, |d, (_, o)| d.min(o.next_due()));
        // An infinite wait's safety net is a relative timeout of the sleep itself (not
        // with an armed timer: whether its due time comes before the net, and so must
        // be slept to without slack, takes the clock).
        let net = !self.has_mutex
            && !self.by_caller
            && deadline == Deadline::Never
            && due == Deadline::Never;
        let mut slice = if self.has_mutex {
            owner_slice(uniq.iter().map(|(_, o)| *o), me, deadline)
        } else if net {
            deadline
        } else {
            safety_net(deadline)
        };
        let mut precise = due != Deadline::Never && due.min(slice) == due;
        slice = slice.min(due);
        let mut exact = precise || (slice == deadline && !net);
        if self.by_caller && !exact {
            let next = deadline.min(due);
            // (The clock is read only for a finite instant: an infinite wait's turn
            // reads it once, for its safety net.)
            if let Deadline::At(t) = next
                && t <= Instant::now() + Duration::from_millis(2 * SAFETY_NET_MS)
            {
                precise = next != deadline;
                slice = next;
                exact = true;
            }
        }
        Step::Sleep {
            bell,
            slice,
            net,
            precise,
            exact,
        }
    }
}

/// A sleeping waiter re-reads its claim at least this often: a signaler killed between
/// claiming it and ringing it cannot leave it asleep for ever.
pub(crate) const SAFETY_NET_MS: u64 = 1000;

/// `deadline`, or the safety-net slice if that comes first.
pub(crate) fn safety_net(deadline: Deadline) -> Deadline {
    deadline.min(Deadline::At(
        Instant::now() + Duration::from_millis(SAFETY_NET_MS),
    ))
}

/// How long to sleep before checking mutex owners ourselves: long when the watcher
/// watches every owner (it wakes us through the hand-off), short otherwise.
pub(crate) fn owner_slice<'a>(
    objs: impl Iterator<Item = &'a Arc<Object>>,
    me: u64,
    deadline: Deadline,
) -> Deadline {
    let mut all_watched = true;
    for o in objs.filter(|o| o.owned()) {
        let owner = o.owner();
        if owner != 0 && owner != me && !abandon::watch_owner(o, owner) {
            all_watched = false;
        }
    }
    let ms = if all_watched {
        WATCHED_CHECK_MS
    } else {
        OWNER_CHECK_MS
    };
    deadline.min(Deadline::At(Instant::now() + Duration::from_millis(ms)))
}

/// Expires every due timer among `objs` (under its lock), handing it on.
pub(crate) fn expire_timers<'a>(objs: impl Iterator<Item = &'a Arc<Object>>, deadline: Deadline) {
    for o in objs {
        if o.next_due().remaining() == Some(Duration::ZERO)
            && let Ok(Some(g)) = o.lock_within(deadline.min(super::soon()))
        {
            o.refresh_locked(&g);
        }
    }
}

/// Abandons (and so hands on, through the signal path) every mutex among `objs` whose
/// owner died.
pub(crate) fn check_owners<'a>(objs: impl Iterator<Item = &'a Arc<Object>>, me: u64) {
    for o in objs {
        let owner = o.owner();
        if owner != 0 && owner != me {
            let _ = o.abandon_if_dead(owner);
        }
    }
}
