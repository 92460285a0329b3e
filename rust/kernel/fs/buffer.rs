// SPDX-License-Identifier: GPL-2.0

//! Buffer heads: blocks of a block device cached in the buffer cache.
//!
//! C header: [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h)

use crate::{
    bindings,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr;

/// A block of a block device, cached in memory: C's `struct buffer_head`.
///
/// Obtained from [`super::sb::SuperBlock::bread`], which returns it uptodate and with a
/// reference held; the reference is dropped with the [`ARef`].
///
/// # Invariants
///
/// The wrapped `buffer_head` is valid while a reference to it is held, which every `&Head`
/// and [`ARef<Head>`] guarantees. Its `b_data` points to `b_size` bytes that stay mapped
/// while the reference is held.
#[repr(transparent)]
pub struct Head(Opaque<bindings::buffer_head>);

// SAFETY: The type invariants guarantee that `Head` is always ref-counted.
unsafe impl AlwaysRefCounted for Head {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the refcount is nonzero.
        unsafe { bindings::get_bh(self.0.get()) };
    }

    unsafe fn dec_ref(obj: ptr::NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the refcount is nonzero.
        unsafe { bindings::put_bh(obj.cast().as_ptr()) }
    }
}

impl Head {
    /// Wraps a buffer head the caller holds a reference on, taking over that reference.
    ///
    /// # Safety
    ///
    /// `bh` must point to a valid `buffer_head` on which the caller owns a reference.
    pub(crate) unsafe fn from_raw_owned(bh: *mut bindings::buffer_head) -> ARef<Self> {
        // SAFETY: `Head` is `repr(transparent)` over the C struct, `bh` is non-null and valid,
        // and the caller gives its reference to the `ARef`.
        unsafe { ARef::from_raw(ptr::NonNull::new_unchecked(bh.cast())) }
    }

    /// The block's contents.
    ///
    /// The buffer cache is shared: the contents change if another user writes to the same
    /// block. Users that modify metadata blocks serialise their updates themselves (tinyfs
    /// does so with its own locks).
    pub fn data(&self) -> &[u8] {
        let bh = self.0.get();
        // SAFETY: By the type invariants `b_data` points to `b_size` mapped bytes that stay
        // valid while the reference is held, which outlives the returned slice.
        unsafe { core::slice::from_raw_parts((*bh).b_data.cast::<u8>(), (*bh).b_size) }
    }

    /// The block number on the device, in units of the buffer's size.
    pub fn block_nr(&self) -> u64 {
        // SAFETY: By the type invariants the buffer head is valid.
        unsafe { (*self.0.get()).b_blocknr }
    }
}
