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
pub(crate) mod kind;
pub(crate) mod lock;
pub(crate) mod lockset;
pub(crate) mod mutex;
pub(crate) mod queue;
pub(crate) mod semaphore;
pub(crate) mod signal;
pub(crate) mod timer;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::error::{Error, Result};
use crate::shm::layout::*;
use crate::shm::map::SharedMap;
use crate::sys::fs;

pub(crate) use lock::Guard;

/// The four object types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// Manual- or auto-reset event.
    Event,
    /// Recursive, thread-owned mutex.
    Mutex,
    /// Counting semaphore with a maximum.
    Semaphore,
    /// Waitable timer.
    Timer,
}

impl ObjectKind {
    pub(crate) fn code(self) -> u32 {
        match self {
            ObjectKind::Event => KIND_EVENT,
            ObjectKind::Mutex => KIND_MUTEX,
            ObjectKind::Semaphore => KIND_SEMAPHORE,
            ObjectKind::Timer => KIND_TIMER,
        }
    }

    fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            KIND_EVENT => ObjectKind::Event,
            KIND_MUTEX => ObjectKind::Mutex,
            KIND_SEMAPHORE => ObjectKind::Semaphore,
            KIND_TIMER => ObjectKind::Timer,
            _ => return None,
        })
    }

    /// "an event", "a mutex", …: the name with its article, for messages.
    pub(crate) fn a_name(self) -> &'static str {
        match self {
            ObjectKind::Event => "an event",
            ObjectKind::Mutex => "a mutex",
            ObjectKind::Semaphore => "a semaphore",
            ObjectKind::Timer => "a timer",
        }
    }

    /// Lowercase name, as in messages and the REPL.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Event => "event",
            ObjectKind::Mutex => "mutex",
            ObjectKind::Semaphore => "semaphore",
            ObjectKind::Timer => "timer",
        }
    }
}

/// What a new object is, with its immutable parameters and initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectSpec {
    /// An event: manual-reset or auto-reset, initially set or not.
    Event {
        /// Manual-reset (notification) rather than auto-reset (synchronization).
        manual: bool,
        /// Created signaled.
        initial: bool,
    },
    /// A mutex, optionally owned by the creating thread (only if newly created, CO-03).
    Mutex {
        /// The creating thread owns it (recursion 1).
        owned: bool,
    },
    /// A semaphore; `initial ≤ max`, `1 ≤ max ≤ 0x7FFF_FFFF` (SM-01, SM-02).
    Semaphore {
        /// Initial count.
        initial: u32,
        /// Maximum count.
        max: u32,
    },
    /// A waitable timer.
    Timer {
        /// Manual-reset (notification) rather than synchronization.
        manual: bool,
    },
}

impl ObjectSpec {
    /// The kind of object this creates.
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectSpec::Event { .. } => ObjectKind::Event,
            ObjectSpec::Mutex { .. } => ObjectKind::Mutex,
            ObjectSpec::Semaphore { .. } => ObjectKind::Semaphore,
            ObjectSpec::Timer { .. } => ObjectKind::Timer,
        }
    }

    /// Checks the parameters (SM-01).
    pub(crate) fn validate(&self) -> Result<()> {
        if let ObjectSpec::Semaphore { initial, max } = *self {
            if max == 0 || max > MAX_SEMAPHORE {
                return Err(Error::invalid(format!(
                    "a semaphore maximum must be between 1 and {MAX_SEMAPHORE}, not {max}"
                )));
            }
            if initial > max {
                return Err(Error::invalid(format!(
                    "a semaphore's initial count ({initial}) may not exceed its maximum ({max})"
                )));
            }
        }
        Ok(())
    }

    fn param(&self) -> u32 {
        match *self {
            ObjectSpec::Event { manual, .. } | ObjectSpec::Timer { manual } => u32::from(manual),
            ObjectSpec::Mutex { .. } => 0,
            ObjectSpec::Semaphore { max, .. } => max,
        }
    }

    fn initial_state(&self) -> u64 {
        match *self {
            ObjectSpec::Event { initial, .. } => u64::from(initial),
            ObjectSpec::Semaphore { initial, .. } => u64::from(initial),
            ObjectSpec::Mutex { .. } | ObjectSpec::Timer { .. } => 0,
        }
    }
}

