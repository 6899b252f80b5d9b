//! The C ABI under concurrent misuse, called through the exported symbols exactly as C
//! calls them: `CloseHandle` racing other threads' calls on the same `HANDLE` (the
//! handle table frees an entry only when no lookup can still be reading it), a closed
//! value reused by a new object, a blocked wait whose handle is closed (LT-04), and
//! random handle values and NULL or misaligned pointers. Every call must return its
//! Win32 value with the right `GetLastError()` and nothing may crash (HC-02, HC-03,
//! HC-07).
//!
//! One `#[test]`: the phases run one after another because a closed value may be
//! reused by any object this process creates, and another test running in parallel
//! would make the "who holds this value now" assertions below unsound.
#![allow(unsafe_code)]
#![allow(clippy::upper_case_acronyms)] // the Win32 spellings

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use procsync_ffi as _; // links the library that defines the symbols below

type HANDLE = *mut c_void;
type DWORD = u32;
type BOOL = i32;
type LONG = i32;

const FALSE: BOOL = 0;
const TRUE: BOOL = 1;
const WAIT_OBJECT_0: DWORD = 0;
const WAIT_TIMEOUT: DWORD = 0x102;
const WAIT_FAILED: DWORD = 0xFFFF_FFFF;
const ERROR_INVALID_HANDLE: DWORD = 6;
const ERROR_INVALID_PARAMETER: DWORD = 87;
const DUPLICATE_SAME_ACCESS: DWORD = 2;
/// A guard against a hung wait, not a timing assertion (the wait is woken at once).
const HANG_GUARD_MS: DWORD = 120_000;

unsafe extern "C" {
    fn procsync_CreateEventA(
        sa: *const c_void,
        manual: BOOL,
        initial: BOOL,
        name: *const c_char,
    ) -> HANDLE;
    fn procsync_CreateSemaphoreA(
        sa: *const c_void,
        initial: LONG,
        max: LONG,
        name: *const c_char,
    ) -> HANDLE;
    fn procsync_SetEvent(h: HANDLE) -> BOOL;
    fn procsync_ResetEvent(h: HANDLE) -> BOOL;
    fn procsync_ReleaseSemaphore(h: HANDLE, count: LONG, prev: *mut LONG) -> BOOL;
    fn procsync_WaitForSingleObject(h: HANDLE, ms: DWORD) -> DWORD;
    fn procsync_WaitForMultipleObjects(n: DWORD, hs: *const HANDLE, all: BOOL, ms: DWORD) -> DWORD;
    fn procsync_GetHandleInformation(h: HANDLE, flags: *mut DWORD) -> BOOL;
    fn procsync_CloseHandle(h: HANDLE) -> BOOL;
    fn procsync_GetCurrentProcess() -> HANDLE;
    fn procsync_DuplicateHandle(
        sp: HANDLE,
        src: HANDLE,
        tp: HANDLE,
        target: *mut HANDLE,
        access: DWORD,
        inherit: BOOL,
        options: DWORD,
    ) -> BOOL;
    fn procsync_GetLastError() -> DWORD;
    fn procsync_SetLastError(code: DWORD);
}

// Safe wrappers: to the C ABI a HANDLE is a plain number (any value is allowed), and
// each pointer passed below is NULL, misaligned (rejected before use) or to a live
// local, as its comment says.

fn set_event(h: HANDLE) -> BOOL {
    // SAFETY: handle values only.
    unsafe { procsync_SetEvent(h) }
}

fn reset_event(h: HANDLE) -> BOOL {
    // SAFETY: handle values only.
    unsafe { procsync_ResetEvent(h) }
}

fn wait1(h: HANDLE, ms: DWORD) -> DWORD {
    // SAFETY: handle values only.
    unsafe { procsync_WaitForSingleObject(h, ms) }
}

fn close_handle(h: HANDLE) -> BOOL {
    // SAFETY: handle values only.
    unsafe { procsync_CloseHandle(h) }
}

/// `WaitForMultipleObjects(n, hs, FALSE, 0)`; `hs` may be NULL or misaligned.
fn wait_any0(n: DWORD, hs: *const HANDLE) -> DWORD {
    // SAFETY: callers pass NULL, a misaligned pointer or an array of n handles.
    unsafe { procsync_WaitForMultipleObjects(n, hs, FALSE, 0) }
}

