//! The lifetime protocol of a named shared file: NT lifetime with `flock`.
//!
//! - Every open description of a live file holds a **shared** `flock`. A handle, its
//!   in-process duplicates (which share the description), descriptors inherited by a
//!   child or passed over a socket (same description) all keep that one lock.
//! - **Create**: an `O_TMPFILE` is initialised completely, share-locked, and only then
//!   given its name with `linkat` (fails with EEXIST, never replaces): no opener sees a
//!   half-built file.
//! - **Open**: open the name; probe with a non-blocking **exclusive** lock on that fresh
//!   description. Success means no live description holds the file: it is an orphan
//!   left by holders that all died (or a last closer is about to unlink it); the opener
//!   unlinks it and starts over (an open then finds nothing, a create publishes a fresh
//!   object). Otherwise take the shared lock (blocking, so a concurrent unlinker
//!   finishes first) and check that the name still names this inode; start over if
//!   the name moved, or if the shared lock had to wait for an exclusive holder (a probe
//!   that may have let an orphan go without unlinking it; at most [`MAX_RESTARTS`]
//!   times).
//! - **Close**: drop our descriptor (our shared lock goes with the last descriptor of
//!   the description), then open the name afresh and probe with a non-blocking exclusive
//!   lock: success means we were the last; unlink while holding it.
//!
//! - **Open of a name the process holds** is decided above this module
//!   (`handle::mapped`); when it does not apply, its `openat` and `fstat` are handed to
//!   [`NamedFile::open`] as the protocol's first step ([`FirstLook`]).
//!
//! A holder killed at any instruction leaves either a locked file (alive through other
//! holders) or an unlocked one (an orphan, replaced by the next opener): never a file
//! that wedges the name.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::shm::layout::ObjectFile;
use crate::shm::map::SharedMap;
use crate::shm::root::Namespace;
use crate::sys::{Errno, fs};

/// Whether a create found the name free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The name was free; this call created the object (Win32 last error 0).
    New,
    /// The name existed; this call opened it (Win32 `ERROR_ALREADY_EXISTS`).
    Existing,
}

/// A share-locked descriptor of a named file; dropping it runs the close protocol.
#[derive(Debug)]
pub(crate) struct NamedFile {
    fd: Option<OwnedFd>,
    /// What `fstat` said of `fd` when it was opened (a descriptor's file never changes;
    /// its identity is what the close probe compares against).
    id: fs::FileId,
    ns: Arc<Namespace>,
    name: String,
}

/// How many [`NamedFile`]s this process holds (any path): when none, no named object
/// is mapped here and a caller may skip looking for one it holds already.
static LIVE_FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether this process holds any named object file at all.
pub(crate) fn any_live() -> bool {
    LIVE_FILES.load(std::sync::atomic::Ordering::Relaxed) != 0
}

impl NamedFile {
    fn new(fd: OwnedFd, id: fs::FileId, ns: &Arc<Namespace>, name: String) -> NamedFile {
        LIVE_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        NamedFile {
            fd: Some(fd),
            id,
            ns: ns.clone(),
            name,
        }
    }
}

/// What a caller already found under the name, to serve as the first step of
/// [`NamedFile::open`] instead of opening it again: the `openat` result and, if the
/// open worked, the descriptor's `fstat`.
pub(crate) type FirstLook = (std::result::Result<OwnedFd, Errno>, Option<fs::FileId>);

/// How to open.
pub(crate) enum Mode<'a> {
    /// Open only; `NotFound` if absent.
    Open,
    /// Create with these permission bits, initialising the temporary file with `init`,
    /// which returns its mapping of the file (handed back by [`NamedFile::open`] when
    /// the file it initialised is the one published).
    Create {
        mode: u32,
        init: &'a dyn Fn(BorrowedFd<'_>) -> Result<SharedMap<ObjectFile>>,
    },
}

fn same_inode(a: &fs::FileId, b: &fs::FileId) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

