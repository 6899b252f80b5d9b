//! Wait-all completion in the model (`wait::all::attempt` against
//! `obj::queue::complete_all`): all or nothing, nothing set aside. It must not model
//! wait-any queues (`any`).

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{Block, Deadline, Woke, check};
use crate::park::word::{self, Claim};

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
static COMPLETED_BY_SIGNAL: AtomicUsize = AtomicUsize::new(0);
static COMPLETED_BY_WAITER: AtomicUsize = AtomicUsize::new(0);
static TAKEN_WHILE_QUEUED: AtomicUsize = AtomicUsize::new(0);

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
