//! The wait queue of an object and the hand-off of signals to queued waiters.
//!
//! Entries are kept compact and in arrival order (first come, first served); all of
//! this runs under the object lock. An entry is *stale* when its block's claim no
//! longer reads `WAITING` with the entry's generation (the wait ended: satisfied by
//! another object, timed out, or the block was reused); stale entries are dropped by
//! whoever meets them. A removal shifts the tail down and then shortens `queue_len`,
//! so a holder dying in the middle leaves at worst a duplicated entry, which is stale
//! or harmless (a claim succeeds once).
//!
//! Every field of an entry is validated before use: the block index against the
//! segment's size, the segment against the object's namespace
//! (`park::segment::entry_may_name`), the index against the wait-list limit. The
//! thread a mutex is handed to is the entry's `who`, read from the object, never from
//! the waiter's (possibly public) block.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::lockset::{LockSet, Member};
use super::{Guard, Object};
use crate::park::{self, Segment};
use crate::shm::layout::*;
use crate::sys::{futex, thread};

/// A decoded, range-checked queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryVal {
    pub seg: u32,
    pub block: u32,
    pub generation: u32,
    pub index: usize,
    pub kind: u32,
    /// Handed to the waiter (`Some(abandoned)`), kept for it to confirm.
    pub granted: Option<bool>,
    /// The waiting thread's identity.
    pub who: u64,
    /// The waiter sleeps on this object's `seq` too ([`ENTRY_SEQ_SLEEPER`]).
    pub seq_sleeper: bool,
}

impl EntryVal {
    fn same_wait(&self, seg: u32, block: u32, generation: u32) -> bool {
        self.seg == seg && self.block == block && self.generation == generation
    }
}

fn decode(e: &Entry) -> Option<EntryVal> {
    let meta = e.meta.load(Ordering::Relaxed);
    let kind = (meta >> 8) & 0xFF;
    let index = (meta & 0xFF) as usize;
    let block = e.block.load(Ordering::Relaxed);
    let who = e.who.load(Ordering::Relaxed);
    if !matches!(kind, ENTRY_ANY | ENTRY_ALL)
        || meta >> 19 != 0
        || (meta & ENTRY_GRANT_ABANDONED != 0 && meta & ENTRY_GRANTED == 0)
        || index >= MAX_WAIT_OBJECTS
        || block as usize >= SEGMENT_BLOCKS
        || who == 0
        || who & !(thread::IDENT_MASK | thread::DETACHED) != 0
        || (who & thread::DETACHED != 0 && kind != ENTRY_ANY)
        || (meta & ENTRY_SEQ_SLEEPER != 0 && (kind != ENTRY_ANY || who & thread::DETACHED != 0))
    {
        return None;
    }
    Some(EntryVal {
        seg: e.seg.load(Ordering::Relaxed),
        block,
        generation: e.generation.load(Ordering::Relaxed),
        index,
        kind,
        granted: (meta & ENTRY_GRANTED != 0).then_some(meta & ENTRY_GRANT_ABANDONED != 0),
        who,
        seq_sleeper: meta & ENTRY_SEQ_SLEEPER != 0,
    })
}

fn meta_of(e: &EntryVal) -> u32 {
    entry_meta(e.index, e.kind)
        | match e.granted {
            None => 0,
            Some(false) => ENTRY_GRANTED,
            Some(true) => ENTRY_GRANTED | ENTRY_GRANT_ABANDONED,
        }
        | if e.seq_sleeper { ENTRY_SEQ_SLEEPER } else { 0 }
}

/// Entries in use (a corrupt length is clamped).
pub(crate) fn len(g: &Guard<'_>) -> usize {
    (g.obj().ctl().queue_len.load(Ordering::Relaxed) as usize).min(QUEUE_CAPACITY)
}

fn get(g: &Guard<'_>, i: usize) -> Option<EntryVal> {
    decode(g.obj().entry(i))
}

fn put(g: &Guard<'_>, i: usize, e: &EntryVal) {
    let q = g.obj().entry(i);
    q.seg.store(e.seg, Ordering::Relaxed);
    q.block.store(e.block, Ordering::Relaxed);
    q.generation.store(e.generation, Ordering::Relaxed);
    q.meta.store(meta_of(e), Ordering::Relaxed);
    q.who.store(e.who, Ordering::Relaxed);
}

