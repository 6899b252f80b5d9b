//! Names and namespaces across processes: create/open outcomes (CO-*), case sensitivity,
//! `Local\`/`Global\` prefixes, type mismatches and invalid names (NM-*), and names that look
//! like paths but must never behave like them.

use crate::harness::{Root, skip, unique};

/// CO-01/CO-02: the first create of a name reports `created`, a create of the same name of the
/// same type in another process reports `existed` and names the very same object (NM-17);
/// CO-04: the second create's `manual`/`initial` flags are ignored.
#[test]
fn create_then_create_elsewhere_is_existed_and_same_object() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("ev");

    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(
        &format!("create event e name={n} manual initial"),
        "ok existed",
    );
    a.expect("query e", "ok event auto unset");
    b.expect("query e", "ok event auto unset");

    // State changes through either handle are seen through the other.
    b.expect("set e", "ok");
    a.expect("query e", "ok event auto set");
    a.expect("wait e timeout=0", "signaled");
    b.expect("query e", "ok event auto unset");
}

/// CO-14: several processes racing to create the same names: for each name exactly one
/// reports `created`, the others `existed`, and all handles name one object.
#[test]
fn racing_creates_yield_exactly_one_created_per_name() {
    const NAMES: usize = 20;
    let root = Root::fresh();
    let mut repls = [root.repl(), root.repl(), root.repl()];
    let names: Vec<String> = (0..NAMES).map(|_| unique("race")).collect();
    let batch: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("create event e{i} name={n} manual"))
        .collect();

    for r in repls.iter_mut() {
        r.send_batch(&batch);
    }
    let answers: Vec<Vec<String>> = repls.iter_mut().map(|r| r.answers(NAMES)).collect();
    for i in 0..NAMES {
        let created = answers.iter().filter(|a| a[i] == "ok created").count();
        let existed = answers.iter().filter(|a| a[i] == "ok existed").count();
        if created != 1 || existed != repls.len() - 1 {
            repls[0].fail(&format!(
                "name {}: expected one `ok created` and {} `ok existed`, got {:?}",
                names[i],
                repls.len() - 1,
                answers.iter().map(|a| &a[i]).collect::<Vec<_>>()
            ));
        }
    }

    // One object per name: a set through the last process is seen by the first.
    repls[2].expect("set e7", "ok");
    repls[0].expect("query e7", "ok event manual set");
    repls[1].expect("query e8", "ok event manual unset");
}

/// CO-08: open of a name nobody created → `not-found`, for every type; the alias stays free.
#[test]
fn open_of_missing_name_is_not_found() {
    let root = Root::fresh();
    let mut a = root.repl();
    let n = unique("missing");
    a.expect_err(&format!("open event e name={n}"), "not-found");
    a.expect_err(&format!("open mutex e name={n}"), "not-found");
    a.expect_err(&format!("open semaphore e name={n}"), "not-found");
    a.expect_err(&format!("open event e name=Global\\{n}"), "not-found");
    // Nothing was created by the failed opens, and alias `e` was not taken by them.
    assert!(
        root.leftover_files().is_empty(),
        "failed opens created files: {:?}",
        root.leftover_files()
    );
    a.expect(&format!("create event e name={n}"), "ok created");
}

/// NM-01: names are case-sensitive: `Foo` and `FOO` are different objects, and `FOO` cannot
/// be opened while only `Foo` exists.
#[test]
fn names_are_case_sensitive() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("case");
    let (lower, upper) = (format!("Foo{n}"), format!("FOO{}", n.to_uppercase()));

    a.expect(
        &format!("create event foo name={lower} manual"),
        "ok created",
    );
    b.expect_err(&format!("open event x name={upper}"), "not-found");
    b.expect(
        &format!("create event up name={upper} manual"),
        "ok created",
    );
    b.expect(&format!("open event low name={lower}"), "ok");

    b.expect("set up", "ok");
    a.expect("query foo", "ok event manual unset");
    b.expect("query low", "ok event manual unset");
    b.expect("set low", "ok");
    a.expect("query foo", "ok event manual set");
}

