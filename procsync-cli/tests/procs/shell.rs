//! The shell subcommands (`run`, `wait`, `set`, `release`, `hold`, `ls`, `inspect`, `gc`)
//! run as a user would: separate `procsync` processes on a fresh root, coordinated with a
//! REPL where a test needs to hold or watch an object. Handshakes are answers, files a job
//! wrote, or `waiters`; the only fixed pause is the negative "no third job entered" check.
//! Killed runners leave orphaned files by design, which `procsync gc` removes, so every
//! test still ends with an empty root.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::bg::{Bg, Done, RUN_DEADLINE};
use crate::harness::{ANSWER_DEADLINE, BLOCK_GRACE, Repl, Root, run_with_deadline, unique};

/// Runs `procsync ARGS` on `root` to completion.
fn procsync(root: &Root, args: &[&str]) -> Done {
    let (status, out, err) = run_with_deadline(root.command().args(args), RUN_DEADLINE);
    let status = status.unwrap_or_else(|| panic!("`procsync {args:?}` hung; stderr: {err}"));
    Done {
        code: status.code(),
        out,
        err,
    }
}

/// Polls `cond` every few milliseconds until it holds, failing after [`ANSWER_DEADLINE`].
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn waiters(r: &mut Repl<'_>, alias: &str, n: usize) {
    until(&format!("{alias} has {n} waiter(s)"), || {
        r.ask(&format!("waiters {alias}")) == format!("ok {n}")
    });
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn gone(pid: u32) -> bool {
    // A zombie child of ours is not a running process either.
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

/// A scratch directory inside the test's sandbox, removed on drop (before the root's
/// check for leftovers, since it is declared after the root).
struct Scratch(PathBuf);

impl Scratch {
    fn new(root: &Root) -> Scratch {
        let dir = root.sandbox().join(unique("scratch"));
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes the orphans that killed runners leave (they would also go at the next use).
fn gc(root: &Root) {
    let d = procsync(root, &["gc"]);
    assert_eq!(d.code, Some(0), "gc failed: {}", d.err);
}

/// docs/CLI.md: six `procsync run` jobs on a pool of 2, started at once from independent
/// processes: never more than 2 inside (entries and exits are appended to one file in
/// causal order: a job writes `out` before its runner frees the slot, the next writes
/// `in` after taking it), exactly 2 inside while they are held at a gate, and all 6 finish.
#[test]
fn pool_of_two_never_exceeds_two_and_all_finish() {
    let root = Root::fresh();
    let mut gate = root.repl();
    let (pool, g) = (unique("pool"), unique("gate"));
    gate.expect(&format!("create event g name={g} manual"), "ok created");
    let dir = Scratch::new(&root);
    let log = dir.join("log");
    let script = format!(
        "echo in >> {log}; \"$0\" wait {g} --timeout 60s; echo out >> {log}",
        log = log.display()
    );
    let bin = crate::harness::BIN;
    let jobs: Vec<Bg> = (0..6)
        .map(|i| {
            Bg::start(
                root.command().args([
                    "run",
                    "--semaphore",
                    &pool,
                    "--max",
                    "2",
                    "--timeout",
                    "60s",
                    "--",
                    "sh",
                    "-c",
                    &script,
                    bin,
                ]),
                &format!("job {i}"),
            )
        })
        .collect();
    until("two jobs entered", || lines(&log).len() == 2);
    waiters(&mut gate, "g", 2);
    thread::sleep(BLOCK_GRACE); // negative check: nobody else gets in while both hold
    assert_eq!(lines(&log), ["in", "in"], "a third job entered a pool of 2");
    let ls = procsync(&root, &["ls", "--json"]);
    assert!(
        ls.out.contains(&format!(
            "\"name\":\"{pool}\",\"namespace\":\"local\",\"type\":\"semaphore\",\"state\":{{\"count\":0,\"max\":2}}"
        )),
        "the pool's semaphore should show 0 of 2 free: {}",
        ls.out
    );
    gate.expect("set g", "ok");
    for (i, job) in jobs.into_iter().enumerate() {
        let d = job.finish();
        assert_eq!(d.code, Some(0), "job {i} failed: {}", d.err);
    }
    let mut inside = 0;
    for line in lines(&log) {
        inside += if line == "in" { 1 } else { -1 };
        assert!(
            (0..=2).contains(&inside),
            "more than 2 inside: {:?}",
            lines(&log)
        );
    }
    assert_eq!(lines(&log).len(), 12, "every job entered and left once");
}

/// docs/CLI.md: a runner killed with SIGKILL gives its unit back: a pool of 1 whose only
/// unit is held by a runner, with a second runner queued; killing the first lets the
/// second run (and says why on stderr), and the killed runner's command died with it.
#[test]
fn killed_runner_gives_its_unit_back() {
    let root = Root::fresh();
    let mut watch = root.repl();
    let pool = unique("kpool");
    let dir = Scratch::new(&root);
    let pidfile = dir.join("pid");
    let first = Bg::start(
        root.command().args([
            "run",
            "--semaphore",
            &pool,
            "--max",
            "1",
            "--",
            "sh",
            "-c",
            &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
        ]),
        "first runner",
    );
    until("the first job runs", || lines(&pidfile).len() == 1);
    let job: u32 = lines(&pidfile)[0].parse().expect("pid");
    watch.expect(&format!("open mutex s name={pool}.slot0"), "ok");
    watch.expect(&format!("open semaphore p name={pool}"), "ok");
    watch.expect("query p", "ok semaphore count=0 max=1");
    let second = Bg::start(
        root.command().args([
            "run",
            "--semaphore",
            &pool,
            "--max",
            "1",
            "--timeout",
            "60s",
            "--",
            "echo",
            "second",
        ]),
        "second runner",
    );
    waiters(&mut watch, "s", 1);
    first.kill9();
    let d = second.finish();
    assert_eq!(d.code, Some(0), "{}", d.err);
    assert_eq!(d.out, "second\n");
    assert!(
        d.err.contains("killed"),
        "no note about the killed job: {}",
        d.err
    );
    until("the killed runner's command is gone", || gone(job));
    drop(watch);
    gc(&root);
}

/// docs/CLI.md: `run --mutex`: a holder killed with SIGKILL is reported as abandoned to the
/// next runner, which still runs; with `--strict` the next one refuses (exit 3), also when
/// nobody was waiting and the dead holder's object is all that is left.
#[test]
fn killed_mutex_holder_is_reported_as_abandoned() {
    let root = Root::fresh();
    let mut watch = root.repl();
    let m = unique("guard");
    let holder = |root: &Root| {
        Bg::start(
            root.command()
                .args(["run", "--mutex", &m, "--", "sleep", "600"]),
            "holder",
        )
    };
    let first = holder(&root);
    until("the holder owns it", || {
        let d = procsync(&root, &["inspect", &m, "--json"]);
        d.out
            .contains(&format!("\"owned\":true,\"owner_pid\":{}", first.pid()))
    });
    watch.expect(&format!("open mutex w name={m}"), "ok");
    let next = Bg::start(
        root.command().args([
            "run",
            "--mutex",
            &m,
            "--timeout",
            "60s",
            "--",
            "echo",
            "next",
        ]),
        "next runner",
    );
    waiters(&mut watch, "w", 1);
    first.kill9();
    let d = next.finish();
    assert_eq!(d.code, Some(0), "{}", d.err);
    assert_eq!(d.out, "next\n");
    assert!(d.err.contains("abandoned"), "{}", d.err);
    watch.expect("close w", "ok");

    // Nobody waiting: the object outlives its killed holder only as a file.
    let second = holder(&root);
    until("the second holder owns it", || {
        let d = procsync(&root, &["inspect", &m, "--json"]);
        d.out
            .contains(&format!("\"owned\":true,\"owner_pid\":{}", second.pid()))
    });
    second.kill9();
    let d = procsync(
        &root,
        &["run", "--mutex", &m, "--strict", "--", "echo", "ran"],
    );
    assert_eq!(d.code, Some(3), "--strict must refuse: {} {}", d.out, d.err);
    assert_eq!(d.out, "");
    assert!(
        d.err.contains("abandoned") && d.err.contains(&m),
        "{}",
        d.err
    );
    drop(watch);
    gc(&root);
}

/// docs/CLI.md: `wait --any` over three events, one set by another process: prints the
/// index of the one that fired.
#[test]
fn wait_any_prints_the_index_set_from_another_process() {
    let root = Root::fresh();
    let mut r = root.repl();
    let names: Vec<String> = (0..3).map(|i| unique(&format!("ev{i}"))).collect();
    r.expect(
        &format!("create event b name={} manual", names[1]),
        "ok created",
    );
    let waiter = Bg::start(
        root.command().args([
            "wait",
            &names[0],
            &names[1],
            &names[2],
            "--any",
            "--create",
            "event",
            "--timeout",
            "60s",
        ]),
        "waiter",
    );
    waiters(&mut r, "b", 1);
    let d = procsync(&root, &["set", &names[1]]);
    assert_eq!(d.code, Some(0), "{}", d.err);
    let d = waiter.finish();
    assert_eq!((d.code, d.out.as_str()), (Some(0), "1\n"), "{}", d.err);
}

/// `ls --json` shows each object's type, state and holders, as docs/CLI.md
/// documents the shape; `inspect` shows one of them.
#[test]
fn ls_json_shows_states_and_holders() {
    let root = Root::fresh();
    let mut r = root.repl();
    let pid = r.expect_ok_number("pid");
    let (e, m, s, g) = (unique("lse"), unique("lsm"), unique("lss"), unique("lsg"));
    r.expect(
        &format!("create event e name={e} manual initial"),
        "ok created",
    );
    r.expect(&format!("create mutex m name={m} owned"), "ok created");
    r.expect(
        &format!("create semaphore s name={s} initial=1 max=3"),
        "ok created",
    );
    r.expect(&format!("create event g name=Global\\{g}"), "ok created");
    let d = procsync(&root, &["ls", "--json"]);
    assert_eq!(d.code, Some(0), "{}", d.err);
    let out = d.out;
    assert!(out.starts_with("{\"version\":1,"), "{out}");
    for want in [
        format!(
            "\"name\":\"{e}\",\"namespace\":\"local\",\"type\":\"event\",\"state\":{{\"manual\":true,\"signaled\":true}},\"holders\":[{pid}],\"waiters\":0"
        ),
        format!(
            "\"name\":\"{m}\",\"namespace\":\"local\",\"type\":\"mutex\",\"state\":{{\"owned\":true,\"owner_pid\":{pid},"
        ),
        format!(
            "\"name\":\"{s}\",\"namespace\":\"local\",\"type\":\"semaphore\",\"state\":{{\"count\":1,\"max\":3}},\"holders\":[{pid}]"
        ),
        format!(
            "\"name\":\"Global\\\\{g}\",\"namespace\":\"global\",\"type\":\"event\",\"state\":{{\"manual\":false,\"signaled\":false}}"
        ),
    ] {
        assert!(out.contains(&want), "missing {want}\nin {out}");
    }
    let d = procsync(&root, &["ls", "--namespace", "global"]);
    assert!(d.out.contains(&g) && !d.out.contains(&e), "{}", d.out);
    let d = procsync(&root, &["inspect", &s]);
    assert_eq!(d.code, Some(0), "{}", d.err);
    assert!(
        d.out.contains("count=1/3") && d.out.contains("layout:     version 4"),
        "{}",
        d.out
    );
    r.expect("close e", "ok");
    let d = procsync(&root, &["ls", "--json"]);
    assert!(
        !d.out.contains(&format!("\"{e}\"")),
        "a closed object is listed: {}",
        d.out
    );
}

/// docs/CLI.md, `ls`: an object whose name is stored hashed (too long to decode) is listed
/// with `name: null` while it is held, and not at all once every holder was killed (`ls`
/// cannot open it by name, so it probes the file as `gc` does, and removes the orphan as
/// its opens do for other names).
#[test]
fn ls_leaves_out_an_orphan_whose_name_is_hashed() {
    let root = Root::fresh();
    let mut doomed = root.repl();
    let long = format!("{}-{}", unique("lshash"), "x".repeat(240));
    doomed.expect(&format!("create event e name={long}"), "ok created");
    let listed = |root: &Root| {
        let d = procsync(root, &["ls", "--json"]);
        assert_eq!(d.code, Some(0), "{}", d.err);
        d.out.contains("\"name\":null")
    };
    assert!(
        listed(&root),
        "a held object with a hashed name is not listed"
    );
    crate::harness::signal_pid(doomed.pid(), "KILL");
    doomed.kill();
    assert_eq!(
        root.leftover_files().len(),
        1,
        "{:?}",
        root.leftover_files()
    );
    assert!(!listed(&root), "an orphan with a hashed name is listed");
    assert!(
        root.leftover_files().is_empty(),
        "{:?}",
        root.leftover_files()
    );
}

/// docs/CLI.md, "Conventions": exit codes 0, 1 (timeout), 2 (usage), 4 (errors, naming the
/// object), the command's own status for `run`, 127 for a missing command.
#[test]
fn exit_codes_and_error_messages() {
    let root = Root::fresh();
    let mut r = root.repl();
    let (m, s) = (unique("xm"), unique("xs"));
    r.expect(&format!("create mutex m name={m}"), "ok created");
    r.expect(
        &format!("create semaphore s name={s} initial=0 max=2"),
        "ok created",
    );
    let ev = unique("xe");

    let d = procsync(
        &root,
        &["wait", &ev, "--create", "event", "--timeout", "100ms"],
    );
    assert_eq!(d.code, Some(1), "timeout: {}", d.err);
    assert!(d.err.contains("timed out"), "{}", d.err);
    let d = procsync(
        &root,
        &["wait", &ev, "--create", "event", "--timeout", "100ms", "-q"],
    );
    assert_eq!((d.code, d.err.as_str()), (Some(1), ""), "--quiet");

    for usage in [
        vec!["wait"],
        vec!["wait", "x", "--timeout", "5q"],
        vec!["run", "--semaphore", "p", "--", "true"],
        vec!["frobnicate"],
    ] {
        let d = procsync(&root, &usage);
        assert_eq!(d.code, Some(2), "{usage:?} is a usage error: {}", d.err);
        assert!(!d.err.is_empty());
    }
    let d = procsync(&root, &["wait", "x", "--timeout", "5q"]);
    assert!(
        d.err.contains("500ms"),
        "a bad duration says how to write one: {}",
        d.err
    );

    let missing = unique("missing");
    let d = procsync(&root, &["set", &missing]);
    assert_eq!(d.code, Some(4));
    assert!(
        d.err.contains(&missing) && d.err.contains("not-found"),
        "{}",
        d.err
    );
    let d = procsync(&root, &["set", &m]);
    assert_eq!(d.code, Some(4));
    assert!(
        d.err.contains(&m) && d.err.contains("wrong-type"),
        "{}",
        d.err
    );
    let d = procsync(&root, &["wait", "Bad\\x"]);
    assert_eq!(d.code, Some(4));
    assert!(
        d.err.contains("invalid-name") && d.err.contains("Bad\\x"),
        "{}",
        d.err
    );
    let d = procsync(&root, &["release", &m]);
    assert_eq!(d.code, Some(4));
    assert!(d.err.contains("run --mutex"), "{}", d.err);

    let d = procsync(&root, &["release", &s, "--count", "2"]);
    assert_eq!((d.code, d.out.as_str()), (Some(0), "0\n"), "{}", d.err);
    r.expect("query s", "ok semaphore count=2 max=2");
    let d = procsync(&root, &["release", &s]);
    assert_eq!(d.code, Some(4), "past the maximum");
    assert!(d.err.contains("too-many-posts"), "{}", d.err);

    let d = procsync(&root, &["run", "--mutex", &m, "--", "sh", "-c", "exit 7"]);
    assert_eq!(d.code, Some(7), "run exits with the command's status");
    let d = procsync(&root, &["run", "--mutex", &m, "--", "/nonexistent/command"]);
    assert_eq!(d.code, Some(127));
    assert!(d.err.contains("not found"), "{}", d.err);
    r.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

/// docs/CLI.md: every subcommand is listed in `--help` and has its own `--help`.
#[test]
fn every_subcommand_in_help() {
    let root = Root::fresh();
    let d = procsync(&root, &["--help"]);
    assert_eq!(d.code, Some(0));
    for sub in [
        "run",
        "wait",
        "set",
        "reset",
        "pulse",
        "release",
        "hold",
        "ls",
        "inspect",
        "gc",
        "repl",
        "demo",
        "bench",
        "completions",
    ] {
        assert!(
            d.out
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "`{sub}` missing from --help:\n{}",
            d.out
        );
        let h = procsync(&root, &[sub, "--help"]);
        assert_eq!(h.code, Some(0), "{sub} --help");
        assert!(h.out.contains("Usage: procsync"), "{sub} --help: {}", h.out);
    }
    assert!(
        d.out.contains("Exit status"),
        "exit codes are documented in --help"
    );
}

/// docs/CLI.md: `hold` keeps an object alive and prints its changes; SIGTERM ends it
/// cleanly (exit 0), and the name goes with it.
#[test]
fn hold_prints_changes_and_ends_on_sigterm() {
    let root = Root::fresh();
    let e = unique("held");
    let mut hold = Bg::start(root.command().args(["hold", &e]), "hold");
    let mut out = BufReader::new(hold.stdout());
    let mut line = String::new();
    out.read_line(&mut line).expect("first line");
    assert_eq!(line, format!("{e} created event manual unset\n"));
    assert_eq!(procsync(&root, &["set", &e]).code, Some(0));
    line.clear();
    out.read_line(&mut line).expect("change line");
    assert_eq!(line, format!("{e} event manual set\n"));
    let status = Command::new("kill")
        .args(["-TERM", &hold.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let d = hold.finish();
    assert_eq!(d.code, Some(0), "{}", d.err);
    assert_eq!(
        procsync(&root, &["set", &e]).code,
        Some(4),
        "the name is gone"
    );
}

/// docs/CLI.md: `gc --dry-run` reports what killed holders left and removes nothing; `gc`
/// removes it; live objects are never touched.
#[test]
fn gc_removes_only_orphans() {
    let root = Root::fresh();
    let mut live = root.repl();
    let mut doomed = root.repl();
    let (a, b) = (unique("live"), unique("orphan"));
    live.expect(&format!("create event e name={a}"), "ok created");
    doomed.expect(&format!("create event e name={b}"), "ok created");
    // SIGKILL first: the harness's `kill` closes standard input before it kills, and end
    // of input alone would make the REPL close its handles cleanly.
    let status = Command::new("kill")
        .args(["-KILL", &doomed.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    doomed.kill();
    let d = procsync(&root, &["gc", "--dry-run"]);
    assert_eq!(d.code, Some(0));
    assert!(
        d.out.contains("would remove") && d.out.contains(&format!("o{b}")),
        "{}",
        d.out
    );
    assert!(!d.out.contains(&format!("o{a}")), "{}", d.out);
    assert!(
        root.leftover_files()
            .iter()
            .any(|p| p.ends_with(format!("o{b}")))
    );
    let d = procsync(&root, &["gc"]);
    assert!(
        d.out.contains("removed") && d.out.contains(&format!("o{b}")),
        "{}",
        d.out
    );
    assert!(
        !root
            .leftover_files()
            .iter()
            .any(|p| p.ends_with(format!("o{b}")))
    );
    live.expect("query e", "ok event auto unset");
}

/// docs/ARCHITECTURE.md, "Sweep": a process's first use of a namespace checks a random
/// sample of 64 of its names for orphans, not every name (checking each made that first
/// use cost 19 ms more at 10 000 objects, in every command of a script); `gc` checks them
/// all.
/// 300 orphans: each first use (one per process) removes exactly 64 of them.
#[test]
fn first_use_of_a_large_namespace_sweeps_a_sample_and_gc_the_rest() {
    let root = Root::fresh();
    let mut doomed = root.repl();
    let p = unique("swept");
    for i in 0..300 {
        doomed.expect(&format!("create event e{i} name={p}-{i}"), "ok created");
    }
    // SIGKILL first, as in `gc_removes_only_orphans`: end of input alone would close.
    crate::harness::signal_pid(doomed.pid(), "KILL");
    doomed.kill();
    let orphans = || {
        root.leftover_files()
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("o{p}-")))
            })
            .count()
    };
    assert_eq!(orphans(), 300);
    for (first_use, left) in [(1, 236), (2, 172)] {
        let mut r = root.repl();
        r.expect(
            &format!("create event x name={}", unique("x")),
            "ok created",
        );
        assert_eq!(orphans(), left, "after first use {first_use}");
        r.exit();
    }
    gc(&root);
    assert_eq!(orphans(), 0);
}

/// `wait` on a mutex waits until it is free and releases it again before exiting (a
/// one-shot process cannot keep it); one whose owner died is acquired as abandoned: exit 3,
/// with a note naming it, and the abandonment is consumed (reported once, as in Win32).
#[test]
fn wait_on_a_mutex_gives_it_back_and_reports_abandonment() {
    let root = Root::fresh();
    let mut r = root.repl();
    let m = unique("wm");
    r.expect(&format!("create mutex m name={m} owned"), "ok created");
    let waiter = Bg::start(
        root.command().args(["wait", &m, "--timeout", "60s"]),
        "waiter",
    );
    waiters(&mut r, "m", 1);
    r.expect("release m", "ok");
    let d = waiter.finish();
    assert_eq!(d.code, Some(0), "{}", d.err);
    r.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");

    r.expect("@t wait m timeout=0", "@t signaled");
    r.expect("@t exit-thread", "@t ok");
    let d = procsync(&root, &["wait", &m, "--timeout", "60s"]);
    assert_eq!(d.code, Some(3), "{}", d.err);
    assert!(
        d.err.contains("abandoned") && d.err.contains(&m),
        "{}",
        d.err
    );
    r.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}
