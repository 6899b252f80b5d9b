//! The wait queue of an object and the hand-off of signals to queued waiters.
//!
//! Entries are kept compact and in arrival order (first come, first served); all of
//! this runs under the object lock. An entry is *stale* when its block's claim no
//! longer reads `WAITING` with the entry's generation (the wait ended: satisfied by
//! another object, timed out, or the block was reused); stale entries are dropped by
//! whoever meets them. A removal shifts the tail down and then shortens `queue_len`,
//! so a holder dying in the middle leaves at worst a duplicated entry, which is stale
//! or harmless (a claim succeeds once).

use std::sync::atomic::Ordering;

use super::{Guard, Object, ObjectKind};
use crate::shm::layout::*;
use crate::sys::{futex, thread};

/// A decoded, range-checked queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryVal {
    pub table: u32,
    pub block: u32,
    pub generation: u32,
    pub index: usize,
    pub kind: u32,
    /// A signaler set this object aside for this wait-all waiter.
    pub offered: bool,
}

fn decode(e: &Entry) -> Option<EntryVal> {
    let meta = e.meta.load(Ordering::Relaxed);
    let kind = (meta >> 8) & 0xFF;
    let offered = meta & ENTRY_OFFERED != 0;
    let index = (meta & 0xFF) as usize;
    let block = e.block.load(Ordering::Relaxed);
    let kind_ok = match kind {
        ENTRY_ANY => !offered, // only wait-all waiters are offered objects
        ENTRY_ALL => true,
        _ => false,
    };
    if !kind_ok
        || meta >> 17 != 0
        || index >= crate::MAX_WAIT_OBJECTS
        || block as usize >= TABLE_BLOCKS
    {
        return None;
    }
    Some(EntryVal {
        table: e.table.load(Ordering::Relaxed),
        block,
        generation: e.generation.load(Ordering::Relaxed),
        index,
        kind,
        offered,
    })
}

/// Entries in use (a corrupt length is clamped).
pub(crate) fn len(g: &Guard<'_>) -> usize {
    (g.obj.file().ctl.queue_len.load(Ordering::Relaxed) as usize).min(QUEUE_CAPACITY)
}

fn get(g: &Guard<'_>, i: usize) -> Option<EntryVal> {
    decode(&g.obj.file().queue[i])
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
        && last.table == e.table
        && last.block == e.block
    {
        if last.offered {
            unoffer_count(g);
        }
        n -= 1;
    }
    if n == QUEUE_CAPACITY {
        purge(g, true);
        n = len(g);
        if n == QUEUE_CAPACITY {
            return false;
        }
    }
    let q = &g.obj.file().queue[n];
    q.table.store(e.table, Ordering::Relaxed);
    q.block.store(e.block, Ordering::Relaxed);
    q.generation.store(e.generation, Ordering::Relaxed);
    q.meta.store(entry_meta(e.index, e.kind), Ordering::Relaxed);
    g.obj
        .file()
        .ctl
        .queue_len
        .store(n as u32 + 1, Ordering::Relaxed);
    true
}

