//! The process's table of Win32 `HANDLE` values.
//!
//! A procsync handle's value is the number of a descriptor it owns (see the library's
//! `handle::registry`); its `HANDLE` is `(value + 1) * 4`: a multiple of 4 that fits in
//! 32 bits, never NULL, and the same in a child that inherits it or a process it is
//! duplicated into (HC-08, HI-02). The low two bits of a `HANDLE` are ignored; anything
//! that is not in the table is `ERROR_INVALID_HANDLE`.
//!
//! A value that is not in the table may be a handle this process inherited or received
//! by `DuplicateHandle` from another process: the lookup adopts it ([`procsync::adopt`])
//! on first use, so C code uses such values verbatim, as on Windows (HI-09).
//!
//! Each entry also holds the handle's Win32 access mask, which the exported functions
//! check (the library keeps only "synchronize" and "modify"), and
//! `HANDLE_FLAG_PROTECT_FROM_CLOSE`. Process handles (`OpenProcess`) live here too,
//! as pidfds, so that their values never collide with object handles.
//!
//! Entries live in a lock-free [`Index`] and are read inside [`reclaim`] sections, so
//! a lookup takes no lock and changes no reference count; `CloseHandle` unpublishes
//! the entry and frees it only when no section can still be reading it. A closed
//! value therefore never reaches freed memory, and a lookup sees either the whole old
//! entry or the whole new one, never a mix: once the old object is gone its descriptor
//! number, and so its `HANDLE`, may be reused by a new object, as Windows reuses handle
//! values. Writers (insert, close, flags) are serialised by one mutex.
//!
//! It must not perform object operations.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use procsync::{Access, Handle, ObjectKind};

use crate::index::Index;
use crate::last_error::{Code, W};
use crate::reclaim;
use crate::types::*;

/// `GetCurrentProcess()`: `(HANDLE)-1`.
pub const CURRENT_PROCESS: usize = usize::MAX;
/// `GetCurrentThread()`: `(HANDLE)-2`.
pub const CURRENT_THREAD: usize = usize::MAX - 1;

/// A process named by a process handle.
#[derive(Debug)]
pub struct Process {
    /// Its id.
    pub pid: u32,
    /// A pidfd for it (waitable; its number is the handle's value).
    pub fd: OwnedFd,
}

/// What a `HANDLE` names.
#[derive(Clone, Debug)]
pub enum Obj {
    /// An event, mutex, semaphore or waitable timer.
    Sync(Arc<Handle>),
    /// Another (or this) process, from `OpenProcess`.
    Process(Arc<Process>),
    /// The `GetCurrentProcess()` pseudo-handle.
    CurrentProcess,
    /// The `GetCurrentThread()` pseudo-handle (waitable; no other use here).
    CurrentThread,
}

/// A table entry.
#[derive(Debug)]
struct Entry {
    obj: Obj,
    access: DWORD,
    protect: AtomicBool,
    /// `HANDLE_FLAG_INHERIT` of a process handle (object handles keep theirs in the library).
    inherit: AtomicBool,
}

/// A looked-up handle: what it names and its Win32 rights.
#[derive(Clone, Debug)]
pub struct Found {
    /// The object.
    pub obj: Obj,
    /// Win32 access mask.
    pub access: DWORD,
}

impl Found {
    /// The object handle, or `ERROR_INVALID_HANDLE` for a process handle.
    pub fn sync(&self) -> W<&Arc<Handle>> {
        match &self.obj {
            Obj::Sync(h) => Ok(h),
            _ => Err(Code(ERROR_INVALID_HANDLE)),
        }
    }

    /// The object handle of type `kind` with every right in `need`: else
    /// `ERROR_INVALID_HANDLE` (HC-07) or `ERROR_ACCESS_DENIED` (AM-02..05).
    pub fn need(&self, kind: ObjectKind, need: DWORD) -> W<&Arc<Handle>> {
        let h = self.sync()?;
        if h.kind() != kind {
            return Err(Code(ERROR_INVALID_HANDLE));
        }
        if self.access & need != need {
            return Err(Code(ERROR_ACCESS_DENIED));
        }
        Ok(h)
    }
}

/// Entries indexed by value (descriptor numbers are small and dense).
static ENTRIES: Index<Entry> = Index::new();

/// Serialises the writers (insert, close, set flags): a check-then-remove (protected
/// handles) must not interleave with another writer.
static WRITE: Mutex<()> = Mutex::new(());

fn writer() -> MutexGuard<'static, ()> {
    WRITE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stores `e` as `v`'s entry; what it replaces is freed after the grace period.
fn put(v: u64, e: Entry) {
    let old = {
        let _w = writer();
        ENTRIES.swap(v, Some(Box::new(e)))
    };
    drop(old);
}