fn hint_add(g: &Guard<'_>, kind: u32, delta: i32) {
    if kind == ENTRY_ALL {
        let h = &g.obj().ctl().all_waiters;
        h.store(
            h.load(Ordering::Relaxed).saturating_add_signed(delta),
            Ordering::Relaxed,
        );
    }
}

/// Whether wait-all waiters may be queued here (a hint: `all_waiters`, kept under the
/// lock and recounted on repair; a wrong hint costs a scan or a fallback ring).
pub(crate) fn has_all_waiters(g: &Guard<'_>) -> bool {
    g.obj().ctl().all_waiters.load(Ordering::Relaxed) != 0
}

/// The segment an entry names, if it may name it from this object.
fn segment_of(g: &Guard<'_>, e: &EntryVal) -> Option<Arc<Segment>> {
    let seg = park::segment::attach(e.seg)?;
    park::segment::entry_may_name(g.obj().ns_key, &seg).then_some(seg)
}

/// Appends an entry; `false` when the queue is full even after dropping stale entries.
pub(crate) fn push(g: &Guard<'_>, e: EntryVal) -> bool {
    let mut n = len(g);
    // The last entry is an earlier wait of this very block (a wait-any satisfied by
    // another object leaves its entries behind): it is stale, and it stands where the
    // new entry would go, so reuse it. A thread that waits again and again on the same
    // objects then keeps their queues one entry long.
    if n > 0
        && let Some(last) = get(g, n - 1)
        && last.seg == e.seg
        && last.block == e.block
        && last.granted.is_none()
    {
        hint_add(g, last.kind, -1);
        n -= 1;
    }
    if n == QUEUE_CAPACITY {
        purge(g, true);
        n = len(g);
        if n == QUEUE_CAPACITY {
            return false;
        }
    }
    put(g, n, &e);
    hint_add(g, e.kind, 1);
    g.obj()
        .ctl()
        .queue_len
        .store(n as u32 + 1, Ordering::Relaxed);
    true
}