impl NamedFile {
    /// Opens or creates `name` in `ns` following the protocol above. `display` is the
    /// user's spelling, for errors. `first`, if given, is what the caller's own open of
    /// the name just found (the protocol's first step, not repeated). A file this call
    /// created comes with `init`'s mapping of it.
    pub(crate) fn open(
        ns: &Arc<Namespace>,
        name: &str,
        how: Mode<'_>,
        display: &str,
        mut first: Option<FirstLook>,
    ) -> Result<(NamedFile, Created, Option<SharedMap<ObjectFile>>)> {
        let dir = ns.dir.as_fd();
        let mut restarts = 0;
        loop {
            let (opened, known) = first
                .take()
                .unwrap_or_else(|| (fs::open_file_at(dir, name), None));
            match opened {
                Ok(fd) => {
                    let st = match known {
                        Some(st) => st,
                        None => fs::stat_fd(fd.as_fd())
                            .map_err(|e| Error::os("checking an object file", e))?,
                    };
                    if !st.is_file {
                        // A FIFO, socket or device planted under the name: never ours.
                        return Err(file_err(Errno::MLINK, display));
                    }
                    if fs::try_lock_exclusive(fd.as_fd())
                        .map_err(|e| Error::os("locking an object file", e))?
                    {
                        // Orphan: no live description holds it. Unlink it if the name
                        // still names it, then start over.
                        if let Ok(b) = fs::stat_at(dir, name)
                            && same_inode(&st, &b)
                        {
                            match fs::unlink_at(dir, name) {
                                Ok(()) | Err(Errno::NOENT) => {}
                                // Another user's orphan in the sticky `Global\` directory:
                                // we may not remove it, and retrying would spin forever.
                                Err(Errno::PERM | Errno::ACCESS) => {
                                    return Err(orphan_err(&how, display, st.uid));
                                }
                                Err(e) => {
                                    return Err(Error::os("removing an orphaned object file", e));
                                }
                            }
                        }
                        drop(fd);
                        continue;
                    }
                    if lock_shared_patiently(fd.as_fd(), display)? && restarts < MAX_RESTARTS {
                        // Someone held the file exclusively: a probe (another opener's, a
                        // last close's, a sweep's, `gc`'s) that may have found it an
                        // orphan and let it go without unlinking it (`gc --dry-run`, an
                        // orphan another user left in `Global\`). Our shared lock would
                        // now make us take that orphan for a live object: start over, so
                        // that our own probe decides.
                        restarts += 1;
                        drop(fd);
                        continue;
                    }
                    // `st` is still this descriptor's file; has the name been unlinked
                    // or replaced meanwhile?
                    match fs::stat_at(dir, name) {
                        Ok(b) if same_inode(&st, &b) => {
                            let file = NamedFile::new(fd, st, ns, name.to_string());
                            return Ok((file, Created::Existing, None));
                        }
                        _ => continue, // unlinked or replaced meanwhile
                    }
                }
                Err(Errno::NOENT) => match how {
                    Mode::Open => {
                        return Err(Error::NotFound {
                            name: display.to_string(),
                        });
                    }
                    Mode::Create { mode, init } => {
                        let tmp = fs::create_tmp(dir, mode).map_err(|e| file_err(e, display))?;
                        let map = init(tmp.as_fd())?;
                        fs::lock_shared(tmp.as_fd())
                            .map_err(|e| Error::os("locking an object file", e))?;
                        let id = fs::stat_fd(tmp.as_fd())
                            .map_err(|e| Error::os("checking an object file", e))?;
                        match fs::publish(tmp.as_fd(), dir, name) {
                            Ok(()) => {
                                let file = NamedFile::new(tmp, id, ns, name.to_string());
                                return Ok((file, Created::New, Some(map)));
                            }
                            Err(Errno::EXIST) => continue,
                            Err(e) => return Err(file_err(e, display)),
                        }
                    }
                },
                Err(e) => return Err(file_err(e, display)),
            }
        }
    }

    /// Wraps `fd`, a descriptor of an object file in `ns` that arrived from another
    /// process or a parent: the same open description as the sender's, which already
    /// holds the shared lock (taken again here in case the sender's did not). The name
    /// is `guess` if that names this very file, else found by scanning `ns` for the
    /// file's inode (`/proc/self/fd` shows the `O_TMPFILE` name of a description that
    /// created its file, not the name it was published under). Gives `fd` back if no
    /// name in `ns` names the file.
    pub(crate) fn adopt(
        ns: &Arc<Namespace>,
        guess: Option<&str>,
        fd: OwnedFd,
    ) -> std::result::Result<NamedFile, OwnedFd> {
        let dir = ns.dir.as_fd();
        let Ok(ours) = fs::stat_fd(fd.as_fd()) else {
            return Err(fd);
        };
        let names_it =
            |name: &str| fs::stat_at(dir, name).is_ok_and(|b| b.is_file && same_inode(&ours, &b));
        let found = match guess.filter(|g| names_it(g)) {
            Some(g) => Some(g.to_string()),
            None => fs::list_dir(dir).ok().and_then(|names| {
                names
                    .into_iter()
                    .find(|n| (n.starts_with('o') || n.starts_with('h')) && names_it(n))
            }),
        };
        let Some(name) = found else {
            return Err(fd);
        };
        let _ = fs::try_lock_shared(fd.as_fd());
        Ok(NamedFile::new(fd, ours, ns, name))
    }

