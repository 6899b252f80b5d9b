//! In-process tests of the library's state machines, with threads standing in for
//! concurrency. Cross-process behaviour is tested through real processes in
//! `tests/procs/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::test_root::TestRoot;
use crate::*;

const T: Option<Duration> = Some(Duration::from_secs(10));
const POLL: Option<Duration> = Some(Duration::ZERO);

fn sem(name: &str, initial: u32, max: u32) -> Handle {
    Handle::create(
        ObjectSpec::Semaphore { initial, max },
        name,
        &CreateOptions::default(),
    )
    .unwrap()
    .0
}
fn event(name: &str, manual: bool, initial: bool) -> Handle {
    Handle::create(
        ObjectSpec::Event { manual, initial },
        name,
        &CreateOptions::default(),
    )
    .unwrap()
    .0
}
fn mutex(name: &str) -> Handle {
    Handle::create(
        ObjectSpec::Mutex { owned: false },
        name,
        &CreateOptions::default(),
    )
    .unwrap()
    .0
}
fn timer(manual: bool) -> Handle {
    Handle::create(ObjectSpec::Timer { manual }, "", &CreateOptions::default())
        .unwrap()
        .0
}

#[test]
fn semaphore_table() {
    // SM-03, SM-04, SM-05, SM-06, SM-08: (operation, expected result, expected count after)
    let _r = TestRoot::new();
    let s = sem("", 0, 2);
    assert_eq!(s.release(2).unwrap(), 0);
    assert_eq!(s.release(1).unwrap_err().code(), "too-many-posts");
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 2, max: 2 }
    );
    assert_eq!(s.release(0).unwrap_err().code(), "invalid-argument");
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 0, max: 2 }
    );
    for (initial, max) in [(3, 2), (0, 0), (0, 0x8000_0000)] {
        let e = Handle::create(
            ObjectSpec::Semaphore { initial, max },
            "",
            &CreateOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid-argument");
    }
    // SM-07: a huge release never wraps.
    let s = sem("", 1, 0x7FFF_FFFF);
    assert_eq!(s.release(0x7FFF_FFFF).unwrap_err().code(), "too-many-posts");
}

/// The typed wrappers' inlined fast paths (`Semaphore::wait`/`release`,
/// `Mutex::wait`/`unlock`) give exactly what the full paths give, errors included, and
/// change nothing when they refuse (SM-04..07, MX-04, MX-09, AM-02).
#[test]
fn typed_fast_paths_report_like_the_full_paths() {
    let _r = TestRoot::new();
    let (s, _) = Semaphore::create("Local\\typed-fast-sem", 1, 2).unwrap();
    assert_eq!(s.release(1).unwrap(), 1);
    assert_eq!(s.release(1).unwrap_err().code(), "too-many-posts");
    assert_eq!(s.release(0).unwrap_err().code(), "invalid-argument");
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    let sync_only = Semaphore::open_with("Local\\typed-fast-sem", Access::SYNCHRONIZE).unwrap();
    assert_eq!(sync_only.release(1).unwrap_err().code(), "access-denied");
    assert_eq!(sync_only.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(sync_only.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    let modify_only = Semaphore::open_with("Local\\typed-fast-sem", Access::MODIFY).unwrap();
    assert_eq!(modify_only.release(2).unwrap(), 0);
    assert_eq!(modify_only.wait(POLL).unwrap_err().code(), "access-denied");
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 2, max: 2 }
    );

    let (m, _) = Mutex::create("", false).unwrap();
    assert_eq!(m.unlock().unwrap_err().code(), "not-owner");
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(m.wait(None).unwrap(), WaitOutcome::Signaled(0));
    let m = Arc::new(m);
    let m2 = m.clone();
    std::thread::spawn(move || {
        assert_eq!(m2.wait(POLL).unwrap(), WaitOutcome::TimedOut);
        assert_eq!(m2.unlock().unwrap_err().code(), "not-owner");
    })
    .join()
    .unwrap();
    assert_eq!(m.unlock().unwrap(), 2);
    assert_eq!(m.unlock().unwrap(), 1);
    assert_eq!(m.unlock().unwrap_err().code(), "not-owner");
}

#[test]
fn event_table() {
    let _r = TestRoot::new();
    let auto = event("", false, false);
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::TimedOut); // EV-01
    assert!(!auto.set().unwrap()); // EV-03
    assert!(auto.set().unwrap()); // EV-04, EV-10
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    let manual = event("", true, true);
    assert_eq!(manual.wait(POLL).unwrap(), WaitOutcome::Signaled(0)); // EV-02
    assert_eq!(manual.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert!(manual.reset().unwrap()); // EV-05
    assert!(!manual.reset().unwrap());
    assert!(!manual.pulse().unwrap()); // PU-03, PU-04
    assert_eq!(
        manual.query().unwrap(),
        ObjectState::Event {
            manual: true,
            signaled: false
        }
    );
    assert_eq!(manual.release(1).unwrap_err().code(), "wrong-type"); // HC-07
}

