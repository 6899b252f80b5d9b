//! Objects: the semantics of events, mutexes and semaphores as transitions on the
//! `state` word of an object file (see `shm::layout` for the bits), the object lock,
//! and the hand-off of a signal to queued waiters.
//!
//! It must not block (waiting is `wait`'s business) and must not know about names or
//! handles.
//!
//! # Memory ordering
//! The fast paths are one compare-and-swap on `state`: `Acquire` on success of an
//! acquisition (the caller then reads what the previous releaser published), `Release`
//! on a release. Everything under the object lock is ordered by the lock itself
//! (`Acquire` on lock, `Release` on unlock); a hand-off publishes the new state before
//! the `Release` compare-and-swap on the waiter's claim word, which the waiter reads
//! with `Acquire`.

pub(crate) mod event;
pub(crate) mod file;
pub(crate) mod kind;
pub(crate) mod live;
pub(crate) mod lock;
pub(crate) mod lockset;
pub(crate) mod mutex;
pub(crate) mod queue;
pub(crate) mod semaphore;
pub(crate) mod signal;
pub(crate) mod timer;
pub(crate) mod vocab;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::shm::layout::*;
use crate::shm::map::SharedMap;
use crate::sys::fs;

pub(crate) use file::init_file;
pub(crate) use live::{lookup, owned_by};
pub(crate) use lock::Guard;
pub use vocab::{ObjectKind, ObjectSpec};

/// What keeps an object alive: the share-locked descriptor of its file (see
/// `shm::file`), numbered 3 or above. A mapping also references the open description,
/// so the object is unmapped before the descriptor is closed and the last-close probe
/// runs.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A named object's file.
    Named(crate::shm::file::NamedFile),
    /// An unnamed object's memfd.
    Unnamed(std::os::fd::OwnedFd),
}

impl Backing {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Backing::Named(f) => f.fd(),
            Backing::Unnamed(fd) => std::os::fd::AsFd::as_fd(fd),
        }
    }
}

/// A mapped, validated object. Immutable parameters are copied out of the header at
/// open and never re-read from shared memory. Fields drop in order: the mapping goes
/// before the backing descriptor.
///
/// The backing descriptor stays open exactly as long as the object: its number can be
/// lent once ([`Object::lend_backing`]) to be named by someone else (the handle layer
/// makes it the value of the first handle of an open, which so costs no descriptor of
/// its own), and it stays taken, never reused by the kernel, until the object is
/// dropped.
#[derive(Debug)]
pub(crate) struct Object {
    map: SharedMap<ObjectFile>,
    /// Object type.
    pub kind: ObjectKind,
    /// Manual-reset flag (event, timer).
    pub manual: bool,
    /// Semaphore maximum.
    pub max: u32,
    /// Random id: identity for wait-all duplicate detection and lock order.
    pub id: u64,
    /// Where the control block sits in the file (`shm::layout`, "The body"), from `id`.
    colour: Colour,
    /// The procsync root the object lives under (for messages).
    pub root: PathBuf,
    /// Namespace key: the owner's uid for a `Local\` namespace (and unnamed objects),
    /// `GLOBAL_NS` for `Global\`. Decides which wait blocks its queue entries may name.
    pub ns_key: u32,
    /// The object is in the caller's own namespace (`ns_key` was our euid when we
    /// mapped it): waits on such objects alone may use a private wait block.
    pub own_ns: bool,
    /// For messages.
    pub display: String,
    /// Whether [`Object::lend_backing`] has lent the backing descriptor's number.
    lent: AtomicBool,
    /// What this process last left in `state`, for a semaphore's next lock-free
    /// compare-and-swap to expect, and whether to guess at all (`semaphore`, "The
    /// guessed swap"): never decides an outcome.
    pub(crate) guess: AtomicU64,
    /// Held for its `Drop` (close + last-close probe), after the mapping.
    _backing: Backing,
}

/// The namespace an object is mapped from: its key (the owner's uid, or `GLOBAL_NS`),
/// and whether it is the caller's own (its waits then use private wait blocks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NsKey {
    pub key: u32,
    pub own: bool,
}

impl NsKey {
    /// The caller's own namespace, `uid` being the effective uid it was looked up with
    /// (no second `geteuid`: an open already made one).
    pub(crate) fn own(uid: u32) -> NsKey {
        NsKey {
            key: uid,
            own: true,
        }
    }

    /// Namespace `key`, whoever's it is (asks the effective uid).
    pub(crate) fn of(key: u32) -> NsKey {
        NsKey {
            key,
            own: key == fs::euid(),
        }
    }
}

