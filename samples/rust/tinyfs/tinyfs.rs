// SPDX-License-Identifier: GPL-2.0

//! tinyfs: a small block-backed read-write filesystem.
//!
//! This is the module skeleton: it loads, logs one line and unloads. The
//! filesystem itself is built on the VFS abstractions in `kernel::fs`; see
//! `Documentation/filesystems/tinyfs.rst`.

use kernel::prelude::*;

module! {
    type: TinyFs,
    name: "tinyfs",
    authors: ["tinyfs developers"],
    description: "tinyfs: a small block-backed read-write filesystem",
    license: "GPL",
}

struct TinyFs;

impl kernel::Module for TinyFs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("module loaded\n");
        Ok(TinyFs)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        pr_info!("module unloaded\n");
    }
}
