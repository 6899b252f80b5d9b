//! The REPL's framing rules of docs/REPL.md that are about input and output rather than
//! objects: end of input answers every command read, on every thread, however long it
//! takes; `exit` does not wait for blocked waits; `help` answers on one line.

use std::time::{Duration, Instant};

use crate::harness::{ANSWER_DEADLINE, BLOCK_GRACE, Root, unique};

/// Asks `waiters e` until it answers `ok want` (the handshake that tells a wait is queued).
fn until_waiters(r: &mut crate::harness::Repl<'_>, alias: &str, want: usize) {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        if r.ask(&format!("waiters {alias}")) == format!("ok {want}") {
            return;
        }
        if Instant::now() >= deadline {
            r.fail(&format!("`{alias}` never had {want} waiters"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// docs/REPL.md, "Lines and answers": a piped `wait e` with no timeout, on `main` and on
/// another thread, is still answered after end of input once `e` is set; the commands queued
/// behind it are answered too, and only then does the process exit 0.
#[test]
fn end_of_input_answers_blocked_waits_on_every_thread() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("eof-gate");
    b.expect(&format!("create event e name={n} manual"), "ok created");

    // The alias must exist before thread `t` uses it: threads run concurrently.
    a.expect(&format!("open event e name={n}"), "ok");
    a.send_batch(&[
        "@t wait e".to_owned(),
        "wait e".to_owned(),
        "query e".to_owned(),
        "@t help set".to_owned(),
    ]);
    until_waiters(&mut b, "e", 2);
    a.close_input();
    // Negative check: end of input alone must not make the REPL drop the blocked waits.
    a.no_answer_for(BLOCK_GRACE);
    assert!(a.is_running(), "the repl exited with two waits unanswered");

    b.expect("set e", "ok");
    assert_eq!(a.answer(), "signaled");
    assert_eq!(a.answer(), "ok event manual set");
    assert_eq!(a.answer_for("@t"), "@t signaled");
    assert_eq!(a.answer_for("@t"), "@t ok set A");
    a.close_and_reap();
}

/// docs/REPL.md, "Lines and answers": `exit` closes everything and exits 0 at once, even with a
/// wait blocked on another thread; that wait gets no answer, and the name is gone.
#[test]
fn exit_does_not_wait_for_blocked_waits() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("exit-blocked");
    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event x name={n}"), "ok");
    a.send("@t wait e");
    until_waiters(&mut b, "x", 1);
    a.exit();
    // A's handles went with it: B's is the last one, and its close removes the name.
    b.expect("waiters x", "ok 0");
    b.expect("close x", "ok");
    b.expect_err(&format!("open event x name={n}"), "not-found");
}

/// docs/REPL.md: `help` lists the commands, `help COMMAND` gives its syntax, one line each,
/// prefixed like any answer; an unknown command is `invalid-argument`.
#[test]
fn help_answers_on_one_line() {
    let root = Root::fresh();
    let mut a = root.repl();
    let all = a.ask("help");
    for name in ["create", "waitany", "dup-from", "waiters", "help", "exit"] {
        assert!(
            all.split(' ').any(|w| w == name),
            "`help` does not list `{name}`: {all}"
        );
    }
    assert!(all.starts_with("ok "), "{all}");
    a.expect("help waitany", "ok waitany A1 A2 … [timeout=MS|inf]");
    a.expect("help release", "ok release A [count=C]");
    a.send("@h help wait");
    assert_eq!(a.answer_for("@h"), "@h ok wait A [timeout=MS|inf]");
    a.expect_err("help frobnicate", "invalid-argument");
}

/// A line that is not UTF-8 is refused whole, never decoded lossily: two names that differ
/// only in their invalid bytes would otherwise become one object (NM items: a name is
/// text). Control characters in an error's text are written escaped, never raw.
#[test]
fn bytes_that_are_not_text_are_refused_and_never_echoed_raw() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("bytes");
    let mut line = format!("create event e name={n}").into_bytes();
    line.push(0xff);
    let got = a.ask_raw(&line);
    assert!(got.starts_with("err invalid-name "), "{got}");
    assert!(got.contains("0xff"), "{got}");
    line.pop();
    line.push(0xfe);
    let got = b.ask_raw(&line);
    assert!(got.starts_with("err invalid-name "), "{got}");
    // What a lossy decoding would have made of both: a name of its own, valid text.
    a.expect(&format!("create event e name={n}\u{fffd}"), "ok created");
    b.expect_err(&format!("open event e name={n}"), "not-found");
    let got = a.ask_raw(b"wait e timeout=\xc3");
    assert!(got.starts_with("err invalid-argument "), "{got}");
    a.expect("wait e timeout=0", "timeout");
    // A NUL in a name: refused, and shown escaped.
    let got = a.ask_raw(format!("create event z name={n}\0x").as_bytes());
    assert!(got.starts_with("err invalid-name "), "{got}");
    assert!(
        !got.chars().any(char::is_control),
        "raw control character in {got:?}"
    );
}
