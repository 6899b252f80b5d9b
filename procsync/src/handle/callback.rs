//! Completion-callback threads of waitable timers (Win32's completion routine, TM-24):
//! the process's table of them, by handle serial, and the thread's loop.
//!
//! A callback thread never acquires the timer (a synchronization timer is left for the
//! waiters); it sleeps until the due time, expires the timer if nobody has, and calls
//! the closure once per expiration it observes. Limits, as documented on
//! [`Handle::set_timer_with_callback`](super::Handle::set_timer_with_callback): the
//! closure runs on that thread, not the setting thread (there are no APCs on Linux), one
//! expiration after another; missed periods are not replayed.
//!
//! It knows objects, not handles: the handle layer names a callback by the serial of
//! the handle that started it, and must not be imported here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::obj::{Object, ObjectKind, timer};
use crate::sys::Errno;
use crate::sys::time::Deadline;
use crate::wait;

/// A callback thread: its stop flag, and the thread to join once told to stop.
type Callback = (Arc<AtomicBool>, std::thread::JoinHandle<()>);

/// Callback threads of this process, by handle serial.
type Callbacks = Mutex<HashMap<u64, Callback>>;
static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

fn callbacks() -> std::sync::MutexGuard<'static, HashMap<u64, Callback>> {
    CALLBACKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Starts the callback thread of handle `serial` on timer `obj` (already set): it calls
/// `callback` once per expiration after this call, until [`stop`] or until the timer
/// will not expire again.
pub(super) fn start(
    serial: u64,
    obj: Arc<Object>,
    mut callback: impl FnMut() + Send + 'static,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let mut seen = timer::expirations(&obj);
    let thread = std::thread::Builder::new()
        .name("procsync-timer".into())
        .spawn(move || {
            loop {
                if thread_stop.load(Ordering::Acquire) {
                    return;
                }
                let seq = wait::change_count(&obj);
                let now = timer::expirations(&obj);
                if now != seen {
                    seen = now;
                    callback();
                    continue;
                }
                let due = obj.next_due();
                if due == Deadline::Never {
                    return; // cancelled, or a one-shot that has fired
                }
                if due.remaining() == Some(Duration::ZERO) {
                    if let Ok(g) = obj.lock_bounded() {
                        obj.refresh_locked(&g);
                    }
                    continue;
                }
                let slice = due.min(Deadline::At(Instant::now() + Duration::from_secs(1)));
                wait::until_changed(&obj, seq, slice);
            }
        })
        .map_err(|_| Error::os("starting the timer callback thread", Errno::AGAIN))?;
    callbacks().insert(serial, (stop, thread));
    Ok(())
}

/// Stops the callback thread that handle `serial` started on `obj`, if any (on re-set,
/// cancel, drop), and waits for it to end (unless called from the callback itself): the
/// thread holds the object, so a process that returns from `main` right after would
/// otherwise exit with the object (and its wait-block table file) still referenced,
/// skipping their cleanup.
pub(super) fn stop(serial: u64, obj: &Object) {
    if obj.kind != ObjectKind::Timer {
        return;
    }
    let entry = callbacks().remove(&serial);
    if let Some((stop, thread)) = entry {
        stop.store(true, Ordering::Release);
        wait::wake_watchers(obj);
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}
