//! Borrowed C strings: NULL-checked, UTF-8-checked, never retained.

use std::ffi::{CStr, c_char};

use crate::error::{Error, Status};

/// Reads an optional NUL-terminated UTF-8 string; NULL gives `None`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn opt_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map(Some).map_err(|e| {
        Error::new(
            Status::InvalidUtf8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Reads `len` bytes at `ptr`, dropping trailing blanks (the padding of a
/// Fortran `character` variable), without UTF-8 validation.
///
/// # Safety
/// `ptr` is NULL only when `len` is 0, otherwise valid for `len` bytes.
#[inline]
pub(crate) unsafe fn sized_bytes<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::new(Status::NullArgument, format!("{what} is NULL")));
    }
    // SAFETY: ptr is non-NULL and valid for len bytes per this function's contract.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    Ok(&bytes[..end])
}

/// Reads a required NUL-terminated UTF-8 string; NULL is an error.
///
/// # Safety
/// As [`opt_str`].
pub(crate) unsafe fn req_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    // SAFETY: forwarded contract.
    unsafe { opt_str(ptr, what) }?
        .ok_or_else(|| Error::new(Status::NullArgument, format!("{what} is NULL")))
}

/// Copies `src` into `buf` (capacity `len`), NUL-terminated and truncated to
/// fit, and returns `src.len()`: the size the caller needs, without the NUL.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
pub(crate) unsafe fn copy_out(src: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let n = src.len().min(len - 1);
        // SAFETY: buf is valid for len bytes and n + 1 <= len; src and buf
        // cannot overlap since src is owned by the library.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    src.len()
}
