//! Handles passed between processes (docs/ARCHITECTURE.md, "Handles"): inheritance into a child
//! started with `spawn` (HI-*), duplication into and out of unrelated processes with `dup-to`,
//! `dup-from` and `adopt` (HD-*), access masks on the receiving side (AM-12), and the
//! permission model: another user (a REPL that drops to uid 65534) and the path tricks such a
//! user could try (NM-18, CO-07).
//!
//! A child started by `spawn` talks through two FIFOs ([`Spawned`]); a REPL of another user runs
//! a batch of commands ([`as_nobody`]). Both read every answer with a deadline.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{ANSWER_DEADLINE, BIN, LONG_WAIT_MS, Repl, Root, unique};

/// The unprivileged user the permission tests switch to.
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A child REPL started by `spawn`, driven through its two FIFOs.
struct Spawned {
    pid: u32,
    dir: PathBuf,
    input: Option<File>,
    lines: Receiver<String>,
    log: Vec<String>,
}

/// Runs `f` on a thread and gives up after [`ANSWER_DEADLINE`] (opening a FIFO blocks until the
/// other end opens it; a child that never starts must fail the test, not hang it).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(ANSWER_DEADLINE)
        .unwrap_or_else(|_| panic!("{what}: nothing within {ANSWER_DEADLINE:?}"))
}