    /// The name of the file in its namespace directory.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What `fstat` said of the descriptor when it was opened: device, inode, owner.
    pub(crate) fn file_id(&self) -> &fs::FileId {
        &self.id
    }

    /// The share-locked descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until drop").as_fd()
    }
}

/// How long an opener waits for another process's exclusive lock on an object file
/// (held legitimately only for the instant between a last closer's probe and its
/// unlink) before it reports the file as held hostage.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often an open starts over after waiting for an exclusive holder of the file
/// (then it goes on with what it has: a process that keeps taking the lock again must
/// not hold an open up for ever).
const MAX_RESTARTS: u32 = 3;

/// Takes the shared lock, waiting at most [`LOCK_PATIENCE`] for an exclusive holder:
/// any user who may open a file may `flock` it, and a blocking wait would let such a
/// user hang every opener forever. Says whether it had to wait.
fn lock_shared_patiently(fd: BorrowedFd<'_>, display: &str) -> Result<bool> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(50);
    let mut waited = false;
    loop {
        if fs::try_lock_shared(fd).map_err(|e| Error::os("locking an object file", e))? {
            return Ok(waited);
        }
        waited = true;
        if start.elapsed() > LOCK_PATIENCE {
            return Err(Error::AccessDenied {
                what: format!(
                    "the file of `{display}` has been locked exclusively by another process for over {} s; find and stop that process",
                    LOCK_PATIENCE.as_secs()
                ),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}

/// An orphan (no live holder) that this user may not unlink: to an open the object
/// does not exist; a create cannot reuse the name.
fn orphan_err(how: &Mode<'_>, display: &str, uid: u32) -> Error {
    match how {
        Mode::Open => Error::NotFound {
            name: display.to_string(),
        },
        Mode::Create { .. } => Error::AccessDenied {
            what: format!(
                "the name `{display}` is held by the file of a dead object of uid {uid}, which only that user or root may remove; ask them to open or create it once (which removes it)"
            ),
        },
    }
}

fn file_err(e: Errno, display: &str) -> Error {
    match e {
        Errno::ACCESS | Errno::PERM => Error::AccessDenied {
            what: format!(
                "the file of `{display}` may not be opened by this user; ask its creator for a wider mode"
            ),
        },
        Errno::LOOP | Errno::MLINK => Error::AccessDenied {
            what: format!(
                "the name `{display}` is held by a symlink or another file type in the namespace directory; refusing to follow it"
            ),
        },
        Errno::ISDIR | Errno::NXIO => Error::AccessDenied {
            what: format!(
                "the name `{display}` is held by a directory or a device, not an object file; remove it (its owner or root can), or use another name"
            ),
        },
        Errno::NAMETOOLONG => Error::InvalidName {
            name: display.to_string(),
            why: "the encoded name is too long",
        },
        e => Error::os("opening an object file", e),
    }
}

impl Drop for NamedFile {
    fn drop(&mut self) {
        // Our descriptor closes first: the probe below must not see our own lock.
        let Some(fd) = self.fd.take() else { return };
        drop(fd);
        LIVE_FILES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let ours = self.id;
        let dir = self.ns.dir.as_fd();
        // Probe with a fresh description; success means no handle is left anywhere.
        let Ok(probe) = fs::open_file_at(dir, &self.name) else {
            return;
        };
        if let (Ok(true), Ok(st)) = (
            fs::try_lock_exclusive(probe.as_fd()),
            fs::stat_fd(probe.as_fd()),
        ) && same_inode(&st, &ours)
            && let Ok(now) = fs::stat_at(dir, &self.name)
            && same_inode(&now, &ours)
        {
            let _ = fs::unlink_at(dir, &self.name);
        }
    }
}

/// How many names a sweep checks: all of a namespace that has at most this many, else
/// a random sample of exactly this many. A check is an `openat`, a `flock` and a
/// `close` (2.5 µs here), and the sweep runs at a process's first use of a namespace:
/// checking every name made that first use cost 19 ms more at 10 000 objects (20.5 ms
/// for a process that opens one object, 1.8 ms for one that opens none; every command
/// of a shell script paid it). Sampled, it costs reading the directory and 64 checks,
/// and the processes that come and go over a namespace still visit every name in
/// time; orphans left meanwhile are harmless (an open replaces the orphan it finds,
/// see [`NamedFile::open`]), and `procsync gc` checks every name at once.
pub(crate) const SWEEP_SAMPLE: usize = 64;

/// Removes orphans (files no live description holds) from a namespace directory, so
/// that the names of objects whose holders were all killed disappear from disk at a
/// later use of the namespace, not only logically. Runs once per namespace and
/// process, over at most [`SWEEP_SAMPLE`] names.
pub(crate) fn sweep_orphans(ns: &Namespace) {
    use std::sync::atomic::Ordering;
    if ns.swept.swap(true, Ordering::Relaxed) {
        return;
    }
    let dir = ns.dir.as_fd();
    let mut sample = Reservoir::new(SWEEP_SAMPLE);
    if fs::each_name(dir, |name| sample.offer(name)).is_err() {
        return;
    }
    for name in sample.items {
        remove_if_orphan(dir, &name);
    }
}

/// Unlinks `name` if it is an orphan: nobody holds its file, and the name still names
/// that file.
fn remove_if_orphan(dir: BorrowedFd<'_>, name: &str) {
    let Ok(fd) = fs::open_file_at(dir, name) else {
        return;
    };
    // Almost every file is held: its exclusive lock fails, and that is all it costs.
    if fs::try_lock_exclusive(fd.as_fd()) != Ok(true) {
        return;
    }
    if let (Ok(a), Ok(b)) = (fs::stat_fd(fd.as_fd()), fs::stat_at(dir, name))
        && same_inode(&a, &b)
        && a.is_file
    {
        let _ = fs::unlink_at(dir, name);
    }
}

/// Reservoir sampling (Vitter's algorithm R): offered any number of names one at a
/// time, keeps a uniformly random `k` of them (all of them while there are at most
/// `k`), copying only the few it keeps.
struct Reservoir {
    k: usize,
    seen: u64,
    items: Vec<String>,
    rng: u64,
}

impl Reservoir {
    fn new(k: usize) -> Reservoir {
        let mut seed = [0u8; 8];
        // Without randomness the sample is always the same names: still correct.
        let _ = getrandom::fill(&mut seed);
        Reservoir {
            k,
            seen: 0,
            items: Vec::new(),
            rng: u64::from_le_bytes(seed),
        }
    }

    fn offer(&mut self, name: &str) {
        self.seen += 1;
        if self.items.len() < self.k {
            self.items.push(name.to_owned());
            return;
        }
        // Kept with probability k / seen, in place of a random one of the k.
        let j = self.below(self.seen);
        if let Some(slot) = self.items.get_mut(j as usize) {
            name.clone_into(slot);
        }
    }

    /// A random number below `n` (splitmix64, then a multiply-shift: enough to spread
    /// a sample).
    fn below(&mut self, n: u64) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((u128::from(z) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Reservoir;

    fn sample(k: usize, n: usize) -> Vec<usize> {
        let mut r = Reservoir::new(k);
        for i in 0..n {
            r.offer(&i.to_string());
        }
        r.items.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn reservoir_keeps_exactly_k_distinct_names_and_all_of_fewer() {
        for (k, n) in [(64, 0), (64, 10), (64, 64), (64, 65), (64, 10_000), (1, 3)] {
            let mut got = sample(k, n);
            assert_eq!(got.len(), k.min(n), "k={k} n={n}");
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), k.min(n), "k={k} n={n}: a name kept twice");
            assert!(got.iter().all(|&i| i < n));
        }
    }

    #[test]
    fn reservoir_spreads_over_every_name() {
        // 2 000 samples of 64 out of 1 000: every name is kept about 128 times (standard
        // deviation 11); one never kept, or the first 64 always, would be a biased sample.
        let mut hits = vec![0u32; 1000];
        for _ in 0..2000 {
            for i in sample(64, 1000) {
                hits[i] += 1;
            }
        }
        let (lo, hi) = (hits.iter().min().unwrap(), hits.iter().max().unwrap());
        assert!(*lo >= 60 && *hi <= 220, "kept per name from {lo} to {hi}");
    }
}
