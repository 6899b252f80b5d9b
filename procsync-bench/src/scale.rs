//! `scale/N-objects` (procsync-bench/README.md, "Scenarios"): N named objects in one process
//! (N = 10 000; the full run also 50 000 when the process's limits allow it), against N
//! POSIX named semaphores (`sem_open`) in the same run.
//!
//! - create: time per object to create N named semaphores, held all at once;
//! - open from a second process: a partner opens all N by name (and all N POSIX ones),
//!   holding them, and reports the time per object;
//! - wait-any over 64 of them (spread over the N): `wait_any` with a zero timeout whose
//!   last object is signaled, against a zero-timeout wait on that one object, while all N
//!   are held — what holding many objects costs a wait;
//! - further figures: descriptors and resident memory per object (`/proc/self/status`:
//!   `VmRSS`, and `RssShmem`, the shared pages this process maps) for both sides.
//!
//! What it owns: the N names (unique per run) and their removal (nothing is left in
//! `/dev/shm`). What it must not do: assert anything about the figures. Where the limits
//! (descriptors: one per object, its first handle's value, see procsync's
//! `sys/fdlimit.rs`; `vm.max_map_count`: one mapping per object) do not allow N, the
//! size is skipped with a note.

use std::ffi::CString;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use procsync::{Handle, Semaphore, WaitOutcome, wait_any};

use super::names::sem_open;
use super::{Blocks, PairStats, Report, child_command, paired, quantile, times};

/// Chunks a size is created and opened in, alternating sides (the per-chunk ratios give
/// the spread).
const CHUNKS: usize = 8;

fn procsync_name(run: u32, i: usize) -> String {
    format!("Local\\bench-scale-{run}-{i}")
}

fn posix_name(run: u32, i: usize) -> CString {
    CString::new(format!("/procsync-bench-scale-{run}-{i}")).expect("no NUL")
}

/// N POSIX semaphores held open; closes and unlinks them on drop (also on a panic).
struct PosixSet {
    names: Vec<CString>,
    sems: Vec<*mut libc::sem_t>,
    unlink: bool,
}

impl Drop for PosixSet {
    fn drop(&mut self) {
        for &s in &self.sems {
            // SAFETY: each came from a successful `sem_open` and is closed once.
            unsafe { libc::sem_close(s) };
        }
        if self.unlink {
            for n in &self.names {
                // SAFETY: NUL-terminated; ENOENT is fine.
                unsafe { libc::sem_unlink(n.as_ptr()) };
            }
        }
    }
}

/// (descriptors, VmRSS bytes, RssShmem bytes) of this process.
fn footprint() -> (f64, f64, f64) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count) as f64;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
            * 1024.0
    };
    (fds, kib("VmRSS:"), kib("RssShmem:"))
}

fn minus(a: (f64, f64, f64), b: (f64, f64, f64), n: usize) -> (f64, f64, f64) {
    let n = n as f64;
    ((a.0 - b.0) / n, (a.1 - b.1) / n, (a.2 - b.2) / n)
}

/// Whether this process may hold `n` objects: descriptors (raising the soft limit to the
/// hard one, as procsync itself would) and mappings. `Err` says why not.
fn room_for(n: usize) -> Result<(), String> {
    // One descriptor per object (POSIX semaphores keep none once mapped), and room for
    // the namespace directory, standard I/O and the bench's own.
    let need_fds = n as u64 + 256;
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum
        && hard < need_fds
    {
        // Only a privileged process may raise the hard limit; then it is ours to raise.
        lim.maximum = Some(need_fds);
        lim.current = Some(need_fds);
        if setrlimit(Resource::Nofile, lim).is_err() {
            return Err(format!(
                "needs {need_fds} descriptors (one per object), the hard limit is {hard}"
            ));
        }
    }
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    // Both sides are held at once: one mapping per procsync object and per POSIX one.
    if 2 * n + 1024 > maps {
        return Err(format!(
            "needs {} mappings, vm.max_map_count is {maps}",
            2 * n + 1024
        ));
    }
    Ok(())
}

/// Runs the sizes that `wanted` accepts (`scale/N-objects`) and adds their rows.
pub fn run(
    report: &mut Report,
    sizes: &[usize],
    wait_blocks: Blocks,
    wanted: &dyn Fn(&str) -> bool,
) {
    for &n in sizes {
        let group = format!("scale/{n}-objects");
        if !wanted(&group) {
            continue;
        }
        if let Err(why) = room_for(n) {
            eprintln!("procsync bench: {group} skipped: {why}");
            continue;
        }
        one_size(report, &group, n, wait_blocks);
    }
}

