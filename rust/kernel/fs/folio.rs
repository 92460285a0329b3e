// SPDX-License-Identifier: GPL-2.0

//! Folios of the page cache, as address space operations see them.
//!
//! C header: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h)

use crate::{bindings, types::Opaque};
use core::mem::ManuallyDrop;

/// A folio of a file's page cache: C's `struct folio`.
///
/// # Invariants
///
/// The wrapped folio is valid while a reference is held; every `&Folio` guarantees one.
#[repr(transparent)]
pub struct Folio(Opaque<bindings::folio>);

impl Folio {
    /// Creates a reference to a folio from a pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid folio that stays referenced for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::folio) -> &'a Self {
        // SAFETY: `Folio` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer to the C folio.
    pub(crate) fn as_ptr(&self) -> *mut bindings::folio {
        self.0.get()
    }

    /// The byte offset in the file of the folio's first byte.
    pub fn pos(&self) -> i64 {
        // SAFETY: By the type invariants the folio is valid.
        unsafe { bindings::folio_pos(self.as_ptr()) }
    }

    /// The size of the folio, in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: By the type invariants the folio is valid.
        unsafe { bindings::folio_size(self.as_ptr()) }
    }
}

/// A folio locked by its holder.
///
/// The folio is unlocked when this is dropped, unless it is handed to an operation that
/// unlocks it itself (such as [`super::buffer::mpage_read_folio`], which unlocks it when the
/// read completes).
///
/// # Invariants
///
/// The folio is locked, and the lock is owned by this object.
pub struct Locked<'a>(&'a Folio);

impl<'a> Locked<'a> {
    /// Takes over the lock of a locked folio.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid folio, referenced for `'a`, whose lock the caller owns and
    /// hands over.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::folio) -> Self {
        // SAFETY: Per the safety requirements.
        Self(unsafe { Folio::from_raw(ptr) })
    }

    /// Gives the lock up to the caller, who must unlock the folio: returns the raw pointer.
    pub(crate) fn into_raw(self) -> *mut bindings::folio {
        let this = ManuallyDrop::new(self);
        this.0.as_ptr()
    }
}

impl core::ops::Deref for Locked<'_> {
    type Target = Folio;

    fn deref(&self) -> &Folio {
        self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the lock.
        unsafe { bindings::folio_unlock(self.0.as_ptr()) };
    }
}

impl Locked<'_> {
    /// The raw pointer to the C folio.
    pub(crate) fn as_ptr(&self) -> *mut bindings::folio {
        self.0.as_ptr()
    }
}

/// A locked folio with a reference of its own, as `->write_begin` hands to `->write_end`.
///
/// Unlocked and released when dropped, unless handed to an operation that does so.
///
/// # Invariants
///
/// `0` is a valid, locked folio; the lock and one reference are owned by this object.
pub struct Owned(core::ptr::NonNull<bindings::folio>);

impl Owned {
    /// Takes over the lock and a reference of a folio.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid folio whose lock and one reference the caller owns and
    /// hands over.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::folio) -> Self {
        // SAFETY: Per the safety requirements `ptr` is valid, hence not null.
        Self(unsafe { core::ptr::NonNull::new_unchecked(ptr) })
    }

    /// Gives the lock and the reference up to the caller.
    pub(crate) fn into_raw(self) -> *mut bindings::folio {
        ManuallyDrop::new(self).0.as_ptr()
    }
}

impl core::ops::Deref for Owned {
    type Target = Folio;

    fn deref(&self) -> &Folio {
        // SAFETY: By the type invariants the folio is valid while we hold our reference.
        unsafe { Folio::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the lock and a reference.
        unsafe {
            bindings::folio_unlock(self.0.as_ptr());
            bindings::folio_put(self.0.as_ptr());
        }
    }
}
