//! Processes: `GetCurrentProcess`, `GetCurrentProcessId`, `OpenProcess`,
//! `DuplicateHandle` (within this process, into another, out of another, or between
//! two others, HD-07/08), and the two non-Win32 calls that start children with
//! inherited handles: [`procsync_spawn`] (the `CreateProcess(bInheritHandles)` of this
//! port) and [`procsync_prepare_exec`] (for code that forks and execs itself).
//!
//! Cross-process duplication uses the library's endpoints ([`procsync::accept_duplicates`],
//! which this crate starts at a process's first call into it): a handle pushed into
//! another process is adopted there on first use of its value (see `table`).
//!
//! It must not touch objects beyond duplicating handles to them.

use std::ffi::{CStr, c_char};
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use procsync::{Access, CommandExt, INHERIT_ENV};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use crate::last_error::{Code, W, guard};
use crate::ptr;
use crate::table::{self, CURRENT_PROCESS, Obj, Process, lib_access, map_generic, win32_access};
use crate::types::*;

/// `GetCurrentProcess()`: the pseudo-handle `(HANDLE)-1`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_GetCurrentProcess() -> HANDLE {
    crate::init();
    CURRENT_PROCESS as HANDLE
}

/// `GetCurrentProcessId`.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_GetCurrentProcessId() -> DWORD {
    crate::init();
    std::process::id()
}

fn open_process(pid: u32, access: DWORD, inherit: bool) -> W<HANDLE> {
    let p = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Code(ERROR_INVALID_PARAMETER))?;
    let fd = pidfd_open(p, PidfdFlags::empty()).map_err(|_| Code(ERROR_INVALID_PARAMETER))?;
    let access = if access & (GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        PROCESS_ALL_ACCESS
    } else {
        access
    };
    Ok(table::insert_process(Process { pid, fd }, access, inherit))
}

/// `OpenProcess`: a handle to process `pid` (for `DuplicateHandle` with
/// `PROCESS_DUP_HANDLE`, and for waiting with `SYNCHRONIZE`).
#[unsafe(no_mangle)]
pub extern "C" fn procsync_OpenProcess(access: DWORD, inherit: BOOL, pid: DWORD) -> HANDLE {
    guard(std::ptr::null_mut(), || {
        open_process(pid, access, inherit != 0)
    })
}

/// The process a process handle names, checked for `PROCESS_DUP_HANDLE`.
fn dup_process(h: HANDLE) -> W<u32> {
    let f = table::lookup(h)?;
    match f.obj {
        Obj::CurrentProcess => Ok(std::process::id()),
        Obj::Process(p) if f.access & PROCESS_DUP_HANDLE != 0 => Ok(p.pid),
        Obj::Process(_) => Err(Code(ERROR_ACCESS_DENIED)),
        Obj::Sync(_) | Obj::CurrentThread => Err(Code(ERROR_INVALID_HANDLE)),
    }
}

/// The library's rights for a requested mask before the object's type is known.
fn lib_access_untyped(access: DWORD) -> Access {
    let mut a = Access::NONE;
    if access & (SYNCHRONIZE | GENERIC_EXECUTE | GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        a = a.union(Access::SYNCHRONIZE);
    }
    if access & (0x2 | GENERIC_WRITE | GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        a = a.union(Access::MODIFY);
    }
    a
}

struct DupArgs {
    access: DWORD,
    inherit: bool,
    same: bool,
}

/// Duplicates a handle of this process into process `to`; returns the value there.
fn dup_local(src: HANDLE, to: u32, a: &DupArgs) -> W<HANDLE> {
    let me = std::process::id();
    let f = table::lookup(src)?;
    match &f.obj {
        Obj::Sync(h) => {
            let kind = h.kind();
            let mask = if a.same {
                f.access
            } else {
                map_generic(kind, a.access)
            };
            if to == me {
                let d = h.duplicate(None)?;
                d.set_inheritable(a.inherit)?;
                return Ok(table::insert(d, mask));
            }
            let lib = if a.same {
                None
            } else {
                Some(lib_access(kind, mask))
            };
            Ok(table::handle_of(h.duplicate_into(to, lib, a.inherit)?))
        }
        Obj::CurrentProcess if to == me => open_process(me, PROCESS_ALL_ACCESS, a.inherit),
        Obj::Process(p) if to == me => {
            let mask = if a.same { f.access } else { a.access };
            open_process(p.pid, mask, a.inherit)
        }
        _ => Err(Code(ERROR_NOT_SUPPORTED)),
    }
}

/// Duplicates handle `src` of process `from` (not this one) into process `to`.
fn dup_remote(from: u32, src: HANDLE, to: u32, close: bool, a: &DupArgs) -> W<HANDLE> {
    let value = table::procsync_value(src)?;
    let lib = (!a.same).then(|| lib_access_untyped(a.access));
    let here = to == std::process::id();
    let h = procsync::duplicate_from(from, value, lib, here && a.inherit, close)?;
    let kind = h.kind();
    if here {
        let mask = if a.same {
            win32_access(kind, h.access())
        } else {
            map_generic(kind, a.access)
        };
        return Ok(table::insert(h, mask));
    }
    Ok(table::handle_of(h.duplicate_into(to, None, a.inherit)?))
}

