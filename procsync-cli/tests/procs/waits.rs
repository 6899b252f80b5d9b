//! Multi-object waits and the signal-style operations: `waitany` (WY-*), `waitall` (WL-*),
//! `pulse` (PU-*) and `signalandwait` (SW-*).
//!
//! Every answer is checked strictly: a build that answered `err unsupported` to any of these
//! commands fails here (no escape hatches). Waiters are known to be queued through the
//! REPL's `waiters` command ([`wait_for_waiters`]), never by sleeping.

use crate::harness::{
    BLOCK_GRACE, LONG_WAIT_MS, Repl, Root, assert_none_answered, first_answer, unique,
    wait_for_waiters,
};

/// WY-03/WY-18: wait-any returns the lowest index among the signaled objects and acquires only
/// that one; the objects were signaled from another process.
#[test]
fn waitany_reports_lowest_signaled_index() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (e0, e1, e2) = (unique("wy03-0"), unique("wy03-1"), unique("wy03-2"));

    a.expect(&format!("create event e0 name={e0}"), "ok created");
    a.expect(&format!("create event e1 name={e1} manual"), "ok created");
    a.expect(&format!("create event e2 name={e2}"), "ok created");
    a.expect("waitany e0 e1 e2 timeout=0", "timeout");
    b.expect(&format!("open event e1 name={e1}"), "ok");
    b.expect(&format!("open event e2 name={e2}"), "ok");
    b.expect("set e2", "ok");
    b.expect("set e1", "ok");

    a.expect("waitany e0 e1 e2 timeout=0", "signaled 1");
    a.expect("query e1", "ok event manual set");
    a.expect("query e2", "ok event auto set"); // untouched: only index 1 was acquired
    a.expect("waitany e0 e2 timeout=0", "signaled 1");
    a.expect("query e2", "ok event auto unset");
    a.expect("waitany e0 e2 timeout=0", "timeout");
    a.expect("waitany e2 e0 e1 timeout=0", "signaled 2");
}

/// WY-04 (small): with a manual event set at index 0, repeated wait-anys keep returning 0 and
/// consume nothing; after it is reset (by another process) they return 1, then 2, each
/// consuming one auto event, then time out.
#[test]
fn waitany_acquires_only_the_reported_object() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let e0 = unique("wy04-0");

    a.expect(
        &format!("create event e0 name={e0} manual initial"),
        "ok created",
    );
    a.expect("create event e1 initial", "ok created");
    a.expect("create event e2 initial", "ok created");
    a.expect("waitany e0 e1 e2 timeout=0", "signaled 0");
    a.expect("waitany e0 e1 e2 timeout=0", "signaled 0");
    a.expect("query e1", "ok event auto set");
    b.expect(&format!("open event e0 name={e0}"), "ok");
    b.expect("reset e0", "ok");
    a.expect("waitany e0 e1 e2 timeout=0", "signaled 1");
    a.expect("waitany e0 e1 e2 timeout=0", "signaled 2");
    a.expect("waitany e0 e1 e2 timeout=0", "timeout");
    a.expect("query e1", "ok event auto unset");
    a.expect("query e2", "ok event auto unset");
}