impl Spawned {
    /// `spawn in=… out=…` in `parent`, then opens both FIFOs.
    fn start(parent: &mut Repl<'_>) -> Spawned {
        let dir =
            std::env::temp_dir().join(unique(&format!("procsync-fifo-{}", std::process::id())));
        fs::create_dir_all(&dir).expect("fifo dir");
        let (input, output) = (dir.join("in"), dir.join("out"));
        for p in [&input, &output] {
            let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
            assert!(st.success(), "mkfifo {}", p.display());
        }
        let pid = parent.expect_ok_number(&format!(
            "spawn in={} out={}",
            input.display(),
            output.display()
        )) as u32;
        let (i, o) = (input.clone(), output.clone());
        let writer = thread::spawn(move || File::options().write(true).open(i));
        let reader = within("opening the child's output FIFO", move || File::open(o))
            .expect("open output fifo");
        let input = within("opening the child's input FIFO", move || writer.join())
            .expect("writer thread")
            .expect("open input fifo");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned {
            pid,
            dir,
            input: Some(input),
            lines,
            log: Vec::new(),
        }
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "spawned child {}: {msg}\n  {}",
            self.pid,
            self.log.join("\n  ")
        );
    }

    fn ask(&mut self, cmd: &str) -> String {
        self.log.push(format!("> {cmd}"));
        let Some(input) = self.input.as_mut() else {
            self.fail("input already closed")
        };
        if let Err(e) = writeln!(input, "{cmd}").and_then(|()| input.flush()) {
            self.fail(&format!("cannot write `{cmd}`: {e}"));
        }
        match self.lines.recv_timeout(ANSWER_DEADLINE) {
            Ok(line) => {
                self.log.push(format!("< {line}"));
                line
            }
            Err(e) => self.fail(&format!("`{cmd}`: no answer ({e:?})")),
        }
    }

    #[track_caller]
    fn expect(&mut self, cmd: &str, want: &str) {
        let got = self.ask(cmd);
        if got != want {
            self.fail(&format!("`{cmd}`: expected `{want}`, got `{got}`"));
        }
    }

    #[track_caller]
    fn expect_err(&mut self, cmd: &str, code: &str) {
        let got = self.ask(cmd);
        if !got.starts_with(&format!("err {code}")) {
            self.fail(&format!("`{cmd}`: expected `err {code} …`, got `{got}`"));
        }
    }

    fn value(&mut self, alias: &str) -> u64 {
        let got = self.ask(&format!("handle {alias}"));
        got.strip_prefix("ok ")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.fail(&format!("`handle {alias}`: got `{got}`")))
    }

    /// Ends the child's input and waits until it closed its output (it exits then).
    fn finish(&mut self) {
        drop(self.input.take());
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.log.push(format!("< {line} (unexpected)")),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not exit after end of input"),
            }
        }
        // Its output is closed; wait until the process itself is gone.
        while !ended(self.pid) {
            if Instant::now() > deadline + ANSWER_DEADLINE {
                self.fail("still running after closing its output");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.input.is_some() {
            if thread::panicking() {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(self.pid.to_string())
                    .status();
            } else {
                self.finish();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether process `pid` has ended (exited, or a zombie whose descriptors are closed).
fn ended(pid: u32) -> bool {
    // A zombie leader is not enough: its other threads may still be exiting, and the
    // descriptor table (with the flocks it holds) goes only with the last of them.
    let threads = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            threads <= 1
                && stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z'))
        }
        Err(_) => true,
    }
}

/// SIGKILLs process `pid` and waits until it has ended.
fn sigkill(pid: u32) {
    let st = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -9 {pid}");
    let deadline = Instant::now() + ANSWER_DEADLINE;
    while !ended(pid) {
        assert!(Instant::now() < deadline, "process {pid} survived SIGKILL");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Kills a REPL with SIGKILL while its input is still open, so that it cannot close
/// anything (the harness's `kill` closes the input first, which races with a clean exit).
fn kill_hard(r: &mut Repl<'_>) {
    sigkill(r.pid());
    r.kill();
}

/// The answer to `handle A`.
fn value(r: &mut Repl<'_>, alias: &str) -> u64 {
    r.expect_ok_number(&format!("handle {alias}"))
}

fn pid(r: &mut Repl<'_>) -> u32 {
    r.expect_ok_number("pid") as u32
}

/// `(dev, ino)` of every file process `pid` has open.
fn open_files(pid: u32) -> HashSet<(u64, u64)> {
    let mut set = HashSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .flatten()
    {
        if let Ok(m) = fs::metadata(entry.path()) {
            set.insert((m.dev(), m.ino()));
        }
    }
    set
}

/// `(dev, ino)` of the file behind descriptor `fd` of process `pid`.
fn file_of(pid: u32, fd: u64) -> (u64, u64) {
    let m = fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd/{fd}: {e}"));
    (m.dev(), m.ino())
}

/// Runs `script` in a `procsync repl` of uid/gid 65534 on `root` (or `root_dir` if given) and
/// returns its answers, one per command.
fn as_nobody(root: &Root, root_dir: Option<&Path>, script: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.arg("repl")
        .env("PROCSYNC_ROOT", root_dir.unwrap_or(root.path()))
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn a repl as nobody");
    let mut text = script.join("\n");
    text.push('\n');
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write script");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + ANSWER_DEADLINE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the repl of uid {NOBODY} did not finish `{script:?}`");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let answers: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        answers.len(),
        script.len(),
        "uid {NOBODY}: one answer per command\nscript: {script:?}\nanswers: {answers:?}\nstderr: {err}"
    );
    answers
}

/// Runs a shell command as uid/gid 65534 (the attacker of the path-trick tests).
fn sh_as_nobody(script: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .expect("sh as nobody");
    assert!(st.success(), "as nobody: `{script}` failed");
}

/// Lets every user create their own namespace under the root, as under the default root.
fn open_root_to_all(root: &Root) {
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o1777)).expect("chmod root");
}

