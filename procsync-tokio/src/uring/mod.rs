//! The io_uring path: a pending wait sleeps as an io_uring futex wait on its
//! doorbell, so that a signaller's `FUTEX_WAKE` completes it in the kernel, the ring's
//! descriptor turns readable in the runtime's own epoll, and the runtime thread wakes
//! up directly — one thread woken per wake-up, as for a blocking wait.
//!
//! One [`Driver`] per tokio runtime (found by [`driver`], keyed by the runtime's id):
//! a ring, a slot per submitted futex wait (its waker, then its result), and one task
//! on the runtime that waits for the ring to be readable and hands completions to their
//! slots. A futex wait whose sleep must end at an instant (a timer's due time) is
//! linked to a timeout; the periodic safety-net re-checks are served by one sweep
//! timer per driver ([`SWEEP_EVERY`]). No timer of the runtime is involved.
//!
//! The one invariant that matters: a futex wait submitted on a wait's words stays
//! outstanding only as long as the words are the wait's. A future dropped while its
//! futex wait is outstanding hands its [`DetachedWait`] to the slot ([`Driver::orphan`]),
//! which keeps it (and so its leased block) until the kernel reports the futex wait
//! finished; the driver's drop cancels and reaps whatever is still outstanding.
//!
//! A sleep whose wait can use the runtime's bell takes no futex wait of its own: its
//! child `bell` registers it, reads the bell, and keeps one futex wait per wait-block
//! segment on the segment's fallback word (docs/ASYNC.md, "How it works: bells").
//!
//! It must not know objects; it sleeps on words for a `DetachedWait`.
#![allow(unsafe_code)] // io_uring submissions: the kernel reads our memory

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use io_uring::{IoUring, opcode, squeue, types};
use procsync::detached::{Bell, BellKey, DetachedWait, SleepOn};
use tokio::io::unix::AsyncFd;

mod bell;

use bell::{BellFd, C_FUTEX, C_SWEEP, SpreadMap, count, refall};
pub use bell::{WakeCounts, wake_counts};

/// `FUTEX2_SIZE_U32`: a 32-bit futex, shared between processes (no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 0x02;
/// Wake-ups of any bitset (procsync wakes with plain `FUTEX_WAKE`).
const MATCH_ANY: u64 = 0xFFFF_FFFF;
/// The user data of the linked timeouts, whose completions say nothing we need.
const TIMEOUT_TAG: u64 = u64::MAX;
/// The user data of the sweep timer (see [`SWEEP_EVERY`]).
const SWEEP_TAG: u64 = u64::MAX - 1;
/// How often the driver looks for futex waits whose safety-net re-check is due. A
/// re-check that is only a safety net (`SleepOn::exact` false: every wait's, once a
/// second) gets no timeout of its own: one timer per driver, while such waits are
/// pending, cancels the due ones (so a wait re-checks within 2 s instead of 1 s). A
/// linked timeout per wait costs a kernel timer armed and cancelled, and a second
/// completion, on every wake-up.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Submission queue entries (the completion queue gets twice as many, and the kernel
/// keeps overflowing completions rather than dropping them).
const ENTRIES: u32 = 256;
/// How a futex wait ended, for [`DetachedWait::woken`] / [`DetachedWait::timed_out`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Woken,
    /// Cancelled: by its linked timeout (then its time has come), or by the kernel
    /// (the submitting thread exited): the caller tells which by the clock.
    Cancelled,
}

/// Memory a futex wait's entries point to (its futex vector, its linked timeout's
/// time), which the kernel reads when the entries are submitted — perhaps by a later
/// `io_uring_enter` than the one that queued them: kept with the slot until the
/// completion.
#[derive(Default)]
struct Keep {
    _vector: Box<[types::FutexWaitV]>,
    _timeout: Option<Box<types::Timespec>>,
}

