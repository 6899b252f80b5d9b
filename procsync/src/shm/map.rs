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
        Self::with_stat(fd, &fs::stat_fd(fd).map_err(Some)?)
    }

    /// As [`SharedMap::new`], with the `fstat` of `fd` that the caller made already.
    pub(crate) fn with_stat(fd: BorrowedFd<'_>, id: &fs::FileId) -> Result<Self, Option<Errno>> {
        let len = size_of::<T>();
        if !id.is_file || id.size != len as u64 {
            return Err(None);
        }
        // SAFETY: `len` equals the file size checked with fstat. Object files are
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

/// A System V segment laid out as `T` (wait blocks): like [`SharedMap`], but nobody can
/// resize it, so no writer can make an access fault.
pub(crate) struct SharedSeg<T: Shared> {
    seg: crate::sys::sysv::Attached,
    _t: PhantomData<T>,
}

impl<T: Shared> std::fmt::Debug for SharedSeg<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSeg(id {}, {:p})", self.seg.id(), self.seg.base())
    }
}

impl<T: Shared> SharedSeg<T> {
    /// Creates a segment of `size_of::<T>()` bytes, zero-filled, mode `mode`.
    pub(crate) fn create(mode: u32) -> Result<Self, Errno> {
        Ok(SharedSeg {
            seg: crate::sys::sysv::create(size_of::<T>(), mode)?,
            _t: PhantomData,
        })
    }

    /// Attaches segment `id`, which must be exactly `size_of::<T>()` bytes.
    pub(crate) fn attach(id: i32) -> Result<Self, Errno> {
        Ok(SharedSeg {
            seg: crate::sys::sysv::attach(id, size_of::<T>())?,
            _t: PhantomData,
        })
    }

    /// The segment id.
    pub(crate) fn id(&self) -> i32 {
        self.seg.id()
    }

    /// The mapped structure.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        debug_assert!(self.seg.len() == size_of::<T>());
        // SAFETY: the attachment is page-aligned, exactly `size_of::<T>()` long (checked
        // at attach, or created so) and lives as long as `self`; segments cannot shrink;
        // `T: Shared` is valid for any bit pattern and only accessed through atomics.
        unsafe { self.seg.base().cast::<T>().as_ref() }
    }
}
