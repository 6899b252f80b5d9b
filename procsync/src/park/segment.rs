//! Wait-block segments: where a blocked thread's one futex word and claim word live.
//!
//! Each waiting process creates its own System V segments (see `sys::sysv` for why not
//! a file) and keeps one block per waiting thread; signallers in other processes attach
//! a segment by the id that a queue entry names, validate it, and keep it attached in a
//! small cache. There is no shared table, so there is no file to squat, truncate,
//! resize or leave behind, and no signal path ever creates anything.
//!
//! Two kinds of segment, chosen per wait:
//!
//! - **private** (mode 0600): for waits whose objects all live in the caller's own
//!   `Local\` namespace (or are unnamed objects of its user). Only that user (and root)
//!   can write it, and a signaller accepts an entry naming it only from an object of
//!   that same user's namespace. Its claims are trusted.
//! - **public** (mode 0666): for every other wait (a `Global\` object, another user's
//!   namespace). Anyone may write it, so a waiter on a public block treats its claim
//!   as a hint and confirms every grant in the object itself (`wait::any::public_outcome`, and the end of `wait::all::attempt`).
//!
//! It must not know about objects or kinds; it deals in segments, blocks and claims.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::shm::layout::*;
use crate::shm::map::SharedSeg;
use crate::sys::{sysv, thread};

/// A validated, attached wait-block segment.
#[derive(Debug)]
pub(crate) struct Segment {
    map: SharedSeg<SegmentFile>,
    /// Others may write it (kernel-reported mode), so its claims are only hints.
    pub public: bool,
    /// Owner (kernel-reported).
    pub uid: u32,
    /// The waiting process that created it (kernel-reported).
    pub cpid: u32,
    /// A pidfd of `cpid`, opened the first time a waiter that is its main thread is
    /// asked about (`None` inside: it could not be opened).
    leader: OnceLock<Option<std::os::fd::OwnedFd>>,
}

impl Segment {
    /// The segment id, as queue entries name it.
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        self.map.id() as u32
    }

    /// Block `i`, if in range.
    #[inline]
    pub(crate) fn block(&self, i: u32) -> Option<&Block> {
        self.map.get().blocks.get(i as usize)
    }

    /// The header's fallback word (`park::bell`).
    pub(crate) fn fallback(&self) -> &std::sync::atomic::AtomicU32 {
        &self.map.get().header.fallback
    }

    /// Rewrites the header of one of this process's own segments, in case a writer of a
    /// public segment wrecked it (signallers would then refuse to attach it); nothing
    /// for another process's segment.
    pub(crate) fn repair_own_header(&self) {
        if self.cpid != thread::me().pid {
            return;
        }
        let h = &self.map.get().header;
        h.blocks.store(SEGMENT_BLOCKS as u32, Ordering::Relaxed);
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.pid_ns.store(thread::pid_namespace(), Ordering::Relaxed);
        h.magic.store(SEGMENT_MAGIC, Ordering::Release);
    }

    /// Whether thread `tid` of the segment's process still exists (the process is the
    /// kernel's creator of the segment: a writer of the segment cannot fake it).
    pub(crate) fn thread_exists(&self, tid: u32) -> bool {
        if tid == self.cpid && self.cpid == thread::me().pid {
            return true; // our own process (a detached waiter of ours): we are alive
        }
        if tid == self.cpid
            && let Some(Some(fd)) = self.leader.get()
        {
            // The process's pidfd alone answers for its main thread (one system call).
            return !crate::sys::pidfd::exited(fd);
        }
        if !thread::thread_exists(self.cpid, tid) {
            return false;
        }
        if tid != self.cpid {
            return true; // a thread other than the leader is gone as soon as it exits
        }
        // The main thread of a process that died but is not reaped yet (a zombie) still
        // answers `tgkill`: ask the process's pidfd, which is readable once it exited.
        // (The main thread stands for a detached waiter, and is the waiting thread of
        // single-threaded processes.)
        match self
            .leader
            .get_or_init(|| crate::sys::pidfd::open_process(self.cpid).ok())
        {
            Some(fd) => !crate::sys::pidfd::exited(fd),
            None => true,
        }
    }
}