/// WY-12/EV-15/WY-16: a blocked wait-any over a semaphore and an event is woken by a release or
/// a set in another process, returns that object's index and acquires it.
#[test]
fn blocked_waitany_is_woken_from_another_process() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (s, e) = (unique("wy12-sem"), unique("wy12-ev"));

    a.expect(
        &format!("create semaphore s initial=0 max=3 name={s}"),
        "ok created",
    );
    a.expect(&format!("create event e name={e}"), "ok created");
    b.expect(&format!("open semaphore s name={s}"), "ok");
    b.expect(&format!("open event e name={e}"), "ok");
    b.expect("waitany e s timeout=0", "timeout");

    b.send(&format!("waitany e s timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut a, "s", 1);
    b.no_answer_now();
    a.expect("release s", "ok 0");
    expect_answer(&mut b, "signaled 1");
    a.expect("query s", "ok semaphore count=0 max=3");

    b.send(&format!("waitany s e timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut a, "e", 1);
    b.no_answer_now();
    a.expect("set e", "ok");
    expect_answer(&mut b, "signaled 1");
    a.expect("query e", "ok event auto unset");
}

/// WL-02/WL-03/WL-04/WL-14: wait-all is atomic. A timed-out wait-all changes nothing; while it
/// is blocked, its objects are not held partially (another process takes and returns the
/// semaphore and the mutex, and the auto event stays set); when the last object is signaled
/// from another process, it acquires everything at once.
#[test]
fn waitall_is_atomic_and_holds_nothing_while_waiting() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (s, e, m) = (unique("wl-sem"), unique("wl-ev"), unique("wl-mx"));

    a.expect(
        &format!("create semaphore s initial=1 max=1 name={s}"),
        "ok created",
    );
    a.expect(&format!("create event e name={e}"), "ok created");
    a.expect(&format!("create mutex m name={m}"), "ok created");
    b.expect(&format!("open semaphore s name={s}"), "ok");
    b.expect(&format!("open event e name={e}"), "ok");
    b.expect(&format!("open mutex m name={m}"), "ok");

    b.expect("waitall s e m timeout=0", "timeout");
    a.expect("query s", "ok semaphore count=1 max=1");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");

    b.send(&format!("waitall s e m timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut a, "e", 1);
    b.no_answer_now();
    a.expect("wait s timeout=0", "signaled");
    a.expect("set e", "ok");
    // A negative check: with the semaphore taken, the `set` must not complete the wait-all.
    b.no_answer_for(BLOCK_GRACE);
    a.expect("query e", "ok event auto set");
    a.expect("wait m timeout=0", "signaled");
    a.expect("release m", "ok");

    // The semaphore is the last missing object.
    a.expect("release s", "ok 0");
    expect_answer(&mut b, "signaled");
    a.expect("query s", "ok semaphore count=0 max=1");
    a.expect("query e", "ok event auto unset");
    a.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("release m", "ok");
    b.expect("release s", "ok 0");
}

/// WL-07/HD-13: the same object twice in a wait-all → `duplicate-object` and nothing is
/// acquired, whether through one alias or two handles to one name. WY-08/SM-11: wait-any
/// allows duplicates, reports the lowest index and decrements a semaphore once.
#[test]
fn waitall_refuses_duplicates_waitany_accepts_them() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (e, s) = (unique("wl07-ev"), unique("wl07-sem"));

    a.expect(
        &format!("create semaphore s initial=2 max=2 name={s}"),
        "ok created",
    );
    a.expect(&format!("open semaphore s2 name={s}"), "ok");
    a.expect_err("waitall s s timeout=0", "duplicate-object");
    a.expect_err("waitall s s2 timeout=0", "duplicate-object");
    a.expect_err("waitall s2 s timeout=0", "duplicate-object");
    a.expect("query s", "ok semaphore count=2 max=2");

    a.expect(
        &format!("create event e name={e} manual initial"),
        "ok created",
    );
    a.expect(&format!("open event e2 name={e}"), "ok");
    a.expect_err("waitall e s e2 timeout=0", "duplicate-object");
    a.expect("query s", "ok semaphore count=2 max=2");

    a.expect("waitany s s2 s timeout=0", "signaled 0");
    a.expect("query s", "ok semaphore count=1 max=2");
    a.expect("waitany e2 e timeout=0", "signaled 0");
}

/// WL-06/WY-07: a mutex owned by the waiting thread counts as signaled in a wait-all, and its
/// recursion grows on success; for another process the owned mutex is not signaled, and its
/// timed-out wait-all leaves everything as it was.
#[test]
fn waitall_counts_own_mutex_as_signaled() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (m, e) = (unique("wl06-mx"), unique("wl06-ev"));

    a.expect(&format!("create mutex m name={m}"), "ok created");
    a.expect(&format!("create event e name={e}"), "ok created");
    a.expect("set e", "ok");
    a.expect("wait m timeout=0", "signaled");
    a.expect("waitall m e timeout=0", "signaled");
    a.expect("query m", "ok mutex owner=self recursion=2 abandoned=0");
    a.expect("query e", "ok event auto unset");

    b.expect(&format!("open mutex m name={m}"), "ok");
    b.expect(&format!("open event e name={e}"), "ok");
    b.expect("set e", "ok");
    b.expect("waitall m e timeout=0", "timeout");
    b.expect("waitany m timeout=0", "timeout");
    b.expect("query e", "ok event auto set");

    a.expect("release m", "ok");
    a.expect("release m", "ok");
    b.expect("waitall e m timeout=0", "signaled");
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    a.expect("query e", "ok event auto unset");
    b.expect("release m", "ok");
}

/// WY-01/WY-02/WL-13/LM-01: an empty wait list and more than 64 objects → `invalid-argument`;
/// exactly 64 works.
#[test]
fn wait_lists_hold_one_to_64_objects() {
    let root = Root::fresh();
    let mut a = root.repl();
    let creates: Vec<String> = (0..65)
        .map(|i| format!("create event e{i} manual"))
        .collect();
    a.send_batch(&creates);
    for got in a.answers(65) {
        if got != "ok created" {
            a.fail(&format!(
                "`create event eN manual`: expected `ok created`, got `{got}`"
            ));
        }
    }
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("e{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };

    a.expect(&format!("waitany {} timeout=0", list(64)), "timeout");
    a.expect_err("waitany timeout=0", "invalid-argument");
    a.expect_err(
        &format!("waitany {} timeout=0", list(65)),
        "invalid-argument",
    );
    a.expect("set e63", "ok");
    a.expect(&format!("waitany {} timeout=0", list(64)), "signaled 63");

    a.expect_err("waitall timeout=0", "invalid-argument");
    a.expect_err(
        &format!("waitall {} timeout=0", list(65)),
        "invalid-argument",
    );
    a.expect(&format!("waitall {} timeout=0", list(64)), "timeout");
    let sets: Vec<String> = (0..64).map(|i| format!("set e{i}")).collect();
    a.send_batch(&sets);
    for (cmd, got) in sets.iter().zip(a.answers(64)) {
        if got != "ok" {
            a.fail(&format!("`{cmd}`: expected `ok`, got `{got}`"));
        }
    }
    a.expect(&format!("waitall {} timeout=0", list(64)), "signaled");
}

/// PU-01/PU-03/PU-07: `pulse` on a manual event releases every waiter blocked at that moment
/// (in other processes) and leaves the event unset; with no waiters it just leaves it unset;
/// PU-04: pulsing a set event unsets it.
#[test]
fn pulse_manual_releases_all_current_waiters_and_leaves_unset() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl());
    let n = unique("pu01");

    a.expect(&format!("create event e name={n} manual"), "ok created");
    a.expect("pulse e", "ok");
    a.expect("query e", "ok event manual unset");
    for w in [&mut b, &mut c] {
        w.expect(&format!("open event e name={n}"), "ok");
        w.send(&format!("wait e timeout={LONG_WAIT_MS}"));
    }
    wait_for_waiters(&mut a, "e", 2);
    assert_none_answered(&mut [&mut b, &mut c]);

    a.expect("pulse e", "ok");
    a.expect("query e", "ok event manual unset");
    expect_answer(&mut b, "signaled");
    expect_answer(&mut c, "signaled");
    d.expect(&format!("open event e name={n}"), "ok");
    d.expect("wait e timeout=0", "timeout");

    a.expect("set e", "ok");
    d.expect("pulse e", "ok");
    a.expect("query e", "ok event manual unset");
    b.expect("wait e timeout=0", "timeout");
}

/// PU-02: `pulse` on an auto event releases exactly one blocked waiter and leaves it unset; the
/// other waiter stays blocked until the next signal.
#[test]
fn pulse_auto_releases_exactly_one_waiter() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c) = (root.repl(), root.repl());
    let n = unique("pu02");

    a.expect(&format!("create event e name={n}"), "ok created");
    a.expect("pulse e", "ok");
    for w in [&mut b, &mut c] {
        w.expect(&format!("open event e name={n}"), "ok");
        w.send(&format!("wait e timeout={LONG_WAIT_MS}"));
    }
    let mut waiting: Vec<&mut Repl<'_>> = vec![&mut b, &mut c];
    wait_for_waiters(&mut a, "e", 2);
    assert_none_answered(&mut waiting);

    a.expect("pulse e", "ok");
    a.expect("query e", "ok event auto unset");
    let (i, got) = first_answer(&mut waiting);
    let released = waiting.remove(i);
    if got != "signaled" {
        released.fail(&format!("expected `signaled` after `pulse`, got `{got}`"));
    }
    wait_for_waiters(&mut a, "e", 1);
    assert_none_answered(&mut waiting);
    a.expect("set e", "ok");
    expect_answer(waiting[0], "signaled");
    a.expect("query e", "ok event auto unset");
}

