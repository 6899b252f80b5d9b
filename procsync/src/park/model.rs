//! Model checks of the wait protocol with loom: every interleaving (within a preemption
//! bound) of a few threads standing in for processes, running `park::word`'s functions —
//! the very code that runs on a block in shared memory — on loom's atomics.
//!
//! What stands for what (docs/ARCHITECTURE.md, "The protocol, model-checked"):
//! - a wait block: a [`Block`] of two loom atomics, claim (u64) and doorbell (u32);
//! - the kernel's futex on the doorbell: [`Futex`], a loom mutex + condvar, whose wait
//!   compares the word and sleeps atomically with respect to a wake, as the kernel's
//!   hash-bucket lock makes it; a wake with nobody asleep wakes nobody;
//! - a timeout: a timer thread that fires (wakes the futex with "expired") at any point
//!   (loom's condvar has no timed wait), or a deadline already past when the waiter
//!   sleeps ([`Deadline::Passed`]);
//! - an object and its lock: a loom mutex over a unit count and a queue of entries
//!   `{waiter, generation}`; wait-all sets lock their objects in one global order.
//!
//! The waiter and signaller routines below follow `wait::any::block` / `wait::all::attempt`
//! (waiter) and `obj::queue::hand_off` / `complete_all` (signaller), reduced to the
//! steps that touch the words. A lost wake-up is a waiter asleep when every thread
//! that could ring it has ended ("lost wake-up"; loom's own deadlock check backs it);
//! the other properties are assertions.
//!
//! Bounded by default (`LOOM_PREEMPTIONS_DEFAULT` preemptions: about 5 s in a release
//! build); `PROCSYNC_LOOM_LONG=1` explores `LOOM_PREEMPTIONS_LONG` (a few minutes on
//! two cores), and loom's own `LOOM_MAX_PREEMPTIONS` sets any other bound.
//!
//! Test-only (loom is a dev-dependency). It must not grow its own copy of the word
//! protocol: every transition of the two words goes through `word`, so that what is
//! checked is what ships.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::word::{self, Claim, Word32, Word64};
use crate::shm::layout::{CLAIM_IDLE, claim as pack};

impl Word64 for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
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
    fn fetch_or(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_or(self, value, order)
    }
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
}

/// Preemptions explored by default: enough for every race below to be hit (each is
/// one or two preemptions deep), small enough for seconds.
const LOOM_PREEMPTIONS_DEFAULT: usize = 3;
/// Preemptions explored with `PROCSYNC_LOOM_LONG=1` (4: ~30 s, 5: 1.5 to 4 min; about
/// eightfold per step).
const LOOM_PREEMPTIONS_LONG: usize = 5;

/// Runs `f` under loom, within a preemption bound (module doc).
fn check(f: impl Fn() + Send + Sync + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        let long = std::env::var_os("PROCSYNC_LOOM_LONG").is_some_and(|v| v == "1");
        b.preemption_bound = Some(if long {
            LOOM_PREEMPTIONS_LONG
        } else {
            LOOM_PREEMPTIONS_DEFAULT
        });
    }
    b.check(f);
}

/// How a sleep ends besides a wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Deadline {
    /// No deadline (INFINITE).
    Never,
    /// The deadline has passed by the time the waiter would sleep: the futex wait
    /// times out at once.
    Passed,
    /// A timer thread fires [`Futex::expire`] at some point.
    Timer,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Woke {
    Woken,
    Again,
    TimedOut,
    /// Asleep with nobody left to wake it ([`Futex::close`]): a lost wake-up.
    Orphaned,
}

#[derive(Default)]
struct FutexState {
    sleepers: usize,
    /// Wakes given to sleepers, not yet taken.
    tokens: usize,
    expired: bool,
    /// Threads that may still wake this futex; none left: a sleeper would sleep for
    /// ever, and is told so ([`Woke::Orphaned`]) rather than left to a loom deadlock,
    /// which aborts the test binary instead of failing one test.
    wakers: usize,
}

/// The kernel's futex, for one word (see the module doc).
struct Futex {
    state: Mutex<FutexState>,
    cv: Condvar,
}

impl Futex {
    /// A futex that `wakers` threads may wake (each says [`Futex::done`] when it ends).
    fn new(wakers: usize) -> Futex {
        Futex {
            state: Mutex::new(FutexState {
                wakers,
                ..FutexState::default()
            }),
            cv: Condvar::new(),
        }
    }

