//! `Create*` and `Open*` for events, mutexes, semaphores and waitable timers, in their
//! `A` (UTF-8) and `W` (UTF-16) spellings.
//!
//! Windows sets the last error on every successful create: 0 for a new object,
//! `ERROR_ALREADY_EXISTS` when the name was taken by an object of the same type (the
//! handle is valid, CO-02). Opens leave it alone on success.
//!
//! It must not implement object semantics; the library does.

use std::ffi::c_char;
use std::ptr::null_mut;

use procsync::{CreateOptions, Created, Handle, ObjectKind, ObjectSpec};

use crate::last_error::{self, Code, W, guard};
use crate::ptr;
use crate::table::{self, all_access, lib_access, map_generic};
use crate::types::*;

fn create(
    spec: ObjectSpec,
    name: Option<String>,
    sa: *const SecurityAttributes,
    access: Option<DWORD>,
) -> W<HANDLE> {
    // SAFETY: C passes NULL or a SECURITY_ATTRIBUTES; ptr::inherit checks NULL/alignment.
    let inherit = unsafe { ptr::inherit(sa) }?;
    let kind = spec.kind();
    let access = access.map_or(all_access(kind), |a| map_generic(kind, a));
    let opts = CreateOptions {
        mode: None,
        inherit,
    };
    let (h, created) = Handle::create(spec, name.as_deref().unwrap_or(""), &opts)?;
    let v = table::insert(h, access);
    last_error::set(if created == Created::Existing {
        ERROR_ALREADY_EXISTS
    } else {
        ERROR_SUCCESS
    });
    Ok(v)
}

/// Access bits that `OpenMutex` refuses (AM-11): undefined specific bits and reserved bits.
const MUTEX_FAIL_MASK: DWORD = 0x0DE0_FFFE;

fn open(kind: ObjectKind, access: DWORD, inherit: BOOL, name: Option<String>) -> W<HANDLE> {
    let name = name.ok_or(Code(ERROR_INVALID_PARAMETER))?;
    if access == 0 {
        return Err(Code(ERROR_ACCESS_DENIED));
    }
    if kind == ObjectKind::Mutex {
        if access & ACCESS_SYSTEM_SECURITY != 0 {
            return Err(Code(ERROR_PRIVILEGE_NOT_HELD));
        }
        if access & MUTEX_FAIL_MASK != 0 {
            return Err(Code(ERROR_ACCESS_DENIED));
        }
    }
    let access = map_generic(kind, access);
    // The library wants at least one of its two rights; the Win32 mask (checked at this
    // boundary) is what counts.
    let mut lib = lib_access(kind, access);
    if lib == procsync::Access::NONE {
        lib = procsync::Access::SYNCHRONIZE;
    }
    let h = Handle::open(kind, &name, lib, inherit != 0)?;
    Ok(table::insert(h, access))
}

fn event_spec(manual: BOOL, initial: BOOL) -> ObjectSpec {
    ObjectSpec::Event {
        manual: manual != 0,
        initial: initial != 0,
    }
}

fn semaphore_spec(initial: LONG, max: LONG) -> W<ObjectSpec> {
    if initial < 0 || max <= 0 || initial > max {
        return Err(Code(ERROR_INVALID_PARAMETER));
    }
    Ok(ObjectSpec::Semaphore {
        initial: initial as u32,
        max: max as u32,
    })
}

/// Generates the `A` and `W` exports of one function: `$body` sees the decoded name as
/// `name`.
macro_rules! a_and_w {
    ($a:ident, $w:ident, ($($arg:ident : $ty:ty),*), $name:ident, $body:expr) => {
        /// The `A` spelling: the name is UTF-8.
        ///
        /// # Safety
        /// Pointers are NULL or valid, strings NUL-terminated.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $a($($arg: $ty,)* $name: *const c_char) -> HANDLE {
            guard(null_mut(), || {
                // SAFETY: the caller passes NULL or a NUL-terminated string.
                let $name = unsafe { ptr::name_a($name) }?;
                $body
            })
        }

        /// The `W` spelling: the name is UTF-16.
        ///
        /// # Safety
        /// Pointers are NULL or valid, strings NUL-terminated.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $w($($arg: $ty,)* $name: *const u16) -> HANDLE {
            guard(null_mut(), || {
                // SAFETY: the caller passes NULL or a NUL-terminated UTF-16 string.
                let $name = unsafe { ptr::name_w($name) }?;
                $body
            })
        }
    };
}