fn assert_answers(got: &[String], want: &[&str]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || g.starts_with(&format!("{w} ")),
            "answer {i}: expected `{w}…`, got `{g}`\nall answers: {got:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Inheritance

/// HI-01..03, HI-06: a spawned child gets exactly the inheritable handles, under the same alias
/// and value, with the same rights; non-inheritable ones are not even in its descriptor table.
#[test]
fn child_inherits_only_inheritable_handles_with_same_value_and_rights() {
    let root = Root::fresh();
    let mut a = root.repl();
    let (n1, n2) = (unique("hi-in"), unique("hi-priv"));
    a.expect(&format!("create event e name={n1} inherit"), "ok created");
    a.expect(&format!("create event p name={n2}"), "ok created");
    a.expect("create semaphore s initial=0 max=5 inherit", "ok created");
    a.expect("create event u", "ok created");
    a.expect(
        &format!("open event r name={n1} access=synchronize inherit"),
        "ok",
    );
    let (ve, vp, vs, vu, vr) = (
        value(&mut a, "e"),
        value(&mut a, "p"),
        value(&mut a, "s"),
        value(&mut a, "u"),
        value(&mut a, "r"),
    );
    let pa = pid(&mut a);
    // HD-01: distinct handles have distinct values.
    assert_eq!(HashSet::from([ve, vp, vs, vu, vr]).len(), 5);

    let mut c = Spawned::start(&mut a);
    // HI-02: same values, same rights.
    assert_eq!(c.value("e"), ve);
    assert_eq!(c.value("s"), vs);
    assert_eq!(c.value("r"), vr);
    c.expect_err("set r", "access-denied");
    c.expect("wait r timeout=0", "timeout");
    // HI-03: the non-inheritable ones are absent, by alias and by value.
    c.expect_err("query p", "unknown-alias");
    c.expect_err("query u", "unknown-alias");
    c.expect_err(&format!("adopt {vp} x"), "not-found");
    // … and so are their descriptors.
    let files = open_files(c.pid);
    assert!(
        files.contains(&file_of(pa, ve)),
        "the inherited event's file is open in the child"
    );
    assert!(
        files.contains(&file_of(pa, vs)),
        "the inherited semaphore is open in the child"
    );
    assert!(
        !files.contains(&file_of(pa, vp)),
        "a non-inheritable named handle leaked"
    );
    assert!(
        !files.contains(&file_of(pa, vu)),
        "a non-inheritable unnamed handle leaked"
    );
    assert_eq!(
        file_of(c.pid, ve),
        file_of(pa, ve),
        "HI-02: value = descriptor of the same file"
    );

    // HI-06: changes are shared both ways.
    c.expect("set e", "ok");
    a.expect("query e", "ok event auto set");
    a.expect("release s count=2", "ok 0");
    c.expect("query s", "ok semaphore count=2 max=5");
    c.expect("wait s timeout=0", "signaled");
    a.expect("query s", "ok semaphore count=1 max=5");
    c.finish();
}

/// HI-05, HI-07: `inheritable` before `spawn` decides; an inherited mutex is not owned by the
/// child.
#[test]
fn inheritable_flag_decides_and_mutex_ownership_is_not_inherited() {
    let root = Root::fresh();
    let mut a = root.repl();
    a.expect("create event e", "ok created");
    a.expect("create event f inherit", "ok created");
    a.expect("create mutex m owned inherit", "ok created");
    a.expect("inheritable e on", "ok");
    a.expect("inheritable f off", "ok");
    let mut c = Spawned::start(&mut a);
    c.expect("query e", "ok event auto unset");
    c.expect_err("query f", "unknown-alias");
    c.expect("query m", "ok mutex owner=other recursion=1 abandoned=0");
    c.expect_err("release m", "not-owner");
    c.expect("wait m timeout=0", "timeout");
    a.expect("release m", "ok");
    c.expect("wait m timeout=0", "signaled");
    c.expect("release m", "ok");
    c.finish();
}

/// The object lives while the child holds its inherited handle, after the parent exited or was
/// killed; the child's close then removes the name.
#[test]
fn inherited_handle_keeps_the_object_alive_after_the_parent_is_gone() {
    for kill in [false, true] {
        let root = Root::fresh();
        let n = unique("hi-alive");
        let mut b = root.repl();
        let mut c = {
            let mut a = root.repl();
            a.expect(
                &format!("create event e name={n} manual inherit"),
                "ok created",
            );
            let c = Spawned::start(&mut a);
            if kill {
                kill_hard(&mut a);
            } else {
                a.close_and_reap();
            }
            c
        };
        b.expect(&format!("open event x name={n}"), "ok");
        c.expect("set e", "ok");
        b.expect(&format!("wait x timeout={LONG_WAIT_MS}"), "signaled");
        b.expect("close x", "ok");
        c.finish();
        b.expect_err(&format!("open event x name={n}"), "not-found");
    }
}

/// A killed child leaves the parent's object intact; the parent's close removes it.
#[test]
fn killed_child_does_not_disturb_the_parent() {
    let root = Root::fresh();
    let n = unique("hi-kill");
    let mut a = root.repl();
    let mut b = root.repl();
    a.expect(
        &format!("create semaphore s name={n} initial=1 max=3 inherit"),
        "ok created",
    );
    let mut c = Spawned::start(&mut a);
    c.expect("release s", "ok 1");
    sigkill(c.pid);
    c.input = None;
    a.expect("query s", "ok semaphore count=2 max=3");
    a.expect("close s", "ok");
    b.expect_err(&format!("open semaphore s name={n}"), "not-found");
}

// ---------------------------------------------------------------------------------------------
// Duplication between processes

/// HD-03, HD-07, AM-12: a push with reduced access; the target adopts the value it was told and
/// the rights are enforced there; signals cross both ways.
#[test]
fn push_with_reduced_access_is_enforced_in_the_target() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let pb = pid(&mut b);
    a.expect("create event u", "ok created");
    let v = a.expect_ok_number(&format!("dup-to {pb} u access=synchronize"));
    b.expect(&format!("adopt {v} x"), "ok");
    assert_eq!(
        value(&mut b, "x"),
        v,
        "the value the target was told is its handle's value"
    );
    b.expect_err("set x", "access-denied");
    b.expect("wait x timeout=0", "timeout");
    b.send(&format!("wait x timeout={LONG_WAIT_MS}"));
    a.expect("set u", "ok");
    assert_eq!(b.answer(), "signaled");
    // A second adoption of the same value is refused.
    b.expect_err(&format!("adopt {v} y"), "not-found");
    // Same rights by default.
    a.expect("create semaphore s initial=0 max=2", "ok created");
    let v = a.expect_ok_number(&format!("dup-to {pb} s"));
    b.expect(&format!("adopt {v} s"), "ok");
    b.expect("release s count=2", "ok 0");
    a.expect("query s", "ok semaphore count=2 max=2");
}

