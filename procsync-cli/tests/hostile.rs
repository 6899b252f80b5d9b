//! Hostile and corrupt object files, the fuzz corpus, and limits (docs/ARCHITECTURE.md,
//! "Security model and honest limits", "Limits", "Testing crash safety").
//!
//! Objects are created by real `procsync repl` processes on a fresh `PROCSYNC_ROOT` (the
//! harness of `tests/procs/`), then this test — playing a hostile process with write access —
//! rewrites the file under `<root>/local-<uid>/o<name>`: truncated, extended, filled with
//! garbage, header fields set to impossible values, state words that no procsync process
//! would write (a count above the maximum, an owner that never existed, a lock held by a
//! dead or live thread, a queue full of garbage), or the name replaced by a symlink, a
//! directory or a FIFO. Every case must give a clear error (`err io … not a valid procsync
//! object …`, `err access-denied …`) or a recovered state, within a bounded time, and the
//! REPL must go on answering: never a panic (the REPL answers a caught panic with
//! `err io the command panicked`, which these tests reject), never a hang.
//!
//! The offsets are those of the layout drawing in `src/shm/layout.rs`.
//!
//! Also here: every file of the fuzz corpus (`fuzz/corpus/open_object/`) through
//! `procsync::__fuzz_open_object` (the fuzz target's entry point), a mutation loop over the
//! corpus for machines without cargo-fuzz (`#[ignore]`), the generator of the seed corpus
//! (`#[ignore]`), and the descriptor limit.

#[path = "procs/harness.rs"]
mod harness;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use harness::{Repl, Root, unique, wait_for_waiters};

// Offsets of `src/shm/layout.rs` (layout version 4). The header's are fixed; the
// control block sits where the object's colour puts it ([`ctl_at`]), and queue entry
// `k` in the slots around it ([`entry_at`]).
const OFF_VERSION: u64 = 8;
const OFF_KIND: u64 = 12;
const OFF_OBJECT_ID: u64 = 16;
const OFF_PARAM: u64 = 24;
const OFF_SIZE: u64 = 28;
const OFF_CAPACITY: u64 = 32;
const OFF_RESERVED: u64 = 40;
// In the control block.
const CTL_LOCK: u64 = 0;
const CTL_STATE: u64 = 16;
const CTL_RECURSION: u64 = 24;
const CTL_QUEUE_LEN: u64 = 28;
const CTL_OVERFLOW: u64 = 32;
const CTL_TIMER: u64 = 40;
const QUEUE_CAPACITY: u64 = 165;
/// Bytes of one queue entry.
const ENTRY_SIZE: usize = 24;
/// Control-block positions (`CTL_COLOURS`): slot `8 * (object_id % 21)`.
const COLOURS: u64 = 21;

/// Offset of the control block of the object whose id is `id`.
fn ctl_at_id(id: u64) -> u64 {
    64 + 192 * (id % COLOURS)
}

/// Offset of queue entry `k` of the object whose id is `id` (the three slots of the
/// control block are skipped).
fn entry_at_id(id: u64, k: u64) -> u64 {
    let first = 8 * (id % COLOURS);
    64 + ENTRY_SIZE as u64 * if k < first { k } else { k + 3 }
}

fn id_in(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"))
}

/// [`ctl_at_id`] of the object file at `path`.
fn ctl_at(path: &Path) -> u64 {
    ctl_at_id(read_u64(path, OFF_OBJECT_ID))
}

/// [`entry_at_id`] of the object file at `path`.
fn entry_at(path: &Path, k: u64) -> u64 {
    entry_at_id(read_u64(path, OFF_OBJECT_ID), k)
}

/// Writes `queue` (whole entries) as the queue of the object file at `path`.
fn patch_queue(path: &Path, queue: &[u8]) {
    for (k, e) in queue.chunks(ENTRY_SIZE).enumerate() {
        patch(path, entry_at(path, k as u64), e);
    }
}
const WAITERS: u64 = 1 << 63;
const ENTRY_ANY: u32 = 1;
/// A segment id that names nothing a waiter created (ids are small counters).
const NO_SEGMENT: u32 = u32::MAX;

/// How long any command, or a wait beyond its timeout, may take in these tests: a hang is
/// anything longer. Lock recovery from a dead holder costs 20 ms slices.
const BOUND: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Helpers

fn uid_of(root: &Root) -> u32 {
    fs::metadata(root.path()).expect("root").uid()
}

/// The file of the `Local\` object `name` (plain names: `[A-Za-z0-9._-]` only).
fn object_file(root: &Root, name: &str) -> PathBuf {
    root.path()
        .join(format!("local-{}", uid_of(root)))
        .join(format!("o{name}"))
}

fn patch(path: &Path, off: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open object file for writing");
    f.write_all_at(bytes, off).expect("patch object file");
}

fn patch_u32(path: &Path, off: u64, v: u32) {
    patch(path, off, &v.to_le_bytes());
}

fn patch_u64(path: &Path, off: u64, v: u64) {
    patch(path, off, &v.to_le_bytes());
}

fn read_u64(path: &Path, off: u64) -> u64 {
    let mut b = [0u8; 8];
    fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut b, off))
        .expect("read object file");
    u64::from_le_bytes(b)
}

fn read_u32(path: &Path, off: u64) -> u32 {
    let mut b = [0u8; 4];
    fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut b, off))
        .expect("read object file");
    u32::from_le_bytes(b)
}

/// Puts the original bytes back (and the original size).
fn restore(path: &Path, good: &[u8]) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open object file");
    f.set_len(good.len() as u64).expect("resize");
    f.write_all_at(good, 0).expect("restore");
}

/// A thread's identity as procsync writes it: tid | (start time & 0x3FFF_FFFF) << 32.
fn identity_of(tid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{tid}/stat")).expect("stat of a live thread");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let start: u64 = after
        .split(' ')
        .nth(19)
        .expect("starttime")
        .parse()
        .expect("number");
    u64::from(tid) | ((start & 0x3FFF_FFFF) << 32)
}

/// A tid no thread can have (above the kernel's maximum, 2^22).
const NEVER_TID: u64 = 0x3FFF_FF00;

/// Small deterministic garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Asserts that an answer is a well-formed protocol answer and not a caught panic.
#[track_caller]
fn sane(r: &Repl<'_>, cmd: &str, answer: &str) {
    let ok = ["ok", "signaled", "abandoned", "timeout", "err "]
        .iter()
        .any(|p| answer.starts_with(p));
    if !ok || answer.contains("panicked") {
        r.fail(&format!("`{cmd}`: answered `{answer}`: not a clean answer"));
    }
}

