//! The fuzz target's entry point (`procsync/fuzz/`), also run over the seed corpus by
//! the hostile-file tests: not part of the API. It reaches into the object layer on
//! purpose, to run the open/validate path and the locked operations on arbitrary bytes.

use crate::error::Result;
use crate::obj::{self, ObjectKind};
use crate::sys;
use crate::wait::{self, WaitOutcome};

/// Fuzzing and corpus-test entry point; not part of the API (hidden, may change).
///
/// Writes `bytes` to a memfd and runs the map + validate path that every open of an
/// object file runs (`Object::map`: size, magic, version, kind, parameters). If the
/// file validates, it then performs a few operations, so that hostile values of the
/// state words, the lock word and the queue are exercised too: a query, a poll
/// wait-any and a poll wait-all (what they take is given back), and set/pulse/reset,
/// a semaphore release or a timer cancel as the type allows. Nothing here blocks
/// beyond the object lock's dead-holder recovery. Wait-block segments that a queue
/// entry may name are attached only if they exist and validate.
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
        crate::obj::NsKey::own(fs::euid()),
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
            ObjectKind::Semaphore | ObjectKind::Event | ObjectKind::Timer => {
                let _ = write!(
                    log,
                    " give-back={:?}",
                    obj::signal::give_back(o, me).map_err(|e| e.code())
                );
            }
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
