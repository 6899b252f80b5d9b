//! Bells: how a signaller wakes a detached wait that an event loop drives, without a
//! futex wait in between.
//!
//! An async runtime sleeps in `epoll_wait`, not in `futex`: to reach it through a
//! futex word takes an io_uring futex wait, whose completion arrives as task work that
//! interrupts `epoll_wait` once before the runtime sees it (about 1.9× the cost of a
//! blocking wait's wake-up, measured in `procsync-bench/experiments/eventfd-wake`). A
//! bell is a pipe instead, whose read end is in the runtime's epoll:
//!
//! ```text
//! waiter  (private block only)        signaller (after its claim)
//!   block.bell_fd/ino = its pipe        word::ring saw SLEEPING
//!   v = segment fallback                  ├─ block names a bell → open /proc/<cpid>/fd/<n>
//!   announce (SLEEPING), last check       │    (cached; a pipe of the segment's owner, that inode)
//!   sleep in epoll on the pipe             │    write [segment id, block index]   ──► waiter's epoll
//!     and an io_uring futex wait           └─ cannot (another user, a non-dumpable waiter,
//!     on the segment's fallback (≠ v)         the pipe full): fallback += 1, FUTEX_WAKE all
//! ```
//!
//! - Only a **private** segment's blocks ring bells: their bell fields can be written
//!   by the owner (and root) alone, and the pipe must be the owner's, so a signaller
//!   never writes into a descriptor that the segment's owner could not write itself.
//! - The message says which wait was rung, so the waiter does not scan its waits; it
//!   re-checks that wait's claim, as after any wake-up (a stale or forged message is a
//!   spurious wake-up).
//! - A signaller that cannot reach the bell bumps the segment header's `fallback`
//!   word and wakes every futex waiter on it: the executor keeps one io_uring futex
//!   wait per segment on it (not one per wait) and, when it completes, re-checks the
//!   belled waits of that segment. The waiter read the word before its announce, so a
//!   bump for its wait is never missed.
//!
//! It must not know objects, and makes no system call but through `sys::pipe` and
//! `sys::futex`.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::segment::Segment;
use crate::error::{Error, Result};
use crate::shm::layout::Block;
use crate::sys::{futex, pipe};

/// A waiting process's bell: a pipe whose read end an event loop watches. Its write
/// end is kept open, unused, so that the read end never reports a hang-up.
#[derive(Debug)]
pub(crate) struct Bell {
    rx: OwnedFd,
    _tx: OwnedFd,
    ino: u64,
}

/// What a block records of a bell: the waiting process's descriptor number of its read
/// end, and its inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BellRef {
    fd: u32,
    ino: u64,
}

impl Bell {
    pub(crate) fn new() -> Result<Bell> {
        let (rx, tx, ino) = pipe::create().map_err(|e| Error::os("creating a bell (a pipe)", e))?;
        Ok(Bell { rx, _tx: tx, ino })
    }

    /// The read end, to watch for readability.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    pub(crate) fn reference(&self) -> BellRef {
        use std::os::fd::AsRawFd;
        BellRef {
            fd: self.rx.as_raw_fd() as u32,
            ino: self.ino,
        }
    }

    /// Reads every message: `f` gets the key ([`key`]) of each wait rung. Returns
    /// `false` if the stream held something that is not a whole message (only a writer
    /// other than procsync can cause it): then any wait may have been rung.
    pub(crate) fn drain(&self, f: &mut dyn FnMut(u64)) -> Result<bool> {
        let mut buf = [0u8; 4096];
        let mut whole = true;
        loop {
            let n =
                pipe::receive(&self.rx, &mut buf).map_err(|e| Error::os("reading a bell", e))?;
            whole &= n % 8 == 0;
            for m in buf[..n - n % 8].chunks_exact(8) {
                f(u64::from_le_bytes(m.try_into().expect("8 bytes")));
            }
            if n < buf.len() {
                return Ok(whole);
            }
        }
    }
}

/// The key a bell message carries for block `index` of segment `seg_id`.
pub(crate) fn key(seg_id: u32, index: u32) -> u64 {
    u64::from(seg_id) | u64::from(index) << 32
}

