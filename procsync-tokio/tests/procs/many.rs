//! Thousands of concurrent async waits on distinct objects: all complete when
//! signalled, with the thread count (from /proc/self/status) within the documented
//! bound of ⌈objects / 63⌉ reactor threads beyond the runtime's own.

use std::sync::Arc;

use procsync::{Handle, WaitOutcome};
use procsync_tokio as pt;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::basic::{event, signaled};
use crate::harness::{multi_thread, threads, until_async};

const WANTED: usize = 10_000;

/// Each unnamed object costs two descriptors (its memfd and its handle's); raises the
/// limit to fit `WANTED` objects, or scales the count to the limit where raising is
/// not permitted (not root), saying so.
fn objects_that_fit() -> usize {
    let need = (WANTED * 3 + 1000) as u64;
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum.unwrap_or(u64::MAX);
    let target = if hard >= need { need } else { need.max(hard) };
    let set = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: Some(target.max(hard)),
        },
    );
    let limit = match set {
        Ok(()) => target,
        Err(_) => {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            );
            hard
        }
    };
    let n = WANTED.min((limit.saturating_sub(1000) / 3) as usize);
    println!("descriptor limit {limit}: {n} objects");
    n
}

pub fn ten_thousand_waits_on_distinct_objects_bounded_threads() {
    let n = objects_that_fit();
    assert!(
        n >= 1000,
        "the descriptor limit allows only {n} objects; raise `ulimit -n`"
    );
    multi_thread(2).block_on(async {
        let events: Vec<Arc<Handle>> = (0..n).map(|_| event(false, false)).collect();
        let base = threads();
        assert_eq!(pt::reactor_threads(), 0);
        let bound = n.div_ceil(pt::OBJECTS_PER_REACTOR);
        for round in 0..2 {
            let tasks: Vec<_> = events.iter().map(|e| tokio::spawn(pt::wait(e))).collect();
            until_async("every wait is queued on its object", || {
                events.iter().all(|e| e.waiters().unwrap() == 1)
            })
            .await;
            let now = threads();
            println!(
                "round {round}: {n} pending waits, {} reactor threads, {now} threads (runtime and main: {base})",
                pt::reactor_threads()
            );
            assert_eq!(pt::reactor_threads(), bound, "reactors are packed 63 objects each");
            assert!(
                now <= base + bound,
                "{now} threads for {n} waits; the bound is {base} + {bound}"
            );
            for e in &events {
                e.set().unwrap();
            }
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap().outcome(), WaitOutcome::Signaled(0));
            }
            assert!(
                events.iter().all(|e| !signaled(e)),
                "each set consumed exactly once"
            );
        }
        until_async("the reactors forgot every object", || {
            events.iter().all(|e| e.waiters().unwrap() == 0)
        })
        .await;
        assert!(threads() <= base + bound, "the second round reused the reactors");
    });
}