/// Builds the bytes of a fresh object file (owned mutexes are taken after publication,
/// by the creator, so that a file never names an owner that might not exist).
pub(crate) fn init_file(fd: BorrowedFd<'_>, spec: &ObjectSpec) -> Result<u64> {
    let mut id = [0u8; 8];
    let mut object_id = 0;
    while object_id == 0 {
        getrandom::fill(&mut id)
            .map_err(|_| Error::os("reading random bytes", rustix::io::Errno::IO))?;
        object_id = u64::from_le_bytes(id);
    }
    let mut b = vec![0u8; 128];
    b[0..8].copy_from_slice(&OBJECT_MAGIC.to_le_bytes());
    b[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&spec.kind().code().to_le_bytes());
    b[16..24].copy_from_slice(&object_id.to_le_bytes());
    b[24..28].copy_from_slice(&spec.param().to_le_bytes());
    b[28..32].copy_from_slice(&(OBJECT_SIZE as u32).to_le_bytes());
    b[32..36].copy_from_slice(&(QUEUE_CAPACITY as u32).to_le_bytes());
    b[36..40].copy_from_slice(&fs::euid().to_le_bytes());
    b[40..48].copy_from_slice(&crate::sys::thread::pid_namespace().to_le_bytes());
    b[80..88].copy_from_slice(&spec.initial_state().to_le_bytes());
    let os = |e| Error::os("initialising an object file", e);
    fs::set_len(fd, OBJECT_SIZE as u64).map_err(os)?;
    fs::write_at(fd, &b, 0).map_err(os)?;
    Ok(object_id)
}

/// What keeps an object alive: the share-locked descriptor of its file (see
/// `shm::file`). A mapping also references the open description, so the object is
/// unmapped before the descriptor is closed and the last-close probe runs.
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

type LiveIndex = std::sync::Mutex<std::collections::HashMap<u64, Vec<Weak<Object>>>>;
/// Every object mapped in this process, by object id: several opens of one name are
/// separate mappings of one object, and whoever must act on the object (abandonment at
/// thread exit) may find it through any of them.
static LIVE: std::sync::OnceLock<LiveIndex> = std::sync::OnceLock::new();

fn live() -> std::sync::MutexGuard<'static, std::collections::HashMap<u64, Vec<Weak<Object>>>> {
    LIVE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// An object this process maps, by id (any of its mappings).
pub(crate) fn lookup(id: u64) -> Option<Arc<Object>> {
    live().get(&id)?.iter().find_map(Weak::upgrade)
}

fn register(o: Object) -> Arc<Object> {
    let o = Arc::new(o);
    live().entry(o.id).or_default().push(Arc::downgrade(&o));
    o
}

/// The mutexes mapped in this process that thread `me` owns (one mapping each).
pub(crate) fn owned_by(me: u64) -> Vec<Arc<Object>> {
    // Upgrade under the index lock, filter after releasing it: dropping the last Arc
    // of an object runs `Object::drop`, which takes the index lock.
    let all: Vec<Arc<Object>> = live()
        .values()
        .filter_map(|v| v.iter().find_map(Weak::upgrade))
        .collect();
    all.into_iter()
        .filter(|o| o.owned() && o.owner() == me)
        .collect()
}

impl Drop for Object {
    fn drop(&mut self) {
        let mut l = live();
        if let Some(v) = l.get_mut(&self.id) {
            v.retain(|w| w.strong_count() > 0);
            if v.is_empty() {
                l.remove(&self.id);
            }
        }
    }
}

/// A mapped, validated object. Immutable parameters are copied out of the header at
/// open and never re-read from shared memory. Fields drop in order: the mapping goes
/// before the backing descriptor.
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
    /// Held for its `Drop` (close + last-close probe), after the mapping.
    _backing: Backing,
}