enum Slot {
    Free,
    /// Submitted; the waker of the future that waits for it, when the sweep is to
    /// cancel it (a futex wait submitted without a timeout of its own), and what the
    /// entries point to.
    Pending(Option<Waker>, Option<Instant>, Keep),
    /// Completed with this result; the future has not collected it.
    Done(i32),
    /// Its future was dropped while the futex wait was outstanding: the wait is kept
    /// until the kernel is done with its words.
    Orphan(
        #[allow(dead_code)] Box<DetachedWait>,
        #[allow(dead_code)] Keep,
    ),
    /// A belled sleep (no request of its own): its waker, when the sweep is to end it,
    /// its bell key and its fallback word's address, and its doorbell word (address,
    /// value slept on).
    Belled(Option<Waker>, Option<Instant>, BellKey, usize, (usize, u32)),
    /// The futex wait on a segment's fallback word (at this address).
    Fallback(usize),
}

#[derive(Default)]
struct Slots {
    slots: Vec<(u32, Slot)>,
    free: Vec<u32>,
    /// The sweep timer is submitted.
    sweeping: bool,
    /// Belled sleeps by bell key.
    belled: SpreadMap<BellKey, u64>,
    /// Fallback words by address, and the slot of each one's outstanding futex wait.
    fallbacks: SpreadMap<usize, u64>,
    /// Times the bell turned readable since its pipe was last read.
    unread: u32,
}

/// A slot's key (an io_uring request's user data): index and generation.
fn key(index: usize, generation: u32) -> u64 {
    index as u64 | u64::from(generation) << 32
}

/// Queues a cancel of request `key`, submitting first if the queue is full; `false`
/// if it could not be queued.
fn queue_cancel(ring: &mut IoUring, key: u64) -> bool {
    let cancel = opcode::AsyncCancel::new(key).build().user_data(TIMEOUT_TAG);
    // SAFETY: a cancel request names no memory of ours.
    while unsafe { ring.submission().push(&cancel) }.is_err() {
        if ring.submit().is_err() {
            return false;
        }
    }
    true
}

impl Slots {
    fn insert(&mut self, waker: Waker, sweep_at: Option<Instant>, keep: Keep) -> u64 {
        self.put(Slot::Pending(Some(waker), sweep_at, keep))
    }

    fn put(&mut self, s: Slot) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, Slot::Free));
                (self.slots.len() - 1) as u32
            }
        };
        let (generation, slot) = &mut self.slots[index as usize];
        *generation = generation.wrapping_add(1);
        *slot = s;
        key(index as usize, *generation)
    }

    fn peek(&self, key: u64) -> Option<&Slot> {
        let (generation, slot) = self.slots.get((key & 0xFFFF_FFFF) as usize)?;
        (*generation == (key >> 32) as u32).then_some(slot)
    }

    fn get(&mut self, key: u64) -> Option<&mut Slot> {
        let (generation, slot) = self.slots.get_mut((key & 0xFFFF_FFFF) as usize)?;
        (*generation == (key >> 32) as u32).then_some(slot)
    }

    fn release(&mut self, key: u64) -> Option<Slot> {
        let slot = self.get(key)?;
        let old = std::mem::replace(slot, Slot::Free);
        self.free.push((key & 0xFFFF_FFFF) as u32);
        Some(old)
    }

    fn outstanding(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Pending(..) | Slot::Orphan(..) | Slot::Fallback(..)))
            .count()
    }
}

