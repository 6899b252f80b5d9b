//! Reading and writing through pointers that C hands in: NULL and misaligned pointers
//! are `ERROR_INVALID_PARAMETER`, never a crash; strings are decoded (A names as UTF-8,
//! W names as UTF-16).
//!
//! It must not interpret what it reads.

use std::ffi::{CStr, c_char};

use crate::last_error::{Code, W};
use crate::types::*;

/// Longest name accepted, in UTF-16 units or bytes (the NT object path limit, NM-14);
/// a longer one is `ERROR_INVALID_NAME` and nothing is read past it.
const MAX_NAME: usize = 32_767;

fn check<T>(p: *const T) -> W<()> {
    if p.is_null() || !p.is_aligned() {
        return Err(Code(ERROR_INVALID_PARAMETER));
    }
    Ok(())
}

/// Reads `*p`.
///
/// # Safety
/// `p` is NULL, misaligned, or valid for reads of a `T`.
pub unsafe fn read<T: Copy>(p: *const T) -> W<T> {
    check(p)?;
    // SAFETY: non-null and aligned, and the caller promises it points to a T.
    Ok(unsafe { p.read() })
}

/// Writes `v` to `*p`.
///
/// # Safety
/// `p` is NULL, misaligned, or valid for writes of a `T`.
pub unsafe fn write<T>(p: *mut T, v: T) -> W<()> {
    check(p)?;
    // SAFETY: non-null and aligned, and the caller promises it is writable.
    unsafe { p.write(v) };
    Ok(())
}

/// Writes `v` to `*p` if `p` is not NULL (optional out-parameters).
///
/// # Safety
/// As [`write`].
pub unsafe fn write_opt<T>(p: *mut T, v: T) -> W<()> {
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded.
    unsafe { write(p, v) }
}

/// The `n` elements at `p`, copied.
///
/// # Safety
/// `p` is NULL, misaligned, or valid for reads of `n` elements.
pub unsafe fn slice<T: Copy>(p: *const T, n: usize) -> W<Vec<T>> {
    check(p)?;
    // SAFETY: non-null, aligned, and the caller promises n readable elements.
    Ok(unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
}

/// An `A` name: `None` for NULL; UTF-8 (the locale's narrow encoding on Linux).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub unsafe fn name_a(p: *const c_char) -> W<Option<String>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    if s.count_bytes() > MAX_NAME * 3 {
        return Err(Code(ERROR_INVALID_NAME));
    }
    s.to_str()
        .map(|s| Some(s.to_string()))
        .map_err(|_| Code(ERROR_INVALID_NAME))
}

/// A `W` name: `None` for NULL; UTF-16.
///
/// # Safety
/// `p` is NULL, misaligned, or a NUL-terminated UTF-16 string.
pub unsafe fn name_w(p: *const u16) -> W<Option<String>> {
    if p.is_null() {
        return Ok(None);
    }
    check(p)?;
    let mut units = Vec::new();
    loop {
        // SAFETY: the caller promises a NUL-terminated string; we stop at the NUL.
        let u = unsafe { p.add(units.len()).read() };
        if u == 0 {
            break;
        }
        if units.len() == MAX_NAME {
            return Err(Code(ERROR_INVALID_NAME));
        }
        units.push(u);
    }
    String::from_utf16(&units)
        .map(Some)
        .map_err(|_| Code(ERROR_INVALID_NAME))
}

/// `bInheritHandle` of an optional `SECURITY_ATTRIBUTES`.
///
/// # Safety
/// `sa` is NULL, misaligned, or points to a `SECURITY_ATTRIBUTES`.
pub unsafe fn inherit(sa: *const SecurityAttributes) -> W<bool> {
    if sa.is_null() {
        return Ok(false);
    }
    check(sa)?;
    // SAFETY: non-null, aligned, and the caller promises a SECURITY_ATTRIBUTES.
    Ok(unsafe { (*sa).inherit_handle } != 0)
}
