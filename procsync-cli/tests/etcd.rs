//! `Cluster\x` names on the command line (docs/CLI.md, "Cluster names"; docs/ETCD.md):
//! real `procsync` processes against a private one-member etcd that each test starts on
//! loopback with procsync-etcd's harness (`procsync_etcd::testing`). Without an etcd
//! binary these tests print a loud SKIP and pass, unless `PROCSYNC_REQUIRE_ETCD=1`.
//!
//! Handshakes: a waiter is known to be queued when the cluster's queue for the object
//! holds it (`Cluster::counts`, what `procsync ls` shows as WAITERS); a job of the pool
//! records its own entry and exit in a counter file under `flock`, so the maximum number
//! of jobs running at once is observed by the jobs themselves, not guessed from timing.
//! No sleep synchronises anything: the jobs' `sleep` is their work, so that jobs overlap.

#[path = "procs/bg.rs"]
mod bg;
#[path = "procs/harness.rs"]
mod harness;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use bg::{Bg, Done, RUN_DEADLINE};
use harness::{Root, run_with_deadline, unique};
use procsync_etcd::testing::{EtcdCluster, count_keys, etcd_available};
use procsync_etcd::{Cluster, Config};

/// `procsync ARGS` on `root`, with `PROCSYNC_ETCD` removed from its environment (tests
/// pass `--etcd` themselves).
fn command(root: &Root, args: &[&str]) -> Command {
    let mut cmd = root.command();
    cmd.env_remove("PROCSYNC_ETCD").args(args);
    cmd
}

fn procsync(root: &Root, args: &[&str]) -> Done {
    let (status, out, err) = run_with_deadline(&mut command(root, args), RUN_DEADLINE);
    let status = status.unwrap_or_else(|| panic!("`procsync {args:?}` hung; stderr: {err}"));
    Done {
        code: status.code(),
        out,
        err,
    }
}

/// A scratch directory for job files (outside the root, which must end empty).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let d = std::env::temp_dir().join(unique(&format!(
            "procsync-etcdcli-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        )));
        fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }

    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A cluster name unique to this test run.
fn cluster_name(tag: &str) -> String {
    format!(
        "Cluster\\{}",
        unique(&format!("cli-{tag}-{}", std::process::id()))
    )
}

