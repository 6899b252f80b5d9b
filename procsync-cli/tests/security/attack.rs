//! The attacker process: this test binary re-executed as uid 65534 (`attacker_process`). It
//! reads commands on standard input and answers each with one `ATTACK <verb> k=v…` line of
//! cumulative counts (what it wrote, what the kernel refused), so that the tests can both
//! wait for it (a handshake) and check that an attack reached something. It only goes after
//! files under `PROCSYNC_ROOT` and the segments of the pids in `PROCSYNC_SECURITY_PIDS`; it
//! must not decide outcomes: the tests check the victims.
//!
//! - `round MODE [N]`: one round of MODE (`mutate`, `forge` with variant N, `chaos`).
//! - `start MODE`: rounds of MODE until `stop`, each reported `ATTACK round …`.
//! - `target SEG BLOCK GEN WHO`: a wait block to name in planted entries.
//! - `eat`: rewrite every granted claim to WAITING of the next generation.
//! - `bump`: move every waiting block to the next generation, without ringing it.
//! - `smash-header`: zero the first word of every attachable target segment.
//! - `plant`: plant entries naming every known waiting block in every writable object.
//! - `plant-granted`: the same, the entries marked granted.
//! - `squat NAME`: plant, in `global/`, under the object names `NAME-file`, `-locked`,
//!   `-fifo`, `-link` and `-dir`: a file of garbage, the same with an exclusive `flock` held,
//!   a FIFO, a symlink to another object's file and a directory.
//! - `lock`: write this thread's identity into the lock word of every writable object.
//! - `open PATH`: try to open PATH for reading and for writing.
//! - `attach`: try to attach every target segment; count successes per kind.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufRead;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;

use super::rig::*;

#[derive(Default)]
struct State {
    root: PathBuf,
    pids: Vec<u32>,
    targets: Vec<(u32, u32, u32, u64)>,
    rng: u64,
    counts: BTreeMap<&'static str, u64>,
    /// Files it keeps open (and locked).
    held: Vec<fs::File>,
}

impl State {
    fn count(&mut self, key: &'static str, n: u64) {
        *self.counts.entry(key).or_default() += n;
    }
    fn report(&self, verb: &str) {
        let mut line = format!("ATTACK {verb}");
        for (k, v) in &self.counts {
            line.push_str(&format!(" {k}={v}"));
        }
        println!("{line}");
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub(super) fn main() {
    let (uid, euid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::geteuid().as_raw(),
    );
    assert_ne!(euid, 0, "the attacker must not run as root");
    let mut st = State {
        root: PathBuf::from(std::env::var_os("PROCSYNC_ROOT").expect("PROCSYNC_ROOT")),
        pids: std::env::var(ENV_TARGET_PIDS)
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.parse().ok())
            .collect(),
        rng: u64::from(std::process::id()) << 20 | 0x9E37_79B9,
        ..State::default()
    };
    println!("ATTACK ready uid={uid} euid={euid}");
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = rx.recv() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["round", mode, rest @ ..] => {
                let n = rest.first().and_then(|n| n.parse().ok()).unwrap_or(0);
                round(&mut st, mode, n);
                st.report("done");
            }
            ["start", mode] => {
                let mut n = 0u64;
                loop {
                    round(&mut st, mode, n);
                    n += 1;
                    st.count("rounds", 1);
                    st.report("round");
                    match rx.try_recv() {
                        Ok(_) | Err(mpsc::TryRecvError::Disconnected) => break,
                        Err(mpsc::TryRecvError::Empty) => {}
                    }
                }
                st.report("stopped");
            }
            ["target", seg, block, generation, who] => {
                let parse = |s: &str| s.parse::<u64>().unwrap_or(0);
                st.targets.push((
                    parse(seg) as u32,
                    parse(block) as u32,
                    parse(generation) as u32,
                    parse(who),
                ));
                st.report("done");
            }
            ["eat"] => {
                eat_grants(&mut st);
                st.report("done");
            }
            ["bump"] => {
                bump_generations(&mut st);
                st.report("done");
            }
            ["smash-header"] => {
                smash_headers(&mut st);
                st.report("done");
            }
            ["squat", name] => {
                squat(&mut st, name);
                st.report("done");
            }
            ["plant-granted"] => {
                plant(&mut st, true);
                st.report("done");
            }
            ["plant"] => {
                plant(&mut st, false);
                st.report("done");
            }
            ["lock"] => {
                lock(&mut st);
                st.report("done");
                // Keep this thread, whose identity the lock words name, alive until the end.
            }
            ["open", path] => {
                let r = fs::OpenOptions::new().read(true).open(path).is_ok();
                let w = fs::OpenOptions::new().write(true).open(path).is_ok();
                let verdict = if r || w { "opened" } else { "denied" };
                println!("ATTACK done open={verdict} read={r} write={w}");
            }
            ["attach"] => {
                for s in target_segments(&st) {
                    let private = s.mode & 0o022 == 0;
                    let ok = Attached::new(s.id, s.size, true).is_ok();
                    st.count(
                        match (private, ok) {
                            (true, true) => "attached_private",
                            (true, false) => "denied_private",
                            (false, true) => "attached_public",
                            (false, false) => "denied_public",
                        },
                        1,
                    );
                }
                st.report("done");
            }
            _ => println!("ATTACK error unknown command `{line}`"),
        }
    }
}

