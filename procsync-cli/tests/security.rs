//! The security promise of docs/SECURITY.md, tested with a real unprivileged attacker (issue 10).
//!
//! The victims are root's `procsync repl` processes (the harness of `tests/procs/`) that wait and
//! signal on objects the attacker was not granted: a `Global\` event with the default mode 0600
//! and `Local\` objects. The attacker is this very test binary, re-executed as uid/gid 65534
//! (`nobody`) with `PROCSYNC_SECURITY_ATTACK` set: it runs the ignored test
//! [`attacker_process`], which reads commands on its standard input and answers `ATTACK …`
//! lines on its standard output (one answer per command: a handshake, not a sleep). A second
//! attacker tool is a `procsync repl` run as the same uid ([`Intruder`]), to create objects it
//! owns (a world-writable `Global\` object) and to try to open the victims'.
//!
//! One test per promise of SECURITY.md ("What nobody can do to a process that did not grant
//! them write access"): not killed, no forged result, no hang, private objects kept, no file
//! where it should not be; plus an opt-in long run that mutates everything the attacker can
//! write at random while victims wait and signal ([`long_random_mutation`]).
//!
//! What the attacker touches is found, not assumed: files by walking the root and trying to
//! open each for writing; wait-block segments through `/proc/sysvipc/shm`, restricted to the
//! segments created by this test's own processes (other tests and other people's processes on
//! the machine are never touched) and attached only when the kernel lets uid 65534 do so. The
//! targeted attacks (claim words, planted queue entries, lock words) use the layout drawn in
//! `procsync/src/shm/layout.rs`; the crash attacks need no layout at all.
//!
//! These tests need root (to run a process as another uid). Without root they print a loud
//! SKIPPED line and pass, unless `CI=true`, where they fail.

#[path = "procs/harness.rs"]
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use harness::{ANSWER_DEADLINE, Root, on_ci, skip, unique, wait_for_waiters};
use sysv::Attached;

/// The attacker's uid and gid (`nobody`).
const ATTACKER: u32 = 65534;
/// Selects the attacker role in a re-executed test binary.
const ENV_ATTACK: &str = "PROCSYNC_SECURITY_ATTACK";
/// Comma-separated pids whose wait-block segments the attacker may go after (this test's
/// processes only: never anybody else's on the machine).
const ENV_TARGET_PIDS: &str = "PROCSYNC_SECURITY_PIDS";
/// How long the attacker may take to answer one command (a round over every file and segment).
const ATTACK_DEADLINE: Duration = Duration::from_secs(30);

// The layout of `procsync/src/shm/layout.rs`, for the targeted attacks only.
const OFF_LOCK: u64 = 64;
const OFF_STATE: u64 = 80;
const OFF_QUEUE_LEN: u64 = 92;
const OFF_QUEUE: u64 = 128;
const ENTRY_SIZE: u64 = 24;
const QUEUE_CAPACITY: usize = 165;
const STATE_WAITERS: u64 = 1 << 63;
const ENTRY_ANY: u32 = 1 << 8;
const ENTRY_GRANTED: u32 = 1 << 16;
const SEG_HEADER: usize = 64;
const BLOCK_SIZE: usize = 832;
const BLOCK_CLAIM: usize = 8;
const BLOCK_WAKE: usize = 16;
const CLAIM_WAITING: u32 = 1;
const CLAIM_SIGNALED: u32 = 0x1_0000;
const CLAIM_ABANDONED: u32 = 0x2_0000;

// =============================================================================================
// The tests

/// Promise 1, "is not killed": while root's processes wait (INFINITE and timed) on a 0600
/// `Global\` event and on `Local\` events, the attacker truncates, hole-punches, shrinks,
/// extends and overwrites every file it can open for writing under the root, and fills every
/// wait-block segment it can attach with garbage. The victims stay alive and answer; the timed
/// waits time out; the INFINITE ones return only when a root process really sets their events,
/// with `signaled`.
#[test]
fn garbage_everywhere_kills_nobody_and_forges_nothing() {
    let Some(env) = Env::new("garbage_everywhere_kills_nobody_and_forges_nothing") else {
        return;
    };
    let root = env.root();
    let (g, g2) = (unique("Global\\sec-g"), unique("Global\\sec-g2"));
    let (l, l2) = (unique("sec-l"), unique("sec-l2"));
    let mut v = root.repl();
    let mut s = root.repl();
    for (alias, name) in [("g", &g), ("g2", &g2), ("l", &l), ("l2", &l2)] {
        v.expect(&format!("create event {alias} name={name}"), "ok created");
        s.expect(&format!("open event {alias} name={name}"), "ok");
    }
    // The attacker's own world-writable object, with a waiter of its own: a file and a public
    // segment that are really the attacker's to wreck.
    let mut ar = Intruder::start(&env);
    let a = unique("Global\\sec-a");
    ar.expect(
        &format!("create event a name={a} manual mode=0666"),
        "ok created",
    );
    ar.send("@w wait a timeout=60000");

    v.send_batch(&[
        "@a wait g",
        "@b wait g2 timeout=3000",
        "@c wait l",
        "@d wait l2 timeout=3000",
    ]);
    for alias in ["g", "g2", "l", "l2"] {
        wait_for_waiters(&mut s, alias, 1);
    }
    let mut attacker = Attacker::start(&env, &[v.pid(), ar.pid()]);
    attacker.send("start mutate");
    let stats = attacker.rounds(3);
    assert!(
        stats.get("files") > 0 && stats.get("segs") > 0,
        "the attack must reach at least one file and one segment (the attacker's own object \
         and the victim's public wait block), or it tests nothing: {stats:?}"
    );
    // Under attack: the timed waits time out, the process answers.
    assert_eq!(v.answer_for("@b"), "@b timeout");
    assert_eq!(v.answer_for("@d"), "@d timeout");
    let pid = v.repl_pid();
    assert_eq!(pid, v.pid());
    attacker.rounds(2);
    v.no_answer_now();
    let stats = attacker.stop();
    eprintln!("attack statistics: {stats:?}");
    // The wreckage is confined to the attacker's own file: no file appeared or vanished.
    let short = |n: &str| format!("o{}", n.trim_start_matches("Global\\"));
    let expected: BTreeMap<String, u32> = [
        (format!("global/{}", short(&g)), 0),
        (format!("global/{}", short(&g2)), 0),
        (format!("global/{}", short(&a)), ATTACKER),
        (format!("local-0/o{l}"), 0),
        (format!("local-0/o{l2}"), 0),
    ]
    .into_iter()
    .collect();
    assert_eq!(files_with_owners(root.path()), expected);

    // Nobody set g or l: the INFINITE waits are still blocked, then return when really set:
    // g by the process that signals it all along (a process that attaches the wrecked segment
    // for the first time now is `a_wrecked_segment_header_loses_no_signal`), l by a fresh one.
    v.no_answer_now();
    // The waiter notices its wrecked claim word within its safety-net slice and queues again;
    // a `set` before that is `a_rewritten_generation_loses_no_signal`.
    wait_for_waiters(&mut s, "g", 1);
    s.expect("set g", "ok");
    assert_eq!(v.answer_for("@a"), "@a signaled");
    let mut fresh = root.repl();
    fresh.expect(&format!("open event l name={l}"), "ok");
    fresh.expect("set l", "ok");
    assert_eq!(v.answer_for("@c"), "@c signaled");
    assert_eq!(v.repl_pid(), v.pid());
    drop(fresh);
    ar.kill_and_remove(&root, &[&a]);
}