/// Sends `cmd`, requires a sane answer within `timeout_ms` + [`BOUND`], and returns it.
#[track_caller]
fn bounded(r: &mut Repl<'_>, cmd: &str, timeout_ms: u64) -> String {
    let start = Instant::now();
    r.send(cmd);
    let answer = r.answer_within(Duration::from_millis(timeout_ms) + BOUND);
    sane(r, cmd, &answer);
    let took = start.elapsed();
    if took > Duration::from_millis(timeout_ms) + BOUND {
        r.fail(&format!("`{cmd}` took {took:?}"));
    }
    answer
}

/// Requires `err io … not a valid procsync object (… why …) …`.
#[track_caller]
fn expect_corrupt(r: &mut Repl<'_>, cmd: &str, why: &str) {
    let a = bounded(r, cmd, 0);
    if !(a.starts_with("err io ") && a.contains("not a valid procsync object") && a.contains(why)) {
        r.fail(&format!(
            "`{cmd}`: expected `err io … not a valid procsync object ({why}) …`, got `{a}`"
        ));
    }
}

/// The REPL still answers.
#[track_caller]
/// The answer of `waiters <alias>` as a number (within [`BOUND`], like every command here).
fn waiters_of(r: &mut Repl<'_>, alias: &str, ctx: &str) -> usize {
    let got = bounded(r, &format!("waiters {alias}"), 0);
    got.strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| r.fail(&format!("{ctx}: `waiters {alias}` answered `{got}`")))
}

fn alive(r: &mut Repl<'_>) {
    r.expect_ok_number("pid");
}

// ---------------------------------------------------------------------------------------------
// Corrupt headers: a clear error at open

#[test]
fn corrupt_headers_and_sizes_are_clear_errors_at_open() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-hdr");
    a.expect(
        &format!("create semaphore s name={n} initial=1 max=3"),
        "ok created",
    );
    let path = object_file(&root, &n);
    let good = fs::read(&path).expect("object file");
    assert_eq!(good.len(), 4096);

    type Mutation = Box<dyn Fn(&Path)>;
    let set_len = |len: u64| -> Mutation {
        Box::new(move |p: &Path| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len)
                .unwrap()
        })
    };
    let fill = |byte: u8| -> Mutation { Box::new(move |p: &Path| patch(p, 0, &[byte; 4096])) };
    let u32_at = |off: u64, v: u32| -> Mutation { Box::new(move |p: &Path| patch_u32(p, off, v)) };
    let u64_at = |off: u64, v: u64| -> Mutation { Box::new(move |p: &Path| patch_u64(p, off, v)) };
    // (what, mutation, the reason the error must give)
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "truncated to 100 bytes",
            set_len(100),
            "wrong file size or type",
        ),
        (
            "truncated to 0 bytes",
            set_len(0),
            "wrong file size or type",
        ),
        (
            "truncated by one byte",
            set_len(4095),
            "wrong file size or type",
        ),
        (
            "extended to 8192 bytes",
            set_len(8192),
            "wrong file size or type",
        ),
        (
            "extended by one byte",
            set_len(4097),
            "wrong file size or type",
        ),
        ("filled with 0xA5", fill(0xA5), "bad magic"),
        ("filled with zeros", fill(0), "bad magic"),
        (
            "magic off by one bit",
            u64_at(0, u64::from_le_bytes(*b"PSYNCOB1") ^ 1),
            "bad magic",
        ),
        (
            "layout version 1 (an older build's)",
            u32_at(OFF_VERSION, 1),
            "unknown layout version",
        ),
        (
            "layout version 3 (a build without the event bank)",
            u32_at(OFF_VERSION, 3),
            "unknown layout version",
        ),
        (
            "layout version 0xFFFFFFFF",
            u32_at(OFF_VERSION, u32::MAX),
            "unknown layout version",
        ),
        ("unknown kind 9", u32_at(OFF_KIND, 9), "unknown object type"),
        ("unknown kind 0", u32_at(OFF_KIND, 0), "unknown object type"),
        (
            "a mutex with a semaphore's parameter",
            u32_at(OFF_KIND, 2),
            "impossible parameter",
        ),
        (
            "an event with a semaphore's parameter",
            u32_at(OFF_KIND, 1),
            "impossible parameter",
        ),
        ("object id 0", u64_at(OFF_OBJECT_ID, 0), "object id is zero"),
        (
            "semaphore max 0",
            u32_at(OFF_PARAM, 0),
            "impossible parameter",
        ),
        (
            "semaphore max 2^31",
            u32_at(OFF_PARAM, 0x8000_0000),
            "impossible parameter",
        ),
        ("size field 8192", u32_at(OFF_SIZE, 8192), "bad size field"),
        (
            "queue capacity 166",
            u32_at(OFF_CAPACITY, 166),
            "bad queue capacity",
        ),
        (
            "queue capacity 0xFFFFFFFF",
            u32_at(OFF_CAPACITY, u32::MAX),
            "bad queue capacity",
        ),
        (
            "reserved bytes set",
            u64_at(OFF_RESERVED + 16, 1 << 40),
            "reserved header bytes",
        ),
    ];
    for (what, mutate, why) in cases {
        mutate(&path);
        // A fresh open (B) and a new alias in the holder (A) both refuse it; neither dies.
        expect_corrupt(&mut b, &format!("open semaphore x name={n}"), why);
        alive(&mut b);
        expect_corrupt(&mut a, &format!("open semaphore y name={n}"), why);
        alive(&mut a);
        restore(&path, &good);
        b.expect(&format!("open semaphore x name={n}"), "ok");
        let q = b.ask("query x");
        if q != "ok semaphore count=1 max=3" {
            b.fail(&format!("after restoring from `{what}`: `query x` = `{q}`"));
        }
        b.expect("close x", "ok");
    }
    // The holder's own handle was never used while the file was broken; it still works.
    a.expect("query s", "ok semaphore count=1 max=3");
    a.expect("wait s timeout=0", "signaled");
    a.expect("release s", "ok 0");
}

// ---------------------------------------------------------------------------------------------
// Impossible state words: an error or a recovered state

#[test]
fn semaphore_count_above_max_is_a_clear_error() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-count");
    a.expect(
        &format!("create semaphore s name={n} initial=1 max=3"),
        "ok created",
    );
    b.expect(&format!("open semaphore s name={n}"), "ok");
    let path = object_file(&root, &n);
    for state in [
        9u64,
        0x7FFF_FFFF,
        WAITERS | 5,
        1 << 40 | 1,
        WAITERS | (1 << 35),
    ] {
        patch_u64(&path, ctl_at(&path) + CTL_STATE, state);
        expect_corrupt(&mut b, "query s", "semaphore count above its maximum");
        expect_corrupt(&mut b, "release s", "semaphore count above its maximum");
        expect_corrupt(&mut a, "query s", "semaphore count above its maximum");
        // A wait may take a unit or refuse; it must answer, in time, cleanly.
        bounded(&mut a, "wait s timeout=50", 50);
        bounded(&mut b, "waitall s timeout=50", 50);
        bounded(&mut b, "waitany s timeout=0", 0);
        alive(&mut a);
        alive(&mut b);
        patch_u64(&path, ctl_at(&path) + CTL_STATE, 1);
        b.expect("query s", "ok semaphore count=1 max=3");
    }
    b.expect("wait s timeout=0", "signaled");
    b.expect("release s", "ok 0");
}

