//! The vocabulary shared by the producers (reactor and wait-all threads), the futures
//! and the guards: what a producer hands to a wait future ([`Delivered`]: the objects
//! it took and, for mutexes, a ticket to the thread that owns them on the task's
//! behalf) and how an unlock's completion is reported ([`UnlockDone`]).
//!
//! A leaf: data only. How a delivery is undone lives in `undo`, which may call the
//! reactors; this module must not (so the reactors can use it without a circle).

use std::sync::Arc;
use std::sync::mpsc::Sender;

use procsync::{Result, WaitOutcome};

use crate::object::{ObjKey, Target};
use crate::oneshot::Oneshot;

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

/// A completed acquisition on its way to the future.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub outcome: WaitOutcome,
    /// Non-mutex objects taken (given back if the future is gone).
    pub taken: Vec<Target>,
    /// Mutexes taken, held by an owner thread.
    pub owner: Option<MutexOwner>,
}
