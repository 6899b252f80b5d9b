//! A fresh root per unit test (see `shm::root::TEST_ROOT`), removed on drop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) struct TestRoot(pub PathBuf);

impl TestRoot {
    pub(crate) fn new() -> TestRoot {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "procsync-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        crate::shm::root::TEST_ROOT.with(|r| *r.borrow_mut() = Some(p.clone()));
        TestRoot(p)
    }

    /// Regular files left below the root.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        fn walk(p: &std::path::Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out)
                    } else {
                        out.push(path)
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.0, &mut v);
        v
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        crate::shm::root::TEST_ROOT.with(|r| *r.borrow_mut() = None);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
