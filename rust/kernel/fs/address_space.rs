// SPDX-License-Identifier: GPL-2.0

//! Address space operations: how a file system moves file data between the page cache and
//! its device, C's `struct address_space_operations`.
//!
//! Reading ([`Operations::read_folio`], [`Operations::readahead`]), buffered writing
//! ([`Operations::write_begin`], [`Operations::write_end`], [`Operations::writepages`]) and
//! direct I/O ([`Operations::direct_io`]). A buffer-head-based file system implements them
//! with the functions of [`super::buffer`] and its [`super::buffer::GetBlock`]. [`Mapping`]
//! has the page cache operations a direct I/O path needs: writing a range back, and
//! invalidating it.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::LocalFile, folio, inode::INode, sb::WritebackControl, FileSystem, Kiocb};
use crate::{
    bindings,
    error::{from_result, to_result},
    iov::{IovIterDest, IovIterSource},
    prelude::*,
    types::Opaque,
};
use core::marker::PhantomData;

/// A readahead request: C's `struct readahead_control`.
///
/// # Invariants
///
/// The wrapped control is the valid one passed to `->readahead`, exclusively ours during the
/// call; the folios it names are locked and in the page cache.
#[repr(transparent)]
pub struct ReadaheadControl(Opaque<bindings::readahead_control>);

impl ReadaheadControl {
    /// The raw pointer to the C control.
    pub(crate) fn as_ptr(&self) -> *mut bindings::readahead_control {
        self.0.get()
    }
}

/// The page cache of a file: C's `struct address_space`, of a file system of type `T`.
///
/// # Invariants
///
/// The wrapped mapping is valid while the reference is, and is the `i_data` of an inode of
/// file system type `T`.
#[repr(transparent)]
pub struct Mapping<T: FileSystem>(Opaque<bindings::address_space>, PhantomData<T>);

impl<T: FileSystem> Mapping<T> {
    /// # Safety
    ///
    /// `ptr` must be the valid mapping of an initialised inode of file system type `T`, valid
    /// for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::address_space) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer to the C mapping.
    pub(crate) fn as_ptr(&self) -> *mut bindings::address_space {
        self.0.get()
    }

    /// Writes the dirty folios of bytes `start..=end` back and waits for their writeback,
    /// including writeback started earlier (`filemap_write_and_wait_range()`).
    pub fn write_and_wait_range(&self, start: i64, end: i64) -> Result {
        // SAFETY: By the type invariants the mapping is valid.
        to_result(unsafe { bindings::filemap_write_and_wait_range(self.as_ptr(), start, end) })
    }

    /// Whether any folio of bytes `start..=end` is in the page cache
    /// (`filemap_range_has_page()`).
    pub fn range_has_folio(&self, start: i64, end: i64) -> bool {
        // SAFETY: By the type invariants the mapping is valid.
        unsafe { bindings::filemap_range_has_page(self.as_ptr(), start, end) }
    }

    /// Removes the folios of page indices `first..=last` from the page cache, unmapping them
    /// from user space and releasing their buffers (`invalidate_inode_pages2_range()`).
    ///
    /// Fails with `EBUSY` if a folio could not be removed: its buffers are still referenced
    /// (by writeback that holds them, for example) or it was redirtied. The folios that could
    /// be removed are removed. Other errors come from writing back a dirty folio.
    pub fn invalidate_range(&self, first: u64, last: u64) -> Result {
        // SAFETY: By the type invariants the mapping is valid.
        to_result(unsafe {
            bindings::invalidate_inode_pages2_range(self.as_ptr(), first as _, last as _)
        })
    }

    /// The inode whose data this is.
    pub fn host(&self) -> &INode<T> {
        // SAFETY: By the type invariants the mapping belongs to an initialised inode that
        // outlives it.
        unsafe { INode::from_raw((*self.as_ptr()).host) }
    }

    /// Runs `f` on every folio to write back (`writeback_iter()`), each locked and marked for
    /// writeback; `f` must unlock it (with [`super::buffer::write_full_folio`], say). Returns
    /// the first error.
    pub fn for_each_writeback_folio(
        &self,
        wbc: &mut WritebackControl,
        mut f: impl FnMut(folio::Locked<'_>, &mut WritebackControl) -> Result,
    ) -> Result {
        let mut folio: *mut bindings::folio = core::ptr::null_mut();
        let mut error: c_int = 0;
        loop {
            // SAFETY: The mapping and control are valid; `folio` is null or the folio the
            // previous call returned, as `writeback_iter` requires.
            folio =
                unsafe { bindings::writeback_iter(self.as_ptr(), wbc.as_ptr(), folio, &mut error) };
            if folio.is_null() {
                break;
            }
            // SAFETY: `writeback_iter` returns a locked folio, referenced until the next call;
            // the lock goes to `f`.
            let locked = unsafe { folio::Locked::from_raw(folio) };
            error = match f(locked, wbc) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            };
        }
        crate::error::to_result(error)
    }
}