/// SW-03/SW-04/SW-05/SW-06/SW-07/SW-12: `signalandwait` signals its first object, then waits on
/// the second, with the results of a single wait.
#[test]
fn signalandwait_signals_then_waits() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let sa = unique("sw-a");

    a.expect(&format!("create event sa name={sa}"), "ok created");
    a.expect("create event mb manual initial", "ok created");
    a.expect("create event c manual", "ok created");
    // SW-03: signal auto event A, wait on signaled manual event B → signaled; A is now set.
    a.expect("signalandwait sa mb timeout=0", "signaled");
    b.expect(&format!("open event sa name={sa}"), "ok");
    b.expect("query sa", "ok event auto set");
    b.expect("wait sa timeout=0", "signaled");

    // SW-04: signal and wait on the same auto event → signaled, and it ends unset.
    let same = vec!["signalandwait sa sa timeout=0"; 20];
    a.send_batch(&same);
    for got in a.answers(same.len()) {
        if got != "signaled" {
            a.fail(&format!(
                "`signalandwait sa sa timeout=0`: expected `signaled`, got `{got}`"
            ));
        }
    }
    a.expect("query sa", "ok event auto unset");

    // SW-05: the wait times out, the signal stays.
    a.expect("signalandwait sa c timeout=0", "timeout");
    b.expect("query sa", "ok event auto set");
    a.expect("reset sa", "ok");

    // SW-07: a mutex to signal must be owned; otherwise not-owner and no wait.
    a.expect("create mutex m", "ok created");
    a.expect_err("signalandwait m mb timeout=0", "not-owner");
    // SW-12: the owner with recursion 1 releases and re-acquires.
    a.expect("wait m timeout=0", "signaled");
    a.expect("signalandwait m m timeout=0", "signaled");
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    a.expect("release m", "ok");

    // SW-06: semaphores (0/1, 1/1) → signaled (1, 0); again → too-many-posts, nothing waited.
    a.expect("create semaphore s0 initial=0 max=1", "ok created");
    a.expect("create semaphore s1 initial=1 max=1", "ok created");
    a.expect("signalandwait s0 s1 timeout=0", "signaled");
    a.expect("query s0", "ok semaphore count=1 max=1");
    a.expect("query s1", "ok semaphore count=0 max=1");
    a.expect("release s1", "ok 0");
    a.expect_err("signalandwait s0 s1 timeout=0", "too-many-posts");
    a.expect("query s0", "ok semaphore count=1 max=1");
    a.expect("query s1", "ok semaphore count=1 max=1");
}