/// Records `bell` in `b` (before the announce that lets a signaller ring it).
pub(crate) fn mark(b: &Block, bell: BellRef) {
    b.bell_ino.store(bell.ino, Ordering::Relaxed);
    b.bell_fd.store(bell.fd + 1, Ordering::Relaxed);
}

/// Clears the bell of `b` (arming a block for a wait of any kind).
pub(crate) fn clear(b: &Block) {
    b.bell_fd.store(0, Ordering::Relaxed);
}

/// A descriptor of another process's bell, or the memory that it could not be opened
/// (and since when: tried again after [`RETRY_AFTER`]).
struct Cached {
    pid: u32,
    bell: BellRef,
    file: Result<Arc<OwnedFd>, std::time::Instant>,
}

/// How long a bell that could not be opened goes to the fallback before it is tried
/// again (the waiter may have become dumpable, a transient error passed).
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

thread_local! {
    /// The bell this thread rang last (a signaller rings the same few again and again):
    /// spares it the process-wide cache's lock.
    static LAST: RefCell<Option<(u32, BellRef, Arc<OwnedFd>)>> = const { RefCell::new(None) };
}

/// Bells opened recently (most recent first); each keeps a descriptor.
const CACHED: usize = 8;

fn cache() -> std::sync::MutexGuard<'static, Vec<Cached>> {
    static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The signaller's side, after `word::ring` found the waiter asleep: rings block
/// `index`'s bell, or the segment's fallback if it cannot. `None` when the block names
/// no bell (the caller wakes its doorbell); else how many sleepers were woken (a bell
/// counts as one).
pub(crate) fn ring(seg: &Segment, index: u32, b: &Block) -> Option<usize> {
    if seg.public {
        return None;
    }
    let fd = b.bell_fd.load(Ordering::Acquire);
    if fd == 0 {
        return None;
    }
    let bell = BellRef {
        fd: fd - 1,
        ino: b.bell_ino.load(Ordering::Relaxed),
    };
    let msg = key(seg.id(), index).to_le_bytes();
    if send(seg, bell, msg) {
        return Some(1);
    }
    Some(fallback(seg.fallback()))
}