/// A runtime's ring and the futex waits submitted to it.
pub(crate) struct Driver {
    /// The ring's descriptor in the runtime's epoll (dropped before the ring closes it).
    fd: AsyncFd<RingFd>,
    /// The runtime's bell, in its epoll (`None`: it could not be made; every sleep is
    /// a futex wait then).
    bell: Option<AsyncFd<BellFd>>,
    ring: Mutex<IoUring>,
    slots: Mutex<Slots>,
    /// Cleared when the completion task ends (the runtime shuts down).
    alive: AtomicBool,
    /// The process that made the ring: a forked child leaves the parent's requests be.
    pid: u32,
    /// The sweep timer's period, read by the kernel when its entry is submitted
    /// (dropped after `ring`).
    every: Box<types::Timespec>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct RingFd(RawFd);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Driver {
    /// Submits a futex wait on `on`'s words (linked to a timeout at `on.until()` when
    /// that is exact; else the sweep serves it). Returns the key to
    /// [`poll`](Self::poll) it with.
    pub(crate) fn submit(&self, on: &SleepOn, waker: Waker) -> std::io::Result<u64> {
        let linked = on.until().filter(|_| on.exact());
        let swept = on.until().filter(|_| !on.exact());
        let words = on.words();
        let keep = Keep {
            _vector: if words.len() > 1 {
                words
                    .iter()
                    .map(|w| {
                        types::FutexWaitV::new()
                            .uaddr(w.addr() as u64)
                            .val(u64::from(w.expected()))
                            .flags(FUTEX2_SIZE_U32)
                    })
                    .collect()
            } else {
                Box::default()
            },
            _timeout: linked
                .map(|t| Box::new(timespec(t.saturating_duration_since(Instant::now())))),
        };
        let wait = match words {
            [w] => opcode::FutexWait::new(
                w.addr().cast::<u32>(),
                u64::from(w.expected()),
                MATCH_ANY,
                FUTEX2_SIZE_U32,
            )
            .build(),
            _ => opcode::FutexWaitV::new(keep._vector.as_ptr(), keep._vector.len() as u32).build(),
        };
        let mut entries: Vec<squeue::Entry> = match &keep._timeout {
            Some(ts) => vec![
                wait.flags(squeue::Flags::IO_LINK),
                opcode::LinkTimeout::new(&**ts)
                    .build()
                    .user_data(TIMEOUT_TAG),
            ],
            None => vec![wait],
        };
        let mut ring = lock(&self.ring);
        let (key, sweep) = {
            let mut slots = lock(&self.slots);
            // The boxes move into the slot: their heap addresses, which the entries
            // hold, stay valid until the completion.
            let key = slots.insert(waker, swept, keep);
            let sweep = swept.is_some() && !std::mem::replace(&mut slots.sweeping, true);
            (key, sweep)
        };
        entries[0] = entries[0].clone().user_data(key);
        if sweep {
            entries.push(
                opcode::Timeout::new(&*self.every)
                    .build()
                    .user_data(SWEEP_TAG),
            );
        }
        let fits = |ring: &mut IoUring| {
            let sq = ring.submission();
            sq.capacity() - sq.len() >= entries.len()
        };
        if !fits(&mut ring) && (ring.submit().is_err() || !fits(&mut ring)) {
            // Nothing of ours is queued: undo.
            let mut slots = lock(&self.slots);
            slots.release(key);
            if sweep {
                slots.sweeping = false;
            }
            return Err(std::io::Error::other(
                "the io_uring submission queue stays full",
            ));
        }
        {
            let mut sq = ring.submission();
            // SAFETY: the words stay mapped and the wait's own while the futex wait is
            // outstanding (the module invariant); the futex vector and the timeout's
            // time live in the slot until the completion; the sweep's period lives in
            // the driver, after the ring. There is room (checked above).
            let pushed = unsafe { sq.push_multiple(&entries) };
            debug_assert!(pushed.is_ok(), "room was checked");
        }
        // From here the entries are queued: whatever happens, the slot stays until
        // the completion.
        enter(&mut ring);
        Ok(key)
    }

    /// The end of futex wait `key`, once it has completed.
    pub(crate) fn poll(&self, key: u64, cx: &mut Context<'_>) -> Poll<std::io::Result<Ended>> {
        let mut slots = lock(&self.slots);
        match slots.get(key) {
            Some(Slot::Done(res)) => {
                let res = *res;
                slots.release(key);
                Poll::Ready(match -res {
                    // A futex waitv completes with the index of the word that woke it.
                    r if r <= 0 => Ok(Ended::Woken),
                    libc_errno::EAGAIN | libc_errno::EINTR => Ok(Ended::Woken),
                    libc_errno::ECANCELED | libc_errno::ETIME => Ok(Ended::Cancelled),
                    e => Err(std::io::Error::from_raw_os_error(e)),
                })
            }
            Some(Slot::Pending(w, _, _) | Slot::Belled(w, ..)) => {
                if !self.alive.load(Ordering::Acquire) {
                    return Poll::Ready(Err(std::io::Error::other(
                        "the tokio runtime that served this wait has shut down",
                    )));
                }
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            _ => Poll::Ready(Err(std::io::Error::other("unknown io_uring wait"))),
        }
    }

    /// The future of futex wait `key` is gone: keep `wait` until the kernel is done
    /// with its words (at once if it already is), and ask the kernel to cancel.
    pub(crate) fn orphan(&self, key: u64, mut wait: Box<DetachedWait>) {
        // Gives back whatever a signaller handed over (TO-06); the block stays.
        let _ = wait.cancel();
        let mut ring = lock(&self.ring);
        {
            let mut slots = lock(&self.slots);
            match slots.get(key) {
                Some(s @ Slot::Pending(..)) => {
                    let Slot::Pending(_, _, keep) = std::mem::replace(s, Slot::Free) else {
                        unreachable!("matched Pending");
                    };
                    *s = Slot::Orphan(wait, keep);
                }
                Some(Slot::Done(_)) => {
                    slots.release(key);
                    return; // `wait` drops here: the kernel is done
                }
                Some(Slot::Belled(_, _, bell, _, _)) => {
                    // No request of its own: the kernel never slept on its words.
                    let bell = *bell;
                    slots.unbell(bell, key);
                    slots.release(key);
                    return;
                }
                _ => return,
            }
        }
        // Not queued: the orphan stays until its completion all the same, and the sweep
        // or the driver's drop cancels it.
        if queue_cancel(&mut ring, key) {
            let _ = ring.submit();
        }
    }

    /// Hands every completion to its slot, and wakes the futures concerned.
    fn drain(&self) {
        let mut wake = Vec::new();
        {
            let mut ring = lock(&self.ring);
            let mut slots = lock(&self.slots);
            let mut swept = false;
            let mut fallbacks = Vec::new();
            loop {
                for cqe in ring.completion() {
                    let key = cqe.user_data();
                    if key == TIMEOUT_TAG {
                        continue;
                    }
                    if key == SWEEP_TAG {
                        swept = true;
                        continue;
                    }
                    match slots.get(key) {
                        Some(s @ Slot::Pending(..)) => {
                            if let Slot::Pending(Some(w), _, _) =
                                std::mem::replace(s, Slot::Done(cqe.result()))
                            {
                                wake.push(w);
                                count(C_FUTEX, 1);
                            }
                        }
                        Some(Slot::Orphan(..)) => {
                            slots.release(key);
                        }
                        Some(Slot::Fallback(addr)) => {
                            let addr = *addr;
                            slots.release(key);
                            fallbacks.push(addr);
                        }
                        _ => {}
                    }
                }
                // Thousands of waits completing at once overflow the completion queue:
                // the kernel keeps the rest aside until an `io_uring_enter` with
                // GETEVENTS (which `submit` makes when the overflow flag is up).
                if !ring.submission().cq_overflow() || ring.submit().is_err() {
                    break;
                }
            }
            for addr in fallbacks {
                refall(&mut slots, addr, &mut wake);
            }
            if swept {
                sweep(&mut ring, &mut slots, &self.every, &mut wake);
            }
        }
        for w in wake {
            w.wake();
        }
    }

    fn stop(&self) {
        self.alive.store(false, Ordering::Release);
        let wakers: Vec<Waker> = lock(&self.slots)
            .slots
            .iter_mut()
            .filter_map(|(_, s)| match s {
                Slot::Pending(w, _, _) | Slot::Belled(w, ..) => w.take(),
                _ => None,
            })
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let ring = self.ring.get_mut().unwrap_or_else(|e| e.into_inner());
        let slots = self.slots.get_mut().unwrap_or_else(|e| e.into_inner());
        if self.pid != std::process::id() {
            // A forked child: the requests, and the waits behind them, are the parent's.
            for (_, s) in slots.slots.drain(..) {
                std::mem::forget(s);
            }
            return;
        }
        // Cancel and reap every futex wait still outstanding before the waits that
        // own its words (orphans) are dropped with the slots.
        let keys: Vec<u64> = slots
            .slots
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| {
                matches!(s, Slot::Pending(..) | Slot::Orphan(..) | Slot::Fallback(..))
            })
            .map(|(i, (g, _))| key(i, *g))
            .collect();
        for k in keys {
            queue_cancel(ring, k);
        }
        for _ in 0..1000 {
            if slots.outstanding() == 0 {
                return;
            }
            if ring.submit_and_wait(1).is_err() {
                break;
            }
            for cqe in ring.completion() {
                let key = cqe.user_data();
                if key != TIMEOUT_TAG {
                    slots.release(key);
                }
            }
        }
        // The kernel did not report them all: keep the remaining waits (their leased
        // blocks) for the life of the process rather than reuse words it may still
        // sleep on.
        for (_, s) in slots.slots.drain(..) {
            if let Slot::Orphan(w, _) = s {
                std::mem::forget(w);
            }
        }
    }
}

/// Submits what is queued. A failed enter leaves the entries queued for the next one
/// (any submission, the sweep, a drain), so it is retried a few times, then left.
fn enter(ring: &mut IoUring) {
    for _ in 0..8 {
        match ring.submit() {
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc_errno::EINTR | libc_errno::EAGAIN | libc_errno::EBUSY)
                ) =>
            {
                std::thread::yield_now();
            }
            Err(_) => break,
        }
    }
}