/// Waits until `n` waits are queued on `name` (the handshake), with a deadline.
fn wait_for_queued(c: &Cluster, name: &str, n: usize) {
    let deadline = Instant::now() + RUN_DEADLINE;
    loop {
        let (_, queued) = c.counts(name).expect("counts");
        if queued == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {queued} waits queued, never {n}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The test's own session on `e` (to watch queues and hold objects).
fn observer(e: &EtcdCluster) -> Cluster {
    Cluster::connect_with(&Config::new(&e.endpoints())).expect("connect")
}

/// Every key procsync wrote is gone (objects closed, sessions revoked).
fn assert_no_keys_left(e: &EtcdCluster) {
    assert_eq!(
        count_keys(&e.endpoints(), "procsync/v1/"),
        0,
        "keys left under procsync/v1/ after every client ended"
    );
}

/// The job every runner of the pool runs: enter (count + 1, raise the maximum), work,
/// leave (count - 1), each step under `flock` of the lock file, then log its fencing
/// token. `$1` is the scratch directory.
const JOB: &str = r#"
d="$1"
flock "$d/lock" sh -c 'c=$(($(cat "$1/cur") + 1)); echo $c > "$1/cur"; m=$(cat "$1/max"); if [ $c -gt $m ]; then echo $c > "$1/max"; fi' sh "$d"
sleep 0.3
flock "$d/lock" sh -c 'c=$(($(cat "$1/cur") - 1)); echo $c > "$1/cur"; echo "$PROCSYNC_FENCE" >> "$1/done"' sh "$d"
"#;

#[test]
fn a_cluster_job_pool_runs_at_most_max_jobs_at_once() {
    job_pool("a_cluster_job_pool_runs_at_most_max_jobs_at_once", 1, false);
}

#[test]
fn a_job_pool_on_three_members_survives_the_leader_being_killed_mid_run() {
    job_pool(
        "a_job_pool_on_three_members_survives_the_leader_being_killed_mid_run",
        3,
        true,
    );
}

/// `JOBS` runners of `procsync run --semaphore Cluster\… --max MAX` on `members` etcd
/// members (all of them given to `--etcd`); with `kill_leader`, the leader is killed
/// once a job is running. Every job runs once, never more than `MAX` at once.
fn job_pool(test: &str, members: usize, kill_leader: bool) {
    if !etcd_available(test) {
        return;
    }
    let mut e = EtcdCluster::start(members);
    let eps = e.endpoints();
    let root = Root::fresh();
    let s = Scratch::new();
    for (f, v) in [("cur", "0\n"), ("max", "0\n"), ("done", ""), ("lock", "")] {
        fs::write(s.path(f), v).expect("job file");
    }
    fs::write(s.path("job.sh"), JOB).expect("job script");
    let pool = cluster_name("pool");
    const MAX: usize = 2;
    const JOBS: usize = 6;
    let dir = s.0.to_str().expect("UTF-8 temp dir").to_owned();
    let script = s.path("job.sh").to_str().expect("UTF-8").to_owned();
    let max = MAX.to_string();
    let runners: Vec<Bg> = (0..JOBS)
        .map(|i| {
            let args = [
                "--etcd",
                &eps,
                "run",
                "--semaphore",
                &pool,
                "--max",
                &max,
                "--",
                "sh",
                &script,
                &dir,
            ];
            Bg::start(command(&root, &args), &format!("runner {i}"))
        })
        .collect();
    let read = |f: &str| fs::read_to_string(s.path(f)).expect("job file");
    let mut alive = eps.clone();
    if kill_leader {
        // Handshake: a job has entered (it raised the maximum under the lock).
        let deadline = Instant::now() + RUN_DEADLINE;
        while read("max").trim() == "0" {
            assert!(Instant::now() < deadline, "no job ever started");
            thread::sleep(Duration::from_millis(5));
        }
        let leader = e.wait_leader();
        e.kill(leader);
        alive = eps
            .split(',')
            .enumerate()
            .filter(|&(i, _)| i != leader)
            .map(|(_, u)| u)
            .collect::<Vec<_>>()
            .join(",");
    }
    for (i, r) in runners.into_iter().enumerate() {
        let d = r.finish();
        assert_eq!(d.code, Some(0), "runner {i} failed: {d:?}");
    }
    let most: usize = read("max").trim().parse().expect("a number");
    let fences: Vec<u64> = read("done")
        .lines()
        .map(|l| l.parse().expect("PROCSYNC_FENCE is a revision"))
        .collect();
    assert_eq!(fences.len(), JOBS, "every job ran once: {fences:?}");
    assert_eq!(read("cur").trim(), "0", "every job left");
    assert!(
        (1..=MAX).contains(&most),
        "{most} jobs ran at once in a pool of {MAX}"
    );
    eprintln!("at most {most} of {JOBS} jobs ran at once (pool of {MAX}); tokens {fences:?}");
    let mut distinct = fences.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        JOBS,
        "each grant has its own token: {fences:?}"
    );
    assert_eq!(
        count_keys(&alive, "procsync/v1/"),
        0,
        "keys left under procsync/v1/ after every client ended"
    );
}

#[test]
fn set_wait_release_and_ls_round_trip_through_the_cluster() {
    if !etcd_available("set_wait_release_and_ls_round_trip_through_the_cluster") {
        return;
    }
    let e = EtcdCluster::start(1);
    let eps = e.endpoints();
    let root = Root::fresh();
    let obs = observer(&e);

    // A gate: `wait --create event` blocks until `set`.
    let gate = cluster_name("gate");
    let waiter = Bg::start(
        command(&root, &["--etcd", &eps, "wait", &gate, "--create", "event"]),
        "gate waiter",
    );
    wait_for_queued(&obs, &gate, 1);
    let ls = procsync(&root, &["--etcd", &eps, "ls", "--json"]);
    assert_eq!(ls.code, Some(0), "{ls:?}");
    let json_name = gate.replace('\\', "\\\\");
    assert!(
        ls.out.contains(&format!(
            r#"{{"name":"{json_name}","type":"event","state":{{"manual":true,"signaled":false}},"handles":1,"waiters":1}}"#
        )),
        "ls --json shows the queued gate: {}",
        ls.out
    );
    let table = procsync(&root, &["--etcd", &eps, "ls", "--namespace", "cluster"]);
    let row = table
        .out
        .lines()
        .find(|l| l.contains(&gate))
        .unwrap_or_else(|| panic!("no row for {gate}: {table:?}"));
    assert!(
        row.starts_with("event") && row.contains("manual unset") && row.ends_with(" 1"),
        "{row}"
    );
    let set = procsync(&root, &["--etcd", &eps, "set", &gate]);
    assert_eq!(set.code, Some(0), "{set:?}");
    let d = waiter.finish();
    assert_eq!(d.code, Some(0), "the gate opened: {d:?}");

    // A semaphore: `release` hands a unit to the queued waiter and prints the count before.
    let sem = cluster_name("sem");
    let waiter = Bg::start(
        command(
            &root,
            &[
                "--etcd",
                &eps,
                "wait",
                &sem,
                "--create",
                "semaphore",
                "--max",
                "2",
            ],
        ),
        "semaphore waiter",
    );
    wait_for_queued(&obs, &sem, 1);
    let rel = procsync(&root, &["--etcd", &eps, "release", &sem]);
    assert_eq!((rel.code, rel.out.trim()), (Some(0), "0"), "{rel:?}");
    let d = waiter.finish();
    assert_eq!(d.code, Some(0), "the unit was handed over: {d:?}");
    let gone = procsync(&root, &["--etcd", &eps, "release", &sem]);
    assert_eq!(gone.code, Some(4), "{gone:?}");
    assert!(gone.err.contains("[not-found]"), "{gone:?}");

    // `--any` prints the index of the object that fired.
    let (a, b) = (cluster_name("any-a"), cluster_name("any-b"));
    let waiter = Bg::start(
        command(
            &root,
            &[
                "--etcd",
                &eps,
                "wait",
                &a,
                &b,
                "--any",
                "--create",
                "auto-event",
            ],
        ),
        "wait --any",
    );
    wait_for_queued(&obs, &b, 1);
    let set = procsync(&root, &["--etcd", &eps, "set", &b]);
    assert_eq!(set.code, Some(0), "{set:?}");
    let d = waiter.finish();
    assert_eq!((d.code, d.out.trim()), (Some(0), "1"), "{d:?}");

    // A timeout is exit 1, as locally.
    let none = cluster_name("none");
    let t = procsync(
        &root,
        &[
            "--etcd",
            &eps,
            "wait",
            &none,
            "--create",
            "event",
            "--timeout",
            "0",
        ],
    );
    assert_eq!(t.code, Some(1), "{t:?}");

    // A local name with --etcd stays local.
    let local = unique("local");
    let t = procsync(
        &root,
        &[
            "--etcd",
            &eps,
            "wait",
            &local,
            "--create",
            "event",
            "--timeout",
            "0",
        ],
    );
    assert_eq!(t.code, Some(1), "a local wait timed out: {t:?}");
    let ls = procsync(&root, &["--etcd", &eps, "ls", "--json"]);
    assert!(
        ls.out.contains(r#""cluster":{"endpoints":"#) && !ls.out.contains(&local),
        "{ls:?}"
    );
    drop(obs);
    assert_no_keys_left(&e);
}

#[test]
fn run_mutex_reports_the_abandonment_of_a_holder_whose_session_ended() {
    if !etcd_available("run_mutex_reports_the_abandonment_of_a_holder_whose_session_ended") {
        return;
    }
    let e = EtcdCluster::start(1);
    let eps = e.endpoints();
    let root = Root::fresh();
    for strict in [false, true] {
        let m = cluster_name("mutex");
        let holder = observer(&e);
        let (h, _) = holder.create_mutex(&m, true).expect("an owned mutex");
        let held_token = h.fence_token().expect("owner's token");
        let mut args = vec!["--etcd", &eps, "run", "--mutex", &m];
        if strict {
            args.push("--strict");
        }
        args.extend(["--", "sh", "-c", "echo $PROCSYNC_FENCE"]);
        let runner = Bg::start(command(&root, &args), "runner");
        let obs = observer(&e);
        wait_for_queued(&obs, &m, 1);
        // The holder's session ends while it owns the mutex (its lease is revoked, as
        // when its process dies: then at the TTL).
        drop(h);
        drop(holder);
        let d = runner.finish();
        assert!(d.err.contains("was abandoned"), "{d:?}");
        if strict {
            assert_eq!(d.code, Some(3), "--strict refuses: {d:?}");
            assert_eq!(d.out, "", "the command did not run: {d:?}");
        } else {
            assert_eq!(d.code, Some(0), "{d:?}");
            let token: u64 = d.out.trim().parse().expect("PROCSYNC_FENCE");
            assert!(token > held_token, "{token} after {held_token}");
        }
        drop(obs);
    }
    assert_no_keys_left(&e);
}

#[test]
fn a_cluster_name_without_an_endpoint_is_a_usage_error_that_says_how_to_give_one() {
    let root = Root::fresh();
    let n = "Cluster\\nowhere";
    for args in [
        vec!["run", "--semaphore", n, "--max", "2", "--", "true"],
        vec!["run", "--mutex", n, "--", "true"],
        vec!["wait", n],
        vec!["set", n],
        vec!["release", n],
        vec!["ls", "--namespace", "cluster"],
    ] {
        let d = procsync(&root, &args);
        assert_eq!(d.code, Some(2), "{args:?}: {d:?}");
        assert!(
            d.err.contains("--etcd") && d.err.contains("PROCSYNC_ETCD"),
            "{args:?}: {d:?}"
        );
    }
    let mixed = procsync(&root, &["--etcd", "http://127.0.0.1:9", "wait", n, "local"]);
    assert_eq!(mixed.code, Some(2), "{mixed:?}");
    assert!(mixed.err.contains("mixes cluster names"), "{mixed:?}");
    let hold = procsync(&root, &["hold", n]);
    assert_eq!(hold.code, Some(2), "{hold:?}");
    assert!(hold.err.contains("local names only"), "{hold:?}");
}

#[test]
fn a_killed_runner_gives_its_unit_back_when_its_lease_ends() {
    if !etcd_available("a_killed_runner_gives_its_unit_back_when_its_lease_ends") {
        return;
    }
    let e = EtcdCluster::start(1);
    let eps = e.endpoints();
    let root = Root::fresh();
    let s = Scratch::new();
    let pool = cluster_name("killed");
    let started = s.path("started");
    let started_s = started.to_str().expect("UTF-8").to_owned();
    // A short lease, so that the dead runner's unit comes back soon.
    let runner = |job: &[&str]| {
        let mut args = vec![
            "--etcd",
            &eps,
            "run",
            "--semaphore",
            &pool,
            "--max",
            "1",
            "--",
        ];
        args.extend(job);
        let mut cmd = command(&root, &args);
        cmd.env("PROCSYNC_ETCD_TTL", "2");
        cmd
    };
    let first = Bg::start(
        runner(&[
            "sh",
            "-c",
            "echo x > \"$1\"; exec sleep 600",
            "sh",
            &started_s,
        ]),
        "first runner",
    );
    let deadline = Instant::now() + RUN_DEADLINE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the first job never started");
        thread::sleep(Duration::from_millis(5));
    }
    let second = Bg::start(runner(&["echo", "second ran"]), "second runner");
    let obs = observer(&e);
    wait_for_queued(&obs, &pool, 1);
    let pid = first.pid();
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let d = first.finish();
    assert_eq!(d.code, None, "killed by a signal: {d:?}");
    let d = second.finish();
    assert_eq!(
        (d.code, d.out.as_str()),
        (Some(0), "second ran\n"),
        "the dead runner's unit came back: {d:?}"
    );
    drop(obs);
    assert_no_keys_left(&e);
}

#[test]
fn an_interrupted_cluster_wait_leaves_nothing_queued() {
    if !etcd_available("an_interrupted_cluster_wait_leaves_nothing_queued") {
        return;
    }
    let e = EtcdCluster::start(1);
    let eps = e.endpoints();
    let root = Root::fresh();
    let m = cluster_name("held");
    let holder = observer(&e);
    let (h, _) = holder.create_mutex(&m, true).expect("an owned mutex");
    for (sig, args) in [
        (
            "INT",
            vec!["--etcd", &eps, "run", "--mutex", &m, "--", "true"],
        ),
        ("TERM", vec!["--etcd", &eps, "wait", &m]),
    ] {
        let waiter = Bg::start(command(&root, &args), "waiter");
        wait_for_queued(&holder, &m, 1);
        let pid = waiter.pid();
        let sent = Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let d = waiter.finish();
        let want = if sig == "INT" { 130 } else { 143 };
        assert_eq!(d.code, Some(want), "{sig}: {d:?}");
        // Its session was revoked before it exited: its wait is no longer queued, so a
        // release cannot hand the mutex to a process that is gone.
        assert_eq!(holder.counts(&m).expect("counts"), (1, 0), "{sig}");
    }
    h.release_mutex().expect("still the owner");
    drop(h);
    drop(holder);
    assert_no_keys_left(&e);
}