/// `ReleaseSemaphore(h, 1, prev)`; `prev` may be NULL or misaligned.
fn release_sem(h: HANDLE, prev: *mut LONG) -> BOOL {
    // SAFETY: callers pass NULL, a misaligned pointer or a live LONG.
    unsafe { procsync_ReleaseSemaphore(h, 1, prev) }
}

/// `GetHandleInformation(h, flags)`; `flags` may be NULL or misaligned.
fn handle_info(h: HANDLE, flags: *mut DWORD) -> BOOL {
    // SAFETY: callers pass NULL, a misaligned pointer or a live DWORD.
    unsafe { procsync_GetHandleInformation(h, flags) }
}

/// `DuplicateHandle` within this process, same access.
fn duplicate(h: HANDLE) -> HANDLE {
    let mut dup: HANDLE = null_mut();
    // SAFETY: pseudo-handles and a pointer to a local.
    let ok = unsafe {
        let me = procsync_GetCurrentProcess();
        procsync_DuplicateHandle(me, h, me, &mut dup, 0, FALSE, DUPLICATE_SAME_ACCESS)
    };
    assert_eq!(ok, TRUE, "DuplicateHandle failed");
    dup
}

/// A fresh `PROCSYNC_ROOT`, removed at the end.
struct Root(PathBuf);

