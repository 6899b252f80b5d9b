//! Runs every program in `examples/` as a user would, each in a fresh `PROCSYNC_ROOT`, and
//! checks its exit status, the line that says it verified what it shows, and that it left
//! no file under the root (LT-01). The examples start their own child processes (they
//! re-execute themselves), so these are cross-process runs of the typed API: abandonment
//! by a killed process, a start gate released for waiters in 4 processes, wait-any across
//! processes, inheritance and duplication.
//!
//! `cargo test` builds the examples next to this test binary (`target/<profile>/examples`).
//! When one is missing or older than the crate's sources (a filtered run such as `cargo
//! test --test examples` builds none), the test first runs `cargo build --examples` for
//! this test binary's profile, so it never runs stale binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Each example and the line it prints when it checked its own outcome.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "job_pool",
        "job pool: 4 jobs done, never more than 2 at a time",
    ),
    (
        "single_instance",
        "single instance: recovered the lock abandoned by the killed instance",
    ),
    ("start_gate", "start gate: 4 workers started together"),
    (
        "shutdown",
        "shutdown: the worker did 5 jobs and stopped when asked",
    ),
    (
        "periodic_timer",
        "periodic timer: 5 ticks waited, 5 callbacks, cancelled",
    ),
    (
        "handoff",
        "handoff: inherited by a child, pulled from and pushed into another process",
    ),
];

/// `target/<profile>/examples`, brought up to date once per run.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/examples-HASH → target/<profile>/examples
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let dir = profile_dir.join("examples");
        if up_to_date(&dir) {
            return dir;
        }
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--examples", "-p", "procsync", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cargo.arg("--release");
        }
        let out = cargo.output().expect("running cargo build --examples");
        assert!(
            out.status.success(),
            "cargo build --examples failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Whether every example binary in `dir` is newer than every source file of the crate.
fn up_to_date(dir: &Path) -> bool {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![crate_dir.join("Cargo.toml")];
    files_below(&crate_dir.join("src"), &mut sources);
    files_below(&crate_dir.join("examples"), &mut sources);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(newest_source) = sources.iter().filter_map(|p| mtime(p)).max() else {
        return false;
    };
    EXAMPLES
        .iter()
        .all(|(name, _)| mtime(&dir.join(name)).is_some_and(|t| t > newest_source))
}

fn files_below(p: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn run_example(name: &str) {
    let (_, expected) = EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a listed example");
    let exe = examples_dir().join(name);
    let root = std::env::temp_dir().join(format!("procsync-example-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("creating the example's root");
    let out = Command::new(&exe)
        .env("PROCSYNC_ROOT", &root)
        .env_remove(procsync::INHERIT_ENV)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let mut left = Vec::new();
    files_below(&root, &mut left);
    let _ = std::fs::remove_dir_all(&root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    assert!(
        stdout.lines().any(|l| l == *expected),
        "example {name} did not print {expected:?}:\n{stdout}"
    );
    assert!(
        left.is_empty(),
        "example {name} left files under its root: {left:?}"
    );
}

#[test]
fn every_example_is_tested() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading examples/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "list every example in EXAMPLES");
}

#[test]
fn job_pool() {
    run_example("job_pool");
}

#[test]
fn single_instance() {
    run_example("single_instance");
}

#[test]
fn start_gate() {
    run_example("start_gate");
}

#[test]
fn shutdown() {
    run_example("shutdown");
}

#[test]
fn periodic_timer() {
    run_example("periodic_timer");
}

#[test]
fn handoff() {
    run_example("handoff");
}
