//! Finding named objects on disk, for `ls`, `inspect` and `gc`: the namespace
//! directories under `PROCSYNC_ROOT` (docs/ARCHITECTURE.md, "Files and directories"),
//! object file names decoded back to object names, the processes whose descriptors
//! point at a file (`/proc/*/fd`), and the orphan probe of the lifetime protocol (a
//! non-blocking exclusive `flock` succeeds only when no live description holds the
//! file).
//!
//! It reads directories and `/proc` and probes locks; it never maps or interprets an
//! object file (states come from the library, through a handle), and the only files it
//! ever removes are orphans, exactly as the library's own sweep does.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};

/// A namespace directory: `Local\` names of this user, or `Global\` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Namespace {
    /// `Local\x` and bare names of the calling user (`<root>/local-<uid>/`).
    Local,
    /// `Global\x` names of every user (`<root>/global/`).
    Global,
}

impl Namespace {
    /// `local` or `global`.
    pub fn word(self) -> &'static str {
        match self {
            Namespace::Local => "local",
            Namespace::Global => "global",
        }
    }
}

/// The root the library uses: `PROCSYNC_ROOT` when set and not empty, else the default.
pub fn root() -> PathBuf {
    match std::env::var_os("PROCSYNC_ROOT") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(procsync::DEFAULT_ROOT),
    }
}

/// The directory of `ns` under `root`.
pub fn dir(root: &Path, ns: Namespace) -> PathBuf {
    match ns {
        Namespace::Local => root.join(format!("local-{}", rustix::process::geteuid().as_raw())),
        Namespace::Global => root.join("global"),
    }
}

/// One file in a namespace directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its namespace.
    pub ns: Namespace,
    /// The object name as the library takes it (`x` or `Global\x`); `None` for a name
    /// stored hashed (longer than 200 encoded bytes), which cannot be decoded.
    pub name: Option<String>,
    /// The file.
    pub path: PathBuf,
}

/// Every object file (`o…` and `h…`) of `ns`, sorted by file name; a missing directory
/// has none.
pub fn entries(root: &Path, ns: Namespace) -> Vec<Entry> {
    files(root, ns)
        .into_iter()
        .filter_map(|path| {
            let file = path.file_name()?.to_str()?.to_owned();
            let name = if let Some(enc) = file.strip_prefix('o') {
                let base = decode(enc)?;
                Some(match ns {
                    Namespace::Local => base,
                    Namespace::Global => format!("Global\\{base}"),
                })
            } else if file.starts_with('h') {
                None
            } else {
                return None;
            };
            Some(Entry { ns, name, path })
        })
        .collect()
}

/// Every file of `ns` (object files and the wait-block table), sorted.
pub fn files(root: &Path, ns: Namespace) -> Vec<PathBuf> {
    let Ok(list) = fs::read_dir(dir(root, ns)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = list.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths
}

/// The file name of object `name` (`Local\x`, `Global\x` or `x`): its namespace and
/// `o<encoded>`, or `None` for a name the library would store hashed or refuse.
pub fn file_of(name: &str) -> Option<(Namespace, String)> {
    let (ns, base) = if let Some(rest) = name.strip_prefix("Global\\") {
        (Namespace::Global, rest)
    } else {
        (
            Namespace::Local,
            name.strip_prefix("Local\\").unwrap_or(name),
        )
    };
    let mut out = String::from("o");
    for b in base.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    (out.len() <= 200 && !base.is_empty()).then_some((ns, out))
}

/// Decodes the part after `o`: `%XX` escapes back to bytes, which must be UTF-8.
fn decode(enc: &str) -> Option<String> {
    let bytes = enc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = enc.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The processes (other than this one) with a descriptor open on the file at `path`,
/// found by comparing device and inode through `/proc/<pid>/fd`; only processes whose
/// descriptors this user may read are seen. Sorted, without duplicates.
pub fn holders(path: &Path) -> Vec<u32> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(Result::ok)
                .any(|fd| fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether the file at `path` is an orphan (no live description holds its shared
/// lock); with `remove`, unlinks it while holding the exclusive lock, as the library's
/// sweep does. `None` when the file is gone or cannot be opened.
pub fn probe_orphan(path: &Path, remove: bool) -> Option<bool> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    if rustix::fs::flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
        return Some(false);
    }
    // Still the file the name names (not unlinked and replaced meanwhile)?
    let (a, b) = (
        rustix::fs::fstat(fd.as_fd()).ok()?,
        fs::symlink_metadata(path).ok()?,
    );
    if a.st_ino != b.ino() || a.st_dev != b.dev() || !b.is_file() {
        return None;
    }
    if remove {
        fs::remove_file(path).ok()?;
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_file_names() {
        for name in ["x", "build slots/1", "é%", "a.b-c_d"] {
            let (ns, file) = file_of(name).expect("short name");
            assert_eq!(ns, Namespace::Local);
            assert_eq!(decode(&file[1..]).as_deref(), Some(name));
        }
        assert_eq!(
            file_of("Global\\a b"),
            Some((Namespace::Global, "oa%20b".into()))
        );
        assert_eq!(file_of("Local\\q"), Some((Namespace::Local, "oq".into())));
        assert_eq!(decode("%G1"), None);
        assert_eq!(decode("%4"), None);
    }
}
