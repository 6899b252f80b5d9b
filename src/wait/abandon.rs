//! Mutexes owned by the calling thread, abandoned when it exits (AB-01, AB-09).
//!
//! Each thread keeps the mutexes it owns in a thread-local list; the list's destructor
//! runs when the thread ends (return, panic, the REPL's `exit-thread`) and abandons
//! every mutex the thread still owns: the next waiter receives it as abandoned. The
//! list holds the object's mapping, not its descriptor, so closing every handle while
//! owning does not keep the name alive, yet the exit can still abandon it (LT-07).
//! A killed process runs no destructor: its mutexes are found abandoned by whoever
//! next looks (their owner identity no longer names a live thread).

use std::cell::RefCell;
use std::sync::Arc;

use crate::obj::{Object, mutex};
use crate::sys::thread;

struct Owned {
    me: u64,
    list: Vec<Arc<Object>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        for obj in self.list.drain(..) {
            mutex::abandon_by(&obj, self.me);
        }
    }
}

thread_local! {
    static OWNED: RefCell<Owned> = const { RefCell::new(Owned { me: 0, list: Vec::new() }) };
}

/// Records that the calling thread now owns `obj` (first acquisition).
pub(crate) fn note_owned(obj: &Arc<Object>) {
    let _ = OWNED.try_with(|o| {
        let mut o = o.borrow_mut();
        if o.me == 0 {
            o.me = thread::me().ident;
        }
        if !o.list.iter().any(|x| Arc::ptr_eq(x, obj)) {
            o.list.push(obj.clone());
        }
    });
}

/// Records that the calling thread released `obj` for the last time.
pub(crate) fn note_released(obj: &Arc<Object>) {
    let _ = OWNED.try_with(|o| {
        let mut o = o.borrow_mut();
        if let Some(k) = o.list.iter().position(|x| Arc::ptr_eq(x, obj)) {
            o.list.swap_remove(k);
        }
    });
}
