//! System V shared memory segments: the memory of wait blocks.
//!
//! Why not a file: anyone who may write a shared file may also truncate it or punch a
//! hole in it, and every process mapping it then dies of SIGBUS on its next access. A
//! System V segment has a size fixed at creation that nobody can change, only its
//! creator (or root) may change its permissions or remove it, and Linux lets a process
//! attach a segment by id after the creator marked it for removal, so a segment marked
//! at once lives exactly as long as its last attachment — like a Win32 object.

use std::ptr::NonNull;

use super::Errno;

/// An attached segment, detached on drop.
#[derive(Debug)]
pub(crate) struct Attached {
    ptr: NonNull<u8>,
    len: usize,
    id: i32,
}

// SAFETY: the attachment is plain shared memory, accessed only through atomics (see
// `park::segment`), so sharing the pointer between threads is sound.
unsafe impl Send for Attached {}
// SAFETY: as above.
unsafe impl Sync for Attached {}

/// What the kernel says about a segment: nothing here can be forged by a writer of
/// the segment's memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegStat {
    /// Size in bytes.
    pub size: usize,
    /// Owner uid.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Pid of the creator.
    pub cpid: u32,
    /// Uid of the creator (the owner, `uid`, can be changed by `IPC_SET`; this cannot).
    pub cuid: u32,
}

impl Attached {
    /// Base address; page-aligned.
    #[inline]
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.ptr
    }
    /// Length in bytes (as created; segments never change size).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// The segment id.
    pub(crate) fn id(&self) -> i32 {
        self.id
    }
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Creates a private segment of `len` bytes with permission bits `mode`, attaches it
/// and marks it for removal at once (it then lives while attached).
pub(crate) fn create(len: usize, mode: u32) -> Result<Attached, Errno> {
    // SAFETY: plain system call, no pointers.
    let id = unsafe {
        libc::shmget(
            libc::IPC_PRIVATE,
            len,
            libc::IPC_CREAT | (mode & 0o777) as i32,
        )
    };
    if id < 0 {
        return Err(last_errno());
    }
    let at = attach_raw(id, len);
    // Mark for removal whether or not the attach worked: nothing may outlive us.
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    at
}

/// What the kernel records about segment `id`.
pub(crate) fn stat(id: i32) -> Result<SegStat, Errno> {
    // SAFETY: an all-zero shmid_ds is a valid value of this plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into the buffer we own.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } < 0 {
        return Err(last_errno());
    }
    Ok(SegStat {
        size: ds.shm_segsz,
        uid: ds.shm_perm.uid,
        mode: u32::from(ds.shm_perm.mode as u16) & 0o777,
        cpid: ds.shm_cpid as u32,
        cuid: ds.shm_perm.cuid,
    })
}

/// Gives segment `id` to owner `uid` (`IPC_SET`), as a hostile creator could.
#[cfg(test)]
pub(crate) fn set_owner(id: i32, uid: u32) -> Result<(), Errno> {
    // SAFETY: an all-zero shmid_ds is a valid value of this plain C struct; IPC_STAT
    // fills it, IPC_SET reads it.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        if libc::shmctl(id, libc::IPC_STAT, &mut ds) < 0 {
            return Err(last_errno());
        }
        ds.shm_perm.uid = uid;
        if libc::shmctl(id, libc::IPC_SET, &mut ds) < 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Attaches segment `id`, which must be exactly `len` bytes long.
pub(crate) fn attach(id: i32, len: usize) -> Result<Attached, Errno> {
    if id < 0 {
        return Err(Errno::INVAL);
    }
    let st = stat(id)?;
    if st.size != len {
        return Err(Errno::INVAL);
    }
    attach_raw(id, len)
}

fn attach_raw(id: i32, len: usize) -> Result<Attached, Errno> {
    // SAFETY: attaching at an address the kernel chooses aliases no Rust object; the
    // segment's size is fixed at creation and was checked to be `len` (or we created it).
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if p as isize == -1 {
        return Err(last_errno());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or(Errno::NOMEM)?;
    Ok(Attached { ptr, len, id })
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from a successful shmat and is detached only here; no
        // reference into the segment outlives `self` (accessors borrow `&self`).
        unsafe {
            libc::shmdt(self.ptr.as_ptr().cast());
        }
    }
}

/// Segments of `size` bytes created by user `uid` that nobody has attached and that are
/// not marked for removal, whose creator process is gone: what a process killed between
/// creating a segment and marking it leaves behind (`/proc/sysvipc/shm`).
pub(crate) fn orphans(size: usize, uid: u32) -> Vec<i32> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // key shmid perms size cpid lpid nattch uid gid cuid ...
        let (Some(id), Some(perms), Some(sz), Some(cpid), Some(nattch), Some(cuid)) = (
            f.get(1).and_then(|x| x.parse::<i32>().ok()),
            f.get(2).and_then(|x| u32::from_str_radix(x, 8).ok()),
            f.get(3).and_then(|x| x.parse::<usize>().ok()),
            f.get(4).and_then(|x| x.parse::<u32>().ok()),
            f.get(6).and_then(|x| x.parse::<u64>().ok()),
            f.get(9).and_then(|x| x.parse::<u32>().ok()),
        ) else {
            continue;
        };
        let marked = perms & 0o1000 != 0; // SHM_DEST
        if sz == size
            && nattch == 0
            && !marked
            && cuid == uid
            && !std::path::Path::new(&format!("/proc/{cpid}")).exists()
        {
            found.push(id);
        }
    }
    found
}

/// Removes segment `id` (its creator or owner only).
pub(crate) fn remove(id: i32) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}
