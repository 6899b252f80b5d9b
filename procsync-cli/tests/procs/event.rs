//! Events across processes (EV-*): manual events release every waiter and stay set; auto
//! events hand one signal to exactly one waiter; waits with timeouts (W1-*, TO-*).

use std::time::{Duration, Instant};

use crate::harness::{
    LONG_WAIT_MS, Repl, Root, assert_none_answered, first_answer, unique, wait_for_waiters,
};

/// EV-09/EV-14: a manual event with blocked waiters in three other processes: one `set`
/// releases all of them and the event stays set; later waits pass until `reset`.
#[test]
fn manual_event_set_releases_waiters_in_three_processes() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl());
    let n = unique("ev09");

    a.expect(&format!("create event e name={n} manual"), "ok created");
    for w in [&mut b, &mut c, &mut d] {
        w.expect(&format!("open event e name={n}"), "ok");
        w.send(&format!("wait e timeout={LONG_WAIT_MS}"));
    }
    wait_for_waiters(&mut a, "e", 3);
    assert_none_answered(&mut [&mut b, &mut c, &mut d]);

    a.expect("set e", "ok");
    for w in [&mut b, &mut c, &mut d] {
        let got = w.answer();
        if got != "signaled" {
            w.fail(&format!(
                "blocked wait: expected `signaled` after `set`, got `{got}`"
            ));
        }
    }
    a.expect("query e", "ok event manual set");
    d.expect("wait e timeout=0", "signaled");
    b.expect("query e", "ok event manual set");

    a.expect("reset e", "ok");
    b.expect("wait e timeout=0", "timeout");
    c.expect("query e", "ok event manual unset");
}

/// EV-09/EV-14 with every kind of thread waiter at once, twice over: a single wait in one
/// process, a `waitany` whose manual event is the second object in another, two threads
/// of a third, and a process killed while it waits. Threads of private waits on a
/// manual-reset event sleep on its `seq` word as well and are woken together by one
/// `FUTEX_WAKE` (`queue::hand_off`); one `set` must still release every live one, each
/// with the right index, round after round (the word's value moves on every set), and a
/// dead waiter's entry must hold nobody up.
#[test]
fn manual_event_set_releases_every_kind_of_waiter_each_round() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl());
    let n = unique("ev09all");
    let x = unique("ev09x");
    a.expect(&format!("create event e name={n} manual"), "ok created");
    for w in [&mut b, &mut c, &mut d] {
        w.expect(&format!("open event e name={n}"), "ok");
    }
    c.expect(&format!("create event x name={x}"), "ok created");
    for round in 0..3 {
        let mut doomed = root.repl();
        doomed.expect(&format!("open event e name={n}"), "ok");
        doomed.send(&format!("wait e timeout={LONG_WAIT_MS}"));
        b.send(&format!("wait e timeout={LONG_WAIT_MS}"));
        c.send(&format!("waitany x e timeout={LONG_WAIT_MS}"));
        d.send(&format!("@t1 wait e timeout={LONG_WAIT_MS}"));
        d.send(&format!("@t2 wait e timeout={LONG_WAIT_MS}"));
        wait_for_waiters(&mut a, "e", 5);
        doomed.kill();
        assert_none_answered(&mut [&mut b, &mut c]);
        let set_at = Instant::now();
        a.expect("set e", "ok");
        let got = b.answer();
        assert_eq!(got, "signaled", "round {round}: the single wait");
        let got = c.answer();
        assert_eq!(got, "signaled 1", "round {round}: the waitany");
        assert_eq!(d.answer_for("@t1"), "@t1 signaled", "round {round}");
        assert_eq!(d.answer_for("@t2"), "@t2 signaled", "round {round}");
        // Not a speed check: a waiter the set failed to wake is still released, by its
        // safety-net re-check about a second after it went to sleep; this tells the two
        // apart (the set comes a few milliseconds after the last waiter slept).
        let took = set_at.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "round {round}: the last waiter answered {took:?} after the set: woken by its \
             safety-net re-check, not by the set (a lost wake-up)"
        );
        a.expect("query e", "ok event manual set");
        c.expect("waitany x timeout=0", "timeout");
        a.expect("reset e", "ok");
    }
}

