//! The canonical drawing of procsync's shared memory, layout version 4: object files and
//! wait-block segments.
//!
//! # Object file (4096 bytes, one per object)
//!
//! | off  | size | field          | written                               | checked on open / use             |
//! |-----:|-----:|----------------|---------------------------------------|-----------------------------------|
//! |    0 |    8 | magic          | once, before publication              | must equal [`OBJECT_MAGIC`]       |
//! |    8 |    4 | version        | once                                  | must equal [`LAYOUT_VERSION`]     |
//! |   12 |    4 | kind           | once (1 event, 2 mutex, 3 sem, 4 timer)| must match the handle's kind     |
//! |   16 |    8 | object_id      | once, random, non-zero                | non-zero; lock order, WL-07       |
//! |   24 |    4 | param          | once: event/timer manual flag, sem max | range-checked per kind           |
//! |   28 |    4 | size           | once: 4096                            | must equal the file size          |
//! |   32 |    4 | queue_capacity | once: [`QUEUE_CAPACITY`]              | must equal it                     |
//! |   36 |    4 | creator_uid    | once (informational)                  | —                                 |
//! |   40 |    8 | pid_ns         | once: creator's PID namespace (inode) | must be ours (owner ids are tids) |
//! |   48 |   16 | reserved       | zero                                  | must be zero                      |
//! |   64 | 4032 | body           | 168 slots of 24 bytes: the control block and the queue | see below |
//!
//! ## The body: the control block at the object's colour, the queue around it
//!
//! Every object's hot words (its control block: lock, state, sequence numbers) sit on
//! one cache line. Were that line at the same page offset in every file, as it was in
//! layout version 2, a process touching eight or more objects in turn would map all
//! of their hot lines to one set of the CPU's L1 data cache (8-way: 64 sets of 64
//! bytes, indexed by address bits 6..=11) and evict them from each other on every
//! access: measured on the development machine, a wait + release cost 4.4 ns per
//! object while 7 objects were in use and 15–25 ns with 8 to 16. So the control block
//! takes three slots (72 bytes; the block is 64) at slot `8 * colour`, where `colour =
//! object_id % `[`CTL_COLOURS`] (21 colours: cache lines 1, 4, …, 61 of the page;
//! 192-byte steps keep both the block and the 24-byte queue slots whole and the block
//! 64-byte aligned). The queue's entries take the other 165 slots in order. Every
//! process derives the colour from the validated object id, so the colour needs no
//! field and cannot be forged apart from the id.
//!
//! | off (in the control block) | size | field |  written                    | checked on open / use             |
//! |-----:|-----:|----------------|---------------------------------------|-----------------------------------|
//! |    0 |    8 | lock           | holder identity \| CONTENDED (bit 63) | holder liveness checked on steal  |
//! |    8 |    4 | lock_seq       | bumped by an unlocker with sleepers: futex word of the lock |     |
//! |   12 |    4 | seq            | bumped by every locked state change: futex word of overflow sleepers | |
//! |   16 |    8 | state          | atomics only, see the bits below      | decoded, never trusted            |
//! |   24 |    4 | recursion      | mutex owner's recursion count         | ≥ 1 while owned (stale while not) |
//! |   28 |    4 | queue_len      | under the lock                        | clamped to the capacity           |
//! |   32 |    4 | overflow       | under the lock: sleepers not queued   | —                                 |
//! |   36 |    4 | all_waiters    | under the lock: wait-all entries queued (a hint) | recounted on repair    |
//! |   40 |   24 | timer          | reserved for waitable timers          | —                                 |
//!
//! Queue entry `k` (0 ≤ k < [`QUEUE_CAPACITY`], FCFS order, under the lock, each field
//! validated) is slot `k` below the control block and slot `k + 3` from it on.
//!
//! A queue entry names one waiter of this object: `who` (its thread identity: the
//! owner a mutex is handed to, read from the object, never from the waiter's block), `seg` (the id of the System V
//! segment holding the waiter's wait block, see below), `block` (index in that
//! segment), `gen` (the wait's generation: an entry whose generation no longer
//! matches its block's claim is stale and dropped) and `meta` (bits 0..=7 the object's
//! index in the waiter's list, bits 8..=15 [`ENTRY_ANY`] or [`ENTRY_ALL`], bit 16
//! [`ENTRY_GRANTED`]: this object was handed to the waiter, bit 17
//! [`ENTRY_GRANT_ABANDONED`]: ... as an abandoned mutex, bit 18
//! [`ENTRY_SEQ_SLEEPER`]: the waiter, a thread on a private block, also sleeps on this
//! manual-reset object's `seq`, so that a set wakes all such waiters with one
//! `FUTEX_WAKE`). Granted entries are kept
//! only for waiters whose block lives in a *public* segment: such a waiter confirms
//! its grant here, in the object, because anyone may write its claim word.
//!
//! ## `state` bits
//!
//! ```text
//!  event      bit 0      SIGNALED
//!             bits 32..47 BANKED   signals given back by cancelled waits while the event was
//!                         already set again (`obj::event`): each releases one more wait; 0 unless SIGNALED
//!  semaphore  bits 0..31 count (≤ max ≤ 0x7FFF_FFFF)
//!  mutex      bits 0..61 owner identity (tid | start time << 32), 0 = unowned
//!             bit 62     ABANDONED   set when the owner died; the next acquirer clears and reports it
//!  all kinds  bit 63     WAITERS     queue or overflow non-empty: every operation takes the lock
//! ```
//!
//! With WAITERS clear the state word is the whole truth and operations are a single
//! compare-and-swap (the fast path, no system call). With WAITERS set the state only
//! changes under the object lock, which is what lets a signaler hand the object to a
//! queued waiter at the moment of the signal.
//!
//! # Wait-block segment (System V shared memory, one or more per waiting process)
//!
//! | off | size  | field    |                                                     |
//! |----:|------:|----------|-----------------------------------------------------|
//! |   0 |     8 | magic    | [`SEGMENT_MAGIC`]                                   |
//! |   8 |     4 | version  | [`LAYOUT_VERSION`]                                  |
//! |  12 |     4 | blocks   | [`SEGMENT_BLOCKS`]                                  |
//! |  16 |     8 | pid_ns   | the creator's PID namespace: must be ours           |
//! |  24 |     4 | fallback | bumped and woken for a belled wait whose bell a signaller cannot reach (`park::bell`) |
//! |  28 |    36 | reserved | zero                                                |
//! |  64 | 832×N | blocks   | see below                                           |
//!
//! A wait block (832 bytes) belongs to one waiting thread for the duration of a wait:
//!
//! | off | size | field  |                                                          |
//! |----:|-----:|--------|----------------------------------------------------------|
//! |   0 |    8 | owner  | identity of the waiting thread, 0 = free                 |
//! |   8 |    8 | claim  | generation << 32 \| [`CLAIM_WAITING`], [`CLAIM_CANCELLED`], [`CLAIM_SIGNALED`] + i, [`CLAIM_ABANDONED`] + i |
//! |  16 |    4 | wake   | the one futex word the waiter sleeps on                 |
//! |  20 |    4 | pid    | the waiter's process (informational)                     |
//! |  24 |    4 | count  | wait-all: how many objects in `ids`; 0 for wait-any     |
//! |  28 |    4 | bell_fd | a detached wait's bell: the waiting process's descriptor of its pipe, + 1 (0 = none; `park::bell`) |
//! |  32 |    8 | bell_ino | that pipe's inode number                                 |
//! |  40 |   24 | reserved |                                                        |
//! |  64 |  512 | ids    | wait-all: the object ids of the set, in the waiter's order |
//! | 576 |  256 | fds    | wait-all: the waiter's descriptor of each object, so that a signaller that does not map one can fetch it (`pidfd_getfd`) |
//!
//! Segments are created by the waiting process, attached by id by signallers, and
//! marked for removal at once (they live while attached). A *private* segment (mode
//! 0600) serves waits on objects that only its owner can write; a *public* one (0666)
//! serves waits that involve a `Global\` object, whose signallers may be other users.
//! Nobody can resize a segment, so no writer can make its readers fault.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// "PSYNCOB1", little-endian.
pub(crate) const OBJECT_MAGIC: u64 = u64::from_le_bytes(*b"PSYNCOB1");
/// "PSYNCWS3", little-endian. 3: blocks carry a bell (`park::bell`), which a build
/// that knows only `FUTEX_WAKE` would not ring: such a build must not attach these.
pub(crate) const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"PSYNCWS3");
/// The only layout this build reads or writes. 4: an auto-reset event's `state` banks
/// given-back signals in bits 32..=47 (`obj::event`), which a version-3 build would
/// ignore, reviving or dropping them; so a version-3 file is refused, not shared.
pub(crate) const LAYOUT_VERSION: u32 = 4;
/// Size of every object file.
pub(crate) const OBJECT_SIZE: usize = 4096;
/// Queue entries per object; more waiters than this sleep on `seq` (the overflow path).
pub(crate) const QUEUE_CAPACITY: usize = BODY_SLOTS - CTL_SLOTS;
/// 24-byte slots after the header: the control block's and the queue's.
pub(crate) const BODY_SLOTS: usize = 168;
/// Slots the control block takes (72 bytes for its 64).
pub(crate) const CTL_SLOTS: usize = 3;
/// Where an object's control block may sit: slot `CTL_STEP * colour`, `colour =
/// object_id % CTL_COLOURS` (see "The body").
pub(crate) const CTL_COLOURS: usize = 21;
/// Slots from one colour's control block to the next: 192 bytes, a whole number of
/// both cache lines and queue entries.
pub(crate) const CTL_STEP: usize = 8;
/// Wait blocks per segment: a process that blocks more threads at once gets another.
pub(crate) const SEGMENT_BLOCKS: usize = 32;
/// Most objects one wait takes (Win32 `MAXIMUM_WAIT_OBJECTS`); a queue entry's index
/// and a wait block's id list are bounded by it.
pub const MAX_WAIT_OBJECTS: usize = 64;
/// Size of a wait-block segment.
pub(crate) const SEGMENT_SIZE: usize = 64 + SEGMENT_BLOCKS * BLOCK_SIZE;
/// Size of one wait block.
pub(crate) const BLOCK_SIZE: usize = 832;
/// Namespace key of `Global\` objects (a `Local\` namespace's key is its uid).
pub(crate) const GLOBAL_NS: u32 = u32::MAX;