#[test]
fn mutex_owned_by_a_thread_that_never_existed_is_abandoned() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-owner");
    a.expect(&format!("create mutex m name={n}"), "ok created");
    b.expect(&format!("open mutex m name={n}"), "ok");
    let path = object_file(&root, &n);
    let a_pid = a.pid();
    // (owner identity, recursion): a tid above pid_max; a live process's tid with another
    // start time (a recycled id must not pass for the owner); start time 0; all ones.
    let owners = [
        (NEVER_TID | (12_345 << 32), 7u32),
        ((identity_of(a_pid) ^ (1 << 32)) & ((1 << 62) - 1), 1),
        (u64::from(a_pid), 0),
        ((1 << 62) - 1, u32::MAX),
    ];
    for (owner, recursion) in owners {
        patch_u64(&path, ctl_at(&path) + CTL_STATE, owner);
        patch_u32(&path, ctl_at(&path) + CTL_RECURSION, recursion);
        // Query finds the owner dead: free and abandoned (AB-04).
        let q = bounded(&mut b, "query m", 0);
        if q != "ok mutex owner=none recursion=0 abandoned=1" {
            b.fail(&format!(
                "owner {owner:#x}: `query m` = `{q}`; expected it free and abandoned"
            ));
        }
        b.expect("wait m timeout=1000", "abandoned");
        b.expect("query m", "ok mutex owner=self recursion=1 abandoned=0");
        b.expect("release m", "ok");
        // Reported once; then normal, for everyone.
        a.expect("wait m timeout=1000", "signaled");
        a.expect("release m", "ok");
    }
    // The same through a blocked waiter: it learns of the dead owner by itself.
    patch_u64(&path, ctl_at(&path) + CTL_STATE, NEVER_TID | (99 << 32));
    patch_u32(&path, ctl_at(&path) + CTL_RECURSION, 1);
    let start = Instant::now();
    a.expect("wait m timeout=5000", "abandoned");
    assert!(start.elapsed() < BOUND);
    a.expect("release m", "ok");
    // A wait-all and a wait-any over it as well.
    patch_u64(&path, ctl_at(&path) + CTL_STATE, NEVER_TID | (98 << 32));
    b.expect(
        &format!("create event e name={}", unique("hostile-owner-ev")),
        "ok created",
    );
    b.expect("set e", "ok");
    b.expect("waitall e m timeout=2000", "abandoned 1");
    b.expect("release m", "ok");
    patch_u64(&path, ctl_at(&path) + CTL_STATE, NEVER_TID | (97 << 32));
    b.expect("waitany e m timeout=2000", "abandoned 1");
    b.expect("release m", "ok");
    a.expect("query m", "ok mutex owner=none recursion=0 abandoned=0");
}

#[test]
fn garbage_lock_words_and_queues_are_recovered() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-q");
    a.expect(&format!("create event e name={n} manual"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    let path = object_file(&root, &n);
    let good = fs::read(&path).expect("object file");
    let mut rng = Rng(0x5EED_1234_5678_9ABC);

    // seg, block, generation, meta, who (a thread identity that never existed).
    let entry = |seg: u32, block: u32, generation: u32, meta: u32| -> Vec<u8> {
        [
            &seg.to_le_bytes()[..],
            &block.to_le_bytes(),
            &generation.to_le_bytes(),
            &meta.to_le_bytes(),
            &0x3FFF_0000_FFFFu64.to_le_bytes(),
        ]
        .concat()
    };
    let any = |index: u32| index | (ENTRY_ANY << 8);
    // Queues: (what, queue bytes, queue_len)
    let mut queues: Vec<(&str, Vec<u8>, u32)> = Vec::new();
    queues.push((
        "a huge queue length over an empty queue",
        vec![0; 3960],
        u32::MAX,
    ));
    queues.push(("random bytes", rng.bytes(3960), 165));
    queues.push((
        "random bytes, length 0x8000_0001",
        rng.bytes(3960),
        0x8000_0001,
    ));
    let mut stale = Vec::new();
    for i in 0..165u32 {
        // Segment ids that may exist, blocks in and out of range, generations that
        // match nothing.
        stale.extend(entry(i % 4, (i * 37) % 50, rng.next() as u32, any(i % 70)));
    }
    queues.push(("decodable entries, stale or out of range", stale, 165));
    let mut foreign = Vec::new();
    for i in 0..165u32 {
        // Segments that do not exist.
        foreign.extend(entry(0x7000_0000 + i % 3, i % 32, 1, any(0)));
    }
    queues.push((
        "a full queue of entries naming unreachable segments",
        foreign,
        165,
    ));
    let mut global = Vec::new();
    for i in 0..8u32 {
        global.extend(entry(NO_SEGMENT, i, rng.next() as u32, any(i)));
    }
    global.resize(3960, 0);
    queues.push(("entries naming no segment", global, 8));

    // Lock words: free, a holder that never existed, a dead process's real thread.
    let dead_pid = {
        let mut c = Command::new("true").spawn().expect("spawn true");
        let pid = c.id();
        c.wait().expect("reap");
        pid
    };
    let locks = [
        0u64,
        NEVER_TID | (5 << 32) | (1 << 63),
        u64::from(dead_pid),
        u64::MAX,
    ];

    for (what, queue, len) in &queues {
        for &lock in &locks {
            restore(&path, &good);
            patch_queue(&path, queue);
            patch_u32(&path, ctl_at(&path) + CTL_QUEUE_LEN, *len);
            patch_u64(&path, ctl_at(&path) + CTL_LOCK, lock);
            patch_u64(&path, ctl_at(&path) + CTL_STATE, WAITERS);
            let ctx = format!("{what}, lock word {lock:#x}");
            // A blocked waiter in A, a signal from B: the waiter must get it (directly or through
            // the overflow path), and nobody may hang or panic.
            // Queued-waiter handshake: the count before (garbage entries that the purge keeps
            // count too), then one more once A's wait is queued.
            let before = waiters_of(&mut b, "e", &ctx);
            a.send("wait e timeout=3000");
            wait_for_waiters(&mut b, "e", before + 1);
            let set = bounded(&mut b, "set e", 0);
            assert_eq!(set, "ok", "{ctx}: set");
            let got = a.answer_within(Duration::from_millis(3000) + BOUND);
            if got != "signaled" {
                a.fail(&format!(
                    "{ctx}: the blocked `wait e` answered `{got}` after `set e`"
                ));
            }
            for cmd in [
                "wait e timeout=0",
                "reset e",
                "waitany e timeout=20",
                "waitall e timeout=20",
                "pulse e",
            ] {
                let timeout = cmd
                    .rsplit("timeout=")
                    .next()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                bounded(&mut b, cmd, timeout);
            }
            let q = bounded(&mut a, "query e", 0);
            assert_eq!(q, "ok event manual unset", "{ctx}");
            let qlen = read_u32(&path, ctl_at(&path) + CTL_QUEUE_LEN);
            assert!(
                u64::from(qlen) <= QUEUE_CAPACITY,
                "{ctx}: queue length left at {qlen}"
            );
            alive(&mut a);
            alive(&mut b);
        }
    }
}

/// A lock word naming a *live* thread that will never release it (only a hostile writer can
/// do that) must not make a wait with a timeout hang past its timeout.
#[test]
fn lock_word_naming_a_live_thread_does_not_hang_a_timed_wait() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-live-lock");
    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    let path = object_file(&root, &n);
    // A's process main thread: alive, and never touches this object's lock.
    patch_u64(&path, ctl_at(&path) + CTL_LOCK, identity_of(a.pid()));
    patch_u64(&path, ctl_at(&path) + CTL_STATE, WAITERS);
    bounded(&mut b, "wait e timeout=200", 200);
    bounded(&mut b, "waitall e timeout=200", 200);
    alive(&mut b);
    patch_u64(&path, ctl_at(&path) + CTL_LOCK, 0);
    b.expect("set e", "ok");
    b.expect("wait e timeout=1000", "signaled");
}