fn key(fd_value: u64) -> usize {
    ((fd_value + 1) << 2) as usize
}

/// The `*_MODIFY_STATE` bit of a type.
pub fn modify_bit(kind: ObjectKind) -> DWORD {
    if kind == ObjectKind::Mutex { 0x1 } else { 0x2 }
}

/// `*_ALL_ACCESS` of a type.
pub fn all_access(kind: ObjectKind) -> DWORD {
    STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | if kind == ObjectKind::Mutex { 0x1 } else { 0x3 }
}

/// Maps generic rights and `MAXIMUM_ALLOWED` onto the type's specific rights (AM-09,
/// AM-10).
pub fn map_generic(kind: ObjectKind, access: DWORD) -> DWORD {
    let query = 0x1;
    let modify = modify_bit(kind);
    let mut a = access & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    if access & GENERIC_READ != 0 {
        a |= READ_CONTROL | query;
    }
    if access & GENERIC_WRITE != 0 {
        a |= READ_CONTROL | modify;
    }
    if access & GENERIC_EXECUTE != 0 {
        a |= READ_CONTROL | SYNCHRONIZE;
    }
    if access & (GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        a |= all_access(kind);
    }
    a & !MAXIMUM_ALLOWED
}

/// The library's two rights in a Win32 mask (already generic-mapped).
pub fn lib_access(kind: ObjectKind, access: DWORD) -> Access {
    let mut a = Access::NONE;
    if access & SYNCHRONIZE != 0 {
        a = a.union(Access::SYNCHRONIZE);
    }
    if access & modify_bit(kind) != 0 {
        a = a.union(Access::MODIFY);
    }
    a
}

/// The Win32 mask of a handle that arrived with only the library's rights.
pub fn win32_access(kind: ObjectKind, a: Access) -> DWORD {
    if a == Access::ALL {
        return all_access(kind);
    }
    let mut m = 0;
    if a.contains(Access::SYNCHRONIZE) {
        m |= SYNCHRONIZE;
    }
    if a.contains(Access::MODIFY) {
        m |= modify_bit(kind);
    }
    m
}

/// Puts a new object handle in the table; returns its `HANDLE`.
pub fn insert(h: Handle, access: DWORD) -> HANDLE {
    let v = h.value();
    put(
        v,
        Entry {
            obj: Obj::Sync(Arc::new(h)),
            access,
            protect: AtomicBool::new(false),
            inherit: AtomicBool::new(false),
        },
    );
    key(v) as HANDLE
}

/// Puts a process handle in the table; returns its `HANDLE`.
pub fn insert_process(p: Process, access: DWORD, inherit: bool) -> HANDLE {
    let v = p.fd.as_raw_fd() as u64;
    put(
        v,
        Entry {
            obj: Obj::Process(Arc::new(p)),
            access,
            protect: AtomicBool::new(false),
            inherit: AtomicBool::new(inherit),
        },
    );
    key(v) as HANDLE
}

/// The table key of a `HANDLE`, ignoring its low two bits; `None` for values that can
/// never be handles.
fn value_of(h: HANDLE) -> Option<u64> {
    let raw = (h as usize) & !3;
    if raw == 0 || raw > u32::MAX as usize {
        return None;
    }
    Some((raw >> 2) as u64 - 1)
}

/// The procsync value (descriptor number) a `HANDLE` stands for.
pub fn procsync_value(h: HANDLE) -> W<u64> {
    value_of(h).ok_or(Code(ERROR_INVALID_HANDLE))
}

/// The `HANDLE` of a procsync value.
pub fn handle_of(value: u64) -> HANDLE {
    key(value) as HANDLE
}

/// Runs `f` on object handle `h`, of type `kind` with the rights `need`, inside a read
/// section (no lock, no reference count change, no atomic read-modify-write: the
/// uncontended fast path of the exported functions). `f` must not block: every
/// `CloseHandle` in the process waits for the sections in progress. Falls back to
/// [`lookup`] for values not in the table yet (adoption) and for the pseudo-handle.
pub fn with_sync<T>(
    h: HANDLE,
    kind: Option<ObjectKind>,
    need: DWORD,
    f: impl FnOnce(&Handle) -> W<T>,
) -> W<T> {
    let check = |obj: &Obj, access: DWORD| -> W<()> {
        let Obj::Sync(x) = obj else {
            return Err(Code(ERROR_INVALID_HANDLE));
        };
        if kind.is_some_and(|k| k != x.kind()) {
            return Err(Code(ERROR_INVALID_HANDLE));
        }
        if access & need != need {
            return Err(Code(ERROR_ACCESS_DENIED));
        }
        Ok(())
    };
    if let Some(v) = value_of(h).filter(|_| h as usize != CURRENT_PROCESS) {
        let s = reclaim::read();
        if let Some(e) = ENTRIES.get(v, &s) {
            check(&e.obj, e.access)?;
            let Obj::Sync(x) = &e.obj else {
                return Err(Code(ERROR_INVALID_HANDLE));
            };
            return f(x);
        }
    }
    let found = lookup(h)?;
    check(&found.obj, found.access)?;
    f(found.sync()?)
}

