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
//!   finishes first) and check that the name still names this inode.
//! - **Close**: drop our descriptor (our shared lock goes with the last descriptor of
//!   the description), then open the name afresh and probe with a non-blocking exclusive
//!   lock: success means we were the last; unlink while holding it.
//!
//! A holder killed at any instruction leaves either a locked file (alive through other
//! holders) or an unlocked one (an orphan, replaced by the next opener): never a file
//! that wedges the name.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, Result};
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
    ns: Arc<Namespace>,
    name: String,
}

/// How to open.
pub(crate) enum Mode<'a> {
    /// Open only; `NotFound` if absent.
    Open,
    /// Create with these permission bits, initialising the temporary file with `init`.
    Create {
        mode: u32,
        init: &'a dyn Fn(BorrowedFd<'_>) -> Result<()>,
    },
}

fn same_inode(a: &fs::FileId, b: &fs::FileId) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

impl NamedFile {
    /// Opens or creates `name` in `ns` following the protocol above. `display` is the
    /// user's spelling, for errors.
    pub(crate) fn open(
        ns: &Arc<Namespace>,
        name: &str,
        how: Mode<'_>,
        display: &str,
    ) -> Result<(NamedFile, Created)> {
        let dir = ns.dir.as_fd();
        loop {
            match fs::open_file_at(dir, name) {
                Ok(fd) => {
                    if fs::try_lock_exclusive(fd.as_fd())
                        .map_err(|e| Error::os("locking an object file", e))?
                    {
                        // Orphan: no live description holds it. Unlink it if the name
                        // still names it, then start over.
                        if let (Ok(a), Ok(b)) = (fs::stat_fd(fd.as_fd()), fs::stat_at(dir, name))
                            && same_inode(&a, &b)
                        {
                            let _ = fs::unlink_at(dir, name);
                        }
                        drop(fd);
                        continue;
                    }
                    fs::lock_shared(fd.as_fd())
                        .map_err(|e| Error::os("locking an object file", e))?;
                    match (fs::stat_fd(fd.as_fd()), fs::stat_at(dir, name)) {
                        (Ok(a), Ok(b)) if same_inode(&a, &b) => {
                            return Ok((
                                NamedFile {
                                    fd: Some(fd),
                                    ns: ns.clone(),
                                    name: name.to_string(),
                                },
                                Created::Existing,
                            ));
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
                        init(tmp.as_fd())?;
                        fs::lock_shared(tmp.as_fd())
                            .map_err(|e| Error::os("locking an object file", e))?;
                        match fs::publish(tmp.as_fd(), dir, name) {
                            Ok(()) => {
                                return Ok((
                                    NamedFile {
                                        fd: Some(tmp),
                                        ns: ns.clone(),
                                        name: name.to_string(),
                                    },
                                    Created::New,
                                ));
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

    /// The share-locked descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until drop").as_fd()
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
        Errno::NAMETOOLONG => Error::InvalidName {
            name: display.to_string(),
            why: "the encoded name is too long",
        },
        e => Error::os("opening an object file", e),
    }
}

impl Drop for NamedFile {
    fn drop(&mut self) {
        let ours = self.fd.take().and_then(|fd| fs::stat_fd(fd.as_fd()).ok());
        let Some(ours) = ours else { return };
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

/// Removes orphans (files no live description holds) from a namespace directory, so
/// that the names of objects whose holders were all killed disappear from disk at the
/// next use of the namespace, not only logically. Runs once per namespace and process.
pub(crate) fn sweep_orphans(ns: &Namespace) {
    use std::sync::atomic::Ordering;
    if ns.swept.swap(true, Ordering::Relaxed) {
        return;
    }
    let dir = ns.dir.as_fd();
    let Ok(names) = fs::list_dir(dir) else { return };
    for name in names {
        let Ok(fd) = fs::open_file_at(dir, &name) else {
            continue;
        };
        if let (Ok(true), Ok(a), Ok(b)) = (
            fs::try_lock_exclusive(fd.as_fd()),
            fs::stat_fd(fd.as_fd()),
            fs::stat_at(dir, &name),
        ) && a.dev == b.dev
            && a.ino == b.ino
            && a.is_file
        {
            let _ = fs::unlink_at(dir, &name);
        }
    }
}