/// HD-03, HD-04, HD-08: a pull with reduced access; asking for more than the source has fails.
#[test]
fn pull_with_reduced_access_and_never_more() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hd-pull");
    a.expect(
        &format!("create semaphore s name={n} initial=0 max=4"),
        "ok created",
    );
    a.expect(
        &format!("open semaphore w name={n} access=synchronize"),
        "ok",
    );
    let (vs, vw, pa) = (value(&mut a, "s"), value(&mut a, "w"), pid(&mut a));
    b.expect(&format!("dup-from {pa} {vs} m access=modify"), "ok");
    b.expect_err("wait m timeout=0", "access-denied");
    b.expect("release m", "ok 0");
    a.expect("query s", "ok semaphore count=1 max=4");
    b.expect_err(&format!("dup-from {pa} {vw} x access=all"), "access-denied");
    b.expect_err(
        &format!("dup-from {pa} {vw} x access=modify"),
        "access-denied",
    );
    // docs/REPL.md: `access=` defaults to the source's own access (HD-02,
    // DUPLICATE_SAME_ACCESS): synchronize only, so waiting works and releasing does not.
    b.expect(&format!("dup-from {pa} {vw} y"), "ok");
    b.expect_err("release y", "access-denied");
    b.expect("wait y timeout=0", "signaled");
    a.expect("query s", "ok semaphore count=0 max=4");
    b.expect(&format!("dup-from {pa} {vw} y2 access=synchronize"), "ok");
    b.expect_err("release y2", "access-denied");
    // In one process: the same rule (HD-04), and distinct values (HD-01).
    a.expect_err("dup w z access=all", "access-denied");
    a.expect("dup w z", "ok");
    assert_ne!(value(&mut a, "z"), vw);
    a.expect_err("release z", "access-denied");
    a.expect("dup w z2 access=synchronize", "ok");
    a.expect_err("release z2", "access-denied");
}

