//! The directory tree under the root, and who may use it.
//!
//! ```text
//! <root>/                 PROCSYNC_ROOT, default /dev/shm/procsync; mode 1777 (like /tmp)
//! <root>/local-<uid>/     Local\ names of user <uid>: owned by <uid>, mode 0700
//! <root>/global/          Global\ names of every user: mode 1777 (sticky: only the
//!                         creator of a file may unlink it); owned by root or the caller
//! <root>/*/o<encoded>     one object file per name (see handle::name for the encoding)
//! <root>/*/.waits         the namespace's wait-block table
//! ```
//!
//! Every directory is opened with `O_NOFOLLOW` and checked (type, owner, mode) before
//! use; everything inside is reached relative to the verified descriptor.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::sys::fs;

/// Default root when `PROCSYNC_ROOT` is unset.
pub const DEFAULT_ROOT: &str = "/dev/shm/procsync";

/// Which namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NsKind {
    /// `Local\` (and bare names) of the calling user.
    Local,
    /// `Global\`.
    Global,
}

/// A verified namespace directory.
#[derive(Debug)]
pub(crate) struct Namespace {
    pub kind: NsKind,
    pub dir: OwnedFd,
    pub path: PathBuf,
    /// Key of this namespace (owner uid, or GLOBAL_NS): decides which wait blocks its objects' entries may name.
    pub table_key: u32,
    pub swept: std::sync::atomic::AtomicBool,
}

type Cache = Mutex<HashMap<(PathBuf, NsKind, u32), Arc<Namespace>>>;
static CACHE: OnceLock<Cache> = OnceLock::new();