/// NM-06: `Local\X` and `X` are one object; NM-07: `Global\X` is another one; NM-08: each
/// spelling can be created and then reopened by the same spelling.
#[test]
fn local_prefix_and_bare_name_are_one_object_and_global_is_another() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let x = unique("ns");

    a.expect(
        &format!("create event l name=Local\\{x} manual"),
        "ok created",
    );
    b.expect(&format!("create event bare name={x} manual"), "ok existed");
    c.expect(
        &format!("create event g name=Global\\{x} manual"),
        "ok created",
    );
    a.expect(&format!("open event l2 name=Local\\{x}"), "ok");
    b.expect(&format!("open event b2 name={x}"), "ok");
    c.expect(&format!("open event g2 name=Global\\{x}"), "ok");
    c.expect(&format!("create event g3 name=Global\\{x}"), "ok existed");

    b.expect("set bare", "ok");
    a.expect("query l", "ok event manual set");
    a.expect("query l2", "ok event manual set");
    c.expect("query g", "ok event manual unset");

    c.expect("set g2", "ok");
    a.expect("reset l2", "ok");
    c.expect("query g", "ok event manual set");
    b.expect("query b2", "ok event manual unset");
}

/// NM-03: create of a name held by another type → `wrong-type`; the existing object is not
/// modified and nothing is created (the alias stays free, the mutex keeps its owner).
#[test]
fn create_of_name_held_by_other_type_is_wrong_type_and_changes_nothing() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("typed");

    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    b.expect_err(&format!("create event e name={n}"), "wrong-type");
    b.expect_err(
        &format!("create event e name={n} manual initial"),
        "wrong-type",
    );
    b.expect_err(
        &format!("create semaphore e initial=1 max=1 name={n}"),
        "wrong-type",
    );
    b.expect_err(&format!("create event e name=Local\\{n}"), "wrong-type");

    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
    b.expect(&format!("open mutex m name={n}"), "ok");
    b.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    b.expect("wait m timeout=0", "timeout");
    // Alias `e` was not consumed by the failed creates.
    b.expect(
        &format!("create event e name={}", unique("other")),
        "ok created",
    );

    // Semaphores keep their count and maximum, events their state.
    let s = unique("typed-sem");
    a.expect(
        &format!("create semaphore s initial=2 max=3 name={s}"),
        "ok created",
    );
    b.expect_err(&format!("create mutex x name={s} owned"), "wrong-type");
    a.expect("query s", "ok semaphore count=2 max=3");
    b.expect(&format!("open semaphore s name={s}"), "ok");
    b.expect("query s", "ok semaphore count=2 max=3");
}

/// NM-04: open of a name that belongs to another type → `wrong-type`; opening with the right
/// type still works and sees the unchanged object.
#[test]
fn open_of_name_held_by_other_type_is_wrong_type() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("typed");

    a.expect(
        &format!("create semaphore s initial=1 max=3 name={n}"),
        "ok created",
    );
    b.expect_err(&format!("open event x name={n}"), "wrong-type");
    b.expect_err(&format!("open mutex x name={n}"), "wrong-type");
    b.expect(&format!("open semaphore x name={n}"), "ok");
    b.expect("query x", "ok semaphore count=1 max=3");

    let e = unique("typed-ev");
    a.expect(
        &format!("create event e name={e} manual initial"),
        "ok created",
    );
    b.expect_err(&format!("open mutex y name={e}"), "wrong-type");
    b.expect_err(&format!("open semaphore y name={e}"), "wrong-type");
    b.expect(&format!("open event y name={e}"), "ok");
    b.expect("query y", "ok event manual set");
}

