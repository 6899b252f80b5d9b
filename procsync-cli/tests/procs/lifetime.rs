//! Object lifetime across processes (LT-*): a name lives exactly as long as some process holds a
//! handle to its object, whether handles go away by `close`, by `exit`, at end of input, or
//! because every holder was killed. The harness's drop check (no file left under the root)
//! backs every test here.

use crate::harness::{Root, unique};

/// LT-01: the object, and with it the name, is gone after the last close in any process.
#[test]
fn name_disappears_after_last_close_in_any_process() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("lt01");

    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    a.expect("close e", "ok");
    // B still holds it (LT-02).
    c.expect(&format!("open event x name={n}"), "ok");
    c.expect("close x", "ok");
    b.expect("close e", "ok");
    c.expect_err(&format!("open event x name={n}"), "not-found");

    // The same within one process.
    let m = unique("lt01-single");
    a.expect(&format!("create mutex m name={m}"), "ok created");
    a.expect("close m", "ok");
    a.expect_err(&format!("open mutex m name={m}"), "not-found");
    b.expect_err(&format!("open mutex m name={m}"), "not-found");
}

/// LT-02/HC-05: A creates, B opens, A closes → B's handle still works, the name still resolves,
/// and a new opener sees B's changes (NM-17).
#[test]
fn handle_survives_creator_close_and_name_still_resolves() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let n = unique("lt02");

    a.expect(&format!("create event e name={n} manual"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    a.expect("close e", "ok");

    b.expect("set e", "ok");
    b.expect("query e", "ok event manual set");
    c.expect(&format!("open event e name={n}"), "ok");
    c.expect("query e", "ok event manual set");
    c.expect("wait e timeout=0", "signaled");
    // A `create` of the name in A finds the living object again.
    a.expect(&format!("create event e name={n}"), "ok existed");
    a.expect("query e", "ok event manual set");
}

/// LT-03 + NM-16: when every holder is killed (SIGKILL, no chance to close), a later `open`
/// finds nothing, and `create` makes a brand-new object with the new call's initial state; the
/// orphan left by the dead holders is replaced, never reused.
#[test]
fn killed_holders_leave_no_name_and_create_gets_new_state() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (e, s, m) = (
        unique("orphan-ev"),
        unique("orphan-sem"),
        unique("orphan-mx"),
    );

    a.expect(
        &format!("create event e name={e} manual initial"),
        "ok created",
    );
    b.expect(&format!("open event e name={e}"), "ok");
    a.expect(
        &format!("create semaphore s initial=3 max=3 name={s}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={s}"), "ok");
    a.expect(&format!("create mutex m name={m} owned"), "ok created");
    b.expect(&format!("open mutex m name={m}"), "ok");
    a.kill();
    b.kill();

    c.expect_err(&format!("open event e name={e}"), "not-found");
    c.expect_err(&format!("open semaphore s name={s}"), "not-found");
    c.expect_err(&format!("open mutex m name={m}"), "not-found");

    c.expect(&format!("create event e name={e}"), "ok created");
    c.expect("query e", "ok event auto unset");
    c.expect(
        &format!("create semaphore s initial=0 max=1 name={s}"),
        "ok created",
    );
    c.expect("query s", "ok semaphore count=0 max=1");
    // LT-07: an owned mutex with no references left is simply freed: the new one is fresh,
    // neither owned nor abandoned.
    c.expect(&format!("create mutex m name={m}"), "ok created");
    c.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
    c.expect("wait m timeout=0", "signaled");
    c.expect("release m", "ok");
}

/// NM-16 with a probe in the way: an orphan whose file another process holds exclusively for a
/// moment and then lets go without removing it (what `gc --dry-run` does) is still replaced by
/// a `create` that had to wait for that lock, never taken for a live object: the open starts
/// its protocol over. The create is known to be waiting (its thread sleeps between tries of
/// the lock, seen in `/proc`) before the lock goes.
#[test]
fn create_that_waited_for_a_probe_still_replaces_the_orphan() {
    let root = Root::fresh();
    let mut doomed = root.repl();
    let n = unique("probed");
    doomed.expect(
        &format!("create event e name={n} manual initial"),
        "ok created",
    );
    crate::harness::signal_pid(doomed.pid(), "KILL");
    doomed.kill();
    let files = root.leftover_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let probe = std::fs::File::open(&files[0]).expect("opening the orphan");
    rustix::fs::flock(&probe, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    let mut r = root.repl();
    let pid = r.repl_pid();
    r.send(&format!("create event e name={n} manual"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sleeping_in_nanosleep(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the create never waited for the probe's lock"
        );
        std::thread::yield_now();
    }
    drop(probe); // the probe lets go, the orphan stays
    assert_eq!(
        r.answer(),
        "ok created",
        "the orphan was taken for a live object"
    );
    r.expect("query e", "ok event manual unset");
}

/// Whether a thread of process `pid` sleeps in `nanosleep` / `clock_nanosleep` (x86-64 and
/// aarch64 numbers), from `/proc/<pid>/task/*/syscall`.
fn sleeping_in_nanosleep(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| {
            let nr = s.split_whitespace().next().unwrap_or("");
            if cfg!(target_arch = "x86_64") {
                nr == "35" || nr == "230"
            } else {
                nr == "101" || nr == "115"
            }
        })
    })
}

