// SPDX-License-Identifier: GPL-2.0

//! Userspace side of tinyfs: the on-disk format, shared with the kernel module
//! (the very same source file), and what the tools build on it.

#![forbid(unsafe_code)]

/// The on-disk format: `samples/rust/tinyfs/layout.rs`, the file the kernel
/// module compiles.
#[path = "../../../samples/rust/tinyfs/layout.rs"]
pub mod layout;