/// HD-05: close-source closes the source handle, for pull and push, and even when the
/// duplication itself fails. The duplicate alone then keeps the object alive.
#[test]
fn close_source_closes_the_source_even_on_failure() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let (pa, pb) = (pid(&mut a), pid(&mut b));
    let n = unique("hd-close");
    a.expect(&format!("create event e name={n}"), "ok created");
    let v = value(&mut a, "e");
    b.expect(&format!("dup-from {pa} {v} x close-source"), "ok");
    a.expect_err("query e", "unknown-alias");
    c.expect(&format!("open event y name={n}"), "ok");
    c.expect("close y", "ok");
    b.expect("close x", "ok");
    c.expect_err(&format!("open event y name={n}"), "not-found");

    // Push with close-source.
    a.expect("create event f", "ok created");
    let v = a.expect_ok_number(&format!("dup-to {pb} f close-source"));
    a.expect_err("query f", "unknown-alias");
    b.expect(&format!("adopt {v} f"), "ok");
    b.expect("set f", "ok");

    // A failed duplication still closes the source.
    a.expect("create event g", "ok created");
    a.expect("dup g gs access=synchronize close-source", "ok");
    a.expect_err("query g", "unknown-alias");
    let v = value(&mut a, "gs");
    b.expect_err(
        &format!("dup-from {pa} {v} z access=modify close-source"),
        "access-denied",
    );
    a.expect_err("query gs", "unknown-alias");
    b.expect_err("query z", "unknown-alias");
}

/// HD-12: a duplicate placed in another process keeps the object alive after the source
/// process is killed; the last close removes the name.
#[test]
fn duplicate_outlives_a_killed_source() {
    let root = Root::fresh();
    let (mut b, mut c) = (root.repl(), root.repl());
    let pb = pid(&mut b);
    let n = unique("hd12");
    let v = {
        let mut a = root.repl();
        a.expect(&format!("create mutex m name={n} owned"), "ok created");
        let v = a.expect_ok_number(&format!("dup-to {pb} m"));
        kill_hard(&mut a);
        v
    };
    b.expect(&format!("adopt {v} m"), "ok");
    c.expect(&format!("open mutex m name={n}"), "ok");
    // The killed owner abandoned it (AB-07); the duplicate sees that as any handle would.
    b.expect(&format!("wait m timeout={LONG_WAIT_MS}"), "abandoned");
    b.expect("release m", "ok");
    c.expect("close m", "ok");
    b.expect("close m", "ok");
    c.expect_err(&format!("open mutex m name={n}"), "not-found");
}

/// Mistakes: unknown values, processes that accept no duplicates, processes that do not exist.
#[test]
fn duplication_mistakes_are_clear_errors() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let pa = pid(&mut a);
    a.expect("create event e", "ok created");
    a.expect_err("adopt 4242 x", "not-found");
    a.expect_err("handle nope", "unknown-alias");
    let got = b.expect_err(&format!("dup-from {pa} 4242 x"), "not-found");
    assert_eq!(
        got.matches(&format!("process {pa}")).count(),
        1,
        "names the source process once: {got}"
    );
    // This test process runs no endpoint.
    let me = std::process::id();
    let got = a.expect_err(&format!("dup-to {me} e"), "not-found");
    assert!(got.contains("does not accept duplicates"), "{got}");
    a.expect_err("dup-to 2147483647 e", "not-found");
    // A value that is not a handle of the source (its standard input).
    b.expect_err(&format!("dup-from {pa} 0 x"), "not-found");
    // Duplicating into oneself works like any push.
    let v = a.expect_ok_number(&format!("dup-to {pa} e access=modify"));
    a.expect(&format!("adopt {v} e2"), "ok");
    a.expect("set e2", "ok");
    a.expect("wait e timeout=0", "signaled");
}

// ---------------------------------------------------------------------------------------------
// Other users and path tricks

