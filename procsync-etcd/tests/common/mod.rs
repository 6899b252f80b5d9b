//! Shared by the cluster tests: client processes (this test binary re-executed with
//! `PSE_CHILD` set, running the ignored `child_process` test), their line protocol,
//! and the history checker.
#![allow(dead_code)]

pub mod history;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use procsync_etcd::{Cluster, Config, Handle, Units, WaitOutcome};

/// A unique object name for one test.
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "Cluster\\{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn connect(endpoints: &str, ttl_secs: u64) -> Cluster {
    Cluster::connect_with(&Config::new(endpoints).ttl(Duration::from_secs(ttl_secs)))
        .expect("connect")
}

/// A protocol line's payload. The harness may print `test child_process ... ` first
/// on the same line, so the marker is searched, not expected at the start.
fn proto(l: &str) -> Option<String> {
    l.find("@@ ").map(|i| l[i + 3..].trim_end().to_string())
}

/// A client process.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Client {
    /// Starts a client connected to `endpoints` with a session TTL of `ttl` seconds.
    pub fn spawn(endpoints: &str, ttl: u64) -> Client {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "child_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PSE_CHILD", "1")
            .env("PSE_ENDPOINTS", endpoints)
            .env("PSE_TTL", ttl.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process starts");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut c = Client { child, stdin, out };
        assert_eq!(c.line(), "ready");
        c
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one command.
    pub fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("client is alive");
        self.stdin.flush().expect("client is alive");
    }

    /// The next protocol line (`@@ ` prefix stripped); panics at end of output.
    pub fn line(&mut self) -> String {
        loop {
            let mut l = String::new();
            let n = self.out.read_line(&mut l).expect("reading the client");
            assert!(n > 0, "client exited before answering");
            if let Some(rest) = proto(&l) {
                return rest;
            }
        }
    }

    /// Sends `cmd` and gives back its answer.
    pub fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.line()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for the client to exit.
    pub fn finish(mut self) -> Vec<String> {
        self.send("exit");
        let mut rest = Vec::new();
        let mut l = String::new();
        while self.out.read_line(&mut l).unwrap_or(0) > 0 {
            if let Some(r) = proto(&l) {
                rest.push(r);
            }
            l.clear();
        }
        let st = self.child.wait().expect("client exit");
        assert!(st.success(), "client failed: {st:?}");
        rest
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn outcome(o: WaitOutcome) -> &'static str {
    match o {
        WaitOutcome::Signaled(_) => "signaled",
        WaitOutcome::Abandoned(_) => "abandoned",
        WaitOutcome::TimedOut => "timeout",
    }
}

/// The client process: answers commands from stdin with `@@ ` lines on stdout.
///
/// - `mutex NAME` → `acquired OUTCOME TOKEN` (waits without timeout)
/// - `release NAME` → `released REV`
/// - `fence RES TOKEN` → `accepted REV` | `refused HIGHEST` | `error CODE`
/// - `work-mutex NAME RES N` → N holds, each fenced: `hold PID TOKEN BEGIN END`, then `done`
/// - `work-sem NAME MAX N` → N takes of a Win32 semaphore: `unit TOKEN RELEASE_REV`, then `done`
/// - `lsem NAME MAX` / `sem NAME MAX` → takes one unit of a leased / Win32 semaphore
///   (created full): `acquired OUTCOME TOKEN`
/// - `exit`
pub fn child_main() {
    let eps = std::env::var("PSE_ENDPOINTS").expect("PSE_ENDPOINTS");
    let ttl: u64 = std::env::var("PSE_TTL")
        .expect("PSE_TTL")
        .parse()
        .expect("ttl");
    let c = connect(&eps, ttl);
    let mut handles: Vec<Handle> = Vec::new();
    // Written to the stdout handle, not with `println!`, which the test harness may capture.
    let say = |s: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "@@ {s}").unwrap();
        out.flush().unwrap();
    };
    say("ready".into());
    let pid = std::process::id();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["mutex", name] => {
                let (h, _) = c.create_mutex(name, false).expect("mutex");
                let a = h.wait(None).expect("wait");
                handles.push(h);
                say(format!("acquired {} {}", outcome(a.outcome), a.token));
            }
            ["release", name] => {
                let h = handles.iter().find(|h| h.name() == *name).expect("held");
                say(format!("released {}", h.release_mutex().expect("release")));
            }
            ["fence", res, token] => {
                let f = c.fenced(res).expect("fenced");
                match f.write(token.parse().unwrap(), &format!("pid {pid}")) {
                    Ok(Ok(rev)) => say(format!("accepted {rev}")),
                    Ok(Err(r)) => say(format!("refused {}", r.highest)),
                    Err(e) => say(format!("error {}", e.code())),
                }
            }
            ["work-mutex", name, res, n] => {
                let (h, _) = c.create_mutex(name, false).expect("mutex");
                let f = c.fenced(res).expect("fenced");
                for _ in 0..n.parse::<u32>().unwrap() {
                    let a = h.wait(None).expect("wait");
                    let t = a.token;
                    let b = f.write(t, "begin").expect("fenced write");
                    let e = f.write(t, "end").expect("fenced write");
                    let end_rel = h.release_mutex().expect("release");
                    match (b, e) {
                        (Ok(b), Ok(e)) => say(format!("hold {pid} {t} {b} {e} {end_rel}")),
                        _ => say(format!("stale {pid} {t}")),
                    }
                }
                say("done".into());
            }
            ["work-sem", name, max, n] => {
                let max: u32 = max.parse().unwrap();
                let (h, _) = c
                    .create_semaphore(name, max, max, Units::Win32)
                    .expect("semaphore");
                for _ in 0..n.parse::<u32>().unwrap() {
                    let a = h.wait(None).expect("wait");
                    let (_, rel) = h.release_rev(1).expect("release");
                    say(format!("unit {} {rel}", a.token));
                }
                say("done".into());
            }
            [kind @ ("lsem" | "sem"), name, max] => {
                let max: u32 = max.parse().unwrap();
                let units = if *kind == "lsem" {
                    Units::Leased
                } else {
                    Units::Win32
                };
                let (h, _) = c
                    .create_semaphore(name, max, max, units)
                    .expect("semaphore");
                let a = h.wait(None).expect("wait");
                handles.push(h);
                say(format!("acquired {} {}", outcome(a.outcome), a.token));
            }
            ["exit"] => break,
            _ => panic!("unknown client command `{line}`"),
        }
    }
}

/// Sends `sig` (`STOP`, `CONT`) to `pid` with kill(1) (keeps the tests free of unsafe).
pub fn signal(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1)");
    assert!(st.success(), "kill -{sig} {pid}");
}