/// Address space operations of a file system of type `Self::FileSystem`.
#[vtable]
pub trait Operations {
    /// The file system type these operations belong to.
    type FileSystem: FileSystem;

    /// Reads a locked folio in (`->read_folio`). The folio must be unlocked when the read
    /// completes, successfully or not: hand it to an operation that does so, or drop it.
    fn read_folio(_file: Option<&LocalFile>, _folio: folio::Locked<'_>) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Starts reading the folios of a readahead request (`->readahead`).
    fn readahead(_rac: &mut ReadaheadControl) {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Prepares a buffered write of `len` bytes at `pos` (`->write_begin`): returns the locked
    /// folio to copy into. A file system with this operation keeps its data in buffer heads:
    /// the abstraction uses `block_dirty_folio()` and `block_invalidate_folio()` for it.
    fn write_begin(
        _file: Option<&LocalFile>,
        _mapping: &Mapping<Self::FileSystem>,
        _pos: i64,
        _len: u32,
    ) -> Result<folio::Owned> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Completes a buffered write (`->write_end`); returns the bytes written.
    fn write_end(
        _file: Option<&LocalFile>,
        _mapping: &Mapping<Self::FileSystem>,
        _pos: i64,
        _len: u32,
        _copied: u32,
        _folio: folio::Owned,
    ) -> Result<u32> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes dirty folios back (`->writepages`).
    fn writepages(_mapping: &Mapping<Self::FileSystem>, _wbc: &mut WritebackControl) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Transfers data between `iter` and the disk blocks of the file of `kiocb`, at its
    /// position, bypassing the page cache (`->direct_IO`). A buffer-head-based file system
    /// calls [`super::buffer::blockdev_direct_io`].
    ///
    /// The VFS calls it for `O_DIRECT` reads (from `generic_file_read_iter()`, after writing
    /// the range back, without the inode's lock); a file system's own `write_iter` calls it
    /// for writes, with the inode's lock held and the range invalidated. Its presence is what
    /// lets files be opened with `O_DIRECT`.
    ///
    /// Returns the bytes transferred, or `EIOCBQUEUED` for an asynchronous request that will
    /// complete later; a short count leaves the rest to the page cache.
    fn direct_io(
        _kiocb: &mut Kiocb<'_, ()>,
        _inode: &INode<Self::FileSystem>,
        _iter: DirectIter<'_, '_>,
    ) -> Result<usize> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The data of a direct I/O request: where a read puts it, or where a write takes it from.
pub enum DirectIter<'a, 'data> {
    /// A read (`iov_iter_rw() == READ`).
    Read(&'a mut IovIterDest<'data>),
    /// A write (`iov_iter_rw() == WRITE`).
    Write(&'a mut IovIterSource<'data>),
}

impl DirectIter<'_, '_> {
    /// The raw pointer to the C iterator.
    pub(crate) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        match self {
            DirectIter::Read(i) => i.as_raw(),
            DirectIter::Write(i) => i.as_raw(),
        }
    }

    /// The number of bytes left in the request.
    pub fn len(&self) -> usize {
        match self {
            DirectIter::Read(i) => i.len(),
            DirectIter::Write(i) => i.len(),
        }
    }

    /// Whether no bytes are left in the request.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An address space operations table for file system type `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::address_space_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T>>() -> Self {
        Self(&Table::<U>::TABLE, PhantomData)
    }

    pub(crate) fn table(self) -> &'static bindings::address_space_operations {
        self.0
    }
}

struct Table<U>(PhantomData<U>);