/// NM-18, CO-07 (docs/ARCHITECTURE.md, "Security model and honest limits"): another user cannot
/// reach root's `Local\` objects, cannot open a 0600 `Global\` object, can open (and signal) a
/// world-accessible one, and cannot duplicate handles out of root's processes.
#[test]
fn another_user_is_kept_out_except_where_the_mode_allows() {
    let root = Root::fresh();
    open_root_to_all(&root);
    let mut a = root.repl();
    let (loc, g600, g666) = (unique("secret"), unique("g600"), unique("g666"));
    a.expect(&format!("create event l name=Local\\{loc}"), "ok created");
    a.expect(&format!("create event p name=Global\\{g600}"), "ok created");
    a.expect(
        &format!("create event w name=Global\\{g666} mode=666"),
        "ok created",
    );
    let (pa, vl) = (pid(&mut a), value(&mut a, "l"));
    let got = as_nobody(
        &root,
        None,
        &[
            &format!("open event a name=Local\\{loc}"),
            &format!("open event b name=Global\\{g600}"),
            &format!("create event b name=Global\\{g600}"),
            &format!("open event c name=Global\\{g666}"),
            "set c",
            &format!("dup-from {pa} {vl} d"),
            "create event mine",
            &format!("dup-to {pa} mine"),
        ],
    );
    assert_answers(
        &got,
        &[
            "err not-found",
            "err access-denied",
            "err access-denied",
            "ok",
            "ok",
            "err access-denied",
            "ok created",
            "err access-denied",
        ],
    );
    a.expect("wait w timeout=0", "signaled");
    a.expect("wait p timeout=0", "timeout");
    // Even pointed straight at root's namespace directory, the other user gets nothing.
    let local0 = root.path().join("local-0");
    let got = as_nobody(&root, Some(&local0), &[&format!("open event a name={loc}")]);
    assert_answers(&got, &["err access-denied"]);
}

/// Symlinks planted by another user, in place of an object file or of a namespace directory,
/// are refused, never followed.
#[test]
fn planted_symlinks_are_refused() {
    let root = Root::fresh();
    open_root_to_all(&root);
    let mut a = root.repl();
    let (secret, victim) = (unique("secret"), unique("victim"));
    a.expect(&format!("create event s name={secret}"), "ok created");
    a.expect(
        &format!("create event g name=Global\\{}", unique("warmup")),
        "ok created",
    );
    // An object-file symlink in `global`, pointing at root's local object.
    let link = root.path().join("global").join(format!("o{victim}"));
    let target = root.path().join("local-0").join(format!("o{secret}"));
    sh_as_nobody(&format!(
        "ln -s '{}' '{}'",
        target.display(),
        link.display()
    ));
    a.expect_err(
        &format!("create event v name=Global\\{victim}"),
        "access-denied",
    );
    a.expect_err(
        &format!("open event v name=Global\\{victim}"),
        "access-denied",
    );
    fs::remove_file(&link).expect("remove the planted link");
    a.expect(
        &format!("create event v name=Global\\{victim}"),
        "ok created",
    );

    // A namespace directory replaced by a symlink (a fresh root, before first use).
    let root2 = Root::fresh();
    open_root_to_all(&root2);
    let elsewhere = root2.sandbox().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o1777)).expect("chmod");
    sh_as_nobody(&format!(
        "ln -s '{}' '{}' && ln -s '{}' '{}'",
        elsewhere.display(),
        root2.path().join("global").display(),
        elsewhere.display(),
        root2.path().join("local-0").display()
    ));
    let mut b = root2.repl();
    b.expect_err(
        &format!("create event x name=Global\\{}", unique("x")),
        "access-denied",
    );
    // The squatted `local-0` does not lock root out of its own namespace (SECURITY.md):
    // root moves the planted link out of the way, unfollowed, and makes its own directory.
    let (x, xn) = ("x", unique("x"));
    b.expect(&format!("create event {x} name=Local\\{xn}"), "ok created");
    assert_eq!(
        fs::read_dir(&elsewhere).expect("read").count(),
        0,
        "nothing went through the link"
    );
    let local0 = fs::symlink_metadata(root2.path().join("local-0")).expect("local-0");
    assert!(
        local0.is_dir() && local0.uid() == 0,
        "a real directory of root's"
    );
    b.expect("close x", "ok");
    drop(b);
    fs::remove_file(root2.path().join("global")).expect("cleanup");
    remove_quarantined(&root2);
}

