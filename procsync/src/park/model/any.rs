//! Wait-any and single waits in the model (`wait::any::block` against
//! `obj::queue::hand_off`): claim against cancel, the doorbell, hand-off through a
//! queue, stale entries. It must not model wait-all sets (`all`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use loom::sync::atomic::AtomicU32;
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{Block, Deadline, Futex, Woke, await_claim, check};
use crate::park::word::{self, Claim};

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

/// A manual-reset object's `seq` word and the kernel's futex on it.
struct Seq {
    word: AtomicU32,
    futex: Futex,
}

/// A set of a manual-reset object whose only waiter is queued as a `seq` sleeper
/// (`obj::queue::hand_off`): claim it, ring its doorbell without a wake
/// (`park::ring_quietly`), then bump `seq` and wake every sleeper on it if the ring found
/// the waiter asleep.
fn set_manual(b: &Block, generation: u32, seq: &Seq) {
    let mut asleep = false;
    if word::try_claim(&b.claim, generation, word::granted(0, false)) {
        asleep = word::ring(&b.wake);
    }
    seq.word.fetch_add(1, Ordering::Release);
    if asleep {
        seq.futex.wake_all();
    }
}

/// The waiter that sleeps on `seq` alone (`wait::any::block`, a single-object `seq`
/// sleeper): read `seq` (before the check when `early`, as the code does), announce,
/// check the claim, sleep on `seq`. Returns whether it was granted.
fn await_on_seq(b: &Block, generation: u32, seq: &Seq, early: bool) -> bool {
    loop {
        let seen = early.then(|| seq.word.load(Ordering::Acquire));
        let _bell = word::announce(&b.wake);
        if word::read(&b.claim, generation) != Claim::Waiting {
            break;
        }
        let value = seen.unwrap_or_else(|| seq.word.load(Ordering::Acquire));
        let woke = seq.futex.wait(&seq.word, value, Deadline::Never);
        assert_ne!(woke, Woke::Orphaned, "lost wake-up");
    }
    word::cancel(&b.claim, generation).is_err()
}

/// One set against one `seq`-only sleeper (see [`await_on_seq`] for `early`): the
/// sleeper must end granted, with nobody left asleep.
fn seq_race(early: bool) {
    check(move || {
        let b = Arc::new(Block::new(0));
        let seq = Arc::new(Seq {
            word: AtomicU32::new(7),
            futex: Futex::new(1),
        });
        let generation = word::arm(&b.claim, &b.wake);
        let signaller = {
            let (b, seq) = (b.clone(), seq.clone());
            thread::spawn(move || {
                set_manual(&b, generation, &seq);
                seq.futex.done();
            })
        };
        assert!(await_on_seq(&b, generation, &seq, early), "not granted");
        signaller.join().unwrap();
        assert_eq!(seq.futex.sleepers(), 0);
    });
}

/// (a') A waiter queued behind another on a manual-reset object, asleep on the object's
/// `seq` word alone: every set wakes it (the read of `seq` before its last look at the
/// claim is what makes a grant after that look fail its sleep).
#[test]
fn loom_seq_sleeper_always_wakes() {
    seq_race(true);
}

/// The model can fail here too: reading `seq` only after the check lets a set that
/// claims between the two bump `seq` before the read, so the waiter sleeps on the new
/// value with nobody left to wake it.
#[test]
#[should_panic(expected = "lost wake-up")]
fn loom_finds_the_lost_wakeup_of_reading_seq_after_the_check() {
    seq_race(false);
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
