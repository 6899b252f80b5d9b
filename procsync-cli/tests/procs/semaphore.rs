//! Semaphores across processes (SM-*): argument checks, `release` reporting the previous
//! count, the maximum, hand-off to blocked waiters, and conservation of units under contention.

use crate::harness::{
    LONG_WAIT_MS, Repl, Root, assert_none_answered, first_answer, unique, wait_for_waiters,
};

/// SM-01/SM-02/LM-02: `initial` must lie in 0..=max and `max` in 1..=0x7FFFFFFF; a refused
/// create creates nothing and leaves the alias free.
#[test]
fn create_validates_initial_and_max() {
    let root = Root::fresh();
    let mut a = root.repl();
    let n = unique("sm01");

    a.expect_err(
        &format!("create semaphore s initial=3 max=2 name={n}"),
        "invalid-argument",
    );
    a.expect_err(
        &format!("create semaphore s initial=0 max=0 name={n}"),
        "invalid-argument",
    );
    a.expect_err(
        &format!("create semaphore s initial=1 max=0 name={n}"),
        "invalid-argument",
    );
    a.expect_err(
        &format!("create semaphore s initial=0 max=2147483648 name={n}"),
        "invalid-argument",
    );
    a.expect_err(&format!("open semaphore s name={n}"), "not-found");

    a.expect(
        &format!("create semaphore s initial=0 max=1 name={n}"),
        "ok created",
    );
    a.expect("query s", "ok semaphore count=0 max=1");
    a.expect("create semaphore one initial=1 max=1", "ok created");
    a.expect("query one", "ok semaphore count=1 max=1");
    a.expect(
        "create semaphore wide initial=0 max=2147483647",
        "ok created",
    );
    a.expect("query wide", "ok semaphore count=0 max=2147483647");
    a.expect(
        "create semaphore full initial=2147483647 max=2147483647",
        "ok created",
    );
    a.expect("query full", "ok semaphore count=2147483647 max=2147483647");
}

/// CO-05: create of an existing semaphore keeps its count and maximum; out-of-range arguments
/// are still refused, even though the name exists.
#[test]
fn create_of_existing_semaphore_ignores_its_arguments() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("co05");

    a.expect(
        &format!("create semaphore s initial=2 max=3 name={n}"),
        "ok created",
    );
    b.expect(
        &format!("create semaphore s initial=0 max=9 name={n}"),
        "ok existed",
    );
    b.expect("query s", "ok semaphore count=2 max=3");
    b.expect_err(
        &format!("create semaphore t initial=5 max=1 name={n}"),
        "invalid-argument",
    );
    a.expect("query s", "ok semaphore count=2 max=3");
}

/// SM-04/SM-08/SM-10: `release` answers the count before the call, from any process (no
/// ownership); releasing exactly up to the maximum works.
#[test]
fn release_returns_previous_count() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("sm04");

    a.expect(
        &format!("create semaphore s initial=0 max=10 name={n}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={n}"), "ok");
    for i in 0..5 {
        let r = if i % 2 == 0 { &mut a } else { &mut b };
        r.expect("release s", &format!("ok {i}"));
    }
    b.expect("release s count=3", "ok 5");
    a.expect("query s", "ok semaphore count=8 max=10");
    a.expect("release s count=2", "ok 8");
    b.expect("query s", "ok semaphore count=10 max=10");
    b.expect_err("release s", "too-many-posts");
}

