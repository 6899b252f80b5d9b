//! Room for more descriptors: every object a process holds costs it one descriptor (its
//! share-locked file, which is also its first handle's value) and every further handle
//! one more, and the default soft limit of 1 024 stops a process at about 1 000 objects
//! although the hard limit is usually far higher.
//!
//! The first time a descriptor-creating call of ours fails with `EMFILE`, the soft
//! `RLIMIT_NOFILE` is raised to the hard limit, once per process, and the call is
//! retried: the same thing Go's runtime does at start-up, done here only when needed.
//! Children inherit the raised limit. It must not raise anything else, or retry more
//! than once.

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{Resource, getrlimit, setrlimit};

use super::Errno;

static RAISED: AtomicBool = AtomicBool::new(false);

/// Raises the soft descriptor limit to the hard one; `true` if it is now higher than
/// it was (so a retry may succeed).
fn raise() -> bool {
    if RAISED.swap(true, Ordering::Relaxed) {
        return false;
    }
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current >= lim.maximum && lim.maximum.is_some() {
        return false;
    }
    lim.current = lim.maximum;
    setrlimit(Resource::Nofile, lim).is_ok()
}

/// Runs `make` (a call that creates a descriptor); on `EMFILE`, raises the limit once
/// and runs it again.
#[inline]
pub(crate) fn more<T>(mut make: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    match make() {
        Err(Errno::MFILE) if raise() => make(),
        r => r,
    }
}