/// Kind codes in the header.
pub(crate) const KIND_EVENT: u32 = 1;
pub(crate) const KIND_MUTEX: u32 = 2;
pub(crate) const KIND_SEMAPHORE: u32 = 3;
pub(crate) const KIND_TIMER: u32 = 4;

/// `state` bit 63: someone is queued or overflowed; every operation takes the lock.
pub(crate) const WAITERS: u64 = 1 << 63;
/// `state` bit 62 (mutex): the last owner died owning it.
pub(crate) const ABANDONED: u64 = 1 << 62;
/// `state` bit 0 (event): signaled.
pub(crate) const SIGNALED: u64 = 1;
/// `state` bits 32..=47 (auto-reset event): signals banked by give-backs (`obj::event`).
pub(crate) const BANKED_MASK: u64 = 0xFFFF << 32;
/// One banked signal.
pub(crate) const BANKED_ONE: u64 = 1 << 32;
/// `state` bits of a semaphore count.
pub(crate) const COUNT_MASK: u64 = 0x7FFF_FFFF;
/// `state` bits of a mutex owner.
pub(crate) const OWNER_MASK: u64 = (1 << 62) - 1;
/// Largest semaphore maximum (LM-02).
pub(crate) const MAX_SEMAPHORE: u32 = 0x7FFF_FFFF;

