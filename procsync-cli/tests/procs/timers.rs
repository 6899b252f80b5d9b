//! Waitable timers across processes (docs/SEMANTICS.md, TM-*). Timing assertions are
//! lower bounds only ("not before the due time"); upper bounds are generous deadlines.
//!
//! Robust under load: waiters are known to be queued through `waiters`
//! before a timer that must find them is set; a fired timer is observed by polling `query`;
//! where a check must run before a due time or between two expirations, that interval is at
//! least a second (nothing assumes two REPL commands run within a few hundred milliseconds).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::harness::{Repl, Root, first_answer, unique, wait_for_waiters};

#[test]
fn one_shot_manual_timer_releases_every_waiter_in_other_processes_and_stays_signaled() {
    // TM-01, TM-08, TM-10, TM-21
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("tm-manual");
    a.expect(&format!("create timer t name={n} manual"), "ok created");
    a.expect("wait t timeout=0", "timeout");
    a.expect("query t", "ok timer manual unsignaled armed=0");
    b.expect(&format!("open timer t name={n}"), "ok");
    c.expect(&format!("open timer t name={n}"), "ok");
    let start = Instant::now();
    a.expect("settimer t due=300", "ok");
    b.send("wait t timeout=10000");
    c.send("wait t timeout=10000");
    assert_eq!(b.answer(), "signaled");
    assert_eq!(c.answer(), "signaled");
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "fired early: {:?}",
        start.elapsed()
    );
    // Stays signaled: waits do not reset a manual timer (TM-10).
    b.expect("wait t timeout=0", "signaled");
    a.expect("query t", "ok timer manual signaled armed=0");
}

#[test]
fn periodic_sync_timer_releases_one_waiter_per_expiration() {
    // TM-09, TM-11, TM-13
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("tm-sync");
    a.expect(&format!("create timer t name={n}"), "ok created");
    b.expect(&format!("open timer t name={n}"), "ok");
    c.expect(&format!("open timer t name={n}"), "ok");
    b.send("wait t timeout=20000");
    c.send("wait t timeout=20000");
    wait_for_waiters(&mut a, "t", 2);
    // A long period: the query below must run before the third expiration, which finds
    // nobody waiting and would leave the timer signaled.
    a.expect("settimer t due=100 period=2000", "ok");
    // The first expiration releases exactly one of the two waiters…
    let (first, answer) = first_answer(&mut [&mut b, &mut c]);
    assert_eq!(answer, "signaled");
    // …and it is consumed: the timer reads unsignaled right after (the second expiration, if
    // already due, went to the other waiter).
    a.expect("query t", "ok timer sync unsignaled armed=1");
    // The next expiration releases the other one.
    let other = if first == 0 { &mut c } else { &mut b };
    assert_eq!(other.answer(), "signaled");
    a.expect("cancel t", "ok");
    a.expect("query t", "ok timer sync unsignaled armed=0");
}

#[test]
fn cancel_before_due_keeps_waiters_waiting_and_set_again_resets() {
    // TM-15, TM-16, TM-17, TM-18
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("tm-cancel");
    a.expect(&format!("create timer t name={n} manual"), "ok created");
    b.expect(&format!("open timer t name={n}"), "ok");
    // The cancel must land before the due time: a second is plenty even on a loaded machine.
    a.expect("settimer t due=1000", "ok");
    a.expect("cancel t", "ok");
    b.expect("wait t timeout=1500", "timeout");
    a.expect("query t", "ok timer manual unsignaled armed=0");
    // Fire it, then set again: signaled state is reset until the new due time.
    a.expect("settimer t due=0", "ok");
    b.expect("wait t timeout=0", "signaled");
    a.expect("settimer t due=2000", "ok");
    b.expect("wait t timeout=0", "timeout");
    a.expect("query t", "ok timer manual unsignaled armed=1");
    b.expect("wait t timeout=10000", "signaled");
    // Cancelling a signaled timer leaves it signaled.
    a.expect("cancel t", "ok");
    b.expect("wait t timeout=0", "signaled");
}

#[test]
fn absolute_due_time_in_the_past_signals_at_once() {
    // TM-04, TM-23
    let root = Root::fresh();
    let mut a = root.repl();
    a.expect(
        &format!("create timer t name={}", unique("tm-abs")),
        "ok created",
    );
    a.expect("settimer t at=1000", "ok");
    a.expect("wait t timeout=0", "signaled");
    a.expect("wait t timeout=0", "timeout");
    let soon = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 2000;
    let start = Instant::now();
    a.expect(&format!("settimer t at={soon}"), "ok");
    a.expect("wait t timeout=0", "timeout");
    a.expect("wait t timeout=10000", "signaled");
    assert!(
        start.elapsed() >= Duration::from_millis(1950),
        "fired early: {:?}",
        start.elapsed()
    );
}

#[test]
fn timers_take_part_in_waitany_and_waitall() {
    // TM-26, WY-03, WL-02
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (tn, en) = (unique("tm-any"), unique("ev-any"));
    a.expect(&format!("create timer t name={tn}"), "ok created");
    a.expect(&format!("create event e name={en}"), "ok created");
    b.expect(&format!("open timer t name={tn}"), "ok");
    b.expect(&format!("open event e name={en}"), "ok");
    a.expect("settimer t due=150", "ok");
    b.expect("waitany e t timeout=10000", "signaled 1");
    // Wait-all: the sync timer is consumed only when the whole set is acquired.
    a.expect("settimer t due=100", "ok");
    b.send("waitall t e timeout=10000");
    wait_for_waiters(&mut a, "e", 1);
    // The timer fires while the wait-all is blocked on `e`: it stays signaled (not consumed).
    poll_query(&mut a, "t", "ok timer sync signaled armed=0");
    b.no_answer_now();
    a.expect("set e", "ok");
    assert_eq!(b.answer(), "signaled");
    a.expect("query t", "ok timer sync unsignaled armed=0");
    a.expect("query e", "ok event auto unset");
}

#[test]
fn a_timer_whose_setter_was_killed_still_fires() {
    // TM-21: expiry belongs to the object, not to the arming process.
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("tm-kill");
    a.expect(&format!("create timer t name={n}"), "ok created");
    b.expect(&format!("open timer t name={n}"), "ok");
    a.expect("settimer t due=300", "ok");
    a.kill();
    b.expect("wait t timeout=10000", "signaled");
}

#[test]
fn timer_argument_errors() {
    let root = Root::fresh();
    let mut a = root.repl();
    a.expect(
        &format!("create timer t name={}", unique("tm-err")),
        "ok created",
    );
    a.expect(
        &format!("create event e name={}", unique("tm-err-e")),
        "ok created",
    );
    a.expect_err("settimer e due=10", "wrong-type");
    a.expect_err("set t", "wrong-type");
    a.expect_err("signalandwait t e timeout=0", "wrong-type");
}

/// Asks `query <alias>` until it answers `want`, within a generous deadline: the handshake for
/// "the timer has fired" (a sleep would guess how long that takes on a loaded machine).
#[track_caller]
fn poll_query(r: &mut Repl<'_>, alias: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = r.ask(&format!("query {alias}"));
        if got == want {
            return;
        }
        if Instant::now() >= deadline {
            r.fail(&format!(
                "`query {alias}`: expected `{want}` within 10 s, last answer `{got}`"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
