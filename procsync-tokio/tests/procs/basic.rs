//! Single-process cases: each kind, wait-any order, deadlines, cancellation at every
//! stage, FIFO, wait-all, signal-and-wait, bad input, both runtime flavours.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use procsync::{
    Access, CreateOptions, Error, Handle, ObjectSpec, ObjectState, Owner, TimerDue, WaitOutcome,
};
use procsync_tokio as pt;
use tokio::time::Instant;

use crate::harness::{current_thread, multi_thread, queued, until_async};

pub fn obj(spec: ObjectSpec) -> Arc<Handle> {
    Arc::new(
        Handle::create(spec, "", &CreateOptions::default())
            .expect("create")
            .0,
    )
}
pub fn event(manual: bool, initial: bool) -> Arc<Handle> {
    obj(ObjectSpec::Event { manual, initial })
}
pub fn semaphore(initial: u32, max: u32) -> Arc<Handle> {
    obj(ObjectSpec::Semaphore { initial, max })
}
pub fn mutex() -> Arc<Handle> {
    obj(ObjectSpec::Mutex { owned: false })
}
pub fn count(s: &Handle) -> u32 {
    match s.query().unwrap() {
        ObjectState::Semaphore { count, .. } => count,
        other => panic!("not a semaphore: {other:?}"),
    }
}
pub fn signaled(e: &Handle) -> bool {
    match e.query().unwrap() {
        ObjectState::Event { signaled, .. } | ObjectState::Timer { signaled, .. } => signaled,
        other => panic!("not an event: {other:?}"),
    }
}
pub fn owner(m: &Handle) -> Owner {
    match m.query().unwrap() {
        ObjectState::Mutex { owner, .. } => owner,
        other => panic!("not a mutex: {other:?}"),
    }
}

/// Tries the mutex from a fresh sync thread with a zero timeout, releasing it if taken.
pub fn sync_try_lock(m: &Arc<Handle>) -> WaitOutcome {
    let m = m.clone();
    std::thread::spawn(move || {
        let r = m.wait(Some(Duration::ZERO)).unwrap();
        if r != WaitOutcome::TimedOut {
            m.release(1).unwrap();
        }
        r
    })
    .join()
    .unwrap()
}