/// `lock` bit 63: someone sleeps on `lock_seq`.
pub(crate) const LOCK_CONTENDED: u64 = 1 << 63;

/// Entry `meta` kinds.
pub(crate) const ENTRY_ANY: u32 = 1;
pub(crate) const ENTRY_ALL: u32 = 2;
/// Entry `meta` bit 16: the object was handed to this waiter (public segments only).
pub(crate) const ENTRY_GRANTED: u32 = 1 << 16;
/// Entry `meta` bit 17: ... as an abandoned mutex.
pub(crate) const ENTRY_GRANT_ABANDONED: u32 = 1 << 17;
/// Queue entry `meta` bit 18: the waiter (a thread, private block, an `ANY` entry of a
/// manual-reset event or timer, queued behind another waiter) also sleeps on this
/// object's `seq`, so one `FUTEX_WAKE` of `seq` wakes it with every other such waiter
/// (`queue::hand_off`).
pub(crate) const ENTRY_SEQ_SLEEPER: u32 = 1 << 18;

/// Claim states (low 32 bits of `claim`).
pub(crate) const CLAIM_IDLE: u32 = 0;
pub(crate) const CLAIM_WAITING: u32 = 1;
pub(crate) const CLAIM_CANCELLED: u32 = 2;
pub(crate) const CLAIM_SIGNALED: u32 = 0x1_0000;
pub(crate) const CLAIM_ABANDONED: u32 = 0x2_0000;

