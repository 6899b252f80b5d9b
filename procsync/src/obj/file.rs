//! An object file's contents: writing a fresh one and validating one that was opened,
//! both through the layout structs of `shm::layout` (never raw offsets).
//!
//! It keeps no mapping or descriptor itself: `init_file` hands the mapping it wrote
//! through to its caller, for `Object::map_fresh` (a fresh object is mapped once).

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use super::vocab::{ObjectKind, ObjectSpec};
use crate::error::{Error, Result};
use crate::shm::layout::*;
use crate::shm::map::SharedMap;
use crate::sys::fs;

/// Builds the bytes of a fresh object file (owned mutexes are taken after publication,
/// by the creator, so that a file never names an owner that might not exist), and
/// returns the mapping it wrote through: mapping the file again would cost a `munmap`,
/// which in a multi-threaded process is a TLB shoot-down on every CPU the process ran
/// on (about a third of a named create + close, before).
pub(crate) fn init_file(fd: BorrowedFd<'_>, spec: &ObjectSpec) -> Result<SharedMap<ObjectFile>> {
    let mut id = [0u8; 8];
    let mut object_id = 0;
    while object_id == 0 {
        getrandom::fill(&mut id)
            .map_err(|_| Error::os("reading random bytes", crate::sys::Errno::IO))?;
        object_id = u64::from_le_bytes(id);
    }
    let os = |e| Error::os("initialising an object file", e);
    fs::set_len(fd, OBJECT_SIZE as u64).map_err(os)?;
    let map = SharedMap::<ObjectFile>::new(fd).map_err(|e| {
        os(e.unwrap_or(crate::sys::Errno::IO)) // the size was just set: only a system error
    })?;
    // The file is not published yet: nobody else reads it, and everything not written
    // here is zero (reserved fields, the lock, the queue).
    let f = map.get();
    let h = &f.header;
    h.magic.store(OBJECT_MAGIC, Ordering::Relaxed);
    h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    h.kind.store(spec.kind().code(), Ordering::Relaxed);
    h.object_id.store(object_id, Ordering::Relaxed);
    h.param.store(spec.param(), Ordering::Relaxed);
    h.size.store(OBJECT_SIZE as u32, Ordering::Relaxed);
    h.queue_capacity
        .store(QUEUE_CAPACITY as u32, Ordering::Relaxed);
    h.creator_uid.store(fs::euid(), Ordering::Relaxed);
    h.pid_ns
        .store(crate::sys::thread::pid_namespace(), Ordering::Relaxed);
    f.ctl(Colour::of(object_id))
        .state
        .store(spec.initial_state(), Ordering::Release);
    Ok(map)
}

/// What a validated header tells.
pub(super) fn validate(f: &ObjectFile, path: &std::path::Path) -> Result<(ObjectKind, u32, u64)> {
    let corrupt = |why| Error::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let h = &f.header;
    if h.magic.load(Ordering::Relaxed) != OBJECT_MAGIC {
        return Err(corrupt("bad magic"));
    }
    if h.version.load(Ordering::Relaxed) != LAYOUT_VERSION {
        return Err(corrupt("unknown layout version"));
    }
    let kind = ObjectKind::from_code(h.kind.load(Ordering::Relaxed))
        .ok_or_else(|| corrupt("unknown object type"))?;
    if h.size.load(Ordering::Relaxed) != OBJECT_SIZE as u32 {
        return Err(corrupt("bad size field"));
    }
    if h.queue_capacity.load(Ordering::Relaxed) != QUEUE_CAPACITY as u32 {
        return Err(corrupt("bad queue capacity"));
    }
    if h.reserved.iter().any(|r| r.load(Ordering::Relaxed) != 0) {
        return Err(corrupt("reserved header bytes are not zero"));
    }
    let (theirs, ours) = (
        h.pid_ns.load(Ordering::Relaxed),
        crate::sys::thread::pid_namespace(),
    );
    if theirs != ours && theirs != 0 && ours != 0 {
        return Err(Error::Unsupported(format!(
            "`{}` was created in another PID namespace (pid:[{theirs}], this process is in pid:[{ours}]); \
             mutex owners are thread ids, so procsync objects are shared within one PID namespace: \
             run the processes in the same one",
            path.display()
        )));
    }
    let id = h.object_id.load(Ordering::Relaxed);
    if id == 0 {
        return Err(corrupt("object id is zero"));
    }
    let param = h.param.load(Ordering::Relaxed);
    let ok = match kind {
        ObjectKind::Event | ObjectKind::Timer => param <= 1,
        ObjectKind::Mutex => param == 0,
        ObjectKind::Semaphore => (1..=MAX_SEMAPHORE).contains(&param),
    };
    if !ok {
        return Err(corrupt("impossible parameter for its type"));
    }
    Ok((kind, param, id))
}