#[test]
fn give_back_undoes_a_wait_as_if_it_had_timed_out_to06() {
    // TO-06 for waits cancelled after the hand-off (async adaptors): `give_back`.
    let _r = TestRoot::new();
    let signaled = |e: &Handle| matches!(e.query().unwrap(), ObjectState::Event { signaled, .. } | ObjectState::Timer { signaled, .. } if signaled);
    let auto = event("", false, false);
    // Unset: the signal comes back as it was.
    assert!(!auto.set().unwrap());
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    auto.give_back().unwrap();
    assert!(auto.set().unwrap()); // EV-04: one signal, merged
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    // Set again meanwhile (EV-03: "was not set"): banked, so that both sets' signals are
    // consumed, once each; the event reads set until the last is.
    assert!(!auto.set().unwrap());
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert!(!auto.set().unwrap());
    auto.give_back().unwrap();
    assert!(auto.set().unwrap()); // EV-04 still: a set on a set event adds nothing
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert!(signaled(&auto));
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert!(!signaled(&auto));
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    // A reset (EV-05) or pulse (PU-04) takes the bank with the signal.
    for clear in [Handle::reset, Handle::pulse] {
        assert!(!auto.set().unwrap());
        assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        assert!(!auto.set().unwrap());
        auto.give_back().unwrap();
        assert!(clear(&auto).unwrap());
        assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    }
    // A queued waiter gets the given-back signal at once (the hand-off of a signal).
    let auto = Arc::new(auto);
    assert!(!auto.set().unwrap());
    assert_eq!(auto.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    let a2 = auto.clone();
    let t = std::thread::spawn(move || a2.wait(T).unwrap());
    while queue_len(&auto) == 0 {
        std::thread::yield_now();
    }
    auto.give_back().unwrap();
    assert_eq!(t.join().unwrap(), WaitOutcome::Signaled(0));
    assert!(!signaled(&auto));
    // Semaphore: the unit comes back; at the maximum (over-released meanwhile, SM-05)
    // it is dropped rather than pushing the count past it.
    let s = sem("", 1, 1);
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    s.give_back().unwrap();
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 1 }
    );
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(s.release(1).unwrap(), 0);
    s.give_back().unwrap();
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 1 }
    );
    // Manual-reset: a wait consumed nothing, so nothing changes.
    let manual = event("", true, false);
    manual.give_back().unwrap();
    assert!(!signaled(&manual));
    // Synchronization timer: signaled again; expiries merge (TM-13), so no bank.
    let tm = timer(false);
    tm.give_back().unwrap();
    assert!(signaled(&tm));
    tm.give_back().unwrap();
    assert_eq!(tm.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(tm.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    // Refused: a mutex (its owner thread releases it), a handle without `modify`.
    assert_eq!(mutex("").give_back().unwrap_err().code(), "wrong-type");
    let weak = s.duplicate(Some(Access::SYNCHRONIZE)).unwrap();
    assert_eq!(weak.give_back().unwrap_err().code(), "access-denied");
}

#[test]
fn mutex_recursion_and_owner() {
    let _r = TestRoot::new();
    let m = Arc::new(mutex(""));
    for _ in 0..40 {
        assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0)); // MX-03, MX-14
    }
    let m2 = m.clone();
    // MX-07: another thread can neither take nor release it.
    std::thread::spawn(move || {
        assert_eq!(m2.wait(POLL).unwrap(), WaitOutcome::TimedOut);
        assert_eq!(m2.release(1).unwrap_err().code(), "not-owner");
    })
    .join()
    .unwrap();
    for k in (1..=40).rev() {
        assert_eq!(m.release(1).unwrap(), k); // MX-09
    }
    assert_eq!(m.release(1).unwrap_err().code(), "not-owner"); // MX-04
}