/// Mapped types: plain old data made of fixed-width atomics.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only `Atomic*` integers and arrays of them
/// (valid for any bit pattern, in any address space, at any alignment the mapping
/// gives: mappings are page-aligned), and hold no pointers.
pub(crate) unsafe trait Shared {}

/// Bytes 0..64 of an object file.
#[repr(C)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub kind: AtomicU32,
    pub object_id: AtomicU64,
    pub param: AtomicU32,
    pub size: AtomicU32,
    pub queue_capacity: AtomicU32,
    pub creator_uid: AtomicU32,
    pub pid_ns: AtomicU64,
    pub reserved: [AtomicU64; 2],
}

/// Bytes 64..128 of an object file.
#[repr(C)]
pub(crate) struct Control {
    pub lock: AtomicU64,
    pub lock_seq: AtomicU32,
    pub seq: AtomicU32,
    pub state: AtomicU64,
    pub recursion: AtomicU32,
    pub queue_len: AtomicU32,
    pub overflow: AtomicU32,
    pub all_waiters: AtomicU32,
    pub timer: [AtomicU64; 3],
}

/// One waiter of an object.
#[repr(C)]
pub(crate) struct Entry {
    pub seg: AtomicU32,
    pub block: AtomicU32,
    pub generation: AtomicU32,
    pub meta: AtomicU32,
    pub who: AtomicU64,
}

/// A whole object file.
#[repr(C)]
pub(crate) struct ObjectFile {
    pub header: Header,
    /// The control block at the object's colour, queue entries in the other slots:
    /// reached through [`ObjectFile::ctl`] and [`ObjectFile::entry`] only.
    body: [Entry; BODY_SLOTS],
}

/// Where an object's control block sits (see "The body"): below [`CTL_COLOURS`], by
/// construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Colour(u8);

impl Colour {
    /// The colour of the object with id `id`.
    #[inline]
    pub(crate) fn of(id: u64) -> Colour {
        Colour((id % CTL_COLOURS as u64) as u8)
    }

    /// The control block's first slot.
    #[inline]
    pub(crate) fn slot(self) -> usize {
        CTL_STEP * usize::from(self.0)
    }
}

impl ObjectFile {
    /// The control block of an object of colour `colour`.
    #[inline]
    pub(crate) fn ctl(&self, colour: Colour) -> &Control {
        // SAFETY: slots `colour.slot()..colour.slot() + CTL_SLOTS` are inside `body`
        // (a `Colour` is below CTL_COLOURS, and the last colour's block fits: asserted
        // below), 72 bytes for the 64 of `Control`, 8-byte aligned like it (and 64-byte
        // aligned in a page-aligned mapping: 64 + 192 * colour); `Control` is `repr(C)`
        // atomics only, valid for any bytes, and no `Entry` of the queue overlaps it
        // (`entry` skips these slots), so the two views never alias.
        unsafe { &*self.body.as_ptr().add(colour.slot()).cast::<Control>() }
    }

