//! The wait functions: `WaitForSingleObject(Ex)`, `WaitForMultipleObjects(Ex)`,
//! `SignalObjectAndWait`, `SleepEx` and `Sleep`.
//!
//! Every handle is looked up and checked (type, `SYNCHRONIZE`) before anything is
//! waited on or signalled, so a bad handle anywhere fails the call with nothing changed
//! (WY-10, SW-02). Alertable waits run the thread's APCs first and block no longer than
//! until its next completion routine is due (see `apc`). `GetCurrentProcess()` waits like an object that never becomes
//! signaled (HC-09); a process handle from `OpenProcess` can be waited on alone.
//!
//! It must not interpret outcomes beyond mapping them to Win32 values.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use procsync::{CreateOptions, Handle, ObjectKind, ObjectSpec, WaitOutcome};

use crate::apc;
use crate::last_error::{Code, W, guard};
use crate::ptr;
use crate::table::{self, Obj, Process, modify_bit};
use crate::types::*;

fn timeout(ms: DWORD) -> Option<Duration> {
    (ms != INFINITE).then(|| Duration::from_millis(u64::from(ms)))
}

/// What one waited-on `HANDLE` is.
enum Item {
    Object(Arc<Handle>),
    Process(Arc<Process>),
}

/// An event that is never set: what `GetCurrentProcess()` and `GetCurrentThread()`
/// wait like (the caller is running).
fn never() -> W<Arc<Handle>> {
    static NEVER: OnceLock<Arc<Handle>> = OnceLock::new();
    if let Some(h) = NEVER.get() {
        return Ok(h.clone());
    }
    let spec = ObjectSpec::Event {
        manual: true,
        initial: false,
    };
    let (h, _) = Handle::create(spec, "", &CreateOptions::default())?;
    Ok(NEVER.get_or_init(|| Arc::new(h)).clone())
}

fn resolve(h: HANDLE) -> W<Item> {
    let f = table::lookup(h)?;
    if f.access & SYNCHRONIZE == 0 {
        return Err(Code(ERROR_ACCESS_DENIED));
    }
    Ok(match f.obj {
        Obj::Sync(h) => Item::Object(h),
        Obj::CurrentProcess | Obj::CurrentThread => Item::Object(never()?),
        Obj::Process(p) => Item::Process(p),
    })
}

fn value(o: WaitOutcome, all: bool) -> DWORD {
    match o {
        WaitOutcome::Signaled(i) => WAIT_OBJECT_0 + i as DWORD,
        WaitOutcome::Abandoned(_) if all => WAIT_ABANDONED_0,
        WaitOutcome::Abandoned(i) => WAIT_ABANDONED_0 + i as DWORD,
        WaitOutcome::TimedOut => WAIT_TIMEOUT,
    }
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Waits on objects (any or all), alertably or not.
fn wait_objects(hs: &[Arc<Handle>], all: bool, ms: DWORD, alertable: bool) -> W<DWORD> {
    let refs: Vec<&Handle> = hs.iter().map(|h| &**h).collect();
    let lib = |refs: &[&Handle], t: Option<Duration>| {
        if all {
            procsync::wait_all(refs, t)
        } else {
            procsync::wait_any(refs, t)
        }
    };
    if !alertable {
        return Ok(value(lib(&refs, timeout(ms))?, all));
    }
    let deadline = timeout(ms).map(|t| Instant::now() + t);
    loop {
        if apc::run() > 0 {
            return Ok(WAIT_IO_COMPLETION);
        }
        let o = lib(&refs, until_next(deadline))?;
        if o != WaitOutcome::TimedOut {
            return Ok(value(o, all));
        }
        if remaining(deadline) == Some(Duration::ZERO) {
            return Ok(if apc::run() > 0 {
                WAIT_IO_COMPLETION
            } else {
                WAIT_TIMEOUT
            });
        }
    }
}

/// How long an alertable wait may block: until its deadline or the thread's next due
/// completion routine, whichever comes first (`None`: forever).
fn until_next(deadline: Option<Instant>) -> Option<Duration> {
    match (remaining(deadline), apc::next_due()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Waits for a process (a pidfd becomes readable when the process exits).
fn wait_process(p: &Process, ms: DWORD) -> W<DWORD> {
    use rustix::event::{PollFd, PollFlags, poll};
    let deadline = timeout(ms).map(|t| Instant::now() + t);
    loop {
        let mut fds = [PollFd::new(&p.fd, PollFlags::IN)];
        let t = remaining(deadline).map(|r| rustix::time::Timespec {
            tv_sec: r.as_secs() as i64,
            tv_nsec: i64::from(r.subsec_nanos()),
        });
        match poll(&mut fds, t.as_ref()) {
            Ok(0) => {
                if remaining(deadline) == Some(Duration::ZERO) {
                    return Ok(WAIT_TIMEOUT);
                }
            }
            Ok(_) => return Ok(WAIT_OBJECT_0),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return Err(Code(ERROR_GEN_FAILURE)),
        }
    }
}

fn single(h: HANDLE, ms: DWORD, alertable: bool) -> W<DWORD> {
    if !alertable {
        // Uncontended fast path: a poll under the table's read lock; a wait that would
        // block continues below with its own reference.
        let polled = table::with_sync(h, None, SYNCHRONIZE, |o| Ok(o.wait(Some(Duration::ZERO))?));
        match polled {
            Ok(WaitOutcome::TimedOut) if ms != 0 => {}
            Ok(o) => return Ok(value(o, false)),
            // Not an object handle (a process or the pseudo-handle): see below.
            Err(Code(ERROR_INVALID_HANDLE)) => {}
            Err(e) => return Err(e),
        }
    }
    match resolve(h)? {
        // The library's single-object wait has the uncontended fast path.
        Item::Object(o) if !alertable => Ok(value(o.wait(timeout(ms))?, false)),
        Item::Object(o) => wait_objects(&[o], false, ms, alertable),
        Item::Process(p) => wait_process(&p, ms),
    }
}

/// `WaitForSingleObject`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_WaitForSingleObject(h: HANDLE, ms: DWORD) -> DWORD {
    guard(WAIT_FAILED, || single(h, ms, false))
}

/// `WaitForSingleObjectEx`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_WaitForSingleObjectEx(h: HANDLE, ms: DWORD, alertable: BOOL) -> DWORD {
    guard(WAIT_FAILED, || single(h, ms, alertable != 0))
}

/// # Safety
/// `handles` is NULL or points to `n` handles.
unsafe fn multiple(
    n: DWORD,
    handles: *const HANDLE,
    all: BOOL,
    ms: DWORD,
    alertable: bool,
) -> W<DWORD> {
    if n == 0 || n > MAXIMUM_WAIT_OBJECTS {
        return Err(Code(ERROR_INVALID_PARAMETER));
    }
    // SAFETY: checked for NULL and alignment; the caller promises n handles.
    let list = unsafe { ptr::slice(handles, n as usize) }?;
    let mut objs = Vec::with_capacity(list.len());
    for h in list {
        match resolve(h)? {
            Item::Object(o) => objs.push(o),
            // A process handle can only be waited on alone (see PORTING.md).
            Item::Process(_) => return Err(Code(ERROR_NOT_SUPPORTED)),
        }
    }
    wait_objects(&objs, all != 0, ms, alertable)
}

/// `WaitForMultipleObjects`.
///
/// # Safety
/// `handles` is NULL or points to `n` handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_WaitForMultipleObjects(
    n: DWORD,
    handles: *const HANDLE,
    all: BOOL,
    ms: DWORD,
) -> DWORD {
    // SAFETY: forwarded from the caller.
    guard(WAIT_FAILED, || unsafe {
        multiple(n, handles, all, ms, false)
    })
}

