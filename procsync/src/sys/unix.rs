//! Descriptors that travel between processes: a private duplicate per handle,
//! numbers above standard I/O, close-on-exec, the path a descriptor names, taking over a descriptor number that a
//! parent left open across `exec`, keeping chosen descriptors open across the `exec` of
//! a child, and taking a descriptor out of another process (`pidfd_getfd`).
//!
//! It must not know what the descriptors are: callers check that a descriptor is an
//! object file before they trust it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;

use rustix::io::FdFlags;

use super::Errno;

/// Lowest number a handle's descriptor gets: never standard input, output or error,
/// which a child's standard I/O set-up may overwrite.
const MIN_HANDLE_FD: RawFd = 3;

/// A descriptor to keep open across the `exec` of a child: its number and the file it
/// must still name at that moment (device, inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeepFd {
    pub fd: RawFd,
    pub dev: u64,
    pub ino: u64,
}

/// A new descriptor of the same open description, close-on-exec, numbered 3 or above.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    super::fdlimit::more(|| rustix::io::fcntl_dupfd_cloexec(fd, MIN_HANDLE_FD))
}

/// `fd` itself if it is numbered 3 or above (always, unless this process closed its
/// standard input, output or error), else a duplicate that is (same open description,
/// close-on-exec) and `fd` is closed: a descriptor that may become a handle's value
/// never has the number of a standard stream.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= MIN_HANDLE_FD {
        return Ok(fd);
    }
    dup_cloexec(std::os::fd::AsFd::as_fd(&fd))
}

/// Sets close-on-exec on `fd`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = rustix::io::fcntl_getfd(fd)?;
    rustix::io::fcntl_setfd(fd, flags | FdFlags::CLOEXEC)
}

/// The path the kernel shows for `fd` (`/proc/self/fd/N`): an absolute path, with
/// ` (deleted)` appended once unlinked, or `/memfd:NAME (deleted)` for a memfd.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Result<PathBuf, Errno> {
    use std::os::unix::ffi::OsStringExt;
    let link = rustix::fs::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()), Vec::new())?;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(
        link.into_bytes(),
    )))
}

/// Whether `fd` is a memfd sealed against shrinking and growing (so that no holder can
/// truncate it under another's mapping).
pub(crate) fn size_sealed(fd: BorrowedFd<'_>) -> bool {
    use rustix::fs::SealFlags;
    rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SealFlags::SHRINK | SealFlags::GROW))
}

/// `fstat` of a raw descriptor number: `(dev, ino)`, or `None` if it is not open.
fn raw_identity(fd: RawFd) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fstat` only reads the number (an invalid one fails with EBADF) and
    // writes a `struct stat` into the buffer we own; no descriptor is claimed.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: `fstat` succeeded, so it filled the whole structure.
    let st = unsafe { st.assume_init() };
    Some((st.st_dev, st.st_ino))
}

/// Takes ownership of descriptor number `fd`, which a parent left open across `exec`
/// for this process, if it is open and still names the file `(dev, ino)`; sets
/// close-on-exec on it. `None` otherwise.
///
/// The caller must make sure that nothing else in this process owns the number: it
/// claims each inherited number at most once (see `handle::inherit`).
pub(crate) fn claim_inherited(fd: RawFd, dev: u64, ino: u64) -> Option<OwnedFd> {
    if fd < MIN_HANDLE_FD || raw_identity(fd)? != (dev, ino) {
        return None;
    }
    // SAFETY: the number is open (fstat succeeded just above) and names the object
    // file the parent described; it was open when this program started (inherited), so
    // no code of this process created it, and the caller claims each inherited number
    // once, so no other `OwnedFd` owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(std::os::fd::AsFd::as_fd(&owned)).ok()?;
    Some(owned)
}

/// Arranges for `cmd`'s child to keep exactly the descriptors `keep` open across its
/// `exec` (clears their close-on-exec flag after `fork`), each only if it still names
/// the file it named when the list was made. Every other descriptor of this library is
/// close-on-exec and stays behind.
pub(crate) fn keep_on_exec(cmd: &mut Command, keep: Vec<KeepFd>) {
    if keep.is_empty() {
        return;
    }
    let hook = move || -> std::io::Result<()> {
        for k in &keep {
            // Only fstat and fcntl: both async-signal-safe, no allocation, no lock.
            if raw_identity(k.fd) == Some((k.dev, k.ino)) {
                // SAFETY: plain fcntl on a number we just saw open; it changes only the
                // descriptor's close-on-exec flag in this (forked, single-threaded) child.
                let flags = unsafe { libc::fcntl(k.fd, libc::F_GETFD) };
                if flags >= 0 {
                    // SAFETY: as above.
                    unsafe { libc::fcntl(k.fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
                }
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec in the child; it calls only fstat and
    // fcntl (async-signal-safe), takes no lock, allocates nothing and touches no state
    // shared with other threads of the parent (it owns its `keep` vector, which was
    // allocated before the fork).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// A copy of descriptor `fd` of process `pid` (`pidfd_getfd`; needs ptrace rights over
/// it: same user and a permissive Yama setting, or CAP_SYS_PTRACE). Close-on-exec.
pub(crate) fn take_from_process(pid: u32, fd: u64) -> Result<OwnedFd, Errno> {
    use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Errno::SRCH)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::BADF)?;
    let pidfd = super::fdlimit::more(|| pidfd_open(pid, PidfdFlags::empty()))?;
    super::fdlimit::more(|| pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()))
}

/// Whether process `pid` exists (it may belong to another user).
pub(crate) fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