    /// `FUTEX_WAIT(word, expected)`.
    fn wait(&self, word: &AtomicU32, expected: u32, deadline: Deadline) -> Woke {
        let mut s = self.state.lock().unwrap();
        if deadline == Deadline::Passed || (deadline == Deadline::Timer && s.expired) {
            return Woke::TimedOut;
        }
        // The kernel reads the word after a full barrier, under the bucket lock.
        if word.load(Ordering::SeqCst) != expected {
            return Woke::Again;
        }
        s.sleepers += 1;
        loop {
            if s.tokens > 0 {
                s.tokens -= 1;
                return Woke::Woken;
            }
            if deadline == Deadline::Timer && s.expired {
                s.sleepers -= 1;
                return Woke::TimedOut;
            }
            if s.wakers == 0 {
                s.sleepers -= 1;
                return Woke::Orphaned;
            }
            s = self.cv.wait(s).unwrap();
        }
    }

    /// `FUTEX_WAKE(word, 1)`: how many it woke.
    fn wake(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        if s.sleepers == 0 {
            return 0;
        }
        s.sleepers -= 1;
        s.tokens += 1;
        self.cv.notify_all();
        1
    }

    /// The waiter's deadline passes.
    fn expire(&self) {
        self.state.lock().unwrap().expired = true;
        self.cv.notify_all();
    }

    /// One of the threads that may wake this futex is done with it.
    fn done(&self) {
        self.state.lock().unwrap().wakers -= 1;
        self.cv.notify_all();
    }

    fn sleepers(&self) -> usize {
        self.state.lock().unwrap().sleepers
    }
}

/// A wait block: the two words, and the futex on the doorbell.
struct Block {
    claim: AtomicU64,
    wake: AtomicU32,
    futex: Futex,
}

impl Block {
    /// A block whose doorbell `wakers` other threads may ring.
    fn new(wakers: usize) -> Block {
        // As a segment leaves a block: idle, at some generation.
        Block {
            claim: AtomicU64::new(pack(41, CLAIM_IDLE)),
            wake: AtomicU32::new(0),
            futex: Futex::new(wakers),
        }
    }

    /// `park::ring`: the ring, and a `FUTEX_WAKE` only if the waiter announced a sleep.
    fn ring(&self) {
        if word::ring(&self.wake) {
            self.futex.wake();
        }
    }
}

/// The waiter's side once it is queued (`wait::any::block` from the spin on): spin
/// `spins` checks of the claim, then announce / check / sleep until the claim changes
/// or the deadline passes, then cancel. Returns the claim that won over the cancel
/// (`None`: cancelled, i.e. timed out).
fn await_claim(b: &Block, generation: u32, spins: usize, deadline: Deadline) -> Option<Claim> {
    let spun = (0..spins).any(|_| word::read(&b.claim, generation) != Claim::Waiting);
    if !spun {
        loop {
            let bell = word::announce(&b.wake);
            if word::read(&b.claim, generation) != Claim::Waiting {
                break;
            }
            match b.futex.wait(&b.wake, bell, deadline) {
                Woke::TimedOut => break,
                Woke::Orphaned => panic!("lost wake-up: asleep, and nobody left to ring"),
                Woke::Woken | Woke::Again => {}
            }
        }
    }
    word::cancel(&b.claim, generation).err()
}

/// An entry in an object's queue: whose block, which wait.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Entry {
    who: usize,
    generation: u32,
}

/// An object under its lock: free units (a semaphore; a mutex or auto event is one
/// unit) and the queue.
#[derive(Default)]
struct Obj {
    units: u32,
    queue: VecDeque<Entry>,
    /// Who was queued, in queue order, and who was handed a unit by a signaller.
    pushed: Vec<usize>,
    handed: Vec<usize>,
    /// Ring claimed waiters only once the lock is released (`park::ring_after_unlock`,
    /// the path of public blocks), rather than under it.
    ring_after_unlock: bool,
}

impl Obj {
    fn remove_wait(&mut self, who: usize, generation: u32) {
        self.queue
            .retain(|e| !(e.who == who && e.generation == generation));
    }
}

