//! Mutexes owned by a thread, abandoned when it exits (AB-01, AB-09).
//!
//! The fast path keeps no list: the first time a thread acquires a mutex it arms a
//! thread-local guard (one thread-local flag test per acquisition afterwards). The
//! guard's destructor runs when the thread ends (return, panic, the REPL's
//! `exit-thread`) and abandons every mutex, among the objects this process maps, whose
//! owner is that thread: the next waiter receives it as abandoned. It finds them
//! through any mapping of the object (the handle it was acquired through may have been
//! closed while another handle of the process still maps it); a mutex no handle of this
//! process maps any more is found abandoned by other processes from the owner's death
//! (watcher, or their own check), and closing every handle while owning does not keep
//! the object alive (LT-07).
//! A killed process runs no destructor: its mutexes are found abandoned by whoever
//! next looks (their owner identity no longer names a live thread).

use std::cell::Cell;
use std::sync::{Arc, Weak};

use crate::obj::{Object, mutex};
use crate::sys::thread;

/// Armed once per thread; its destructor abandons what the thread still owns.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let me = thread::ident();
        for obj in crate::obj::owned_by(me) {
            mutex::abandon_by(&obj, me);
        }
    }
}

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// Records that the calling thread acquired `obj`: arms the thread-exit guard once.
#[inline]
pub(crate) fn note_owned(obj: &Arc<Object>) {
    let _ = obj;
    if !ARMED.with(Cell::get) {
        arm();
    }
}

#[cold]
fn arm() {
    ARMED.with(|a| a.set(true));
    // Touching the guard registers its destructor for this thread.
    let _ = EXIT_GUARD.try_with(|_| ());
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
                let _ = mutex::abandon_if_dead(&obj, owner);
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