fn validate(map: SharedSeg<SegmentFile>) -> Option<Segment> {
    let st = sysv::stat(map.id()).ok()?;
    let h = &map.get().header;
    if h.magic.load(Ordering::Relaxed) != SEGMENT_MAGIC
        || h.version.load(Ordering::Relaxed) != LAYOUT_VERSION
        || h.blocks.load(Ordering::Relaxed) != SEGMENT_BLOCKS as u32
    {
        return None;
    }
    let (theirs, ours) = (h.pid_ns.load(Ordering::Relaxed), thread::pid_namespace());
    if theirs != ours && theirs != 0 && ours != 0 {
        return None;
    }
    let public = st.mode & 0o022 != 0;
    if !public && st.uid != st.cuid {
        // A private segment given to another owner (`IPC_SET`): procsync never does it,
        // and its creator could still write it while it passed for the new owner's
        // (whose private entries and bells it would then name). Refused.
        return None;
    }
    // The creator's pidfd, opened now rather than at the first liveness question: the
    // sooner, the less likely its pid was reused by then (a segment outlives its
    // process while others keep it attached).
    let leader = if st.cpid == thread::me().pid {
        OnceLock::new()
    } else {
        OnceLock::from(crate::sys::pidfd::open_process(st.cpid).ok())
    };
    Some(Segment {
        map,
        public,
        uid: st.uid,
        cpid: st.cpid,
        leader,
    })
}

/// Removes wait-block segments of ours that a process killed at the one unprotected
/// instant of [`create`] (between creating and marking) left behind; run before each
/// creation, which is rare (one per 32 blocked threads of a process).
fn sweep_orphans() {
    for id in sysv::orphans(SEGMENT_SIZE, crate::sys::fs::euid()) {
        sysv::remove(id);
    }
}

