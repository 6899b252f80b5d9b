//! Typed views of mappings. A [`SharedMap<T>`] exists only for a file whose size was
//! checked to be exactly `size_of::<T>()`, so `get()` is safe.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use super::layout::Shared;
use crate::sys::mmap::{Mapping, map_shared};
use crate::sys::{Errno, fs};

/// A mapping of a whole file laid out as `T`.
pub(crate) struct SharedMap<T: Shared> {
    map: Mapping,
    _t: PhantomData<T>,
}

impl<T: Shared> std::fmt::Debug for SharedMap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedMap({:p}, {} bytes)",
            self.map.base(),
            self.map.len()
        )
    }
}

impl<T: Shared> SharedMap<T> {
    /// Maps `fd`, which must be a regular file of exactly `size_of::<T>()` bytes.
    /// Returns `Err(None)` when the size is wrong, `Err(Some(errno))` on a system error.
    pub(crate) fn new(fd: BorrowedFd<'_>) -> Result<Self, Option<Errno>> {
        let id = fs::stat_fd(fd).map_err(Some)?;
        let len = size_of::<T>();
        if !id.is_file || id.size != len as u64 {
            return Err(None);
        }
        // SAFETY: `len` equals the file size just checked with fstat. Object files are
        // never shrunk by procsync; a hostile truncation by another process with write
        // access is the documented SIGBUS limit (docs/ARCHITECTURE.md, "Hostile files").
        let map = unsafe { map_shared(fd, len) }.map_err(Some)?;
        Ok(SharedMap {
            map,
            _t: PhantomData,
        })
    }

    /// The mapped structure.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        debug_assert!(self.map.len() == size_of::<T>());
        // SAFETY: the mapping is page-aligned, exactly `size_of::<T>()` long (checked in
        // `new`) and lives as long as `self`; `T: Shared` is valid for any bit pattern and
        // only ever accessed through atomics, so concurrent writers elsewhere are fine.
        unsafe { self.map.base().cast::<T>().as_ref() }
    }
}
