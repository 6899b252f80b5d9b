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
}

fn decode(e: &Entry) -> Option<EntryVal> {
    let meta = e.meta.load(Ordering::Relaxed);
    let kind = meta >> 8;
    let index = (meta & 0xFF) as usize;
    let block = e.block.load(Ordering::Relaxed);
    if (kind != ENTRY_ANY && kind != ENTRY_ALL)
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
    while i < len(g) {
        match get(g, i) {
            Some(e) if e.table == table_key && e.block == block && e.generation == generation => {
                remove(g, i)
            }
            _ => i += 1,
        }
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
    purge(g, true);
    satisfy_locked(g);
}

/// Hands the object to queued waiters while it is signaled (NT: at the moment of the
/// signal), first come first served: a wait-any waiter is claimed with one
/// compare-and-swap on its block (so exactly one object satisfies it), the object is
/// consumed on its behalf, and its doorbell is rung. Wait-all waiters are only rung;
/// they re-check their whole set under all its locks (see `wait::all`).
pub(crate) fn satisfy_locked(g: &Guard<'_>) {
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
        if e.kind == ENTRY_ALL {
            ring(b);
            i += 1;
            continue;
        }
        let who = b.owner.load(Ordering::Relaxed) & thread::IDENT_MASK;
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
