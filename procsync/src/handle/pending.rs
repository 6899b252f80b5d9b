//! Handles that arrived from outside (inherited from the parent, or duplicated into
//! this process) and wait for `adopt(value)` to give them to the program; and closing a
//! handle on behalf of another process (`DUPLICATE_CLOSE_SOURCE`).
//!
//! `PENDING` maps value → how the handle arrived and the handle itself. Its lock is
//! taken before the registry's `LIVE`, never after.
//!
//! It must not touch shared memory or interpret objects: it keeps and drops handles.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::core::Handle;
use super::registry::{self, lock};

/// How a pending handle arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Inherited from the parent (described by the environment).
    Inherited,
    /// Pushed by another process (or this one) through duplication.
    Received,
}

type Pending = Mutex<BTreeMap<u64, (Origin, Handle)>>;
static PENDING: OnceLock<Pending> = OnceLock::new();

fn pending() -> MutexGuard<'static, BTreeMap<u64, (Origin, Handle)>> {
    lock(PENDING.get_or_init(Default::default))
}

/// Keeps a handle that arrived from outside until `adopt(value)`; returns its value.
pub(crate) fn park(origin: Origin, h: Handle) -> u64 {
    let v = h.value();
    pending().insert(v, (origin, h));
    v
}

/// Takes the pending handle `value`.
pub(crate) fn take(value: u64) -> Option<Handle> {
    pending().remove(&value).map(|(_, h)| h)
}

/// Takes every pending handle that arrived by inheritance, in value order.
pub(crate) fn take_inherited() -> Vec<(u64, Handle)> {
    let mut map = pending();
    let values: Vec<u64> = map
        .iter()
        .filter(|(_, (o, _))| *o == Origin::Inherited)
        .map(|(v, _)| *v)
        .collect();
    values
        .into_iter()
        .filter_map(|v| map.remove(&v).map(|(_, h)| (v, h)))
        .collect()
}

/// Closes handle `value` on behalf of another process (DUPLICATE_CLOSE_SOURCE): a
/// pending handle is dropped; a handle the program holds is marked closed (every later
/// call on it fails), its value is forgotten and its descriptor closed (a value lent by
/// the object closes with the object) and the program's close hook is told, so that it
/// can drop the handle and with it the object. Returns whether a handle was found.
pub(crate) fn close_from_outside(value: u64) -> bool {
    let parked = pending().remove(&value);
    if let Some((_, h)) = parked {
        drop(h);
        return true;
    }
    let Some(slot) = registry::find(value) else {
        return false;
    };
    slot.closed.store(true, Ordering::Relaxed);
    registry::unregister(&slot);
    let hook = lock(HOOK.get_or_init(Default::default)).clone();
    if let Some(hook) = hook {
        hook(value);
    }
    true
}

type Hook = Arc<dyn Fn(u64) + Send + Sync>;
static HOOK: OnceLock<Mutex<Option<Hook>>> = OnceLock::new();

/// Registers the function told about handles closed from outside (see
/// [`on_remote_close`](super::on_remote_close)).
pub(crate) fn set_close_hook(hook: Hook) {
    *lock(HOOK.get_or_init(Default::default)) = Some(hook);
}
