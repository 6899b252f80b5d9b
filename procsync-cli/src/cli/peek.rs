//! A read-only look at the header and control block of an object file (layout versions
//! 1 to 4 of docs/ARCHITECTURE.md, "The object file"), for what the library's handle API
//! does not report and an operator wants to see: the layout version, the creator's uid,
//! the thread that owns a mutex, and a timer's due time.
//!
//! It reads the file's page with one `read` and never writes, locks or maps; the values
//! are a racy snapshot, shown for information only. Object *states* come from the
//! library's `query`, never from here. The control block is at offset 64 in versions 1
//! and 2, and at `64 + 192 * (object_id % 21)` in versions 3 and 4 (its "colour"). Other
//! layouts are reported by version number and nothing else is decoded.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::time::{ClockId, clock_gettime};

const MAGIC: &[u8; 8] = b"PSYNCOB1";
const PAGE: usize = 4096;
/// Control-block positions of layout versions 3 and 4.
const COLOURS: u64 = 21;
const OWNER_MASK: u64 = (1 << 62) - 1;
const TIMER_REALTIME: u64 = 1 << 2;

/// What the header says.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// The layout version (offset 8).
    pub version: u32,
    /// The type: 1 event, 2 mutex, 3 semaphore, 4 timer (offset 12).
    pub kind: u32,
    /// The creator's uid (offset 36).
    pub creator_uid: u32,
    /// For a mutex: the owning thread's tid, 0 when unowned.
    pub owner_tid: u32,
    /// For an armed timer: when it is due, in milliseconds since the Unix epoch.
    pub due_unix_ms: Option<i64>,
    /// For a timer: its period in milliseconds (0: one-shot).
    pub period_ms: u64,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

fn now_ns(clock: ClockId) -> i128 {
    let t = clock_gettime(clock);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// Reads the header of the object file at `path`; `None` if it cannot be read or is
/// not a procsync object file.
pub fn header(path: &Path) -> Option<Header> {
    let mut buf = vec![0u8; PAGE];
    File::open(path).ok()?.read_exact(&mut buf).ok()?;
    if &buf[..8] != MAGIC {
        return None;
    }
    let version = u32_at(&buf, 8);
    let ctl = match version {
        1 | 2 => 64,
        3 | 4 => 64 + 192 * (u64_at(&buf, 16) % COLOURS) as usize,
        _ => {
            return Some(Header {
                version,
                ..Header::default()
            });
        }
    };
    let kind = u32_at(&buf, 12);
    let state = u64_at(&buf, ctl + 16);
    let mut h = Header {
        version,
        kind,
        creator_uid: u32_at(&buf, 36),
        ..Header::default()
    };
    match kind {
        2 => h.owner_tid = ((state & OWNER_MASK) & 0xFFFF_FFFF) as u32,
        4 => {
            let due = i128::from(u64_at(&buf, ctl + 40));
            h.period_ms = u64_at(&buf, ctl + 48) / 1_000_000;
            let armed = state & 0b10 != 0;
            if armed {
                let wall = if state & TIMER_REALTIME != 0 {
                    due
                } else {
                    due - now_ns(ClockId::Monotonic) + now_ns(ClockId::Realtime)
                };
                h.due_unix_ms = i64::try_from(wall / 1_000_000).ok();
            }
        }
        _ => {}
    }
    Some(h)
}

/// Whether the object file at `path` is a mutex that records an owner. In an orphan
/// (a file no live process holds), that means its last holder died owning it: a clean
/// exit releases a mutex before it closes the handle.
pub fn owned_mutex(path: &Path) -> bool {
    header(path).is_some_and(|h| (1..=4).contains(&h.version) && h.kind == 2 && h.owner_tid != 0)
}

/// The process a thread belongs to (`Tgid` in `/proc/<tid>/status`).
pub fn pid_of_thread(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}
