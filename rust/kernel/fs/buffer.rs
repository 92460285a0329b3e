// SPDX-License-Identifier: GPL-2.0

//! Buffer heads: blocks of a block device cached in the buffer cache, and the block mapping
//! function ([`GetBlock`]) through which the buffer cache and `mpage` read a file's data.
//!
//! C header: [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h)

use super::{address_space, folio, inode::INode, FileSystem};
use crate::{
    bindings,
    error::{from_result, to_result},
    prelude::*,
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

/// Where a block of a file lies on the device, as [`GetBlock::get_block`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The device block, in units of the file system's block size.
    pub block: u64,
    /// Whether the block was just allocated (its contents on the device are garbage).
    pub new: bool,
}

/// A file system's block mapping function: C's `get_block_t`, the callback through which the
/// buffer cache, `mpage` and the direct I/O code find (and allocate) a file's blocks.
pub trait GetBlock {
    /// The file system type the function belongs to.
    type FileSystem: FileSystem;

    /// Maps block `block` (in units of the file system's block size) of `inode`'s data.
    ///
    /// Returns `None` for a hole when `create` is false. With `create`, a hole is allocated
    /// and returned with [`Mapping::new`] set.
    fn get_block(
        inode: &INode<Self::FileSystem>,
        block: u64,
        create: bool,
    ) -> Result<Option<Mapping>>;
}

/// # Safety
///
/// Called by the buffer cache, `mpage` or direct I/O code with a valid inode of file system
/// type `G::FileSystem`, referenced for the call, and a valid, unmapped buffer head to fill.
unsafe extern "C" fn get_block_callback<G: GetBlock>(
    inode: *mut bindings::inode,
    iblock: bindings::sector_t,
    bh: *mut bindings::buffer_head,
    create: c_int,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements the inode is valid and initialised.
        let inode = unsafe { INode::<G::FileSystem>::from_raw(inode) };
        if let Some(m) = G::get_block(inode, iblock, create != 0)? {
            // SAFETY: `bh` is valid per the function's safety requirements, and so is the
            // inode's super block.
            unsafe {
                bindings::map_bh(bh, (*inode.as_ptr()).i_sb, m.block);
                if m.new {
                    bindings::set_buffer_new(bh);
                }
            }
        }
        Ok(0)
    })
}

/// Reads a folio of a file through `G` (`mpage_read_folio()`); the folio is unlocked when
/// the read completes.
pub fn mpage_read_folio<G: GetBlock>(folio: folio::Locked<'_>) -> Result {
    // SAFETY: The folio is valid and locked; `mpage_read_folio` takes its lock over.
    to_result(unsafe {
        bindings::mpage_read_folio(folio.into_raw(), Some(get_block_callback::<G>))
    })
}

/// Starts reading the folios of a readahead request through `G` (`mpage_readahead()`).
pub fn mpage_readahead<G: GetBlock>(rac: &mut address_space::ReadaheadControl) {
    // SAFETY: By the type invariants of `ReadaheadControl` the request is valid and ours.
    unsafe { bindings::mpage_readahead(rac.as_ptr(), Some(get_block_callback::<G>)) };
}