/// A lock word with only CONTENDED set (bit 63, no holder identity), as no procsync process
/// writes it, must not wedge the object: found by the mutation loop (corpus file
/// `state-lock-contended-no-holder`).
#[test]
fn lock_word_contended_without_holder_is_recovered() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-contended");
    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    let path = object_file(&root, &n);
    patch_u64(&path, ctl_at(&path) + CTL_LOCK, 1 << 63);
    patch_u64(&path, ctl_at(&path) + CTL_STATE, WAITERS);
    bounded(&mut b, "wait e timeout=200", 200);
    bounded(&mut a, "set e", 0);
    bounded(&mut b, "wait e timeout=1000", 1000);
    alive(&mut a);
    alive(&mut b);
}

/// A forged queue entry whose index is beyond the waiter's list: the hand-off claims the
/// waiter with that index; the waiter must not index its list with it.
#[test]
fn forged_entry_index_does_not_panic_the_waiter() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-index");
    a.expect(&format!("create event e name={n}"), "ok created");
    b.expect(&format!("open event e name={n}"), "ok");
    let path = object_file(&root, &n);
    a.send("wait e timeout=3000");
    wait_for_waiters(&mut b, "e", 1);
    // Entry 0 is A's: keep its table, block and generation, claim index 63.
    patch_u32(&path, entry_at(&path, 0) + 12, 63 | (ENTRY_ANY << 8));
    b.expect("set e", "ok");
    let got = a.answer_within(Duration::from_millis(3000) + BOUND);
    sane(&a, "wait e timeout=3000", &got);
    alive(&mut a);
    // Whether the bogus claim is believed or refused, the object stays usable.
    let q = bounded(&mut a, "query e", 0);
    assert!(
        q == "ok event auto unset" || q == "ok event auto set",
        "query e: `{q}`"
    );
    b.expect("set e", "ok");
    a.expect("wait e timeout=1000", "signaled");
}

#[test]
fn hostile_timer_words_do_not_hang_or_panic() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-timer");
    a.expect(&format!("create timer t name={n}"), "ok created");
    b.expect(&format!("open timer t name={n}"), "ok");
    let path = object_file(&root, &n);
    const SIGNALED: u64 = 1;
    const ARMED: u64 = 2;
    const REALTIME: u64 = 4;
    // (state, due, period, expirations)
    let cases = [
        (ARMED, 0, 1, 0),
        (ARMED | REALTIME, 0, 1, u64::MAX),
        (ARMED, u64::MAX, u64::MAX, 0),
        (ARMED | REALTIME | SIGNALED, u64::MAX, 0, 0),
        (WAITERS | ARMED, 1, u64::MAX, 0),
        (u64::MAX, u64::MAX, u64::MAX, u64::MAX),
        (WAITERS | 0xF0, 5, 5, 5),
    ];
    for (state, due, period, count) in cases {
        patch_u64(&path, ctl_at(&path) + CTL_STATE, state);
        patch_u64(&path, ctl_at(&path) + CTL_TIMER, due);
        patch_u64(&path, ctl_at(&path) + CTL_TIMER + 8, period);
        patch_u64(&path, ctl_at(&path) + CTL_TIMER + 16, count);
        bounded(&mut a, "query t", 0);
        bounded(&mut b, "wait t timeout=100", 100);
        bounded(&mut a, "waitany t timeout=50", 50);
        bounded(&mut b, "waitall t timeout=50", 50);
        bounded(&mut a, "cancel t", 0);
        alive(&mut a);
        alive(&mut b);
    }
    a.expect("settimer t due=0", "ok");
    b.expect("wait t timeout=2000", "signaled");
}

// ---------------------------------------------------------------------------------------------
// The name replaced by something else