fn copy_entry(dst: &Entry, src: &Entry) {
    dst.table
        .store(src.table.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.block
        .store(src.block.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.generation
        .store(src.generation.load(Ordering::Relaxed), Ordering::Relaxed);
    dst.meta
        .store(src.meta.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Removes entry `i`, keeping the order of the rest.
pub(crate) fn remove(g: &Guard<'_>, i: usize) {
    let n = len(g);
    if i >= n {
        return;
    }
    if get(g, i).is_some_and(|e| e.offered) {
        unoffer_count(g);
    }
    let q = &g.obj.file().queue;
    for k in i..n - 1 {
        copy_entry(&q[k], &q[k + 1]);
    }
    g.obj
        .file()
        .ctl
        .queue_len
        .store(n as u32 - 1, Ordering::Relaxed);
}

/// Removes the entries of one wait (table, block, generation).
pub(crate) fn remove_wait(g: &Guard<'_>, table_key: u32, block: u32, generation: u32) {
    let mut i = 0;
    let mut offered = false;
    while i < len(g) {
        match get(g, i) {
            Some(e) if e.table == table_key && e.block == block && e.generation == generation => {
                offered |= e.offered;
                remove(g, i)
            }
            _ => i += 1,
        }
    }
    if offered {
        // What was set aside for this wait goes to the others.
        hand_off(g, false);
    }
}

fn unoffer_count(g: &Guard<'_>) {
    let o = &g.obj.file().ctl.offers;
    o.store(
        o.load(Ordering::Relaxed).saturating_sub(1),
        Ordering::Relaxed,
    );
}

/// Units of the object set aside for live wait-all waiters other than `mine`
/// (`(table, block)` of the caller's wait, if it has one). Offers of threads that are
/// gone are dropped on the way.
pub(crate) fn reserved(g: &Guard<'_>, mine: Option<(u32, u32)>) -> u32 {
    if g.obj.file().ctl.offers.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let mut n = 0;
    let mut i = 0;
    while i < len(g) {
        let Some(e) = get(g, i).filter(|e| e.offered) else {
            i += 1;
            continue;
        };
        if mine == Some((e.table, e.block)) {
            i += 1;
            continue;
        }
        let live = table_of(g.obj, e.table).is_some_and(|t| {
            t.block(e.block).is_some_and(|b| {
                b.claim.load(Ordering::Acquire) == claim(e.generation, CLAIM_WAITING)
                    && thread::thread_exists(
                        b.pid.load(Ordering::Relaxed),
                        thread::ident_tid(b.owner.load(Ordering::Relaxed)),
                    )
            })
        });
        if live {
            n += 1;
            i += 1;
        } else {
            remove(g, i);
        }
    }
    n
}

/// Whether the object can be acquired by thread `who` (whose wait, if any, is `mine`)
/// now, honouring what signalers set aside for wait-all waiters.
pub(crate) fn available(g: &Guard<'_>, who: u64, mine: Option<(u32, u32)>) -> bool {
    let obj = g.obj;
    let s = obj.state().load(Ordering::Relaxed);
    if !obj.signaled_for(s, who) {
        return false;
    }
    match obj.kind {
        ObjectKind::Event | ObjectKind::Timer if obj.manual => true,
        ObjectKind::Mutex if s & OWNER_MASK == who => true,
        ObjectKind::Semaphore => (s & COUNT_MASK) as u32 > reserved(g, mine),
        _ => reserved(g, mine) == 0,
    }
}

/// Takes back every offer made to the wait `(table, block)` in this object, then hands
/// what that frees to the other waiters (without new offers: the waiter giving up
/// must not be offered the same object again at once).
pub(crate) fn withdraw_offers(g: &Guard<'_>, table_key: u32, block: u32) {
    let mut any = false;
    for i in 0..len(g) {
        if let Some(e) = get(g, i)
            && e.offered
            && e.table == table_key
            && e.block == block
        {
            g.obj.file().queue[i]
                .meta
                .store(entry_meta(e.index, e.kind), Ordering::Relaxed);
            unoffer_count(g);
            any = true;
        }
    }
    if any {
        hand_off(g, false);
    }
}

fn table_of(obj: &Object, key: u32) -> Option<super::TableRef<'_>> {
    obj.table(key)
}

/// Rings a waiter's doorbell; returns how many threads the kernel woke (0 or 1).
pub(crate) fn ring(b: &Block) -> usize {
    b.wake.fetch_add(1, Ordering::Release);
    futex::wake(&b.wake, 1)
}

/// Rings every queued waiter (a spurious wake-up for each; used when a timer's due
/// time changes, so that sleepers recompute how long to sleep).
pub(crate) fn ring_all(g: &Guard<'_>) {
    for i in 0..len(g) {
        if let Some(e) = get(g, i)
            && let Some(t) = table_of(g.obj, e.table)
            && let Some(b) = t.block(e.block)
        {
            ring(b);
        }
    }
    let ctl = &g.obj.file().ctl;
    ctl.seq.fetch_add(1, Ordering::Release);
    futex::wake(&ctl.seq, u32::MAX);
}

/// Rings the first queued wait-any waiter, if any (a spurious wake-up for it).
fn ring_head(g: &Guard<'_>) {
    for i in 0..len(g) {
        let Some(e) = get(g, i) else { continue };
        if e.kind != ENTRY_ANY {
            continue;
        }
        if let Some(t) = table_of(g.obj, e.table)
            && let Some(b) = t.block(e.block)
            && b.claim.load(Ordering::Acquire) == claim(e.generation, CLAIM_WAITING)
        {
            ring(b);
            return;
        }
    }
}

/// Drops stale entries (and, with `check_dead`, entries of dead threads).
pub(crate) fn purge(g: &Guard<'_>, check_dead: bool) {
    // One pass: live entries are copied down over dropped ones, in order, then the
    // length is shortened (a holder dying in between leaves duplicates: harmless).
    let n = len(g);
    let q = &g.obj.file().queue;
    let mut kept = 0;
    for i in 0..n {
        let keep = match get(g, i) {
            None => false,
            Some(e) => match table_of(g.obj, e.table) {
                // A table we cannot open: keep the entry (see `satisfy_locked`).
                None => true,
                Some(t) => t.block(e.block).is_some_and(|b| {
                    b.claim.load(Ordering::Acquire) == claim(e.generation, CLAIM_WAITING)
                        && (!check_dead
                            || thread::thread_exists(
                                b.pid.load(Ordering::Relaxed),
                                thread::ident_tid(b.owner.load(Ordering::Relaxed)),
                            ))
                }),
            },
        };
        if keep {
            if kept != i {
                copy_entry(&q[kept], &q[i]);
            }
            kept += 1;
        } else if get(g, i).is_some_and(|e| e.offered) {
            unoffer_count(g);
        }
    }
    if kept != n {
        g.obj
            .file()
            .ctl
            .queue_len
            .store(kept as u32, Ordering::Relaxed);
    }
}

/// After a crash inside the lock: clamp and re-validate the queue, drop stale entries
/// and entries of dead threads, and wake everyone who might have missed a signal.
pub(crate) fn repair_locked(g: &Guard<'_>) {
    let ctl = &g.obj.file().ctl;
    if ctl.queue_len.load(Ordering::Relaxed) as usize > QUEUE_CAPACITY {
        ctl.queue_len
            .store(QUEUE_CAPACITY as u32, Ordering::Relaxed);
    }
    if g.obj.kind == ObjectKind::Mutex {
        super::mutex::repair_locked(g);
    }
    // The dead holder may have claimed a waiter without ringing it: ring everyone.
    ring_all(g);
    let offered = (0..len(g))
        .filter(|&i| get(g, i).is_some_and(|e| e.offered))
        .count();
    ctl.offers.store(offered as u32, Ordering::Relaxed);
    purge(g, true);
    satisfy_locked(g);
}

/// Hands the object to queued waiters while it is signaled (NT: at the moment of the
/// signal), first come first served: a wait-any waiter is claimed with one
/// compare-and-swap on its block (so exactly one object satisfies it), the object is
/// consumed on its behalf, and its doorbell is rung. Wait-all waiters are only rung;
/// they re-check their whole set under all its locks (see `wait::all`).
pub(crate) fn satisfy_locked(g: &Guard<'_>) {
    hand_off(g, true);
}

/// [`satisfy_locked`] without setting anything aside for wait-all waiters (a pulse:
/// the event is unset again before they could look).
pub(crate) fn satisfy_without_offers(g: &Guard<'_>) {
    hand_off(g, false);
}

/// The walk of [`satisfy_locked`]; `make_offers` false when a wait-all waiter gives
/// its offers back (so that it is not offered the same object again at once).
fn hand_off(g: &Guard<'_>, make_offers: bool) {
    let obj = g.obj;
    let ctl = &obj.file().ctl;
    if len(g) > 16 {
        // Drop stale entries in one pass rather than one shift per entry below.
        purge(g, false);
    }
    let mut i = 0;
    while i < len(g) {
        let s = obj.state().load(Ordering::Relaxed);
        let any_signal = match obj.kind {
            ObjectKind::Mutex => s & OWNER_MASK == 0,
            _ => obj.signaled_for(s, 0),
        };
        if !any_signal {
            break;
        }
        let Some(e) = get(g, i) else {
            remove(g, i);
            continue;
        };
        let Some(t) = table_of(obj, e.table) else {
            // A table we cannot open (another user's): leave the entry; its waiter
            // also sleeps on nothing we can reach, so it will time out.
            i += 1;
            continue;
        };
        let Some(b) = t.block(e.block) else {
            remove(g, i);
            continue;
        };
        let expect = claim(e.generation, CLAIM_WAITING);
        if b.claim.load(Ordering::Acquire) != expect {
            remove(g, i);
            continue;
        }
        let who = b.owner.load(Ordering::Relaxed) & thread::IDENT_MASK;
        let mine = Some((e.table, e.block));
        if e.kind == ENTRY_ALL {
            // A wait-all waiter is not given the object (the signaler cannot see its
            // other objects); it is rung to re-check its set. A consumable object is
            // first set aside for it (offered), so that a later arrival cannot take
            // what was signaled while it waited; it gives the offer back if its set is
            // still incomplete.
            if e.offered || !available(g, who, mine) {
                i += 1;
                continue;
            }
            let consumable =
                !(obj.manual && matches!(obj.kind, ObjectKind::Event | ObjectKind::Timer));
            if consumable {
                if !make_offers {
                    i += 1;
                    continue;
                }
                g.obj.file().queue[i].meta.store(
                    entry_meta(e.index, e.kind) | ENTRY_OFFERED,
                    Ordering::Relaxed,
                );
                let offers = &ctl.offers;
                offers.store(offers.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            if ring(b) == 0
                && !thread::thread_exists(b.pid.load(Ordering::Relaxed), thread::ident_tid(who))
            {
                remove(g, i);
                continue;
            }
            i += 1;
            continue;
        }
        if !available(g, who, mine) {
            i += 1;
            continue;
        }
        let abandoned = match obj.acquire_locked(g, who) {
            Ok(Some(a)) => a,
            _ => {
                i += 1;
                continue;
            }
        };
        let won = if abandoned {
            CLAIM_ABANDONED
        } else {
            CLAIM_SIGNALED
        } + e.index as u32;
        if b.claim
            .compare_exchange(
                expect,
                claim(e.generation, won),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            obj.undo_acquire_locked(g, who, abandoned);
            remove(g, i);
            continue;
        }
        // Ring before removing the entry: a signaler dying in between leaves the entry
        // for `repair_locked`, which rings every queued block.
        let woke = if who == thread::ident() {
            // Handing to ourselves (a waiter expiring a due timer): we are awake.
            b.wake.fetch_add(1, Ordering::Release);
            1
        } else {
            ring(b)
        };
        remove(g, i);
        if obj.kind == ObjectKind::Mutex {
            // The next waiter in line now waits on a new owner: ring it so that it
            // asks the owner-death watcher to watch that owner (wait::abandon).
            ring_head(g);
        }
        if woke == 0
            && !thread::thread_exists(b.pid.load(Ordering::Relaxed), thread::ident_tid(who))
        {
            // Handed to a thread that was already gone (nobody was woken, and the
            // thread no longer exists): it never took part, so the object goes on to
            // the next waiter as if the entry had not been there. (A waiter that dies
            // after this point did acquire: its mutex is later found abandoned.)
            obj.undo_acquire_locked(g, who, abandoned);
        }
    }
    ctl.seq.fetch_add(1, Ordering::Release);
    if ctl.overflow.load(Ordering::Relaxed) != 0 {
        futex::wake(&ctl.seq, u32::MAX);
    }
}

/// Live waiters of `obj`: queued entries whose wait is still pending and whose thread
/// exists, plus the sleepers that found the queue full.
pub(crate) fn waiters(obj: &Object) -> usize {
    let g = obj.lock();
    purge(&g, true);
    len(&g) + g.obj.file().ctl.overflow.load(Ordering::Relaxed) as usize
}
