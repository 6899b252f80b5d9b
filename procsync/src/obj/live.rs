//! Every object mapped in this process, by object id: how abandonment at thread exit
//! finds the mutexes a thread owns through any of their mappings, and how a signaller
//! finds a wait-all's other objects that this process maps.

use std::sync::{Arc, Weak};

use super::Object;

type LiveIndex = std::sync::Mutex<std::collections::HashMap<u64, Vec<Weak<Object>>>>;
/// Every object mapped in this process, by object id: several opens of one name are
/// separate mappings of one object, and whoever must act on the object (abandonment at
/// thread exit) may find it through any of them.
static LIVE: std::sync::OnceLock<LiveIndex> = std::sync::OnceLock::new();

fn live() -> std::sync::MutexGuard<'static, std::collections::HashMap<u64, Vec<Weak<Object>>>> {
    LIVE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// An object this process maps, by id (any of its mappings).
pub(crate) fn lookup(id: u64) -> Option<Arc<Object>> {
    live().get(&id)?.iter().find_map(Weak::upgrade)
}

pub(super) fn register(o: Object) -> Arc<Object> {
    let o = Arc::new(o);
    live().entry(o.id).or_default().push(Arc::downgrade(&o));
    o
}

/// The mutexes mapped in this process that thread `me` owns (one mapping each).
pub(crate) fn owned_by(me: u64) -> Vec<Arc<Object>> {
    // Upgrade under the index lock, filter after releasing it: dropping the last Arc
    // of an object runs `Object::drop`, which takes the index lock.
    let all: Vec<Arc<Object>> = live()
        .values()
        .filter_map(|v| v.iter().find_map(Weak::upgrade))
        .collect();
    all.into_iter()
        .filter(|o| o.owned() && o.owner() == me)
        .collect()
}

impl Drop for Object {
    fn drop(&mut self) {
        let mut l = live();
        if let Some(v) = l.get_mut(&self.id) {
            v.retain(|w| w.strong_count() > 0);
            if v.is_empty() {
                l.remove(&self.id);
            }
        }
    }
}
