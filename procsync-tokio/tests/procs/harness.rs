//! The driver and the helpers shared by the cases: roles, fresh roots, child
//! processes that die with their parent, thread counts, bounded polling of a condition
//! the library can be asked about (never a sleep standing for "it happened").

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the role of a re-executed copy of this binary.
pub const ROLE: &str = "PROCSYNC_TOKIO_TEST_ROLE";

/// The suffix of a case name that runs the case with io_uring switched off.
pub const REACTOR_PATH: &str = "@reactor";

/// How long one case may run before the driver kills it.
const CASE_DEADLINE: Duration = Duration::from_secs(300);

pub fn drive() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, _) in crate::CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        match run_case(name) {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                println!("test {name} ... FAILED\n{why}");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_case(name: &str) -> Result<(), String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let root = std::env::temp_dir().join(format!(
        "procsync-tokio-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    if name.ends_with(REACTOR_PATH) {
        // The same case with the io_uring path switched off: the reactor threads serve
        // every wait, as on a kernel without io_uring futex waits.
        cmd.env("PROCSYNC_TOKIO_URING", "0");
    }
    let mut child = cmd
        .env(ROLE, format!("case:{name}"))
        .env("PROCSYNC_ROOT", &root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning the case: {e}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        if start.elapsed() > CASE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let left = files_under(&root);
    let _ = std::fs::remove_dir_all(&root);
    let report = |what: String| format!("{what}\n--- stdout\n{out}\n--- stderr\n{err}");
    match status {
        None => Err(report(format!("killed after {CASE_DEADLINE:?}"))),
        Some(s) if !s.success() => Err(report(format!("case exited with {s}"))),
        Some(_) if !left.is_empty() => Err(report(format!("files left under the root: {left:?}"))),
        Some(_) => {
            if std::env::args().any(|a| a == "--nocapture") {
                print!("{out}");
            }
            Ok(())
        }
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn run_role(role: &str) -> ExitCode {
    // Die with the process that started us: no orphan outlives a killed case.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Some(case) = role.strip_prefix("case:") {
        let Some((_, f)) = crate::CASES.iter().find(|(n, _)| *n == case) else {
            eprintln!("no case named {case}");
            return ExitCode::FAILURE;
        };
        f();
        // Idle reactors exit and close their handles: nothing of the case stays open,
        // so its files go (the driver checks).
        until("the reactor and wait-all threads exit", || {
            procsync_tokio::reactor_threads() == 0 && procsync_tokio::wait_all_threads() == 0
        });
        // …and are gone from /proc: a thread's thread-locals (procsync caches per-thread
        // state there) are destroyed after its function returned.
        until("no procsync thread is left in /proc/self/task", || {
            procsync_threads().is_empty()
        });
        return ExitCode::SUCCESS;
    }
    crate::cross::child_role(role)
}

/// A copy of this binary in `role`, with piped stdio; killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(role: &str, args: &[&str]) -> Proc {
        let exe = std::env::current_exe().expect("own executable");
        let child = Command::new(exe)
            .env(ROLE, role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning a child role");
        Proc { child }
    }

    /// Waits for the exit (bounded), asserting success.
    pub fn expect_success(mut self, what: &str) {
        let status = wait_bounded(&mut self.child, Duration::from_secs(60));
        assert!(
            matches!(status, Some(s) if s.success()),
            "{what}: child ended with {status:?}"
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

pub fn wait_bounded(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(s)) = c.try_wait() {
            return Some(s);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` (a question the library answers, such as `waiters()`) until it holds;
/// panics with `what` after 30 s.
pub fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The async form of [`until`]: yields to the runtime between polls.
pub async fn until_async(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Names of this process's threads started by procsync-tokio (`procsync-reactor-N`,
/// `procsync-wait-all`, cut to 15 bytes by the kernel).
pub fn procsync_threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim_end().to_string())
        .filter(|c| c.starts_with("procsync-reacto") || c.starts_with("procsync-wait-a"))
        .collect()
}

/// `Threads:` of /proc/self/status.
pub fn threads() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Threads: line")
}

pub fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A small deterministic generator (xorshift64*), seeded from `PROCSYNC_TOKIO_SEED`
/// or the clock; the seed is printed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env() -> Rng {
        let seed = std::env::var("PROCSYNC_TOKIO_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        println!("seed: PROCSYNC_TOKIO_SEED={seed}");
        Rng(seed)
    }

    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn fork(&mut self) -> Rng {
        Rng(self.next() | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How many waiters an object shows for `futures` pending async waits on it: each is a
/// waiter of its own on the io_uring path; the reactor path queues one per object.
pub fn queued(futures: usize) -> usize {
    if procsync_tokio::io_uring_available() {
        futures
    } else {
        1
    }
}
