//! A private root for the README's doctest, so that running it leaves nothing in the
//! default root. Not part of the API (hidden, and may change without notice).

use std::path::PathBuf;

use crate::shm::root::{ROOT_OVERRIDDEN, ROOT_OVERRIDE};

/// While alive, every object of the process lives under a fresh directory of the temp
/// dir, removed on drop.
#[doc(hidden)]
pub struct DoctestRoot(PathBuf);

/// Starts a [`DoctestRoot`].
#[doc(hidden)]
pub fn __doctest_root() -> DoctestRoot {
    let root = std::env::temp_dir().join(format!("procsync-readme-{}", std::process::id()));
    *ROOT_OVERRIDE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(root.clone());
    ROOT_OVERRIDDEN.store(true, std::sync::atomic::Ordering::Release);
    DoctestRoot(root)
}

impl Drop for DoctestRoot {
    fn drop(&mut self) {
        *ROOT_OVERRIDE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
