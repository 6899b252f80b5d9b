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
//! size is skipped with a note; where they allow N of one side but not of both at once
//! (mappings), the sides run one after the other, each released before the next, with
//! a note (the per-chunk ratios then pair chunks measured seconds apart).

use std::ffi::CString;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use procsync::{Handle, Semaphore, WaitOutcome, wait_any};

use super::names::sem_open;
use super::{Blocks, PairStats, Report, child_command, paired, times};

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

/// How a size's two sides are held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sides {
    /// Both at once, chunks alternating (the per-chunk ratios pair up in time).
    Together,
    /// One after the other, each released before the next starts: both at once would
    /// exceed `vm.max_map_count` (one mapping per object on either side).
    InTurn,
}

/// Whether this process may hold `n` objects: descriptors (raising the soft limit to the
/// hard one, as procsync itself would) and mappings. `Err` says why not.
fn room_for(n: usize) -> Result<Sides, String> {
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
    // One mapping per procsync object and per POSIX one, plus the process's own.
    if 2 * n + 1024 <= maps {
        Ok(Sides::Together)
    } else if n + 1024 <= maps {
        Ok(Sides::InTurn)
    } else {
        Err(format!(
            "needs {} mappings (one per object), vm.max_map_count is {maps}",
            n + 1024
        ))
    }
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
        match room_for(n) {
            Ok(sides) => {
                if sides == Sides::InTurn {
                    eprintln!(
                        "procsync bench: {group}: both sides at once would exceed vm.max_map_count; \
                         they run one after the other"
                    );
                }
                one_size(report, &group, n, wait_blocks, sides);
            }
            Err(why) => eprintln!("procsync bench: {group} skipped: {why}"),
        }
    }
}

/// The chunk ranges of a size.
fn chunks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let chunk = n.div_ceil(CHUNKS);
    (0..CHUNKS).map(move |c| c * chunk..((c + 1) * chunk).min(n))
}

/// Time per object (ns) of `make` over `range`, and the footprint it added per object.
fn timed(range: std::ops::Range<usize>, mut make: impl FnMut(usize)) -> (f64, (f64, f64, f64)) {
    let len = range.len();
    let before = footprint();
    let t = Instant::now();
    for i in range {
        make(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / len as f64;
    (ns, minus(footprint(), before, len))
}

/// Starts the partner that opens the objects of `sides` (`both`, `procsync`, `posix`)
/// and returns its per-chunk times, ns per open: procsync's and POSIX's (empty for a
/// side it did not open); `None` if it failed.
fn open_elsewhere(run: u32, n: usize, sides: &str) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut child = child_command(&format!("scale-open:{run}:{n}:{sides}"), None)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the scale partner");
    let out = BufReader::new(child.stdout.take().expect("piped"));
    let (mut p, mut b) = (Vec::new(), Vec::new());
    for line in out.lines().map_while(std::result::Result::ok) {
        let v: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
        match (sides, &v[..]) {
            ("both", &[x, y]) => {
                p.push(x);
                b.push(y);
            }
            ("procsync", &[x]) => p.push(x),
            ("posix", &[y]) => b.push(y),
            _ => {}
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success()) && p.len().max(b.len()) == CHUNKS;
    ok.then_some((p, b))
}

fn one_size(report: &mut Report, group: &str, n: usize, wait_blocks: Blocks, sides: Sides) {
    let run = std::process::id();
    let mut posix = PosixSet {
        names: (0..n).map(|i| posix_name(run, i)).collect(),
        sems: Vec::with_capacity(n),
        unlink: true,
    };
    let mut held: Vec<Semaphore> = Vec::with_capacity(n);
    let (mut ps, mut bs) = (Vec::new(), Vec::new());
    let (mut fp_p, mut fp_b) = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0));
    let create_p = |held: &mut Vec<Semaphore>, range| {
        timed(range, |i| {
            let (s, _) = Semaphore::create(&procsync_name(run, i), 0, 1).expect("create");
            held.push(s);
        })
    };
    let create_b = |posix: &mut PosixSet, range| {
        timed(range, |i| {
            let s = sem_open(&posix.names[i], libc::O_CREAT | libc::O_EXCL);
            posix.sems.push(s);
        })
    };
    let opened = match sides {
        Sides::Together => {
            for (c, range) in chunks(n).enumerate() {
                let ((p, f1), (b, f2)) = if c % 2 == 0 {
                    let x = create_p(&mut held, range.clone());
                    (x, create_b(&mut posix, range))
                } else {
                    let y = create_b(&mut posix, range.clone());
                    (create_p(&mut held, range), y)
                };
                ps.push(p);
                bs.push(b);
                fp_p = f1;
                fp_b = f2;
            }
            let opened = open_elsewhere(run, n, "both");
            wait_any_row(report, group, n, &held, wait_blocks);
            opened
        }
        Sides::InTurn => {
            for range in chunks(n) {
                let (p, f) = create_p(&mut held, range);
                ps.push(p);
                fp_p = f;
            }
            let opened_p = open_elsewhere(run, n, "procsync");
            wait_any_row(report, group, n, &held, wait_blocks);
            drop(std::mem::take(&mut held));
            for range in chunks(n) {
                let (b, f) = create_b(&mut posix, range);
                bs.push(b);
                fp_b = f;
            }
            let opened_b = open_elsewhere(run, n, "posix");
            opened_p.zip(opened_b).map(|((p, _), (_, b))| (p, b))
        }
    };
    let stats = |s: Vec<f64>, b: Vec<f64>| {
        let r = s.iter().zip(&b).map(|(p, b)| p / b.max(1.0)).collect();
        PairStats::of_rounds(s, b, r)
    };
    report.pair_with(
        group,
        "procsync-semaphore",
        "posix-sem_open",
        "create per object",
        stats(ps, bs),
        vec![
            ("descriptors_per_object", fp_p.0, fp_b.0),
            ("resident_bytes_per_object", fp_p.1, fp_b.1),
            ("shared_resident_bytes_per_object", fp_p.2, fp_b.2),
        ],
    );
    match opened {
        Some((p, b)) if p.len() == CHUNKS && b.len() == CHUNKS => report.pair(
            group,
            "procsync-semaphore",
            "posix-sem_open",
            "open per object (2nd process)",
            stats(p, b),
        ),
        _ => eprintln!("procsync bench: {group}: the partner that opens every object failed"),
    }
    drop(held);
    drop(posix);
}