fn timespec(d: std::time::Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs())
        .nsec(d.subsec_nanos())
}

/// The sweep timer fired: cancels every futex wait whose safety-net re-check is due
/// (its future then re-checks, as after a timeout), and re-arms while any such wait is
/// pending. Called with both locks held.
fn sweep(ring: &mut IoUring, slots: &mut Slots, every: &types::Timespec, wake: &mut Vec<Waker>) {
    let now = Instant::now();
    let mut due = Vec::new();
    let mut more = false;
    let mut belled_due = Vec::new();
    for (i, (generation, slot)) in slots.slots.iter_mut().enumerate() {
        if let Slot::Belled(_, sweep_at, ..) = slot {
            if sweep_at.is_some_and(|t| t <= now) {
                belled_due.push(key(i, *generation));
            } else if sweep_at.is_some() {
                more = true;
            }
        }
        if let Slot::Orphan(..) = slot {
            // An orphan whose cancel could not be queued: cancel it now (a repeat is
            // harmless: the kernel finds nothing to cancel).
            due.push(key(i, *generation));
            more = true;
        }
        if let Slot::Pending(_, sweep_at @ Some(_), _) = slot {
            if sweep_at.is_some_and(|t| t <= now) {
                *sweep_at = None;
                due.push(key(i, *generation));
            } else {
                more = true;
            }
        }
    }
    let before = wake.len();
    for k in belled_due {
        // As if cancelled by a timeout: the future re-checks.
        wake.extend(slots.ring(k, -libc_errno::ECANCELED));
    }
    count(C_SWEEP, wake.len() - before + due.len());
    slots.sweeping = more;
    for k in due {
        if !queue_cancel(ring, k) {
            // Nor may the timer be: the next submission arms it again.
            slots.sweeping = false;
            return;
        }
    }
    if more {
        let timer = opcode::Timeout::new(every).build().user_data(SWEEP_TAG);
        // SAFETY: the period lives in the driver, which outlives its ring.
        while unsafe { ring.submission().push(&timer) }.is_err() {
            if ring.submit().is_err() {
                slots.sweeping = false;
                return;
            }
        }
    }
    let _ = ring.submit();
}

