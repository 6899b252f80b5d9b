//! Mutexes across processes and threads (MX-*): recursion, ownership by thread, exclusion,
//! hand-off on release, and closing handles not touching ownership (LT-06).

use std::time::{Duration, Instant};

use crate::harness::{BLOCK_GRACE, LONG_WAIT_MS, Root, unique, wait_for_waiters};

/// MX-03/MX-04/MX-05: the owner re-acquires without blocking, the recursion count follows, and
/// after k acquisitions exactly k releases succeed; the next one is `not-owner`. MX-14: no small
/// recursion cap.
#[test]
fn owner_recursion_needs_matching_releases() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("mx03");

    a.expect(&format!("create mutex m name={n}"), "ok created");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
    a.expect("wait m timeout=0", "signaled");
    a.expect("wait m timeout=100", "signaled");
    a.expect(&format!("wait m timeout={LONG_WAIT_MS}"), "signaled");
    a.expect("query m", "ok mutex owner=self recursion=3 abandoned=0");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.expect("query m", "ok mutex owner=other recursion=3 abandoned=0");

    a.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=self recursion=2 abandoned=0");
    a.expect("release m", "ok");
    b.expect("wait m timeout=0", "timeout");
    a.expect("release m", "ok");
    a.expect_err("release m", "not-owner");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");

    // MX-14: 40 nested acquisitions, then 40 releases, then not-owner.
    const DEPTH: usize = 40;
    let waits = vec!["wait m timeout=0"; DEPTH];
    b.send_batch(&waits);
    for got in b.answers(DEPTH) {
        if got != "signaled" {
            b.fail(&format!(
                "nested `wait m timeout=0` by the owner: expected `signaled`, got `{got}`"
            ));
        }
    }
    b.expect(
        "query m",
        &format!("ok mutex owner=self recursion={DEPTH} abandoned=0"),
    );
    a.expect(
        "query m",
        &format!("ok mutex owner=other recursion={DEPTH} abandoned=0"),
    );
    b.send_batch(&vec!["release m"; DEPTH]);
    for got in b.answers(DEPTH) {
        if got != "ok" {
            b.fail(&format!("nested `release m`: expected `ok`, got `{got}`"));
        }
    }
    b.expect_err("release m", "not-owner");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

/// MX-06/MX-05: a release by another process → `not-owner`, owner and count unchanged;
/// releasing an unowned mutex → `not-owner`.
#[test]
fn release_by_another_process_is_not_owner() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("mx06");

    a.expect(&format!("create mutex m name={n}"), "ok created");
    a.expect("wait m timeout=0", "signaled");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.expect_err("release m", "not-owner");
    b.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("wait m timeout=0", "timeout");

    a.expect("release m", "ok");
    a.expect_err("release m", "not-owner");
    b.expect_err("release m", "not-owner");
    b.expect("wait m timeout=0", "signaled");
    a.expect_err("release m", "not-owner");
    a.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    b.expect("release m", "ok");
}