/// SW-11: a two-process ping-pong built only on `signalandwait` over two auto events never
/// loses a wake-up.
#[test]
fn signalandwait_ping_pong_across_processes() {
    const ROUNDS: usize = 50;
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (ping, pong) = (unique("ping"), unique("pong"));

    a.expect(&format!("create event ping name={ping}"), "ok created");
    a.expect(&format!("create event pong name={pong}"), "ok created");
    a.expect("create event probe manual initial", "ok created");
    a.expect("signalandwait probe probe timeout=0", "signaled");
    b.expect(&format!("open event ping name={ping}"), "ok");
    b.expect(&format!("open event pong name={pong}"), "ok");

    // B: take the first ping, answer each ping with a pong, and send the last pong plainly.
    let mut b_cmds = vec![format!("wait ping timeout={LONG_WAIT_MS}")];
    b_cmds.extend((1..ROUNDS).map(|_| format!("signalandwait pong ping timeout={LONG_WAIT_MS}")));
    b_cmds.push("set pong".to_string());
    // A: ping and wait for the pong, ROUNDS times.
    let a_cmds: Vec<String> = (0..ROUNDS)
        .map(|_| format!("signalandwait ping pong timeout={LONG_WAIT_MS}"))
        .collect();

    b.send_batch(&b_cmds);
    a.send_batch(&a_cmds);
    for (r, cmds) in [(&mut a, &a_cmds), (&mut b, &b_cmds)] {
        for cmd in cmds {
            let want = if cmd.starts_with("set") {
                "ok"
            } else {
                "signaled"
            };
            let got = r.answer();
            if got != want {
                r.fail(&format!("`{cmd}`: expected `{want}`, got `{got}`"));
            }
        }
    }
    a.expect("query ping", "ok event auto unset");
    a.expect("query pong", "ok event auto unset");
}

