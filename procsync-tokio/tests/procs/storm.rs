//! A cancellation storm: tasks wait with random deadlines, drop and abort their waits
//! while a sync process in another process signals, and the totals must balance:
//! semaphore units (count after = released − taken), auto-event signals (each set
//! consumed exactly once: the signaller waits for an ack before its next set), mutex
//! ownership (never two holders, none left owned).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use procsync::{Access, Event, Handle, ObjectKind, Semaphore, WaitOutcome};
use procsync_tokio as pt;
use tokio::time::Instant;

use crate::basic::{count, mutex, owner, signaled, sync_try_lock};
use crate::harness::{Proc, Rng, multi_thread, threads, until_async};

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

const OBJECTS: usize = 2000;
const RELEASES: u32 = 20_000;

/// `PREFIX N R SEED`: R releases of one unit each, on semaphores `PREFIX<i>` picked at
/// random; prints `released <i> <count>` for each semaphore at the end.
pub fn release_random(a: &[String]) -> u8 {
    signal_random(a, ObjectKind::Semaphore, "released", |h| {
        h.release(1).unwrap();
        true
    })
}

/// `PREFIX N R SEED`: R sets, without waiting for anyone, of auto-reset events
/// `PREFIX<i>` picked at random, up to two yields apart; prints `set <i> <k>` for each
/// event, k the sets that reported "was not set" (EV-03): the signals it created.
pub fn set_random(a: &[String]) -> u8 {
    signal_random(a, ObjectKind::Event, "set", |h| !h.set().unwrap())
}

/// `PREFIX N R SEED`: R calls of `signal` on the objects `PREFIX<i>` of `kind` picked
/// at random (up to two yields apart for events); prints `<what> <i> <k>` per object, k
/// the calls that returned `true`.
fn signal_random(
    a: &[String],
    kind: ObjectKind,
    what: &str,
    signal: impl Fn(&Handle) -> bool,
) -> u8 {
    let n: usize = a[1].parse().unwrap();
    let r: u32 = a[2].parse().unwrap();
    let mut rng = Rng::from_seed(a[3].parse().unwrap());
    let objs: Vec<Handle> = (0..n)
        .map(|i| Handle::open(kind, &format!("{}{i}", a[0]), Access::ALL, false).unwrap())
        .collect();
    let mut counted = vec![0u32; n];
    for _ in 0..r {
        let i = rng.below(n as u64) as usize;
        counted[i] += u32::from(signal(&objs[i]));
        if kind == ObjectKind::Event {
            for _ in 0..rng.below(3) {
                std::thread::yield_now();
            }
        }
    }
    for (i, c) in counted.iter().enumerate() {
        println!("{what} {i} {c}");
    }
    0
}

