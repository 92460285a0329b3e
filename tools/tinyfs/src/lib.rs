// SPDX-License-Identifier: GPL-2.0

//! Userspace side of tinyfs: the on-disk format, shared with the kernel module
//! (the very same source file), and what the tools build on it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The on-disk format: `samples/rust/tinyfs/layout.rs`, the file the kernel
// module compiles. (A plain comment: an outer doc comment here would make
// rustdoc resolve the links of that file's own documentation from this crate
// root.)
#[path = "../../../samples/rust/tinyfs/layout.rs"]
pub mod layout;

pub mod mkfs;
pub mod read;
