//! The process's table of handle values.
//!
//! A handle's **value** is the number of a descriptor of its object's file, the same
//! open description as the object's share-locked descriptor ([`ValueFd`]): for the first
//! handle of an open, that very descriptor, lent by the object (so a handle from
//! `create`/`open` costs one descriptor, not two); for every other handle (duplicates,
//! in-process opens of a held name) a close-on-exec duplicate (`F_DUPFD_CLOEXEC`,
//! numbered 3 or above) that the handle alone owns. Either way it holds the same shared
//! `flock` and changes nothing in the lifetime count; the number is unique in the
//! process while the handle lives (HD-01: a duplicate's number is its own, and the
//! object's number is lent once and stays open, so never reused, while the object
//! lives), a child that inherits the descriptor sees the same number (HI-02), and
//! `pidfd_getfd` can take it by that number.
//!
//! `LIVE` maps value → the handle's [`Slot`] (weak), for every handle of the process:
//! what the inheritance extension enumerates and the endpoint serves (pull,
//! close-source). A closed handle leaves it at once, so its value is refused
//! everywhere a value is looked up, also while its number is still open as the
//! object's descriptor. Its lock is never held together with another lock of this crate
//! except after `handle::pending`'s (`PENDING → LIVE`).
//!
//! It must not touch shared memory or interpret objects, and knows slots, not handles:
//! `Handle` (in `core`) sits on it and must not be imported here.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::vocab::Access;
use crate::error::{Error, Result};
use crate::obj::{Object, ObjectKind};
use crate::sys::fs;
use crate::sys::unix::KeepFd;

/// The descriptor whose number is a handle's value.
#[derive(Debug)]
pub(crate) enum ValueFd {
    /// A duplicate of the object's descriptor that the handle alone owns.
    Own(OwnedFd),
    /// The object's own descriptor, lent to its first handle
    /// ([`Object::lend_backing`]): it closes with the object, after the handle's last
    /// use of it. The reference here is let go in [`unregister`], before the handle
    /// lets go of its own, so it never keeps the object past its handles.
    Lent(Arc<Object>),
}

impl ValueFd {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            ValueFd::Own(fd) => fd.as_fd(),
            ValueFd::Lent(obj) => obj.backing_fd(),
        }
    }
}

/// What the registry knows of one handle; shared by the handle and the `LIVE` map.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The handle's value: the number of `fd`.
    pub value: u64,
    /// The object's type.
    pub kind: ObjectKind,
    /// The handle's rights.
    pub access: Access,
    /// Device and inode of the object file (to recognise the descriptor after `fork`).
    dev: u64,
    ino: u64,
    /// `HANDLE_FLAG_INHERIT`.
    pub inherit: AtomicBool,
    /// Closed from outside (close-source of a duplication pulled by another process):
    /// every later call on the handle fails.
    pub closed: AtomicBool,
    /// The descriptor whose number is the value; `None` once closed.
    fd: Mutex<Option<ValueFd>>,
}

impl Slot {
    /// Runs `f` with the handle's descriptor, if it is still open.
    pub(crate) fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> T) -> Option<T> {
        let fd = lock(&self.fd);
        fd.as_ref().map(|fd| f(fd.fd()))
    }

    fn keep(&self) -> KeepFd {
        KeepFd {
            fd: self.value as i32,
            dev: self.dev,
            ino: self.ino,
        }
    }
}

type Live = Mutex<HashMap<u64, Weak<Slot>>>;
static LIVE: OnceLock<Live> = OnceLock::new();

/// Locks `m`, also after a panic in another holder (no state of the handle layer is
/// left half-changed across a panic).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn live() -> MutexGuard<'static, HashMap<u64, Weak<Slot>>> {
    lock(LIVE.get_or_init(Default::default))
}

/// Records a new handle whose value is `fd`'s number; `file` is the device and inode
/// of the object file if the caller knows them (`None`: looked up).
pub(crate) fn register(
    fd: ValueFd,
    file: Option<(u64, u64)>,
    kind: ObjectKind,
    access: Access,
    inherit: bool,
) -> Result<Arc<Slot>> {
    let (dev, ino) = match file {
        Some(file) => file,
        None => {
            let st =
                fs::stat_fd(fd.fd()).map_err(|e| Error::os("checking a handle's descriptor", e))?;
            (st.dev, st.ino)
        }
    };
    let value =
        u64::try_from(fd.fd().as_raw_fd()).map_err(|_| Error::invalid("negative descriptor"))?;
    let slot = Arc::new(Slot {
        value,
        kind,
        access,
        dev,
        ino,
        inherit: AtomicBool::new(inherit),
        closed: AtomicBool::new(false),
        fd: Mutex::new(Some(fd)),
    });
    live().insert(value, Arc::downgrade(&slot));
    Ok(slot)
}

/// Forgets a handle and closes its descriptor, or lets go of the object that lent it
/// (the object itself is let go by the handle's other fields, after this). The entry
/// goes before the descriptor, so that a new handle given the same number never has its
/// entry removed by this one.
pub(crate) fn unregister(slot: &Arc<Slot>) {
    {
        let mut map = live();
        if map
            .get(&slot.value)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(slot)))
        {
            map.remove(&slot.value);
        }
    }
    drop(lock(&slot.fd).take());
}

/// The live handle with value `value`, if any.
pub(crate) fn find(value: u64) -> Option<Arc<Slot>> {
    live()
        .get(&value)
        .and_then(Weak::upgrade)
        .filter(|s| !s.closed.load(Ordering::Relaxed))
}

/// The descriptors of every inheritable handle, and their environment entries
/// (`VALUE:KIND:ACCESS:DEV:INO`, see `handle::inherit`).
pub(crate) fn inheritable() -> Vec<(KeepFd, String)> {
    let slots: Vec<Arc<Slot>> = live().values().filter_map(Weak::upgrade).collect();
    let mut out: Vec<(KeepFd, String)> = slots
        .iter()
        .filter(|s| s.inherit.load(Ordering::Relaxed) && !s.closed.load(Ordering::Relaxed))
        .map(|s| {
            let entry = format!(
                "{}:{}:{}:{}:{}",
                s.value,
                s.kind.name(),
                access_word(s.access),
                s.dev,
                s.ino
            );
            (s.keep(), entry)
        })
        .collect();
    out.sort_by_key(|(k, _)| k.fd);
    out
}

/// `s`, `m`, `sm` or `-`: an access mask in the environment and endpoint messages.
pub(crate) fn access_word(a: Access) -> &'static str {
    match (a.contains(Access::SYNCHRONIZE), a.contains(Access::MODIFY)) {
        (true, true) => "sm",
        (true, false) => "s",
        (false, true) => "m",
        (false, false) => "-",
    }
}

/// The inverse of [`access_word`].
pub(crate) fn parse_access(w: &str) -> Option<Access> {
    Some(match w {
        "sm" => Access::ALL,
        "s" => Access::SYNCHRONIZE,
        "m" => Access::MODIFY,
        "-" => Access::NONE,
        _ => return None,
    })
}

/// The type named `w` (`event`, `mutex`, `semaphore`, `timer`: [`ObjectKind::name`]),
/// in the environment and endpoint messages.
pub(crate) fn parse_kind(w: &str) -> Option<ObjectKind> {
    [
        ObjectKind::Event,
        ObjectKind::Mutex,
        ObjectKind::Semaphore,
        ObjectKind::Timer,
    ]
    .into_iter()
    .find(|k| k.name() == w)
}