/// Reads the next thread-`main` answer of `r` and checks it.
fn expect_answer(r: &mut Repl<'_>, want: &str) {
    let got = r.answer();
    if got != want {
        r.fail(&format!("blocked wait: expected `{want}`, got `{got}`"));
    }
}

/// WL-18 hand-off (docs/SEMANTICS.md): the object whose signal completes a blocked
/// wait-all is not taken by a later arrival (NT satisfies the wait-all at the moment of
/// the signal). A
/// semaphore unit released while A waits on [e, s] goes to A, not to C's poll.
#[test]
fn issue_3_signal_completing_a_waitall_is_not_taken_by_a_later_arrival() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (en, sn) = (unique("wa-hand-e"), unique("wa-hand-s"));
    a.expect(
        &format!("create event e name={en} manual initial"),
        "ok created",
    );
    a.expect(
        &format!("create semaphore s name={sn} initial=0 max=5"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={sn}"), "ok");
    c.expect(&format!("open semaphore s name={sn}"), "ok");
    for _ in 0..20 {
        a.send("waitall e s timeout=10000");
        wait_for_waiters(&mut b, "s", 1);
        a.no_answer_now();
        b.expect("release s", "ok 0");
        // C arrives after the signal: the unit is A's.
        c.expect("wait s timeout=0", "timeout");
        expect_answer(&mut a, "signaled");
        a.expect("query s", "ok semaphore count=0 max=5");
    }
}

/// WL-16/WL-14: two wait-all waiters over overlapping auto events, both queued (handshake),
/// then `set x, set y, set x, set y` from a third process: each completes when its whole set is
/// available, never deadlocking, and both events end unset. The live (unstopped) twin of
/// `exact::stopped_waitall_waiters_both_complete_after_set_x_y_x_y`; with the waiters known to
/// be queued before the sets, an earlier protocol lost a wake-up here most runs.
#[test]
fn overlapping_waitall_waiters_both_complete() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (xn, yn) = (unique("wa-x"), unique("wa-y"));
    for r in [&mut a, &mut b, &mut c] {
        r.expect(
            &format!("create event x name={xn}"),
            if r.label() == "A" {
                "ok created"
            } else {
                "ok existed"
            },
        );
        r.expect(
            &format!("create event y name={yn}"),
            if r.label() == "A" {
                "ok created"
            } else {
                "ok existed"
            },
        );
    }
    a.send("waitall x y timeout=10000");
    b.send("waitall y x timeout=10000");
    wait_for_waiters(&mut c, "x", 2);
    wait_for_waiters(&mut c, "y", 2);
    assert_none_answered(&mut [&mut a, &mut b]);
    c.expect("set x", "ok");
    c.expect("set y", "ok");
    c.expect("set x", "ok");
    c.expect("set y", "ok");
    expect_answer(&mut a, "signaled");
    expect_answer(&mut b, "signaled");
    c.expect("query x", "ok event auto unset");
    c.expect("query y", "ok event auto unset");
}