#[test]
fn names_replaced_by_links_directories_and_fifos_are_refused_without_hanging() {
    let root = Root::fresh();
    let (mut a, mut b) = (root.repl(), root.repl());
    let n = unique("hostile-name");
    let other = unique("hostile-target");
    a.expect(&format!("create event e name={n}"), "ok created");
    a.expect(
        &format!("create event o name={other} manual initial"),
        "ok created",
    );
    let path = object_file(&root, &n);
    let target = object_file(&root, &other);
    let moved = path.with_extension("moved");
    fs::rename(&path, &moved).expect("move the object file away");

    let open = format!("open event x name={n}");
    let create = format!("create event x name={n}");
    // A symlink to another valid object file, and one to a file outside the root.
    for link_to in [
        PathBuf::from(target.file_name().unwrap()),
        PathBuf::from("/etc/hostname"),
    ] {
        std::os::unix::fs::symlink(&link_to, &path).expect("symlink");
        for cmd in [&open, &create] {
            let got = bounded(&mut b, cmd, 0);
            if !got.starts_with("err access-denied ") || !got.contains("symlink") {
                b.fail(&format!(
                    "`{cmd}` through a symlink to {}: got `{got}`",
                    link_to.display()
                ));
            }
        }
        alive(&mut b);
        fs::remove_file(&path).expect("remove symlink");
    }
    // A directory.
    fs::create_dir(&path).expect("mkdir");
    for cmd in [&open, &create] {
        let got = bounded(&mut b, cmd, 0);
        if !got.starts_with("err ") {
            b.fail(&format!("`{cmd}` on a directory: got `{got}`"));
        }
    }
    alive(&mut b);
    fs::remove_dir(&path).expect("rmdir");
    // A FIFO: opening it must not block (and it is no object). Unheld, it is an orphan
    // (procsync may remove it); held by someone's shared lock, it must be refused as no object.
    let st = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(st.success());
    let got = bounded(&mut b, &open, 0);
    if !got.starts_with("err ") {
        b.fail(&format!("`{open}` on a FIFO: got `{got}`"));
    }
    alive(&mut b);
    let _ = fs::remove_file(&path);
    let st = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(st.success());
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg("exec 9<>\"$0\" && flock -s 9 && echo locked && exec sleep 60")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a lock holder");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("holder");
    assert_eq!(line.trim(), "locked");
    for cmd in [&open, &create] {
        let got = bounded(&mut b, cmd, 0);
        // Either refused as another file type, or mapped and found to be no object.
        let clear = (got.starts_with("err access-denied ") && got.contains("file type"))
            || (got.starts_with("err io ") && got.contains("not a valid procsync object"));
        if !clear {
            b.fail(&format!(
                "`{cmd}` on a FIFO held by a shared lock: got `{got}`"
            ));
        }
    }
    alive(&mut b);
    let _ = holder.kill();
    let _ = holder.wait();
    fs::remove_file(&path).expect("remove fifo");
    // Put the object back.
    fs::rename(&moved, &path).expect("restore object file");
    // A live object file owned by someone else (needs root to plant).
    if uid_of(&root) == 0 {
        std::os::unix::fs::chown(&path, Some(4242), None).expect("chown");
        let got = bounded(&mut b, &open, 0);
        if !got.starts_with("err access-denied ") {
            b.fail(&format!(
                "`{open}` on a file owned by uid 4242: got `{got}`"
            ));
        }
        alive(&mut b);
        std::os::unix::fs::chown(&path, Some(0), None).expect("chown back");
    }
    // The namespace directory itself: a symlink, or a too-wide mode (a fresh process checks).
    let ns = path.parent().unwrap().to_path_buf();
    let ns_moved = ns.with_extension("moved");
    fs::rename(&ns, &ns_moved).expect("move namespace dir");
    std::os::unix::fs::symlink(ns_moved.file_name().unwrap(), &ns).expect("symlink namespace");
    {
        // Never followed. Root, whose namespace it is, moves the link out of the way and
        // makes a fresh directory (SECURITY.md: a squatter cannot lock a user out), so the
        // object behind the link is simply not there; another user would be refused.
        let mut c = root.repl();
        let got = bounded(&mut c, &format!("open event o name={other}"), 0);
        let refused = got.starts_with("err access-denied ");
        let moved_away = uid_of(&root) == 0 && got.starts_with("err not-found ");
        if !(refused || moved_away) {
            c.fail(&format!(
                "namespace directory replaced by a symlink: got `{got}`"
            ));
        }
        c.exit();
    }
    if fs::symlink_metadata(&ns).expect("stat ns").is_dir() {
        fs::remove_dir(&ns).expect("remove the fresh namespace directory");
        for e in fs::read_dir(ns.parent().unwrap()).expect("read root") {
            let e = e.expect("entry");
            if e.file_name().to_string_lossy().starts_with(".squatted-") {
                fs::remove_file(e.path()).expect("remove the moved link");
            }
        }
    } else {
        fs::remove_file(&ns).expect("remove namespace symlink");
    }
    fs::rename(&ns_moved, &ns).expect("restore namespace dir");
    fs::set_permissions(&ns, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    {
        let mut c = root.repl();
        let got = bounded(&mut c, &format!("open event o name={other}"), 0);
        if !got.starts_with("err access-denied ") {
            c.fail(&format!("namespace directory with mode 0777: got `{got}`"));
        }
        c.exit();
    }
    fs::set_permissions(&ns, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    // Everything works again.
    b.expect(&open, "ok");
    b.expect("set x", "ok");
    a.expect("wait e timeout=1000", "signaled");
    b.expect(&format!("open event o name={other}"), "ok");
    b.expect("wait o timeout=0", "signaled");
}

// ---------------------------------------------------------------------------------------------
// The fuzz corpus

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../procsync/fuzz/corpus/open_object")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/open_object")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("corpus file"),
            )
        })
        .collect();
    files.sort();
    files
}

/// How one fuzz input went.
enum Outcome {
    /// `__fuzz_open_object` returned (`Ok`: validated and operated on; `Err`: refused).
    Returned(Result<String, String>),
    /// It panicked, with this message.
    Panicked(String),
    /// It did not return within [`BOUND`] (its thread is left behind, stuck).
    Hung,
}

/// Runs one input through the fuzz entry point on a thread of its own, under a watchdog.
fn fuzz_one(bytes: &[u8]) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let input = bytes.to_vec();
    thread::spawn(move || {
        let r = std::panic::catch_unwind(|| procsync::__fuzz_open_object(&input));
        let _ = tx.send(r.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into())
        }));
    });
    match rx.recv_timeout(BOUND) {
        Ok(Ok(r)) => Outcome::Returned(r),
        Ok(Err(p)) => Outcome::Panicked(p),
        Err(_) => Outcome::Hung,
    }
}

#[test]
fn fuzz_corpus_runs_without_panic() {
    let files = corpus();
    assert!(
        files.len() >= 20,
        "the seed corpus is missing: {} files in {}",
        files.len(),
        corpus_dir().display()
    );
    let mut valid = 0;
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        match fuzz_one(bytes) {
            Outcome::Returned(Ok(_)) => valid += 1,
            // Refused inputs must say why, in the documented form.
            Outcome::Returned(Err(e)) => assert!(
                e.contains("not a valid procsync object"),
                "{name}: unclear error `{e}`"
            ),
            Outcome::Panicked(p) => failures.push(format!("{name}: panicked: {p}")),
            Outcome::Hung => failures.push(format!("{name}: no return within {BOUND:?} (hang)")),
        }
    }
    assert!(
        failures.is_empty(),
        "corpus inputs that panic or hang: {failures:#?}"
    );
    assert!(
        valid >= 8,
        "only {valid} corpus files validate: the corpus should hold valid objects too"
    );
}