/// wait-any over 64 of the N, the last one signaled, against a wait on that one.
fn wait_any_row(report: &mut Report, group: &str, n: usize, held: &[Semaphore], blocks: Blocks) {
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
        blocks,
    );
    report.pair(
        group,
        "procsync-wait_any-64",
        "procsync-wait-1",
        "release + wait(0)",
        s,
    );
}

/// The partner: opens every object of run `run` by name, chunk by chunk (alternating
/// sides when it opens both: `sides` is `both`, `procsync` or `posix`), and prints one
/// line per chunk: ns per open of each side it opened, procsync's first.
pub(crate) fn child(run: &str, n: &str, sides: &str) -> ! {
    let run: u32 = run.parse().expect("run id");
    let n: usize = n.parse().expect("object count");
    let (with_p, with_b) = match sides {
        "both" => (true, true),
        "procsync" => (true, false),
        "posix" => (false, true),
        other => panic!("scale partner: unknown sides `{other}`"),
    };
    let mut held: Vec<Semaphore> = Vec::with_capacity(if with_p { n } else { 0 });
    let mut posix = PosixSet {
        names: if with_b {
            (0..n).map(|i| posix_name(run, i)).collect()
        } else {
            Vec::new()
        },
        sems: Vec::with_capacity(if with_b { n } else { 0 }),
        unlink: false,
    };
    let mut lines = String::new();
    for (c, range) in chunks(n).enumerate() {
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
        let line = match (with_p, with_b) {
            (true, true) if c % 2 == 0 => {
                let p = side_p();
                format!("{p} {}", side_b())
            }
            (true, true) => {
                let b = side_b();
                format!("{} {b}", side_p())
            }
            (true, false) => side_p().to_string(),
            _ => side_b().to_string(),
        };
        lines.push_str(&line);
        lines.push('\n');
    }
    drop(held);
    drop(posix);
    print!("{lines}");
    std::process::exit(0);
}
