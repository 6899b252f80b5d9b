//! Thread pidfds and an epoll set to learn when a thread exits, without polling.

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use super::Errno;

/// `PIDFD_THREAD` (Linux ≥ 6.9): a pidfd for one thread, readable when it exits.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// A pidfd that becomes readable when thread `tid` exits.
pub(crate) fn open_thread(tid: u32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(tid as i32).ok_or(Errno::SRCH)?;
    super::fdlimit::more(|| pidfd_open(pid, PidfdFlags::from_bits_retain(PIDFD_THREAD)))
}

/// A pidfd of process `pid`: readable once the process has exited, reaped or not.
pub(crate) fn open_process(pid: u32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(pid as i32).ok_or(Errno::SRCH)?;
    super::fdlimit::more(|| pidfd_open(pid, PidfdFlags::empty()))
}

/// Whether the process of pidfd `fd` has exited (a zombie has: its threads are gone,
/// though `tgkill` still finds its leader until it is reaped).
pub(crate) fn exited(fd: impl AsFd) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// An epoll set of pidfds, each tagged with a `u64`.
pub(crate) struct ExitSet {
    ep: OwnedFd,
}

impl ExitSet {
    pub(crate) fn new() -> Result<ExitSet, Errno> {
        Ok(ExitSet {
            ep: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        })
    }

    /// Watches `fd`; `tag` comes back from [`ExitSet::wait`] when it is readable.
    pub(crate) fn add(&self, fd: impl AsFd, tag: u64) -> Result<(), Errno> {
        epoll::add(
            &self.ep,
            fd,
            epoll::EventData::new_u64(tag),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        )
    }

    /// Stops watching `fd`.
    pub(crate) fn remove(&self, fd: impl AsFd) {
        let _ = epoll::delete(&self.ep, fd);
    }

    /// Blocks until some watched threads exit; returns their tags.
    pub(crate) fn wait(&self) -> Vec<u64> {
        let mut events = Vec::with_capacity(16);
        loop {
            match epoll::wait(&self.ep, rustix::buffer::spare_capacity(&mut events), None) {
                Ok(_) => return events.iter().map(|e| e.data.u64()).collect(),
                Err(Errno::INTR) => continue,
                Err(_) => return Vec::new(),
            }
        }
    }
}
