//! `names/create-close` and `names/open-close` (procsync-bench/README.md, "Scenarios"): the
//! cost of a name operation, procsync's named semaphore against a POSIX named semaphore
//! (`sem_open`).
//!
//! What it owns: the two pairs and the POSIX semaphore's name, which it unlinks when done
//! (nothing is left in `/dev/shm`). What it must not do: keep any procsync handle open
//! beyond the scenario.
//!
//! - create + close: `Semaphore::create(name)` then dropping the only handle (the name
//!   disappears with it, LT-01) vs `sem_open(O_CREAT | O_EXCL)` + `sem_close` +
//!   `sem_unlink` (the unlink is what makes the name disappear, so it belongs to the work).
//! - open + close: with one handle kept open for the whole pair, `Semaphore::open(name)`
//!   then dropping it vs `sem_open(name, 0)` + `sem_close`.

use std::ffi::CString;
use std::hint::black_box;

use procsync::Semaphore;

use super::{Plan, Report, paired, times};

/// The POSIX semaphore name of this run (unique per process).
fn posix_name(what: &str) -> CString {
    CString::new(format!("/procsync-bench-{}-{what}", std::process::id())).expect("no NUL")
}

/// `sem_open(name, oflag, 0600, 0)`; panics with the OS error on failure.
pub(crate) fn sem_open(name: &CString, oflag: libc::c_int) -> *mut libc::sem_t {
    // SAFETY: `name` is a NUL-terminated string; the variadic mode and value arguments
    // are the types `sem_open` reads when O_CREAT is given (ignored otherwise).
    let s = unsafe {
        libc::sem_open(
            name.as_ptr(),
            oflag,
            0o600 as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    assert!(
        s != libc::SEM_FAILED,
        "sem_open({name:?}): {}",
        std::io::Error::last_os_error()
    );
    s
}

fn sem_close(s: *mut libc::sem_t) {
    // SAFETY: `s` came from a successful `sem_open` and is closed once.
    let r = unsafe { libc::sem_close(s) };
    debug_assert_eq!(r, 0);
}

fn sem_unlink(name: &CString) {
    // SAFETY: `name` is a NUL-terminated string.
    let r = unsafe { libc::sem_unlink(name.as_ptr()) };
    debug_assert_eq!(r, 0);
}

/// Unlinks a POSIX semaphore name when dropped, also on a panic (nothing left in
/// `/dev/shm`); a name already gone is fine.
struct Unlink(CString);

impl Drop for Unlink {
    fn drop(&mut self) {
        // SAFETY: a NUL-terminated string; ENOENT is ignored.
        unsafe { libc::sem_unlink(self.0.as_ptr()) };
    }
}

/// Runs both pairs and adds their rows.
pub fn run(report: &mut Report, plan: &Plan, wanted: &dyn Fn(&str) -> bool) {
    let b = plan.uncontended;
    if wanted("names/create-close") {
        let name = "Local\\bench-name-create";
        let posix = posix_name("create");
        let _gone = Unlink(posix.clone());
        let s = paired(
            &mut times(|| {
                let (h, _) = Semaphore::create(name, 0, 1).expect("create");
                black_box(&h);
                drop(h);
            }),
            &mut times(|| {
                sem_close(sem_open(&posix, libc::O_CREAT | libc::O_EXCL));
                sem_unlink(&posix);
            }),
            b,
        );
        report.pair(
            "names/create-close",
            "procsync-semaphore",
            "posix-sem_open-close-unlink",
            "per op",
            s,
        );
    }
    if wanted("names/open-close") {
        let name = "Local\\bench-name-open";
        let posix = posix_name("open");
        let _gone = Unlink(posix.clone());
        let (keep, _) = Semaphore::create(name, 0, 1).expect("create");
        sem_close(sem_open(&posix, libc::O_CREAT | libc::O_EXCL));
        let s = paired(
            &mut times(|| {
                let h = Semaphore::open(name).expect("open");
                black_box(&h);
                drop(h);
            }),
            &mut times(|| sem_close(sem_open(&posix, 0))),
            b,
        );
        drop(keep);
        report.pair(
            "names/open-close",
            "procsync-semaphore",
            "posix-sem_open-close",
            "per op",
            s,
        );
    }
}
