//! Undoing a hand-off (cancel safety, TO-06) and asking an owner thread to let go of a
//! mutex: what a dropped future, a dropped guard or `MutexGuard::unlock` do with a
//! [`Delivered`] or a [`MutexOwner`].
//!
//! It sits above `delivery` (the vocabulary) and `reactor` (which it asks to unlock or
//! to forget a waiter); neither of them calls back into it. It must not wait: giving
//! back is `release(1)` / `set()` from any thread, and a mutex is released by a message
//! to its owner thread.

use procsync::Error;

use crate::delivery::{Delivered, MutexOwner, UnlockDone};
use crate::object::give_back;
use crate::reactor::{self, Waiter};

/// Asks the thread owning `owner`'s mutexes to release them; `done` hears the result.
pub(crate) fn release(owner: MutexOwner, done: Option<UnlockDone>) {
    match owner {
        MutexOwner::Reactor { reactor: r, key } => reactor::request_unlock(r, key, done),
        MutexOwner::Thread(tx) => {
            if let Err(e) = tx.send(done)
                && let Some(d) = e.0
            {
                let _ = d.complete(Err(Error::unsupported(
                    "the thread owning this mutex is gone; nothing was released",
                )));
            }
        }
    }
}

/// Undoes an acquisition: the future was dropped after the hand-off (TO-06).
pub(crate) fn undo(d: Delivered) {
    for t in &d.taken {
        give_back(t);
    }
    if let Some(o) = d.owner {
        release(o, None);
    }
}

/// A future went away: cancel its waiter; undo what was handed to it, or have the
/// reactors stop waiting for it.
pub(crate) fn cancel(waiter: &Waiter, reactors: &[usize]) {
    match waiter.cancel() {
        Some(Ok(d)) => undo(d),
        Some(Err(_)) => {}
        None => reactor::poke(reactors),
    }
}
