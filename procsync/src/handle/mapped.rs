//! The named objects this process has mapped through a create or an open, by the
//! device and inode of their file: a second open of a name this process already holds
//! takes the object it has (like an in-process duplicate: same mapping, same
//! share-locked description) instead of opening, probing, locking and mapping the file
//! again, and its close is then a plain `close` of its value descriptor.
//!
//! Why that keeps the lifetime protocol (`shm::file`) exact: an object found here is
//! alive in this process, so its description holds the shared `flock`, so the file is
//! no orphan and no last closer can unlink it; the caller checks that the name still
//! names that very file (`fstatat`) before it takes the object, as the open protocol
//! does after locking. Objects adopted from outside are never entered (their shared
//! lock is not certain).
//!
//! It owns only weak references (the index never keeps an object alive) and must not
//! touch files: the caller does the `fstatat`. Its lock is never held while an object
//! is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::obj::Object;

/// Device and inode of an object file.
type FileKey = (u64, u64);

#[derive(Default)]
struct Index {
    map: HashMap<FileKey, Vec<Weak<Object>>>,
    /// Size of `map` after the last full pruning: the next one runs when it doubles.
    pruned_at: usize,
}

static INDEX: Mutex<Option<Index>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Index) -> T) -> T {
    let mut g = super::registry::lock(&INDEX);
    f(g.get_or_insert_with(Index::default))
}

/// Records `obj`, mapped from the file `dev`/`ino` by a create or an open that holds
/// its shared lock.
pub(super) fn insert(dev: u64, ino: u64, obj: &Arc<Object>) {
    with(|i| {
        let v = i.map.entry((dev, ino)).or_default();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(obj));
        if i.map.len() > 2 * i.pruned_at.max(32) {
            i.map.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
            i.pruned_at = i.map.len();
        }
    });
}

/// A live object of this process mapped from the file `dev`/`ino` that `keep` accepts
/// (same spelling of the name, same root), if any.
pub(super) fn find(dev: u64, ino: u64, keep: impl Fn(&Object) -> bool) -> Option<Arc<Object>> {
    // Objects that do not fit are dropped after the lock is released: dropping the last
    // reference to one runs its close protocol.
    let mut misfits = Vec::new();
    let found = with(|i| {
        for w in i.map.get(&(dev, ino))? {
            match w.upgrade() {
                Some(o) if keep(&o) => return Some(o),
                Some(o) => misfits.push(o),
                None => {}
            }
        }
        None
    });
    drop(misfits);
    found
}

#[cfg(test)]
mod tests {
    use crate::handle::{Access, ObjectState, Semaphore};
    use crate::shm::file::Created;
    use crate::test_root::TestRoot;

    fn count(s: &Semaphore) -> u32 {
        match s.query().unwrap() {
            ObjectState::Semaphore { count, .. } => count,
            other => panic!("not a semaphore: {other:?}"),
        }
    }

    /// LT-01, LT-02 and HD-01 when both handles live in one process: the second open
    /// takes the held object, gets its own value and rights, and the name lives until
    /// the last of them closes, in whichever order.
    #[test]
    fn lt02_a_second_open_in_the_process_shares_the_object_until_its_last_close() {
        let r = TestRoot::new();
        let (a, c) = Semaphore::create("Local\\m", 0, 5).unwrap();
        assert_eq!(c, Created::New);
        let b = Semaphore::open_with("Local\\m", Access::SYNCHRONIZE).unwrap();
        let (again, c) = Semaphore::create("Local\\m", 0, 5).unwrap();
        assert_eq!(c, Created::Existing);
        assert!(a.same_object(&b) && a.same_object(&again));
        assert_ne!(a.value(), b.value());
        assert_ne!(b.value(), again.value());
        assert_eq!(b.release(1).unwrap_err().code(), "access-denied");
        a.release(2).unwrap();
        assert_eq!(count(&b), 2);
        drop(a);
        drop(again);
        let c = Semaphore::open("Local\\m").unwrap();
        assert_eq!(count(&c), 2, "the name still names the object (LT-02)");
        drop(c);
        assert!(!r.files().is_empty());
        drop(b);
        assert_eq!(r.files(), Vec::<std::path::PathBuf>::new());
        assert_eq!(
            Semaphore::open("Local\\m").unwrap_err().code(),
            "not-found",
            "LT-01"
        );
    }

    /// A name that no longer names the held object's file (moved away behind the
    /// library's back) is not served from that object: the create publishes a new one.
    #[test]
    fn a_name_that_names_another_file_now_is_not_served_from_the_held_object() {
        let r = TestRoot::new();
        let (a, _) = Semaphore::create("Local\\moved", 1, 1).unwrap();
        let files = r.files();
        assert_eq!(files.iter().filter(|p| p.ends_with("omoved")).count(), 1);
        let file = files.into_iter().find(|p| p.ends_with("omoved")).unwrap();
        let away = file.with_file_name("away");
        std::fs::rename(&file, &away).unwrap();
        let (b, c) = Semaphore::create("Local\\moved", 0, 1).unwrap();
        assert_eq!(c, Created::New);
        assert!(!a.same_object(&b));
        assert_eq!((count(&a), count(&b)), (1, 0));
        drop(a);
        std::fs::remove_file(&away).unwrap();
        drop(b);
        assert_eq!(r.files(), Vec::<std::path::PathBuf>::new());
    }

    /// Opens racing the last close of the held object in another thread: each open
    /// either finds the name gone or gets a working handle, and nothing is left behind.
    #[test]
    fn opens_racing_the_last_close_either_fail_cleanly_or_work() {
        let r = TestRoot::new();
        let root = r.0.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let opener = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                crate::shm::root::TEST_ROOT.with(|t| *t.borrow_mut() = Some(root));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match Semaphore::open("Local\\race") {
                        Ok(s) => {
                            s.release(1).unwrap();
                            assert_eq!(
                                s.wait(Some(std::time::Duration::ZERO)).unwrap(),
                                crate::WaitOutcome::Signaled(0)
                            );
                        }
                        Err(e) => assert_eq!(e.code(), "not-found", "{e}"),
                    }
                }
                crate::shm::root::TEST_ROOT.with(|t| *t.borrow_mut() = None);
            })
        };
        for _ in 0..300 {
            let (h, _) = Semaphore::create("Local\\race", 0, 1_000).unwrap();
            std::thread::yield_now();
            drop(h);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        opener.join().unwrap();
        assert_eq!(r.files(), Vec::<std::path::PathBuf>::new());
    }
}