/// `WaitForMultipleObjectsEx`.
///
/// # Safety
/// `handles` is NULL or points to `n` handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_WaitForMultipleObjectsEx(
    n: DWORD,
    handles: *const HANDLE,
    all: BOOL,
    ms: DWORD,
    alertable: BOOL,
) -> DWORD {
    // SAFETY: forwarded from the caller.
    guard(WAIT_FAILED, || unsafe {
        multiple(n, handles, all, ms, alertable != 0)
    })
}

/// `SignalObjectAndWait`: both handles are checked before the signal (SW-02); a failed
/// signal means no wait (SW-06, SW-07).
#[unsafe(no_mangle)]
pub extern "C" fn procsync_SignalObjectAndWait(
    signal: HANDLE,
    wait: HANDLE,
    ms: DWORD,
    alertable: BOOL,
) -> DWORD {
    guard(WAIT_FAILED, || {
        let s = table::lookup(signal)?;
        let sh = s.sync()?;
        let need = match sh.kind() {
            ObjectKind::Event | ObjectKind::Semaphore => modify_bit(sh.kind()),
            ObjectKind::Mutex => SYNCHRONIZE,
            _ => return Err(Code(ERROR_INVALID_HANDLE)),
        };
        let sh = s.need(sh.kind(), need)?;
        let w = resolve(wait)?;
        if let (Item::Object(wh), false) = (&w, alertable != 0) {
            return Ok(value(
                procsync::signal_and_wait(sh, wh, timeout(ms))?,
                false,
            ));
        }
        match sh.kind() {
            ObjectKind::Event => {
                sh.set()?;
            }
            _ => {
                sh.release(1)?;
            }
        }
        match w {
            Item::Object(o) => wait_objects(&[o], false, ms, alertable != 0),
            Item::Process(p) => wait_process(&p, ms),
        }
    })
}

fn sleep(ms: DWORD, alertable: bool) -> W<DWORD> {
    let deadline = timeout(ms).map(|t| Instant::now() + t);
    loop {
        if alertable && apc::run() > 0 {
            return Ok(WAIT_IO_COMPLETION);
        }
        let slice = if alertable {
            until_next(deadline)
        } else {
            remaining(deadline)
        };
        std::thread::sleep(slice.unwrap_or(Duration::from_secs(3600)));
        if remaining(deadline) == Some(Duration::ZERO) {
            return Ok(if alertable && apc::run() > 0 {
                WAIT_IO_COMPLETION
            } else {
                0
            });
        }
    }
}

/// `SleepEx`: 0 after the time, `WAIT_IO_COMPLETION` when an APC ran (alertable).
#[unsafe(no_mangle)]
pub extern "C" fn procsync_SleepEx(ms: DWORD, alertable: BOOL) -> DWORD {
    guard(0, || sleep(ms, alertable != 0))
}

/// `Sleep`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_Sleep(ms: DWORD) {
    guard(0, || sleep(ms, false));
}
