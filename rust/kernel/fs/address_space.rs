// SPDX-License-Identifier: GPL-2.0

//! Address space operations: how a file system moves file data between the page cache and
//! its device, C's `struct address_space_operations`.
//!
//! For now: reading ([`Operations::read_folio`], [`Operations::readahead`]). A
//! buffer-head-based file system implements them with [`super::buffer::mpage_read_folio`]
//! and [`super::buffer::mpage_readahead`] and its [`super::buffer::GetBlock`].
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::LocalFile, folio, inode::INode, sb::WritebackControl, FileSystem};
use crate::{bindings, error::from_result, prelude::*, types::Opaque};
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
