//! Pipes as doorbells between processes (`park::bell`): the waiting process makes one
//! and keeps its read end; a signaller of the same user reaches it through
//! `/proc/<pid>/fd/<n>` — a pipe, unlike an eventfd, can be reopened there — and
//! writes an 8-byte message naming the wait it rang.
//!
//! It must not know what a message means.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// A new non-blocking, close-on-exec pipe (both ends) and the read end's inode number.
/// Its size is the system's default (64 KiB): what a bell holds between two reads is far
/// less (`procsync-tokio`'s driver), a full bell only sends signallers to the fallback
/// word, and larger pipes count against the user's pipe budget
/// (`/proc/sys/fs/pipe-user-pages-soft`), which every other pipe of the user shares.
pub(crate) fn create() -> Result<(OwnedFd, OwnedFd, u64), Errno> {
    let (rx, tx) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    )?;
    let ino = rustix::fs::fstat(&rx)?.st_ino;
    Ok((rx, tx, ino))
}

/// Opens, read-write and non-blocking, the pipe that process `pid` holds as descriptor
/// `fd`, if it is an anonymous pipe with inode number `ino` owned by `uid`.
///
/// Nothing but that pipe is ever opened for writing: the descriptor is first reached with
/// `O_PATH` (which opens nothing: no device, FUSE or NFS open, no close-write event) and
/// its link must read exactly `pipe:[<ino>]`, a name only the kernel's pipe filesystem
/// gives; only then is that very file reopened through our own `/proc/self/fd`. Read-write
/// so that a write never meets a pipe without readers (no `EPIPE`, no `SIGPIPE`) should the
/// waiting process exit while we keep the descriptor.
pub(crate) fn reopen(pid: u32, fd: u32, uid: u32, ino: u64) -> Result<OwnedFd, Errno> {
    let path = format!("/proc/{pid}/fd/{fd}");
    let at = rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let own = format!("/proc/self/fd/{}", at.as_raw_fd());
    let link = rustix::fs::readlink(own.as_str(), Vec::new())?;
    if link.as_bytes() != format!("pipe:[{ino}]").as_bytes() {
        return Err(Errno::BADF);
    }
    let st = rustix::fs::fstat(&at)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo || st.st_uid != uid || st.st_ino != ino
    {
        return Err(Errno::BADF);
    }
    let got = rustix::fs::open(
        own.as_str(),
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    // The same file (`at` pins it: its number cannot have been reused in between).
    let again = rustix::fs::fstat(&got)?;
    if again.st_ino != ino || again.st_dev != st.st_dev {
        return Err(Errno::BADF);
    }
    Ok(got)
}

/// Writes one message; `Err` also when the pipe is full (`EAGAIN`).
pub(crate) fn send(fd: BorrowedFd<'_>, msg: [u8; 8]) -> Result<(), Errno> {
    match rustix::io::write(fd, &msg)? {
        8 => Ok(()),
        // Writes of at most PIPE_BUF bytes are all or nothing: never seen.
        _ => Err(Errno::IO),
    }
}

/// Reads what the pipe holds into `buf`: the number of bytes (0 when it is empty).
pub(crate) fn receive(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    match rustix::io::read(fd.as_fd(), buf) {
        Ok(n) => Ok(n),
        Err(Errno::AGAIN) => Ok(0),
        Err(e) => Err(e),
    }
}