/// The entry of `v`, with its own references.
fn find(v: u64) -> Option<Found> {
    let s = reclaim::read();
    ENTRIES.get(v, &s).map(|e| Found {
        obj: e.obj.clone(),
        access: e.access,
    })
}

/// Looks a `HANDLE` up (adopting an inherited or received one on first use).
pub fn lookup(h: HANDLE) -> W<Found> {
    if h as usize == CURRENT_PROCESS {
        return Ok(Found {
            obj: Obj::CurrentProcess,
            access: PROCESS_ALL_ACCESS,
        });
    }
    if h as usize == CURRENT_THREAD {
        return Ok(Found {
            obj: Obj::CurrentThread,
            access: SYNCHRONIZE,
        });
    }
    let v = value_of(h).ok_or(Code(ERROR_INVALID_HANDLE))?;
    if let Some(found) = find(v) {
        return Ok(found);
    }
    match procsync::adopt(v) {
        Ok(adopted) => {
            let access = win32_access(adopted.kind(), adopted.access());
            insert(adopted, access);
        }
        // Another thread may have adopted it meanwhile.
        Err(_) if find(v).is_some() => {}
        Err(_) => return Err(Code(ERROR_INVALID_HANDLE)),
    }
    lookup(h)
}

/// `CloseHandle`: removes the entry (the object goes when the last `Arc` does: a wait
/// in progress on another thread keeps it, LT-04). A protected handle is not closed
/// (HC-04).
pub fn close(h: HANDLE) -> W<()> {
    if h as usize == CURRENT_PROCESS || h as usize == CURRENT_THREAD {
        return Ok(());
    }
    lookup(h)?;
    let v = value_of(h).ok_or(Code(ERROR_INVALID_HANDLE))?;
    let old = {
        let _w = writer();
        let s = reclaim::read();
        match ENTRIES.get(v, &s) {
            None => return Err(Code(ERROR_INVALID_HANDLE)),
            Some(e) if e.protect.load(Relaxed) => return Err(Code(ERROR_INVALID_HANDLE)),
            Some(_) => {}
        }
        drop(s);
        ENTRIES.swap(v, None)
    };
    // Waits for the read sections that may still see the entry, then drops it.
    drop(old);
    Ok(())
}

/// `GetHandleInformation` flags.
pub fn flags(h: HANDLE) -> W<DWORD> {
    lookup(h)?;
    let v = value_of(h).ok_or(Code(ERROR_INVALID_HANDLE))?;
    let s = reclaim::read();
    let e = ENTRIES.get(v, &s).ok_or(Code(ERROR_INVALID_HANDLE))?;
    let inherit = match &e.obj {
        Obj::Sync(h) => h.is_inheritable(),
        _ => e.inherit.load(Relaxed),
    };
    Ok((u32::from(inherit) * HANDLE_FLAG_INHERIT)
        | (u32::from(e.protect.load(Relaxed)) * HANDLE_FLAG_PROTECT_FROM_CLOSE))
}

/// `SetHandleInformation`: changes the bits of `mask` to those of `flags` (HC-06).
pub fn set_flags(h: HANDLE, mask: DWORD, flags: DWORD) -> W<()> {
    lookup(h)?;
    let v = value_of(h).ok_or(Code(ERROR_INVALID_HANDLE))?;
    let _w = writer();
    let s = reclaim::read();
    let e = ENTRIES.get(v, &s).ok_or(Code(ERROR_INVALID_HANDLE))?;
    if mask & HANDLE_FLAG_PROTECT_FROM_CLOSE != 0 {
        e.protect
            .store(flags & HANDLE_FLAG_PROTECT_FROM_CLOSE != 0, Relaxed);
    }
    if mask & HANDLE_FLAG_INHERIT != 0 {
        let on = flags & HANDLE_FLAG_INHERIT != 0;
        match &e.obj {
            Obj::Sync(h) => h.set_inheritable(on)?,
            _ => e.inherit.store(on, Relaxed),
        }
    }
    Ok(())
}

/// Whether a handle is protected from close (`DUPLICATE_CLOSE_SOURCE` leaves it).
pub fn is_protected(h: HANDLE) -> bool {
    value_of(h).is_some_and(|v| {
        let s = reclaim::read();
        ENTRIES.get(v, &s).is_some_and(|e| e.protect.load(Relaxed))
    })
}