impl Object {
    /// Maps and validates an object file.
    pub(crate) fn map(
        backing: Backing,
        path: PathBuf,
        root: PathBuf,
        ns: NsKey,
        display: String,
    ) -> Result<Arc<Object>> {
        // A named file's open `fstat`ed it already (`NamedFile`): its size is checked
        // against that, and not asked again.
        let map = match &backing {
            Backing::Named(f) => SharedMap::<ObjectFile>::with_stat(f.fd(), f.file_id()),
            Backing::Unnamed(_) => SharedMap::<ObjectFile>::new(backing.fd()),
        }
        .map_err(|e| match e {
            None => Error::Corrupt {
                path: path.clone(),
                why: "wrong file size or type",
            },
            Some(e) => Error::os("mapping an object file", e),
        })?;
        Self::map_fresh(backing, map, path, root, ns, display)
    }

    /// As [`Object::map`], with `map`, a mapping of `backing`'s file made already (by
    /// [`init_file`], for the object this process just created). Validated all the
    /// same: a named file is published by now, and may have been written since.
    pub(crate) fn map_fresh(
        backing: Backing,
        map: SharedMap<ObjectFile>,
        path: PathBuf,
        root: PathBuf,
        ns: NsKey,
        display: String,
    ) -> Result<Arc<Object>> {
        let (kind, param, id) = file::validate(map.get(), &path)?;
        Ok(live::register(Object {
            map,
            kind,
            manual: matches!(kind, ObjectKind::Event | ObjectKind::Timer) && param == 1,
            max: if kind == ObjectKind::Semaphore {
                param
            } else {
                0
            },
            id,
            colour: Colour::of(id),
            root,
            ns_key: ns.key,
            own_ns: ns.own,
            display,
            lent: AtomicBool::new(false),
            guess: AtomicU64::new(0),
            _backing: backing,
        }))
    }

    /// The number of [`Object::backing_fd`] (recorded in a wait-all's block, so that a
    /// signaller in another process can fetch it: open while the object lives).
    pub(crate) fn backing_fd_number(&self) -> u32 {
        std::os::fd::AsRawFd::as_raw_fd(&self._backing.fd()) as u32
    }

