// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), as used by file systems and storage protocols.
//!
//! C header: [`include/linux/crc32.h`](srctree/include/linux/crc32.h)

use crate::bindings;

/// Computes the CRC32C of `data`, continuing from `crc`.
///
/// This is the kernel's `crc32c()`, which uses the fastest implementation the CPU offers. Its
/// convention is that of the C function: no inversion on entry or exit, so the usual CRC32C
/// of `data` is `!crc32c(!0, data)`.
///
/// # Examples
///
/// ```
/// use kernel::crc32c::crc32c;
///
/// // The standard check value of CRC32C, for "123456789", is 0xe3069283.
/// assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
/// // Computing in pieces gives the same result.
/// assert_eq!(crc32c(crc32c(!0, b"1234"), b"56789"), crc32c(!0, b"123456789"));
/// assert_eq!(crc32c(7, b""), 7);
/// ```
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the duration of the call.
    unsafe { bindings::crc32c(crc, data.as_ptr().cast(), data.len()) }
}