/// The segments of the processes this test named.
fn target_segments(st: &State) -> Vec<SegInfo> {
    segments()
        .into_iter()
        .filter(|s| st.pids.contains(&s.cpid))
        .collect()
}

/// Every regular file under the root that opens for writing (the rest is counted).
fn writable_files(st: &mut State) -> Vec<(PathBuf, fs::File)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => walk(&p, out),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    let mut paths = Vec::new();
    walk(&st.root.clone(), &mut paths);
    let mut out = Vec::new();
    for p in paths {
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
        {
            Ok(f) => out.push((p, f)),
            Err(_) => st.count("file_denied", 1),
        }
    }
    out
}

fn round(st: &mut State, mode: &str, n: u64) {
    match mode {
        "mutate" => {
            mutate_files(st);
            garble_segments(st);
        }
        "forge" => forge(st, n),
        "chaos" => chaos(st),
        other => println!("ATTACK error unknown mode `{other}`"),
    }
}

/// Truncate, punch, shrink, extend and overwrite every writable file; leave it 4096 bytes
/// of garbage.
fn mutate_files(st: &mut State) {
    for (_, f) in writable_files(st) {
        let _ = f.set_len(0);
        let _ = f.set_len(4096);
        punch(&f);
        let _ = f.set_len(1);
        let _ = f.set_len(3 * 4096);
        let junk = st.bytes(4096);
        let _ = f.write_all_at(&junk, 0);
        let _ = f.set_len(4096);
        st.count("files", 1);
    }
}

fn punch(f: &fs::File) {
    use rustix::fs::FallocateFlags as F;
    let _ = rustix::fs::fallocate(f, F::PUNCH_HOLE | F::KEEP_SIZE, 0, 4096);
}

/// Fills every attachable target segment with garbage.
fn garble_segments(st: &mut State) {
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        for off in (0..s.size / 8).map(|i| i * 8) {
            let v = st.next();
            seg.u64_at(off).store(v, Ordering::Relaxed);
        }
        st.count("segs", 1);
    }
}

fn ring(seg: &Attached, b: usize) {
    let wake = seg.u32_at(SEG_HEADER + b * BLOCK_SIZE + BLOCK_WAKE);
    wake.fetch_add(1, Ordering::Release);
    // Shared (not process-private) futex: it reaches the waiter in its own process.
    let _ = rustix::thread::futex::wake(wake, rustix::thread::futex::Flags::empty(), u32::MAX);
}