/// `obj::queue::hand_off` for wait-any entries: while units are free, the oldest live
/// entry gets one (taken on its behalf, then claimed; a lost claim is undone). Returns
/// the waiters to ring once the lock is released.
#[must_use]
fn hand_off(o: &mut Obj, blocks: &[Arc<Block>]) -> Vec<usize> {
    let mut later = Vec::new();
    // Every entry met is removed: served, stale, or lost to another claim.
    while o.units > 0 {
        let Some(e) = o.queue.pop_front() else { break };
        let b = &blocks[e.who];
        if !word::is_waiting(&b.claim, e.generation) {
            continue;
        }
        o.units -= 1;
        if !word::try_claim(&b.claim, e.generation, word::granted(0, false)) {
            o.units += 1;
            continue;
        }
        o.handed.push(e.who);
        if o.ring_after_unlock {
            later.push(e.who);
        } else {
            b.ring();
        }
    }
    later
}

/// A single wait on `obj` by waiter `who` (`wait::any::block`, n = 1): take a free unit
/// under the lock, or queue and await a claim. `true` when it got a unit.
fn wait_one(
    obj: &Mutex<Obj>,
    blocks: &[Arc<Block>],
    who: usize,
    spins: usize,
    deadline: Deadline,
) -> bool {
    let b = &blocks[who];
    let generation = word::arm(&b.claim, &b.wake);
    {
        let mut o = obj.lock().unwrap();
        if o.units > 0 {
            o.units -= 1;
            assert!(word::claim_self(
                &b.claim,
                generation,
                word::granted(0, false)
            ));
            return true;
        }
        o.queue.push_back(Entry { who, generation });
        o.pushed.push(who);
    }
    match await_claim(b, generation, spins, deadline) {
        Some(c) => {
            assert_eq!(c, Claim::Signaled(0), "only a grant beats the cancel");
            true
        }
        None => {
            // Timed out: leave no entry behind (the next holder would drop it anyway).
            obj.lock().unwrap().remove_wait(who, generation);
            false
        }
    }
}

/// A signal of one unit: under the lock, add it and hand off.
fn release(obj: &Mutex<Obj>, blocks: &[Arc<Block>]) {
    let later = {
        let mut o = obj.lock().unwrap();
        o.units += 1;
        hand_off(&mut o, blocks)
    };
    for who in later {
        blocks[who].ring();
    }
}

/// An object with no units, ringing under its lock or after.
fn new_obj(ring_after_unlock: bool) -> Arc<Mutex<Obj>> {
    Arc::new(Mutex::new(Obj {
        ring_after_unlock,
        ..Obj::default()
    }))
}

/// Both ways of ringing.
const RING_MODES: [bool; 2] = [false, true];

/// (a) One waiter, one signaller, no deadline: the waiter always gets the unit and
/// always wakes (a lost wake-up leaves it asleep: "lost wake-up"), whether it spins
/// first (first in line) or announces at once, and whether the signaller rings under
/// the object lock or after it (public blocks).
#[test]
fn loom_grant_always_wakes_the_waiter() {
    for (spins, after) in [0, 1].into_iter().flat_map(|s| RING_MODES.map(|r| (s, r))) {
        check(move || {
            let obj = new_obj(after);
            let blocks = Arc::new(vec![Arc::new(Block::new(1))]);
            let signaller = {
                let (obj, blocks) = (obj.clone(), blocks.clone());
                thread::spawn(move || {
                    release(&obj, &blocks);
                    blocks[0].futex.done();
                })
            };
            assert!(wait_one(&obj, &blocks, 0, spins, Deadline::Never));
            signaller.join().unwrap();
            let o = obj.lock().unwrap();
            assert_eq!(o.units, 0);
            assert!(o.queue.is_empty());
            assert_eq!(blocks[0].futex.sleepers(), 0);
        });
    }
}

/// (a) One waiter against a signaller and its own timeout (TO-06): exactly one of
/// {granted, cancelled} wins the claim word; a cancelled waiter's unit is never counted
/// as handed over and stays with the object (conservation); nothing is left asleep or
/// queued.
#[test]
fn loom_to06_grant_or_timeout_exactly_one_wins() {
    for (deadline, after) in [Deadline::Timer, Deadline::Passed]
        .into_iter()
        .flat_map(|d| RING_MODES.map(|r| (d, r)))
    {
        check(move || {
            let obj = new_obj(after);
            let timed = deadline == Deadline::Timer;
            let blocks = Arc::new(vec![Arc::new(Block::new(1 + usize::from(timed)))]);
            let signaller = {
                let (obj, blocks) = (obj.clone(), blocks.clone());
                thread::spawn(move || {
                    release(&obj, &blocks);
                    blocks[0].futex.done();
                })
            };
            let timer = timed.then(|| {
                let blocks = blocks.clone();
                thread::spawn(move || {
                    blocks[0].futex.expire();
                    blocks[0].futex.done();
                })
            });
            let got = wait_one(&obj, &blocks, 0, 1, deadline);
            signaller.join().unwrap();
            if let Some(t) = timer {
                t.join().unwrap();
            }
            let o = obj.lock().unwrap();
            // Handed over by the signaller, or taken under the lock by the waiter: 1 unit.
            assert_eq!(o.units + u32::from(got), 1, "a unit lost or made up");
            if !got {
                assert!(o.handed.is_empty(), "timed out but handed over");
            }
            assert!(o.queue.is_empty());
            assert_eq!(blocks[0].futex.sleepers(), 0);
        });
    }
}