/// NM-09 and the namespace rules: an unknown `Xxx\` prefix, a backslash after `Local\` or
/// `Global\`, and an empty name given to `open` (NM-12) → `invalid-name`, for create and open,
/// leaving no object behind.
#[test]
fn invalid_names_are_refused_and_create_nothing() {
    let root = Root::fresh();
    let mut a = root.repl();
    let x = unique("bad");
    let bad = [
        format!("Foo\\{x}"),
        format!("Local\\a\\{x}"),
        format!("Global\\a\\{x}"),
        format!("Local\\{x}\\"),
        format!("{x}\\y"),
        format!("\\{x}"),
    ];
    for name in &bad {
        a.expect_err(&format!("create event e name={name}"), "invalid-name");
        a.expect_err(&format!("create mutex e name={name}"), "invalid-name");
        a.expect_err(
            &format!("create semaphore e initial=0 max=1 name={name}"),
            "invalid-name",
        );
        a.expect_err(&format!("open event e name={name}"), "invalid-name");
    }
    // NM-12: the empty name cannot be used to open anything.
    a.expect_err("open event e name=", "invalid-name");
    a.expect_err("open mutex e name=", "invalid-name");
    a.expect_err("open semaphore e name=", "invalid-name");

    let files = root.leftover_files();
    if !files.is_empty() {
        a.fail(&format!("refused names left files behind: {files:?}"));
    }
    // Alias `e` is still free, and the valid part of those names is still unused.
    a.expect(&format!("create event e name={x}"), "ok created");
}

/// NM-11/NM-12: the empty name means "unnamed": each create makes a new, separate object.
#[test]
fn empty_name_creates_separate_unnamed_objects() {
    let root = Root::fresh();
    let mut a = root.repl();
    a.expect("create event u1 name= manual", "ok created");
    a.expect("create event u2 name= manual", "ok created");
    a.expect("create event u3 manual", "ok created");
    a.expect("set u1", "ok");
    a.expect("query u1", "ok event manual set");
    a.expect("query u2", "ok event manual unset");
    a.expect("query u3", "ok event manual unset");
}

/// NM-10 and DESIGN ("no path tricks"): `/`, `.` and `..` are ordinary name characters. Each of
/// these names is its own object (none reports `existed`), can be opened from another process,
/// and nothing is ever created outside the root.
#[test]
fn slashes_and_dots_are_ordinary_characters() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let x = unique("path");
    let names = [
        x.clone(),
        format!("./{x}"),
        format!("../{x}"),
        format!("../../{x}"),
        format!("../../../../../{x}"),
        format!("../../etc/{x}"),
        format!("/{x}"),
        format!("{x}/"),
        format!("{x}/.."),
        format!("{x}/./y"),
        format!("a/b/{x}"),
        ".".to_string(),
        "..".to_string(),
        "...".to_string(),
        "/".to_string(),
        "//".to_string(),
        format!("Local\\..{x}"),
        "Global\\..".to_string(),
        format!("Global\\../../{x}"),
    ];
    for (i, n) in names.iter().enumerate() {
        a.expect(&format!("create event e{i} name={n} manual"), "ok created");
    }
    for (i, n) in names.iter().enumerate() {
        b.expect(&format!("open event e{i} name={n}"), "ok");
    }
    // NM-06 holds for these too: `Local\..` is the bare `..` (e12).
    b.expect("create event dots name=Local\\.. manual", "ok existed");
    b.expect("set dots", "ok");
    a.expect("query e12", "ok event manual set");
    a.expect("reset e12", "ok");
    // Each name is its own object: set one at a time and see only that one change.
    b.expect("set e3", "ok");
    a.expect("query e3", "ok event manual set");
    for i in (0..names.len()).filter(|&i| i != 3) {
        a.expect(&format!("query e{i}"), "ok event manual unset");
    }

    let outside = root.entries_outside_root();
    if !outside.is_empty() {
        a.fail(&format!(
            "names created entries outside the root {}: {outside:?}",
            root.path().display()
        ));
    }
}