#[cfg(test)]
thread_local! {
    /// Unit tests run in parallel threads of one process: each sets its own root here
    /// instead of the process-wide environment variable.
    pub(crate) static TEST_ROOT: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// A process-wide root that overrides `PROCSYNC_ROOT` (the README doctest's, see
/// `crate::doctest`); `None` almost always.
pub(crate) static ROOT_OVERRIDE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
/// Whether [`ROOT_OVERRIDE`] was ever set: every other process skips its lock.
pub(crate) static ROOT_OVERRIDDEN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The root directory in force: `PROCSYNC_ROOT` or [`DEFAULT_ROOT`].
pub(crate) fn current_root() -> PathBuf {
    #[cfg(test)]
    if let Some(p) = TEST_ROOT.with(|r| r.borrow().clone()) {
        return p;
    }
    if ROOT_OVERRIDDEN.load(std::sync::atomic::Ordering::Acquire)
        && let Some(p) = ROOT_OVERRIDE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    {
        return p;
    }
    match std::env::var_os("PROCSYNC_ROOT") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

fn io(op: &'static str) -> impl Fn(rustix::io::Errno) -> Error {
    move |e| match e {
        rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => Error::AccessDenied {
            what: format!("{op}: permission denied; check the owner and mode of the procsync root"),
        },
        e => Error::os(op, e),
    }
}

/// The namespace of the calling user (`Local`) or the shared one (`Global`) under `root`.
pub(crate) fn namespace(root: &Path, kind: NsKind) -> Result<Arc<Namespace>> {
    let uid = fs::euid();
    let key = (root.to_path_buf(), kind, uid);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(ns) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(ns.clone());
    }
    let ns = Arc::new(open_namespace(root, kind, uid)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, ns.clone());
    Ok(ns)
}

/// The root itself must be trustworthy, or whoever controls it could rename our
/// namespace directories away and let processes silently use different objects of one
/// name: owned by root or the caller, and if others may write to it, sticky (so that
/// only an entry's owner may rename or remove it), like `/tmp`. Its owner adds a
/// missing sticky bit (a root made world-writable with `chmod 777`).
fn check_root(root: &Path, root_fd: std::os::fd::BorrowedFd<'_>, uid: u32) -> Result<()> {
    let st = fs::stat_fd(root_fd).map_err(io("checking the procsync root"))?;
    let owner_ok = st.uid == 0 || st.uid == uid;
    let sticky_ok = st.mode & 0o022 == 0 || st.mode & 0o1000 != 0;
    if owner_ok && sticky_ok {
        return Ok(());
    }
    if st.uid == uid && fs::set_mode(root_fd, st.mode | 0o1000).is_ok() {
        return Ok(());
    }
    Err(Error::AccessDenied {
        what: format!(
            "the procsync root `{}` must be owned by root or by you, and sticky if others may write to it (found uid {}, mode {:o}); remove it or point PROCSYNC_ROOT elsewhere (an administrator can create it with `install -d -m 1777 -o root`)",
            root.display(),
            st.uid,
            st.mode
        ),
    })
}

fn open_namespace(root: &Path, kind: NsKind, uid: u32) -> Result<Namespace> {
    if !root.is_absolute() {
        return Err(Error::invalid(format!(
            "PROCSYNC_ROOT `{}` must be an absolute path",
            root.display()
        )));
    }
    fs::make_dirs(root, 0o1777).map_err(io("creating the procsync root"))?;
    let root_fd = fs::open_dir(root).map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => Error::AccessDenied {
            what: format!(
                "the procsync root `{}` is not a directory (a symlink?); remove it",
                root.display()
            ),
        },
        e => io("opening the procsync root")(e),
    })?;
    check_root(root, root_fd.as_fd(), uid)?;
    let (name, mode, table_key) = match kind {
        NsKind::Local => (format!("local-{uid}"), 0o700, uid),
        NsKind::Global => ("global".to_string(), 0o1777, crate::shm::layout::GLOBAL_NS),
    };
    fs::make_dir_at(root_fd.as_fd(), &name, mode).map_err(io("creating a namespace directory"))?;
    if kind == NsKind::Local
        && let Some(ns) = avoid_squatter(root, root_fd.as_fd(), &name, uid)?
    {
        return Ok(ns);
    }
    let dir = fs::open_dir_at(root_fd.as_fd(), &name).map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => Error::AccessDenied {
            what: format!(
                "`{}/{name}` is not a directory (a symlink?); remove it",
                root.display()
            ),
        },
        e => io("opening a namespace directory")(e),
    })?;
    let st = fs::stat_fd(dir.as_fd()).map_err(io("checking a namespace directory"))?;
    let path = root.join(&name);
    match kind {
        NsKind::Local => {
            if st.uid != uid || st.mode & 0o077 != 0 {
                return Err(Error::AccessDenied {
                    what: format!(
                        "`{}` must be owned by uid {uid} with mode 0700 (found uid {}, mode {:o}); remove it so procsync can recreate it",
                        path.display(),
                        st.uid,
                        st.mode
                    ),
                });
            }
        }
        NsKind::Global => {
            let owner_ok = st.uid == 0 || st.uid == uid;
            // Its owner repairs a `global` created with the wrong mode (e.g. 0777).
            let repaired = owner_ok
                && st.mode & 0o1002 != 0o1002
                && st.uid == uid
                && fs::set_mode(dir.as_fd(), 0o1777).is_ok();
            if !owner_ok || (st.mode & 0o1002 != 0o1002 && !repaired) {
                return Err(Error::AccessDenied {
                    what: format!(
                        "`{}` must be owned by root (or you) with mode 1777 (found uid {}, mode {:o}); remove it so procsync can recreate it",
                        path.display(),
                        st.uid,
                        st.mode
                    ),
                });
            }
        }
    }
    Ok(Namespace {
        kind,
        dir,
        path,
        table_key,
        swept: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Whether `local-<uid>` under the root is what it must be: a directory (not a
/// symlink) owned by `uid` with mode 0700.
fn is_ours(dir: std::os::fd::BorrowedFd<'_>, name: &str, uid: u32) -> bool {
    fs::open_dir_at(dir, name)
        .and_then(|d| fs::stat_fd(d.as_fd()))
        .is_ok_and(|st| st.uid == uid && st.mode & 0o077 == 0)
}

/// Another user pre-created `local-<uid>` (a directory, file or symlink the rightful
/// user cannot remove from the sticky root). Root moves it out of the way (it may
/// rename anything there) and goes on; any other user gets a namespace directory only
/// it can create, under its own runtime directory (`/run/user/<uid>`), named after the
/// root so that every process of that user, seeing the same squatter, agrees on it.
/// `None` when there is no squatter.
fn avoid_squatter(
    root: &Path,
    root_fd: std::os::fd::BorrowedFd<'_>,
    name: &str,
    uid: u32,
) -> Result<Option<Namespace>> {
    // Our own directory with a wrong mode is not a squatter: the normal checks refuse it
    // with the remedy. A squatter is anything else: another user's directory, a file, a
    // symlink.
    let own_dir = fs::open_dir_at(root_fd, name)
        .and_then(|d| fs::stat_fd(d.as_fd()))
        .is_ok_and(|st| st.uid == uid);
    if own_dir || is_ours(root_fd, name, uid) {
        return Ok(None);
    }
    if uid == 0 {
        let mut tag = [0u8; 8];
        let _ = getrandom::fill(&mut tag);
        let away = format!(".squatted-{name}-{:016x}", u64::from_le_bytes(tag));
        if fs::rename_noreplace_at(root_fd, name, &away).is_ok() {
            fs::make_dir_at(root_fd, name, 0o700).map_err(io("creating a namespace directory"))?;
        }
        return Ok(None); // the normal checks decide
    }
    let runtime = PathBuf::from(format!("/run/user/{uid}"));
    let squatted = |why: &str| Error::AccessDenied {
        what: format!(
            "`{}` was created by another user and cannot be used or removed by you; {why} \
             (or point PROCSYNC_ROOT at a directory of your own)",
            root.join(name).display()
        ),
    };
    let Ok(rt) = fs::open_dir(&runtime) else {
        return Err(squatted(
            "no runtime directory /run/user/<uid> to fall back to: ask an administrator to remove it",
        ));
    };
    match fs::stat_fd(rt.as_fd()) {
        Ok(st) if st.uid == uid && st.mode & 0o077 == 0 => {}
        _ => {
            return Err(squatted(
                "your runtime directory is not yours with mode 0700",
            ));
        }
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    let fallback: String = format!(
        "procsync-local-{}",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    fs::make_dir_at(rt.as_fd(), &fallback, 0o700).map_err(io("creating a namespace directory"))?;
    if !is_ours(rt.as_fd(), &fallback, uid) {
        return Err(squatted(
            "and its fallback in your runtime directory is not yours",
        ));
    }
    let dir =
        fs::open_dir_at(rt.as_fd(), &fallback).map_err(io("opening a namespace directory"))?;
    Ok(Some(Namespace {
        kind: NsKind::Local,
        dir,
        path: runtime.join(fallback),
        table_key: uid,
        swept: std::sync::atomic::AtomicBool::new(false),
    }))
}

/// The `Local\\` namespace of user `key` (or `Global\\` for `GLOBAL_NS`) under `root`:
/// another user's is reachable only for a privileged caller.
pub(crate) fn namespace_of(root: &Path, key: u32) -> Result<Arc<Namespace>> {
    if key == crate::shm::layout::GLOBAL_NS {
        return namespace(root, NsKind::Global);
    }
    if key == fs::euid() {
        return namespace(root, NsKind::Local);
    }
    // Another user's local table: only reachable for a privileged caller.
    let cache = CACHE.get_or_init(Default::default);
    let ck = (root.to_path_buf(), NsKind::Local, key);
    if let Some(ns) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&ck) {
        return Ok(ns.clone());
    }
    let root_fd = fs::open_dir(root).map_err(io("opening the procsync root"))?;
    check_root(root, root_fd.as_fd(), fs::euid())?;
    let name = format!("local-{key}");
    let dir =
        fs::open_dir_at(root_fd.as_fd(), &name).map_err(io("opening another user's namespace"))?;
    let st = fs::stat_fd(dir.as_fd()).map_err(io("checking a namespace directory"))?;
    if st.uid != key || st.mode & 0o077 != 0 {
        return Err(Error::AccessDenied {
            what: format!("`{name}` is not owned by uid {key} with mode 0700; remove it"),
        });
    }
    let ns = Arc::new(Namespace {
        kind: NsKind::Local,
        dir,
        path: root.join(name),
        table_key: key,
        swept: std::sync::atomic::AtomicBool::new(true),
    });
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ck, ns.clone());
    Ok(ns)
}
