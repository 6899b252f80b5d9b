//! Duplication between processes: both directions of Win32's `DuplicateHandle`.
//!
//! **The endpoint.** A process that accepts duplicates ([`accept_duplicates`]; every
//! `procsync repl` does) listens on the abstract Unix socket `procsync/<pid>`
//! (`SOCK_SEQPACKET`; abstract, so there is no file to clean up and the name goes with
//! the process), served by one thread. Any user can bind any abstract name, so the
//! name proves nothing: both sides check the other with `SO_PEERCRED`. The endpoint
//! admits peers of its own uid, and root; a client talks only to a listener whose pid
//! is the target's and whose uid is its own (root may talk to anyone). One request and
//! one reply per connection, each one datagram:
//!
//! ```text
//! push ACCESS INHERIT      + the descriptor  →  ok VALUE          | err CODE TEXT
//! pull VALUE ACCESS CLOSE                    →  ok ACCESS KIND    + the descriptor | err CODE TEXT
//! ACCESS: s | m | sm, or `same` in a pull;  INHERIT, CLOSE: 0 | 1
//! ```
//!
//! **Push** ([`Handle::duplicate_into`]): the descriptor travels with `SCM_RIGHTS`; the
//! target validates and maps it, keeps it as a pending handle (value = the received
//! descriptor's number) until the program adopts it ([`crate::adopt`], `adopt V B`),
//! and replies with the value. **Pull** ([`duplicate_from`]): the source sends a
//! duplicate of handle VALUE's descriptor and, with close-source, closes VALUE whether or
//! not the duplication succeeded (HD-05). A source without an endpoint is reached with
//! `pidfd_getfd` instead where the kernel permits (ptrace rights); its access mask is
//! then unknown, and the duplicate gets the rights asked for.
//!
//! **Lifetime.** A passed descriptor is the sender's open description, which holds the
//! shared `flock`; while in flight the socket holds it. So a duplicate counts as a
//! holder from the moment it is sent, also after the source closes or dies (HD-12).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::core::Handle;
use super::inherit::handle_from_fd;
use super::pending::{self, Origin};
use super::registry::{self, access_word, parse_access, parse_kind};
use super::vocab::Access;
use crate::error::{Error, Result};
use crate::obj::ObjectKind;
use crate::sys::{Errno, fs, sock, thread, unix};

/// How long a client waits for a target's endpoint to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the endpoint waits for a connected client's request or for its reply to go.
const SERVE_TIMEOUT: Duration = Duration::from_secs(2);

fn endpoint_name(pid: u32) -> Vec<u8> {
    format!("procsync/{pid}").into_bytes()
}

static ENDPOINT: OnceLock<std::result::Result<(), Errno>> = OnceLock::new();

/// Starts this process's endpoint, so that other processes of the same user (and root)
/// can push handles into it and pull handles out of it. Idempotent; the REPL calls it
/// at startup. Without it, pushes into this process fail, and pulls fall back to
/// `pidfd_getfd`.
pub fn accept_duplicates() -> Result<()> {
    let r = *ENDPOINT.get_or_init(|| {
        let pid = thread::getpid();
        let listener = sock::listen_abstract(&endpoint_name(pid))?;
        std::thread::Builder::new()
            .name("procsync-endpoint".into())
            .spawn(move || serve(listener))
            .map_err(|_| Errno::AGAIN)?;
        Ok(())
    });
    r.map_err(|e| match e {
        Errno::ADDRINUSE => Error::AccessDenied {
            what: format!(
                "another process holds the endpoint name `procsync/{}` of this process; find it (`ss -xlp | grep procsync`) and stop it",
                thread::getpid()
            ),
        },
        e => Error::os("starting the duplication endpoint", e),
    })
}

