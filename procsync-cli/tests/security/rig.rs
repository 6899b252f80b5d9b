//! The security tests' rig: a root they can share with uid 65534, the attacker process (this
//! test binary re-executed as that uid, see `attack.rs`), the attacker's own `procsync repl`,
//! the file and System V segment views both sides use, and the layout constants of
//! `procsync/src/shm/layout.rs` that the targeted attacks need.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{self, ANSWER_DEADLINE, Root, on_ci, skip, unique};
pub(crate) use sysv::Attached;

/// The attacker's uid and gid (`nobody`).
pub(crate) const ATTACKER: u32 = 65534;
/// Selects the attacker role in a re-executed test binary.
pub(crate) const ENV_ATTACK: &str = "PROCSYNC_SECURITY_ATTACK";
/// Comma-separated pids whose wait-block segments the attacker may go after (this test's
/// processes only: never anybody else's on the machine).
pub(crate) const ENV_TARGET_PIDS: &str = "PROCSYNC_SECURITY_PIDS";
/// How long the attacker may take to answer one command (a round over every file and segment).
pub(crate) const ATTACK_DEADLINE: Duration = Duration::from_secs(30);

// The layout of `procsync/src/shm/layout.rs` (version 4), for the targeted attacks only:
// the control block sits at the object's colour ([`ctl_of`]), queue entries around it.
pub(crate) const CTL_LOCK: u64 = 0;
pub(crate) const CTL_STATE: u64 = 16;
pub(crate) const CTL_QUEUE_LEN: u64 = 28;
pub(crate) const ENTRY_SIZE: u64 = 24;
const OFF_OBJECT_ID: u64 = 16;
const CTL_COLOURS: u64 = 21;

fn object_id_of(f: &fs::File) -> u64 {
    let mut id = [0u8; 8];
    let _ = std::os::unix::fs::FileExt::read_exact_at(f, &mut id, OFF_OBJECT_ID);
    u64::from_le_bytes(id)
}

/// Offset of the control block of the object file `f`.
pub(crate) fn ctl_of(f: &fs::File) -> u64 {
    64 + 192 * (object_id_of(f) % CTL_COLOURS)
}

/// Offset of queue entry `k` of the object file `f` (the control block's three slots
/// skipped).
pub(crate) fn entry_of(f: &fs::File, k: u64) -> u64 {
    let first = 8 * (object_id_of(f) % CTL_COLOURS);
    64 + ENTRY_SIZE * if k < first { k } else { k + 3 }
}
pub(crate) const QUEUE_CAPACITY: usize = 165;
pub(crate) const STATE_WAITERS: u64 = 1 << 63;
pub(crate) const ENTRY_ANY: u32 = 1 << 8;
pub(crate) const ENTRY_GRANTED: u32 = 1 << 16;
pub(crate) const SEG_HEADER: usize = 64;
pub(crate) const BLOCK_SIZE: usize = 832;
pub(crate) const BLOCK_CLAIM: usize = 8;
pub(crate) const BLOCK_WAKE: usize = 16;
pub(crate) const CLAIM_WAITING: u32 = 1;
pub(crate) const CLAIM_SIGNALED: u32 = 0x1_0000;
pub(crate) const CLAIM_ABANDONED: u32 = 0x2_0000;

// =============================================================================================
// The test side: environment, the attacker process, the attacker's REPL

/// What a test needs to run an attacker: root privileges and binaries uid 65534 can run.
pub(crate) struct Env {
    test_exe: PathBuf,
    procsync: PathBuf,
    /// A directory of copies of the binaries, when the build tree is not reachable by others.
    copies: Option<PathBuf>,
}