fn send(seg: &Segment, bell: BellRef, msg: [u8; 8]) -> bool {
    let last = LAST
        .try_with(|l| match &*l.borrow() {
            Some((pid, b, file)) if *pid == seg.cpid && *b == bell => {
                Some(pipe::send(file.as_fd(), msg).is_ok())
            }
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(sent) = last {
        return sent;
    }
    let mut c = cache();
    let found = c.iter().position(|e| {
        e.pid == seg.cpid
            && e.bell == bell
            && e.file
                .as_ref()
                .err()
                .is_none_or(|t| t.elapsed() < RETRY_AFTER)
    });
    if found.is_none() {
        c.retain(|e| !(e.pid == seg.cpid && e.bell == bell));
    }
    let at = match found {
        Some(at) => at,
        None => {
            if c.len() == CACHED {
                c.pop();
            }
            let file = match pipe::reopen(seg.cpid, bell.fd, seg.uid, bell.ino) {
                Ok(f) => Ok(Arc::new(f)),
                // Out of descriptors, or interrupted: try again next time.
                Err(
                    crate::sys::Errno::MFILE | crate::sys::Errno::NFILE | crate::sys::Errno::INTR,
                ) => {
                    return false;
                }
                // Not ours to open (another user, a non-dumpable process), or not that
                // pipe any more: remembered for a while, so that its next rings go to
                // the fallback at once.
                Err(_) => Err(std::time::Instant::now()),
            };
            c.insert(
                0,
                Cached {
                    pid: seg.cpid,
                    bell,
                    file,
                },
            );
            0
        }
    };
    let Ok(file) = c[at].file.clone() else {
        return false;
    };
    if at != 0 {
        let e = c.remove(at);
        c.insert(0, e);
    }
    drop(c);
    let _ = LAST.try_with(|l| *l.borrow_mut() = Some((seg.cpid, bell, file.clone())));
    pipe::send(file.as_fd(), msg).is_ok()
}

/// Rings a segment's fallback word: every executor sleeping on it re-checks its belled
/// waits of that segment.
fn fallback(word: &AtomicU32) -> usize {
    word.fetch_add(1, Ordering::Release);
    futex::wake(word, u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::park::WaitBlock;

    /// A private leased block whose wait names `bell` and has announced its sleep.
    fn sleeping_on(bell: BellRef) -> (WaitBlock, u32) {
        let wb = WaitBlock::arm_leased(false).expect("a private block");
        let (_, _, before) = wb.set_bell(bell);
        wb.bell();
        (wb, before)
    }

    /// The ring of `wb` went to its segment's fallback word, which held `before` (other
    /// tests of this process may ring the same word meanwhile: it moved, by how much
    /// says nothing).
    fn assert_fell_back(wb: &WaitBlock, before: u32) {
        assert_ne!(
            wb.seg.fallback().load(Ordering::Relaxed),
            before,
            "fell back"
        );
    }

    #[test]
    fn a_ring_reaches_the_bell_with_the_key_of_the_wait() {
        let bell = Bell::new().unwrap();
        // (Whether the fallback word moved says nothing here: the other tests of this
        // process ring words of the same segment.)
        let (wb, _) = sleeping_on(bell.reference());
        assert_eq!(crate::park::ring(&wb.seg, wb.index), 1);
        let mut got = Vec::new();
        assert!(bell.drain(&mut |k| got.push(k)).unwrap());
        assert_eq!(got, vec![key(wb.seg.id(), wb.index)]);
    }

    /// A block whose bell fields name a descriptor that is not a pipe — here a regular
    /// file the waiting process holds read-only, with its very inode number — never gets
    /// that file opened for writing (an open for writing alone can have effects: a
    /// device's, a file watcher's close-write; inotify reports nothing, where an open of
    /// `/proc/<pid>/fd/<n>` for writing before the checks reported a close-write), and the
    /// ring goes to the fallback word.
    #[test]
    fn a_bell_that_is_not_a_pipe_is_never_opened() {
        use rustix::fs::inotify;
        let path = std::env::temp_dir().join(format!("procsync-bell-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let file = std::fs::File::open(&path).unwrap(); // read-only
        let ino = std::os::unix::fs::MetadataExt::ino(&file.metadata().unwrap());
        let watch = inotify::init(inotify::CreateFlags::NONBLOCK).unwrap();
        inotify::add_watch(
            &watch,
            &path,
            inotify::WatchFlags::OPEN | inotify::WatchFlags::CLOSE_WRITE,
        )
        .unwrap();
        let forged = BellRef {
            fd: file.as_raw_fd() as u32,
            ino,
        };
        let (wb, before) = sleeping_on(forged);
        crate::park::ring(&wb.seg, wb.index);
        let mut events = [0u8; 1024];
        let seen = rustix::io::read(&watch, &mut events);
        let _ = std::fs::remove_file(&path);
        assert_eq!(seen, Err(rustix::io::Errno::AGAIN), "the file was opened");
        assert_fell_back(&wb, before);
    }

    /// A pipe that is not the one the block names (another inode) is not rung either.
    #[test]
    fn a_bell_of_another_inode_is_not_rung() {
        let bell = Bell::new().unwrap();
        let other = Bell::new().unwrap();
        let mut forged = bell.reference();
        forged.ino = other.reference().ino;
        let (wb, before) = sleeping_on(forged);
        crate::park::ring(&wb.seg, wb.index);
        assert!(bell.drain(&mut |_| panic!("rung")).unwrap());
        assert_fell_back(&wb, before);
    }

    #[test]
    fn bytes_that_are_not_whole_messages_say_so() {
        let bell = Bell::new().unwrap();
        crate::sys::pipe::send(bell._tx.as_fd(), [1; 8]).unwrap();
        rustix::io::write(&bell._tx, &[7u8; 3]).unwrap();
        let mut got = Vec::new();
        assert!(!bell.drain(&mut |k| got.push(k)).unwrap());
        assert_eq!(got, vec![u64::from_le_bytes([1; 8])]);
    }
}
