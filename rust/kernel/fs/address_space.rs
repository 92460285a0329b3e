// SPDX-License-Identifier: GPL-2.0

//! Address space operations: how a file system moves file data between the page cache and
//! its device, C's `struct address_space_operations`.
//!
//! For now: reading ([`Operations::read_folio`], [`Operations::readahead`]). A
//! buffer-head-based file system implements them with [`super::buffer::mpage_read_folio`]
//! and [`super::buffer::mpage_readahead`] and its [`super::buffer::GetBlock`].
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::LocalFile, folio, FileSystem};
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
