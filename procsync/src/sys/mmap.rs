//! Shared read-write mappings of object files.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

use super::Errno;

/// A `MAP_SHARED` read-write mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access through it goes through
// atomics (see `shm::map`), so sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above: only atomic accesses are ever made through `&Mapping`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Start of the mapping; page-aligned.
    #[inline]
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Maps `len` bytes of `fd` from offset 0, shared and read-write.
///
/// # Safety
/// - `len` must not exceed the file's size, and the file must never shrink while
///   mapped (object files have a fixed size, checked by the caller with `fstat`; a
///   hostile truncation makes accesses fault with SIGBUS, see docs/ARCHITECTURE.md).
pub(crate) unsafe fn map_shared(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, Errno> {
    // SAFETY: a fresh mapping at an address the kernel chooses aliases no Rust object;
    // the caller guarantees the file covers `len` bytes.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            // Populated now: every mapping is read at once (its header validated), and
            // one page table fill here costs less than the page fault it saves.
            MapFlags::SHARED | MapFlags::POPULATE,
            fd,
            0,
        )?
    };
    let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
    Ok(Mapping { ptr, len })
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and are unmapped only here;
        // no reference into the mapping outlives `self` (accessors borrow `&self`).
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