/// Promise 2 (and 3), the other side: a wait returns when its object is really signalled,
/// by any root process. The attacker zeroes only the first word of the victim's public wait
/// block segment (its header), once, before anyone signals; then a root process that had never
/// attached that segment sets the 0600 `Global\` event the victim waits on. The wait must
/// return `signaled` (or at worst the event must stay set for the waiter to take).
#[test]
#[ignore = "finds a bug: a zeroed magic word in a public wait-block segment makes every process \
            that has not attached it yet drop the waiter's entry (park::segment::attach fails \
            validation, queue::hand_off removes the entry), so the event stays set while the \
            INFINITE wait sleeps for ever (its safety net re-reads only its claim word)"]
fn a_wrecked_segment_header_loses_no_signal() {
    let Some(env) = Env::new("a_wrecked_segment_header_loses_no_signal") else {
        return;
    };
    let root = env.root();
    let g = unique("Global\\sec-g");
    let mut v = root.repl();
    v.expect(&format!("create event g name={g}"), "ok created");
    v.send("@a wait g");
    // Only the victim itself looks at its queue: no other process has attached its segment.
    wait_for_waiters(&mut v, "g", 1);
    let mut attacker = Attacker::start(&env, &[v.pid()]);
    let got = attacker.ask("smash-header");
    assert!(got.get("segs") > 0, "no public segment to attack: {got:?}");
    drop(attacker);

    let mut setter = root.repl();
    setter.expect(&format!("open event g name={g}"), "ok");
    setter.expect("set g", "ok");
    let state = setter.ask("query g");
    eprintln!("after `set g` by a fresh process, g reads: {state}");
    assert_eq!(v.answer_for("@a"), "@a signaled");
    setter.expect("query g", "ok event auto unset");
}

/// Promise 2 and 3, a real grant rewritten: a root process sets the 0600 `Global\` event
/// a root process waits on, and before the waiter runs (it is stopped with SIGSTOP for the
/// moment, standing for a busy scheduler) the attacker rewrites its claim word from SIGNALED
/// back to WAITING of the next generation. The grant is recorded in the object itself, so
/// the waiter, once it runs, must still get the event: `signaled`.
#[test]
#[ignore = "finds a bug: a public-block waiter that finds its claim word rewritten cleans up \
            with queue::remove_wait (wait::any::block, the `outcome.is_none()` branch) and \
            ignores the GRANTED entry that it removes: the event consumed on its behalf is \
            lost and the INFINITE wait never returns"]
fn a_rewritten_grant_is_not_lost() {
    let Some(env) = Env::new("a_rewritten_grant_is_not_lost") else {
        return;
    };
    let root = env.root();
    let g = unique("Global\\sec-g");
    let mut v = root.repl();
    let mut s = root.repl();
    v.expect(&format!("create event g name={g}"), "ok created");
    s.expect(&format!("open event g name={g}"), "ok");
    v.send("@a wait g");
    wait_for_waiters(&mut s, "g", 1);
    let mut attacker = Attacker::start(&env, &[v.pid()]);
    let pid = v.repl_pid();
    harness::signal_pid(pid, "STOP");
    s.expect("set g", "ok");
    let got = attacker.ask("eat");
    harness::signal_pid(pid, "CONT");
    assert!(got.get("eaten") > 0, "no grant to rewrite: {got:?}");
    drop(attacker);
    assert_eq!(v.answer_for("@a"), "@a signaled");
    s.expect("query g", "ok event auto unset");
}

/// Promise 3 and the other side of promise 2: a forged claim word costs a delay, never a
/// signal. The attacker moves the victim's public wait block to the next generation (issue 10,
/// item 3: "forced timeouts"), without waking it; a root process then sets the 0600 `Global\`
/// event the victim waits on, before the victim noticed. The signaller drops the entry that
/// no longer matches its block, the event stays set, and the victim, when it notices its
/// rewritten claim, must take the event: its INFINITE wait returns `signaled`.
#[test]
#[ignore = "finds a bug: a waiter on a public block that takes the object itself while it \
            registers (wait::any::block, the `acquire_locked` + `claim_self` path) then asks \
            the object to confirm a grant that no signaller recorded (wait::confirm finds no \
            GRANTED entry), calls its own acquisition forged and waits again: the event it \
            consumed is lost and the INFINITE wait never returns"]
fn a_rewritten_generation_loses_no_signal() {
    let Some(env) = Env::new("a_rewritten_generation_loses_no_signal") else {
        return;
    };
    let root = env.root();
    let g = unique("Global\\sec-g");
    let mut v = root.repl();
    let mut s = root.repl();
    v.expect(&format!("create event g name={g}"), "ok created");
    s.expect(&format!("open event g name={g}"), "ok");
    v.send("@a wait g");
    wait_for_waiters(&mut s, "g", 1);
    let mut attacker = Attacker::start(&env, &[v.pid()]);
    let got = attacker.ask("bump");
    assert!(got.get("forged") > 0, "no waiting public block: {got:?}");
    s.expect("set g", "ok");
    drop(attacker);
    assert_eq!(v.answer_for("@a"), "@a signaled");
    s.expect("query g", "ok event auto unset");
}

/// Promise 2, "never sees a result no signal produced": the attacker rewrites the claim word of
/// every public wait block it can attach to SIGNALED and ABANDONED values (and bumps
/// generations), ringing the waiter each time; it also plants, in its own world-writable
/// `Global\` object, queue entries naming the victims' wait blocks (public ones it reads, and
/// private ones whose generation root tells it, as if it had guessed), then that object is set
/// by the attacker and by root. Root's INFINITE waits on a 0600 event, on a mutex another root
/// process owns and on a `Local\` event do not return until those are really signalled, then
/// return `signaled`; a timed wait under attack returns `timeout`.
#[test]
fn forged_claims_and_planted_entries_produce_no_result() {
    let Some(env) = Env::new("forged_claims_and_planted_entries_produce_no_result") else {
        return;
    };
    let root = env.root();
    let (g, g2, m, l) = (
        unique("Global\\sec-g"),
        unique("Global\\sec-g2"),
        unique("Global\\sec-m"),
        unique("sec-l"),
    );
    let mut owner = root.repl();
    owner.expect(&format!("create mutex m name={m} owned"), "ok created");
    let mut v = root.repl();
    let mut s = root.repl();
    for (alias, name) in [("g", &g), ("g2", &g2), ("l", &l)] {
        v.expect(&format!("create event {alias} name={name}"), "ok created");
        s.expect(&format!("open event {alias} name={name}"), "ok");
    }
    v.expect(&format!("open mutex m name={m}"), "ok");
    let mut ar = Intruder::start(&env);
    let a = unique("Global\\sec-a");
    ar.expect(
        &format!("create event a name={a} manual mode=0666"),
        "ok created",
    );
    s.expect(&format!("open event a name={a}"), "ok");

    v.send_batch(&["@a wait g", "@m wait m", "@c wait l"]);
    wait_for_waiters(&mut s, "g", 1);
    wait_for_waiters(&mut owner, "m", 1);
    wait_for_waiters(&mut s, "l", 1);
    let mut attacker = Attacker::start(&env, &[v.pid()]);
    for round in 0..4 {
        let forged = attacker.ask(&format!("round forge {round}"));
        assert!(
            forged.get("forged") > 0,
            "round {round}: the attacker must find the victim's public wait blocks: {forged:?}"
        );
        // Root tells the attacker the private blocks' real generations (a lucky guess).
        for t in waiting_blocks(v.pid(), Some(false)) {
            attacker.ask(&format!(
                "target {} {} {} {}",
                t.seg, t.block, t.generation, t.who
            ));
        }
        let planted = attacker.ask("plant");
        assert!(planted.get("planted") > 0, "nothing planted: {planted:?}");
        ar.expect("set a", "ok");
        ar.expect("reset a", "ok");
        let planted = attacker.ask("plant");
        assert!(planted.get("planted") > 0, "nothing planted: {planted:?}");
        s.expect("set a", "ok");
        s.expect("reset a", "ok");
        v.no_answer_now();
    }
    // A timed wait under continuous forging: `timeout`, nothing else.
    v.send("@b wait g2 timeout=2000");
    wait_for_waiters(&mut s, "g2", 1);
    attacker.send("start forge");
    attacker.rounds(2);
    assert_eq!(v.answer_for("@b"), "@b timeout");
    let stats = attacker.stop();
    eprintln!("attack statistics: {stats:?}");
    v.no_answer_now();

    // Each waiter queued again with an intact claim word before its object is signalled (a
    // signal that comes while a forged claim stands is `a_rewritten_generation_loses_no_signal`).
    wait_for_waiters(&mut s, "g", 1);
    s.expect("set g", "ok");
    assert_eq!(v.answer_for("@a"), "@a signaled");
    s.expect("set l", "ok");
    assert_eq!(v.answer_for("@c"), "@c signaled");
    wait_for_waiters(&mut owner, "m", 1);
    owner.expect("release m", "ok");
    assert_eq!(v.answer_for("@m"), "@m signaled");
    v.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    drop(attacker);
    drop(ar);
}

