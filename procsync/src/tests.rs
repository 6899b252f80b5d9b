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
    h.obj().file().ctl.queue_len.load(Ordering::SeqCst)
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