/// MX-04, MX-07 with the one-swap release (`obj::mutex::release`), which leaves the
/// recursion word at 1 when the mutex comes free: that stale 1 must let no other
/// thread release it, neither while it is free nor once someone owns it again.
#[test]
fn mutex_stale_recursion_word_gives_no_other_thread_a_release() {
    let _r = TestRoot::new();
    let m = Arc::new(mutex(""));
    let other = |m: &Arc<Handle>| {
        let m = m.clone();
        std::thread::spawn(move || m.release(1).unwrap_err().code())
            .join()
            .unwrap()
    };
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(m.release(1).unwrap(), 1);
    assert_eq!(m.obj().ctl().recursion.load(Ordering::SeqCst), 1);
    assert_eq!(other(&m), "not-owner"); // free, recursion word 1
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(other(&m), "not-owner"); // owned by us, recursion 1
    assert_eq!(
        m.query().unwrap(),
        ObjectState::Mutex {
            owner: Owner::Current,
            recursion: 1,
            abandoned: false
        }
    );
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(m.release(1).unwrap(), 2); // MX-09: recursive, one swap not enough
    assert_eq!(m.release(1).unwrap(), 1);
    assert_eq!(m.release(1).unwrap_err().code(), "not-owner");
    assert_eq!(
        m.query().unwrap(),
        ObjectState::Mutex {
            owner: Owner::None,
            recursion: 0,
            abandoned: false
        }
    );
}

/// SM-04, SM-05, SM-08 with the guessed swap (`obj::semaphore`: a compare-and-swap
/// from what this process last left in the word): when the count changed behind the
/// process's back (another process writes the same word), every outcome is the real
/// count's: the previous count reported, the maximum enforced, no unit made up.
#[test]
fn semaphore_guess_never_decides_an_outcome() {
    let _r = TestRoot::new();
    let s = sem("", 2, 3);
    let state = &s.obj().ctl().state;
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0)); // guess: 1
    state.store(3, Ordering::SeqCst); // another process released 2
    assert_eq!(s.release(1).unwrap_err().code(), "too-many-posts");
    assert_eq!(state.load(Ordering::SeqCst), 3);
    state.store(0, Ordering::SeqCst); // another process took them all
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(s.release(1).unwrap(), 0); // guess: 1
    state.store(0, Ordering::SeqCst);
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(s.release(2).unwrap(), 0); // guess: 2
    state.store(1, Ordering::SeqCst);
    assert_eq!(s.release(1).unwrap(), 1);
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(s.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(state.load(Ordering::SeqCst), 0);
}

#[test]
fn a_wait_leaves_an_object_behind_only_when_another_thread_has_it() {
    // WY-03. `try_now` skips an object for the spin and the queueing only when a read of
    // its word says another thread has it. It used to decide on "nobody queued" alone,
    // after a lock-free attempt that failed while someone held the object's lock: once
    // that lock was released, a semaphore with units or a free mutex was skipped and a
    // later object of the list taken (the model's differential test caught it).
    use crate::wait::any::busy_elsewhere;
    let _r = TestRoot::new();
    let me = crate::sys::thread::ident();
    let s = sem("", 2, 5);
    assert!(!busy_elsewhere(s.obj(), me), "a semaphore with units");
    let empty = sem("", 0, 5);
    assert!(busy_elsewhere(empty.obj(), me), "a semaphore without units");
    let m = Arc::new(mutex(""));
    assert!(!busy_elsewhere(m.obj(), me), "a free mutex");
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert!(!busy_elsewhere(m.obj(), me), "a mutex we own");
    m.release(1).unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        assert_eq!(m2.wait(T).unwrap(), WaitOutcome::Signaled(0));
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        m2.release(1).unwrap();
    });
    held_rx.recv().unwrap();
    assert!(busy_elsewhere(m.obj(), me), "a mutex another thread owns");
    done_tx.send(()).unwrap();
    t.join().unwrap();
    assert!(!busy_elsewhere(m.obj(), me), "a mutex released again");
}

#[test]
fn thread_exit_abandons_once() {
    // AB-01, AB-02, AB-03
    let _r = TestRoot::new();
    let m = Arc::new(mutex(""));
    let m2 = m.clone();
    std::thread::spawn(move || {
        assert_eq!(m2.wait(T).unwrap(), WaitOutcome::Signaled(0));
        assert_eq!(m2.wait(T).unwrap(), WaitOutcome::Signaled(0));
    })
    .join()
    .unwrap();
    assert_eq!(
        m.query().unwrap(),
        ObjectState::Mutex {
            owner: Owner::None,
            recursion: 0,
            abandoned: true
        }
    );
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Abandoned(0));
    m.release(1).unwrap();
    assert_eq!(m.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    m.release(1).unwrap();
}

