//! Files and directories for the object store: verified directories, anonymous
//! temporary files published by `linkat`, advisory `flock`s, memfds.
//!
//! Every path is resolved relative to a directory descriptor with `O_NOFOLLOW`, so a
//! symlink planted in a namespace directory is refused, never followed. Descriptors of
//! object files (opened, temporary, memfd) are numbered 3 or above
//! (`unix::above_stdio`): they may become handle values.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

use super::Errno;

/// What `fstat` tells us about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub uid: u32,
    pub mode: u32,
    pub is_dir: bool,
    pub is_file: bool,
}

fn file_id(st: &rustix::fs::Stat) -> FileId {
    let kind = st.st_mode & libc::S_IFMT;
    FileId {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        is_dir: kind == libc::S_IFDIR,
        is_file: kind == libc::S_IFREG,
    }
}

/// `fstat`.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> Result<FileId, Errno> {
    rustix::fs::fstat(fd).map(|s| file_id(&s))
}

/// `fstatat(…, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &str) -> Result<FileId, Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|s| file_id(&s))
}

/// Opens a directory by absolute path without following a final symlink.
pub(crate) fn open_dir(path: &std::path::Path) -> Result<OwnedFd, Errno> {
    super::fdlimit::more(|| {
        rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
}

/// Opens directory `name` inside `dir`, without following symlinks.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    super::fdlimit::more(|| {
        rustix::fs::openat(
            dir,
            name,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
}

/// `mkdirat` followed by `fchmod`-like fix of the mode (the umask is not ours to obey
/// for a shared directory). EEXIST is success.
pub(crate) fn make_dir_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> Result<bool, Errno> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
        Ok(()) => {
            let fd = open_dir_at(dir, name)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            Ok(true)
        }
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to` inside `dir`, never replacing an existing `to`.
pub(crate) fn rename_noreplace_at(dir: BorrowedFd<'_>, from: &str, to: &str) -> Result<(), Errno> {
    rustix::fs::renameat_with(dir, from, dir, to, rustix::fs::RenameFlags::NOREPLACE)
}

/// Creates all missing components of an absolute path with `mode` (for the root).
pub(crate) fn make_dirs(path: &std::path::Path, mode: u32) -> Result<(), Errno> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
        Ok(()) => {
            // Through a descriptor opened without following links: a `chmod` by path
            // would follow a symlink swapped in meanwhile (and a root caller would then
            // open up whatever it points at).
            let fd = open_dir(path)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            Ok(())
        }
        Err(Errno::EXIST) => Ok(()),
        Err(Errno::NOENT) => {
            if let Some(parent) = path.parent() {
                make_dirs(parent, 0o755)?;
            }
            make_dirs(path, mode)
        }
        Err(e) => Err(e),
    }
}

/// An unnamed temporary file in `dir` (`O_TMPFILE`), to be initialised and published.
pub(crate) fn create_tmp(dir: BorrowedFd<'_>, mode: u32) -> Result<OwnedFd, Errno> {
    let fd = super::fdlimit::more(|| {
        rustix::fs::openat(
            dir,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
    })?;
    let fd = super::unix::above_stdio(fd)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// Gives the temporary file `fd` the name `name` in `dir`; fails with EEXIST if the
/// name is taken, so publication is atomic and never replaces anything.
///
/// `linkat(fd, "", AT_EMPTY_PATH)` names the file directly; Linux allows it to the
/// opener of the file since 6.10 (before, only with `CAP_DAC_READ_SEARCH`) and refuses
/// it with ENOENT otherwise, after which this process links through
/// `/proc/self/fd/N` instead (a path walk through procfs: ~2 µs more per create here).
pub(crate) fn publish(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static EMPTY_PATH_REFUSED: AtomicBool = AtomicBool::new(false);
    if !EMPTY_PATH_REFUSED.load(Ordering::Relaxed) {
        match rustix::fs::linkat(fd, "", dir, name, AtFlags::EMPTY_PATH) {
            Err(Errno::NOENT) => EMPTY_PATH_REFUSED.store(true, Ordering::Relaxed),
            r => return r,
        }
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )
}

/// Opens an existing regular file `name` in `dir`, read-write, never through a symlink.
pub(crate) fn open_file_at(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    let fd = super::fdlimit::more(|| {
        rustix::fs::openat(
            dir,
            name,
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
    })?;
    super::unix::above_stdio(fd)
}

/// `unlinkat`.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    rustix::fs::unlinkat(dir, name, AtFlags::empty())
}

/// Names in a directory, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<String>, Errno> {
    let mut names = Vec::new();
    each_name(dir, |name| names.push(name.to_owned()))?;
    Ok(names)
}

/// Calls `f` with each name in a directory, without `.` and `..` (no list is built:
/// a namespace may hold a hundred thousand names).
pub(crate) fn each_name(dir: BorrowedFd<'_>, mut f: impl FnMut(&str)) -> Result<(), Errno> {
    let mut d = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy();
        if name != "." && name != ".." {
            f(&name);
        }
    }
    Ok(())
}

/// Takes a shared lock on the open description, blocking while an exclusive one is held.
pub(crate) fn lock_shared(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        match rustix::fs::flock(fd, FlockOperation::LockShared) {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Tries a shared lock without blocking; `Ok(false)` if an exclusive lock is held.
pub(crate) fn try_lock_shared(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    match rustix::fs::flock(fd, FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Tries an exclusive lock without blocking; `Ok(false)` if anyone holds a lock.
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An anonymous file for an unnamed object.
pub(crate) fn memfd(name: &str) -> Result<OwnedFd, Errno> {
    let fd = super::fdlimit::more(|| {
        rustix::fs::memfd_create(
            name,
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
    })?;
    super::unix::above_stdio(fd)
}

/// Seals an initialised memfd against resizing (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`).
pub(crate) fn seal_size(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::fs::fcntl_add_seals(
        fd,
        rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW | rustix::fs::SealFlags::SEAL,
    )
}

/// `ftruncate` (grows a fresh file to its fixed size; tmpfs zero-fills).
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> Result<(), Errno> {
    rustix::fs::ftruncate(fd, len)
}

/// Writes all of `data` at `offset`.
pub(crate) fn write_at(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        done += rustix::io::pwrite(fd, &data[done..], offset + done as u64)?;
    }
    Ok(())
}

/// `fchmod`.
pub(crate) fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
}

/// Effective user id of the caller.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