/// Linux error numbers (the completions carry them negated).
mod libc_errno {
    pub const EINTR: i32 = 4;
    pub const EAGAIN: i32 = 11;
    pub const ETIME: i32 = 62;
    pub const ECANCELED: i32 = 125;
    pub const EBUSY: i32 = 16;
}

/// The switch of [`set_io_uring`]: 0 until decided (then `PROCSYNC_TOKIO_URING=0`
/// decides), 1 on by default, 2 off, 3 on by a call.
static SWITCH: AtomicU8 = AtomicU8::new(0);

/// Turns the io_uring path on or off for the waits that start from now on (it is on by
/// default, unless the environment has `PROCSYNC_TOKIO_URING=0`). Off, every wait is
/// served by the reactor threads, as on a kernel without io_uring futex waits.
///
/// In a build with `panic = "abort"` the io_uring path is off unless this is called
/// with `true`: whether a runtime has I/O can only be learnt from tokio by catching the
/// panic of a registration, which such a build cannot do; the call says that every
/// runtime that polls the waits has I/O enabled.
pub fn set_io_uring(on: bool) {
    SWITCH.store(if on { 3 } else { 2 }, Ordering::Relaxed);
}

/// Whether new waits in a tokio runtime with I/O enabled take the io_uring path: it is
/// switched on ([`set_io_uring`]) and the kernel lets this process create a ring with
/// futex waits and linked timeouts (io_uring may be disabled by sysctl or seccomp).
pub fn io_uring_available() -> bool {
    let on = match SWITCH.load(Ordering::Relaxed) {
        0 => {
            // Read once: a later `set_io_uring` still wins.
            let on = std::env::var_os("PROCSYNC_TOKIO_URING").is_none_or(|v| v != "0");
            let _ = SWITCH.compare_exchange(
                0,
                if on { 1 } else { 2 },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            matches!(SWITCH.load(Ordering::Relaxed), 1 | 3)
        }
        s => s == 1 || s == 3,
    };
    on && kernel_has_futex_waits()
}

fn kernel_has_futex_waits() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        let Ok(ring) = IoUring::new(2) else {
            return false;
        };
        let mut probe = io_uring::Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err() {
            return false;
        }
        [
            opcode::FutexWait::CODE,
            opcode::FutexWaitV::CODE,
            opcode::LinkTimeout::CODE,
            opcode::AsyncCancel::CODE,
        ]
        .iter()
        .all(|&op| probe.is_supported(op))
    })
}

