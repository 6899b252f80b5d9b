//! A cancellation storm: tasks wait with random deadlines, drop and abort their waits
//! while a sync process in another process signals, and the totals must balance:
//! semaphore units (count after = released − taken), auto-event signals (each set
//! consumed exactly once: the signaller waits for an ack before its next set), mutex
//! ownership (never two holders, none left owned).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use procsync::{Event, Semaphore, WaitOutcome};
use procsync_tokio as pt;
use tokio::time::Instant;

use crate::basic::{count, mutex, owner, signaled, sync_try_lock};
use crate::harness::{Proc, Rng, multi_thread, until_async};

const ROUNDS: u32 = 300;
const TASKS: usize = 32;

/// `S E A K`: K rounds of: release one unit of S, set E, wait for the ack A.
pub fn signaller(a: &[String]) -> u8 {
    let s = Semaphore::open(&a[0]).unwrap();
    let e = Event::open(&a[1]).unwrap();
    let ack = Semaphore::open(&a[2]).unwrap();
    let k: u32 = a[3].parse().unwrap();
    for i in 0..k {
        s.release(1).unwrap();
        assert!(
            !e.set().unwrap(),
            "round {i}: the previous set was not consumed"
        );
        if ack.wait(Some(Duration::from_secs(60))).unwrap() != WaitOutcome::Signaled(0) {
            eprintln!("round {i}: the set was lost (no consumer acked within 60 s)");
            return 3;
        }
    }
    0
}

#[derive(Default)]
struct Totals {
    units: AtomicU32,
    signals: AtomicU32,
    holders: AtomicU32,
    held: AtomicU32,
    cancelled: AtomicU32,
}

pub fn cancellation_storm_conserves_units_signals_ownership() {
    let mut rng = Rng::from_env();
    multi_thread(4).block_on(async {
        let (s, _) = Semaphore::create("Local\\st-s", 0, 1 << 20).unwrap();
        let (e, _) = Event::create("Local\\st-e", false, false).unwrap();
        let (ack, _) = Semaphore::create("Local\\st-ack", 0, 1 << 20).unwrap();
        let (s, e, ack) = (
            Arc::new(s.into_handle()),
            Arc::new(e.into_handle()),
            Arc::new(ack.into_handle()),
        );
        let m = mutex();
        let rounds = ROUNDS.to_string();
        let child = Proc::spawn(
            "storm-signaller",
            &["Local\\st-s", "Local\\st-e", "Local\\st-ack", &rounds],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let tot = Arc::new(Totals::default());
        let workers: Vec<_> = (0..TASKS)
            .map(|_| {
                let mut rng = rng.fork();
                let (s, e, ack, m) = (s.clone(), e.clone(), ack.clone(), m.clone());
                let (stop, tot) = (stop.clone(), tot.clone());
                tokio::spawn(async move {
                    let consumed = |tot: &Totals| {
                        tot.signals.fetch_add(1, Ordering::SeqCst);
                        ack.release(1).unwrap();
                    };
                    while !stop.load(Ordering::SeqCst) {
                        let ms = Duration::from_micros(rng.below(3000));
                        let deadline = Instant::now() + ms;
                        match rng.below(6) {
                            0 => match tokio::time::timeout(ms, pt::acquire(&s)).await {
                                Ok(p) => {
                                    p.unwrap().forget();
                                    tot.units.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(_) => {
                                    tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            1 => match tokio::time::timeout(ms, pt::wait(&e)).await {
                                Ok(a) => {
                                    assert_eq!(a.unwrap().outcome(), WaitOutcome::Signaled(0));
                                    consumed(&tot);
                                }
                                Err(_) => {
                                    tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            2 => {
                                let a = pt::wait_any_until(&[&s, &e], deadline).await.unwrap();
                                match a.index() {
                                    Some(0) => {
                                        tot.units.fetch_add(1, Ordering::SeqCst);
                                    }
                                    Some(_) => consumed(&tot),
                                    None => {
                                        tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                            3 => {
                                if let Some(g) = pt::lock_until(&m, deadline).await.unwrap() {
                                    let was = tot.holders.fetch_add(1, Ordering::SeqCst);
                                    assert_eq!(was, 0, "two tasks hold the mutex");
                                    tokio::task::yield_now().await;
                                    tot.held.fetch_add(1, Ordering::SeqCst);
                                    tot.holders.fetch_sub(1, Ordering::SeqCst);
                                    if rng.below(2) == 0 {
                                        drop(g);
                                    } else {
                                        g.unlock().await.unwrap();
                                    }
                                } else {
                                    tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            4 => {
                                // Abort a task mid-wait; a result it had already
                                // returned is still ours to count.
                                let t = tokio::spawn(pt::wait(&e));
                                for _ in 0..rng.below(4) {
                                    tokio::task::yield_now().await;
                                }
                                t.abort();
                                match t.await {
                                    Ok(a) => {
                                        assert_eq!(
                                            a.unwrap().outcome(),
                                            WaitOutcome::Signaled(0)
                                        );
                                        consumed(&tot);
                                    }
                                    Err(j) => {
                                        assert!(j.is_cancelled());
                                        tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                            _ => {
                                // Polled once (registered), then dropped at once.
                                match tokio::time::timeout(Duration::ZERO, pt::lock(&m)).await {
                                    Ok(g) => drop(g.unwrap()),
                                    Err(_) => {
                                        tot.cancelled.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::task::spawn_blocking(move || child.expect_success("the sync signaller"))
            .await
            .unwrap();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.await.unwrap();
        }
        let units = tot.units.load(Ordering::SeqCst);
        let signals = tot.signals.load(Ordering::SeqCst);
        println!(
            "{ROUNDS} rounds: {units} units taken, {signals} signals consumed, {} mutex holds, {} waits cancelled",
            tot.held.load(Ordering::SeqCst),
            tot.cancelled.load(Ordering::SeqCst)
        );
        assert_eq!(signals, ROUNDS, "each set consumed exactly once");
        assert!(!signaled(&e));
        assert_eq!(count(&ack), 0, "no consumption was acked twice");
        assert_eq!(count(&s) + units, ROUNDS, "semaphore units conserved");
        until_async("dropped guards are released", || owner(&m) == procsync::Owner::None)
            .await;
        assert_eq!(sync_try_lock(&m), WaitOutcome::Signaled(0), "free, not abandoned");
        until_async("the reactors forgot every wait", || {
            s.waiters().unwrap() == 0 && e.waiters().unwrap() == 0 && m.waiters().unwrap() == 0
        })
        .await;
        assert!(tot.cancelled.load(Ordering::SeqCst) > 0, "the storm cancelled waits");
    });
}