    /// The share-locked descriptor that keeps the object alive, open until the object
    /// is dropped (a duplicate of it shares its open description, and so its lock).
    pub(crate) fn backing_fd(&self) -> BorrowedFd<'_> {
        self._backing.fd()
    }

    /// `true` for the first caller only, ever: that caller may name the backing
    /// descriptor's number as its own (the value of the first handle of an open; every
    /// later handle takes a duplicate). Nobody else is ever lent the number, and the
    /// kernel cannot reuse it while the object lives, so it names one holder at most.
    pub(crate) fn lend_backing(&self) -> bool {
        !self.lent.swap(true, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn file(&self) -> &ObjectFile {
        self.map.get()
    }

    /// The control block (lock, state, sequence numbers).
    #[inline]
    pub(crate) fn ctl(&self) -> &Control {
        self.file().ctl(self.colour)
    }

    /// Queue entry `k` (< `QUEUE_CAPACITY`).
    #[inline]
    pub(crate) fn entry(&self, k: usize) -> &Entry {
        self.file().entry(self.colour, k)
    }

    #[inline]
    pub(crate) fn state(&self) -> &AtomicU64 {
        &self.ctl().state
    }

    #[inline]
    pub(crate) fn seq(&self) -> &AtomicU32 {
        &self.ctl().seq
    }

    pub(crate) fn corrupt(&self, why: &'static str) -> Error {
        Error::Corrupt {
            path: PathBuf::from(&self.display),
            why,
        }
    }

    pub(crate) fn wrong_type(&self, op: &str) -> Error {
        Error::WrongType {
            what: format!(
                "`{op}` does not apply to {} (`{}`)",
                self.kind.a_name(),
                self.display
            ),
        }
    }
}

/// Result of a lock-free attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Acquired; `true` if it was an abandoned mutex.
    Acquired(bool),
    /// Not signaled for the caller (nothing changed).
    NotSignaled,
    /// Waiters are queued, or a mutex's owner must be checked: take the lock.
    Slow,
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn file_with(bytes: &[u8]) -> std::os::fd::OwnedFd {
        let fd = fs::memfd("t").unwrap();
        fs::write_at(fd.as_fd(), bytes, 0).unwrap();
        fd
    }

    fn good(spec: ObjectSpec) -> Vec<u8> {
        let fd = fs::memfd("t").unwrap();
        init_file(fd.as_fd(), &spec).unwrap();
        let mut b = vec![0u8; OBJECT_SIZE];
        let mut done = 0;
        while done < b.len() {
            done += rustix::io::pread(&fd, &mut b[done..], done as u64).unwrap();
        }
        b
    }

    fn map(bytes: &[u8]) -> Result<Arc<Object>> {
        let fd = file_with(bytes);
        Object::map(
            Backing::Unnamed(fd),
            "t".into(),
            "/nonexistent".into(),
            NsKey::of(0),
            "t".into(),
        )
    }

    fn why(r: Result<Arc<Object>>) -> &'static str {
        match r {
            Err(Error::Corrupt { why, .. }) => why,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn valid_files_map() {
        for spec in [
            ObjectSpec::Event {
                manual: true,
                initial: true,
            },
            ObjectSpec::Mutex { owned: false },
            ObjectSpec::Semaphore {
                initial: 1,
                max: MAX_SEMAPHORE,
            },
        ] {
            let o = map(&good(spec)).unwrap();
            assert_eq!(o.kind, spec.kind());
            assert_ne!(o.id, 0);
        }
    }

    #[test]
    fn truncated_garbage_and_impossible_files_are_refused() {
        let sem = good(ObjectSpec::Semaphore { initial: 0, max: 5 });
        // (what to change, expected reason)
        let patch = |off: usize, bytes: &[u8]| {
            let mut b = sem.clone();
            b[off..off + bytes.len()].copy_from_slice(bytes);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (sem[..100].to_vec(), "wrong file size or type"),
            (sem[..OBJECT_SIZE - 1].to_vec(), "wrong file size or type"),
            (
                [sem.clone(), vec![0; 10]].concat(),
                "wrong file size or type",
            ),
            (vec![0xA5; OBJECT_SIZE], "bad magic"),
            (vec![0; OBJECT_SIZE], "bad magic"),
            (patch(8, &1u32.to_le_bytes()), "unknown layout version"),
            (patch(12, &9u32.to_le_bytes()), "unknown object type"),
            (patch(16, &0u64.to_le_bytes()), "object id is zero"),
            (
                patch(24, &0u32.to_le_bytes()),
                "impossible parameter for its type",
            ),
            (
                patch(24, &0x8000_0000u32.to_le_bytes()),
                "impossible parameter for its type",
            ),
            (patch(28, &8192u32.to_le_bytes()), "bad size field"),
            (patch(32, &7u32.to_le_bytes()), "bad queue capacity"),
            (patch(48, &[1]), "reserved header bytes are not zero"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(why(map(&bytes)), expected);
        }
        let ev = good(ObjectSpec::Event {
            manual: false,
            initial: false,
        });
        let mut b = ev.clone();
        b[24] = 2;
        assert_eq!(why(map(&b)), "impossible parameter for its type");
    }

    /// Layout version 3: objects' control blocks are spread over the page, so a process
    /// using many objects does not map all their hot lines to one L1 cache set.
    #[test]
    fn control_blocks_spread_over_cache_lines() {
        let mut lines = std::collections::BTreeSet::new();
        let objs: Vec<_> = (0..64)
            .map(|_| map(&good(ObjectSpec::Semaphore { initial: 1, max: 1 })).unwrap())
            .collect();
        for o in &objs {
            let at = std::ptr::from_ref(o.ctl()) as usize;
            assert_eq!(at % 64, 0, "a control block starts a cache line");
            lines.insert(at % 4096 / 64);
            // The queue's entries never overlap the control block.
            let ctl = at..at + size_of::<Control>();
            for k in 0..QUEUE_CAPACITY {
                let e = std::ptr::from_ref(o.entry(k)) as usize;
                assert!(e + size_of::<Entry>() <= ctl.start || e >= ctl.end);
            }
        }
        // 64 random ids over 21 colours: all but a handful of colours are hit.
        assert!(
            lines.len() >= 12,
            "control blocks on only {} lines",
            lines.len()
        );
    }

    #[test]
    fn impossible_state_is_an_error_not_a_panic() {
        // A semaphore whose count exceeds its maximum: release and query report it.
        // The control block sits at the object's colour (layout version 3).
        let ctl = |b: &[u8]| {
            let id = u64::from_le_bytes(b[16..24].try_into().unwrap());
            64 + 24 * Colour::of(id).slot()
        };
        let mut b = good(ObjectSpec::Semaphore { initial: 0, max: 5 });
        let at = ctl(&b) + 16;
        b[at..at + 8].copy_from_slice(&9u64.to_le_bytes());
        let o = map(&b).unwrap();
        assert!(matches!(
            semaphore::release(&o, 1),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(semaphore::query(&o), Err(Error::Corrupt { .. })));
        // A queue length beyond the capacity is clamped.
        let mut b = good(ObjectSpec::Event {
            manual: true,
            initial: false,
        });
        let at = ctl(&b) + 28;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let o = map(&b).unwrap();
        let g = o.lock_bounded().unwrap();
        assert_eq!(queue::len(&g), QUEUE_CAPACITY);
    }
}