impl Env {
    /// `None` (after a loud skip) when not root.
    pub(crate) fn new(test: &str) -> Option<Env> {
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
    pub(crate) fn root(&self) -> Root {
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
    pub(crate) fn as_attacker(&self, program: &Path, root: &Path) -> Command {
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
pub(crate) fn reachable_by_others(path: &Path) -> bool {
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
    pub(crate) static CURRENT_ROOT: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Lines of a child's standard output, read by a thread.
pub(crate) fn line_reader(out: impl Read + Send + 'static) -> Receiver<String> {
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
pub(crate) fn collect(err: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
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

pub(crate) fn text_of(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

pub(crate) fn reap(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
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
pub(crate) struct Stats(HashMap<String, String>);

impl Stats {
    pub(crate) fn parse(line: &str) -> Stats {
        let mut map = HashMap::new();
        for (i, word) in line.split_whitespace().enumerate() {
            match word.split_once('=') {
                Some((k, v)) => map.insert(k.to_string(), v.to_string()),
                None => map.insert(format!("#{i}"), word.to_string()),
            };
        }
        Stats(map)
    }
    pub(crate) fn get(&self, key: &str) -> u64 {
        self.0.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
    pub(crate) fn word(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("")
    }
}

/// The attacker process: this test binary as uid 65534, driven line by line.
pub(crate) struct Attacker {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Attacker {
    /// Starts it against `env`'s current root; it may go after the segments of `pids` (and of
    /// its own user's processes among them).
    pub(crate) fn start(env: &Env, pids: &[u32]) -> Attacker {
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

    pub(crate) fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("attacker input open");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| self.fail(&format!("cannot write `{cmd}` to the attacker: {e}")));
    }

    /// Sends `cmd` and returns its `ATTACK done …` answer.
    pub(crate) fn ask(&mut self, cmd: &str) -> Stats {
        self.send(cmd);
        self.next("done")
    }

    /// Waits for `n` more rounds of a started attack; returns the latest statistics.
    pub(crate) fn rounds(&mut self, n: usize) -> Stats {
        let mut last = Stats::default();
        for _ in 0..n {
            last = self.next("round");
        }
        last
    }

    /// Stops a started attack; returns its final statistics.
    pub(crate) fn stop(&mut self) -> Stats {
        self.send("stop");
        self.next("stopped")
    }

    /// The next `ATTACK <verb> …` line (earlier lines of other verbs are skipped).
    pub(crate) fn next(&mut self, verb: &str) -> Stats {
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

    pub(crate) fn fail(&self, msg: &str) -> ! {
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
pub(crate) struct Intruder {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    buffered: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    log: Vec<String>,
}

impl Intruder {
    pub(crate) fn start(env: &Env) -> Intruder {
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

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub(crate) fn send(&mut self, cmd: &str) {
        self.log.push(format!("> {cmd}"));
        let stdin = self.stdin.as_mut().expect("input open");
        if let Err(e) = writeln!(stdin, "{cmd}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot write `{cmd}`: {e}"));
        }
    }

    /// The next answer whose thread prefix is `prefix` (`""` for thread main).
    pub(crate) fn answer_of(&mut self, prefix: &str) -> String {
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

    pub(crate) fn answer_for(&mut self, prefix: &str) -> String {
        self.answer_of(prefix)
    }

    pub(crate) fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let prefix = if cmd.starts_with('@') {
            cmd.split(' ').next().unwrap_or("").to_string()
        } else {
            String::new()
        };
        self.answer_of(&prefix)
    }

    #[track_caller]
    pub(crate) fn expect(&mut self, cmd: &str, want: &str) {
        let got = self.ask(cmd);
        if got != want {
            self.fail(&format!("`{cmd}`: expected `{want}`, got `{got}`"));
        }
    }

    /// Polls `waiters alias` until it answers `ok n` (the harness's [`wait_for_waiters`]).
    #[track_caller]
    pub(crate) fn wait_for_waiters(&mut self, alias: &str, n: usize) {
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
    pub(crate) fn expect_err(&mut self, cmd: &str, code: &str) {
        let got = self.ask(cmd);
        if !got.starts_with(&format!("err {code} ")) {
            self.fail(&format!("`{cmd}`: expected `err {code} …`, got `{got}`"));
        }
    }

    /// End of input: it must answer what it read, close its handles and exit 0.
    pub(crate) fn close(&mut self) {
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
    pub(crate) fn kill_and_remove(&mut self, root: &Root, names: &[&str]) {
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

    pub(crate) fn fail(&self, msg: &str) -> ! {
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
pub(crate) fn files_with_owners(root: &Path) -> BTreeMap<String, u32> {
    pub(crate) fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
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
pub(crate) struct SegInfo {
    pub(crate) id: i32,
    pub(crate) mode: u32,
    pub(crate) size: usize,
    pub(crate) cpid: u32,
}

pub(crate) fn segments() -> Vec<SegInfo> {
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
pub(crate) mod sysv {
    use super::{BLOCK_CLAIM, BLOCK_SIZE, SEG_HEADER};
    use std::sync::atomic::{AtomicU32, AtomicU64};

    /// A segment attached to this process; detached on drop.
    pub(crate) struct Attached {
        ptr: *mut u8,
        len: usize,
    }

    impl Attached {
        /// Attaches segment `id` (read-only or read-write); `Err(errno)` if the kernel refuses.
        pub(crate) fn new(id: i32, len: usize, write: bool) -> Result<Attached, i32> {
            let flags = if write { 0 } else { libc::SHM_RDONLY };
            // SAFETY: shmat with a null address lets the kernel choose where to map; it returns
            // (void*)-1 on failure and touches nothing of ours.
            let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
            if p as isize == -1 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            Ok(Attached { ptr: p.cast(), len })
        }

        pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
            assert!(off.is_multiple_of(8) && off + 8 <= self.len);
            // SAFETY: in bounds and 8-aligned (segments are page-aligned); shared memory that
            // other processes write concurrently is only ever accessed through atomics here.
            unsafe { &*(self.ptr.add(off) as *const AtomicU64) }
        }

        pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
            assert!(off.is_multiple_of(4) && off + 4 <= self.len);
            // SAFETY: as in `u64_at`.
            unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
        }

        /// The segment's wait blocks (as many as fit after the header).
        pub(crate) fn blocks(&self) -> usize {
            self.len.saturating_sub(SEG_HEADER) / BLOCK_SIZE
        }

        pub(crate) fn claim_off(b: usize) -> usize {
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
pub(crate) struct Waiting {
    pub(crate) seg: i32,
    pub(crate) block: usize,
    pub(crate) generation: u32,
    pub(crate) who: u64,
}

/// The blocks of process `pid`'s segments (only private or only public ones if asked) whose
/// claim says WAITING, read by this (root) process.
pub(crate) fn waiting_blocks(pid: u32, public: Option<bool>) -> Vec<Waiting> {
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