/// Promise 2 in a wait that mixes root's 0600 `Global\` event with the attacker's own
/// object: the attacker may signal its own object (a `signaled 1` would be its right), but it
/// cannot make the wait report root's event. It plants, in its object, entries marked granted
/// for the victim's wait, and rewrites the victim's claim to SIGNALED/ABANDONED of index 0
/// (root's event), ringing it; the wait-any stays blocked, then returns `signaled 0` when root
/// sets the event.
#[test]
fn a_forged_claim_cannot_report_the_private_object_of_a_mixed_wait() {
    let Some(env) = Env::new("a_forged_claim_cannot_report_the_private_object_of_a_mixed_wait")
    else {
        return;
    };
    let root = env.root();
    let (g, a) = (unique("Global\\sec-g"), unique("Global\\sec-a"));
    let mut ar = Intruder::start(&env);
    ar.expect(&format!("create event a name={a} mode=0666"), "ok created");
    let mut v = root.repl();
    let mut s = root.repl();
    v.expect(&format!("create event g name={g}"), "ok created");
    v.expect(&format!("open event a name={a}"), "ok");
    s.expect(&format!("open event g name={g}"), "ok");
    v.send("@d waitany g a");
    wait_for_waiters(&mut s, "g", 1);
    let mut attacker = Attacker::start(&env, &[v.pid()]);
    for round in 0..6 {
        let planted = attacker.ask("plant-granted");
        assert!(planted.get("planted") > 0, "nothing planted: {planted:?}");
        // Variants 0 and 1: SIGNALED(0) and ABANDONED(0), index 0 being root's event.
        let forged = attacker.ask(&format!("round forge {}", round % 2));
        assert!(forged.get("forged") > 0, "no waiting block: {forged:?}");
        wait_for_waiters(&mut s, "g", 1);
        v.no_answer_now();
    }
    drop(attacker);
    s.expect("set g", "ok");
    assert_eq!(v.answer_for("@d"), "@d signaled 0");
    s.expect("query g", "ok event auto unset");
}

/// Promise 4, "does not hang": the attacker writes a live thread's identity (its own) into the
/// lock word of its own world-writable object, which root also uses, and marks it WAITERS so
/// that no lock-free path applies. Root's `set`/`query` of that object answer (an `io` error
/// naming the object is fine); operations on root's other objects answer meanwhile, in this
/// process and in another, also while a wait-all on both objects is in progress; once the
/// attacker is gone, the object works again.
#[test]
fn a_lock_word_held_by_a_live_attacker_stalls_only_its_object() {
    let Some(env) = Env::new("a_lock_word_held_by_a_live_attacker_stalls_only_its_object") else {
        return;
    };
    let root = env.root();
    let (x, p, q) = (
        unique("Global\\sec-x"),
        unique("Global\\sec-p"),
        unique("sec-q"),
    );
    let mut ar = Intruder::start(&env);
    ar.expect(&format!("create event x name={x} mode=0666"), "ok created");
    let mut v = root.repl();
    let mut r = root.repl();
    v.expect(&format!("open event x name={x}"), "ok");
    v.expect(&format!("create event p name={p}"), "ok created");
    v.expect(&format!("create event q name={q}"), "ok created");
    r.expect(&format!("open event p name={p}"), "ok");

    let mut attacker = Attacker::start(&env, &[]);
    let locked = attacker.ask("lock");
    assert!(locked.get("locked") > 0, "no object locked: {locked:?}");
    let short = x.trim_start_matches("Global\\");

    v.send("@x set x");
    // Another object, same process, while `set x` is stuck on x's lock.
    v.expect("set p", "ok");
    v.expect("query p", "ok event auto set");
    v.expect("set q", "ok");
    v.expect("wait q timeout=0", "signaled");
    let got = v.answer_for("@x");
    eprintln!("set x, its lock held by the attacker: {got}");
    assert!(
        got == "@x ok" || (got.starts_with("@x err io ") && got.contains(short)),
        "`set x` with x's lock held by a live attacker must answer `ok` or an io error naming \
         the object, got `{got}`"
    );
    let got = v.ask("query x");
    assert!(
        got.starts_with("ok event ") || (got.starts_with("err io ") && got.contains(short)),
        "`query x`: got `{got}`"
    );
    // A wait-all on p and x must not keep p locked while x's lock is unavailable.
    v.expect("reset p", "ok");
    v.send("@w waitall p x timeout=3000");
    r.expect("set p", "ok");
    r.expect("reset p", "ok");
    let got = v.answer_for("@w");
    eprintln!("waitall p x, x's lock held by the attacker: {got}");
    assert!(
        got == "@w timeout" || (got.starts_with("@w err io ") && got.contains(short)),
        "`waitall p x` with x's lock held: got `{got}`"
    );
    r.expect("set p", "ok");
    v.expect("wait p timeout=0", "signaled");

    // The holder's thread ends with the attacker: the lock is recovered.
    drop(attacker);
    v.expect("set x", "ok");
    ar.expect("wait x timeout=0", "signaled");
}

/// Promise 5, "keeps its private objects": the attacker can neither open the files of root's
/// `Local\` objects nor of its 0600 `Global\` object, cannot attach the private (0600) wait
/// blocks of root's `Local\` waits, and through procsync reaches only its own namespace: a
/// `Local\` name is another object for it, a 0600 `Global\` object is `access-denied`.
#[test]
fn private_objects_and_wait_blocks_stay_private() {
    let Some(env) = Env::new("private_objects_and_wait_blocks_stay_private") else {
        return;
    };
    let root = env.root();
    let (l, p) = (unique("sec-l"), unique("Global\\sec-p"));
    let mut v = root.repl();
    v.expect(&format!("create event l name={l}"), "ok created");
    v.expect(&format!("create event p name={p}"), "ok created");
    v.send("@a wait l");
    wait_for_waiters(&mut v, "l", 1);
    let private = waiting_blocks(v.pid(), Some(false));
    assert!(
        !private.is_empty(),
        "a wait on a Local\\ object must use a private wait block"
    );

    let mut attacker = Attacker::start(&env, &[v.pid()]);
    let local_file = root.path().join("local-0").join(format!("o{l}"));
    let global_file = root
        .path()
        .join("global")
        .join(format!("o{}", p.trim_start_matches("Global\\")));
    assert!(local_file.is_file() && global_file.is_file());
    for file in [&local_file, &global_file] {
        let got = attacker.ask(&format!("open {}", file.display()));
        assert_eq!(
            got.word("open"),
            "denied",
            "{}: the attacker must not open it",
            file.display()
        );
    }
    let got = attacker.ask("attach");
    assert_eq!(
        got.get("attached_private"),
        0,
        "the attacker attached a private wait block: {got:?}"
    );
    assert!(got.get("denied_private") > 0, "{got:?}");

    let mut ar = Intruder::start(&env);
    ar.expect_err(&format!("open event x name={l}"), "not-found");
    ar.expect_err(&format!("open event x name=Local\\{l}"), "not-found");
    ar.expect_err(&format!("open event x name={p}"), "access-denied");
    ar.expect_err(
        &format!("open event x name={p} access=synchronize"),
        "access-denied",
    );
    // The same Local\ name is the attacker's own, distinct object.
    ar.expect(&format!("create event x name={l}"), "ok created");
    ar.expect("set x", "ok");
    v.no_answer_now();
    v.expect("set l", "ok");
    assert_eq!(v.answer_for("@a"), "@a signaled");
    drop(attacker);
}