/// Registers `hook`, called with the value of a handle that another process closed
/// with a close-source pull (`DUPLICATE_CLOSE_SOURCE`). The handle already fails every
/// call; the hook lets the program drop it, which releases the object. Called on the
/// endpoint's thread; it must not block for long.
pub fn on_remote_close(hook: impl Fn(u64) + Send + Sync + 'static) {
    pending::set_close_hook(Arc::new(hook));
}

fn serve(listener: OwnedFd) {
    loop {
        match sock::accept(listener.as_fd()) {
            Ok(conn) => serve_one(conn.as_fd()),
            // Out of descriptors, most likely: let some go before trying again.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn serve_one(conn: BorrowedFd<'_>) {
    let _ = sock::set_timeout(conn, SERVE_TIMEOUT);
    let Ok((pid, uid)) = sock::peer(conn) else {
        return;
    };
    let me = fs::euid();
    let reply = if uid != me && uid != 0 {
        Err(Error::AccessDenied {
            what: format!(
                "process {pid} of uid {uid} may not duplicate handles of process {} (uid {me})",
                thread::getpid()
            ),
        })
    } else {
        let mut buf = [0u8; sock::MAX_MESSAGE];
        let Ok((n, fd)) = sock::recv(conn, &mut buf) else {
            return;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        request(&text, fd)
    };
    let _ = match reply {
        Ok((text, fd)) => sock::send(conn, text.as_bytes(), fd.as_ref().map(|f| f.as_fd())),
        Err(e) => sock::send(conn, error_line(&e).as_bytes(), None),
    };
}

fn error_line(e: &Error) -> String {
    let text: String = e.to_string().chars().filter(|c| *c != '\n').collect();
    let mut line = format!("err {} {text}", e.code());
    if line.len() > sock::MAX_MESSAGE {
        let mut cut = sock::MAX_MESSAGE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

fn bad_request(text: &str) -> Error {
    Error::invalid(format!("malformed duplication request `{text}`"))
}

/// One request, as the endpoint serves it: the reply line and the descriptor to attach.
fn request(text: &str, fd: Option<OwnedFd>) -> Result<(String, Option<OwnedFd>)> {
    let words: Vec<&str> = text.split(' ').collect();
    match words.as_slice() {
        ["push", access, inherit] => {
            let access = parse_access(access).ok_or_else(|| bad_request(text))?;
            let fd = fd.ok_or_else(|| bad_request(text))?;
            let value = accept_push(fd, access, *inherit == "1")?;
            Ok((format!("ok {value}"), None))
        }
        ["pull", value, access, close] => {
            let value = value.parse().map_err(|_| bad_request(text))?;
            let access = match *access {
                "same" => None,
                a => Some(parse_access(a).ok_or_else(|| bad_request(text))?),
            };
            let (fd, access, kind) = give_pull(value, access, *close == "1")?;
            Ok((
                format!("ok {} {}", access_word(access), kind.name()),
                Some(fd),
            ))
        }
        _ => Err(bad_request(text)),
    }
}

/// Target side of a push: a pending handle of the received descriptor.
fn accept_push(fd: OwnedFd, access: Access, inherit: bool) -> Result<u64> {
    let h = handle_from_fd(fd, None, access, inherit)?;
    Ok(pending::park(Origin::Received, h))
}

/// Source side of a pull: a duplicate of handle `value`'s descriptor with `access`
/// (`None` = the handle's), never more than the handle has (HD-04). With `close`, the
/// handle is closed whatever the outcome (HD-05).
fn give_pull(
    value: u64,
    access: Option<Access>,
    close: bool,
) -> Result<(OwnedFd, Access, ObjectKind)> {
    let r = (|| {
        let slot = registry::find(value).ok_or_else(|| no_handle(value))?;
        let access = access.unwrap_or(slot.access);
        if !slot.access.contains(access) {
            return Err(Error::AccessDenied {
                what: format!(
                    "handle {value} has access `{}`; a duplicate may not have more (asked `{}`)",
                    access_word(slot.access),
                    access_word(access)
                ),
            });
        }
        let fd = slot
            .with_fd(unix::dup_cloexec)
            .ok_or_else(|| no_handle(value))?
            .map_err(|e| Error::os("duplicating a handle's descriptor", e))?;
        Ok((fd, access, slot.kind))
    })();
    if close {
        pending::close_from_outside(value);
    }
    r
}

fn no_handle(value: u64) -> Error {
    Error::InvalidHandle(format!(
        "process {} has no handle with value {value}; check the value (`handle A` there)",
        thread::getpid()
    ))
}

/// The words that mark "no endpoint" (a pull then tries `pidfd_getfd`).
const NO_ENDPOINT: &str = "does not accept duplicates";

fn no_endpoint(pid: u32) -> Error {
    Error::InvalidHandle(format!(
        "process {pid} {NO_ENDPOINT} (it runs no procsync endpoint; a program enables it with procsync::accept_duplicates, as every `procsync repl` does)"
    ))
}

fn no_process(pid: u32) -> Error {
    Error::InvalidHandle(format!("there is no process {pid}"))
}

/// A connection to `pid`'s endpoint, after checking who listens there.
fn connect(pid: u32) -> Result<OwnedFd> {
    let conn = match sock::connect_abstract(&endpoint_name(pid), CLIENT_TIMEOUT) {
        Ok(c) => c,
        Err(Errno::CONNREFUSED | Errno::NOENT) => {
            return Err(if unix::process_exists(pid) {
                no_endpoint(pid)
            } else {
                no_process(pid)
            });
        }
        Err(e) => return Err(Error::os("connecting to another process's endpoint", e)),
    };
    let (peer_pid, peer_uid) = sock::peer(conn.as_fd())
        .map_err(|e| Error::os("checking another process's endpoint", e))?;
    let me = fs::euid();
    if peer_pid != pid || (peer_uid != me && me != 0) {
        return Err(Error::AccessDenied {
            what: format!(
                "the endpoint name of process {pid} is held by process {peer_pid} of uid {peer_uid}; refusing to pass it a handle"
            ),
        });
    }
    Ok(conn)
}

/// Sends one request to `pid` and returns the words after `ok`, and the attached
/// descriptor.
fn ask(pid: u32, text: &str, fd: Option<BorrowedFd<'_>>) -> Result<(Vec<String>, Option<OwnedFd>)> {
    let conn = connect(pid)?;
    let os = |e| Error::os("talking to another process's endpoint", e);
    sock::send(conn.as_fd(), text.as_bytes(), fd).map_err(os)?;
    let mut buf = [0u8; sock::MAX_MESSAGE];
    let (n, got) = sock::recv(conn.as_fd(), &mut buf).map_err(os)?;
    if n == 0 {
        return Err(os(Errno::CONNRESET));
    }
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    if let Some(rest) = reply.strip_prefix("ok") {
        return Ok((rest.split_whitespace().map(str::to_string).collect(), got));
    }
    let rest = reply.strip_prefix("err ").unwrap_or(&reply);
    let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    // Said by that process about itself, or else said to be from it: never both.
    let msg = if msg.starts_with(&format!("process {pid} ")) {
        msg.to_owned()
    } else {
        format!("process {pid}: {msg}")
    };
    Err(match code {
        "not-found" => Error::InvalidHandle(msg),
        "access-denied" => Error::AccessDenied { what: msg },
        "wrong-type" => Error::WrongType { what: msg },
        "invalid-argument" => Error::InvalidArgument { why: msg },
        "unsupported" => Error::Unsupported(msg),
        _ => Error::NotInheritable(msg),
    })
}

impl Handle {
    /// Whether another process closed this handle with a close-source pull (every call
    /// on it then fails; drop it, see [`on_remote_close`]).
    pub fn is_closed(&self) -> bool {
        self.slot.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `DuplicateHandle` into process `pid` (HD-07, HD-08): the target gets a handle
    /// with `access` (`None` = this handle's rights, HD-02; more fails, HD-04) and
    /// inheritability `inherit` (HD-09), waiting there until it adopts it
    /// ([`crate::adopt`]). Returns the value the target knows it by. The target must
    /// accept duplicates ([`accept_duplicates`]) and run as the same user (or this
    /// process as root).
    pub fn duplicate_into(&self, pid: u32, access: Option<Access>, inherit: bool) -> Result<u64> {
        self.check_open()?;
        let access = self.duplicate_access(access)?;
        if pid == thread::getpid() {
            let h = self.duplicate(Some(access))?;
            h.slot
                .inherit
                .store(inherit, std::sync::atomic::Ordering::Relaxed);
            return Ok(pending::park(Origin::Received, h));
        }
        let text = format!("push {} {}", access_word(access), u8::from(inherit));
        let (words, _) = self
            .slot
            .with_fd(|fd| ask(pid, &text, Some(fd)))
            .ok_or_else(|| Error::InvalidHandle("the handle was closed".into()))??;
        words
            .first()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::invalid(format!("process {pid} answered a push without a value")))
    }

    /// `DuplicateHandle` into process `pid` with `DUPLICATE_CLOSE_SOURCE`: as
    /// [`Handle::duplicate_into`], and this handle is closed whatever the outcome (HD-05).
    pub fn move_into(self, pid: u32, access: Option<Access>, inherit: bool) -> Result<u64> {
        let r = self.duplicate_into(pid, access, inherit);
        drop(self);
        r
    }
}

/// `DuplicateHandle` out of process `pid`: a handle here to the object that handle
/// `value` of `pid` names, with `access` (`None` = the same rights; more fails, HD-04)
/// and inheritability `inherit`. With `close_source`, handle `value` is closed in `pid`
/// even if the duplication fails (HD-05); the program there learns it through
/// [`on_remote_close`]. Uses `pid`'s endpoint; without one (and without close-source)
/// it takes the descriptor with `pidfd_getfd` where the kernel permits, and then grants
/// the rights asked for (the source's mask is unknown).
pub fn duplicate_from(
    pid: u32,
    value: u64,
    access: Option<Access>,
    inherit: bool,
    close_source: bool,
) -> Result<Handle> {
    if pid == thread::getpid() {
        let (fd, access, kind) = give_pull(value, access, close_source)?;
        return handle_from_fd(fd, Some(kind), access, inherit);
    }
    let text = format!(
        "pull {value} {} {}",
        access.map_or("same", access_word),
        u8::from(close_source)
    );
    match ask(pid, &text, None) {
        Ok((words, Some(fd))) => {
            let granted = words.first().and_then(|w| parse_access(w));
            let kind = words.get(1).map(String::as_str);
            let (Some(granted), Some(kind)) = (granted, kind) else {
                return Err(Error::invalid(format!(
                    "process {pid} answered a pull without access or type"
                )));
            };
            handle_from_fd(fd, parse_kind(kind), granted, inherit)
        }
        Ok((_, None)) => Err(Error::invalid(format!(
            "process {pid} answered a pull without a descriptor"
        ))),
        Err(Error::InvalidHandle(msg))
            if !close_source && unix::process_exists(pid) && msg.contains(NO_ENDPOINT) =>
        {
            let fd = unix::take_from_process(pid, value).map_err(|e| match e {
                Errno::BADF => Error::InvalidHandle(format!("process {pid} has no handle with value {value}")),
                Errno::PERM | Errno::ACCESS => Error::AccessDenied {
                    what: format!(
                        "process {pid} accepts no duplicates and the kernel refuses pidfd_getfd on it; start its endpoint (procsync::accept_duplicates)"
                    ),
                },
                e => Error::os("taking a descriptor out of another process", e),
            })?;
            handle_from_fd(fd, None, access.unwrap_or(Access::ALL), inherit)
        }
        Err(e) => Err(e),
    }
}
