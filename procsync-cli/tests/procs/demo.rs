//! `procsync demo`: the guided tour users run first must pass on a fresh root and clean up
//! after itself.

use std::time::Duration;

use crate::harness::{Root, run_with_deadline};

/// How long the whole demo may take before the test kills it.
const DEMO_DEADLINE: Duration = Duration::from_secs(60);

/// `procsync demo` exits 0, prints one verification line whose figures agree (the counter is
/// workers × rounds, the slots in use at once never exceeded the semaphore's maximum), and
/// leaves no file under the root (checked when `root` drops).
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
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("verification "))
        .collect();
    let [line] = lines[..] else {
        panic!(
            "`procsync demo` printed {} verification lines, expected one\n{report}",
            lines.len()
        )
    };
    match parse_verification(line) {
        Ok(v) => {
            assert_eq!(
                v.counter,
                v.workers * v.rounds,
                "the shared counter must count every round of every worker: `{line}`\n{report}"
            );
            assert!(
                (1..=v.slots).contains(&v.max_inside),
                "slots in use at once must be between 1 and {}: `{line}`\n{report}",
                v.slots
            );
        }
        Err(why) => panic!("verification line `{line}`: {why}\n{report}"),
    }
}

/// The figures of `verification passed: counter = N (W workers × R rounds), at most K of S
/// slots in use at once, all workers exited 0`.
struct Verification {
    counter: u64,
    workers: u64,
    rounds: u64,
    max_inside: u64,
    slots: u64,
}

fn parse_verification(line: &str) -> Result<Verification, String> {
    let rest = line
        .strip_prefix("verification passed: counter = ")
        .ok_or("does not start with `verification passed: counter = `")?;
    let num = |s: &str, what: &str| -> Result<u64, String> {
        s.trim()
            .parse()
            .map_err(|e| format!("{what} `{s}` is not a number: {e}"))
    };
    let (counter, rest) = rest.split_once(" (").ok_or("no `(` after the counter")?;
    let (workers, rest) = rest.split_once(" workers × ").ok_or("no `W workers × `")?;
    let (rounds, rest) = rest
        .split_once(" rounds), at most ")
        .ok_or("no `R rounds), at most `")?;
    let (max_inside, rest) = rest.split_once(" of ").ok_or("no `K of S`")?;
    let slots = rest
        .strip_suffix(" slots in use at once, all workers exited 0")
        .ok_or("does not end with `slots in use at once, all workers exited 0`")?;
    Ok(Verification {
        counter: num(counter, "counter")?,
        workers: num(workers, "workers")?,
        rounds: num(rounds, "rounds")?,
        max_inside: num(max_inside, "slots in use")?,
        slots: num(slots, "slots")?,
    })
}