/// MX-07: ownership belongs to a thread, not to a process: another thread of the owner's
/// process can neither acquire nor release it, and sees the owner as `other`.
#[test]
fn another_thread_of_the_owner_process_cannot_acquire_or_release() {
    let root = Root::fresh();
    let mut a = root.repl();
    let n = unique("mx07");

    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    a.expect("@t2 wait m timeout=0", "@t2 timeout");
    a.expect_err("@t2 release m", "not-owner");
    a.expect(
        "@t2 query m",
        "@t2 ok mutex owner=other recursion=1 abandoned=0",
    );
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");

    a.expect("release m", "ok");
    a.expect("@t2 wait m timeout=0", "@t2 signaled");
    a.expect(
        "@t2 query m",
        "@t2 ok mutex owner=self recursion=1 abandoned=0",
    );
    a.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    a.expect("wait m timeout=0", "timeout");
    a.expect_err("release m", "not-owner");
    a.expect("@t2 release m", "@t2 ok");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

/// MX-02/MX-08: a mutex created `owned` excludes other processes (zero and finite timeouts)
/// until its owner releases it; CO-03: `create … owned` of an existing mutex reports `existed`
/// and does not give ownership.
#[test]
fn created_owned_excludes_other_processes() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("mx02");

    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect(&format!("create mutex m name={n} owned"), "ok existed");
    b.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    b.expect_err("release m", "not-owner");
    b.expect("wait m timeout=0", "timeout");
    let start = Instant::now();
    b.expect("wait m timeout=200", "timeout");
    let took = start.elapsed();
    if took < Duration::from_millis(200) {
        b.fail(&format!(
            "`wait m timeout=200` timed out after only {took:?} (TO-03)"
        ));
    }

    // One extra own wait means two releases are needed (MX-02).
    a.expect("wait m timeout=0", "signaled");
    a.expect("release m", "ok");
    b.expect("wait m timeout=0", "timeout");
    a.expect("release m", "ok");
    b.expect("wait m timeout=0", "signaled");
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    a.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    a.expect("wait m timeout=0", "timeout");
    b.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

/// MX-11/MX-12 with hand-off (DESIGN, "Waits, with hand-off"): a release that leaves recursion
/// above 0 wakes nobody; the final release gives the mutex to the blocked waiter at once: the
/// releaser sees `owner=other` immediately and cannot barge back in.
#[test]
fn final_release_hands_off_to_blocked_waiter() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("mx11");

    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    a.expect("wait m timeout=0", "signaled");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.send(&format!("wait m timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut a, "m", 1);
    b.no_answer_now();

    a.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    // A negative check: the release that leaves recursion 1 must wake nobody.
    b.no_answer_for(BLOCK_GRACE);
    wait_for_waiters(&mut a, "m", 1);

    a.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    a.expect("wait m timeout=0", "timeout");
    let got = b.answer();
    if got != "signaled" {
        b.fail(&format!(
            "blocked `wait m`: expected `signaled` after the final release, got `{got}`"
        ));
    }
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

/// MX-15/MX-16 variant: three processes hammer one mutex concurrently. Inside the critical
/// section each one posts a semaphore of maximum 1 (`ok 0` proves nobody else is inside;
/// `too-many-posts` would mean two were) and takes the post back before releasing the mutex.
#[test]
fn mutual_exclusion_across_three_processes() {
    const ROUNDS: usize = 100;
    let root = Root::fresh();
    let mut repls = [root.repl(), root.repl(), root.repl()];
    let (m, inside) = (unique("mx15"), unique("mx15-inside"));

    repls[0].expect(&format!("create mutex m name={m}"), "ok created");
    repls[0].expect(
        &format!("create semaphore inside initial=0 max=1 name={inside}"),
        "ok created",
    );
    for r in repls[1..].iter_mut() {
        r.expect(&format!("open mutex m name={m}"), "ok");
        r.expect(&format!("open semaphore inside name={inside}"), "ok");
    }

    let step = [
        (format!("wait m timeout={LONG_WAIT_MS}"), "signaled"),
        ("release inside count=1".to_string(), "ok 0"),
        ("wait inside timeout=0".to_string(), "signaled"),
        ("release m".to_string(), "ok"),
    ];
    let batch: Vec<&str> = (0..ROUNDS)
        .flat_map(|_| step.iter().map(|(c, _)| c.as_str()))
        .collect();
    for r in repls.iter_mut() {
        r.send_batch(&batch);
    }
    for r in repls.iter_mut() {
        for round in 0..ROUNDS {
            for (cmd, want) in &step {
                let got = r.answer();
                if got != *want {
                    r.fail(&format!(
                        "round {round}, `{cmd}`: expected `{want}`, got `{got}`"
                    ));
                }
            }
        }
    }
    repls[0].expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
    repls[0].expect("query inside", "ok semaphore count=0 max=1");
}

/// LT-06/MX-07: closing handles never releases a mutex, whether the owner's process or another
/// one closes them; the owner may release through any of its handles to the mutex.
#[test]
fn closing_handles_does_not_release_ownership() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("lt06");

    a.expect(&format!("create mutex m name={n}"), "ok created");
    a.expect(&format!("open mutex m2 name={n}"), "ok");
    a.expect("wait m timeout=0", "signaled");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.expect("close m", "ok");
    b.expect(&format!("open mutex m name={n}"), "ok");
    a.expect("close m", "ok");

    a.expect("query m2", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    b.expect("wait m timeout=0", "timeout");

    a.expect("release m2", "ok");
    b.expect("wait m timeout=0", "signaled");
    b.expect("release m", "ok");
}

/// AB-01/AB-02/AB-03/AB-04: a thread that ends (`exit-thread`) while owning a mutex abandons
/// it: the state reads free and abandoned, the next acquirer gets `abandoned` once and owns it
/// with recursion 1, and later acquisitions are ordinary.
#[test]
fn thread_exit_abandons_owned_mutex() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("ab01");

    a.expect(&format!("create mutex m name={n}"), "ok created");
    a.expect("@t wait m timeout=0", "@t signaled");
    a.expect("@t wait m timeout=0", "@t signaled");
    a.expect("@t exit-thread", "@t ok");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.expect("query m", "ok mutex owner=none recursion=0 abandoned=1");
    b.expect("wait m timeout=0", "abandoned");
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("release m", "ok");
    a.expect("wait m timeout=0", "signaled");
    a.expect("release m", "ok");
}

/// AB-06/AB-07: a waiter blocked in another process when the owner process is killed wakes with
/// `abandoned` and owns the mutex.
#[test]
fn killed_owner_process_abandons_mutex_to_blocked_waiter() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("ab07");

    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.send(&format!("wait m timeout={LONG_WAIT_MS}"));
    wait_for_waiters(&mut a, "m", 1);
    b.no_answer_now();
    a.kill();
    let got = b.answer();
    if got != "abandoned" {
        b.fail(&format!(
            "blocked `wait m` after the owner was killed: expected `abandoned`, got `{got}`"
        ));
    }
    b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect("release m", "ok");
    b.expect("wait m timeout=0", "signaled");
    b.expect("release m", "ok");
}
