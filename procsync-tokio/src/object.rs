//! What the reactors need to know about an object, from procsync's public API only:
//! its identity (two handles of one object must be served by one reactor, so that a
//! reactor never lists a mutex it already owns), and how an acquisition of it is given
//! back (the undo rule of cancel safety).
//!
//! It must not wait on anything.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use procsync::{Error, Handle, ObjectKind, ObjectState, Result};

/// The identity of an object: device and inode of the file behind a handle's
/// descriptor (a named object's file or an unnamed one's memfd). Stable while any
/// handle of the object is open, which the reactor's own handle guarantees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ObjKey {
    dev: u64,
    ino: u64,
}

/// How an acquisition of an object is undone (as if the waiter had timed out just
/// before the signal, TO-06).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    /// Semaphore: `release(1)`.
    Release,
    /// Auto-reset event: `set()` again.
    Set,
    /// Mutex: `release(1)` on the owning thread.
    Unlock,
    /// Manual-reset event or timer: a wait consumes nothing.
    Nothing,
    /// Auto-reset (synchronization) timer: consumed, and the public API has no way to
    /// put the signal back without re-arming the timer. Documented as a limit.
    Lost,
}

/// One object as a wait sees it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub handle: Arc<Handle>,
    pub key: ObjKey,
    pub undo: Undo,
}

impl Target {
    pub(crate) fn new(handle: Arc<Handle>) -> Result<Target> {
        let key = key_of(&handle)?;
        let undo = match handle.query()? {
            ObjectState::Semaphore { .. } => Undo::Release,
            ObjectState::Event { manual: false, .. } => Undo::Set,
            ObjectState::Event { manual: true, .. } => Undo::Nothing,
            ObjectState::Mutex { .. } => Undo::Unlock,
            ObjectState::Timer { manual: true, .. } => Undo::Nothing,
            ObjectState::Timer { manual: false, .. } => Undo::Lost,
        };
        Ok(Target { handle, key, undo })
    }

    pub(crate) fn is_mutex(&self) -> bool {
        self.handle.kind() == ObjectKind::Mutex
    }
}

fn key_of(h: &Handle) -> Result<ObjKey> {
    // The handle's value is the number of a descriptor it owns (Handle::value), so the
    // /proc link names the object's file without any unsafe descriptor borrowing.
    let md = std::fs::metadata(format!("/proc/self/fd/{}", h.value())).map_err(|e| {
        if e.raw_os_error().is_some() {
            Error::Os {
                op: "identifying an object through /proc/self/fd (is /proc mounted?)",
                source: e,
            }
        } else {
            Error::unsupported(format!(
                "cannot identify an object through /proc/self/fd: {e}; mount /proc"
            ))
        }
    })?;
    Ok(ObjKey {
        dev: md.dev(),
        ino: md.ino(),
    })
}

/// Gives back one acquisition of `t` from any thread (not for mutexes, whose owner
/// thread must do it). Errors are ignored: the handle is our own duplicate with the
/// rights of the one the acquisition went through, so they cannot happen short of a
/// semaphore that another party over-released meanwhile, where nothing better exists.
pub(crate) fn give_back(t: &Target) {
    match t.undo {
        Undo::Release => {
            let _ = t.handle.release(1);
        }
        Undo::Set => {
            let _ = t.handle.set();
        }
        Undo::Unlock => {
            let _ = t.handle.release(1);
        }
        Undo::Nothing | Undo::Lost => {}
    }
}