/// The model can fail: a waiter that checks its claim *before* announcing its sleep
/// misses a ring that comes in between (the ring sees no SLEEPING and makes no
/// `FUTEX_WAKE`; the waiter then sleeps on a value that already includes the ring)
/// and sleeps for ever.
#[test]
#[should_panic(expected = "lost wake-up")]
fn loom_finds_the_lost_wakeup_of_announcing_after_the_check() {
    check(|| {
        let b = Arc::new(Block::new(1));
        let generation = word::arm(&b.claim, &b.wake);
        let signaller = {
            let b = b.clone();
            thread::spawn(move || {
                if word::try_claim(&b.claim, generation, word::granted(0, false)) {
                    b.ring();
                }
                b.futex.done();
            })
        };
        loop {
            if word::read(&b.claim, generation) != Claim::Waiting {
                break;
            }
            let bell = word::announce(&b.wake); // wrong: after the check
            let woke = b.futex.wait(&b.wake, bell, Deadline::Never);
            assert_ne!(woke, Woke::Orphaned, "lost wake-up");
        }
        signaller.join().unwrap();
    });
}

/// (b) Hand-off through a queue under the object lock: two waiters on a one-unit
/// semaphore used as a lock (each releases what it got), and a releaser. Units are
/// conserved and never held twice, every waiter gets the unit (no lost wake-up), and
/// the signallers serve queued waiters first come, first served. With one waiter whose
/// deadline has passed: it gets the unit or times out, never both, and the other
/// waiter still gets it.
#[test]
fn loom_hand_off_fifo_conserves_units() {
    for (deadline0, after) in [Deadline::Never, Deadline::Passed]
        .into_iter()
        .flat_map(|d| RING_MODES.map(|r| (d, r)))
    {
        check(move || {
            let obj = new_obj(after);
            // Each waiter may be rung by the releaser and by the other waiter.
            let blocks = Arc::new(vec![Arc::new(Block::new(2)), Arc::new(Block::new(2))]);
            let holders = Arc::new(AtomicU32::new(0));
            let waiter = |who: usize, deadline: Deadline| {
                let (obj, blocks, holders) = (obj.clone(), blocks.clone(), holders.clone());
                thread::spawn(move || {
                    let got = wait_one(&obj, &blocks, who, 1, deadline);
                    if got {
                        assert_eq!(holders.fetch_add(1, Ordering::Relaxed), 0, "held twice");
                        holders.fetch_sub(1, Ordering::Relaxed);
                        release(&obj, &blocks);
                    }
                    blocks[1 - who].futex.done();
                    got
                })
            };
            let w0 = waiter(0, deadline0);
            let w1 = waiter(1, Deadline::Never);
            release(&obj, &blocks);
            blocks.iter().for_each(|b| b.futex.done());
            let got0 = w0.join().unwrap();
            assert!(
                w1.join().unwrap(),
                "a waiter without deadline always gets it"
            );
            if deadline0 == Deadline::Never {
                assert!(got0);
            }
            let o = obj.lock().unwrap();
            assert_eq!(o.units, 1, "units not conserved");
            assert!(o.queue.is_empty());
            // FIFO: those handed a unit were handed it in the order they queued.
            let served: Vec<usize> = o
                .pushed
                .iter()
                .copied()
                .filter(|w| o.handed.contains(w))
                .collect();
            assert_eq!(o.handed, served, "served out of queue order");
            for b in blocks.iter() {
                assert_eq!(b.futex.sleepers(), 0);
            }
        });
    }
}

