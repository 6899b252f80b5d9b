//! Exactness of wait-all and owner death, pinned down deterministically across real processes:
//! the behaviour the wait protocol must deliver (WL-14, WL-16, WL-18, WL-19, AB-16 in
//! docs/SEMANTICS.md), including a lost wake-up an earlier protocol had.
//!
//! What it owns: tests that leave no room for scheduling luck. Waiters are known to be queued
//! through `waiters` ([`wait_for_waiters`]); a waiter that must not run while the signals arrive
//! is frozen with SIGSTOP (its REPL's pid from the `pid` command) and continued afterwards; every
//! state is read with `query` right after the call that must have changed it. What it must not
//! do: sleep to synchronise, or accept more than one outcome where Win32 has one.
//!
//! Every test here failed against the protocol before wait-alls were completed inside the
//! signal (WL-18, WL-19) and owner death was checked on every acquisition path (AB-16).

use crate::harness::{LONG_WAIT_MS, Repl, Root, signal_pid, unique, wait_for_waiters};

/// WL-14/WL-16/WL-18: two wait-all waiters over the same two auto events, both
/// frozen (SIGSTOP) once queued, so neither can run while `set x, set y, set x, set y` arrive.
/// On Windows (and with wait-alls completed inside the signal) the first `set y` completes one
/// wait-all, the second pair completes the other: after SIGCONT both answer `signaled` and both
/// events are unset. Today the second `set` of an auto event already offered to a wait-all
/// waiter merges into the first: both events end `set` and one wait-all times out.
#[test]
fn stopped_waitall_waiters_both_complete_after_set_x_y_x_y() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (xn, yn) = (unique("wl14-x"), unique("wl14-y"));
    c.expect(&format!("create event x name={xn}"), "ok created");
    c.expect(&format!("create event y name={yn}"), "ok created");
    for w in [&mut a, &mut b] {
        w.expect(&format!("open event x name={xn}"), "ok");
        w.expect(&format!("open event y name={yn}"), "ok");
    }
    let (pa, pb) = (a.repl_pid(), b.repl_pid());
    a.send(&format!("waitall x y timeout={LONG_WAIT_MS}"));
    b.send(&format!("waitall y x timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut c, "x", 2);
    wait_for_waiters(&mut c, "y", 2);
    signal_pid(pa, "STOP");
    signal_pid(pb, "STOP");

    for cmd in ["set x", "set y", "set x", "set y"] {
        c.expect(cmd, "ok");
    }
    // Read while both waiters are still frozen: with WL-18 both wait-alls are complete already.
    let (qx, qy) = (c.ask("query x"), c.ask("query y"));
    signal_pid(pa, "CONT");
    signal_pid(pb, "CONT");

    expect_answer(&mut a, "signaled");
    expect_answer(&mut b, "signaled");
    for (q, got) in [("query x", qx), ("query y", qy)] {
        if got != "ok event auto unset" {
            c.fail(&format!(
                "`{q}` right after the four sets (waiters frozen): expected `ok event auto unset` \
                 (both wait-alls completed inside the signals, WL-18), got `{got}`"
            ));
        }
    }
    c.expect("query x", "ok event auto unset");
    c.expect("query y", "ok event auto unset");
}

/// The ntsync `wake_all` sequence (WL-18, WL-19, WL-03, WL-06): B waits for all of a
/// semaphore (0/3), a mutex owned by A's thread, an unset manual event and an unset auto event.
/// Each object becomes available in turn from A; while one is missing, the others stay free to
/// anyone (no reservation). When the last one is set, the wait-all is complete before `set`
/// returns: the semaphore is decremented, the mutex owned by B, the auto event unset. The final
/// step is repeated on fresh objects, 32 times.
#[test]
fn wake_all_sequence_completes_inside_the_last_signal() {
    const ROUNDS: usize = 32;
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    for round in 0..ROUNDS {
        let names: Vec<String> = ["s", "m", "man", "aut"]
            .iter()
            .map(|o| unique(&format!("wake-all-{o}")))
            .collect();
        let creates = [
            format!("create semaphore s initial=0 max=3 name={}", names[0]),
            format!("create mutex m owned name={}", names[1]),
            format!("create event man manual name={}", names[2]),
            format!("create event aut name={}", names[3]),
        ];
        for cmd in &creates {
            a.expect(cmd, "ok created");
        }
        for (kind, (alias, name)) in ["semaphore", "mutex", "event", "event"]
            .iter()
            .zip(["s", "m", "man", "aut"].iter().zip(&names))
        {
            b.expect(&format!("open {kind} {alias} name={name}"), "ok");
        }
        b.send(&format!("waitall s m man aut timeout={LONG_WAIT_MS}"));
        wait_for_waiters(&mut a, "aut", 1);
        b.no_answer_now();

        // The semaphore alone: available to anyone, reserved for nobody (WL-19).
        a.expect("release s count=1", "ok 0");
        a.expect("query s", "ok semaphore count=1 max=3");
        a.expect("wait s timeout=0", "signaled");
        // The mutex alone: free, not handed to the wait-all waiter.
        a.expect("release m", "ok");
        a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
        a.expect("set man", "ok");
        a.expect("release s count=2", "ok 0");
        a.expect("query s", "ok semaphore count=2 max=3");
        a.expect("query man", "ok event manual set");
        b.no_answer_now();

        // The last object: the wait-all completes inside this `set` (WL-18).
        a.expect("set aut", "ok");
        let after = [
            ("query s", "ok semaphore count=1 max=3"),
            ("query m", "ok mutex owner=other recursion=1 abandoned=0"),
            ("query aut", "ok event auto unset"),
            ("query man", "ok event manual set"),
        ];
        for (cmd, want) in after {
            let got = a.ask(cmd);
            if got != want {
                a.fail(&format!(
                    "round {round}: `{cmd}` right after the `set aut` that completes B's wait-all: \
                     expected `{want}` (acquired inside the signal, WL-18), got `{got}`"
                ));
            }
        }
        expect_answer(&mut b, "signaled");
        b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
        b.expect("release m", "ok");
        for alias in ["s", "m", "man", "aut"] {
            a.expect(&format!("close {alias}"), "ok");
            b.expect(&format!("close {alias}"), "ok");
        }
    }
}

/// WL-19/WL-03: a blocked wait-all over a semaphore and a mutex owned by a third
/// process never withholds the free semaphore: another process takes and gives it back 2000
/// times with zero-timeout waits, and every one of them is `signaled`. When the mutex is
/// released, the wait-all completes and takes the unit.
#[test]
fn blocked_waitall_never_withholds_a_free_semaphore() {
    const PAIRS: usize = 2000;
    const CHUNK: usize = 250; // pairs per batch: well under the pipe buffer
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (sn, mn) = (unique("wl19-s"), unique("wl19-m"));
    c.expect(&format!("create mutex m owned name={mn}"), "ok created");
    a.expect(
        &format!("create semaphore s initial=1 max=1 name={sn}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={sn}"), "ok");
    b.expect(&format!("open mutex m name={mn}"), "ok");
    b.send(&format!("waitall s m timeout={}", LONG_WAIT_MS * 4));
    wait_for_waiters(&mut a, "s", 1);

    let pair = ["wait s timeout=0", "release s"];
    let mut done = 0;
    while done < PAIRS {
        let batch: Vec<&str> = (0..CHUNK).flat_map(|_| pair).collect();
        a.send_batch(&batch);
        for i in 0..CHUNK {
            let got = a.answer();
            if got != "signaled" {
                a.fail(&format!(
                    "pair {}: `wait s timeout=0` with the unit free and a wait-all blocked on \
                     the owned mutex: expected `signaled` (WL-19: nothing reserved), got `{got}`",
                    done + i
                ));
            }
            let got = a.answer();
            if got != "ok 0" {
                a.fail(&format!(
                    "pair {}: `release s`: expected `ok 0`, got `{got}`",
                    done + i
                ));
            }
        }
        done += CHUNK;
    }
    wait_for_waiters(&mut a, "s", 1);
    b.no_answer_now();
    c.expect("release m", "ok");
    expect_answer(&mut b, "signaled");
    a.expect("query s", "ok semaphore count=0 max=1");
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("release m", "ok");
    b.expect("release s", "ok 0");
}

/// AB-16: owner death is seen by every acquisition path at once, without blocking: after the
/// owner process is SIGKILLed, a zero-timeout `wait`, `waitany`, `waitall` and `signalandwait`
/// each answer `abandoned` (with the mutex's index), the caller then owns the mutex, and the
/// abandonment is reported once. Each path gets a fresh mutex and a fresh killed owner.
#[test]
fn killed_owner_is_seen_by_every_zero_timeout_acquisition() {
    let root = Root::fresh();
    let mut b = root.repl();
    b.expect("create event e", "ok created");
    b.expect("create event on manual initial", "ok created");
    let paths = [
        ("wait m timeout=0", "abandoned"),
        ("waitany e m timeout=0", "abandoned 1"),
        ("waitall m timeout=0", "abandoned 0"),
        ("waitall on m timeout=0", "abandoned 1"),
        ("signalandwait e m timeout=0", "abandoned"),
    ];
    for (cmd, want) in paths {
        let name = unique("ab16");
        let mut a = root.repl();
        a.expect(&format!("create mutex m owned name={name}"), "ok created");
        b.expect(&format!("open mutex m name={name}"), "ok");
        a.kill();
        let got = b.ask(cmd);
        if got != want {
            b.fail(&format!(
                "`{cmd}` after the owner process was killed: expected `{want}` (AB-16), got `{got}`"
            ));
        }
        b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
        b.expect("release m", "ok");
        b.expect("wait m timeout=0", "signaled"); // reported once (AB-03)
        b.expect("release m", "ok");
        b.expect("reset e", "ok");
        b.expect("close m", "ok");
        drop(a);
    }
}

/// WL-18: a wait-all completed inside the signal is woken by that signal, for a private
/// wait block (`Local\` objects) and a public one (`Global\`): the signaller rings it once it
/// holds none of the set's locks (rung under them, a waiter on its CPU found a lock held), and
/// a ring set aside and never made would still release the waiter, by its safety-net re-check
/// about a second later; the answer's delay tells the two apart (not a speed check).
#[test]
fn waitall_completed_inside_the_signal_is_woken_by_it() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    for prefix in ["", "Global\\"] {
        let (xn, gn) = (
            format!("{prefix}{}", unique("wl18-x")),
            format!("{prefix}{}", unique("wl18-g")),
        );
        a.expect(&format!("create event x name={xn}"), "ok created");
        a.expect(
            &format!("create event g name={gn} manual initial"),
            "ok created",
        );
        b.expect(&format!("open event x name={xn}"), "ok");
        b.expect(&format!("open event g name={gn}"), "ok");
        for round in 0..3 {
            b.send(&format!("waitall x g timeout={LONG_WAIT_MS}"));
            wait_for_waiters(&mut a, "x", 1);
            let set_at = std::time::Instant::now();
            a.expect("set x", "ok");
            // Completed inside the signal: the auto event is taken before `set` returns.
            a.expect("query x", "ok event auto unset");
            expect_answer(&mut b, "signaled");
            let took = set_at.elapsed();
            assert!(
                took < std::time::Duration::from_millis(500),
                "{prefix}round {round}: the wait-all answered {took:?} after the set: released \
                 by its safety-net re-check, not by the set's ring (a lost wake-up)"
            );
        }
        for r in [&mut a, &mut b] {
            r.expect("close x", "ok");
            r.expect("close g", "ok");
        }
    }
}

/// Reads the next thread-`main` answer of `r` and checks it.
#[track_caller]
fn expect_answer(r: &mut Repl<'_>, want: &str) {
    let got = r.answer();
    if got != want {
        r.fail(&format!("blocked wait: expected `{want}`, got `{got}`"));
    }
}
