//! Mutexes owned by the calling thread, abandoned when it exits (AB-01, AB-09).
//!
//! Each thread keeps the mutexes it owns in a thread-local list; the list's destructor
//! runs when the thread ends (return, panic, the REPL's `exit-thread`) and abandons
//! every mutex the thread still owns: the next waiter receives it as abandoned. The
//! list holds object ids only (no reference counting on the fast path), so closing
//! every handle while owning does not keep the object alive in this process (LT-07);
//! at exit the thread abandons through any mapping of the object this process still
//! has, and if there is none, other processes learn of it from the owner's death
//! (watcher, or their own check).
//! A killed process runs no destructor: its mutexes are found abandoned by whoever
//! next looks (their owner identity no longer names a live thread).

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::obj::{Object, mutex};
use crate::sys::thread;

struct Owned {
    me: u64,
    /// Object ids; resolved through this process's index of mapped objects at exit.
    list: Vec<u64>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // The mapping the mutex was acquired through may be gone (its handle closed)
        // while another handle of this process still maps the object (AB-09).
        for obj in self.list.drain(..).filter_map(crate::obj::find_live) {
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
        if !o.list.contains(&obj.id) {
            o.list.push(obj.id);
        }
    });
}

/// Records that the calling thread released `obj` for the last time.
pub(crate) fn note_released(obj: &Arc<Object>) {
    let _ = OWNED.try_with(|o| {
        let mut o = o.borrow_mut();
        if let Some(k) = o.list.iter().position(|id| *id == obj.id) {
            o.list.swap_remove(k);
        }
    });
}

// ---------------------------------------------------------------------------------
// Owner-death watcher (AB-06, AB-07): a waiter blocked on a mutex owned by another
// thread asks this process's watcher to watch the owner through a thread pidfd. When
// the owner exits, the watcher thread abandons the mutex under its lock, which hands
// it to the first queued waiter at once: no polling, no CPU while waiting.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::sys::pidfd::ExitSet;

struct Watch {
    pidfd: std::os::fd::OwnedFd,
    objs: Vec<Weak<Object>>,
}

struct Watcher {
    pid: u32,
    set: ExitSet,
    watched: Mutex<HashMap<u64, Watch>>,
}

static WATCHER: OnceLock<Mutex<Option<Arc<Watcher>>>> = OnceLock::new();

fn watcher() -> Option<Arc<Watcher>> {
    let cell = WATCHER.get_or_init(|| Mutex::new(None));
    let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
    let pid = thread::getpid();
    if let Some(w) = g.as_ref()
        && w.pid == pid
    {
        return Some(w.clone());
    }
    // First use, or a forked child whose parent's watcher thread does not exist here.
    let w = Arc::new(Watcher {
        pid,
        set: ExitSet::new().ok()?,
        watched: Mutex::new(HashMap::new()),
    });
    let w2 = w.clone();
    std::thread::Builder::new()
        .name("procsync-watch".into())
        .spawn(move || run(&w2))
        .ok()?;
    *g = Some(w.clone());
    Some(w)
}

fn run(w: &Watcher) {
    loop {
        for owner in w.set.wait() {
            let watch = w
                .watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&owner);
            let Some(watch) = watch else { continue };
            w.set.remove(&watch.pidfd);
            for obj in watch.objs.iter().filter_map(Weak::upgrade) {
                if obj.state().load(std::sync::atomic::Ordering::Relaxed)
                    & crate::shm::layout::OWNER_MASK
                    == owner
                {
                    let g = obj.lock();
                    mutex::check_owner_locked(&g);
                }
            }
        }
    }
}

/// Asks the watcher to abandon `obj` when thread `owner` exits. Returns `false` when
/// that is not possible (no pidfd support, or the owner is already gone), in which case
/// the caller checks the owner itself, soon and then periodically.
pub(crate) fn watch_owner(obj: &Arc<Object>, owner: u64) -> bool {
    let Some(w) = watcher() else { return false };
    let mut map = w.watched.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(watch) = map.get_mut(&owner) {
        watch.objs.retain(|o| o.strong_count() > 0);
        if !watch
            .objs
            .iter()
            .any(|o| std::ptr::eq(o.as_ptr(), Arc::as_ptr(obj)))
        {
            watch.objs.push(Arc::downgrade(obj));
        }
        return true;
    }
    let Ok(pidfd) = crate::sys::pidfd::open_thread(thread::ident_tid(owner)) else {
        return false;
    };
    // The pidfd names whatever thread has that id now: make sure it is the owner (the
    // id may have been reused after the owner died).
    if !thread::ident_alive(owner) {
        return false;
    }
    if w.set.add(&pidfd, owner).is_err() {
        return false;
    }
    map.insert(
        owner,
        Watch {
            pidfd,
            objs: vec![Arc::downgrade(obj)],
        },
    );
    true
}