/// Wait-all objects X and Y under their locks, taken in the global order (X, then Y),
/// and who holds a unit of each on the wait-all's behalf.
#[derive(Default)]
struct AllObj {
    units: u32,
    /// The wait-all's entry here (one waiter in this model).
    entry: Option<u32>,
    /// Units held by the wait-all waiter.
    held_by_waiter: u32,
}

/// Every thread that holds both locks checks it: the wait-all holds both objects or
/// neither (WL-02..04: no partial acquisition is ever observable).
fn assert_all_or_nothing(x: &AllObj, y: &AllObj) {
    assert_eq!(
        x.held_by_waiter, y.held_by_waiter,
        "a partial wait-all acquisition is visible"
    );
}

/// How a run of the wait-all model went, counted over all executions so that the test
/// can check that each race was met.
static COMPLETED_BY_SIGNAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static COMPLETED_BY_WAITER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static TAKEN_WHILE_QUEUED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `obj::queue::complete_all` within `hand_off`, with both locks held by the signaller:
/// if both objects are available, acquire both on the waiter's behalf, claim it, drop
/// its entries and ring it; a lost claim is undone. `true` if completed.
fn complete_all(x: &mut AllObj, y: &mut AllObj, b: &Block) -> bool {
    let Some(generation) = x.entry else {
        return false;
    };
    if !word::is_waiting(&b.claim, generation) {
        x.entry = None; // stale
        y.entry = None;
        return false;
    }
    if x.units == 0 || y.units == 0 {
        return false; // nothing is set aside (WL-19)
    }
    x.units -= 1;
    y.units -= 1;
    if !word::try_claim(&b.claim, generation, word::granted(0, false)) {
        x.units += 1;
        y.units += 1;
        return false;
    }
    x.held_by_waiter += 1;
    y.held_by_waiter += 1;
    x.entry = None;
    y.entry = None;
    b.ring();
    COMPLETED_BY_SIGNAL.fetch_add(1, Ordering::Relaxed);
    true
}

/// A signal of one unit of X (`which` = 0) or Y (1), through the lock set (a wait-all
/// may be queued): both locks in the global order, the change, the hand-off.
fn signal_all(x: &Mutex<AllObj>, y: &Mutex<AllObj>, b: &Block, which: usize) {
    let mut gx = x.lock().unwrap();
    let mut gy = y.lock().unwrap();
    assert_all_or_nothing(&gx, &gy);
    if which == 0 {
        gx.units += 1;
    } else {
        gy.units += 1;
    }
    complete_all(&mut gx, &mut gy, b);
    assert_all_or_nothing(&gx, &gy);
}