    /// Queue entry `k` (< [`QUEUE_CAPACITY`]) of an object of colour `colour`.
    #[inline]
    pub(crate) fn entry(&self, colour: Colour, k: usize) -> &Entry {
        debug_assert!(k < QUEUE_CAPACITY);
        let at = colour.slot();
        &self.body[if k < at { k } else { k + CTL_SLOTS }]
    }
}

/// Bytes 0..64 of a wait-block segment.
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub blocks: AtomicU32,
    pub pid_ns: AtomicU64,
    pub fallback: AtomicU32,
    pub reserved0: AtomicU32,
    pub reserved: [AtomicU64; 4],
}

/// One waiting thread's block.
#[repr(C)]
pub(crate) struct Block {
    pub owner: AtomicU64,
    pub claim: AtomicU64,
    pub wake: AtomicU32,
    pub pid: AtomicU32,
    pub count: AtomicU32,
    pub bell_fd: AtomicU32,
    pub bell_ino: AtomicU64,
    pub reserved: [AtomicU32; 6],
    pub ids: [AtomicU64; 64],
    pub fds: [AtomicU32; 64],
}

/// A whole wait-block segment.
#[repr(C)]
pub(crate) struct SegmentFile {
    pub header: SegmentHeader,
    pub blocks: [Block; SEGMENT_BLOCKS],
}

// SAFETY: both are repr(C) structs of atomics and arrays of atomics only.
unsafe impl Shared for ObjectFile {}
// SAFETY: as above.
unsafe impl Shared for SegmentFile {}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Header>() == 64);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, object_id) == 16);
    assert!(offset_of!(Header, param) == 24);
    assert!(offset_of!(Header, size) == 28);
    assert!(offset_of!(Header, queue_capacity) == 32);
    assert!(offset_of!(Header, pid_ns) == 40);
    assert!(offset_of!(Header, reserved) == 48);
    assert!(size_of::<Control>() == 64);
    assert!(size_of::<Control>() <= CTL_SLOTS * size_of::<Entry>());
    assert!(core::mem::align_of::<Control>() <= core::mem::align_of::<Entry>());
    assert!(offset_of!(ObjectFile, body) == 64);
    // The last colour's block ends inside the body, every colour's block starts on a
    // cache line, and the queue keeps its capacity.
    assert!(CTL_STEP * (CTL_COLOURS - 1) + CTL_SLOTS <= BODY_SLOTS);
    assert!((CTL_STEP * size_of::<Entry>()).is_multiple_of(64));
    assert!(QUEUE_CAPACITY == 165);
    assert!(offset_of!(Control, lock_seq) == 8);
    assert!(offset_of!(Control, seq) == 12);
    assert!(offset_of!(Control, state) == 16);
    assert!(offset_of!(Control, recursion) == 24);
    assert!(offset_of!(Control, queue_len) == 28);
    assert!(offset_of!(Control, overflow) == 32);
    assert!(offset_of!(Control, timer) == 40);
    assert!(size_of::<Entry>() == 24);
    assert!(size_of::<ObjectFile>() == OBJECT_SIZE);
    assert!(offset_of!(Control, all_waiters) == 36);
    assert!(size_of::<Block>() == BLOCK_SIZE);
    assert!(offset_of!(Block, claim) == 8);
    assert!(offset_of!(Block, wake) == 16);
    assert!(offset_of!(Block, pid) == 20);
    assert!(offset_of!(Block, count) == 24);
    assert!(offset_of!(Block, ids) == 64);
    assert!(offset_of!(Block, fds) == 576);
    assert!(size_of::<SegmentHeader>() == 64);
    assert!(offset_of!(SegmentHeader, fallback) == 24);
    assert!(offset_of!(Block, bell_fd) == 28);
    assert!(offset_of!(Block, bell_ino) == 32);
    assert!(offset_of!(SegmentFile, blocks) == 64);
    assert!(size_of::<SegmentFile>() == SEGMENT_SIZE);
};

/// Packs a claim word.
pub(crate) fn claim(generation: u32, state: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(state)
}

/// Packs an entry's `meta`.
pub(crate) fn entry_meta(index: usize, kind: u32) -> u32 {
    (index as u32 & 0xFF) | (kind << 8)
}