/// NM-14: long names work (the limit is Windows' 32 767 characters, not a file name's 255),
/// across processes and with a prefix.
#[test]
fn long_name_works_across_processes() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let long = format!("{}{}", unique("long"), "n".repeat(1000));

    a.expect(&format!("create event e name={long}"), "ok created");
    b.expect(&format!("open event e name={long}"), "ok");
    b.expect(&format!("create event e2 name=Local\\{long}"), "ok existed");
    // A name differing only in its last character is another object.
    let mut other = long.clone();
    other.pop();
    other.push('m');
    b.expect_err(&format!("open event x name={other}"), "not-found");

    b.expect("set e", "ok");
    a.expect("wait e timeout=0", "signaled");
    a.expect("query e", "ok event auto unset");
}

/// NM-14/NM-15: a name of 32 767 characters works; a much longer one fails cleanly with
/// `invalid-name` on create and open and leaves nothing behind.
#[test]
fn name_of_32767_chars_works_and_longer_is_invalid() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let tag = unique("max");
    let max = format!("{tag}{}", "x".repeat(32_767 - tag.len()));
    assert_eq!(max.len(), 32_767);

    a.expect(
        &format!("create semaphore s initial=1 max=4 name={max}"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={max}"), "ok");
    b.expect("release s", "ok 1");
    a.expect("query s", "ok semaphore count=2 max=4");

    let too_long = format!("{tag}{}", "y".repeat(100_000));
    a.expect_err(&format!("create event e name={too_long}"), "invalid-name");
    b.expect_err(&format!("open event e name={too_long}"), "invalid-name");
}

/// HC-07: an operation that does not apply to the handle's type → `wrong-type`, and the object
/// is untouched.
#[test]
fn operations_on_the_wrong_type_are_refused() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let (m, e, s) = (unique("m"), unique("e"), unique("s"));
    a.expect(&format!("create mutex m name={m}"), "ok created");
    a.expect(&format!("create event e name={e}"), "ok created");
    a.expect(
        &format!("create semaphore s initial=1 max=2 name={s}"),
        "ok created",
    );
    b.expect(&format!("open mutex m name={m}"), "ok");
    b.expect(&format!("open event e name={e}"), "ok");
    b.expect(&format!("open semaphore s name={s}"), "ok");

    for r in [&mut a, &mut b] {
        r.expect_err("set m", "wrong-type");
        r.expect_err("reset m", "wrong-type");
        r.expect_err("release e", "wrong-type");
        r.expect_err("release e count=1", "wrong-type");
        r.expect_err("set s", "wrong-type");
        r.expect_err("reset s", "wrong-type");
    }
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
    a.expect("query e", "ok event auto unset");
    a.expect("query s", "ok semaphore count=1 max=2");
}

/// DESIGN "One PID namespace": owner ids are thread ids, so opening an object from
/// another PID namespace is a clear error, never silent misbehaviour.
#[test]
fn an_object_from_another_pid_namespace_is_a_clear_error() {
    let root = Root::fresh();
    let mut a = root.repl();
    let n = unique("pidns");
    a.expect(&format!("create mutex m name={n} owned"), "ok created");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", env!("CARGO_BIN_EXE_procsync"), "repl"])
        .env("PROCSYNC_ROOT", root.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return skip(
                "an_object_from_another_pid_namespace_is_a_clear_error",
                &format!("cannot run `unshare` (util-linux): {e}"),
            );
        }
    };
    use std::io::Write;
    let mut child = child;
    let mut stdin = child.stdin.take().expect("piped");
    writeln!(stdin, "open mutex m name={n}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().expect("unshare repl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("unshare failed") || stderr.contains("Operation not permitted") {
        return skip(
            "an_object_from_another_pid_namespace_is_a_clear_error",
            &format!("no permission to create a PID namespace: {}", stderr.trim()),
        );
    }
    assert!(
        stdout.starts_with("err unsupported ") && stdout.contains("another PID namespace"),
        "expected `err unsupported … another PID namespace …`, got {stdout:?} (stderr {stderr:?})"
    );
    a.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
}