fn create(public: bool) -> Result<Arc<Segment>> {
    sweep_orphans();
    let os = |e| Error::os("creating a wait-block segment (System V shared memory)", e);
    let map = SharedSeg::<SegmentFile>::create(if public { 0o666 } else { 0o600 }).map_err(os)?;
    let f = map.get();
    let mut gens = [0u8; SEGMENT_BLOCKS * 4];
    getrandom::fill(&mut gens).map_err(|_| os(crate::sys::Errno::IO))?;
    for (i, b) in f.blocks.iter().enumerate() {
        // Random starting generations: an entry left by an earlier segment that had the
        // same id never matches a block of this one.
        let g = u32::from_le_bytes(gens[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        b.claim.store(claim(g, CLAIM_IDLE), Ordering::Relaxed);
    }
    f.header
        .blocks
        .store(SEGMENT_BLOCKS as u32, Ordering::Relaxed);
    f.header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    f.header
        .pid_ns
        .store(thread::pid_namespace(), Ordering::Relaxed);
    f.header.magic.store(SEGMENT_MAGIC, Ordering::Release);
    let seg = Arc::new(validate(map).ok_or_else(|| {
        Error::os(
            "checking a new wait-block segment",
            crate::sys::Errno::INVAL,
        )
    })?);
    cache().insert(seg.id(), seg.clone());
    Ok(seg)
}

/// This process's segments, per kind, and the pid they belong to (a forked child
/// starts afresh: the parent's blocks are the parent's).
#[derive(Default)]
struct Own {
    pid: u32,
    segs: [Vec<Arc<Segment>>; 2],
    /// Per kind, the segment where the last block was found free: leases
    /// ([`lease`]) come in thousands, and a scan from the start would be quadratic.
    hint: [usize; 2],
}

static OWN: OnceLock<Mutex<Own>> = OnceLock::new();

fn alloc_slow(public: bool) -> Result<(Arc<Segment>, u32)> {
    let me = thread::me();
    let mut own = OWN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if own.pid != me.pid {
        *own = Own {
            pid: me.pid,
            ..Own::default()
        };
    }
    let kind = usize::from(public);
    let n = own.segs[kind].len();
    for step in 0..n {
        let at = (own.hint[kind] + step) % n;
        let seg = &own.segs[kind][at];
        for (i, b) in seg.map.get().blocks.iter().enumerate() {
            if b.owner
                .compare_exchange(0, me.ident, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                b.pid.store(me.pid, Ordering::Relaxed);
                let seg = seg.clone();
                own.hint[kind] = at;
                return Ok((seg, i as u32));
            }
        }
    }
    let seg = create(public)?;
    let b = &seg.map.get().blocks[0];
    b.owner.store(me.ident, Ordering::Relaxed);
    b.pid.store(me.pid, Ordering::Relaxed);
    own.segs[kind].push(seg.clone());
    own.hint[kind] = n;
    Ok((seg, 0))
}

/// A block of this process that no thread keeps: for a wait that no thread blocks in
/// (`wait::detached`), held until [`give_back`]. Own segments stay attached for the
/// life of the process, so the block's words stay valid after it is given back too.
pub(crate) fn lease(public: bool) -> Result<(Arc<Segment>, u32)> {
    let pid = thread::me().pid;
    let spare = SPARE
        .try_with(|s| s.borrow_mut().0[usize::from(public)].take())
        .ok()
        .flatten();
    match spare {
        Some((seg, index)) if seg.cpid == pid => Ok((seg, index)),
        // A forked child's spare is the parent's block: leave it be.
        Some(parent) => {
            std::mem::forget(parent);
            alloc_slow(public)
        }
        None => alloc_slow(public),
    }
}

/// Returns a [`lease`]d block for reuse: kept as the calling thread's spare if it has
/// none (an executor's thread leases again at once: no process-wide lock then), else
/// freed.
pub(crate) fn give_back(seg: &Arc<Segment>, index: u32) {
    if seg.cpid != thread::me().pid {
        return; // inherited through fork: the parent's
    }
    let Some(b) = seg.block(index) else {
        return;
    };
    let kept = SPARE
        .try_with(|s| {
            let slot = &mut s.borrow_mut().0[usize::from(seg.public)];
            if slot.is_some() {
                return false;
            }
            *slot = Some((seg.clone(), index));
            true
        })
        .unwrap_or(false);
    if !kept {
        b.owner.store(0, Ordering::Release);
    }
}

/// A thread's spare leased blocks, private and public, still marked taken; freed when
/// the thread ends.
struct Spare([Option<(Arc<Segment>, u32)>; 2]);

impl Drop for Spare {
    fn drop(&mut self) {
        let pid = thread::me().pid;
        for (seg, i) in self.0.iter().flatten() {
            if seg.cpid == pid
                && let Some(b) = seg.block(*i)
            {
                b.owner.store(0, Ordering::Release);
            }
        }
    }
}

thread_local! {
    static SPARE: RefCell<Spare> = const { RefCell::new(Spare([None, None])) };
}

/// A thread's own block, kept for the thread's life (a thread has at most one
/// blocking wait at a time) and given back when the thread ends.
struct Mine {
    pid: u32,
    blocks: [Option<(Arc<Segment>, u32)>; 2],
}

impl Drop for Mine {
    fn drop(&mut self) {
        if self.pid != thread::me().pid {
            return; // inherited through fork: the parent's thread still uses it
        }
        for (seg, i) in self.blocks.iter().flatten() {
            if let Some(b) = seg.block(*i) {
                b.owner.store(0, Ordering::Release);
            }
        }
    }
}

thread_local! {
    static MINE: RefCell<Mine> = const { RefCell::new(Mine { pid: 0, blocks: [None, None] }) };
}

/// The calling thread's block in a private or public segment.
pub(crate) fn my_block(public: bool) -> Result<(Arc<Segment>, u32)> {
    let pid = thread::me().pid;
    // A thread whose thread-locals are already destroyed (it is ending, and waits in a
    // destructor) gets a fresh block for that wait; it stays taken until the process
    // ends (a rare path: 832 bytes).
    let Ok(r) = MINE.try_with(|m| {
        let mut m = m.borrow_mut();
        if m.pid != pid {
            // First use on this thread, or a forked child: the parent's blocks stay.
            m.blocks = [None, None];
            m.pid = pid;
        }
        let slot = &mut m.blocks[usize::from(public)];
        if let Some(b) = slot {
            return Ok(b.clone());
        }
        let b = alloc_slow(public)?;
        *slot = Some(b.clone());
        Ok(b)
    }) else {
        return alloc_slow(public);
    };
    r
}

/// Segments attached by id, own ones included. Dropped when their process is gone.
fn cache() -> std::sync::MutexGuard<'static, HashMap<u32, Arc<Segment>>> {
    static CACHE: OnceLock<Mutex<HashMap<u32, Arc<Segment>>>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How many foreign segments stay attached before the dead ones are let go.
const CACHE_SWEEP_AT: usize = 64;

/// Segment `id`, attached and validated (cached). `None` when it does not exist, is
/// not a wait-block segment of our PID namespace, or we may not attach it.
pub(crate) fn attach(id: u32) -> Option<Arc<Segment>> {
    // A signaller hands off to the same few waiters again and again: a small
    // per-thread cache spares the process-wide lock on that path.
    // `try_with`: a thread that is ending (its thread-locals already destroyed) may
    // still signal — abandoning the mutexes it owns — and then goes without the cache.
    let hit = RECENT
        .try_with(|r| {
            r.borrow()
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, s)| s.clone())
        })
        .ok()
        .flatten();
    if hit.is_some() {
        return hit;
    }
    let seg = attach_shared(id)?;
    let _ = RECENT.try_with(|r| {
        let mut r = r.borrow_mut();
        if r.len() == RECENT_SLOTS {
            r.remove(0);
        }
        r.push((id, seg.clone()));
    });
    Some(seg)
}

