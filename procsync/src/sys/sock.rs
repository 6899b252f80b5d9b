//! Unix sequenced-packet sockets in the abstract namespace, for the per-process
//! duplication endpoint: one datagram per request and per reply, at most one
//! descriptor attached (`SCM_RIGHTS`), and the peer's credentials (`SO_PEERCRED`).
//!
//! It must not decide whom to trust: it reports the peer's pid and uid, callers decide.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType, sockopt,
};

use super::Errno;

/// Largest request or reply, in bytes.
pub(crate) const MAX_MESSAGE: usize = 1024;

fn socket() -> Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// A listening socket bound to the abstract name `name` (no file; gone with the
/// process). `EADDRINUSE` if another socket holds the name.
pub(crate) fn listen_abstract(name: &[u8]) -> Result<OwnedFd, Errno> {
    let s = socket()?;
    rustix::net::bind(&s, &SocketAddrUnix::new_abstract_name(name)?)?;
    rustix::net::listen(&s, 64)?;
    Ok(s)
}

/// The next connection (blocking).
pub(crate) fn accept(listener: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// A connection to the abstract name `name`; `ECONNREFUSED` if nobody listens.
pub(crate) fn connect_abstract(name: &[u8], timeout: Duration) -> Result<OwnedFd, Errno> {
    let s = socket()?;
    set_timeout(s.as_fd(), timeout)?;
    rustix::net::connect(&s, &SocketAddrUnix::new_abstract_name(name)?)?;
    Ok(s)
}

/// Bounds every later send and receive on `s`.
pub(crate) fn set_timeout(s: BorrowedFd<'_>, timeout: Duration) -> Result<(), Errno> {
    sockopt::set_socket_timeout(s, sockopt::Timeout::Recv, Some(timeout))?;
    sockopt::set_socket_timeout(s, sockopt::Timeout::Send, Some(timeout))
}

/// The peer's `(pid, uid)` as the kernel recorded them at connect (or listen) time.
pub(crate) fn peer(s: BorrowedFd<'_>) -> Result<(u32, u32), Errno> {
    let c = sockopt::socket_peercred(s)?;
    Ok((c.pid.as_raw_nonzero().get() as u32, c.uid.as_raw()))
}

/// Sends one message, with `fd` attached if given.
pub(crate) fn send(
    s: BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    loop {
        match rustix::net::sendmsg(s, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(Errno::MSGSIZE),
        }
    }
}

/// Receives one message into `buf`: its length and the first attached descriptor
/// (close-on-exec). Further descriptors are closed; a truncated message is `EMSGSIZE`;
/// the peer's orderly close is a length of 0.
pub(crate) fn recv(s: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let r = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match rustix::net::recvmsg(s, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            r => break r?,
        }
    };
    let mut first = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                if first.is_none() {
                    first = Some(fd);
                }
            }
        }
    }
    if r.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(Errno::MSGSIZE);
    }
    Ok((r.bytes, first))
}