/// What a validated header tells.
fn validate(f: &ObjectFile, path: &std::path::Path) -> Result<(ObjectKind, u32, u64)> {
    let corrupt = |why| Error::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let h = &f.header;
    if h.magic.load(Ordering::Relaxed) != OBJECT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    if h.version.load(Ordering::Relaxed) != LAYOUT_VERSION {
        return Err(corrupt("unknown layout version"));
    }
    let kind = ObjectKind::from_code(h.kind.load(Ordering::Relaxed))
        .ok_or_else(|| corrupt("unknown object type"))?;
    if h.size.load(Ordering::Relaxed) != OBJECT_SIZE as u32 {
        return Err(corrupt("bad size field"));
    }
    if h.queue_capacity.load(Ordering::Relaxed) != QUEUE_CAPACITY as u32 {
        return Err(corrupt("bad queue capacity"));
    }
    if h.reserved.iter().any(|r| r.load(Ordering::Relaxed) != 0) {
        return Err(corrupt("reserved header bytes are not zero"));
    }
    let (theirs, ours) = (
        h.pid_ns.load(Ordering::Relaxed),
        crate::sys::thread::pid_namespace(),
    );
    if theirs != ours && theirs != 0 && ours != 0 {
        return Err(Error::Unsupported(format!(
            "`{}` was created in another PID namespace (pid:[{theirs}], this process is in pid:[{ours}]); \
             mutex owners are thread ids, so procsync objects are shared within one PID namespace: \
             run the processes in the same one",
            path.display()
        )));
    }
    let id = h.object_id.load(Ordering::Relaxed);
    if id == 0 {
        return Err(corrupt("object id is zero"));
    }
    let param = h.param.load(Ordering::Relaxed);
    let ok = match kind {
        ObjectKind::Event | ObjectKind::Timer => param <= 1,
        ObjectKind::Mutex => param == 0,
        ObjectKind::Semaphore => (1..=MAX_SEMAPHORE).contains(&param),
    };
    if !ok {
        return Err(corrupt("impossible parameter for its type"));
    }
    Ok((kind, param, id))
}

impl Object {
    /// Maps and validates an object file.
    pub(crate) fn map(
        backing: Backing,
        path: PathBuf,
        root: PathBuf,
        ns_key: u32,
        display: String,
    ) -> Result<Arc<Object>> {
        let map = SharedMap::<ObjectFile>::new(backing.fd()).map_err(|e| match e {
            None => Error::Corrupt {
                path: path.clone(),
                why: "wrong file size or type",
            },
            Some(e) => Error::os("mapping an object file", e),
        })?;
        let (kind, param, id) = validate(map.get(), &path)?;
        Ok(register(Object {
            map,
            kind,
            manual: matches!(kind, ObjectKind::Event | ObjectKind::Timer) && param == 1,
            max: if kind == ObjectKind::Semaphore {
                param
            } else {
                0
            },
            id,
            root,
            ns_key,
            own_ns: ns_key == fs::euid(),
            display,
            _backing: backing,
        }))
    }

    /// The number of [`Object::backing_fd`] (recorded in a wait-all's block, so that a
    /// signaller in another process can fetch it).
    pub(crate) fn backing_fd_number(&self) -> u32 {
        std::os::fd::AsRawFd::as_raw_fd(&self._backing.fd()) as u32
    }

    /// The share-locked descriptor that keeps the object alive (a handle duplicates it
    /// for its own value).
    pub(crate) fn backing_fd(&self) -> BorrowedFd<'_> {
        self._backing.fd()
    }

    #[inline]
    pub(crate) fn file(&self) -> &ObjectFile {
        self.map.get()
    }

    #[inline]
    pub(crate) fn state(&self) -> &AtomicU64 {
        &self.file().ctl.state
    }

    #[inline]
    pub(crate) fn seq(&self) -> &AtomicU32 {
        &self.file().ctl.seq
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
            0,
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

    #[test]
    fn impossible_state_is_an_error_not_a_panic() {
        // A semaphore whose count exceeds its maximum: release and query report it.
        let mut b = good(ObjectSpec::Semaphore { initial: 0, max: 5 });
        b[80..88].copy_from_slice(&9u64.to_le_bytes());
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
        b[92..96].copy_from_slice(&u32::MAX.to_le_bytes());
        let o = map(&b).unwrap();
        let g = o.lock_bounded().unwrap();
        assert_eq!(queue::len(&g), QUEUE_CAPACITY);
    }
}