/// LT-03: a killed process's handles are closed, but a surviving holder keeps the object and
/// its state, and the name keeps resolving (LT-08).
#[test]
fn surviving_holder_keeps_object_after_others_are_killed() {
    let root = Root::fresh();
    let (mut a, mut b, mut c, mut d) = (root.repl(), root.repl(), root.repl(), root.repl());
    let n = unique("survivor");

    a.expect(
        &format!("create semaphore s initial=0 max=5 name={n}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={n}"), "ok");
    c.expect(&format!("open semaphore s name={n}"), "ok");
    b.expect("release s count=2", "ok 0");
    a.kill();
    b.kill();

    c.expect("query s", "ok semaphore count=2 max=5");
    c.expect("release s", "ok 2");
    d.expect(&format!("open semaphore s name={n}"), "ok");
    d.expect("query s", "ok semaphore count=3 max=5");
    d.expect(
        &format!("create semaphore s2 initial=0 max=1 name={n}"),
        "ok existed",
    );
    d.expect("query s2", "ok semaphore count=3 max=5");
}

/// LT-03: `exit` and end of input close every handle: the names are gone afterwards, and the
/// process exits 0 (docs/REPL.md, "Lines and answers").
#[test]
fn exit_and_end_of_input_close_all_handles() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (e, m, s) = (unique("exit-ev"), unique("exit-mx"), unique("eof-sem"));

    a.expect(&format!("create event e name={e}"), "ok created");
    a.expect(&format!("create mutex m name={m} owned"), "ok created");
    a.exit();
    b.expect_err(&format!("open event e name={e}"), "not-found");
    b.expect_err(&format!("open mutex m name={m}"), "not-found");

    c.expect(
        &format!("create semaphore s initial=1 max=1 name={s}"),
        "ok created",
    );
    c.close_and_reap();
    b.expect_err(&format!("open semaphore s name={s}"), "not-found");
}

/// NM-16 by `close`: once the last handle is closed, `create` of the name makes a new object
/// with the new call's type and initial state, even from the same process.
#[test]
fn name_is_free_again_after_last_close() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("reuse");

    a.expect(
        &format!("create event e name={n} manual initial"),
        "ok created",
    );
    a.expect("close e", "ok");
    a.expect(&format!("create event e name={n}"), "ok created");
    a.expect("query e", "ok event auto unset");
    a.expect("close e", "ok");
    // Even as another type (NM-02: one namespace, but the old object is gone).
    b.expect(
        &format!("create semaphore s initial=1 max=2 name={n}"),
        "ok created",
    );
    a.expect_err(&format!("open event e name={n}"), "wrong-type");
    a.expect(&format!("open semaphore s name={n}"), "ok");
    a.expect("query s", "ok semaphore count=1 max=2");
}

/// docs/REPL.md, "Handles and aliases": a closed alias is unknown, a live one cannot be created
/// again, and a closed alias can be reused.
#[test]
fn alias_mistakes_are_reported() {
    let root = Root::fresh();
    let mut a = root.repl();
    let n = unique("alias");

    a.expect_err("set nope", "unknown-alias");
    a.expect_err("close nope", "unknown-alias");
    a.expect(&format!("create event e name={n}"), "ok created");
    a.expect_err(&format!("create event e name={n}"), "alias-in-use");
    a.expect_err("create mutex e", "alias-in-use");
    a.expect_err(&format!("open event e name={n}"), "alias-in-use");
    a.expect("close e", "ok");
    a.expect_err("set e", "unknown-alias");
    a.expect_err("wait e timeout=0", "unknown-alias");
    a.expect_err("close e", "unknown-alias");
    a.expect("create mutex e", "ok created");
    a.expect("query e", "ok mutex owner=none recursion=0 abandoned=0");
}