/// Per runtime, its driver; `None` for a runtime built without I/O (`enable_io`).
type Registry = HashMap<tokio::runtime::Id, Option<Weak<Driver>>>;

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    lock(REGISTRY.get_or_init(Default::default))
}

thread_local! {
    static CACHED: std::cell::RefCell<Option<(tokio::runtime::Id, Weak<Driver>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The driver of the runtime we are polled in; `None` when there is none (another
/// executor, a runtime without I/O) or io_uring is unusable: the caller then uses the
/// reactor threads.
pub(crate) fn driver() -> Option<Arc<Driver>> {
    if !io_uring_available() {
        return None;
    }
    if cfg!(panic = "abort") && SWITCH.load(Ordering::Relaxed) != 3 {
        return None; // see `set_io_uring`
    }
    let rt = tokio::runtime::Handle::try_current().ok()?;
    let id = rt.id();
    let cached = CACHED.with(|c| match &*c.borrow() {
        Some((i, w)) if *i == id => w.upgrade(),
        _ => None,
    });
    if let Some(d) = cached.filter(|d| d.alive.load(Ordering::Acquire)) {
        return Some(d);
    }
    let d = {
        let mut reg = registry();
        match reg.get(&id) {
            Some(None) => return None,
            Some(Some(w)) if w.upgrade().is_some_and(|d| d.alive.load(Ordering::Acquire)) => {
                w.upgrade()?
            }
            _ => {
                reg.retain(|_, w| w.as_ref().is_none_or(|w| w.strong_count() > 0));
                let Some(d) = start(&rt) else {
                    reg.insert(id, None);
                    return None;
                };
                reg.insert(id, Some(Arc::downgrade(&d)));
                d
            }
        }
    };
    CACHED.with(|c| *c.borrow_mut() = Some((id, Arc::downgrade(&d))));
    Some(d)
}

/// Runs `f`, catching a panic without reporting it through the panic hook when it
/// happens on this thread (other threads' panics are reported as usual).
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;
    let prev: Arc<Hook> = Arc::new(std::panic::take_hook());
    let theirs = prev.clone();
    let me = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            theirs(info);
        }
    }));
    let r = std::panic::catch_unwind(f).ok();
    drop(std::panic::take_hook()); // ours, with its clone of `prev`
    match Arc::try_unwrap(prev) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(shared) => std::panic::set_hook(Box::new(move |info| shared(info))),
    }
    r
}

