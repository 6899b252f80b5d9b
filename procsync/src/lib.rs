//! # procsync
//!
//! The Win32 interprocess synchronization model on Linux: **events** (manual and
//! auto-reset), **mutexes** (thread-owned, recursive, abandonment reported),
//! **semaphores** and **waitable timers**, shared between processes by name (or unnamed, within a process
//! tree), with the wait functions over them: one object, any of up to 64, all of up to
//! 64 atomically, and signal-and-wait. No daemon: every operation runs in the calling
//! process on shared memory, and uncontended operations are a single atomic
//! instruction.
//!
//! ```no_run
//! use procsync::{Event, Semaphore, WaitOutcome, wait_any};
//! use std::time::Duration;
//!
//! let (ready, _) = Event::create("Local\\build-ready", true, false)?;
//! let (slots, _) = Semaphore::create("Local\\build-slots", 2, 2)?;
//! match wait_any(&[&ready, &slots], Some(Duration::from_secs(1)))? {
//!     WaitOutcome::Signaled(0) => println!("ready"),
//!     WaitOutcome::Signaled(1) => { println!("got a slot"); slots.release(1)?; }
//!     other => println!("{other:?}"),
//! }
//! # Ok::<(), procsync::Error>(())
//! ```
//!
//! Semantics follow Windows item by item (see `SEMANTICS.md` in the design docs);
//! the design is in `docs/ARCHITECTURE.md`.

mod error;
mod handle;
mod obj;
mod park;
mod shm;
mod sys;
mod wait;

#[cfg(test)]
mod test_root;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use handle::{
    Access, CreateOptions, Event, Handle, Mutex, ObjectState, Owner, Semaphore, TimerDue,
    signal_and_wait, wait_all, wait_any,
};
pub use handle::{
    CommandExt, INHERIT_ENV, accept_duplicates, adopt, duplicate_from, inherited, on_remote_close,
};
pub use obj::{ObjectKind, ObjectSpec};
pub use shm::file::Created;
pub use shm::root::DEFAULT_ROOT;
pub use wait::{MAX_WAIT_OBJECTS, WaitOutcome};

impl Error {
    /// An [`Error::Unsupported`] with this message.
    pub fn unsupported(msg: impl Into<String>) -> Error {
        Error::Unsupported(msg.into())
    }
}

/// Fuzzing and corpus-test entry point; not part of the API (hidden, may change).
///
/// Writes `bytes` to a memfd and runs the map + validate path that every open of an
/// object file runs (`Object::map`: size, magic, version, kind, parameters). If the
/// file validates, it then performs a few operations, so that hostile values of the
/// state words, the lock word and the queue are exercised too: a query, a poll
/// wait-any and a poll wait-all (what they take is given back), and set/pulse/reset,
/// a semaphore release or a timer cancel as the type allows. Nothing here blocks
/// beyond the object lock's dead-holder recovery. Wait-block tables that a queue
/// entry may name are looked up under `PROCSYNC_ROOT` when set, else under
/// `<temp dir>/procsync-fuzz`, and let go (unlinked) before returning.
///
/// `Err` carries the open error (or a memfd failure); `Ok` describes what the
/// operations returned.
#[doc(hidden)]
pub fn __fuzz_open_object(bytes: &[u8]) -> std::result::Result<String, String> {
    use std::fmt::Write as _;
    use std::os::fd::AsFd;
    use std::sync::Arc;

    use obj::{Backing, Object, event, mutex, semaphore, timer};
    use sys::{fs, thread, time::Deadline};

    let fd = fs::memfd("procsync-fuzz").map_err(|e| format!("memfd: {e}"))?;
    fs::write_at(fd.as_fd(), bytes, 0).map_err(|e| format!("writing the memfd: {e}"))?;
    let root = match std::env::var_os("PROCSYNC_ROOT") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => std::env::temp_dir().join("procsync-fuzz"),
    };
    let o = Object::map(
        Backing::Unnamed(fd),
        "<fuzz>".into(),
        root.clone(),
        fs::euid(),
        "<fuzz>".into(),
    )
    .map_err(|e| e.to_string())?;
    let me = thread::ident();
    let mut log = format!("{}:", o.kind.name());
    // Gives back what a poll wait took, as the REPL's caller would.
    let give_back = |o: &Arc<Object>, r: &Result<WaitOutcome>, log: &mut String| {
        if !matches!(r, Ok(WaitOutcome::Signaled(_) | WaitOutcome::Abandoned(_))) {
            return;
        }
        match o.kind {
            ObjectKind::Mutex => {
                for _ in 0..4 {
                    match mutex::release(o, me) {
                        Ok(prev) if prev > 1 => continue,
                        r => {
                            let _ = write!(log, " unlock={r:?}");
                            break;
                        }
                    }
                }
            }
            ObjectKind::Semaphore => {
                let _ = write!(
                    log,
                    " give-back={:?}",
                    semaphore::release(o, 1).map_err(|e| e.code())
                );
            }
            ObjectKind::Event | ObjectKind::Timer => {}
        }
    };
    match o.kind {
        ObjectKind::Event => {
            let _ = write!(log, " query={:?}", event::query(&o));
        }
        ObjectKind::Semaphore => {
            let _ = write!(
                log,
                " query={:?}",
                semaphore::query(&o).map_err(|e| e.code())
            );
        }
        ObjectKind::Mutex => {
            let v = mutex::query(&o);
            if v.owner != 0 && v.owner != me && !thread::ident_alive(v.owner) {
                let _ = mutex::abandon_if_dead(&o, v.owner);
            }
            let v = mutex::query(&o);
            let _ = write!(
                log,
                " query=owner:{} recursion:{} abandoned:{}",
                v.owner != 0,
                v.recursion,
                v.abandoned
            );
        }
        ObjectKind::Timer => {
            let _ = write!(log, " query={:?}", timer::query(&o));
        }
    }
    let r = wait::any::wait_any(&[&o], Deadline::Now);
    let _ = write!(log, " wait-any={:?}", r.as_ref().map_err(|e| e.code()));
    give_back(&o, &r, &mut log);
    let r = wait::all::wait_all(&[&o], Deadline::Now);
    let _ = write!(log, " wait-all={:?}", r.as_ref().map_err(|e| e.code()));
    give_back(&o, &r, &mut log);
    match o.kind {
        ObjectKind::Event => {
            let _ = write!(
                log,
                " set={} pulse={} reset={}",
                event::set(&o).is_ok_and(|x| x),
                event::pulse(&o).is_ok_and(|x| x),
                event::reset(&o).is_ok_and(|x| x)
            );
        }
        ObjectKind::Semaphore => {
            let _ = write!(
                log,
                " release={:?}",
                semaphore::release(&o, 1).map_err(|e| e.code())
            );
        }
        ObjectKind::Timer => {
            let _ = write!(log, " cancel={:?}", timer::cancel(&o).map_err(|e| e.code()));
        }
        ObjectKind::Mutex => {}
    }
    drop(o);
    Ok(log)
}