/// Promise 6, "writes no file where it should not": root and the attacker wait on and signal
/// each other's `Global\` objects, both wait on their own `Local\` objects, and root signals
/// the attacker's object after the attacker planted entries in it that name root's private
/// wait blocks. Meanwhile and afterwards, the files under the root are exactly the live
/// objects', each owned by its creator; nothing of root's appears in the attacker's namespace;
/// no shared table exists; and once everybody has exited nothing is left (files, or wait-block
/// segments of these processes).
#[test]
fn cross_user_traffic_writes_no_unexpected_file() {
    let Some(env) = Env::new("cross_user_traffic_writes_no_unexpected_file") else {
        return;
    };
    let root = env.root();
    let (g, a, l, l2, la) = (
        unique("Global\\sec-g"),
        unique("Global\\sec-a"),
        unique("sec-l"),
        unique("sec-l2"),
        unique("sec-la"),
    );
    let mut pids = Vec::new();
    {
        let mut v = root.repl();
        let mut ar = Intruder::start(&env);
        pids.extend([v.pid(), ar.pid()]);
        v.expect(&format!("create event g name={g}"), "ok created");
        v.expect(&format!("create event l name={l}"), "ok created");
        v.expect(&format!("create event l2 name={l2}"), "ok created");
        ar.expect(&format!("create event a name={a} mode=0666"), "ok created");
        ar.expect(&format!("create event la name={la}"), "ok created");
        v.expect(&format!("open event a name={a}"), "ok");

        // Root wakes the attacker, the attacker wakes root, each wakes itself locally.
        ar.send("@w wait a");
        wait_for_waiters(&mut v, "a", 1);
        v.expect("set a", "ok");
        assert_eq!(ar.answer_for("@w"), "@w signaled");
        v.send("@w wait a");
        wait_for_waiters(&mut v, "a", 1);
        ar.expect("set a", "ok");
        assert_eq!(v.answer_for("@w"), "@w signaled");
        ar.send("@l wait la");
        ar.wait_for_waiters("la", 1);
        ar.expect("set la", "ok");
        assert_eq!(ar.answer_for("@l"), "@l signaled");

        // Root's private wait, then entries naming it planted in the attacker's object, which
        // root then signals.
        v.send("@l wait l2");
        wait_for_waiters(&mut v, "l2", 1);
        let mut attacker = Attacker::start(&env, &[v.pid()]);
        for t in waiting_blocks(v.pid(), Some(false)) {
            attacker.ask(&format!(
                "target {} {} {} {}",
                t.seg, t.block, t.generation, t.who
            ));
        }
        let planted = attacker.ask("plant");
        assert!(planted.get("planted") > 0, "nothing planted: {planted:?}");
        v.expect("set a", "ok");
        v.expect("wait a timeout=0", "signaled");
        drop(attacker);
        v.no_answer_now();

        let short = |n: &str| format!("o{}", n.trim_start_matches("Global\\"));
        let expected: BTreeMap<String, u32> = [
            (format!("global/{}", short(&g)), 0),
            (format!("global/{}", short(&a)), ATTACKER),
            (format!("local-0/o{l}"), 0),
            (format!("local-0/o{l2}"), 0),
            (format!("local-{ATTACKER}/o{la}"), ATTACKER),
        ]
        .into_iter()
        .collect();
        let found = files_with_owners(root.path());
        assert_eq!(
            found, expected,
            "the files under the root must be exactly the live objects', owned by their creators"
        );
        v.expect("set l2", "ok");
        assert_eq!(v.answer_for("@l"), "@l signaled");
        v.expect("set l", "ok");
        v.expect("wait l timeout=0", "signaled");
        assert_eq!(files_with_owners(root.path()), expected);
        ar.close();
    }
    assert_eq!(
        files_with_owners(root.path()),
        BTreeMap::new(),
        "files left after every process exited"
    );
    let left: Vec<_> = segments()
        .into_iter()
        .filter(|s| pids.contains(&s.cpid))
        .collect();
    assert!(
        left.is_empty(),
        "wait-block segments outlived their processes: {left:?}"
    );
}

/// The opt-in long run (`PROCSYNC_SECURITY_SECS`, default 30): the attacker mutates every file
/// and segment it can write at random (garbage, truncation, hole punching, forged claims,
/// planted entries) while root's processes keep waiting and signalling: every INFINITE wait
/// that a root process satisfied returns `signaled`, every timed wait that nobody satisfied
/// returns `timeout`, and the processes stay alive.
/// `cargo test --release -p procsync-cli --test security long_random_mutation -- --ignored`
#[test]
#[ignore = "long: run with --ignored (PROCSYNC_SECURITY_SECS sets the duration); it currently \
            fails within seconds on the lost signals that the ignored a_* tests pin down"]