/// A new driver for runtime `rt`, with its completion task (which keeps it for the
/// runtime's life).
fn start(rt: &tokio::runtime::Handle) -> Option<Arc<Driver>> {
    let ring = IoUring::new(ENTRIES).ok()?;
    let raw = ring.as_raw_fd();
    // tokio has no way to ask whether a runtime has I/O but to try: registration panics
    // in one without. The panic is caught (that runtime's waits then use the reactor
    // threads), and kept quiet: for this thread, for this one call, the panic hook is
    // skipped; every other thread's panics still reach the program's hook.
    // (With `panic = "abort"`, only after `set_io_uring(true)` said the runtimes have
    // I/O.)
    let fd = quietly(|| {
        let _enter = rt.enter();
        // SAFETY: the ring's descriptor stays open as long as the `AsyncFd`: both end up
        // in the `Driver`, whose `fd` field is dropped before its `ring`.
        unsafe { AsyncFd::register_with_interest(RingFd(raw), tokio::io::Interest::READABLE) }.ok()
    })
    .flatten()?;
    let bells = std::env::var_os("PROCSYNC_TOKIO_BELL").is_none_or(|v| v != "0");
    let bell = bells.then(Bell::new).and_then(Result::ok).and_then(|b| {
        let _enter = rt.enter();
        // SAFETY: the `AsyncFd` owns the bell, so the descriptor stays open while it is
        // registered.
        unsafe { AsyncFd::register_with_interest(BellFd(b), tokio::io::Interest::READABLE) }.ok()
    });
    let d = Arc::new(Driver {
        fd,
        bell,
        ring: Mutex::new(ring),
        slots: Mutex::new(Slots::default()),
        alive: AtomicBool::new(true),
        pid: std::process::id(),
        every: Box::new(timespec(SWEEP_EVERY)),
    });
    rt.spawn(complete(d.clone()));
    Some(d)
}

/// The completion task: drains the ring whenever it turns readable, until the runtime
/// drops it.
async fn complete(d: Arc<Driver>) {
    struct Stop(Arc<Driver>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let d = Stop(d);
    let Some(bell) = &d.0.bell else {
        loop {
            let Ok(mut ready) = d.0.fd.readable().await else {
                return;
            };
            d.0.drain();
            // Readiness is cleared only if no new completion was signalled since
            // `readable` returned (tokio compares ticks), so none is missed in between.
            ready.clear_ready();
            d.0.drain();
        }
    };
    loop {
        let served = std::future::poll_fn(|cx| {
            let mut any = false;
            match bell.poll_read_ready(cx) {
                Poll::Ready(Ok(mut ready)) => {
                    // Cleared before the read: a message written after it turns the
                    // pipe readable again.
                    ready.clear_ready();
                    d.0.drain_bell();
                    any = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            match d.0.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut ready)) => {
                    d.0.drain();
                    ready.clear_ready();
                    d.0.drain();
                    any = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if any {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await;
        if served.is_err() {
            return;
        }
    }
}