/// A mutation fuzzer for machines without cargo-fuzz: `PROCSYNC_FUZZ_ITERS` (default 20000)
/// random mutations of the corpus (less the files named in `PROCSYNC_FUZZ_EXCLUDE`) through
/// the fuzz entry point, each under a watchdog; `PROCSYNC_FUZZ_SEED` picks the mutations.
/// Inputs that panic or hang are saved under `target/fuzz-failures/`. Run with
/// `cargo test --release --test hostile fuzz_mutation_loop -- --ignored --nocapture`.
#[test]
#[ignore = "a fuzzing run; minutes"]
fn fuzz_mutation_loop() {
    let iters: u64 = std::env::var("PROCSYNC_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("PROCSYNC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE);
    // Corpus files to leave out (comma-separated names), to look past a known bug.
    let exclude = std::env::var("PROCSYNC_FUZZ_EXCLUDE").unwrap_or_default();
    let files: Vec<_> = corpus()
        .into_iter()
        .filter(|(name, _)| !exclude.split(',').any(|x| x == name))
        .collect();
    let mut rng = Rng(seed | 1);
    let mut ran = 0;
    let interesting: [u64; 12] = [
        0,
        1,
        2,
        3,
        0x7F,
        0xFF,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        1 << 62,
        1 << 63,
        u64::MAX,
    ];
    // Header fields (absolute), then control-block fields (relative to the block).
    let header_fields = [0u64, 8, 12, 16, 24, 28, 32, 36, 40];
    let ctl_fields = [0u64, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56];
    let (mut valid, mut panics) = (0u64, Vec::new());
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..iters {
        let base = &files[(rng.next() % files.len() as u64) as usize].1;
        let mut b = base.clone();
        for _ in 0..1 + rng.next() % 4 {
            if b.is_empty() {
                b = vec![0; 4096];
            }
            let len = b.len() as u64;
            match rng.next() % 9 {
                0 => {
                    let k = (rng.next() % len) as usize;
                    b[k] ^= 1 << (rng.next() % 8);
                }
                1 => {
                    let k = (rng.next() % len) as usize;
                    b[k] = rng.next() as u8;
                }
                2 | 3 => {
                    let k = (rng.next() % (header_fields.len() + ctl_fields.len()) as u64) as usize;
                    let off = match (header_fields.get(k), b.len() >= 24) {
                        (Some(&h), _) => h as usize,
                        (None, true) => {
                            (ctl_at_id(id_in(&b)) + ctl_fields[k - header_fields.len()]) as usize
                        }
                        (None, false) => 0,
                    };
                    let v = interesting[(rng.next() % interesting.len() as u64) as usize];
                    let w = if rng.next().is_multiple_of(2) { 4 } else { 8 };
                    if off + w <= b.len() {
                        b[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
                    }
                }
                4 => {
                    // A queue entry: random but decodable.
                    let (e, q) = if b.len() >= 24 {
                        let id = id_in(&b);
                        let k = rng.next() % QUEUE_CAPACITY;
                        (
                            entry_at_id(id, k) as usize,
                            (ctl_at_id(id) + CTL_QUEUE_LEN) as usize,
                        )
                    } else {
                        (usize::MAX - ENTRY_SIZE, 0)
                    };
                    if e + ENTRY_SIZE <= b.len() {
                        let meta = (rng.next() % 64) as u32 | ((1 + rng.next() % 2) as u32) << 8;
                        b[e..e + 4].copy_from_slice(&(rng.next() as u32 % 3).to_le_bytes());
                        b[e + 4..e + 8]
                            .copy_from_slice(&((rng.next() % 4200) as u32).to_le_bytes());
                        b[e + 8..e + 12].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                        b[e + 12..e + 16].copy_from_slice(&meta.to_le_bytes());
                        b[e + 16..e + 24].copy_from_slice(&rng.next().to_le_bytes());
                        b[q..q + 4].copy_from_slice(&((rng.next() % 170) as u32).to_le_bytes());
                    }
                }
                5 => {
                    // Splice with another corpus file.
                    let other = &files[(rng.next() % files.len() as u64) as usize].1;
                    let k = (rng.next() % len) as usize;
                    let end = other.len().min(b.len());
                    if k < end {
                        b[k..end].copy_from_slice(&other[k..end]);
                    }
                }
                6 => b.truncate((rng.next() % (len + 1)) as usize),
                7 => {
                    let n = (rng.next() % 64) as usize;
                    b.extend(rng.bytes(n));
                }
                _ => {
                    let k = (rng.next() % len) as usize;
                    let n = ((rng.next() % 64) as usize).min(b.len() - k);
                    let g = rng.bytes(n);
                    b[k..k + n].copy_from_slice(&g);
                }
            }
        }
        let t = Instant::now();
        ran += 1;
        let failure = match fuzz_one(&b) {
            Outcome::Returned(Ok(_)) => {
                valid += 1;
                None
            }
            Outcome::Returned(Err(_)) => None,
            Outcome::Panicked(p) => Some(("panic", p)),
            Outcome::Hung => Some(("hang", format!("no return within {BOUND:?}"))),
        };
        if let Some((what, detail)) = failure {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            let _ = fs::create_dir_all(&dir);
            let file = dir.join(format!("{what}-{seed}-{i}"));
            let _ = fs::write(&file, &b);
            panics.push(format!(
                "iteration {i}: {what}: {detail} (input saved to {})",
                file.display()
            ));
            if panics.len() >= 10 {
                break;
            }
        }
        slowest = slowest.max(t.elapsed());
    }
    println!(
        "fuzz mutation loop: seed {seed}, {ran} inputs in {:.1} s, {valid} validated and were operated on, slowest {} ms, {} panics or hangs",
        start.elapsed().as_secs_f64(),
        slowest.as_millis(),
        panics.len()
    );
    assert!(panics.is_empty(), "{panics:#?}");
}

/// Writes the seed corpus: object files made by real REPLs in various states, and
/// mutations of them. Run once with
/// `cargo test --release --test hostile generate_fuzz_corpus -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus/open_object; run by hand"]
fn generate_fuzz_corpus() {
    let root = Root::fresh();
    let (mut a, mut b, mut c) = (root.repl(), root.repl(), root.repl());
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut snap = |label: &str, name: &str| {
        let bytes = fs::read(object_file(&root, name)).expect("object file");
        out.push((label.to_string(), bytes));
    };
    let nm = |s: &str| unique(&format!("corpus-{s}"));

    let ev = nm("event");
    a.expect(&format!("create event e name={ev}"), "ok created");
    snap("event-auto-unset", &ev);
    a.expect("set e", "ok");
    snap("event-auto-set", &ev);
    let evm = nm("manual");
    a.expect(
        &format!("create event em name={evm} manual initial"),
        "ok created",
    );
    snap("event-manual-set", &evm);
    // Waiters queued: two single waits and a wait-all.
    a.expect("reset e", "ok");
    b.expect(&format!("open event e name={ev}"), "ok");
    c.expect(&format!("open event e name={ev}"), "ok");
    c.expect(&format!("open event em name={evm}"), "ok");
    a.expect("reset em", "ok");
    b.send("wait e timeout=5000");
    c.send("waitall e em timeout=5000");
    a.send("@t2 wait e timeout=5000");
    wait_for_waiters(&mut a, "e", 3);
    wait_for_waiters(&mut a, "em", 1);
    snap("event-auto-3-waiters", &ev);
    snap("event-manual-1-waitall", &evm);
    a.expect("set em", "ok");
    a.expect("set e", "ok");
    a.expect("set e", "ok");
    a.expect("set e", "ok");
    for r in [&mut b, &mut c] {
        let got = r.answer();
        assert_eq!(got, "signaled");
    }
    assert_eq!(a.answer_for("@t2"), "@t2 signaled");

    let mx = nm("mutex");
    a.expect(&format!("create mutex m name={mx}"), "ok created");
    snap("mutex-free", &mx);
    a.expect("wait m timeout=0", "signaled");
    a.expect("wait m timeout=0", "signaled");
    snap("mutex-owned-recursion-2", &mx);
    b.expect(&format!("open mutex m name={mx}"), "ok");
    b.send("wait m timeout=5000");
    wait_for_waiters(&mut a, "m", 1);
    snap("mutex-owned-1-waiter", &mx);
    a.expect("release m", "ok");
    a.expect("release m", "ok");
    assert_eq!(b.answer(), "signaled");
    b.expect("@x wait m timeout=0", "@x timeout");
    let mx2 = nm("mutex-abandoned");
    c.expect(&format!("create mutex m2 name={mx2} owned"), "ok created");
    a.expect(&format!("open mutex m2 name={mx2}"), "ok");
    c.kill();
    a.expect("query m2", "ok mutex owner=none recursion=0 abandoned=1");
    snap("mutex-abandoned", &mx2);

    let sm = nm("sem");
    a.expect(
        &format!("create semaphore s name={sm} initial=1 max=3"),
        "ok created",
    );
    snap("semaphore-1-of-3", &sm);
    a.expect("release s count=2", "ok 1");
    snap("semaphore-3-of-3", &sm);
    let sm2 = nm("sem-big");
    a.expect(
        &format!("create semaphore sb name={sm2} initial=0 max=2147483647"),
        "ok created",
    );
    snap("semaphore-0-of-max", &sm2);
    b.expect(&format!("open semaphore sb name={sm2}"), "ok");
    b.send("waitany sb e timeout=5000");
    wait_for_waiters(&mut a, "sb", 1);
    snap("semaphore-1-waiter", &sm2);
    a.expect("release sb", "ok 0");
    assert_eq!(b.answer(), "signaled 0");

    let tm = nm("timer");
    a.expect(&format!("create timer t name={tm}"), "ok created");
    snap("timer-sync-disarmed", &tm);
    a.expect("settimer t due=100000 period=50", "ok");
    snap("timer-sync-armed-periodic", &tm);
    let tm2 = nm("timer-manual");
    a.expect(&format!("create timer tm name={tm2} manual"), "ok created");
    a.expect("settimer tm due=0", "ok");
    a.expect("query tm", "ok timer manual signaled armed=0");
    snap("timer-manual-signaled", &tm2);

    // Mutations of the valid files.
    let base: Vec<(String, Vec<u8>)> = out.clone();
    let find = |l: &str| base.iter().find(|(n, _)| n == l).expect(l).1.clone();
    let mut mutate = |label: &str, from: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = find(from);
        f(&mut b);
        out.push((label.to_string(), b));
    };
    let put32 =
        |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    // Control-block fields and queue entries of the file in `b` (layout version 4).
    let ctl = |b: &Vec<u8>, field: u64| (ctl_at_id(id_in(b)) + field) as usize;
    let entry = |b: &Vec<u8>, k: u64| entry_at_id(id_in(b), k) as usize;
    mutate("bad-empty", "event-auto-unset", &|b| b.clear());
    mutate("bad-truncated-100", "event-auto-unset", &|b| {
        b.truncate(100)
    });
    mutate("bad-truncated-4095", "semaphore-1-of-3", &|b| {
        b.truncate(4095)
    });
    mutate("bad-extended-8192", "mutex-free", &|b| b.resize(8192, 0));
    mutate("bad-zeros", "mutex-free", &|b| b.fill(0));
    mutate("bad-garbage-a5", "mutex-free", &|b| b.fill(0xA5));
    mutate("bad-version-2", "semaphore-1-of-3", &|b| put32(b, 8, 2));
    mutate("bad-version-3", "event-auto-set", &|b| put32(b, 8, 3));
    mutate("bad-kind-9", "semaphore-1-of-3", &|b| put32(b, 12, 9));
    mutate("bad-kind-mutex-with-max", "semaphore-1-of-3", &|b| {
        put32(b, 12, 2)
    });
    mutate("bad-object-id-0", "event-auto-set", &|b| put64(b, 16, 0));
    mutate("bad-sem-max-0", "semaphore-1-of-3", &|b| put32(b, 24, 0));
    mutate("bad-event-param-2", "event-auto-set", &|b| put32(b, 24, 2));
    mutate("bad-size-field", "event-auto-set", &|b| put32(b, 28, 8192));
    mutate("bad-capacity", "event-auto-set", &|b| put32(b, 32, 247));
    mutate("bad-reserved", "event-auto-set", &|b| b[50] = 1);
    mutate("state-sem-count-above-max", "semaphore-1-of-3", &|b| {
        put64(b, ctl(b, CTL_STATE), 9)
    });
    mutate(
        "state-sem-count-waiters-garbage",
        "semaphore-1-of-3",
        &|b| put64(b, ctl(b, CTL_STATE), u64::MAX),
    );
    mutate("state-mutex-owner-never-existed", "mutex-free", &|b| {
        put64(b, ctl(b, CTL_STATE), 0x3FFF_FF00 | (77 << 32));
        put32(b, ctl(b, CTL_RECURSION), 5);
    });
    mutate("state-mutex-owner-all-ones", "mutex-free", &|b| {
        put64(b, ctl(b, CTL_STATE), u64::MAX)
    });
    mutate("state-lock-dead-holder", "event-auto-3-waiters", &|b| {
        put64(b, ctl(b, CTL_LOCK), 0x3FFF_FF00 | (1 << 63))
    });
    // Found by the mutation loop: CONTENDED set in the lock word, and no holder.
    // An event's bank (bits 32..47): full and set, and without the signal it needs.
    mutate("state-event-bank-full", "event-auto-set", &|b| {
        put64(b, ctl(b, CTL_STATE), 0xFFFF_0000_0001)
    });
    mutate("state-event-bank-unset", "event-auto-set", &|b| {
        put64(b, ctl(b, CTL_STATE), 0xFFFF_0000_0000)
    });
    mutate("state-lock-contended-no-holder", "event-auto-set", &|b| {
        put64(b, ctl(b, CTL_LOCK), 1 << 63);
        put64(b, ctl(b, CTL_STATE), (1 << 63) | 2);
    });
    mutate("state-queue-len-huge", "event-auto-3-waiters", &|b| {
        put32(b, ctl(b, CTL_QUEUE_LEN), u32::MAX)
    });
    mutate("state-queue-garbage", "event-auto-3-waiters", &|b| {
        let mut r = Rng(42);
        for k in 0..QUEUE_CAPACITY {
            let (e, g) = (entry(b, k), r.bytes(ENTRY_SIZE));
            b[e..e + ENTRY_SIZE].copy_from_slice(&g);
        }
        put32(b, ctl(b, CTL_QUEUE_LEN), QUEUE_CAPACITY as u32);
    });
    mutate("state-queue-foreign-segments", "semaphore-1-waiter", &|b| {
        for i in 0..QUEUE_CAPACITY as usize {
            let e = entry(b, i as u64);
            b[e..e + 4].copy_from_slice(&(0x7000_0000u32 + i as u32 % 2).to_le_bytes());
            b[e + 4..e + 8].copy_from_slice(&(i as u32 % 32).to_le_bytes());
            b[e + 12..e + 16].copy_from_slice(&(1u32 << 8).to_le_bytes());
            b[e + 16..e + 24].copy_from_slice(&0x3FFF_0000_FFFFu64.to_le_bytes());
        }
        put32(b, ctl(b, CTL_QUEUE_LEN), QUEUE_CAPACITY as u32);
    });
    mutate("state-queue-index-63", "event-auto-3-waiters", &|b| {
        put32(b, entry(b, 0) + 12, 63 | (1 << 8))
    });
    mutate("state-overflow-huge", "event-auto-3-waiters", &|b| {
        put32(b, ctl(b, CTL_OVERFLOW), u32::MAX)
    });
    if base.iter().any(|(n, _)| n == "timer-sync-armed-periodic") {
        mutate(
            "state-timer-period-1ns-due-0",
            "timer-sync-armed-periodic",
            &|b| {
                put64(b, ctl(b, CTL_TIMER), 0);
                put64(b, ctl(b, CTL_TIMER + 8), 1);
            },
        );
        mutate("state-timer-all-ones", "timer-sync-armed-periodic", &|b| {
            put64(b, ctl(b, CTL_STATE), u64::MAX);
            put64(b, ctl(b, CTL_TIMER), u64::MAX);
            put64(b, ctl(b, CTL_TIMER + 8), u64::MAX);
            put64(b, ctl(b, CTL_TIMER + 16), u64::MAX);
        });
    }

    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("corpus dir");
    for (label, bytes) in &out {
        fs::write(dir.join(label), bytes).expect("write corpus file");
    }
    println!("wrote {} corpus files to {}", out.len(), dir.display());
}