/// Per-thread recently used segments (each keeps its segment attached until evicted).
const RECENT_SLOTS: usize = 4;

thread_local! {
    static RECENT: RefCell<Vec<(u32, Arc<Segment>)>> = const { RefCell::new(Vec::new()) };
}

fn attach_shared(id: u32) -> Option<Arc<Segment>> {
    if let Some(s) = cache().get(&id) {
        return Some(s.clone());
    }
    let map = SharedSeg::<SegmentFile>::attach(id as i32).ok()?;
    let seg = Arc::new(validate(map)?);
    let mut c = cache();
    if c.len() >= CACHE_SWEEP_AT {
        let me = thread::me().pid;
        c.retain(|_, s| s.cpid == me || thread::thread_exists(s.cpid, s.cpid));
    }
    Some(c.entry(id).or_insert(seg).clone())
}

/// Whether an entry of an object of namespace `ns_key` may name `seg`: any public
/// segment; a private one only from an object of its owner's own `Local\` namespace
/// (so that nobody can plant, in an object they can write, an entry that makes a
/// signaller write into someone else's private segment).
pub(crate) fn entry_may_name(ns_key: u32, seg: &Segment) -> bool {
    seg.public || (ns_key != GLOBAL_NS && seg.uid == ns_key)
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    /// A private segment whose owner its creator changed (`IPC_SET`) is not attached: it
    /// would pass for the new owner's while its creator could still write it.
    #[test]
    fn a_private_segment_given_to_another_owner_is_refused() {
        if crate::sys::fs::euid() != 0 {
            eprintln!("SKIPPED: needs root, to give a segment to another uid");
            return;
        }
        let map = SharedSeg::<SegmentFile>::create(0o600).unwrap();
        let id = map.id();
        let h = &map.get().header;
        h.blocks.store(SEGMENT_BLOCKS as u32, Ordering::Relaxed);
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.pid_ns.store(thread::pid_namespace(), Ordering::Relaxed);
        h.magic.store(SEGMENT_MAGIC, Ordering::Release);
        let again = || SharedSeg::<SegmentFile>::attach(id).unwrap();
        assert!(validate(again()).is_some(), "as created: accepted");
        sysv::set_owner(id, 65534).unwrap();
        assert!(validate(again()).is_none(), "given away: refused");
    }
}

#[cfg(test)]
mod spare_tests {
    use super::*;

    fn owner(seg: &Segment, i: u32) -> u64 {
        seg.block(i).unwrap().owner.load(Ordering::Acquire)
    }

    /// A given-back block is the thread's spare (still taken, leased again at once, no
    /// process-wide lock); a second one is freed; the spare is freed when the thread
    /// ends.
    #[test]
    fn a_given_back_block_is_kept_as_the_spare_then_freed() {
        std::thread::spawn(|| {
            let (a, ia) = lease(false).unwrap();
            let (b, ib) = lease(false).unwrap();
            assert!((a.id(), ia) != (b.id(), ib));
            give_back(&a, ia);
            assert_ne!(owner(&a, ia), 0, "kept as the spare: still taken");
            give_back(&b, ib);
            assert_eq!(owner(&b, ib), 0, "a spare is already kept: freed");
            let (c, ic) = lease(false).unwrap();
            assert_eq!((c.id(), ic), (a.id(), ia), "the spare is leased first");
            give_back(&c, ic);
            (c, ic)
        })
        .join()
        .map(|(c, ic)| assert_eq!(owner(&c, ic), 0, "freed when its thread ended"))
        .unwrap();
    }
}
