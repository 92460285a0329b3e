// SPDX-License-Identifier: GPL-2.0

//! File operations of a file system: C's `struct file_operations`.
//!
//! For now: directory iteration ([`Operations::read_dir`]). `llseek` is the VFS's generic one
//! (`generic_file_llseek()`), and so is `read` of directories (`generic_read_dir()`, which
//! fails with `EISDIR`).
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::LocalFile, inode::INode, FileSystem};
use crate::{bindings, error::from_result, prelude::*};
use core::marker::PhantomData;

/// The type of a directory entry, as reported by `getdents(2)` (`DT_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum DirEntryType {
    /// Unknown type.
    Unknown = bindings::DT_UNKNOWN,
    /// A regular file.
    Reg = bindings::DT_REG,
    /// A directory.
    Dir = bindings::DT_DIR,
    /// A symbolic link.
    Lnk = bindings::DT_LNK,
}

/// Where `->iterate_shared` reports directory entries: C's `struct dir_context`.
///
/// # Invariants
///
/// `0` is the valid `dir_context` passed to `->iterate_shared`, exclusively ours during the
/// call.
pub struct DirEmitter<'a>(&'a mut bindings::dir_context);

impl DirEmitter<'_> {
    /// The position (the file offset of the directory) to continue from.
    pub fn pos(&self) -> i64 {
        self.0.pos
    }

    /// Reports an entry and, if the caller's buffer took it, advances the position by
    /// `pos_inc`. Returns `false` when the buffer is full: the caller stops and is called again
    /// later from [`DirEmitter::pos`].
    pub fn emit(&mut self, pos_inc: i64, name: &[u8], ino: u64, etype: DirEntryType) -> bool {
        let Ok(len) = c_int::try_from(name.len()) else {
            return false;
        };
        // SAFETY: By the type invariants the context is valid; `name` is valid for `len` bytes
        // for the duration of the call.
        let taken =
            unsafe { bindings::dir_emit(self.0, name.as_ptr().cast(), len, ino, etype as c_uint) };
        if taken {
            self.0.pos += pos_inc;
        }
        taken
    }
}

/// File operations of a file system of type `Self::FileSystem`.
#[vtable]
pub trait Operations {
    /// The file system type these operations belong to.
    type FileSystem: FileSystem;

    /// Reports the entries of directory `inode`, opened as `file`, from
    /// [`DirEmitter::pos`] on (`->iterate_shared`, with the directory locked shared).
    fn read_dir(
        _file: &LocalFile,
        _inode: &INode<Self::FileSystem>,
        _emitter: &mut DirEmitter<'_>,
    ) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A file operations table for file system type `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::file_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T>>() -> Self {
        Self(&Table::<U>::TABLE, PhantomData)
    }

    /// The VFS's generic operations for regular files read through the page cache
    /// (`generic_ro_fops`: `read_iter`, `mmap`, `splice_read`, `llseek`). Writing needs
    /// operations of the file system's own.
    pub fn generic_read_only() -> Self {
        // SAFETY: `generic_ro_fops` is a valid, constant operations table, exported by the
        // VFS for this use.
        Self(unsafe { &bindings::generic_ro_fops }, PhantomData)
    }

    /// The VFS's generic operations for regular files read and written through the page
    /// cache: `generic_file_read_iter()`, `generic_file_write_iter()`, `simple_fsync()`,
    /// `generic_file_mmap_prepare()`, splicing and `generic_file_llseek()`.
    pub const fn generic_read_write() -> Self {
        Self(&GENERIC_READ_WRITE, PhantomData)
    }

    pub(crate) fn table(self) -> &'static bindings::file_operations {
        self.0
    }
}

const GENERIC_READ_WRITE: bindings::file_operations = bindings::file_operations {
    llseek: Some(bindings::generic_file_llseek),
    read_iter: Some(bindings::generic_file_read_iter),
    write_iter: Some(bindings::generic_file_write_iter),
    mmap_prepare: Some(bindings::generic_file_mmap_prepare),
    fsync: Some(bindings::simple_fsync),
    splice_read: Some(bindings::filemap_splice_read),
    splice_write: Some(bindings::iter_file_splice_write),
    // SAFETY: All-zeroes (no operation) is valid for the remaining fields.
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
};

struct Table<U>(PhantomData<U>);

impl<U: Operations> Table<U> {
    const TABLE: bindings::file_operations = bindings::file_operations {
        llseek: Some(bindings::generic_file_llseek),
        read: if U::HAS_READ_DIR {
            Some(bindings::generic_read_dir)
        } else {
            None
        },
        iterate_shared: if U::HAS_READ_DIR {
            Some(read_dir::<U>)
        } else {
            None
        },
        // SAFETY: All-zeroes (no operation) is valid for the remaining fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}

/// # Safety
///
/// Called by the VFS (`iterate_dir()`) with a valid directory file of a file system of type
/// `U::FileSystem`, its inode locked shared, and a valid `dir_context`.
unsafe extern "C" fn read_dir<U: Operations>(
    file: *mut bindings::file,
    ctx: *mut bindings::dir_context,
) -> c_int {
    from_result(|| {
        // SAFETY: The file is valid and referenced for the call; `iterate_dir()` runs on the
        // thread that did any `fdget_pos()` on it.
        let file = unsafe { LocalFile::from_raw_file(file) };
        // SAFETY: The file's inode is valid, initialised and of this file system type.
        let inode = unsafe { INode::from_raw((*file.as_ptr()).f_inode) };
        // SAFETY: `ctx` is valid and exclusively ours for the call.
        let mut emitter = DirEmitter(unsafe { &mut *ctx });
        U::read_dir(file, inode, &mut emitter)?;
        Ok(0)
    })
}