/// Rewrites every granted claim (SIGNALED or ABANDONED) of every attachable target segment
/// back to WAITING of the next generation: a real grant made to look like nothing happened.
fn eat_grants(st: &mut State) {
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        st.count("segs", 1);
        for b in 0..seg.blocks() {
            let claim = seg.u64_at(Attached::claim_off(b));
            let c = claim.load(Ordering::Acquire);
            if matches!(c as u32 & !0xFF, CLAIM_SIGNALED | CLAIM_ABANDONED) {
                let next = (c & !0xFFFF_FFFF).wrapping_add(1 << 32);
                claim.store(next | u64::from(CLAIM_WAITING), Ordering::Release);
                st.count("eaten", 1);
            }
        }
    }
}

/// Moves every waiting block of every attachable target segment to the next generation
/// (still WAITING), without ringing it: its queue entries no longer match it.
fn bump_generations(st: &mut State) {
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        st.count("segs", 1);
        for b in 0..seg.blocks() {
            let claim = seg.u64_at(Attached::claim_off(b));
            let c = claim.load(Ordering::Acquire);
            if c as u32 == CLAIM_WAITING {
                claim.store(c.wrapping_add(1 << 32), Ordering::Release);
                st.count("forged", 1);
            }
        }
    }
}

/// Zeroes the first word (the magic) of every attachable target segment, nothing else.
fn smash_headers(st: &mut State) {
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        seg.u64_at(0).store(0, Ordering::Relaxed);
        st.count("segs", 1);
    }
}

/// Rewrites the claim of every waiting block of every attachable target segment: variant
/// 0 SIGNALED(0), 1 ABANDONED(0), 2 the next generation, 3 SIGNALED(1); rings the waiter.
fn forge(st: &mut State, variant: u64) {
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        st.count("segs", 1);
        for b in 0..seg.blocks() {
            let claim = seg.u64_at(Attached::claim_off(b));
            let c = claim.load(Ordering::Acquire);
            if c as u32 != CLAIM_WAITING {
                continue;
            }
            let generation = c & !0xFFFF_FFFF;
            let forged = match variant % 4 {
                0 => generation | u64::from(CLAIM_SIGNALED),
                1 => generation | u64::from(CLAIM_ABANDONED),
                2 => generation.wrapping_add(1 << 32) | u64::from(CLAIM_WAITING),
                _ => generation | u64::from(CLAIM_SIGNALED + 1),
            };
            claim.store(forged, Ordering::Release);
            ring(&seg, b);
            st.count("forged", 1);
        }
    }
}

/// Plants, in every writable object file, entries naming every waiting block it can see
/// (public ones) and every target (private ones root named): pending entries, and with
/// `granted` also entries marked granted; sets WAITERS and leaves the event unset.
fn plant(st: &mut State, granted: bool) {
    let mut names: Vec<(u32, u32, u32, u64)> = st.targets.clone();
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, false) else {
            continue;
        };
        for b in 0..seg.blocks() {
            let c = seg.u64_at(Attached::claim_off(b)).load(Ordering::Acquire);
            if c as u32 == CLAIM_WAITING {
                let who = seg
                    .u64_at(SEG_HEADER + b * BLOCK_SIZE)
                    .load(Ordering::Relaxed);
                names.push((s.id as u32, b as u32, (c >> 32) as u32, who));
            }
        }
    }
    names.truncate(QUEUE_CAPACITY);
    for (_, f) in writable_files(st) {
        for (k, &(seg, block, generation, who)) in names.iter().enumerate() {
            let meta = ENTRY_ANY | if granted { ENTRY_GRANTED } else { 0 };
            let mut e = Vec::with_capacity(ENTRY_SIZE as usize);
            e.extend_from_slice(&seg.to_le_bytes());
            e.extend_from_slice(&block.to_le_bytes());
            e.extend_from_slice(&generation.to_le_bytes());
            e.extend_from_slice(&meta.to_le_bytes());
            e.extend_from_slice(&who.to_le_bytes());
            let _ = f.write_all_at(&e, entry_of(&f, k as u64));
        }
        let _ = f.write_all_at(
            &(names.len() as u32).to_le_bytes(),
            ctl_of(&f) + CTL_QUEUE_LEN,
        );
        let _ = f.write_all_at(&STATE_WAITERS.to_le_bytes(), ctl_of(&f) + CTL_STATE);
        st.count("planted", names.len() as u64);
    }
}

