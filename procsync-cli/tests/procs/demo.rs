//! `procsync demo`: the guided tour users run first must pass on a fresh root and clean up
//! after itself.

use std::time::Duration;

use crate::harness::{Root, run_with_deadline};

/// How long the whole demo may take before the test kills it.
const DEMO_DEADLINE: Duration = Duration::from_secs(60);

/// `procsync demo` exits 0, says that its checks passed, and leaves no file under the root
/// (checked when `root` drops).
#[test]
fn demo_runs_verifies_and_cleans_up() {
    let root = Root::fresh();
    let (status, stdout, stderr) = run_with_deadline(root.command().arg("demo"), DEMO_DEADLINE);
    let report = format!("---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}");
    match status {
        None => panic!("`procsync demo` still running after {DEMO_DEADLINE:?}; killed\n{report}"),
        Some(s) if !s.success() => panic!("`procsync demo` exited with {s}\n{report}"),
        Some(_) => {}
    }
    assert!(
        stdout.to_lowercase().contains("passed"),
        "`procsync demo` printed no verification line (expected the word `passed`)\n{report}"
    );
}
