//! Test harness (hidden, not API): starts private etcd members on free loopback ports
//! with temporary data directories, finds and kills the leader, and decides what a test
//! does when no etcd binary is installed (a loud SKIP, or a failure under
//! `PROCSYNC_REQUIRE_ETCD=1`). Used by this crate's tests and benchmarks only.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http;

/// `PROCSYNC_ETCD_BIN` (when it names a file), else `etcd` on `PATH` (Debian's
/// `etcd-server` package).
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROCSYNC_ETCD_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    on_path("etcd")
}

fn on_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The command that starts a member: through util-linux's `setpriv --pdeathsig KILL`
/// when it is there, so that a member dies with the thread that started it even when
/// the test process is killed and its destructors never run (`Drop` covers panics).
fn member_command(bin: &std::path::Path) -> Command {
    match on_path("setpriv") {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// True when the test may run; otherwise prints a loud SKIP (or panics when
/// `PROCSYNC_REQUIRE_ETCD=1`).
pub fn etcd_available(test: &str) -> bool {
    if etcd_binary().is_some() {
        return true;
    }
    if std::env::var("PROCSYNC_REQUIRE_ETCD").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: no etcd binary (install Debian's etcd-server, or set PROCSYNC_ETCD_BIN to an etcd executable); PROCSYNC_REQUIRE_ETCD=1 forbids skipping"
        );
    }
    // Written to the stderr handle, not with `eprintln!`, which the test harness
    // captures (and shows only for failing tests): a skip must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n!!!!!!!! SKIP {test}: no etcd binary found (install Debian's etcd-server, or set PROCSYNC_ETCD_BIN to an etcd executable); set PROCSYNC_REQUIRE_ETCD=1 to make this a failure !!!!!!!!\n"
    );
    false
}

/// A loopback port free now and never handed out before by this process (the OS may
/// give a just-released port again, and tests start members in parallel).
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if given.insert(p) {
            return p;
        }
    }
}

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// How many keys exist under `prefix`, asked of the first of `endpoints` (one
/// count-only range, no retry: for tests against a healthy member).
pub fn count_keys(endpoints: &str, prefix: &str) -> usize {
    let addr = endpoints
        .split(',')
        .next()
        .unwrap_or("")
        .trim_start_matches("http://");
    let body = crate::client::count_prefix(prefix).to_string();
    let (st, out) = http::post(
        addr,
        "/v3/kv/range",
        body.as_bytes(),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("counting keys at {addr}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&out).expect("a JSON answer");
    assert_eq!(st, 200, "counting keys at {addr}: {v}");
    crate::client::int(&v["count"]) as usize
}

/// Removes the data directories of test processes that were killed before their
/// destructors ran (`procsync-etcd-<pid>-<n>` whose process is gone).
fn remove_stale_dirs() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("procsync-etcd-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Private etcd members for one test; dropping it kills them and deletes their data.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: PathBuf,
    token: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl EtcdCluster {
    /// Starts `n` members and waits until they have a leader.
    pub fn start(n: usize) -> EtcdCluster {
        remove_stale_dirs();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("procsync-etcd-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut c = EtcdCluster {
            members,
            dir,
            token: format!("procsync-test-{}-{seq}", std::process::id()),
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_leader();
        c
    }

    fn spawn(&mut self, i: usize) {
        let bin = etcd_binary().expect("etcd binary");
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect();
        let m = &self.members[i];
        let data = self.dir.join(&m.name);
        let log =
            std::fs::File::create(self.dir.join(format!("{}.log", m.name))).expect("log file");
        let curl = format!("http://127.0.0.1:{}", m.client);
        let purl = format!("http://127.0.0.1:{}", m.peer);
        let child = member_command(&bin)
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args([
                "--initial-cluster-token",
                &self.token,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.members[i].child = Some(child);
    }

    /// Comma-separated client URLs of every member.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn status(&self, i: usize) -> Option<(u64, u64)> {
        self.members[i].child.as_ref()?;
        let addr = format!("127.0.0.1:{}", self.members[i].client);
        let (st, body) = http::post(
            &addr,
            "/v3/maintenance/status",
            b"{}",
            Duration::from_millis(500),
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        if st != 200 {
            return None;
        }
        let u = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let (me, leader) = (u(&v["header"]["member_id"]), u(&v["leader"]));
        Some((me, leader))
    }

    /// Waits until every running member agrees on a leader and a write goes through;
    /// gives back the leader's index.
    pub fn wait_leader(&mut self) -> usize {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let exited = self.members.iter_mut().position(|m| {
                m.child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some())
            });
            let st: Vec<Option<(u64, u64)>> =
                (0..self.members.len()).map(|i| self.status(i)).collect();
            let running: Vec<&(u64, u64)> = st.iter().flatten().collect();
            let alive = self.members.iter().filter(|m| m.child.is_some()).count();
            if running.len() == alive
                && !running.is_empty()
                && running[0].1 != 0
                && running.iter().all(|s| s.1 == running[0].1)
                && let Some(i) = st.iter().position(|s| s.is_some_and(|s| s.0 == s.1))
            {
                let addr = format!("127.0.0.1:{}", self.members[i].client);
                let put = json!({"key": crate::b64::encode(b"procsync-test-probe"), "value": ""});
                if http::post(
                    &addr,
                    "/v3/kv/put",
                    put.to_string().as_bytes(),
                    Duration::from_secs(2),
                )
                .is_ok_and(|(s, _)| s == 200)
                {
                    return i;
                }
            }
            if exited.is_some() || Instant::now() >= until {
                let mut logs = String::new();
                for m in &self.members {
                    let l = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name)))
                        .unwrap_or_default();
                    let tail: Vec<&str> = l.lines().rev().take(8).collect();
                    logs += &format!(
                        "--- {} ---\n{}\n",
                        m.name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                match exited {
                    Some(i) => panic!("etcd member m{i} exited while starting:\n{logs}"),
                    None => {
                        panic!("etcd members did not elect a leader within 30 s: {st:?}\n{logs}")
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts member `i` (after [`EtcdCluster::kill`]) on its old data.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