/// A waker that records that it was woken: the wait's value has been handed over.
#[derive(Default)]
pub struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}
impl Flag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `f` once with a waker that records a wake-up; returns the flag.
pub fn poll_once<F: Future + Unpin>(f: &mut F) -> Arc<Flag> {
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(
        Pin::new(f).poll(&mut cx).is_pending(),
        "expected a pending wait"
    );
    flag
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

pub fn single_waits_complete_for_each_kind() {
    multi_thread(2).block_on(async {
        // Auto-reset event: one waiter released, the signal consumed.
        let e = event(false, false);
        let t = tokio::spawn(pt::wait(&e));
        until_async("the reactor waits on the event", || {
            e.waiters().unwrap() == 1
        })
        .await;
        assert!(!e.set().unwrap());
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        assert!(!signaled(&e), "the wait consumed the auto-reset signal");

        // Manual-reset event: every waiter released, the event stays set.
        let e = event(true, false);
        let t1 = tokio::spawn(pt::wait(&e));
        let t2 = tokio::spawn(pt::wait(&*e));
        until_async("both waits are queued", || {
            e.waiters().unwrap() == queued(2)
        })
        .await;
        e.set().unwrap();
        assert_eq!(
            t1.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        assert_eq!(
            t2.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        assert!(signaled(&e));

        // Semaphore: release(2) with one waiter leaves one unit.
        let s = semaphore(0, 5);
        let t = tokio::spawn(pt::acquire(&s));
        until_async("the reactor waits on the semaphore", || {
            s.waiters().unwrap() == 1
        })
        .await;
        assert_eq!(s.release(2).unwrap(), 0);
        let permit = t.await.unwrap().unwrap();
        assert_eq!(count(&s), 1);
        drop(permit);
        assert_eq!(count(&s), 2, "a dropped permit releases its unit");

        // Mutex: owned for the task by a reactor thread, not by this thread.
        let m = mutex();
        let g = pt::lock(&m).await.unwrap();
        assert!(!g.was_abandoned());
        assert_eq!(owner(&m), Owner::Other, "the reactor thread owns it");
        assert_eq!(sync_try_lock(&m), WaitOutcome::TimedOut);
        assert_eq!(g.unlock().await.unwrap(), 1);
        assert_eq!(owner(&m), Owner::None);
        assert_eq!(sync_try_lock(&m), WaitOutcome::Signaled(0));

        // Manual-reset timer.
        let tm = obj(ObjectSpec::Timer { manual: true });
        tm.set_timer(TimerDue::Relative(Duration::from_millis(5)), 0)
            .unwrap();
        let a = pt::AsyncWait::wait_async(&tm).await.unwrap();
        assert_eq!(a.outcome(), WaitOutcome::Signaled(0));
        assert!(signaled(&tm));
    });
}

/// A set-then-reset or a pulse of a manual-reset event releases every async waiter
/// queued at that moment, not only the first (PU-01).
pub fn manual_event_pulse_releases_every_async_waiter_pu01() {
    multi_thread(2).block_on(async {
        let e = event(true, false);
        for signal in ["pulse", "set-reset"] {
            let mut fs: Vec<pt::Wait> = (0..3).map(|_| pt::wait(&e)).collect();
            let flags: Vec<_> = fs.iter_mut().map(poll_once).collect();
            until_async("queued", || e.waiters().unwrap() == queued(3)).await;
            if signal == "pulse" {
                e.pulse().unwrap();
            } else {
                e.set().unwrap();
                e.reset().unwrap();
            }
            until_async("all three released", || flags.iter().all(|f| f.is_set())).await;
            for f in fs {
                assert_eq!(
                    f.await.unwrap().outcome(),
                    WaitOutcome::Signaled(0),
                    "{signal}"
                );
            }
            assert!(!signaled(&e));
        }
    });
}

pub fn wait_any_takes_lowest_index_wy03() {
    multi_thread(2).block_on(async {
        let es: Vec<Arc<Handle>> = (0..3).map(|_| event(false, false)).collect();
        let refs: Vec<&Arc<Handle>> = es.iter().collect();
        es[2].set().unwrap();
        es[1].set().unwrap();
        let a = pt::wait_any(&refs).await.unwrap();
        assert_eq!(
            a.outcome(),
            WaitOutcome::Signaled(1),
            "lowest signaled index first"
        );
        assert_eq!(a.index(), Some(1));
        assert_eq!(
            pt::wait_any(&refs).await.unwrap().outcome(),
            WaitOutcome::Signaled(2)
        );

        // Pending: the object signaled later decides the index.
        let t = tokio::spawn(pt::wait_any(&refs));
        until_async("the reactor waits on all three", || {
            es.iter().all(|e| e.waiters().unwrap() == 1)
        })
        .await;
        es[2].set().unwrap();
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(2)
        );
        assert!(es.iter().all(|e| !signaled(e)), "exactly one signal taken");
        until_async("the reactor forgot the finished wait", || {
            es.iter().all(|e| e.waiters().unwrap() == 0)
        })
        .await;
    });
}

pub fn deadline_passes_with_object_untouched_to05() {
    multi_thread(2).block_on(async {
        let e = event(false, false);
        let a = pt::wait_until(&e, soon(20)).await.unwrap();
        assert!(a.is_timed_out());
        assert_eq!(a.index(), None);
        let r = tokio::time::timeout(Duration::from_millis(20), pt::wait(&e)).await;
        assert!(r.is_err(), "tokio::time::timeout works on the future");
        until_async("the cancelled waits are pruned", || {
            e.waiters().unwrap() == 0
        })
        .await;
        e.set().unwrap();
        assert!(signaled(&e), "nothing consumed the later signal");

        let s = semaphore(0, 1);
        assert!(pt::acquire_until(&s, soon(20)).await.unwrap().is_none());
        until_async("pruned", || s.waiters().unwrap() == 0).await;
        s.release(1).unwrap();
        assert_eq!(count(&s), 1);

        let m = mutex();
        let g = pt::lock(&m).await.unwrap();
        assert!(pt::lock_until(&m, soon(20)).await.unwrap().is_none());
        drop(g);
        until_async("the dropped guard's mutex is released", || {
            owner(&m) == Owner::None
        })
        .await;
        assert!(pt::lock_until(&m, soon(5000)).await.unwrap().is_some());
    });
}

/// The value reached the future (its waker fired) but the future is dropped before
/// taking it: the acquisition is undone, as if it had timed out first (TO-06).
pub fn dropped_after_handoff_gives_back_to06() {
    multi_thread(2).block_on(async {
        let s = semaphore(0, 1);
        let mut f = pt::wait(&s);
        let flag = poll_once(&mut f);
        until_async("queued", || s.waiters().unwrap() == 1).await;
        s.release(1).unwrap();
        until_async("handed over", || flag.is_set()).await;
        assert_eq!(count(&s), 0, "the unit is in the future's hands");
        drop(f);
        assert_eq!(count(&s), 1, "dropping gave the unit back");

        let e = event(false, false);
        let mut f = pt::wait(&e);
        let flag = poll_once(&mut f);
        until_async("queued", || e.waiters().unwrap() == 1).await;
        e.set().unwrap();
        until_async("handed over", || flag.is_set()).await;
        assert!(!signaled(&e));
        drop(f);
        assert!(signaled(&e), "dropping set the auto-reset event again");

        let m = mutex();
        let g = pt::lock(&m).await.unwrap();
        let mut f = Box::pin(pt::lock(&m));
        let flag = poll_once(&mut f);
        drop(g);
        until_async("handed over", || flag.is_set()).await;
        assert_eq!(owner(&m), Owner::Other, "a reactor owns it for the future");
        drop(f);
        until_async("released by its owner thread", || owner(&m) == Owner::None).await;
        assert_eq!(sync_try_lock(&m), WaitOutcome::Signaled(0));

        // A synchronization timer's expiry goes back too, on both paths.
        let tm = obj(ObjectSpec::Timer { manual: false });
        let mut f = pt::wait(&tm);
        let flag = poll_once(&mut f);
        until_async("queued", || tm.waiters().unwrap() == 1).await;
        tm.set_timer(TimerDue::Relative(Duration::from_millis(1)), 0)
            .unwrap();
        // The waker fires at once too (a new due time rings every queued waiter, so
        // that it sleeps anew): wait for the expiry itself, which the query below makes
        // once the timer is due, handing it to the queued future.
        until_async("due, and handed over", || {
            let _ = signaled(&tm);
            flag.is_set() && tm.waiters().unwrap() == 0
        })
        .await;
        assert!(!signaled(&tm), "the expiry is in the future's hands");
        drop(f);
        assert!(signaled(&tm), "dropping signaled the timer again");
        assert_eq!(
            tm.wait(Some(Duration::ZERO)).unwrap(),
            WaitOutcome::Signaled(0)
        );

        // A manual-reset event is never consumed by a wait.
        let e = event(true, false);
        let mut f = pt::wait(&e);
        let flag = poll_once(&mut f);
        until_async("queued", || e.waiters().unwrap() == 1).await;
        e.set().unwrap();
        until_async("handed over", || flag.is_set()).await;
        drop(f);
        assert!(signaled(&e));
    });
}

/// Dropped while pending: the reactor stops waiting, and the next signal stays.
pub fn dropped_before_signal_takes_nothing_to06() {
    multi_thread(2).block_on(async {
        let s = semaphore(0, 1);
        let e = event(false, false);
        let m = mutex();
        let g = pt::lock(&m).await.unwrap();
        let mut fs = pt::wait(&s);
        let mut fe = pt::wait(&e);
        let mut fm = Box::pin(pt::lock(&m));
        let flags = [poll_once(&mut fs), poll_once(&mut fe), poll_once(&mut fm)];
        until_async("queued", || {
            s.waiters().unwrap() == 1 && e.waiters().unwrap() == 1
        })
        .await;
        drop((fs, fe, fm));
        until_async("pruned", || {
            s.waiters().unwrap() == 0 && e.waiters().unwrap() == 0
        })
        .await;
        s.release(1).unwrap();
        e.set().unwrap();
        g.unlock().await.unwrap();
        assert_eq!(count(&s), 1);
        assert!(signaled(&e));
        assert_eq!(owner(&m), Owner::None);
        assert!(
            flags.iter().all(|f| !f.is_set()),
            "no dropped wait was woken"
        );
    });
}

pub fn mutex_guard_moves_between_tasks() {
    multi_thread(4).block_on(async {
        let m = mutex();
        let g = pt::lock(&m).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<pt::MutexGuard>();
        let t = tokio::spawn(async move {
            let g = rx.await.unwrap();
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            g.unlock().await
        });
        assert_eq!(sync_try_lock(&m), WaitOutcome::TimedOut);
        assert!(pt::lock_until(&m, soon(20)).await.unwrap().is_none());
        tx.send(g).unwrap();
        assert_eq!(t.await.unwrap().unwrap(), 1);
        assert_eq!(sync_try_lock(&m), WaitOutcome::Signaled(0));

        // Mutual exclusion between tasks that migrate between workers while holding it.
        let inside = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (m, inside, total) = (m.clone(), inside.clone(), total.clone());
                tokio::spawn(async move {
                    for i in 0..40 {
                        let g = pt::lock(&m).await.unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        tokio::task::yield_now().await;
                        total.fetch_add(1, Ordering::SeqCst);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            g.unlock().await.unwrap();
                        } else {
                            drop(g);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(total.load(Ordering::SeqCst), 320);
        until_async("the last guard's release", || owner(&m) == Owner::None).await;
    });
}

pub fn waiters_on_one_object_are_served_fifo() {
    multi_thread(2).block_on(async {
        let s = semaphore(0, 3);
        let mut fs: Vec<pt::Wait> = (0..3).map(|_| pt::wait(&s)).collect();
        let flags: Vec<_> = fs.iter_mut().map(poll_once).collect();
        until_async("queued", || s.waiters().unwrap() == queued(3)).await;
        for k in 0..3 {
            s.release(1).unwrap();
            until_async("the next waiter served", || flags[k].is_set()).await;
            for (j, f) in flags.iter().enumerate() {
                assert_eq!(f.is_set(), j <= k, "waiter {j} after {} releases", k + 1);
            }
        }
        for f in fs {
            assert_eq!(f.await.unwrap().outcome(), WaitOutcome::Signaled(0));
        }
        assert_eq!(count(&s), 0);
    });
}

pub fn wait_all_is_atomic_and_cancel_safe() {
    multi_thread(2).block_on(async {
        let e = event(false, false);
        let s = semaphore(0, 1);
        let m = mutex();
        let t = tokio::spawn(pt::wait_all(&[&e, &s, &m]));
        until_async("the wait-all thread is queued", || {
            e.waiters().unwrap() == 1
        })
        .await;
        e.set().unwrap();
        assert!(
            signaled(&e),
            "a wait-all takes nothing until all are signaled"
        );
        s.release(1).unwrap();
        let a = t.await.unwrap().unwrap();
        assert_eq!(a.outcome(), WaitOutcome::Signaled(0));
        assert!(!signaled(&e));
        assert_eq!(count(&s), 0);
        assert_eq!(owner(&m), Owner::Other);
        let g = a.into_guard().expect("the mutex's guard");
        assert_eq!(sync_try_lock(&m), WaitOutcome::TimedOut);
        assert_eq!(g.unlock().await.unwrap(), 1);
        assert_eq!(owner(&m), Owner::None);

        // Dropped while pending: nothing is taken, whichever side sees the signal.
        let mut f = pt::wait_all(&[&e, &s]);
        let flag = poll_once(&mut f);
        until_async("queued", || e.waiters().unwrap() == 1).await;
        drop(f);
        e.set().unwrap();
        s.release(1).unwrap();
        until_async("both signals are back or untaken", || {
            signaled(&e) && count(&s) == 1
        })
        .await;
        assert!(!flag.is_set());

        let lonely = event(false, false);
        let a = pt::wait_all_until(&[&lonely, &e], soon(30)).await.unwrap();
        assert!(a.is_timed_out());
        assert!(signaled(&e), "a timed-out wait-all takes nothing (TO-05)");

        let err = pt::wait_all(&[&e, &e]).await.unwrap_err();
        assert!(matches!(err, Error::DuplicateObject { .. }), "{err}");
    });
}

pub fn signal_and_wait_signals_then_waits() {
    multi_thread(2).block_on(async {
        let s = semaphore(0, 1);
        let e = event(false, false);
        let t = tokio::spawn(pt::signal_and_wait(&s, &e));
        until_async("waiting on the event", || e.waiters().unwrap() == 1).await;
        assert_eq!(count(&s), 1, "signaled before waiting");
        e.set().unwrap();
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );

        let a = pt::signal_and_wait_until(&e, &s, soon(5000)).await.unwrap();
        assert_eq!(a.outcome(), WaitOutcome::Signaled(0), "the unit left above");
        assert!(signaled(&e));
        let a = pt::signal_and_wait_until(&s, &event(false, false), soon(20))
            .await
            .unwrap();
        assert!(a.is_timed_out());
        assert_eq!(count(&s), 1);

        let m = mutex();
        let err = pt::signal_and_wait(&m, &e).await.unwrap_err();
        assert!(err.to_string().contains("MutexGuard"), "{err}");
        let err = pt::signal_and_wait(&s, &s).await.unwrap_err();
        assert!(matches!(err, Error::TooManyPosts { .. }), "{err}");
    });
}

pub fn bad_input_is_a_clear_error() {
    current_thread().block_on(async {
        let none: [&Handle; 0] = [];
        let err = pt::wait_any(&none).await.unwrap_err();
        assert!(err.to_string().contains("1 to 64"), "{err}");
        let e = event(true, true);
        let many: Vec<&Arc<Handle>> = (0..65).map(|_| &e).collect();
        let err = pt::wait_any(&many).await.unwrap_err();
        assert!(err.to_string().contains("not 65"), "{err}");
        let modify_only = e.duplicate(Some(Access::MODIFY)).unwrap();
        let err = pt::wait(&modify_only).await.unwrap_err();
        assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
        assert!(err.to_string().contains("synchronize"), "{err}");
        // A cancelled wait must be able to give back a unit or an auto-reset signal.
        for h in [semaphore(1, 1), event(false, true)] {
            let sync_only = h.duplicate(Some(Access::SYNCHRONIZE)).unwrap();
            let err = pt::wait(&sync_only).await.unwrap_err();
            assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
            assert!(err.to_string().contains("`modify` right"), "{err}");
        }
        let manual_sync_only = e.duplicate(Some(Access::SYNCHRONIZE)).unwrap();
        let a = pt::wait(&manual_sync_only).await.unwrap();
        assert_eq!(
            a.outcome(),
            WaitOutcome::Signaled(0),
            "a manual event needs no undo"
        );
        let err = pt::lock(&e).await.unwrap_err();
        assert!(matches!(err, Error::WrongType { .. }), "{err}");
        let err = pt::acquire(&e).await.unwrap_err();
        assert!(matches!(err, Error::WrongType { .. }), "{err}");
    });
}

pub fn current_thread_runtime_works() {
    current_thread().block_on(async {
        let e = event(false, false);
        let s = semaphore(0, 2);
        let m = mutex();
        let te = tokio::spawn(pt::wait(&e));
        let ts = tokio::spawn(pt::acquire(&s));
        until_async("both queued", || {
            e.waiters().unwrap() == 1 && s.waiters().unwrap() == 1
        })
        .await;
        let (e2, s2) = (e.clone(), s.clone());
        std::thread::spawn(move || {
            e2.set().unwrap();
            s2.release(1).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(
            te.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        ts.await.unwrap().unwrap().forget();
        assert_eq!(count(&s), 0);
        let g = pt::lock(&m).await.unwrap();
        let waiting = tokio::spawn(pt::lock(&m));
        tokio::task::yield_now().await;
        drop(g);
        let g2 = waiting.await.unwrap().unwrap();
        assert_eq!(g2.unlock().await.unwrap(), 1);
        assert!(pt::wait_until(&e, soon(10)).await.unwrap().is_timed_out());
    });
}

/// A wait left pending past its safety-net re-check (the io_uring path cancels its
/// futex wait from the driver's sweep timer, and the future re-checks and sleeps
/// again) still completes on the next signal, consuming it once. The sleep here is the
/// subject (time passing), not a synchronisation.
pub fn wait_pending_past_the_safety_net_still_completes() {
    multi_thread(2).block_on(async {
        let e = event(false, false);
        let t = tokio::spawn(pt::wait(&e));
        until_async("queued", || e.waiters().unwrap() == 1).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(e.waiters().unwrap(), 1, "still queued after the re-check");
        assert!(!t.is_finished());
        assert!(!e.set().unwrap());
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
        assert!(!signaled(&e), "consumed once");
    });
}

/// More pending waits on one object than its queue holds (QUEUE_CAPACITY, 165): on the
/// io_uring path the rest sleep on the object's change counter too (a futex waitv),
/// and all complete when a manual-reset event is set.
pub fn more_waits_on_one_object_than_its_queue_holds() {
    multi_thread(2).block_on(async {
        let e = event(true, false);
        let n = 200;
        let mut fs: Vec<pt::Wait> = (0..n).map(|_| pt::wait(&e)).collect();
        let flags: Vec<_> = fs.iter_mut().map(poll_once).collect();
        until_async(
            "queued (the queue full, the rest counted as overflow)",
            || e.waiters().unwrap() == queued(n),
        )
        .await;
        e.set().unwrap();
        until_async("all released", || flags.iter().all(|f| f.is_set())).await;
        for f in fs {
            assert_eq!(f.await.unwrap().outcome(), WaitOutcome::Signaled(0));
        }
    });
}

/// A future dropped while its io_uring futex wait is outstanding keeps its wait block
/// until the kernel reports that wait finished. Were the block given back at once, the
/// next wait would lease it, and the stale kernel wait, first in line on the doorbell,
/// would swallow the next wait's wake-up: that wait would then complete only at its
/// safety-net re-check (1–2 s), not at once.
pub fn dropped_wait_does_not_swallow_the_next_waits_wake_up() {
    multi_thread(2).block_on(async {
        let (a, b) = (event(false, false), event(false, false));
        for round in 0..20 {
            let mut dropped = pt::wait(&a);
            let _ = poll_once(&mut dropped);
            until_async("the first wait queued", || a.waiters().unwrap() == 1).await;
            drop(dropped);
            let mut next = pt::wait(&b);
            let _ = poll_once(&mut next);
            until_async("the next wait queued", || b.waiters().unwrap() == 1).await;
            b.set().unwrap();
            let got = tokio::time::timeout(Duration::from_millis(900), next).await;
            assert!(
                got.is_ok(),
                "round {round}: the wake-up was swallowed (completed only by the safety net)"
            );
            assert_eq!(got.unwrap().unwrap().outcome(), WaitOutcome::Signaled(0));
            assert!(!signaled(&a), "the dropped wait took nothing");
        }
    });
}

/// A runtime built without I/O cannot host the io_uring path: its waits fall back to
/// the reactor threads, and the probe that finds out (tokio's registration panics in
/// such a runtime) reports nothing through the program's panic hook.
pub fn runtime_without_io_falls_back_to_reactors_quietly() {
    static REPORTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|_| {
        REPORTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let e = event(false, false);
        let t = tokio::spawn(pt::wait(&e));
        until_async("a reactor waits on the event", || {
            e.waiters().unwrap() == 1 && pt::reactor_threads() == 1
        })
        .await;
        e.set().unwrap();
        assert_eq!(
            t.await.unwrap().unwrap().outcome(),
            WaitOutcome::Signaled(0)
        );
    });
    let _ = std::panic::take_hook();
    assert_eq!(
        REPORTED.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the probe's panic reached the panic hook"
    );
}