/// The wait-all waiter (`wait::all::attempt`, no deadline): under both locks, stop if
/// a signal completed us; take both if both are available (claiming our own block if
/// queued); else queue an entry in each (once), read the doorbell while still holding
/// the locks, let go and sleep.
fn wait_all(x: &Mutex<AllObj>, y: &Mutex<AllObj>, b: &Block) {
    let mut armed: Option<u32> = None;
    loop {
        let mut gx = x.lock().unwrap();
        let mut gy = y.lock().unwrap();
        assert_all_or_nothing(&gx, &gy);
        if let Some(generation) = armed {
            match word::read(&b.claim, generation) {
                Claim::Waiting => {}
                c => {
                    assert_eq!(c, Claim::Signaled(0));
                    assert_eq!((gx.held_by_waiter, gy.held_by_waiter), (1, 1));
                    return;
                }
            }
        }
        if gx.units > 0 && gy.units > 0 {
            gx.units -= 1;
            gy.units -= 1;
            if let Some(generation) = armed {
                // Nobody claims a wait-all without both locks, which we hold.
                assert!(word::claim_self(
                    &b.claim,
                    generation,
                    word::granted(0, false)
                ));
            }
            gx.held_by_waiter += 1;
            gy.held_by_waiter += 1;
            gx.entry = None;
            gy.entry = None;
            COMPLETED_BY_WAITER.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if armed.is_none() {
            let generation = word::arm(&b.claim, &b.wake);
            gx.entry = Some(generation);
            gy.entry = Some(generation);
            armed = Some(generation);
        }
        let bell = word::announce(&b.wake);
        drop(gy);
        drop(gx);
        let woke = b.futex.wait(&b.wake, bell, Deadline::Never);
        assert_ne!(
            woke,
            Woke::Orphaned,
            "lost wake-up: asleep, and nobody left to ring"
        );
    }
}

/// (c) Wait-all completion: a waiter queued on X (1 unit) and Y (none); a signaller
/// gives Y one unit, completing the set only while it holds both locks; a third thread
/// takes X with a try-wait (WL-19: nothing is set aside for a wait-all that cannot
/// complete yet) and gives it back through the same signal path. In every interleaving:
/// never a partial take (checked by every holder of both locks), the waiter always
/// ends with both (no lost wake-up) and the units add up. Over all interleavings, each
/// way of completing and the try-wait's race with the queued waiter are all met.
#[test]
fn loom_wl19_wait_all_completes_all_or_nothing() {
    COMPLETED_BY_SIGNAL.store(0, Ordering::Relaxed);
    COMPLETED_BY_WAITER.store(0, Ordering::Relaxed);
    TAKEN_WHILE_QUEUED.store(0, Ordering::Relaxed);
    check(|| {
        let x = Arc::new(Mutex::new(AllObj {
            units: 1,
            ..AllObj::default()
        }));
        let y = Arc::new(Mutex::new(AllObj::default()));
        let b = Arc::new(Block::new(2));
        let signaller = {
            let (x, y, b) = (x.clone(), y.clone(), b.clone());
            thread::spawn(move || {
                signal_all(&x, &y, &b, 1);
                b.futex.done();
            })
        };
        let taker = {
            let (x, y, b) = (x.clone(), y.clone(), b.clone());
            thread::spawn(move || {
                // WaitForSingleObject(X, 0): one lock, no wait-all machinery.
                let took = {
                    let mut gx = x.lock().unwrap();
                    if gx.units > 0 {
                        gx.units -= 1;
                        if gx.entry.is_some() {
                            TAKEN_WHILE_QUEUED.fetch_add(1, Ordering::Relaxed);
                        }
                        true
                    } else {
                        false
                    }
                };
                if took {
                    signal_all(&x, &y, &b, 0);
                }
                b.futex.done();
            })
        };
        wait_all(&x, &y, &b);
        signaller.join().unwrap();
        taker.join().unwrap();
        let gx = x.lock().unwrap();
        let gy = y.lock().unwrap();
        assert_eq!((gx.held_by_waiter, gy.held_by_waiter), (1, 1));
        assert_eq!((gx.units, gy.units), (0, 0), "units not conserved");
        assert_eq!((gx.entry, gy.entry), (None, None));
        assert_eq!(b.futex.sleepers(), 0);
    });
    for (what, n) in [
        ("completed inside a signal", &COMPLETED_BY_SIGNAL),
        ("completed by the waiter itself", &COMPLETED_BY_WAITER),
        (
            "X taken by a try-wait while the wait-all was queued",
            &TAKEN_WHILE_QUEUED,
        ),
    ] {
        assert!(
            n.load(Ordering::Relaxed) > 0,
            "no interleaving where {what}"
        );
    }
}

/// A stale entry never claims a later wait of the same block: the waiter times out of
/// a first wait and leaves its entry behind (a removal is best effort), then arms its
/// block again for a wait nobody signals. A signaller meeting the old entry either
/// claims the first wait before its cancel (then the waiter got the unit) or finds it
/// stale; the second wait is never claimed through it.
#[test]
fn loom_stale_entry_never_claims_the_next_wait() {
    check(|| {
        let obj = new_obj(false);
        let blocks = Arc::new(vec![Arc::new(Block::new(1))]);
        let signaller = {
            let (obj, blocks) = (obj.clone(), blocks.clone());
            thread::spawn(move || {
                release(&obj, &blocks);
                blocks[0].futex.done();
            })
        };
        let b = &blocks[0];
        let first = word::arm(&b.claim, &b.wake);
        obj.lock().unwrap().queue.push_back(Entry {
            who: 0,
            generation: first,
        });
        let got = await_claim(b, first, 0, Deadline::Passed).is_some();
        // No removal: the entry stays queued. Then the next wait.
        let second = word::arm(&b.claim, &b.wake);
        assert_ne!(second, first);
        assert_eq!(word::read(&b.claim, second), Claim::Waiting);
        signaller.join().unwrap();
        assert_eq!(
            word::cancel(&b.claim, second),
            Ok(()),
            "a later wait claimed through a stale entry"
        );
        let o = obj.lock().unwrap();
        assert_eq!(o.units + u32::from(got), 1, "a unit lost or made up");
        // Left queued only if the signal came before it: stale, for the next holder.
        assert!(
            o.queue
                .iter()
                .all(|e| !word::is_waiting(&b.claim, e.generation))
        );
    });
}