/// Removes what procsync moved out of the way (`.squatted-*` in the root), so that the root's
/// drop check finds only what tests left behind.
fn remove_quarantined(root: &Root) {
    let mut moved = 0;
    for e in fs::read_dir(root.path()).expect("read root") {
        let e = e.expect("entry");
        if e.file_name().to_string_lossy().starts_with(".squatted-") {
            let p = e.path();
            if fs::symlink_metadata(&p).expect("stat").is_dir() {
                fs::remove_dir_all(&p).expect("cleanup");
            } else {
                fs::remove_file(&p).expect("cleanup");
            }
            moved += 1;
        }
    }
    assert_eq!(moved, 1, "exactly the squatter was moved away");
}

/// Files and directories pre-created by another user: a namespace directory or root that user
/// owns is refused; a stale file under a `Global\` name is never used as the object.
#[test]
fn pre_created_files_and_directories_are_refused() {
    // Namespace directories owned by another user.
    let root = Root::fresh();
    open_root_to_all(&root);
    sh_as_nobody(&format!(
        "mkdir -m 700 '{0}/local-0' && mkdir -m 1777 '{0}/global'",
        root.path().display()
    ));
    let mut a = root.repl();
    // Root is not locked out of its own `Local\\` by a squatter: the squatter's directory is
    // moved away and root's own is made (SECURITY.md); a squatted `global` stays refused.
    a.expect(
        &format!("create event x name=Local\\{}", unique("x")),
        "ok created",
    );
    a.expect("close x", "ok");
    a.expect_err(
        &format!("create event x name=Global\\{}", unique("x")),
        "access-denied",
    );
    drop(a);
    remove_quarantined(&root);

    // A root directory owned by another user.
    let root = Root::fresh();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    std::os::unix::fs::chown(root.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    let mut a = root.repl();
    a.expect_err(
        &format!("create event x name={}", unique("x")),
        "access-denied",
    );
    drop(a);

    // A root made world-writable without the sticky bit: its owner adds the bit.
    let root = Root::fresh();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let mut a = root.repl();
    a.expect(
        &format!("create event x name={}", unique("x")),
        "ok created",
    );
    let mode = fs::metadata(root.path())
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o1777, 0o1777, "root mode {mode:o}");
    drop(a);

    // A file planted under a `Global\` name: never taken for the object.
    let root = Root::fresh();
    open_root_to_all(&root);
    let mut a = root.repl();
    a.expect(
        &format!("create event w name=Global\\{}", unique("warmup")),
        "ok created",
    );
    let n = unique("planted");
    let file = root.path().join("global").join(format!("o{n}"));
    sh_as_nobody(&format!(
        "head -c 4096 /dev/zero > '{}' && chmod 666 '{}'",
        file.display(),
        file.display()
    ));
    a.expect_err(&format!("open event e name=Global\\{n}"), "not-found");
    sh_as_nobody(&format!(
        "head -c 4096 /dev/zero > '{}' && chmod 666 '{}'",
        file.display(),
        file.display()
    ));
    a.expect(
        &format!("create event e name=Global\\{n} initial"),
        "ok created",
    );
    a.expect("query e", "ok event auto set");
    assert_ne!(
        fs::metadata(&file).expect("stat").uid(),
        NOBODY,
        "the planted file was replaced"
    );
}

/// A dead object of one user in `Global\` (its holders were killed) cannot be removed by
/// another user (sticky directory): that user's open reports not-found and its create a clear
/// error, at once; they never spin.
#[test]
fn another_users_orphan_is_reported_not_spun_on() {
    let root = Root::fresh();
    open_root_to_all(&root);
    let n = unique("orphan");
    {
        let mut a = root.repl();
        a.expect(
            &format!("create event e name=Global\\{n} mode=666"),
            "ok created",
        );
        kill_hard(&mut a);
    }
    let started = Instant::now();
    let got = as_nobody(
        &root,
        None,
        &[
            &format!("open event e name=Global\\{n}"),
            &format!("create event e name=Global\\{n}"),
        ],
    );
    assert_answers(&got, &["err not-found", "err access-denied"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Its owner (root) removes it by opening it.
    let mut b = root.repl();
    b.expect_err(&format!("open event e name=Global\\{n}"), "not-found");
}