/// SM-05/SM-07: a release past the maximum → `too-many-posts`, and nothing changes (the count
/// is the same in every process); huge counts never wrap.
#[test]
fn release_past_max_changes_nothing() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("slots");

    a.expect(
        &format!("create semaphore s name={n} initial=1 max=2"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={n}"), "ok");
    b.expect_err("release s count=2", "too-many-posts");
    a.expect("query s", "ok semaphore count=1 max=2");
    b.expect_err("release s count=2147483647", "too-many-posts");
    b.expect("query s", "ok semaphore count=1 max=2");
    a.expect("release s", "ok 1");
    a.expect_err("release s", "too-many-posts");
    b.expect("query s", "ok semaphore count=2 max=2");
    // The failed releases did not add units: exactly two waits pass.
    b.expect("wait s timeout=0", "signaled");
    a.expect("wait s timeout=0", "signaled");
    b.expect("wait s timeout=0", "timeout");
}

/// SM-06: `release count=0` → `invalid-argument`, nothing changes.
#[test]
fn release_of_zero_is_invalid_argument() {
    let root = Root::fresh();
    let mut a = root.repl();
    a.expect(
        &format!("create semaphore s initial=1 max=3 name={}", unique("sm06")),
        "ok created",
    );
    a.expect_err("release s count=0", "invalid-argument");
    a.expect("query s", "ok semaphore count=1 max=3");
}

/// SM-03/SM-12/SM-13: each satisfied wait takes exactly one unit, in any process, repeated
/// waits by one thread included; at zero, waits time out.
#[test]
fn each_wait_takes_one_unit() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("sm03");

    a.expect(
        &format!("create semaphore s initial=3 max=5 name={n}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={n}"), "ok");
    c.expect(&format!("open semaphore s name={n}"), "ok");
    b.expect("wait s timeout=0", "signaled");
    b.expect("wait s timeout=0", "signaled");
    a.expect("query s", "ok semaphore count=1 max=5");
    c.expect("wait s timeout=0", "signaled");
    c.expect("wait s timeout=0", "timeout");
    b.expect("wait s timeout=50", "timeout");
    a.expect("query s", "ok semaphore count=0 max=5");
    c.expect("release s count=2", "ok 0");
    b.expect("query s", "ok semaphore count=2 max=5");
}

/// SM-09 with hand-off: `release count=2` with three waiters blocked in other processes
/// releases exactly two of them and leaves the count at 0 (the units went to the waiters);
/// a later `release count=3` releases the third and leaves 2.
#[test]
fn release_hands_units_to_blocked_waiters() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl());
    let n = unique("sm09");

    a.expect(
        &format!("create semaphore s initial=0 max=5 name={n}"),
        "ok created",
    );
    for w in [&mut b, &mut c, &mut d] {
        w.expect(&format!("open semaphore s name={n}"), "ok");
        w.send(&format!("wait s timeout={LONG_WAIT_MS}"));
    }
    let mut waiting: Vec<&mut Repl<'_>> = vec![&mut b, &mut c, &mut d];
    wait_for_waiters(&mut a, "s", 3);
    assert_none_answered(&mut waiting);

    a.expect("release s count=2", "ok 0");
    a.expect("query s", "ok semaphore count=0 max=5");
    for _ in 0..2 {
        let (i, got) = first_answer(&mut waiting);
        let released = waiting.remove(i);
        if got != "signaled" {
            released.fail(&format!(
                "expected `signaled` after `release s count=2`, got `{got}`"
            ));
        }
    }
    wait_for_waiters(&mut a, "s", 1);
    assert_none_answered(&mut waiting);
    a.expect("query s", "ok semaphore count=0 max=5");

    a.expect("release s count=3", "ok 0");
    let last = &mut waiting[0];
    let got = last.answer();
    if got != "signaled" {
        last.fail(&format!(
            "expected `signaled` after `release s count=3`, got `{got}`"
        ));
    }
    a.expect("query s", "ok semaphore count=2 max=5");
}

/// SM-14 variant, conservation of units: three processes each run 200 × (`wait`, `release`)
/// back to back on a semaphore of 2/2. Every wait passes, every release answers a previous count
/// of 0 or 1 (never `too-many-posts`), and the count ends where it started.
#[test]
fn units_are_conserved_under_contention() {
    const ROUNDS: usize = 200;
    let root = Root::fresh();
    let mut repls = [root.repl(), root.repl(), root.repl()];
    let n = unique("sm14");

    repls[0].expect(
        &format!("create semaphore s initial=2 max=2 name={n}"),
        "ok created",
    );
    for r in repls[1..].iter_mut() {
        r.expect(&format!("open semaphore s name={n}"), "ok");
    }
    let wait = format!("wait s timeout={LONG_WAIT_MS}");
    let batch: Vec<&str> = (0..ROUNDS)
        .flat_map(|_| [wait.as_str(), "release s"])
        .collect();
    for r in repls.iter_mut() {
        r.send_batch(&batch);
    }
    for r in repls.iter_mut() {
        for round in 0..ROUNDS {
            let got = r.answer();
            if got != "signaled" {
                r.fail(&format!(
                    "round {round}, `{wait}`: expected `signaled`, got `{got}`"
                ));
            }
            let got = r.answer();
            if got != "ok 0" && got != "ok 1" {
                r.fail(&format!(
                    "round {round}, `release s`: expected `ok 0` or `ok 1`, got `{got}`"
                ));
            }
        }
    }
    repls[0].expect("query s", "ok semaphore count=2 max=2");
}
