//! The named objects this process has mapped through a create or an open, by the
//! device and inode of their file: a second open of a name this process already holds
//! takes the object it has (like an in-process duplicate: same mapping, same
//! share-locked description; its value is a duplicate of the object's descriptor)
//! instead of probing, locking and mapping the file again, and its close is then a
//! plain `close` of that duplicate.
//!
//! Why that keeps the lifetime protocol (`shm::file`) exact: an object found here is
//! alive in this process, so its description holds the shared `flock`, so the file is
//! no orphan and no last closer can unlink it; the caller has just opened the name and
//! found this very file (device and inode of its fresh descriptor), as the open
//! protocol checks after locking. Objects adopted from outside are never entered (their
//! shared lock is not certain).
//!
//! A file changed behind the library's back must be refused as a fresh open would
//! refuse it: each entry keeps the file's size and header as they were validated at
//! mapping, and an object is only handed out while both are unchanged (otherwise the
//! caller maps the file afresh and `obj` reports what is wrong). That comparison is the
//! only read of shared memory here.
//!
//! It owns only weak references (the index never keeps an object alive) and must not
//! touch files: the caller opens and stats. Its lock is never held while an object is
//! dropped.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};

use crate::obj::Object;
use crate::sys::fs::FileId;

/// Device and inode of an object file.
type FileKey = (u64, u64);

/// The header of an object file, word by word (immutable once published).
type HeaderWords = [u64; 8];

fn header(o: &Object) -> HeaderWords {
    let h = &o.file().header;
    let pair = |a: u32, b: u32| u64::from(a) | u64::from(b) << 32;
    [
        h.magic.load(Relaxed),
        pair(h.version.load(Relaxed), h.kind.load(Relaxed)),
        h.object_id.load(Relaxed),
        pair(h.param.load(Relaxed), h.size.load(Relaxed)),
        pair(h.queue_capacity.load(Relaxed), h.creator_uid.load(Relaxed)),
        h.pid_ns.load(Relaxed),
        h.reserved[0].load(Relaxed),
        h.reserved[1].load(Relaxed),
    ]
}

struct Entry {
    obj: Weak<Object>,
    size: u64,
    header: HeaderWords,
}

#[derive(Default)]
struct Index {
    map: HashMap<FileKey, Vec<Entry>>,
    /// Size of `map` after the last full pruning: the next one runs when it doubles.
    pruned_at: usize,
}

static INDEX: Mutex<Option<Index>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Index) -> T) -> T {
    let mut g = super::registry::lock(&INDEX);
    f(g.get_or_insert_with(Index::default))
}

/// Records `obj`, just mapped and validated from the file `st` by a create or an open
/// that holds its shared lock.
pub(super) fn insert(st: &FileId, obj: &Arc<Object>) {
    let entry = Entry {
        obj: Arc::downgrade(obj),
        size: st.size,
        header: header(obj),
    };
    with(|i| {
        // Almost always one object per file: room for one (the default growth would
        // reserve four entries, ~320 bytes per object).
        let v = i
            .map
            .entry((st.dev, st.ino))
            .or_insert_with(|| Vec::with_capacity(1));
        v.retain(|e| e.obj.strong_count() > 0);
        v.push(entry);
        if i.map.len() > 2 * i.pruned_at.max(32) {
            i.map.retain(|_, v| {
                v.retain(|e| e.obj.strong_count() > 0);
                !v.is_empty()
            });
            i.pruned_at = i.map.len();
        }
    });
}

/// A live object of this process mapped from the file `st` (a fresh `fstat` of it)
/// that `keep` accepts (same spelling of the name, same root), if the file still has
/// the size and header it had when the object was mapped.
pub(super) fn find(st: &FileId, keep: impl Fn(&Object) -> bool) -> Option<Arc<Object>> {
    // Objects that do not fit are dropped after the lock is released: dropping the last
    // reference to one runs its close protocol.
    let mut misfits = Vec::new();
    let found = with(|i| {
        for e in i.map.get(&(st.dev, st.ino))? {
            // The size first: a shrunk file must not be read through the mapping.
            if e.size != st.size {
                continue;
            }
            match e.obj.upgrade() {
                Some(o) if keep(&o) && header(&o) == e.header => return Some(o),
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