a_and_w!(
    procsync_CreateEventA,
    procsync_CreateEventW,
    (sa: *const SecurityAttributes, manual: BOOL, initial: BOOL),
    name,
    create(event_spec(manual, initial), name, sa, None)
);

a_and_w!(
    procsync_OpenEventA,
    procsync_OpenEventW,
    (access: DWORD, inherit: BOOL),
    name,
    open(ObjectKind::Event, access, inherit, name)
);

a_and_w!(
    procsync_CreateMutexA,
    procsync_CreateMutexW,
    (sa: *const SecurityAttributes, owned: BOOL),
    name,
    create(ObjectSpec::Mutex { owned: owned != 0 }, name, sa, None)
);

a_and_w!(
    procsync_OpenMutexA,
    procsync_OpenMutexW,
    (access: DWORD, inherit: BOOL),
    name,
    open(ObjectKind::Mutex, access, inherit, name)
);

a_and_w!(
    procsync_CreateSemaphoreA,
    procsync_CreateSemaphoreW,
    (sa: *const SecurityAttributes, initial: LONG, max: LONG),
    name,
    create(semaphore_spec(initial, max)?, name, sa, None)
);

a_and_w!(
    procsync_OpenSemaphoreA,
    procsync_OpenSemaphoreW,
    (access: DWORD, inherit: BOOL),
    name,
    open(ObjectKind::Semaphore, access, inherit, name)
);

a_and_w!(
    procsync_CreateWaitableTimerA,
    procsync_CreateWaitableTimerW,
    (sa: *const SecurityAttributes, manual: BOOL),
    name,
    create(ObjectSpec::Timer { manual: manual != 0 }, name, sa, None)
);

a_and_w!(
    procsync_OpenWaitableTimerA,
    procsync_OpenWaitableTimerW,
    (access: DWORD, inherit: BOOL),
    name,
    open(ObjectKind::Timer, access, inherit, name)
);

/// Generates the `A` and `W` exports of an `…Ex` create, whose name comes second.
macro_rules! ex_a_and_w {
    ($a:ident, $w:ident, ($($arg:ident : $ty:ty),*), $name:ident, ($($tail:ident : $tty:ty),*), $body:expr) => {
        /// The `A` spelling: the name is UTF-8.
        ///
        /// # Safety
        /// Pointers are NULL or valid, strings NUL-terminated.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $a($($arg: $ty,)* $name: *const c_char, $($tail: $tty),*) -> HANDLE {
            guard(null_mut(), || {
                // SAFETY: the caller passes NULL or a NUL-terminated string.
                let $name = unsafe { ptr::name_a($name) }?;
                $body
            })
        }

        /// The `W` spelling: the name is UTF-16.
        ///
        /// # Safety
        /// Pointers are NULL or valid, strings NUL-terminated.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $w($($arg: $ty,)* $name: *const u16, $($tail: $tty),*) -> HANDLE {
            guard(null_mut(), || {
                // SAFETY: the caller passes NULL or a NUL-terminated UTF-16 string.
                let $name = unsafe { ptr::name_w($name) }?;
                $body
            })
        }
    };
}

ex_a_and_w!(
    procsync_CreateEventExA,
    procsync_CreateEventExW,
    (sa: *const SecurityAttributes),
    name,
    (flags: DWORD, access: DWORD),
    create(
        event_spec(
            (flags & CREATE_EVENT_MANUAL_RESET) as BOOL,
            (flags & CREATE_EVENT_INITIAL_SET) as BOOL
        ),
        name,
        sa,
        Some(access)
    )
);

ex_a_and_w!(
    procsync_CreateMutexExA,
    procsync_CreateMutexExW,
    (sa: *const SecurityAttributes),
    name,
    (flags: DWORD, access: DWORD),
    create(
        ObjectSpec::Mutex {
            owned: flags & CREATE_MUTEX_INITIAL_OWNER != 0
        },
        name,
        sa,
        Some(access)
    )
);

ex_a_and_w!(
    procsync_CreateSemaphoreExA,
    procsync_CreateSemaphoreExW,
    (sa: *const SecurityAttributes, initial: LONG, max: LONG),
    name,
    (_flags: DWORD, access: DWORD),
    create(semaphore_spec(initial, max)?, name, sa, Some(access))
);

ex_a_and_w!(
    procsync_CreateWaitableTimerExA,
    procsync_CreateWaitableTimerExW,
    (sa: *const SecurityAttributes),
    name,
    (flags: DWORD, access: DWORD),
    create(
        ObjectSpec::Timer {
            manual: flags & CREATE_WAITABLE_TIMER_MANUAL_RESET != 0
        },
        name,
        sa,
        Some(access)
    )
);