/// Thousands of semaphores, one task each waiting with random deadlines (and random
/// aborts), while a sync process releases units at random: per semaphore, the units
/// taken plus the count left equal the units released; the reactors stay within
/// ⌈objects / 63⌉ threads throughout.
pub fn storm_over_thousands_of_objects_conserves_units() {
    let mut rng = Rng::from_env();
    let seed = rng.next().to_string();
    multi_thread(2).block_on(async {
        let sems: Vec<Arc<Handle>> = (0..OBJECTS)
            .map(|i| {
                let (s, _) = Semaphore::create(&format!("Local\\many-{i}"), 0, RELEASES).unwrap();
                Arc::new(s.into_handle())
            })
            .collect();
        let taken: Arc<Vec<AtomicU32>> =
            Arc::new((0..OBJECTS).map(|_| AtomicU32::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let bound = OBJECTS.div_ceil(pt::OBJECTS_PER_REACTOR);
        let base = threads();
        let tasks: Vec<_> = sems
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (s, taken, stop) = (s.clone(), taken.clone(), stop.clone());
                let mut rng = rng.fork();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let d = Duration::from_micros(rng.below(5000));
                        if rng.below(4) == 0 {
                            let t = tokio::spawn(pt::acquire(&s));
                            tokio::time::sleep(d).await;
                            t.abort();
                            if let Ok(p) = t.await {
                                p.unwrap().forget();
                                taken[i].fetch_add(1, Ordering::SeqCst);
                            }
                        } else if let Ok(p) = tokio::time::timeout(d, pt::acquire(&s)).await {
                            p.unwrap().forget();
                            taken[i].fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        let mut child = Proc::spawn(
            "release-random",
            &[
                "Local\\many-",
                &OBJECTS.to_string(),
                &RELEASES.to_string(),
                &seed,
            ],
        );
        let mut out = String::new();
        let mut max_threads = 0;
        loop {
            // Sample the thread count while the storm runs.
            max_threads = max_threads.max(threads());
            assert!(
                pt::reactor_threads() <= bound,
                "{} reactors",
                pt::reactor_threads()
            );
            if let Ok(Some(status)) = child.child.try_wait() {
                assert!(status.success(), "the releasing process failed: {status}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::io::Read::read_to_string(child.child.stdout.as_mut().unwrap(), &mut out).unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "{OBJECTS} objects: at most {max_threads} threads (base {base}, reactor bound {bound})"
        );
        assert!(
            max_threads <= base + bound,
            "{max_threads} threads > {base} + {bound}"
        );
        let mut total = 0;
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (i, released): (usize, u32) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let took = taken[i].load(Ordering::SeqCst);
            assert_eq!(
                count(&sems[i]) + took,
                released,
                "semaphore {i}: units not conserved"
            );
            total += released;
        }
        assert_eq!(total, RELEASES);
        let took: u32 = taken.iter().map(|t| t.load(Ordering::SeqCst)).sum();
        println!("{took} of {RELEASES} units taken by async waits, the rest left counted");
        assert!(took > 0, "the storm's waits took units");
        until_async("the reactors forgot every wait", || {
            sems.iter().all(|s| s.waiters().unwrap() == 0)
        })
        .await;
    });
}

const EVENTS: usize = 8;
const SETS: u32 = 6000;

/// EV-03, EV-04, TO-06a across processes: a sync process sets auto-reset events as fast
/// as it can, with no acks, so sets merge whenever an event is already set; tasks wait
/// on them alone and in wait-anys, with random deadlines, timeouts and aborts that cancel
/// waits after the hand-off. Per event, every set that reported "was not set" is
/// consumed exactly once: by a wait, or left set (banked) at the end.
pub fn auto_event_signals_conserved_without_acks_to06a() {
    let mut rng = Rng::from_env();
    let seed = rng.next().to_string();
    multi_thread(2).block_on(async {
        let evs: Vec<Arc<Handle>> = (0..EVENTS)
            .map(|i| {
                let (e, _) = Event::create(&format!("Local\\noack-{i}"), false, false).unwrap();
                Arc::new(e.into_handle())
            })
            .collect();
        let got: Arc<Vec<AtomicU32>> = Arc::new((0..EVENTS).map(|_| AtomicU32::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let cancelled = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (evs, got, stop, cancelled) =
                    (evs.clone(), got.clone(), stop.clone(), cancelled.clone());
                let mut rng = rng.fork();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let d = Duration::from_micros(rng.below(400));
                        let i = rng.below(EVENTS as u64) as usize;
                        let j = (i + 1 + rng.below(EVENTS as u64 - 1) as usize) % EVENTS;
                        let took = match rng.below(3) {
                            0 => tokio::time::timeout(d, pt::wait(&evs[i]))
                                .await
                                .ok()
                                .map(|a| (a.unwrap().outcome(), i)),
                            1 => {
                                let a = pt::wait_any_until(&[&evs[i], &evs[j]], Instant::now() + d)
                                    .await
                                    .unwrap();
                                a.index().map(|k| (WaitOutcome::Signaled(0), [i, j][k]))
                            }
                            _ => {
                                let t = tokio::spawn(pt::wait_any(&[&evs[i], &evs[j]]));
                                for _ in 0..rng.below(3) {
                                    tokio::task::yield_now().await;
                                }
                                t.abort();
                                t.await.ok().map(|a| {
                                    let k = a.unwrap().index().expect("no deadline");
                                    (WaitOutcome::Signaled(0), [i, j][k])
                                })
                            }
                        };
                        match took {
                            Some((o, k)) => {
                                assert_eq!(o, WaitOutcome::Signaled(0));
                                got[k].fetch_add(1, Ordering::SeqCst);
                            }
                            None => {
                                cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        let child = Proc::spawn(
            "set-random",
            &["Local\\noack-", &EVENTS.to_string(), &SETS.to_string(), &seed],
        );
        let out = tokio::task::spawn_blocking(move || {
            let mut child = child;
            let mut out = String::new();
            std::io::Read::read_to_string(child.child.stdout.as_mut().unwrap(), &mut out)
                .unwrap();
            child.expect_success("the setting process");
            out
        })
        .await
        .unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        let mut created_total = 0;
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (i, created): (usize, u32) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            // What is left: the event's signal and any banked behind it.
            let mut left = 0;
            while evs[i].wait(Some(Duration::ZERO)).unwrap() == WaitOutcome::Signaled(0) {
                left += 1;
            }
            let took = got[i].load(Ordering::SeqCst);
            assert_eq!(
                took + left,
                created,
                "event {i}: {created} sets reported a new signal; {took} consumed by waits, {left} left"
            );
            created_total += created;
        }
        let took: u32 = got.iter().map(|g| g.load(Ordering::SeqCst)).sum();
        println!(
            "{SETS} sets, {created_total} new signals, {took} consumed by async waits, {} waits cancelled",
            cancelled.load(Ordering::SeqCst)
        );
        assert!(took > 0 && cancelled.load(Ordering::SeqCst) > 0);
        until_async("the reactors forgot every wait", || {
            evs.iter().all(|e| e.waiters().unwrap() == 0)
        })
        .await;
    });
}
