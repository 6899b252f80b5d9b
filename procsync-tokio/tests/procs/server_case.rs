//! Runs the example server (examples/server.rs, compiled into this binary) as two
//! processes sharing one semaphore of 2 slots, and checks the cross-process limit, the
//! jobs' completion, the shutdown on the named event, and that no slot is lost.

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::Duration;

use procsync::{Event, Semaphore};

use crate::basic::count;
use crate::harness::{Proc, until};

const SLOTS: &str = "Local\\ex-slots";
const STOP: &str = "Local\\ex-stop";
const GO: &str = "Local\\ex-go";
const NEVER: &str = "Local\\ex-never";

fn lines_of(p: &mut Proc, tag: usize, tx: &mpsc::Sender<(usize, String)>) {
    let out = BufReader::new(p.child.stdout.take().unwrap());
    let tx = tx.clone();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send((tag, l));
        }
    });
}

fn next(rx: &mpsc::Receiver<(usize, String)>) -> (usize, String) {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a line from a server within 60 s")
}

pub fn example_server_limits_jobs_across_processes() {
    let (slots, _) = Semaphore::create(SLOTS, 2, 2).unwrap();
    let (stop, _) = Event::create(STOP, true, false).unwrap();
    let (go, _) = Event::create(GO, true, false).unwrap();
    let (_never, _) = Event::create(NEVER, true, false).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut servers: Vec<Proc> = (0..2)
        .map(|_| Proc::spawn("server", &[SLOTS, STOP, "2"]))
        .collect();
    for (i, s) in servers.iter_mut().enumerate() {
        lines_of(s, i, &tx);
        let stdin = s.child.stdin.as_mut().unwrap();
        for j in 0..3 {
            writeln!(stdin, "job s{i}-{j} wait {GO}").unwrap();
        }
        stdin.flush().unwrap();
    }
    // Two jobs hold the two slots; the other four wait in two processes.
    let mut started = Vec::new();
    while started.len() < 2 {
        let (i, l) = next(&rx);
        assert!(l.starts_with("started "), "server {i}: {l}");
        started.push(l);
    }
    until("both servers queue for a slot", || {
        slots.waiters().unwrap() == 2
    });
    assert_eq!(count(&slots), 0);
    assert!(
        rx.try_recv().is_err(),
        "a third job started with both slots taken"
    );

    go.set().unwrap();
    // (The two servers' outputs reach us through two pipes, so their interleaving
    // here says nothing about the order of events; the limit was checked above.)
    let mut dones = 0;
    while dones < 6 {
        let (i, l) = next(&rx);
        if l.starts_with("done ") {
            dones += 1;
        } else {
            assert!(l.starts_with("started "), "server {i}: {l}");
        }
    }
    until("every slot is back", || count(&slots) == 2);

    // Jobs that never end hold both slots, one more queues; then stop.
    let stdin = servers[0].child.stdin.as_mut().unwrap();
    for j in 0..3 {
        writeln!(stdin, "job x{j} wait {NEVER}").unwrap();
    }
    stdin.flush().unwrap();
    for _ in 0..2 {
        let (_, l) = next(&rx);
        assert!(l.starts_with("started x"), "{l}");
    }
    until("the third job queues for a slot", || {
        slots.waiters().unwrap() == 1
    });
    stop.set().unwrap();
    let mut summaries = Vec::new();
    while summaries.len() < 2 {
        let (i, l) = next(&rx);
        if l.starts_with("stopped: ") {
            summaries.push((i, l));
        }
    }
    summaries.sort();
    assert_eq!(summaries[0].1, "stopped: 3 done, 3 cancelled");
    assert_eq!(summaries[1].1, "stopped: 3 done, 0 cancelled");
    for s in servers {
        s.expect_success("a server");
    }
    assert_eq!(count(&slots), 2, "cancelled jobs gave their slots back");
}