/// Plants non-objects under object names in the `Global\\` namespace (see the module doc).
fn squat(st: &mut State, name: &str) {
    let global = st.root.join("global");
    let at = |suffix: &str| global.join(format!("o{name}-{suffix}"));
    let junk = st.bytes(100);
    let plant = |path: &Path| {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("plant a file");
        f.write_all_at(&junk, 0).expect("write");
        f
    };
    drop(plant(&at("file")));
    let locked = plant(&at("locked"));
    rustix::fs::flock(&locked, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    st.held.push(locked);
    let fifo = std::process::Command::new("mkfifo")
        .arg(at("fifo"))
        .status()
        .expect("run mkfifo");
    assert!(fifo.success(), "mkfifo failed");
    let target = fs::read_dir(&global)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().contains(name))
        .unwrap_or_else(|| PathBuf::from("/etc/hostname"));
    std::os::unix::fs::symlink(target, at("link")).expect("symlink");
    fs::create_dir(at("dir")).expect("mkdir");
    st.count("squatted", 5);
}

/// This thread's procsync identity: tid | (start time & 2^30-1) << 32.
fn identity() -> u64 {
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let start: u64 = after
        .split(' ')
        .nth(19)
        .and_then(|s| s.parse().ok())
        .expect("start time");
    u64::from(tid) | (start & 0x3FFF_FFFF) << 32
}

/// Holds the lock of every writable object in this (live) thread's name, with WAITERS set
/// so that every operation needs the lock.
fn lock(st: &mut State) {
    let me = identity();
    for (_, f) in writable_files(st) {
        let mut state = [0u8; 8];
        let _ = f.read_exact_at(&mut state, ctl_of(&f) + CTL_STATE);
        let state = u64::from_le_bytes(state) | STATE_WAITERS;
        let _ = f.write_all_at(&me.to_le_bytes(), ctl_of(&f) + CTL_LOCK);
        let _ = f.write_all_at(&state.to_le_bytes(), ctl_of(&f) + CTL_STATE);
        st.count("locked", 1);
    }
}

/// One random blow per writable file and per attachable segment.
fn chaos(st: &mut State) {
    let files = writable_files(st);
    for (_, f) in &files {
        match st.next() % 6 {
            0 => {
                let _ = f.set_len(st.next() % 8192);
                let _ = f.set_len(4096);
            }
            1 => punch(f),
            2 => {
                let junk = st.bytes(8);
                let _ = f.write_all_at(&junk, (st.next() % 4088) & !7);
            }
            3 => {
                let junk = st.bytes(4096);
                let _ = f.write_all_at(&junk, 0);
            }
            _ => {}
        }
        st.count("files", 1);
    }
    drop(files);
    if st.next().is_multiple_of(4) {
        plant(st, st.rng.is_multiple_of(2));
    }
    for s in target_segments(st) {
        let Ok(seg) = Attached::new(s.id, s.size, true) else {
            st.count("seg_denied", 1);
            continue;
        };
        st.count("segs", 1);
        for _ in 0..4 {
            let off = (st.next() as usize % (s.size / 8)) * 8;
            let v = st.next();
            match st.next() % 3 {
                0 => seg.u64_at(off).store(v, Ordering::Relaxed),
                1 if seg.blocks() > 0 => {
                    let b = v as usize % seg.blocks();
                    let claim = seg.u64_at(Attached::claim_off(b));
                    let c = claim.load(Ordering::Acquire);
                    let state =
                        [CLAIM_SIGNALED, CLAIM_ABANDONED, CLAIM_WAITING, 0][(v >> 8) as usize % 4];
                    claim.store((c & !0xFFFF_FFFF) | u64::from(state), Ordering::Release);
                    ring(&seg, b);
                }
                _ => {}
            }
        }
    }
}