fn copy_entry(dst: &Entry, src: &Entry) {
    dst.seg
        .store(src.seg.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.block
        .store(src.block.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.generation
        .store(src.generation.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.meta
        .store(src.meta.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.who
        .store(src.who.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Removes entry `i`, keeping the order of the rest.
pub(crate) fn remove(g: &Guard<'_>, i: usize) {
    let n = len(g);
    if i >= n {
        return;
    }
    if let Some(e) = get(g, i) {
        hint_add(g, e.kind, -1);
    }
    let o = g.obj();
    for k in i..n - 1 {
        copy_entry(o.entry(k), o.entry(k + 1));
    }
    g.obj()
        .ctl()
        .queue_len
        .store(n as u32 - 1, Ordering::Relaxed);
}

/// Removes the entries of one wait; returns its grant here, if it had one
/// (`Some((index in the waiter's list, abandoned))`).
pub(crate) fn remove_wait(
    g: &Guard<'_>,
    seg: u32,
    block: u32,
    generation: u32,
) -> Option<(usize, bool)> {
    let mut i = 0;
    let mut grant = None;
    while i < len(g) {
        match get(g, i) {
            Some(e) if e.same_wait(seg, block, generation) => {
                grant = grant.or(e.granted.map(|a| (e.index, a)));
                remove(g, i)
            }
            _ => i += 1,
        }
    }
    grant
}

/// Whether entry `e` still stands for a live wait: a pending one (claim WAITING with
/// its generation), or a granted one whose waiter has not confirmed it yet.
fn live(seg: &Segment, e: &EntryVal, check_dead: bool) -> bool {
    let Some(b) = seg.block(e.block) else {
        return false;
    };
    let c = b.claim.load(Ordering::Acquire);
    let pending = match e.granted {
        None => c == claim(e.generation, CLAIM_WAITING),
        // Until the waiter confirms it (or arms its block for another wait).
        Some(_) => (c >> 32) as u32 == e.generation,
    };
    pending && (!check_dead || seg.thread_exists(thread::ident_tid(e.who)))
}

/// Rings every queued waiter (a spurious wake-up for each; used when a timer's due
/// time changes, so that sleepers recompute how long to sleep).
pub(crate) fn ring_all(g: &Guard<'_>) {
    for i in 0..len(g) {
        if let Some(e) = get(g, i)
            && let Some(seg) = segment_of(g, &e)
        {
            park::ring(&seg, e.block);
        }
    }
    let ctl = g.obj().ctl();
    ctl.seq.fetch_add(1, Ordering::Release);
    futex::wake(&ctl.seq, u32::MAX);
}

/// Rings the first pending wait-any waiter, if any (a spurious wake-up for it).
fn ring_head(g: &Guard<'_>) {
    for i in 0..len(g) {
        let Some(e) = get(g, i) else { continue };
        if e.kind != ENTRY_ANY || e.granted.is_some() {
            continue;
        }
        if let Some(seg) = segment_of(g, &e)
            && let Some(b) = seg.block(e.block)
            && park::is_waiting(b, e.generation)
        {
            park::ring(&seg, e.block);
            return;
        }
    }
}

/// Drops stale entries (and, with `check_dead`, entries of dead threads).
pub(crate) fn purge(g: &Guard<'_>, check_dead: bool) {
    // One pass: live entries are copied down over dropped ones, in order, then the
    // length is shortened (a holder dying in between leaves duplicates: harmless).
    let n = len(g);
    let o = g.obj();
    let mut kept = 0;
    let mut all = 0u32;
    for i in 0..n {
        let e = get(g, i);
        let keep = e.is_some_and(|e| segment_of(g, &e).is_some_and(|s| live(&s, &e, check_dead)));
        if keep {
            if kept != i {
                copy_entry(o.entry(kept), o.entry(i));
            }
            kept += 1;
            all += u32::from(e.is_some_and(|e| e.kind == ENTRY_ALL));
        }
    }
    let ctl = g.obj().ctl();
    if kept != n {
        ctl.queue_len.store(kept as u32, Ordering::Relaxed);
    }
    ctl.all_waiters.store(all, Ordering::Relaxed);
}

/// Live waiters of `obj`: pending entries of existing threads, plus the sleepers that
/// found the queue full.
pub(crate) fn waiters(obj: &Object) -> crate::error::Result<usize> {
    let g = obj.lock_bounded()?;
    purge(&g, true);
    let pending = (0..len(&g))
        .filter(|&i| get(&g, i).is_some_and(|e| e.granted.is_none()))
        .count();
    Ok(pending + g.obj().ctl().overflow.load(Ordering::Relaxed) as usize)
}

/// The objects of the wait-all sets queued here (other than this object itself),
/// deduplicated by id: what a signal must lock to complete them.
pub(crate) fn all_set_members(g: &Guard<'_>) -> Vec<Member> {
    let mut ids: Vec<Member> = Vec::new();
    for i in 0..len(g) {
        let Some(e) = get(g, i).filter(|e| e.kind == ENTRY_ALL && e.granted.is_none()) else {
            continue;
        };
        let Some(seg) = segment_of(g, &e) else {
            continue;
        };
        let Some(b) = seg.block(e.block) else {
            continue;
        };
        if !park::is_waiting(b, e.generation) {
            continue;
        }
        for (id, fd) in park::set_members(b).unwrap_or_default() {
            if id != g.obj().id && !ids.iter().any(|m| m.id == id) {
                ids.push(Member {
                    id,
                    pid: seg.cpid,
                    fd,
                    ns_key: if seg.public { GLOBAL_NS } else { seg.uid },
                });
            }
        }
    }
    ids
}

/// After a crash inside the lock: clamp and re-validate the queue, drop stale entries
/// and entries of dead threads, and wake everyone who might have missed a signal.
pub(crate) fn repair_locked(g: &Guard<'_>) {
    let ctl = g.obj().ctl();
    if ctl.queue_len.load(Ordering::Relaxed) as usize > QUEUE_CAPACITY {
        ctl.queue_len
            .store(QUEUE_CAPACITY as u32, Ordering::Relaxed);
    }
    g.obj().repair_state_locked(g);
    // The dead holder may have claimed a waiter without ringing it: ring everyone.
    ring_all(g);
    purge(g, true);
    hand_off(g, None);
}

/// Hands the object to queued waiters while it is signaled (NT: at the moment of the
/// signal), first come first served: see the module doc of `wait` and
/// docs/ARCHITECTURE.md, "Hand-off". `set` holds the locks of every object of the
/// queued wait-all sets that this process could reach (the signal path takes them
/// before it changes anything, see `obj::signal`); a wait-all whose set is fully
/// locked and available is completed here, inside the signal (WL-18). One that is not
/// reachable is rung, and completes itself when it wakes.
pub(crate) fn hand_off(g: &Guard<'_>, set: Option<&LockSet<'_>>) {
    let obj = g.obj();
    let ctl = obj.ctl();
    if len(g) > 16 {
        // Drop stale entries in one pass rather than one shift per entry below.
        purge(g, false);
    }
    // Whether a waiter that sleeps on `seq` too was rung asleep: one `FUTEX_WAKE` of
    // `seq` below wakes them all.
    let mut wake_seq = false;
    let mut i = 0;
    while i < len(g) {
        let s = obj.state().load(Ordering::Relaxed);
        if !obj.free_for_anyone(s) {
            break;
        }
        let Some(e) = get(g, i) else {
            remove(g, i);
            continue;
        };
        if e.granted.is_some() {
            i += 1; // waiting for its waiter to confirm it
            continue;
        }
        let Some(seg) = segment_of(g, &e) else {
            remove(g, i); // names nothing we may write: drop it
            continue;
        };
        let Some(b) = seg.block(e.block) else {
            remove(g, i);
            continue;
        };
        if !park::is_waiting(b, e.generation) {
            remove(g, i);
            continue;
        }
        if e.kind == ENTRY_ALL {
            match set.map(|set| complete_all(set, obj, &e, &seg, b)) {
                Some(AllResult::Completed) => {
                    if obj.owned() {
                        ring_head(g);
                    }
                    // Our entry may have moved (removed): re-read position i.
                    continue;
                }
                Some(AllResult::Gone) => continue,
                Some(AllResult::NotAvailable) => {}
                Some(AllResult::Unreachable) | None => {
                    // We cannot lock its whole set: let it look for itself.
                    if park::ring(&seg, e.block) == 0
                        && !seg.thread_exists(thread::ident_tid(e.who))
                    {
                        remove(g, i);
                        continue;
                    }
                }
            }
            i += 1;
            continue;
        }
        if e.who & thread::DETACHED != 0 && obj.owned() {
            // A detached wait never queues on a mutex (no thread to own it): forged.
            remove(g, i);
            continue;
        }
        if !obj.available_locked(g, e.who, true) {
            i += 1;
            continue;
        }
        // A public waiter is rung only once our lock is released (it takes this lock to
        // confirm its grant: ringing it now would make it wait for us), so whether it is
        // still alive is asked first, not afterwards from the ring.
        if seg.public && e.who != thread::ident() && !seg.thread_exists(thread::ident_tid(e.who)) {
            remove(g, i);
            continue;
        }
        let abandoned = match obj.acquire_locked(g, e.who) {
            Ok(Some(a)) => a,
            _ => {
                i += 1;
                continue;
            }
        };
        if !park::try_claim(b, e.generation, park::granted(e.index, abandoned)) {
            obj.undo_acquire_locked(g, e.who, abandoned);
            remove(g, i);
            continue;
        }
        if seg.public {
            // Kept, marked, for the waiter to confirm (its claim word is only a hint).
            put(
                g,
                i,
                &EntryVal {
                    granted: Some(abandoned),
                    ..e
                },
            );
        }
        let woke = if e.who == thread::ident() {
            // Handing to ourselves (a waiter expiring a due timer): we are awake.
            park::nudge(b);
            1
        } else if seg.public {
            park::ring_after_unlock(&seg, e.block);
            1 // checked alive above
        } else if e.seq_sleeper && obj.manual {
            // A manual-reset object releases every queued waiter: those that also sleep
            // on `seq` are rung here without a system call and woken together by one
            // `FUTEX_WAKE` below. Their liveness need not be asked: taking a
            // manual-reset object changes nothing, so a grant to a thread that is gone
            // takes nothing from anyone.
            wake_seq |= park::ring_quietly(b);
            1
        } else if obj.manual {
            // Rung once the lock is released, after the `FUTEX_WAKE` on `seq` below:
            // woken first, this waiter could take the CPU from us before the others are
            // woken (and its next wait would find our lock held). Its liveness need not
            // be asked, as above.
            park::ring_after_unlock(&seg, e.block);
            1
        } else {
            park::ring(&seg, e.block)
        };
        if seg.public {
            i += 1;
        } else {
            remove(g, i);
        }
        if obj.owned() {
            // The next waiter in line now waits on a new owner: ring it so that it
            // asks the owner-death watcher to watch that owner (wait::abandon).
            ring_head(g);
        }
        // A detached waiter (io_uring futex wait) of a process that just died may still
        // be woken: the kernel tears a dead process's ring down asynchronously, so its
        // futex wait can outlive the process for a moment. So its liveness is asked
        // whatever the wake-up said (after the ring: off the woken side's path).
        let ask = woke == 0 || e.who & thread::DETACHED != 0;
        if ask && !seg.thread_exists(thread::ident_tid(e.who)) {
            // Handed to a thread that was already gone (nobody was woken, and the
            // thread no longer exists): it never took part, so the object goes on to
            // the next waiter as if the entry had not been there. (A waiter that dies
            // after this point did acquire: its mutex is later found abandoned.)
            obj.undo_acquire_locked(g, e.who, abandoned);
            if seg.public {
                remove_wait(g, e.seg, e.block, e.generation);
                i = i.saturating_sub(1);
            }
        }
    }
    ctl.seq.fetch_add(1, Ordering::Release);
    if wake_seq || ctl.overflow.load(Ordering::Relaxed) != 0 {
        futex::wake(&ctl.seq, u32::MAX);
    }
}

enum AllResult {
    Completed,
    /// Its waiter was dead: its entries are gone, nothing taken.
    Gone,
    NotAvailable,
    Unreachable,
}

/// Completes the wait-all of entry `e` (queued in `primary`) inside this signal if
/// every object of its set is locked in `set` and available to its thread: acquires
/// them all on its behalf, claims it, and sets its ring aside for when `set` is let
/// go.
fn complete_all(
    set: &LockSet<'_>,
    primary: &Object,
    e: &EntryVal,
    seg: &Arc<Segment>,
    b: &Block,
) -> AllResult {
    let Some(ids) = park::set_ids(b) else {
        return AllResult::Unreachable;
    };
    if !ids.contains(&primary.id) {
        return AllResult::Unreachable;
    }
    let mut guards: Vec<(&Guard<'_>, EntryVal)> = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(g) = set.get(*id) else {
            return AllResult::Unreachable;
        };
        // Its entry in that object: which index it has in the waiter's list.
        let Some(mine) = (0..len(g))
            .filter_map(|k| get(g, k))
            .find(|x| x.same_wait(e.seg, e.block, e.generation) && x.kind == ENTRY_ALL)
        else {
            return AllResult::Unreachable;
        };
        guards.push((g, mine));
    }
    if !guards
        .iter()
        .all(|(g, _)| g.obj().available_locked(g, e.who, true))
    {
        return AllResult::NotAvailable;
    }
    let mut taken: Vec<(usize, bool)> = Vec::with_capacity(guards.len());
    for (k, (g, _)) in guards.iter().enumerate() {
        match g.obj().acquire_locked(g, e.who) {
            Ok(Some(a)) => taken.push((k, a)),
            _ => {
                for &(k, a) in &taken {
                    let g = guards[k].0;
                    g.obj().undo_acquire_locked(g, e.who, a);
                }
                return AllResult::NotAvailable;
            }
        }
    }
    let abandoned = taken
        .iter()
        .filter(|(_, a)| *a)
        .map(|&(k, _)| guards[k].1.index)
        .min();
    let state = abandoned.map_or(park::granted(0, false), |i| park::granted(i, true));
    if !park::try_claim(b, e.generation, state) {
        for &(k, a) in &taken {
            let g = guards[k].0;
            g.obj().undo_acquire_locked(g, e.who, a);
        }
        return AllResult::NotAvailable;
    }
    for &(k, a) in &taken {
        let (g, mine) = &guards[k];
        if seg.public {
            if let Some(pos) = (0..len(g)).find(|&p| get(g, p) == Some(*mine)) {
                put(
                    g,
                    pos,
                    &EntryVal {
                        granted: Some(a),
                        ..*mine
                    },
                );
            }
        } else {
            remove_wait(g, e.seg, e.block, e.generation);
        }
    }
    // Rung once the locks are released (see `hand_off`), so ask about liveness now. A
    // private waiter too: rung under the locks, it could take the processor from us
    // while we hold them, then find them held when it goes on (a same-CPU ping-pong of
    // wait-alls: a `sched_yield` and two more context switches per wake).
    if !seg.thread_exists(thread::ident_tid(e.who)) {
        // Completed for a thread that was already gone: it never took part, so give
        // everything back, as if its entries had not been there.
        for &(k, a) in &taken {
            let g = guards[k].0;
            g.obj().undo_acquire_locked(g, e.who, a);
            remove_wait(g, e.seg, e.block, e.generation);
        }
        return AllResult::Gone;
    }
    park::ring_after_unlock(seg, e.block);
    AllResult::Completed
}
