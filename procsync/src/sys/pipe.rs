//! Pipes as doorbells between processes (`park::bell`): the waiting process makes one
//! and keeps its read end; a signaller of the same user reaches it through
//! `/proc/<pid>/fd/<n>` — a pipe, unlike an eventfd, can be reopened there — and
//! writes an 8-byte message naming the wait it rang.
//!
//! It must not know what a message means.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// Size asked for a bell pipe: a message per rung wait (8 bytes) fits 131 072 of them,
/// more waits than a process's segments hold blocks. An unprivileged process gets at
/// most `/proc/sys/fs/pipe-max-size` (1 MiB by default); less is fine (a full pipe
/// makes signallers fall back, see `park::bell`).
const WANTED_SIZE: usize = 1 << 20;

/// Both ends of a new non-blocking, close-on-exec pipe, enlarged if the system allows,
/// and the read end's inode number.
pub(crate) fn create() -> Result<(OwnedFd, OwnedFd, u64), Errno> {
    let (rx, tx) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    )?;
    let mut size = WANTED_SIZE;
    while size > 64 * 1024 && rustix::pipe::fcntl_setpipe_size(&rx, size).is_err() {
        size /= 2;
    }
    let ino = rustix::fs::fstat(&rx)?.st_ino;
    Ok((rx, tx, ino))
}

/// Opens, read-write and non-blocking, the pipe that process `pid` holds as
/// descriptor `fd`, if it is a pipe owned by `uid` whose inode number is `ino`. Read-write
/// so that a write never meets a pipe without readers (no `EPIPE`, no `SIGPIPE`) should
/// the waiting process exit while we keep the descriptor.
pub(crate) fn reopen(pid: u32, fd: u32, uid: u32, ino: u64) -> Result<OwnedFd, Errno> {
    let path = format!("/proc/{pid}/fd/{fd}");
    let got = rustix::fs::open(
        path.as_str(),
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&got)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo || st.st_uid != uid || st.st_ino != ino
    {
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
