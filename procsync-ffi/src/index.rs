//! The handle table's storage: a lock-free radix index from a value below 2^30 to a
//! boxed entry. Three levels of 1024 atomic pointers; a page is allocated the first
//! time a value in its range is stored and never freed (the memory is bounded by the
//! highest descriptor number the process ever used: 8 KiB per 1024 values).
//!
//! Readers look up inside a [`Section`] with three plain loads; writers are serialised
//! by their caller and get back what they replaced as a [`Retired`], which frees it
//! only after the readers that could see it are done.
//!
//! It must not know what an entry means.

use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

use crate::reclaim::{Retired, Section};

const BITS: u32 = 10;
const FAN: usize = 1 << BITS;
/// Values are below this (a `HANDLE` is at most 32 bits, `(value + 1) * 4`).
pub const LIMIT: u64 = 1 << (3 * BITS);

type Level<T> = [AtomicPtr<T>; FAN];

fn empty<T>() -> Box<Level<T>> {
    Box::new([const { AtomicPtr::new(ptr::null_mut()) }; FAN])
}

/// A lock-free map from values below [`LIMIT`] to `T`.
pub struct Index<T> {
    top: Level<Level<Level<T>>>,
}

/// The three digits of `v`.
fn digits(v: u64) -> [usize; 3] {
    let d = |i: u32| ((v >> (i * BITS)) as usize) & (FAN - 1);
    [d(2), d(1), d(0)]
}

/// The page at `p`.
fn page<'a, T>(p: *mut Level<T>) -> Option<&'a Level<T>> {
    // SAFETY: a page pointer is NULL or from `Box::into_raw`, and pages are never freed.
    unsafe { p.as_ref() }
}

/// The page under `slot`, made if `make` and missing.
fn child<T>(slot: &AtomicPtr<Level<T>>, make: bool) -> Option<&Level<T>> {
    let p = slot.load(Acquire);
    if !p.is_null() || !make {
        return page(p);
    }
    let new = Box::into_raw(empty::<T>());
    match slot.compare_exchange(ptr::null_mut(), new, AcqRel, Acquire) {
        Ok(_) => page(new),
        Err(other) => {
            // SAFETY: `new` came from Box::into_raw just above and was never published.
            drop(unsafe { Box::from_raw(new) });
            page(other)
        }
    }
}

impl<T> Index<T> {
    /// An empty index (no pages yet).
    pub const fn new() -> Index<T> {
        Index {
            top: [const { AtomicPtr::new(ptr::null_mut()) }; FAN],
        }
    }
}

/// Entries are read from any thread and freed on the closing one.
impl<T: Send + Sync> Index<T> {
    fn leaf(&self, v: u64, make: bool) -> Option<&Level<T>> {
        if v >= LIMIT {
            return None;
        }
        let [a, b, _] = digits(v);
        child(&child(&self.top[a], make)?[b], make)
    }

    /// The entry of `v`, valid while `_s` lives.
    #[inline]
    pub fn get<'s>(&self, v: u64, _s: &'s Section) -> Option<&'s T> {
        let p = self.leaf(v, false)?[digits(v)[2]].load(Acquire);
        // SAFETY: an entry pointer is NULL or from `Box::into_raw` in `swap`, and an
        // entry is freed only by a `Retired` after `synchronize`, which waits for every
        // section that began before it was unpublished, so for `_s` if it saw it.
        unsafe { p.as_ref() }
    }

    /// Stores `new` (or nothing) as `v`'s entry and returns what was there. Callers
    /// must not swap the same index concurrently with each other (they hold a lock).
    /// `v` must be below [`LIMIT`] (descriptor numbers are, as `nr_open` is below
    /// 2^30); a value past it is not stored and `new` is dropped.
    pub fn swap(&self, v: u64, new: Option<Box<T>>) -> Retired<T> {
        let make = new.is_some();
        let Some(leaf) = self.leaf(v, make) else {
            return Retired::new(None);
        };
        let p = new.map_or(ptr::null_mut(), Box::into_raw);
        let old = leaf[digits(v)[2]].swap(p, AcqRel);
        // SAFETY: `old` is NULL or from Box::into_raw, and the swap above unpublished it:
        // no one else frees it; the Retired frees it after the grace period.
        Retired::new((!old.is_null()).then(|| unsafe { Box::from_raw(old) }))
    }
}