fn long_random_mutation() {
    let Some(env) = Env::new("long_random_mutation") else {
        return;
    };
    let secs: u64 = std::env::var("PROCSYNC_SECURITY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let root = env.root();
    let (g, g2, l, sem) = (
        unique("Global\\sec-g"),
        unique("Global\\sec-g2"),
        unique("sec-l"),
        unique("Global\\sec-s"),
    );
    let mut v = root.repl();
    let mut s = root.repl();
    for (alias, name) in [("g", &g), ("g2", &g2), ("l", &l)] {
        v.expect(&format!("create event {alias} name={name}"), "ok created");
        s.expect(&format!("open event {alias} name={name}"), "ok");
    }
    v.expect(
        &format!("create semaphore s initial=0 max=10 name={sem}"),
        "ok created",
    );
    s.expect(&format!("open semaphore s name={sem}"), "ok");
    let mut ar = Intruder::start(&env);
    let a = unique("Global\\sec-a");
    ar.expect(
        &format!("create event a name={a} manual mode=0666"),
        "ok created",
    );
    ar.send("@w wait a timeout=600000");

    let mut attacker = Attacker::start(&env, &[v.pid(), ar.pid()]);
    attacker.send("start chaos");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut cycles = 0u64;
    while Instant::now() < end {
        v.send_batch(&[
            "@a wait g",
            "@c wait l",
            "@s wait s",
            "@b wait g2 timeout=20",
        ]);
        s.expect("set g", "ok");
        s.expect("set l", "ok");
        s.expect("release s", "ok 0");
        assert_eq!(v.answer_for("@a"), "@a signaled");
        assert_eq!(v.answer_for("@c"), "@c signaled");
        assert_eq!(v.answer_for("@s"), "@s signaled");
        assert_eq!(v.answer_for("@b"), "@b timeout");
        cycles += 1;
    }
    let stats = attacker.stop();
    eprintln!("{cycles} cycles under attack; attack statistics: {stats:?}");
    assert_eq!(v.repl_pid(), v.pid());
    ar.kill_and_remove(&root, &[&a]);
}

/// The attacker's entry point: the other tests run this test binary as uid 65534 with
/// `PROCSYNC_SECURITY_ATTACK` set. Without it there is nothing to do.
#[test]
#[ignore = "the attacker process that the other tests start as uid 65534"]
fn attacker_process() {
    if std::env::var_os(ENV_ATTACK).is_none() {
        eprintln!("attacker_process: {ENV_ATTACK} is not set: nothing to attack");
        return;
    }
    attack::main();
}

// =============================================================================================
// The test side: environment, the attacker process, the attacker's REPL

/// What a test needs to run an attacker: root privileges and binaries uid 65534 can run.
struct Env {
    test_exe: PathBuf,
    procsync: PathBuf,
    /// A directory of copies of the binaries, when the build tree is not reachable by others.
    copies: Option<PathBuf>,
}

impl Env {
    /// `None` (after a loud skip) when not root.
    fn new(test: &str) -> Option<Env> {
        if !rustix::process::geteuid().is_root() {
            skip(
                test,
                "needs root, to run the attacker as another user (uid 65534)",
            );
            return None;
        }
        let test_exe = std::env::current_exe().expect("current_exe");
        let procsync = PathBuf::from(harness::BIN);
        if reachable_by_others(&test_exe) && reachable_by_others(&procsync) {
            return Some(Env {
                test_exe,
                procsync,
                copies: None,
            });
        }
        // The build tree is private (a 0700 checkout): run copies from a public directory.
        let dir = std::env::temp_dir().join(format!(
            "procsync-security-bin-{}-{}",
            std::process::id(),
            unique("b")
        ));
        fs::create_dir(&dir).expect("create the binaries directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = |from: &Path, name: &str| {
            let to = dir.join(name);
            fs::copy(from, &to).expect("copy a binary");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod");
            to
        };
        let env = Env {
            test_exe: copy(&test_exe, "security-test"),
            procsync: copy(&procsync, "procsync"),
            copies: Some(dir.clone()),
        };
        if !reachable_by_others(&env.test_exe) {
            let msg = format!(
                "{} is not reachable by other users; set TMPDIR to a world-searchable directory",
                dir.display()
            );
            if on_ci() {
                panic!("{test}: {msg}");
            }
            skip(test, &msg);
            return None;
        }
        Some(env)
    }

    /// A fresh root that the attacker can reach: its sandbox levels searchable by others
    /// (they are this test's), the root itself 1777 as procsync creates it.
    fn root(&self) -> Root {
        let root = Root::fresh();
        let mut dir = root.sandbox().to_path_buf();
        let mut levels = vec![dir.clone()];
        for d in harness::ROOT_DEPTH {
            dir.push(d);
            levels.push(dir.clone());
        }
        for level in levels {
            fs::set_permissions(&level, fs::Permissions::from_mode(0o755)).expect("chmod sandbox");
        }
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o1777)).expect("chmod root");
        // The `Global\` namespace is root's, as on a machine where root used it first (or an
        // administrator created it): a `global` first created by uid 65534 would be refused to
        // root, a documented limit (ARCHITECTURE.md, "Directories someone else planted").
        let global = root.path().join("global");
        fs::create_dir(&global).expect("create global");
        fs::set_permissions(&global, fs::Permissions::from_mode(0o1777)).expect("chmod global");
        assert!(
            reachable_by_others(&root.path().join("x")),
            "the test root {} must be reachable by uid {ATTACKER} (is the temporary \
             directory searchable by others?)",
            root.path().display()
        );
        CURRENT_ROOT.with(|r| *r.borrow_mut() = Some(root.path().to_path_buf()));
        root
    }

    /// A command that runs as the attacker, with a clean environment.
    fn as_attacker(&self, program: &Path, root: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RUST_BACKTRACE", "1")
            .env("PROCSYNC_ROOT", root)
            .current_dir("/")
            .uid(ATTACKER)
            .gid(ATTACKER);
        cmd
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(dir) = &self.copies {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Whether every directory above `path` is searchable by others and `path` (if it exists) is
/// readable and executable by others.
fn reachable_by_others(path: &Path) -> bool {
    let dirs_ok = path
        .ancestors()
        .skip(1)
        .all(|d| fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0));
    dirs_ok
        && fs::metadata(path)
            .map(|m| m.mode() & 0o005 == 0o005)
            .unwrap_or(true)
}

thread_local! {
    /// The root the current test's attackers use (set by [`Env::root`] callers through
    /// [`Attacker::start`] and [`Intruder::start`]).
    static CURRENT_ROOT: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Lines of a child's standard output, read by a thread.
fn line_reader(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A child's standard error, collected by a thread.
fn collect(err: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let mut err = err;
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = err.read(&mut chunk) {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text_of(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

fn reap(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// An attacker's answer: `ATTACK <verb> key=value …`.
#[derive(Debug, Default, Clone)]
struct Stats(HashMap<String, String>);

impl Stats {
    fn parse(line: &str) -> Stats {
        let mut map = HashMap::new();
        for (i, word) in line.split_whitespace().enumerate() {
            match word.split_once('=') {
                Some((k, v)) => map.insert(k.to_string(), v.to_string()),
                None => map.insert(format!("#{i}"), word.to_string()),
            };
        }
        Stats(map)
    }
    fn get(&self, key: &str) -> u64 {
        self.0.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
    fn word(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("")
    }
}

/// The attacker process: this test binary as uid 65534, driven line by line.
struct Attacker {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Attacker {
    /// Starts it against `env`'s current root; it may go after the segments of `pids` (and of
    /// its own user's processes among them).
    fn start(env: &Env, pids: &[u32]) -> Attacker {
        let root = CURRENT_ROOT
            .with(|r| r.borrow().clone())
            .expect("Env::root first");
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut child = env
            .as_attacker(&env.test_exe, &root)
            .env(ENV_ATTACK, "1")
            .env(ENV_TARGET_PIDS, pids.join(","))
            .args([
                "--exact",
                "attacker_process",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the attacker");
        let lines = line_reader(child.stdout.take().expect("piped"));
        let stderr = collect(child.stderr.take().expect("piped"));
        let mut a = Attacker {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stderr,
        };
        let ready = a.next("ready");
        assert_eq!(
            (ready.get("uid"), ready.get("euid")),
            (u64::from(ATTACKER), u64::from(ATTACKER)),
            "the attacker must run as uid {ATTACKER}: {ready:?}"
        );
        a
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("attacker input open");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| self.fail(&format!("cannot write `{cmd}` to the attacker: {e}")));
    }

    /// Sends `cmd` and returns its `ATTACK done …` answer.
    fn ask(&mut self, cmd: &str) -> Stats {
        self.send(cmd);
        self.next("done")
    }

    /// Waits for `n` more rounds of a started attack; returns the latest statistics.
    fn rounds(&mut self, n: usize) -> Stats {
        let mut last = Stats::default();
        for _ in 0..n {
            last = self.next("round");
        }
        last
    }

    /// Stops a started attack; returns its final statistics.
    fn stop(&mut self) -> Stats {
        self.send("stop");
        self.next("stopped")
    }

    /// The next `ATTACK <verb> …` line (earlier lines of other verbs are skipped).
    fn next(&mut self, verb: &str) -> Stats {
        let deadline = Instant::now() + ATTACK_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // libtest may print `test attacker_process ... ` before the first line.
                    let Some(at) = line.find("ATTACK ") else {
                        continue;
                    };
                    let rest = &line[at + "ATTACK ".len()..];
                    if rest.split_whitespace().next() == Some(verb) {
                        return Stats::parse(rest);
                    }
                    if rest.starts_with("error") {
                        self.fail(&format!("the attacker failed: {rest}"));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no `ATTACK {verb}` within {ATTACK_DEADLINE:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("the attacker exited before `ATTACK {verb}`"))
                }
            }
        }
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "attacker: {msg}\n---- attacker stderr ----\n{}",
            text_of(&self.stderr)
        );
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            if thread::panicking() {
                let _ = child.kill();
            }
            let status = reap(&mut child, ATTACK_DEADLINE);
            if !thread::panicking() && !status.is_some_and(|s| s.success()) {
                self.fail(&format!("the attacker did not exit cleanly: {status:?}"));
            }
        }
    }
}

/// A `procsync repl` running as the attacker: objects the attacker owns, and its attempts to
/// open the victims'. Driven like the harness's [`Repl`] (one answer per command).
struct Intruder {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    buffered: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    log: Vec<String>,
}

impl Intruder {
    fn start(env: &Env) -> Intruder {
        let root = CURRENT_ROOT
            .with(|r| r.borrow().clone())
            .expect("Env::root first");
        let mut child = env
            .as_attacker(&env.procsync, &root)
            .arg("repl")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the attacker's repl");
        let lines = line_reader(child.stdout.take().expect("piped"));
        let stderr = collect(child.stderr.take().expect("piped"));
        Intruder {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            buffered: Vec::new(),
            stderr,
            log: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn send(&mut self, cmd: &str) {
        self.log.push(format!("> {cmd}"));
        let stdin = self.stdin.as_mut().expect("input open");
        if let Err(e) = writeln!(stdin, "{cmd}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot write `{cmd}`: {e}"));
        }
    }

    /// The next answer whose thread prefix is `prefix` (`""` for thread main).
    fn answer_of(&mut self, prefix: &str) -> String {
        let mine = |l: &str| {
            if prefix.is_empty() {
                !l.starts_with('@')
            } else {
                l.starts_with(&format!("{prefix} "))
            }
        };
        if let Some(i) = self.buffered.iter().position(|l| mine(l)) {
            return self.buffered.remove(i);
        }
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.log.push(format!("< {line}"));
                    if mine(&line) {
                        return line;
                    }
                    self.buffered.push(line);
                }
                Err(_) => self.fail(&format!("no answer for thread `{prefix}`")),
            }
        }
    }

    fn answer_for(&mut self, prefix: &str) -> String {
        self.answer_of(prefix)
    }

    fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let prefix = if cmd.starts_with('@') {
            cmd.split(' ').next().unwrap_or("").to_string()
        } else {
            String::new()
        };
        self.answer_of(&prefix)
    }

    #[track_caller]
    fn expect(&mut self, cmd: &str, want: &str) {
        let got = self.ask(cmd);
        if got != want {
            self.fail(&format!("`{cmd}`: expected `{want}`, got `{got}`"));
        }
    }

    /// Polls `waiters alias` until it answers `ok n` (the harness's [`wait_for_waiters`]).
    #[track_caller]
    fn wait_for_waiters(&mut self, alias: &str, n: usize) {
        let (cmd, want) = (format!("waiters {alias}"), format!("ok {n}"));
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            let got = self.ask(&cmd);
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("`{cmd}`: expected `{want}`, last answer `{got}`"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[track_caller]
    fn expect_err(&mut self, cmd: &str, code: &str) {
        let got = self.ask(cmd);
        if !got.starts_with(&format!("err {code} ")) {
            self.fail(&format!("`{cmd}`: expected `err {code} …`, got `{got}`"));
        }
    }

    /// End of input: it must answer what it read, close its handles and exit 0.
    fn close(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let status = reap(&mut child, Duration::from_secs(15));
            if !status.is_some_and(|s| s.success()) {
                self.fail(&format!("the attacker's repl did not exit 0: {status:?}"));
            }
        }
    }

    /// Kills it (its own objects may be wrecked beyond use: only the attacker's business) and
    /// removes the files of its `Global\` objects `names`, which a killed holder leaves behind.
    fn kill_and_remove(&mut self, root: &Root, names: &[&str]) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for n in names {
            let file = root
                .path()
                .join("global")
                .join(format!("o{}", n.trim_start_matches("Global\\")));
            let _ = fs::remove_file(file);
        }
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "attacker's repl: {msg}\n---- its transcript ----\n{}\n---- its stderr ----\n{}",
            self.log.join("\n"),
            text_of(&self.stderr)
        );
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if thread::panicking() {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        } else {
            self.close();
        }
    }
}

/// Every regular file under `root`, relative, with its owner; fails on anything that is
/// neither a regular file nor a directory, and on a shared wait table.
fn files_with_owners(root: &Path) -> BTreeMap<String, u32> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            let rel = path
                .strip_prefix(base)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            assert!(
                !rel.ends_with(".waits"),
                "a shared wait table exists: {rel}"
            );
            if meta.is_dir() {
                walk(base, &path, out);
            } else {
                assert!(meta.is_file(), "not a regular file under the root: {rel}");
                out.insert(rel, meta.uid());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

// =============================================================================================
// System V segments (both sides)

/// One line of `/proc/sysvipc/shm`.
#[derive(Debug, Clone)]
struct SegInfo {
    id: i32,
    mode: u32,
    size: usize,
    cpid: u32,
}

fn segments() -> Vec<SegInfo> {
    let text = fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(SegInfo {
                id: f.get(1)?.parse().ok()?,
                mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
                size: f.get(3)?.parse().ok()?,
                cpid: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

/// The one edge of this file that needs `unsafe`: attaching System V segments (no safe
/// wrapper exists in the crates we use) and viewing their words as atomics.
#[allow(unsafe_code)]
mod sysv {
    use super::{BLOCK_CLAIM, BLOCK_SIZE, SEG_HEADER};
    use std::sync::atomic::{AtomicU32, AtomicU64};

    /// A segment attached to this process; detached on drop.
    pub(super) struct Attached {
        ptr: *mut u8,
        len: usize,
    }

    impl Attached {
        /// Attaches segment `id` (read-only or read-write); `Err(errno)` if the kernel refuses.
        pub(super) fn new(id: i32, len: usize, write: bool) -> Result<Attached, i32> {
            let flags = if write { 0 } else { libc::SHM_RDONLY };
            // SAFETY: shmat with a null address lets the kernel choose where to map; it returns
            // (void*)-1 on failure and touches nothing of ours.
            let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
            if p as isize == -1 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            Ok(Attached { ptr: p.cast(), len })
        }

        pub(super) fn u64_at(&self, off: usize) -> &AtomicU64 {
            assert!(off.is_multiple_of(8) && off + 8 <= self.len);
            // SAFETY: in bounds and 8-aligned (segments are page-aligned); shared memory that
            // other processes write concurrently is only ever accessed through atomics here.
            unsafe { &*(self.ptr.add(off) as *const AtomicU64) }
        }

        pub(super) fn u32_at(&self, off: usize) -> &AtomicU32 {
            assert!(off.is_multiple_of(4) && off + 4 <= self.len);
            // SAFETY: as in `u64_at`.
            unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
        }

        /// The segment's wait blocks (as many as fit after the header).
        pub(super) fn blocks(&self) -> usize {
            self.len.saturating_sub(SEG_HEADER) / BLOCK_SIZE
        }

        pub(super) fn claim_off(b: usize) -> usize {
            SEG_HEADER + b * BLOCK_SIZE + BLOCK_CLAIM
        }
    }

    impl Drop for Attached {
        fn drop(&mut self) {
            // SAFETY: `ptr` came from shmat and is detached once.
            unsafe { libc::shmdt(self.ptr.cast()) };
        }
    }
}

/// A block that is waiting right now, as root reads it.
struct Waiting {
    seg: i32,
    block: usize,
    generation: u32,
    who: u64,
}

/// The blocks of process `pid`'s segments (only private or only public ones if asked) whose
/// claim says WAITING, read by this (root) process.
fn waiting_blocks(pid: u32, public: Option<bool>) -> Vec<Waiting> {
    let mut out = Vec::new();
    for s in segments().into_iter().filter(|s| s.cpid == pid) {
        if public.is_some_and(|p| p != (s.mode & 0o022 != 0)) {
            continue;
        }
        let Ok(seg) = Attached::new(s.id, s.size, false) else {
            continue;
        };
        for b in 0..seg.blocks() {
            let c = seg.u64_at(Attached::claim_off(b)).load(Ordering::Acquire);
            if c as u32 == CLAIM_WAITING {
                out.push(Waiting {
                    seg: s.id,
                    block: b,
                    generation: (c >> 32) as u32,
                    who: seg
                        .u64_at(SEG_HEADER + b * BLOCK_SIZE)
                        .load(Ordering::Relaxed),
                });
            }
        }
    }
    out
}

// =============================================================================================
// The attacker process

mod attack {
    //! Runs as uid 65534: reads commands on standard input, answers `ATTACK <verb> k=v…`.
    //!
    //! - `round MODE [N]`: one round of MODE (`mutate`, `forge` with variant N, `chaos`).
    //! - `start MODE`: rounds of MODE until `stop`, each reported `ATTACK round …`.
    //! - `target SEG BLOCK GEN WHO`: a wait block to name in planted entries.
    //! - `eat`: rewrite every granted claim to WAITING of the next generation.
    //! - `bump`: move every waiting block to the next generation, without ringing it.
    //! - `smash-header`: zero the first word of every attachable target segment.
    //! - `plant`: plant entries naming every known waiting block in every writable object.
    //! - `plant-granted`: the same, the entries marked granted.
    //! - `lock`: write this thread's identity into the lock word of every writable object.
    //! - `open PATH`: try to open PATH for reading and for writing.
    //! - `attach`: try to attach every target segment; count successes per kind.

    use super::*;

    #[derive(Default)]
    struct State {
        root: PathBuf,
        pids: Vec<u32>,
        targets: Vec<(u32, u32, u32, u64)>,
        rng: u64,
        counts: BTreeMap<&'static str, u64>,
    }

    impl State {
        fn count(&mut self, key: &'static str, n: u64) {
            *self.counts.entry(key).or_default() += n;
        }
        fn report(&self, verb: &str) {
            let mut line = format!("ATTACK {verb}");
            for (k, v) in &self.counts {
                line.push_str(&format!(" {k}={v}"));
            }
            println!("{line}");
        }
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    pub(super) fn main() {
        let (uid, euid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::geteuid().as_raw(),
        );
        assert_ne!(euid, 0, "the attacker must not run as root");
        let mut st = State {
            root: PathBuf::from(std::env::var_os("PROCSYNC_ROOT").expect("PROCSYNC_ROOT")),
            pids: std::env::var(ENV_TARGET_PIDS)
                .unwrap_or_default()
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect(),
            rng: u64::from(std::process::id()) << 20 | 0x9E37_79B9,
            ..State::default()
        };
        println!("ATTACK ready uid={uid} euid={euid}");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Ok(line) = rx.recv() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["round", mode, rest @ ..] => {
                    let n = rest.first().and_then(|n| n.parse().ok()).unwrap_or(0);
                    round(&mut st, mode, n);
                    st.report("done");
                }
                ["start", mode] => {
                    let mut n = 0u64;
                    loop {
                        round(&mut st, mode, n);
                        n += 1;
                        st.count("rounds", 1);
                        st.report("round");
                        match rx.try_recv() {
                            Ok(_) | Err(mpsc::TryRecvError::Disconnected) => break,
                            Err(mpsc::TryRecvError::Empty) => {}
                        }
                    }
                    st.report("stopped");
                }
                ["target", seg, block, generation, who] => {
                    let parse = |s: &str| s.parse::<u64>().unwrap_or(0);
                    st.targets.push((
                        parse(seg) as u32,
                        parse(block) as u32,
                        parse(generation) as u32,
                        parse(who),
                    ));
                    st.report("done");
                }
                ["eat"] => {
                    eat_grants(&mut st);
                    st.report("done");
                }
                ["bump"] => {
                    bump_generations(&mut st);
                    st.report("done");
                }
                ["smash-header"] => {
                    smash_headers(&mut st);
                    st.report("done");
                }
                ["plant-granted"] => {
                    plant(&mut st, true);
                    st.report("done");
                }
                ["plant"] => {
                    plant(&mut st, false);
                    st.report("done");
                }
                ["lock"] => {
                    lock(&mut st);
                    st.report("done");
                    // Keep this thread, whose identity the lock words name, alive until the end.
                }
                ["open", path] => {
                    let r = fs::OpenOptions::new().read(true).open(path).is_ok();
                    let w = fs::OpenOptions::new().write(true).open(path).is_ok();
                    let verdict = if r || w { "opened" } else { "denied" };
                    println!("ATTACK done open={verdict} read={r} write={w}");
                }
                ["attach"] => {
                    for s in target_segments(&st) {
                        let private = s.mode & 0o022 == 0;
                        let ok = Attached::new(s.id, s.size, true).is_ok();
                        st.count(
                            match (private, ok) {
                                (true, true) => "attached_private",
                                (true, false) => "denied_private",
                                (false, true) => "attached_public",
                                (false, false) => "denied_public",
                            },
                            1,
                        );
                    }
                    st.report("done");
                }
                _ => println!("ATTACK error unknown command `{line}`"),
            }
        }
    }

    /// The segments of the processes this test named.
    fn target_segments(st: &State) -> Vec<SegInfo> {
        segments()
            .into_iter()
            .filter(|s| st.pids.contains(&s.cpid))
            .collect()
    }

    /// Every regular file under the root that opens for writing (the rest is counted).
    fn writable_files(st: &mut State) -> Vec<(PathBuf, fs::File)> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => walk(&p, out),
                    Ok(m) if m.is_file() => out.push(p),
                    _ => {}
                }
            }
        }
        let mut paths = Vec::new();
        walk(&st.root.clone(), &mut paths);
        let mut out = Vec::new();
        for p in paths {
            match fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
            {
                Ok(f) => out.push((p, f)),
                Err(_) => st.count("file_denied", 1),
            }
        }
        out
    }

    fn round(st: &mut State, mode: &str, n: u64) {
        match mode {
            "mutate" => {
                mutate_files(st);
                garble_segments(st);
            }
            "forge" => forge(st, n),
            "chaos" => chaos(st),
            other => println!("ATTACK error unknown mode `{other}`"),
        }
    }

    /// Truncate, punch, shrink, extend and overwrite every writable file; leave it 4096 bytes
    /// of garbage.
    fn mutate_files(st: &mut State) {
        for (_, f) in writable_files(st) {
            let _ = f.set_len(0);
            let _ = f.set_len(4096);
            punch(&f);
            let _ = f.set_len(1);
            let _ = f.set_len(3 * 4096);
            let junk = st.bytes(4096);
            let _ = f.write_all_at(&junk, 0);
            let _ = f.set_len(4096);
            st.count("files", 1);
        }
    }

    fn punch(f: &fs::File) {
        use rustix::fs::FallocateFlags as F;
        let _ = rustix::fs::fallocate(f, F::PUNCH_HOLE | F::KEEP_SIZE, 0, 4096);
    }

    /// Fills every attachable target segment with garbage.
    fn garble_segments(st: &mut State) {
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            for off in (0..s.size / 8).map(|i| i * 8) {
                let v = st.next();
                seg.u64_at(off).store(v, Ordering::Relaxed);
            }
            st.count("segs", 1);
        }
    }

    fn ring(seg: &Attached, b: usize) {
        let wake = seg.u32_at(SEG_HEADER + b * BLOCK_SIZE + BLOCK_WAKE);
        wake.fetch_add(1, Ordering::Release);
        // Shared (not process-private) futex: it reaches the waiter in its own process.
        let _ = rustix::thread::futex::wake(wake, rustix::thread::futex::Flags::empty(), u32::MAX);
    }

    /// Rewrites every granted claim (SIGNALED or ABANDONED) of every attachable target segment
    /// back to WAITING of the next generation: a real grant made to look like nothing happened.
    fn eat_grants(st: &mut State) {
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            st.count("segs", 1);
            for b in 0..seg.blocks() {
                let claim = seg.u64_at(Attached::claim_off(b));
                let c = claim.load(Ordering::Acquire);
                if matches!(c as u32 & !0xFF, CLAIM_SIGNALED | CLAIM_ABANDONED) {
                    let next = (c & !0xFFFF_FFFF).wrapping_add(1 << 32);
                    claim.store(next | u64::from(CLAIM_WAITING), Ordering::Release);
                    st.count("eaten", 1);
                }
            }
        }
    }

    /// Moves every waiting block of every attachable target segment to the next generation
    /// (still WAITING), without ringing it: its queue entries no longer match it.
    fn bump_generations(st: &mut State) {
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            st.count("segs", 1);
            for b in 0..seg.blocks() {
                let claim = seg.u64_at(Attached::claim_off(b));
                let c = claim.load(Ordering::Acquire);
                if c as u32 == CLAIM_WAITING {
                    claim.store(c.wrapping_add(1 << 32), Ordering::Release);
                    st.count("forged", 1);
                }
            }
        }
    }

    /// Zeroes the first word (the magic) of every attachable target segment, nothing else.
    fn smash_headers(st: &mut State) {
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            seg.u64_at(0).store(0, Ordering::Relaxed);
            st.count("segs", 1);
        }
    }

    /// Rewrites the claim of every waiting block of every attachable target segment: variant
    /// 0 SIGNALED(0), 1 ABANDONED(0), 2 the next generation, 3 SIGNALED(1); rings the waiter.
    fn forge(st: &mut State, variant: u64) {
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            st.count("segs", 1);
            for b in 0..seg.blocks() {
                let claim = seg.u64_at(Attached::claim_off(b));
                let c = claim.load(Ordering::Acquire);
                if c as u32 != CLAIM_WAITING {
                    continue;
                }
                let generation = c & !0xFFFF_FFFF;
                let forged = match variant % 4 {
                    0 => generation | u64::from(CLAIM_SIGNALED),
                    1 => generation | u64::from(CLAIM_ABANDONED),
                    2 => generation.wrapping_add(1 << 32) | u64::from(CLAIM_WAITING),
                    _ => generation | u64::from(CLAIM_SIGNALED + 1),
                };
                claim.store(forged, Ordering::Release);
                ring(&seg, b);
                st.count("forged", 1);
            }
        }
    }

    /// Plants, in every writable object file, entries naming every waiting block it can see
    /// (public ones) and every target (private ones root named): pending entries, and with
    /// `granted` also entries marked granted; sets WAITERS and leaves the event unset.
    fn plant(st: &mut State, granted: bool) {
        let mut names: Vec<(u32, u32, u32, u64)> = st.targets.clone();
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, false) else {
                continue;
            };
            for b in 0..seg.blocks() {
                let c = seg.u64_at(Attached::claim_off(b)).load(Ordering::Acquire);
                if c as u32 == CLAIM_WAITING {
                    let who = seg
                        .u64_at(SEG_HEADER + b * BLOCK_SIZE)
                        .load(Ordering::Relaxed);
                    names.push((s.id as u32, b as u32, (c >> 32) as u32, who));
                }
            }
        }
        names.truncate(QUEUE_CAPACITY);
        for (_, f) in writable_files(st) {
            for (k, &(seg, block, generation, who)) in names.iter().enumerate() {
                let meta = ENTRY_ANY | if granted { ENTRY_GRANTED } else { 0 };
                let mut e = Vec::with_capacity(ENTRY_SIZE as usize);
                e.extend_from_slice(&seg.to_le_bytes());
                e.extend_from_slice(&block.to_le_bytes());
                e.extend_from_slice(&generation.to_le_bytes());
                e.extend_from_slice(&meta.to_le_bytes());
                e.extend_from_slice(&who.to_le_bytes());
                let _ = f.write_all_at(&e, OFF_QUEUE + ENTRY_SIZE * k as u64);
            }
            let _ = f.write_all_at(&(names.len() as u32).to_le_bytes(), OFF_QUEUE_LEN);
            let _ = f.write_all_at(&STATE_WAITERS.to_le_bytes(), OFF_STATE);
            st.count("planted", names.len() as u64);
        }
    }

    /// This thread's procsync identity: tid | (start time & 2^30-1) << 32.
    fn identity() -> u64 {
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let start: u64 = after
            .split(' ')
            .nth(19)
            .and_then(|s| s.parse().ok())
            .expect("start time");
        u64::from(tid) | (start & 0x3FFF_FFFF) << 32
    }

    /// Holds the lock of every writable object in this (live) thread's name, with WAITERS set
    /// so that every operation needs the lock.
    fn lock(st: &mut State) {
        let me = identity();
        for (_, f) in writable_files(st) {
            let mut state = [0u8; 8];
            let _ = f.read_exact_at(&mut state, OFF_STATE);
            let state = u64::from_le_bytes(state) | STATE_WAITERS;
            let _ = f.write_all_at(&me.to_le_bytes(), OFF_LOCK);
            let _ = f.write_all_at(&state.to_le_bytes(), OFF_STATE);
            st.count("locked", 1);
        }
    }

    /// One random blow per writable file and per attachable segment.
    fn chaos(st: &mut State) {
        let files = writable_files(st);
        for (_, f) in &files {
            match st.next() % 6 {
                0 => {
                    let _ = f.set_len(st.next() % 8192);
                    let _ = f.set_len(4096);
                }
                1 => punch(f),
                2 => {
                    let junk = st.bytes(8);
                    let _ = f.write_all_at(&junk, (st.next() % 4088) & !7);
                }
                3 => {
                    let junk = st.bytes(4096);
                    let _ = f.write_all_at(&junk, 0);
                }
                _ => {}
            }
            st.count("files", 1);
        }
        drop(files);
        if st.next().is_multiple_of(4) {
            plant(st, st.rng.is_multiple_of(2));
        }
        for s in target_segments(st) {
            let Ok(seg) = Attached::new(s.id, s.size, true) else {
                st.count("seg_denied", 1);
                continue;
            };
            st.count("segs", 1);
            for _ in 0..4 {
                let off = (st.next() as usize % (s.size / 8)) * 8;
                let v = st.next();
                match st.next() % 3 {
                    0 => seg.u64_at(off).store(v, Ordering::Relaxed),
                    1 if seg.blocks() > 0 => {
                        let b = v as usize % seg.blocks();
                        let claim = seg.u64_at(Attached::claim_off(b));
                        let c = claim.load(Ordering::Acquire);
                        let state = [CLAIM_SIGNALED, CLAIM_ABANDONED, CLAIM_WAITING, 0]
                            [(v >> 8) as usize % 4];
                        claim.store((c & !0xFFFF_FFFF) | u64::from(state), Ordering::Release);
                        ring(&seg, b);
                    }
                    _ => {}
                }
            }
        }
    }
}
