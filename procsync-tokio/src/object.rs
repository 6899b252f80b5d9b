//! What the reactors need to know about an object, from procsync's public API only:
//! its identity (two handles of one object must be served by one reactor, so that a
//! reactor never lists a mutex it already owns: `Handle::object_id`, no system call),
//! and how an acquisition of it is given back (the undo rule of cancel safety).
//!
//! It must not wait on anything.

use std::sync::Arc;

use procsync::{Handle, ObjectKind, ObjectState, Result};

/// The identity of an object: its id (`Handle::object_id`), the same through every
/// handle of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ObjKey(u64);

/// How an acquisition of an object is undone (as if the waiter had timed out just
/// before the signal, TO-06).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    /// Semaphore, auto-reset event or timer: `Handle::give_back` (a unit released, a
    /// signal put back, or banked if the event was set again meanwhile).
    GiveBack,
    /// Mutex: `release(1)` on the owning thread.
    Unlock,
    /// Manual-reset event or timer: a wait consumes nothing.
    Nothing,
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
        let key = ObjKey(handle.object_id());
        // The kind alone decides for semaphores and mutexes (a mutex's query may read
        // its owner's liveness); events and timers need their reset mode.
        let undo = match handle.kind() {
            ObjectKind::Semaphore => Undo::GiveBack,
            ObjectKind::Mutex => Undo::Unlock,
            ObjectKind::Event | ObjectKind::Timer => match handle.query()? {
                ObjectState::Event { manual: false, .. }
                | ObjectState::Timer { manual: false, .. } => Undo::GiveBack,
                _ => Undo::Nothing,
            },
        };
        Ok(Target { handle, key, undo })
    }

    pub(crate) fn is_mutex(&self) -> bool {
        self.handle.kind() == ObjectKind::Mutex
    }
}

/// Gives back one acquisition of `t` from any thread (not for mutexes, whose owner
/// thread must do it). The handle is our own duplicate with the rights of the one the
/// acquisition went through (`modify` included, checked when the wait started), so the
/// only error left is an object lock held past its bound by a stopped process
/// (`Busy`); nothing better can be done with it than what a timed-out waiter does, so
/// it is ignored.
pub(crate) fn give_back(t: &Target) {
    match t.undo {
        Undo::GiveBack => {
            let _ = t.handle.give_back();
        }
        Undo::Unlock => {
            let _ = t.handle.release(1);
        }
        Undo::Nothing => {}
    }
}
