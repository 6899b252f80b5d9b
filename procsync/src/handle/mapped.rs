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