// ---------------------------------------------------------------------------------------------
// Limits

/// A `procsync repl` started through `sh -c` (for `ulimit`), driven line by line.
struct ShellRepl {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl ShellRepl {
    fn start(root: &Root, prelude: &str) -> ShellRepl {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude} && exec \"$0\" repl"))
            .arg(harness::BIN)
            .env("PROCSYNC_ROOT", root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut v);
            sink.lock().unwrap().extend(v);
        });
        let stdin = child.stdin.take();
        ShellRepl {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .expect("write to repl");
        self.lines.recv_timeout(BOUND).unwrap_or_else(|_| {
            panic!(
                "`{cmd}`: no answer within {BOUND:?}; stderr: {}",
                String::from_utf8_lossy(&self.stderr.lock().unwrap())
            )
        })
    }

    fn exit(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                assert!(st.success(), "repl exited with {st}");
                return;
            }
            assert!(Instant::now() < deadline, "repl did not exit");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ShellRepl {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn descriptor_limit_is_a_clear_error_and_the_repl_recovers() {
    let root = Root::fresh();
    let mut r = ShellRepl::start(&root, "ulimit -n 64");
    let prefix = unique("fd-limit");
    let mut made = 0;
    let failure = loop {
        assert!(
            made < 200,
            "200 objects opened under `ulimit -n 64`: the limit is not in force"
        );
        let a = r.ask(&format!("create event h{made} name={prefix}-{made}"));
        if a != "ok created" {
            break a;
        }
        made += 1;
    };
    assert!(made >= 20, "only {made} objects before the limit");
    assert!(
        failure.starts_with("err io ")
            && failure.contains("descriptors")
            && failure.contains("ulimit -n"),
        "at the descriptor limit, expected `err io …descriptors… ulimit -n …`, got `{failure}`"
    );
    // Still consistent and usable: existing handles work, the failed name does not exist.
    assert_eq!(r.ask("pid").split(' ').next(), Some("ok"));
    assert_eq!(r.ask("set h0"), "ok");
    assert_eq!(
        r.ask(&format!("waitany h1 h0 h{} timeout=0", made - 1)),
        "signaled 1"
    );
    // Opening an existing name fails the same way, and cleanly.
    let again = r.ask(&format!("open event x name={prefix}-0"));
    assert!(
        again.starts_with("err io ") && again.contains("ulimit -n"),
        "open at the limit: `{again}`"
    );
    for i in 0..4 {
        assert_eq!(r.ask(&format!("close h{i}")), "ok");
    }
    assert_eq!(
        r.ask(&format!("create event h{made} name={prefix}-{made}")),
        "ok created"
    );
    assert_eq!(r.ask(&format!("open event x name={prefix}-{made}")), "ok");
    assert_eq!(r.ask("set x"), "ok");
    assert_eq!(r.ask(&format!("wait h{made} timeout=0")), "signaled");
    // The names closed under the limit are gone; the rest go at exit (the Root checks).
    let mut other = root.repl();
    other.expect_err(&format!("open event y name={prefix}-0"), "not-found");
    other.expect(&format!("open event y name={prefix}-5"), "ok");
    other.exit();
    r.exit();
    println!("descriptor limit: {made} objects under `ulimit -n 64`, then `{failure}`");
}

#[test]
fn more_than_64_objects_in_one_wait_is_invalid_argument() {
    let root = Root::fresh();
    let mut r = root.repl();
    let mut aliases = Vec::new();
    for i in 0..65 {
        r.expect(&format!("create event e{i}"), "ok created");
        aliases.push(format!("e{i}"));
    }
    r.expect_err(
        &format!("waitany {} timeout=0", aliases.join(" ")),
        "invalid-argument",
    );
    r.expect_err(
        &format!("waitall {} timeout=0", aliases.join(" ")),
        "invalid-argument",
    );
    r.expect("set e63", "ok");
    r.expect(
        &format!("waitany {} timeout=0", aliases[..64].join(" ")),
        "signaled 63",
    );
    for a in &aliases[..64] {
        r.expect(&format!("set {a}"), "ok");
    }
    r.expect(
        &format!("waitall {} timeout=1000", aliases[..64].join(" ")),
        "signaled",
    );
}