/// EV-08 (hand-off): an auto event with blocked waiters in three processes: each `set`
/// releases exactly one of them, the event reads `unset` right after the `set` (the signal was
/// handed to a waiter), and the others stay blocked. Which waiter goes first is unspecified
/// (EV-11), so the test takes whichever answers.
#[test]
fn auto_event_set_releases_exactly_one_waiter_per_set() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl());
    let n = unique("ev08");

    a.expect(&format!("create event e name={n}"), "ok created");
    for w in [&mut b, &mut c, &mut d] {
        w.expect(&format!("open event e name={n}"), "ok");
        w.send(&format!("wait e timeout={LONG_WAIT_MS}"));
    }
    let mut waiting: Vec<&mut Repl<'_>> = vec![&mut b, &mut c, &mut d];
    wait_for_waiters(&mut a, "e", 3);
    assert_none_answered(&mut waiting);

    while !waiting.is_empty() {
        a.expect("set e", "ok");
        a.expect("query e", "ok event auto unset");
        let (i, got) = first_answer(&mut waiting);
        let released = waiting.remove(i);
        if got != "signaled" {
            released.fail(&format!("expected `signaled` after `set`, got `{got}`"));
        }
        // Exactly the others are still queued (one released per set), and none answered.
        wait_for_waiters(&mut a, "e", waiting.len());
        assert_none_answered(&mut waiting);
    }
    a.expect("query e", "ok event auto unset");
    a.expect("wait e timeout=0", "timeout");
}

/// EV-07/EV-10/EV-04: an auto event set twice with no waiters (from two processes) holds one
/// signal: the first wait passes, the second times out.
#[test]
fn auto_event_set_twice_without_waiters_leaves_one_signal() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("ev10");

    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    c.expect(&format!("open event e name={n}"), "ok");
    a.expect("set e", "ok");
    b.expect("set e", "ok");
    a.expect("query e", "ok event auto set");

    c.expect("wait e timeout=0", "signaled");
    b.expect("wait e timeout=0", "timeout");
    a.expect("query e", "ok event auto unset");
}

/// W1-02/EV-01: a wait with timeout 0 on an unset event times out at once; TO-03: a finite
/// timeout never ends early; EV-06: a satisfied wait resets an auto event.
#[test]
fn waits_on_unset_event_time_out() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (auto, manual) = (unique("w1-auto"), unique("w1-manual"));

    a.expect(&format!("create event e name={auto}"), "ok created");
    a.expect(
        &format!("create event m name={manual} manual"),
        "ok created",
    );
    a.expect("wait e timeout=0", "timeout");
    a.expect("wait m timeout=0", "timeout");

    b.expect(&format!("open event e name={auto}"), "ok");
    let start = Instant::now();
    b.expect("wait e timeout=150", "timeout");
    let took = start.elapsed();
    if took < Duration::from_millis(150) {
        b.fail(&format!(
            "`wait e timeout=150` timed out after only {took:?}"
        ));
    }

    // A signaled auto event passes one wait and is unset afterwards.
    a.expect(
        &format!("create event i name={} initial", unique("w1-initial")),
        "ok created",
    );
    a.expect("query i", "ok event auto set");
    a.expect("wait i timeout=0", "signaled");
    a.expect("query i", "ok event auto unset");
    a.expect("wait i timeout=0", "timeout");
}

/// EV-02/EV-05: a manual event created set passes any number of waits; `reset` (from any
/// process) unsets it, and resetting an unset event is a harmless no-op.
#[test]
fn reset_unsets_manual_and_auto_events() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("reset");

    a.expect(
        &format!("create event e name={n} manual initial"),
        "ok created",
    );
    a.expect("query e", "ok event manual set");
    b.expect(&format!("open event e name={n}"), "ok");
    b.expect("query e", "ok event manual set");
    b.expect("wait e timeout=0", "signaled");
    b.expect("wait e timeout=0", "signaled");
    a.expect("query e", "ok event manual set");

    b.expect("reset e", "ok");
    a.expect("query e", "ok event manual unset");
    a.expect("wait e timeout=0", "timeout");
    a.expect("reset e", "ok");
    b.expect("query e", "ok event manual unset");

    a.expect(
        &format!("create event f name={} initial", unique("reset-auto")),
        "ok created",
    );
    a.expect("reset f", "ok");
    a.expect("query f", "ok event auto unset");
    a.expect("wait f timeout=0", "timeout");
}

/// EV-14/W1-07: a `set` in one process releases a blocked waiter in another within its
/// timeout, and the acquisition is applied (the auto event is consumed).
#[test]
fn set_in_one_process_releases_blocked_waiter_in_another() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("ev14");

    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    for _ in 0..2 {
        b.send(&format!("wait e timeout={LONG_WAIT_MS}"));
        wait_for_waiters(&mut a, "e", 1);
        b.no_answer_now();
        a.expect("set e", "ok");
        let got = b.answer();
        if got != "signaled" {
            b.fail(&format!("expected `signaled`, got `{got}`"));
        }
        a.expect("query e", "ok event auto unset");
    }
}
