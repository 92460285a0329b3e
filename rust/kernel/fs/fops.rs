// SPDX-License-Identifier: GPL-2.0

//! File operations of a file system: C's `struct file_operations`.
//!
//! Directory iteration ([`Operations::read_dir`]) and the read and write paths of regular
//! files ([`Operations::read_iter`], [`Operations::write_iter`]), with the VFS helpers these
//! are built from: [`write_checks`], [`perform_write`], [`write_sync`] and others. `llseek` is
//! the VFS's generic one (`generic_file_llseek()`), and so is `read` of directories
//! (`generic_read_dir()`, which fails with `EISDIR`). A table with `write_iter` is one of
//! regular files: it also gets the VFS's generic `mmap_prepare`, splicing and `fsync`
//! (`simple_fsync()`), and `generic_file_read_iter()` unless it has a `read_iter` of its own.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::LocalFile, inode, inode::INode, FileSystem, Kiocb};
use crate::{
    bindings,
    error::{from_result, to_result},
    iov::{IovIterDest, IovIterSource},
    prelude::*,
};
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

    /// Whether [`Operations::read_iter`] and [`Operations::write_iter`] honour
    /// [`Kiocb::is_nowait`] (failing with `EAGAIN` where they would block). If so, files are
    /// opened with `FMODE_NOWAIT`, without which the VFS refuses `RWF_NOWAIT` with
    /// `EOPNOTSUPP` and io_uring does not try non-blocking submission.
    const SUPPORTS_NOWAIT: bool = false;

    /// Reports the entries of directory `inode`, opened as `file`, from
    /// [`DirEmitter::pos`] on (`->iterate_shared`, with the directory locked shared).
    fn read_dir(
        _file: &LocalFile,
        _inode: &INode<Self::FileSystem>,
        _emitter: &mut DirEmitter<'_>,
    ) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Reads from the file of `kiocb`, at its position, into `iter` (`->read_iter`); returns
    /// the number of bytes read and advances the position by it. Called without locks.
    fn read_iter(
        _kiocb: &mut Kiocb<'_, ()>,
        _inode: &INode<Self::FileSystem>,
        _iter: &mut IovIterDest<'_>,
    ) -> Result<usize> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes `iter` to the file of `kiocb`, at its position (or at the end of the file for
    /// `O_APPEND`, see [`write_checks`]), and advances the position (`->write_iter`). Called
    /// without locks: the operation takes the inode's lock itself ([`INode::lock`]).
    ///
    /// Returns the number of bytes written, or, for an asynchronous request
    /// (![`Kiocb::is_sync`]), `EIOCBQUEUED` once the request will complete later.
    fn write_iter(
        _kiocb: &mut Kiocb<'_, ()>,
        _inode: &INode<Self::FileSystem>,
        _iter: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Converts the result of a C read or write path (bytes or a negative error).
fn to_bytes(ret: isize) -> Result<usize> {
    if ret < 0 {
        Err(Error::from_errno(ret as c_int))
    } else {
        Ok(ret as usize)
    }
}

/// Reads through the page cache, or with the inode's `->direct_IO` for an `O_DIRECT`
/// request (`generic_file_read_iter()`).
pub fn generic_read_iter(kiocb: &mut Kiocb<'_, ()>, iter: &mut IovIterDest<'_>) -> Result<usize> {
    // SAFETY: The kiocb and the iterator are valid and exclusively ours for the call.
    to_bytes(unsafe { bindings::generic_file_read_iter(kiocb.as_raw(), iter.as_raw()) })
}

/// Writes through the page cache, or with the inode's `->direct_IO` for an `O_DIRECT`
/// request, falling back to the page cache where direct I/O cannot be done
/// (`generic_file_write_iter()`). Takes the inode's lock.
pub fn generic_write_iter(
    kiocb: &mut Kiocb<'_, ()>,
    iter: &mut IovIterSource<'_>,
) -> Result<usize> {
    // SAFETY: The kiocb and the iterator are valid and exclusively ours for the call.
    to_bytes(unsafe { bindings::generic_file_write_iter(kiocb.as_raw(), iter.as_raw()) })
}

/// Checks a write against the limits of the file and the process (`generic_write_checks()`):
/// moves the position to the end of the file for `O_APPEND`, shortens `iter` to what may be
/// written, and returns that length (0: nothing to write). Errors: `EFBIG`, `ETXTBSY`,
/// `EINVAL`, `EAGAIN` (for [`Kiocb::is_nowait`] requests that would block).
///
/// Takes the guard of the inode's lock as proof that it is held: the end of the file must not
/// move until the write is done.
pub fn write_checks<T: FileSystem>(
    _locked: &inode::Locked<'_, T>,
    kiocb: &mut Kiocb<'_, ()>,
    iter: &mut IovIterSource<'_>,
) -> Result<usize> {
    // SAFETY: The kiocb and the iterator are valid and exclusively ours; the inode's lock is
    // held.
    to_bytes(unsafe { bindings::generic_write_checks(kiocb.as_raw(), iter.as_raw()) })
}

/// Does what the VFS requires of a write before the file changes (`kiocb_modified()`):
/// removes set-user-ID and similar privileges, and updates the modification and change
/// times.
pub fn modified<T: FileSystem>(
    _locked: &inode::Locked<'_, T>,
    kiocb: &mut Kiocb<'_, ()>,
) -> Result {
    // SAFETY: The kiocb is valid and exclusively ours; the inode's lock is held.
    to_result(unsafe { bindings::kiocb_modified(kiocb.as_raw()) })
}

/// Copies `iter` into the page cache at the kiocb's position, through the file system's
/// `write_begin` and `write_end`, and advances the position (`generic_perform_write()`).
/// Returns the bytes copied; an error only if nothing was.
pub fn perform_write<T: FileSystem>(
    _locked: &inode::Locked<'_, T>,
    kiocb: &mut Kiocb<'_, ()>,
    iter: &mut IovIterSource<'_>,
) -> Result<usize> {
    // SAFETY: The kiocb and the iterator are valid and exclusively ours; the inode's lock is
    // held, as the buffered write path requires.
    to_bytes(unsafe { bindings::generic_perform_write(kiocb.as_raw(), iter.as_raw()) })
}

/// Makes the `count` bytes just written before the kiocb's position durable, if the request
/// asks for that ([`Kiocb::is_dsync`]), through the file's `fsync` (`generic_write_sync()`).
/// Returns `count`. Called after the inode's lock is released.
pub fn write_sync(kiocb: &mut Kiocb<'_, ()>, count: usize) -> Result<usize> {
    // SAFETY: The kiocb is valid and exclusively ours.
    to_bytes(unsafe { bindings::generic_write_sync(kiocb.as_raw(), count as isize) })
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
        open: if U::SUPPORTS_NOWAIT {
            Some(open_nowait)
        } else {
            None
        },
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
        read_iter: if U::HAS_READ_ITER {
            Some(read_iter::<U>)
        } else if U::HAS_WRITE_ITER {
            Some(bindings::generic_file_read_iter)
        } else {
            None
        },
        write_iter: if U::HAS_WRITE_ITER {
            Some(write_iter::<U>)
        } else {
            None
        },
        mmap_prepare: if U::HAS_WRITE_ITER {
            Some(bindings::generic_file_mmap_prepare)
        } else {
            None
        },
        fsync: if U::HAS_WRITE_ITER {
            Some(bindings::simple_fsync)
        } else {
            None
        },
        splice_read: if U::HAS_WRITE_ITER {
            Some(bindings::filemap_splice_read)
        } else {
            None
        },
        splice_write: if U::HAS_WRITE_ITER {
            Some(bindings::iter_file_splice_write)
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

/// The inode of the file of a kiocb passed to `->read_iter`/`->write_iter`.
///
/// # Safety
///
/// `iocb` must be valid for `'a`, for a file of a file system of type `T`.
unsafe fn iocb_inode<'a, T: FileSystem>(iocb: *mut bindings::kiocb) -> &'a INode<T> {
    // SAFETY: Per the safety requirements the kiocb, its file and the file's mapping are
    // valid; the mapping's host is an initialised inode of type `T`, referenced by the file.
    unsafe { INode::from_raw((*(*(*iocb).ki_filp).f_mapping).host) }
}

/// # Safety
///
/// Called by the VFS with a valid kiocb for a regular file of a file system of type
/// `U::FileSystem` and a valid destination iterator, both exclusively ours for the call.
unsafe extern "C" fn read_iter<U: Operations>(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: Per the function's safety requirements.
    let (mut kiocb, inode, iter) = unsafe {
        (
            Kiocb::<()>::from_raw(iocb),
            iocb_inode::<U::FileSystem>(iocb),
            IovIterDest::from_raw(iter),
        )
    };
    match U::read_iter(&mut kiocb, inode, iter) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS with a valid kiocb for a regular file of a file system of type
/// `U::FileSystem` and a valid source iterator, both exclusively ours for the call.
unsafe extern "C" fn write_iter<U: Operations>(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: Per the function's safety requirements.
    let (mut kiocb, inode, iter) = unsafe {
        (
            Kiocb::<()>::from_raw(iocb),
            iocb_inode::<U::FileSystem>(iocb),
            IovIterSource::from_raw(iter),
        )
    };
    match U::write_iter(&mut kiocb, inode, iter) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `->open` of files whose operations honour `IOCB_NOWAIT`: `generic_file_open()`, and
/// `FMODE_NOWAIT`.
///
/// # Safety
///
/// Called by the VFS with a valid inode and the valid file being opened on it.
unsafe extern "C" fn open_nowait(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The file is being opened: nothing else uses its mode yet.
    unsafe { bindings::file_set_fmode_nowait(file) };
    // SAFETY: Per the function's safety requirements.
    unsafe { bindings::generic_file_open(inode, file) }
}
