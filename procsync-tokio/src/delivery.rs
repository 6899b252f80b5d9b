//! What a producer (a reactor thread or a wait-all thread) hands to a wait future, and
//! how it is undone when the future is gone: the objects it took and, for mutexes, a
//! ticket to the thread that owns them on the task's behalf.
//!
//! It must not wait: giving back is `release(1)` / `set()` from any thread, and a
//! mutex is released by a message to its owner thread.

use std::sync::Arc;
use std::sync::mpsc::Sender;

use procsync::{Result, WaitOutcome};

use crate::object::{ObjKey, Target, give_back};
use crate::oneshot::Oneshot;
use crate::reactor;

/// Completion of an unlock, reported by the owner thread: the previous recursion count.
pub(crate) type UnlockDone = Arc<Oneshot<Result<u32>>>;

/// The thread that owns a mutex on behalf of a task.
#[derive(Debug)]
pub(crate) enum MutexOwner {
    /// Reactor `reactor` owns the mutex identified by `key` (one acquisition).
    Reactor { reactor: usize, key: ObjKey },
    /// A wait-all thread owns the mutexes of its list; a message (or the sender's drop)
    /// makes it release them all and exit.
    Thread(Sender<Option<UnlockDone>>),
}

impl MutexOwner {
    /// Asks the owner thread to release; `done` hears the result.
    pub(crate) fn release(self, done: Option<UnlockDone>) {
        match self {
            MutexOwner::Reactor { reactor: r, key } => reactor::request_unlock(r, key, done),
            MutexOwner::Thread(tx) => {
                if let Err(e) = tx.send(done)
                    && let Some(d) = e.0
                {
                    let _ = d.complete(Err(procsync::Error::unsupported(
                        "the thread owning this mutex is gone; nothing was released",
                    )));
                }
            }
        }
    }
}

/// A completed acquisition on its way to the future.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub outcome: WaitOutcome,
    /// Non-mutex objects taken (given back if the future is gone).
    pub taken: Vec<Target>,
    /// Mutexes taken, held by an owner thread.
    pub owner: Option<MutexOwner>,
}

impl Delivered {
    /// Undoes the acquisition: the future was dropped after the hand-off (TO-06).
    pub(crate) fn undo(self) {
        for t in &self.taken {
            give_back(t);
        }
        if let Some(o) = self.owner {
            o.release(None);
        }
    }
}
