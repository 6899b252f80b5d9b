//! The process's table of handle values.
//!
//! A handle's **value** is the number of a descriptor that the handle alone owns: a
//! close-on-exec duplicate (`F_DUPFD_CLOEXEC`) of its object's share-locked descriptor.
//! A duplicate shares the open description, so it holds the same shared `flock` and
//! changes nothing in the lifetime count; the number is unique in the process while
//! the handle lives (HD-01), a child that inherits the descriptor sees the same number
//! (HI-02), and `pidfd_getfd` can take it by that number.
//!
//! Two maps, each under its own lock, never held together with another lock of this
//! crate except in the order `PENDING → LIVE`:
//! - `LIVE`: value → the handle's [`Slot`] (weak), for every handle of the process: what
//!   the inheritance extension enumerates and the endpoint serves (pull, close-source).
//! - `PENDING`: handles that arrived by duplication or inheritance and wait for
//!   `adopt(value)` to give them to the program.
//!
//! It must not touch shared memory or interpret objects.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::core::{Access, Handle};
use crate::error::{Error, Result};
use crate::obj::ObjectKind;
use crate::sys::fs;
use crate::sys::unix::KeepFd;

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
    fd: Mutex<Option<OwnedFd>>,
}

impl Slot {
    /// Runs `f` with the handle's descriptor, if it is still open.
    pub(crate) fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> T) -> Option<T> {
        let fd = lock(&self.fd);
        fd.as_ref().map(|fd| f(fd.as_fd()))
    }

    fn keep(&self) -> KeepFd {
        KeepFd {
            fd: self.value as i32,
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// How a pending handle arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Inherited from the parent (described by the environment).
    Inherited,
    /// Pushed by another process (or this one) through duplication.
    Received,
}

type Live = Mutex<HashMap<u64, Weak<Slot>>>;
type Pending = Mutex<BTreeMap<u64, (Origin, Handle)>>;
static LIVE: OnceLock<Live> = OnceLock::new();
static PENDING: OnceLock<Pending> = OnceLock::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn live() -> MutexGuard<'static, HashMap<u64, Weak<Slot>>> {
    lock(LIVE.get_or_init(Default::default))
}

fn pending() -> MutexGuard<'static, BTreeMap<u64, (Origin, Handle)>> {
    lock(PENDING.get_or_init(Default::default))
}

/// Records a new handle whose value is `fd`'s number.
pub(crate) fn register(
    fd: OwnedFd,
    kind: ObjectKind,
    access: Access,
    inherit: bool,
) -> Result<Arc<Slot>> {
    let st = fs::stat_fd(fd.as_fd()).map_err(|e| Error::os("checking a handle's descriptor", e))?;
    let value = u64::try_from(fd.as_raw_fd()).map_err(|_| Error::invalid("negative descriptor"))?;
    let slot = Arc::new(Slot {
        value,
        kind,
        access,
        dev: st.dev,
        ino: st.ino,
        inherit: AtomicBool::new(inherit),
        closed: AtomicBool::new(false),
        fd: Mutex::new(Some(fd)),
    });
    live().insert(value, Arc::downgrade(&slot));
    Ok(slot)
}

/// Forgets a handle and closes its descriptor (the object itself is let go by the
/// handle's other fields). The entry goes before the descriptor, so that a new handle
/// given the same number never has its entry removed by this one.
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

/// Keeps a handle that arrived from outside until `adopt(value)`; returns its value.
pub(crate) fn park(origin: Origin, h: Handle) -> u64 {
    let v = h.value();
    pending().insert(v, (origin, h));
    v
}

/// Takes the pending handle `value`.
pub(crate) fn take(value: u64) -> Option<Handle> {
    pending().remove(&value).map(|(_, h)| h)
}

/// Takes every pending handle that arrived by inheritance, in value order.
pub(crate) fn take_inherited() -> Vec<(u64, Handle)> {
    let mut map = pending();
    let values: Vec<u64> = map
        .iter()
        .filter(|(_, (o, _))| *o == Origin::Inherited)
        .map(|(v, _)| *v)
        .collect();
    values
        .into_iter()
        .filter_map(|v| map.remove(&v).map(|(_, h)| (v, h)))
        .collect()
}

/// Closes handle `value` on behalf of another process (DUPLICATE_CLOSE_SOURCE): a
/// pending handle is dropped; a handle the program holds is marked closed (every later
/// call on it fails), its value descriptor is closed and the program's close hook is
/// told, so that it can drop the handle and with it the object. Returns whether a
/// handle was found.
pub(crate) fn close_from_outside(value: u64) -> bool {
    let parked = pending().remove(&value);
    if let Some((_, h)) = parked {
        drop(h);
        return true;
    }
    let Some(slot) = find(value) else {
        return false;
    };
    slot.closed.store(true, Ordering::Relaxed);
    unregister(&slot);
    let hook = lock(HOOK.get_or_init(Default::default)).clone();
    if let Some(hook) = hook {
        hook(value);
    }
    true
}

type Hook = Arc<dyn Fn(u64) + Send + Sync>;
static HOOK: OnceLock<Mutex<Option<Hook>>> = OnceLock::new();

/// Registers the function told about handles closed from outside (see
/// [`crate::on_remote_close`]).
pub(crate) fn set_close_hook(hook: Hook) {
    *lock(HOOK.get_or_init(Default::default)) = Some(hook);
}