/// `DuplicateHandle`. With `DUPLICATE_CLOSE_SOURCE` the source is closed even when the
/// duplication fails (HD-05), unless it is protected from close.
///
/// # Safety
/// `target` is NULL or points to a writable `HANDLE`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_DuplicateHandle(
    source_process: HANDLE,
    source: HANDLE,
    target_process: HANDLE,
    target: *mut HANDLE,
    access: DWORD,
    inherit: BOOL,
    options: DWORD,
) -> BOOL {
    guard(FALSE, || {
        if !target.is_null() && !target.is_aligned() {
            return Err(Code(ERROR_INVALID_PARAMETER));
        }
        let from = dup_process(source_process)?;
        let to = dup_process(target_process)?;
        let close = options & DUPLICATE_CLOSE_SOURCE != 0;
        let a = DupArgs {
            access,
            inherit: inherit != 0,
            same: options & DUPLICATE_SAME_ACCESS != 0,
        };
        let r = if from == std::process::id() {
            let r = dup_local(source, to, &a);
            if close && !table::is_protected(source) {
                let _ = table::close(source);
            }
            r
        } else {
            dup_remote(from, source, to, close, &a)
        };
        let v = r?;
        // SAFETY: NULL or a writable HANDLE, as the caller promises (HD-10: NULL drops it).
        unsafe { ptr::write_opt(target, v) }?;
        Ok(TRUE)
    })
}

/// # Safety
/// `argv` is a NULL-terminated array of NUL-terminated strings.
unsafe fn spawn(path: *const c_char, argv: *const *const c_char, inherit: bool) -> W<DWORD> {
    if path.is_null() || argv.is_null() || !argv.is_aligned() {
        return Err(Code(ERROR_INVALID_PARAMETER));
    }
    // SAFETY: non-null, NUL-terminated as the caller promises.
    let path = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    let mut args = Vec::new();
    loop {
        // SAFETY: the array is NULL-terminated; we stop at the NULL.
        let p = unsafe { argv.add(args.len()).read() };
        if p.is_null() {
            break;
        }
        // SAFETY: each element is a NUL-terminated string.
        args.push(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
    }
    let mut cmd = Command::new(&path);
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    if inherit {
        cmd.inherit_procsync_handles();
    } else {
        cmd.env_remove(INHERIT_ENV);
    }
    let child = cmd.spawn().map_err(|e| {
        Code(if e.kind() == std::io::ErrorKind::NotFound {
            ERROR_FILE_NOT_FOUND
        } else {
            ERROR_GEN_FAILURE
        })
    })?;
    // The caller reaps it (waitpid); dropping `Child` neither waits nor kills.
    Ok(child.id())
}

/// Starts `path` with `argv` (NULL-terminated; `argv[0]` is the program name) and the
/// caller's environment and standard streams. With `inherit_handles` (Win32's
/// `bInheritHandles = TRUE`) the child inherits every handle marked inheritable, under
/// the same values (HI-01, HI-02). Returns the child's pid (reap it with `waitpid`), or
/// 0 with the last error set.
///
/// # Safety
/// `path` is a NUL-terminated string; `argv` a NULL-terminated array of them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procsync_spawn(
    path: *const c_char,
    argv: *const *const c_char,
    inherit_handles: BOOL,
) -> DWORD {
    // SAFETY: forwarded from the caller.
    guard(0, || unsafe { spawn(path, argv, inherit_handles != 0) })
}

fn prepare_exec() -> W<BOOL> {
    let mut probe = Command::new("/");
    probe.inherit_procsync_handles();
    let list = probe
        .get_envs()
        .find(|(k, _)| *k == INHERIT_ENV)
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned());
    match list {
        Some(list) => {
            for entry in list.split(',') {
                let Some(fd) = entry.split(':').next().and_then(|f| f.parse::<i32>().ok()) else {
                    continue;
                };
                // SAFETY: `fd` is the descriptor of a live handle of this (forked)
                // process; clearing close-on-exec does not affect ownership.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())
                    .map_err(|_| Code(ERROR_GEN_FAILURE))?;
            }
            // SAFETY: documented to be called in a freshly forked child, which has one
            // thread, right before exec.
            unsafe { std::env::set_var(INHERIT_ENV, list) };
        }
        // SAFETY: as above.
        None => unsafe { std::env::remove_var(INHERIT_ENV) },
    }
    Ok(TRUE)
}

/// For programs that `fork` and `exec` themselves: call it in the child, after `fork`
/// and before `exec*`, to let the new program inherit every handle marked inheritable
/// under the same values (it clears close-on-exec on their descriptors and sets
/// `PROCSYNC_INHERITED` in the environment; pass `environ` to `execve`). Do not call it
/// in a process that keeps running threads.
#[unsafe(no_mangle)]
pub extern "C" fn procsync_prepare_exec() -> BOOL {
    guard(FALSE, prepare_exec)
}