impl<U: Operations> Table<U> {
    const TABLE: bindings::address_space_operations = bindings::address_space_operations {
        read_folio: if U::HAS_READ_FOLIO {
            Some(read_folio::<U>)
        } else {
            None
        },
        readahead: if U::HAS_READAHEAD {
            Some(readahead::<U>)
        } else {
            None
        },
        write_begin: if U::HAS_WRITE_BEGIN {
            Some(write_begin::<U>)
        } else {
            None
        },
        write_end: if U::HAS_WRITE_END {
            Some(write_end::<U>)
        } else {
            None
        },
        writepages: if U::HAS_WRITEPAGES {
            Some(writepages::<U>)
        } else {
            None
        },
        direct_IO: if U::HAS_DIRECT_IO {
            Some(direct_io::<U>)
        } else {
            None
        },
        dirty_folio: if U::HAS_WRITE_BEGIN {
            Some(bindings::block_dirty_folio)
        } else {
            None
        },
        invalidate_folio: if U::HAS_WRITE_BEGIN {
            Some(bindings::block_invalidate_folio)
        } else {
            None
        },
        // SAFETY: All-zeroes (no operation) is valid for the remaining fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}

/// # Safety
///
/// Called by the VFS with a locked folio of a file of this file system type, and the file
/// being read or null.
unsafe extern "C" fn read_folio<U: Operations>(
    file: *mut bindings::file,
    folio: *mut bindings::folio,
) -> c_int {
    from_result(|| {
        // SAFETY: A non-null file is valid and referenced for the duration of the call. It is
        // passed as a `LocalFile`: the operation must not use its position.
        let file = (!file.is_null()).then(|| unsafe { LocalFile::from_raw_file(file) });
        // SAFETY: The folio is valid and locked; the lock is ours to release.
        let folio = unsafe { folio::Locked::from_raw(folio) };
        U::read_folio(file, folio)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the VFS with a valid readahead request for a file of this file system type.
unsafe extern "C" fn readahead<U: Operations>(rac: *mut bindings::readahead_control) {
    // SAFETY: `rac` is valid and exclusively ours for the call; `ReadaheadControl` is a
    // transparent wrapper.
    U::readahead(unsafe { &mut *rac.cast::<ReadaheadControl>() });
}

/// The file of a `kiocb` passed to `->write_begin`/`->write_end`, if any.
///
/// # Safety
///
/// `iocb` must be null or a valid kiocb for the duration of `'a`.
unsafe fn iocb_file<'a>(iocb: *const bindings::kiocb) -> Option<&'a LocalFile> {
    // SAFETY: Per the safety requirements; a kiocb's file is valid while the kiocb is.
    (!iocb.is_null()).then(|| unsafe { LocalFile::from_raw_file((*iocb).ki_filp) })
}

/// # Safety
///
/// Called by the buffered write path with a valid mapping of a file of this file system type,
/// its inode locked, and a valid place for the folio.
unsafe extern "C" fn write_begin<U: Operations>(
    iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: bindings::loff_t,
    len: c_uint,
    foliop: *mut *mut bindings::folio,
    _fsdata: *mut *mut c_void,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements.
        let (file, mapping) = unsafe { (iocb_file(iocb), Mapping::from_raw(mapping)) };
        let folio = U::write_begin(file, mapping, pos, len)?;
        // SAFETY: `foliop` is valid for writes; the caller takes the lock and the reference.
        unsafe { *foliop = folio.into_raw() };
        Ok(0)
    })
}

/// # Safety
///
/// Called by the buffered write path with what `write_begin` returned.
unsafe extern "C" fn write_end<U: Operations>(
    iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: bindings::loff_t,
    len: c_uint,
    copied: c_uint,
    folio: *mut bindings::folio,
    _fsdata: *mut c_void,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements; the folio's lock and reference,
        // taken by `write_begin`, come back to us.
        let (file, mapping, folio) = unsafe {
            (
                iocb_file(iocb),
                Mapping::from_raw(mapping),
                folio::Owned::from_raw(folio),
            )
        };
        Ok(U::write_end(file, mapping, pos, len, copied, folio)? as c_int)
    })
}

/// # Safety
///
/// Called by writeback with a valid mapping of a file of this file system type and a valid
/// writeback control.
unsafe extern "C" fn writepages<U: Operations>(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements.
        let (mapping, wbc) =
            unsafe { (Mapping::from_raw(mapping), WritebackControl::from_raw(wbc)) };
        U::writepages(mapping, wbc)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called with a valid kiocb for a regular file of a file system of type `U::FileSystem` and
/// a valid iterator, both exclusively ours for the call.
unsafe extern "C" fn direct_io<U: Operations>(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: Per the function's safety requirements the kiocb and its file are valid, and the
    // file's mapping belongs to an initialised inode of type `U::FileSystem`; the iterator's
    // direction says which wrapper applies.
    let (mut kiocb, inode, iter) = unsafe {
        let inode = INode::from_raw((*(*(*iocb).ki_filp).f_mapping).host);
        let iter = if bindings::iov_iter_rw(iter) == bindings::WRITE as c_int {
            DirectIter::Write(IovIterSource::from_raw(iter))
        } else {
            DirectIter::Read(IovIterDest::from_raw(iter))
        };
        (Kiocb::<()>::from_raw(iocb), inode, iter)
    };
    match U::direct_io(&mut kiocb, inode, iter) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}