#[test]
fn handoff_auto_event_and_semaphore() {
    // EV-08: a set with a waiter is consumed by it: the event reads unset at once.
    let _r = TestRoot::new();
    let e = Arc::new(event("", false, false));
    let started = Arc::new(AtomicU32::new(0));
    let (e2, s2) = (e.clone(), started.clone());
    let t = std::thread::spawn(move || {
        s2.store(1, Ordering::SeqCst);
        e2.wait(T).unwrap()
    });
    while started.load(Ordering::SeqCst) == 0 || queue_len(&e) == 0 {
        std::thread::yield_now();
    }
    assert!(!e.set().unwrap());
    assert_eq!(
        e.query().unwrap(),
        ObjectState::Event {
            manual: false,
            signaled: false
        }
    );
    assert_eq!(t.join().unwrap(), WaitOutcome::Signaled(0));
}

fn queue_len(h: &Handle) -> u32 {
    h.obj().ctl().queue_len.load(Ordering::SeqCst)
}

#[test]
fn stress_mutex_counter_threads() {
    // MX-15: 4 threads × 5 000 lock/increment/unlock.
    let _r = TestRoot::new();
    let m = Arc::new(mutex(""));
    let counter = Arc::new(AtomicU32::new(0));
    let ts: Vec<_> = (0..4)
        .map(|_| {
            let (m, c) = (m.clone(), counter.clone());
            std::thread::spawn(move || {
                for _ in 0..5000 {
                    assert_eq!(m.wait(T).unwrap(), WaitOutcome::Signaled(0));
                    let v = c.load(Ordering::Relaxed);
                    c.store(v + 1, Ordering::Relaxed);
                    m.release(1).unwrap();
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 20_000);
}

/// WL-02, WL-04, WL-17, WL-19 on both of wait-all's first looks over semaphores and
/// events: the hardware transaction (`sys::htm`, where the CPU has one) and the locks.
/// Each set is taken whole (semaphores −1, auto events reset, manual events stay set)
/// or not at all; and four threads mixing wait-alls with single waits on two
/// semaphores of one unit never hold a unit twice.
#[test]
fn wait_all_first_looks_take_the_whole_set_or_nothing() {
    let _r = TestRoot::new();
    for htm in [true, false] {
        crate::sys::htm::set_enabled(htm);
        let s = sem("", 1, 2);
        let auto = event("", false, true);
        let manual = event("", true, true);
        let empty = sem("", 0, 1);
        assert_eq!(
            wait_all(&[&s, &auto, &manual], POLL).unwrap(),
            WaitOutcome::Signaled(0)
        );
        assert_eq!(
            s.query().unwrap(),
            ObjectState::Semaphore { count: 0, max: 2 }
        );
        assert_eq!(
            auto.query().unwrap(),
            ObjectState::Event {
                manual: false,
                signaled: false
            }
        );
        assert_eq!(
            manual.query().unwrap(),
            ObjectState::Event {
                manual: true,
                signaled: true
            }
        );
        s.release(2).unwrap();
        auto.set().unwrap();
        assert_eq!(
            wait_all(&[&s, &auto, &empty], POLL).unwrap(),
            WaitOutcome::TimedOut
        );
        assert_eq!(
            s.query().unwrap(),
            ObjectState::Semaphore { count: 2, max: 2 }
        );
        assert_eq!(
            auto.query().unwrap(),
            ObjectState::Event {
                manual: false,
                signaled: true
            }
        );
        assert_eq!(wait_all(&[&auto], POLL).unwrap(), WaitOutcome::Signaled(0));
        assert_eq!(wait_all(&[&auto], POLL).unwrap(), WaitOutcome::TimedOut);

        let (a, b) = (Arc::new(sem("", 1, 1)), Arc::new(sem("", 1, 1)));
        let held = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (a, b, held) = (a.clone(), b.clone(), held.clone());
                std::thread::spawn(move || {
                    let mut got = 0;
                    for i in 0..3_000 {
                        let which: &[usize] = match (t + i) % 3 {
                            0 => &[0, 1],
                            1 => &[0],
                            _ => &[1],
                        };
                        let hs: Vec<&Handle> = which.iter().map(|&k| [&*a, &*b][k]).collect();
                        if wait_all(&hs, POLL).unwrap() != WaitOutcome::Signaled(0) {
                            continue;
                        }
                        got += 1;
                        for &k in which {
                            assert_eq!(
                                held[k].fetch_add(1, Ordering::SeqCst),
                                0,
                                "a unit held twice"
                            );
                        }
                        for &k in which {
                            held[k].fetch_sub(1, Ordering::SeqCst);
                            hs[which.iter().position(|&x| x == k).unwrap()]
                                .release(1)
                                .unwrap();
                        }
                    }
                    got
                })
            })
            .collect();
        let got: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(got > 0, "no wait-all or wait ever succeeded (htm: {htm})");
        assert_eq!(
            a.query().unwrap(),
            ObjectState::Semaphore { count: 1, max: 1 }
        );
        assert_eq!(
            b.query().unwrap(),
            ObjectState::Semaphore { count: 1, max: 1 }
        );
    }
    crate::sys::htm::set_enabled(true);
}

#[test]
fn wait_any_and_all_basics() {
    let _r = TestRoot::new();
    // WY-05
    let s = sem("", 2, 3);
    let m = mutex("");
    assert_eq!(wait_any(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(wait_any(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(wait_any(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(1));
    s.release(1).unwrap();
    assert_eq!(wait_any(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(wait_any(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(1));
    assert_eq!(
        m.query().unwrap(),
        ObjectState::Mutex {
            owner: Owner::Current,
            recursion: 2,
            abandoned: false
        }
    );
    m.release(1).unwrap();
    m.release(1).unwrap();
    // WL-05
    let s = sem("", 2, 3);
    assert_eq!(wait_all(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 3 }
    );
    let (s2, m2) = (s.duplicate(None).unwrap(), m.duplicate(None).unwrap());
    std::thread::spawn(move || {
        assert_eq!(wait_all(&[&s2, &m2], POLL).unwrap(), WaitOutcome::TimedOut)
    })
    .join()
    .unwrap();
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 3 }
    );
    assert_eq!(wait_all(&[&s, &m], POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(wait_all(&[&s, &m], POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(
        m.query().unwrap(),
        ObjectState::Mutex {
            owner: Owner::Current,
            recursion: 2,
            abandoned: false
        }
    );
    // WL-07, HD-13
    let d = s.duplicate(None).unwrap();
    assert_eq!(
        wait_all(&[&s, &d], POLL).unwrap_err().code(),
        "duplicate-object"
    );
    // WY-01, WY-02
    assert_eq!(wait_any(&[], POLL).unwrap_err().code(), "invalid-argument");
    let many: Vec<&Handle> = std::iter::repeat_n(&s, 65).collect();
    assert_eq!(
        wait_any(&many, POLL).unwrap_err().code(),
        "invalid-argument"
    );
    s.release(1).unwrap();
    assert_eq!(
        wait_any(&many[..64], POLL).unwrap(),
        WaitOutcome::Signaled(0)
    ); // WY-09
}

#[test]
fn wait_all_blocked_completes_when_last_object_arrives() {
    // WL-09 (shortened), WL-14
    let _r = TestRoot::new();
    let s = Arc::new(sem("", 0, 3));
    let e = Arc::new(event("", false, true));
    let (s2, e2) = (s.clone(), e.clone());
    let t = std::thread::spawn(move || wait_all(&[&s2, &e2], T).unwrap());
    while queue_len(&s) == 0 {
        std::thread::yield_now();
    }
    e.reset().unwrap();
    s.release(1).unwrap();
    // Not complete: the semaphore must not be taken (WL-03).
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 3 }
    );
    e.set().unwrap();
    assert_eq!(t.join().unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 0, max: 3 }
    );
    assert_eq!(
        e.query().unwrap(),
        ObjectState::Event {
            manual: false,
            signaled: false
        }
    );
}

#[test]
fn named_objects_leave_nothing_behind() {
    let r = TestRoot::new();
    {
        let a = sem("Local\\x", 1, 1);
        let (b, c) = Handle::create(
            ObjectSpec::Semaphore { initial: 0, max: 1 },
            "x",
            &CreateOptions::default(),
        )
        .unwrap();
        assert_eq!(c, Created::Existing);
        assert!(a.same_object(&b));
        let g = Handle::create(
            ObjectSpec::Event {
                manual: false,
                initial: false,
            },
            "Global\\x",
            &CreateOptions::default(),
        )
        .unwrap();
        assert_eq!(g.1, Created::New);
        assert_eq!(
            Handle::open(ObjectKind::Event, "x", Access::ALL, false)
                .unwrap_err()
                .code(),
            "wrong-type"
        );
        // Block once so that a wait-block table exists too.
        assert_eq!(
            a.wait(Some(Duration::from_millis(1))).unwrap(),
            WaitOutcome::Signaled(0)
        );
        assert_eq!(
            a.wait(Some(Duration::from_millis(1))).unwrap(),
            WaitOutcome::TimedOut
        );
        assert!(!r.files().is_empty());
    }
    assert_eq!(r.files(), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        Handle::open(ObjectKind::Semaphore, "x", Access::ALL, false)
            .unwrap_err()
            .code(),
        "not-found"
    );
}

#[test]
fn timer_callback_runs_per_expiration_and_stops_on_cancel() {
    // TM-24 (docs/SEMANTICS.md): the callback observes expirations without consuming a
    // synchronization timer.
    let _r = TestRoot::new();
    let t = timer(false);
    let (tx, rx) = std::sync::mpsc::channel();
    t.set_timer_with_callback(
        TimerDue::Relative(Duration::from_millis(20)),
        30,
        move || {
            let _ = tx.send(());
        },
    )
    .unwrap();
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    // Not consumed by the callback thread: a waiter still gets it.
    assert_eq!(t.wait(T).unwrap(), WaitOutcome::Signaled(0));
    t.cancel_timer().unwrap();
    while rx.try_recv().is_ok() {}
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "callback ran after cancel"
    );
}

#[test]
fn periodic_timer_does_not_accumulate_missed_periods() {
    // TM-13: after several missed periods one wait succeeds, the next only at the
    // next expiration.
    let _r = TestRoot::new();
    let t = timer(false);
    t.set_timer(TimerDue::Relative(Duration::ZERO), 50).unwrap();
    std::thread::sleep(Duration::from_millis(180));
    assert_eq!(t.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(t.wait(POLL).unwrap(), WaitOutcome::TimedOut);
    assert_eq!(t.wait(T).unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(
        t.set_timer(TimerDue::Relative(Duration::ZERO), u32::MAX)
            .unwrap_err()
            .code(),
        "invalid-argument"
    );
}

#[test]
fn more_waiters_than_queue_slots_all_get_through() {
    // More threads than an object's queue holds (QUEUE_CAPACITY): the rest take the overflow
    // path. A manual event releases all; a semaphore hands out exactly its units.
    let _r = TestRoot::new();
    let e = Arc::new(event("", true, false));
    let s = Arc::new(sem("", 0, 1000));
    let n = crate::shm::layout::QUEUE_CAPACITY as u32 + 50;
    let ready = Arc::new(AtomicU32::new(0));
    let ts: Vec<_> = (0..n)
        .map(|_| {
            let (e, s, ready) = (e.clone(), s.clone(), ready.clone());
            std::thread::spawn(move || {
                ready.fetch_add(1, Ordering::SeqCst);
                assert_eq!(e.wait(T).unwrap(), WaitOutcome::Signaled(0));
                assert_eq!(s.wait(T).unwrap(), WaitOutcome::Signaled(0));
            })
        })
        .collect();
    while ready.load(Ordering::SeqCst) < n
        || queue_len(&e) < crate::shm::layout::QUEUE_CAPACITY as u32
    {
        std::thread::yield_now();
    }
    e.set().unwrap();
    for _ in 0..n {
        s.release(1).unwrap();
    }
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore {
            count: 0,
            max: 1000
        }
    );
}

#[test]
fn two_threads_of_one_process_queue_two_waiters() {
    // Each thread waits with a block of its own: `waiters` counts both, and one set
    // of a manual event releases both.
    let _r = TestRoot::new();
    let e = Arc::new(event("", true, false));
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || assert_eq!(e.wait(None).unwrap(), WaitOutcome::Signaled(0)))
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while e.waiters().unwrap() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "waiters: {}",
            e.waiters().unwrap()
        );
        std::thread::yield_now();
    }
    e.set().unwrap();
    for t in ts {
        t.join().unwrap();
    }
}

#[test]
fn cancel_waits_for_a_running_callback() {
    // The documented rule (docs/ARCHITECTURE.md, "Completion callbacks"): cancel (like a
    // new set or dropping the handle) returns only after a running call has returned, and
    // no call starts afterwards.
    let _r = TestRoot::new();
    let t = Arc::new(timer(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let calls = Arc::new(AtomicU32::new(0));
    let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (c, r) = (calls.clone(), returned.clone());
    t.set_timer_with_callback(TimerDue::Relative(Duration::ZERO), 1, move || {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = started_tx.send(());
            let _ = go_rx.recv(); // hold the first call until the test lets it go
            r.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let t2 = t.clone();
    let canceller = std::thread::spawn(move || t2.cancel_timer().unwrap());
    // Negative check (a grace, not a synchronisation): while the call runs, cancel has
    // not returned.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !canceller.is_finished(),
        "cancel returned while the callback ran"
    );
    go_tx.send(()).unwrap();
    canceller.join().unwrap();
    assert!(
        returned.load(Ordering::SeqCst),
        "cancel returned before the running call"
    );
    let after = calls.load(Ordering::SeqCst);
    // A period of 1 ms: a call that could still start would have by now.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        after,
        "a call started after cancel"
    );
}

// ---- Detached waits (the async waits' building block) ----

use crate::detached::{DetachedWait, Progress};

/// Drives a detached wait to its end the way an executor would, sleeping in
/// `futex_waitv` on the words it names until its `until`.
fn drive(w: &mut DetachedWait, mut p: Progress) -> WaitOutcome {
    loop {
        let on = match p {
            Progress::Done(o) => return o,
            Progress::Sleep(on) => on,
        };
        #[allow(unsafe_code)]
        let words: Vec<(&AtomicU32, u32)> = on
            .words()
            .iter()
            // SAFETY: the words stay mapped while `w` lives and we make no other call
            // on it before this sleep ends (the DetachedWait contract).
            .map(|x| (unsafe { &*x.addr() }, x.expected()))
            .collect();
        let deadline = match on.until() {
            None => crate::sys::time::Deadline::Never,
            Some(t) => crate::sys::time::Deadline::At(t),
        };
        p = match crate::sys::futex::wait_many(&words, deadline) {
            crate::sys::futex::Woke::Woken => w.woken(),
            crate::sys::futex::Woke::TimedOut => w.timed_out(),
        }
        .unwrap();
    }
}

fn queued_now(w: &mut DetachedWait) -> Progress {
    let p = w.start().unwrap();
    assert!(
        matches!(p, Progress::Sleep(_)),
        "nothing was signaled: {p:?}"
    );
    p
}

#[test]
fn detached_wait_takes_lowest_index_then_is_handed_off_wy03_ev08() {
    let _r = TestRoot::new();
    let (a, b) = (event("", false, false), event("", false, false));
    b.set().unwrap();
    let mut w = DetachedWait::new(&[&a, &b], None).unwrap();
    assert!(matches!(
        w.start().unwrap(),
        Progress::Done(WaitOutcome::Signaled(1))
    ));
    let unset = ObjectState::Event {
        manual: false,
        signaled: false,
    };
    assert_eq!(b.query().unwrap(), unset, "the wait consumed b's signal");
    a.set().unwrap();
    b.set().unwrap();
    let mut w = DetachedWait::new(&[&b, &a], None).unwrap();
    assert!(matches!(
        w.start().unwrap(),
        Progress::Done(WaitOutcome::Signaled(0))
    ));
    assert_eq!(b.query().unwrap(), unset);
    a.reset().unwrap();
    // Nothing signaled: it queues, and a set from another thread hands it over.
    let mut w = DetachedWait::new(&[&a, &b], None).unwrap();
    let p = queued_now(&mut w);
    assert_eq!((queue_len(&a), queue_len(&b)), (1, 1));
    let a2 = a.duplicate(None).unwrap();
    let t = std::thread::spawn(move || a2.set().unwrap());
    assert_eq!(drive(&mut w, p), WaitOutcome::Signaled(0));
    t.join().unwrap();
    assert!(
        !a.set().unwrap(),
        "handed over: a reads unset after the set"
    );
}

#[test]
fn detached_cancel_gives_back_to_the_next_waiter_to06() {
    let _r = TestRoot::new();
    // A semaphore unit handed to a detached wait that is then cancelled goes on to the
    // sync waiter queued behind it.
    let s = Arc::new(sem("", 0, 5));
    let mut w = DetachedWait::new(&[&s], None).unwrap();
    let _p = queued_now(&mut w);
    let s2 = s.clone();
    let t = std::thread::spawn(move || s2.wait(T).unwrap());
    while queue_len(&s) < 2 {
        std::thread::yield_now();
    }
    s.release(1).unwrap();
    // The unit went to the first in line (the detached wait): nobody else has it yet.
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 0, max: 5 }
    );
    w.cancel().unwrap();
    assert_eq!(t.join().unwrap(), WaitOutcome::Signaled(0));
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 0, max: 5 }
    );
    // An auto-reset event handed over, then the wait dropped: the event is set again.
    let e = event("", false, false);
    let mut w = DetachedWait::new(&[&e], None).unwrap();
    let _p = queued_now(&mut w);
    assert!(!e.set().unwrap());
    let unset = ObjectState::Event {
        manual: false,
        signaled: false,
    };
    assert_eq!(e.query().unwrap(), unset, "handed to the queued wait");
    drop(w);
    assert_eq!(
        e.query().unwrap(),
        ObjectState::Event {
            manual: false,
            signaled: true
        },
        "given back"
    );
    assert_eq!(queue_len(&e), 0);
}

#[test]
fn detached_wait_times_out_and_takes_nothing_to05() {
    let _r = TestRoot::new();
    let s = sem("", 0, 1);
    let until = std::time::Instant::now() + Duration::from_millis(30);
    let mut w = DetachedWait::new(&[&s], Some(until)).unwrap();
    let p = queued_now(&mut w);
    assert_eq!(drive(&mut w, p), WaitOutcome::TimedOut);
    assert!(std::time::Instant::now() >= until);
    assert_eq!(queue_len(&s), 0, "no entry left behind");
    s.release(1).unwrap();
    assert_eq!(
        s.query().unwrap(),
        ObjectState::Semaphore { count: 1, max: 1 }
    );
    // A past deadline polls.
    let mut w = DetachedWait::new(&[&s], Some(std::time::Instant::now())).unwrap();
    assert!(matches!(
        w.start().unwrap(),
        Progress::Done(WaitOutcome::Signaled(0))
    ));
    let mut w = DetachedWait::new(&[&s], Some(std::time::Instant::now())).unwrap();
    assert!(matches!(
        w.start().unwrap(),
        Progress::Done(WaitOutcome::TimedOut)
    ));
}

#[test]
fn detached_wait_wakes_for_a_timer_at_its_due_time() {
    let _r = TestRoot::new();
    let t = timer(false);
    let due = Duration::from_millis(40);
    let start = std::time::Instant::now();
    t.set_timer(TimerDue::Relative(due), 0).unwrap();
    let mut w = DetachedWait::new(&[&t], None).unwrap();
    let p = queued_now(&mut w);
    if let Progress::Sleep(on) = &p {
        assert!(
            on.until()
                .is_some_and(|u| u <= start + due + Duration::from_millis(5)),
            "the sleep ends by the due time: {on:?}"
        );
    }
    assert_eq!(drive(&mut w, p), WaitOutcome::Signaled(0));
    assert!(start.elapsed() >= due);
}

#[test]
fn detached_wait_refuses_a_mutex() {
    let _r = TestRoot::new();
    let (m, e) = (mutex(""), event("", false, false));
    let err = DetachedWait::new(&[&e, &m], None).unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    assert!(err.to_string().contains("mutex"), "{err}");
}

#[test]
fn many_detached_waits_in_one_thread_overflow_the_queue_and_all_get_through() {
    // More pending waits than an object's queue holds, all from this one thread (each
    // has its own leased block): the rest sleep on the object's change counter too.
    let _r = TestRoot::new();
    let e = event("", true, false);
    let n = crate::shm::layout::QUEUE_CAPACITY + 20;
    let mut ws: Vec<(DetachedWait, Progress)> = (0..n)
        .map(|_| {
            let mut w = DetachedWait::new(&[&e], None).unwrap();
            let p = queued_now(&mut w);
            (w, p)
        })
        .collect();
    assert_eq!(queue_len(&e) as usize, crate::shm::layout::QUEUE_CAPACITY);
    let multi = ws
        .iter()
        .filter(|(_, p)| matches!(p, Progress::Sleep(on) if on.words().len() == 2))
        .count();
    assert_eq!(
        multi, 20,
        "the overflowed waits also watch the change counter"
    );
    e.set().unwrap();
    for (w, p) in ws.drain(..) {
        let mut w = w;
        assert_eq!(drive(&mut w, p), WaitOutcome::Signaled(0));
    }
}

#[test]
fn detached_wait_sleeps_to_a_near_due_time_exactly_and_is_over_once_done() {
    let _r = TestRoot::new();
    // A due time within two safety-net periods is slept to directly (exact), rather
    // than after a safety-net re-check that the caller may serve late.
    let t = timer(false);
    let due = Duration::from_millis(1500);
    let start = std::time::Instant::now();
    t.set_timer(TimerDue::Relative(due), 0).unwrap();
    let mut w = DetachedWait::new(&[&t], None).unwrap();
    match w.start().unwrap() {
        Progress::Sleep(on) => {
            assert!(on.exact(), "{on:?}");
            let until = on.until().expect("a finite sleep");
            assert!(until >= start + due - Duration::from_millis(5), "{on:?}");
            assert!(until <= start + due + Duration::from_millis(50), "{on:?}");
        }
        p => panic!("the timer is not due yet: {p:?}"),
    }
    w.cancel().unwrap();
    // Far deadlines are not exact: the sleep ends at the safety net.
    let e = event("", false, false);
    let far = std::time::Instant::now() + Duration::from_secs(60);
    let mut w = DetachedWait::new(&[&e], Some(far)).unwrap();
    match w.start().unwrap() {
        Progress::Sleep(on) => assert!(!on.exact() && on.until() < Some(far), "{on:?}"),
        p => panic!("{p:?}"),
    }
    // Once done, a further turn is an error, not a new wait.
    e.set().unwrap();
    let p = w.woken().unwrap();
    assert!(
        matches!(p, Progress::Done(WaitOutcome::Signaled(0))),
        "{p:?}"
    );
    assert!(w.woken().is_err());
    assert_eq!(queue_len(&e), 0);
}