impl Root {
    fn new() -> Root {
        let dir =
            std::env::temp_dir().join(format!("procsync-ffi-close-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a scratch PROCSYNC_ROOT");
        // SAFETY: set before this test's first call into the library, while it is the
        // only thread of this test binary that uses the environment.
        unsafe { std::env::set_var("PROCSYNC_ROOT", &dir) };
        Root(dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last error after a call (reset before it).
fn call<T>(f: impl FnOnce() -> T) -> (T, DWORD) {
    // SAFETY: plain Win32 calls on this thread's last error.
    unsafe { procsync_SetLastError(0) };
    let r = f();
    // SAFETY: as above.
    (r, unsafe { procsync_GetLastError() })
}

fn event(manual: bool, initial: bool) -> HANDLE {
    // SAFETY: NULL attributes and NULL name.
    let h = unsafe { procsync_CreateEventA(null(), manual.into(), initial.into(), null()) };
    assert!(!h.is_null(), "CreateEventA failed");
    h
}

fn empty_semaphore() -> HANDLE {
    // SAFETY: NULL attributes and NULL name.
    let h = unsafe { procsync_CreateSemaphoreA(null(), 0, 1, null()) };
    assert!(!h.is_null(), "CreateSemaphoreA failed");
    h
}

fn close(h: HANDLE) {
    assert_eq!(close_handle(h), TRUE, "CloseHandle failed");
}

/// A `HANDLE` sent to another thread (a plain number, as C passes it).
#[derive(Clone, Copy)]
struct H(usize);

impl H {
    fn get(self) -> HANDLE {
        self.0 as HANDLE
    }
}

/// What one hammering thread saw that it must not have.
#[derive(Default, Debug)]
struct Wrong(Vec<String>);

impl Wrong {
    fn check(&mut self, what: &str, ok: bool, got: (i64, DWORD)) {
        if !ok && self.0.len() < 10 {
            self.0.push(format!(
                "{what}: returned {:#x}, last error {}",
                got.0, got.1
            ));
        }
    }
}

/// One thread's calls on `h` until `stop`. Before the close a call may succeed or fail
/// with ERROR_INVALID_HANDLE (it may run after the close); once `closed` is seen the
/// event is gone and the value is free or an empty semaphore's, so an event call fails
/// with ERROR_INVALID_HANDLE (HC-03, HC-07) and a wait never succeeds.
fn hammer(h: H, calls: &AtomicUsize, closed: &AtomicBool, stop: &AtomicBool) -> Wrong {
    let mut wrong = Wrong::default();
    let h = h.get();
    let mut i = 0u64;
    while !stop.load(SeqCst) {
        let after = closed.load(SeqCst);
        i += 1;
        let failed = |r: (i64, DWORD), fail: i64| r.0 == fail && r.1 == ERROR_INVALID_HANDLE;
        match i % 5 {
            0 => {
                let r = call(|| i64::from(set_event(h)));
                wrong.check("SetEvent", failed(r, 0) || (!after && r == (1, 0)), r);
            }
            1 => {
                let r = call(|| i64::from(reset_event(h)));
                wrong.check("ResetEvent", failed(r, 0) || (!after && r == (1, 0)), r);
            }
            2 => {
                let r = call(|| i64::from(wait1(h, 0)));
                let ok = failed(r, i64::from(WAIT_FAILED))
                    || r == (i64::from(WAIT_TIMEOUT), 0)
                    || (!after && r == (i64::from(WAIT_OBJECT_0), 0));
                wrong.check("WaitForSingleObject", ok, r);
            }
            3 => {
                let hs = [h];
                let r = call(|| i64::from(wait_any0(1, hs.as_ptr())));
                let ok = failed(r, i64::from(WAIT_FAILED))
                    || r == (i64::from(WAIT_TIMEOUT), 0)
                    || (!after && r == (i64::from(WAIT_OBJECT_0), 0));
                wrong.check("WaitForMultipleObjects", ok, r);
            }
            _ => {
                let mut flags = 0;
                let r = call(|| i64::from(handle_info(h, &mut flags)));
                // The value may be the new semaphore's: then it succeeds.
                wrong.check("GetHandleInformation", failed(r, 0) || r == (1, 0), r);
            }
        }
        calls.fetch_add(1, SeqCst);
    }
    wrong
}

/// Waits until every counter has moved `by` past `from` (a handshake: the threads are
/// running their calls).
fn until_past(counters: &[AtomicUsize], from: &[usize], by: usize) {
    for (c, f) in counters.iter().zip(from) {
        while c.load(SeqCst) < f + by {
            std::thread::yield_now();
        }
    }
}

/// CloseHandle while two threads call functions on the same value; then the value
/// is (usually) reused by new empty semaphores. After the close returns, no call may
/// reach the event: not through a stale lookup, not through the reused value.
fn close_while_others_call() {
    const THREADS: usize = 2;
    let mut reused = 0;
    for _round in 0..60 {
        let h = event(true, true);
        let calls: [AtomicUsize; THREADS] = Default::default();
        let closed = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let news = std::thread::scope(|s| {
            let threads: Vec<_> = calls
                .iter()
                .map(|c| {
                    let (closed, stop, hh) = (&closed, &stop, H(h as usize));
                    s.spawn(move || hammer(hh, c, closed, stop))
                })
                .collect();
            until_past(&calls, &[0; THREADS], 20);
            close(h);
            closed.store(true, SeqCst);
            let news = [empty_semaphore(), empty_semaphore()];
            let now: Vec<usize> = calls.iter().map(|c| c.load(SeqCst)).collect();
            until_past(&calls, &now, 20);
            stop.store(true, SeqCst);
            for t in threads {
                let wrong = t.join().expect("a calling thread panicked");
                assert!(wrong.0.is_empty(), "wrong results: {:#?}", wrong.0);
            }
            news
        });
        for s in news {
            reused += usize::from(s == h);
            // Nothing released them: the threads' calls never reached a semaphore as
            // anything but a zero-timeout wait.
            assert_eq!(wait1(s, 0), WAIT_TIMEOUT);
            close(s);
        }
    }
    // The point of the exercise: closed values are reused under the threads' feet.
    assert!(
        reused > 0,
        "no closed value was ever reused; the test exercised nothing"
    );
}

/// A wait blocked on a handle that another thread closes keeps the object (LT-04): a
/// set through a duplicate wakes it. Or the close came first and the wait failed with
/// ERROR_INVALID_HANDLE; then the set is still there to take.
fn close_under_a_blocked_wait() {
    for _round in 0..100 {
        let e = event(false, false);
        let dup = duplicate(e);
        let started = AtomicBool::new(false);
        let r = std::thread::scope(|s| {
            let (started, ee) = (&started, H(e as usize));
            let waiter = s.spawn(move || {
                started.store(true, SeqCst);
                call(|| wait1(ee.get(), HANG_GUARD_MS))
            });
            while !started.load(SeqCst) {
                std::thread::yield_now();
            }
            close(e);
            assert_eq!(set_event(dup), TRUE);
            waiter.join().expect("the waiter panicked")
        });
        let left = wait1(dup, 0);
        match r {
            (WAIT_OBJECT_0, _) => {
                assert_eq!(left, WAIT_TIMEOUT, "the waiter took the set; none is left");
            }
            (WAIT_FAILED, ERROR_INVALID_HANDLE) => {
                assert_eq!(left, WAIT_OBJECT_0, "the failed wait took nothing");
            }
            other => panic!("WaitForSingleObject on a handle closed meanwhile gave {other:?}"),
        }
        close(dup);
    }
}

/// A small pseudo-random generator (no dependency, reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

/// Random handle values (closed ones, garbage, NULL) and NULL or misaligned pointers
/// with live handles: each call fails with its own error code and changes nothing.
fn random_values_and_pointers() {
    let sem = {
        // SAFETY: NULL attributes and name.
        let h = unsafe { procsync_CreateSemaphoreA(null(), 1, 2, null()) };
        assert!(!h.is_null());
        h
    };
    let closed = event(true, true);
    close(closed);
    let mut rng = Rng(0x5eed);
    let mut buf = [0u64; 4];
    let misaligned = |buf: &mut [u64; 4], by: usize| buf.as_mut_ptr().cast::<u8>().wrapping_add(by);
    for i in 0..20_000u64 {
        let x = rng.next();
        let h: HANDLE = match i % 4 {
            0 => closed,
            1 => (x & 0xFFFF_FFFF) as HANDLE,
            2 => ((x & 0xFFFC) + 0x1_0000) as HANDLE,
            _ => null_mut(),
        };
        // The low two bits of a HANDLE are ignored: skip values that name `sem`.
        if (h as usize & !3) == (sem as usize & !3) {
            continue;
        }
        let by = 1 + (x as usize >> 40) % 3;
        let r = call(|| wait1(h, 0));
        assert_eq!(
            r,
            (WAIT_FAILED, ERROR_INVALID_HANDLE),
            "WaitForSingleObject({h:?})"
        );
        let r = call(|| set_event(h));
        assert_eq!(r, (FALSE, ERROR_INVALID_HANDLE), "SetEvent({h:?})");
        let mut prev = 0;
        let r = call(|| release_sem(h, &mut prev));
        assert_eq!(r, (FALSE, ERROR_INVALID_HANDLE), "ReleaseSemaphore({h:?})");
        let r = call(|| close_handle(h));
        assert_eq!(r, (FALSE, ERROR_INVALID_HANDLE), "CloseHandle({h:?})");
        let p = misaligned(&mut buf, by);
        let r = call(|| release_sem(sem, p.cast()));
        assert_eq!(
            r,
            (FALSE, ERROR_INVALID_PARAMETER),
            "ReleaseSemaphore, previous at {p:?}"
        );
        let r = call(|| handle_info(sem, p.cast()));
        assert_eq!(
            r,
            (FALSE, ERROR_INVALID_PARAMETER),
            "GetHandleInformation, flags at {p:?}"
        );
        let r = call(|| handle_info(sem, null_mut()));
        assert_eq!(
            r,
            (FALSE, ERROR_INVALID_PARAMETER),
            "GetHandleInformation, NULL flags"
        );
        let r = call(|| wait_any0(2, p.cast()));
        assert_eq!(
            r,
            (WAIT_FAILED, ERROR_INVALID_PARAMETER),
            "WaitForMultipleObjects, array at {p:?}"
        );
        let r = call(|| wait_any0(1, null()));
        assert_eq!(
            r,
            (WAIT_FAILED, ERROR_INVALID_PARAMETER),
            "WaitForMultipleObjects, NULL array"
        );
        let hs = [sem, h];
        let r = call(|| wait_any0(2, hs.as_ptr()));
        assert_eq!(
            r,
            (WAIT_FAILED, ERROR_INVALID_HANDLE),
            "WaitForMultipleObjects with {h:?}"
        );
    }
    // None of that took or released a count: still 1 of 2.
    let mut prev = -1;
    assert_eq!(release_sem(sem, &mut prev), TRUE);
    assert_eq!(prev, 1);
    close(sem);
}

#[test]
fn closes_races_and_bad_values_at_the_boundary() {
    let _root = Root::new();
    close_while_others_call();
    close_under_a_blocked_wait();
    random_values_and_pointers();
}