fn one_size(report: &mut Report, group: &str, n: usize, wait_blocks: Blocks) {
    let run = std::process::id();
    let mut posix = PosixSet {
        names: (0..n).map(|i| posix_name(run, i)).collect(),
        sems: Vec::with_capacity(n),
        unlink: true,
    };
    let mut held: Vec<Semaphore> = Vec::with_capacity(n);
    let chunk = n.div_ceil(CHUNKS);
    let (mut ps, mut bs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fp_p, mut fp_b) = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0));
    for c in 0..CHUNKS {
        let range = c * chunk..((c + 1) * chunk).min(n);
        let len = range.len();
        let mut side_p = || {
            let before = footprint();
            let t = Instant::now();
            for i in range.clone() {
                let (s, _) = Semaphore::create(&procsync_name(run, i), 0, 1).expect("create");
                held.push(s);
            }
            let ns = t.elapsed().as_nanos() as f64 / len as f64;
            let after = footprint();
            (ns, minus(after, before, len))
        };
        let mut side_b = || {
            let before = footprint();
            let t = Instant::now();
            for i in range.clone() {
                posix
                    .sems
                    .push(sem_open(&posix.names[i], libc::O_CREAT | libc::O_EXCL));
            }
            let ns = t.elapsed().as_nanos() as f64 / len as f64;
            let after = footprint();
            (ns, minus(after, before, len))
        };
        let ((p, f1), (b, f2)) = if c % 2 == 0 {
            let x = side_p();
            (x, side_b())
        } else {
            let y = side_b();
            (side_p(), y)
        };
        ps.push(p);
        bs.push(b);
        ratios.push(p / b.max(1.0));
        fp_p = f1;
        fp_b = f2;
    }
    let stats = |mut s: Vec<f64>, mut b: Vec<f64>, mut r: Vec<f64>| PairStats {
        subject_ns: quantile(&mut s, 0.5),
        baseline_ns: quantile(&mut b, 0.5),
        ratio: [
            quantile(&mut r, 0.25),
            quantile(&mut r, 0.5),
            quantile(&mut r, 0.75),
        ],
        rounds: CHUNKS,
    };
    report.pair_with(
        group,
        "procsync-semaphore",
        "posix-sem_open",
        "create per object",
        stats(ps, bs, ratios),
        vec![
            ("descriptors_per_object", fp_p.0, fp_b.0),
            ("resident_bytes_per_object", fp_p.1, fp_b.1),
            ("shared_resident_bytes_per_object", fp_p.2, fp_b.2),
        ],
    );

    // A second process opens them all.
    let mut child = child_command(&format!("scale-open:{run}:{n}"), None)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the scale partner");
    let out = BufReader::new(child.stdout.take().expect("piped"));
    let (mut ps, mut bs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for line in out.lines().map_while(std::result::Result::ok) {
        let v: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
        if let [p, b] = v[..] {
            ps.push(p);
            bs.push(b);
            ratios.push(p / b.max(1.0));
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    if ok && ps.len() == CHUNKS {
        report.pair(
            group,
            "procsync-semaphore",
            "posix-sem_open",
            "open per object (2nd process)",
            stats(ps, bs, ratios),
        );
    } else {
        eprintln!("procsync bench: {group}: the partner that opens every object failed");
    }

    // wait-any over 64 of the N, the last one signaled, against a wait on that one.
    let pick: Vec<&Handle> = (0..64).map(|k| held[k * (n / 64)].handle()).collect();
    let last = pick[63];
    let s = paired(
        &mut times(|| {
            last.release(1).expect("release");
            let r = wait_any(&pick, Some(Duration::ZERO)).expect("wait_any");
            assert_eq!(black_box(r), WaitOutcome::Signaled(63));
        }),
        &mut times(|| {
            last.release(1).expect("release");
            let r = last.wait(Some(Duration::ZERO)).expect("wait");
            assert_eq!(black_box(r), WaitOutcome::Signaled(0));
        }),
        wait_blocks,
    );
    report.pair(
        group,
        "procsync-wait_any-64",
        "procsync-wait-1",
        "release + wait(0)",
        s,
    );
    drop(held);
    drop(posix);
}

/// The partner: opens every object of run `run` by name, chunk by chunk, alternating
/// sides, and prints one line per chunk: ns per procsync open, ns per `sem_open`.
pub(crate) fn child(run: &str, n: &str) -> ! {
    let run: u32 = run.parse().expect("run id");
    let n: usize = n.parse().expect("object count");
    let chunk = n.div_ceil(CHUNKS);
    let mut held: Vec<Semaphore> = Vec::with_capacity(n);
    let mut posix = PosixSet {
        names: (0..n).map(|i| posix_name(run, i)).collect(),
        sems: Vec::with_capacity(n),
        unlink: false,
    };
    let mut lines = String::new();
    for c in 0..CHUNKS {
        let range = c * chunk..((c + 1) * chunk).min(n);
        let len = range.len() as f64;
        let mut side_p = || {
            let t = Instant::now();
            for i in range.clone() {
                held.push(Semaphore::open(&procsync_name(run, i)).expect("open"));
            }
            t.elapsed().as_nanos() as f64 / len
        };
        let mut side_b = || {
            let t = Instant::now();
            for i in range.clone() {
                posix.sems.push(sem_open(&posix.names[i], 0));
            }
            t.elapsed().as_nanos() as f64 / len
        };
        let (p, b) = if c % 2 == 0 {
            let p = side_p();
            (p, side_b())
        } else {
            let b = side_b();
            (side_p(), b)
        };
        lines.push_str(&format!("{p} {b}\n"));
    }
    drop(held);
    drop(posix);
    print!("{lines}");
    std::process::exit(0);
}
