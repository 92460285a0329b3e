// SPDX-License-Identifier: GPL-2.0

//! Buffer heads: blocks of a block device cached in the buffer cache, and the block mapping
//! function ([`GetBlock`]) through which the buffer cache, `mpage` and direct I/O
//! ([`blockdev_direct_io`]) reach a file's blocks.
//!
//! C header: [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h)

use super::{
    address_space::{self, DirectIter},
    folio,
    inode::INode,
    sb::{SuperBlock, WritebackControl},
    FileSystem, Kiocb,
};
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

impl Head {
    /// Gets the buffer of block `block` of the super block's device without reading it
    /// (`sb_getblk()`), for a block about to be overwritten whole: lock it, fill it, mark it
    /// uptodate and dirty.
    pub fn get_new<T: FileSystem>(sb: &SuperBlock<T>, block: u64) -> Result<ARef<Self>> {
        // SAFETY: The super block is valid, and its device open.
        let bh = unsafe { bindings::sb_getblk(sb.as_ptr(), block) };
        if bh.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `sb_getblk` returned a valid buffer head with a reference we own.
        Ok(unsafe { Self::from_raw_owned(bh) })
    }

    /// Locks the buffer (`lock_buffer()`), excluding writeback and other lockers, so that its
    /// contents can be changed.
    pub fn lock(&self) -> Locked<'_> {
        // SAFETY: By the type invariants the buffer head is valid.
        unsafe { bindings::lock_buffer(self.0.get()) };
        // INVARIANT: The buffer is locked by us.
        Locked(self)
    }

    /// Marks the buffer dirty, for writeback of the block device to write it
    /// (`mark_buffer_dirty()`).
    pub fn mark_dirty(&self) {
        // SAFETY: By the type invariants the buffer head is valid.
        unsafe { bindings::mark_buffer_dirty(self.0.get()) };
    }

    /// Writes the buffer out if it is dirty and waits for it (`sync_dirty_buffer()`).
    pub fn sync(&self) -> Result {
        // SAFETY: By the type invariants the buffer head is valid.
        to_result(unsafe { bindings::sync_dirty_buffer(self.0.get()) })
    }
}

/// A locked buffer, whose contents its holder may change. Unlocked when dropped.
///
/// # Invariants
///
/// The buffer is locked, and the lock is owned by this object.
pub struct Locked<'a>(&'a Head);

impl Locked<'_> {
    /// The block's contents, for changing.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let bh = self.0 .0.get();
        // SAFETY: By the type invariants the buffer is locked by us, which excludes other
        // writers that follow the locking rule and I/O; `b_data` points to `b_size` bytes.
        unsafe { core::slice::from_raw_parts_mut((*bh).b_data.cast::<u8>(), (*bh).b_size) }
    }

    /// Marks the contents valid (`set_buffer_uptodate()`), after filling a new block whole.
    pub fn set_uptodate(&mut self) {
        // SAFETY: By the type invariants the buffer head is valid.
        unsafe { bindings::set_buffer_uptodate(self.0 .0.get()) };
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the lock.
        unsafe { bindings::unlock_buffer(self.0 .0.get()) };
    }
}

/// Starts a buffered write of `len` bytes at `pos` of a file (`block_write_begin()`): gets the
/// folio, maps (allocating with `G`) and reads in the blocks the write touches partially.
/// Returns the locked folio to copy the data into, for [`generic_write_end`].
pub fn block_write_begin<G: GetBlock>(
    mapping: &address_space::Mapping<G::FileSystem>,
    pos: i64,
    len: u32,
) -> Result<folio::Owned> {
    let mut folio: *mut bindings::folio = core::ptr::null_mut();
    // SAFETY: The mapping is valid for the call; on success `folio` is a locked folio with a
    // reference we own.
    to_result(unsafe {
        bindings::block_write_begin(
            mapping.as_ptr(),
            pos,
            len,
            &mut folio,
            Some(get_block_callback::<G>),
        )
    })?;
    // SAFETY: As above.
    Ok(unsafe { folio::Owned::from_raw(folio) })
}

/// Ends a buffered write begun with [`block_write_begin`] (`generic_write_end()`): marks the
/// copied bytes dirty, extends the file's size if the write went past it, unlocks and releases
/// the folio. Returns how many bytes were written.
pub fn generic_write_end<T: FileSystem>(
    mapping: &address_space::Mapping<T>,
    pos: i64,
    len: u32,
    copied: u32,
    folio: folio::Owned,
) -> Result<u32> {
    // SAFETY: The mapping is valid; `generic_write_end` takes over the folio's lock and
    // reference.
    let ret = unsafe {
        bindings::generic_write_end(
            core::ptr::null(),
            mapping.as_ptr(),
            pos,
            len,
            copied,
            folio.into_raw(),
            core::ptr::null_mut(),
        )
    };
    to_result(ret)?;
    Ok(ret as u32)
}

/// Direct I/O between `iter` and the blocks of `inode` that `G` maps, at the kiocb's position
/// (`__blockdev_direct_IO()` with `DIO_LOCKING`). Blocks that are contiguous on the device go
/// in one bio. For a write, `G::get_block` is called with `create` for holes, and a partly
/// written new block is zeroed around the data. A read of a hole reads zeros; a read stops at
/// the end of the file.
///
/// The offset, the length and the memory of `iter` must be aligned to the file system's block
/// size or the device's logical block size, or this fails with `EINVAL`. Returns the bytes
/// transferred, or `EIOCBQUEUED` for an asynchronous request that completes later. An
/// asynchronous write past the end of the file is waited for: the caller updates the size.
///
/// Locking (`DIO_LOCKING`): a read takes the inode's lock while it maps blocks and writes the
/// range back first, so it must be called without the lock. A write must be called with the
/// lock held ([`INode::lock`]) and the range's page cache invalidated, as
/// [`address_space::Operations::direct_io`] says. The inode's `i_dio_count` is raised from
/// submission to completion ([`INode::dio_wait`]).
///
/// Needs `CONFIG_LEGACY_DIRECT_IO`, which a file system using it selects.
#[cfg(CONFIG_LEGACY_DIRECT_IO)]
pub fn blockdev_direct_io<G: GetBlock>(
    kiocb: &mut Kiocb<'_, ()>,
    inode: &INode<G::FileSystem>,
    mut iter: DirectIter<'_, '_>,
) -> Result<usize> {
    // SAFETY: The kiocb, the inode (of this file system type, mounted on a block device) and
    // the iterator are valid for the call; `get_block_callback::<G>` is a valid `get_block_t`
    // for it.
    let ret = unsafe {
        bindings::__blockdev_direct_IO(
            kiocb.as_raw(),
            inode.as_ptr(),
            (*(*inode.as_ptr()).i_sb).s_bdev,
            iter.as_raw(),
            Some(get_block_callback::<G>),
            None,
            bindings::DIO_LOCKING as c_int,
        )
    };
    if ret < 0 {
        return Err(Error::from_errno(ret as c_int));
    }
    Ok(ret as usize)
}

/// Writes a locked folio of a file back, mapping any unmapped dirty buffer with `G`: what
/// `block_write_full_folio()` does, which is not exported to modules. The part of a folio
/// that straddles the end of the file is zeroed past it first, since it may be mapped; a folio
/// wholly past the end (being truncated) is just unlocked. The folio is unlocked when this
/// returns; the I/O may still be in flight.
pub fn write_full_folio<G: GetBlock>(
    folio: folio::Locked<'_>,
    wbc: &mut WritebackControl,
) -> Result {
    let pos = folio.pos();
    let size = folio.size();
    let ptr = folio.into_raw();
    // SAFETY: The folio is valid and locked, so its mapping and the mapping's host inode are
    // stable.
    let inode = unsafe { (*(*ptr).__bindgen_anon_1.__bindgen_anon_1.mapping).host };
    // SAFETY: As above.
    let i_size = unsafe { bindings::i_size_read(inode) };
    if pos >= i_size {
        // SAFETY: We own the folio's lock.
        unsafe { bindings::folio_unlock(ptr) };
        return Ok(());
    }
    if pos + size as i64 > i_size {
        // SAFETY: The folio is locked; the range lies within it.
        unsafe { bindings::folio_zero_segment(ptr, (i_size - pos) as usize, size) };
    }
    // SAFETY: The folio is valid and locked; `__block_write_full_folio` unlocks it.
    to_result(unsafe {
        bindings::__block_write_full_folio(inode, ptr, Some(get_block_callback::<G>), wbc.as_ptr())
    })
}

/// References on every buffer of a folio, taken while the folio is locked and dropped when
/// this is dropped, whatever happened to the folio in between (it may be unlocked, written
/// back, truncated).
///
/// This is what ext3's ordered-data `writepage` did around `block_write_full_page()`: while
/// the references are held, `try_to_free_buffers()` cannot strip the buffers, so
/// `invalidate_inode_pages2_range()` cannot drop the folio and returns `-EBUSY`.
///
/// # Invariants
///
/// `head` is null, or the first buffer of a folio's ring of buffers, each of which holds a
/// reference owned by this object.
pub struct FolioBufferRefs {
    head: *mut bindings::buffer_head,
}

impl FolioBufferRefs {
    /// Takes a reference on each buffer of `folio`, if it has buffers.
    pub fn new(folio: &folio::Locked<'_>) -> Self {
        // SAFETY: The folio is locked, so its buffers cannot be attached or stripped.
        let head = unsafe { bindings::folio_buffers(folio.as_ptr()) };
        if !head.is_null() {
            let mut bh = head;
            loop {
                // SAFETY: `bh` is in the folio's ring of buffers, valid while the folio is
                // locked.
                unsafe {
                    bindings::get_bh(bh);
                    bh = (*bh).b_this_page;
                }
                if bh == head {
                    break;
                }
            }
        }
        // INVARIANT: We hold a reference on every buffer of the ring.
        Self { head }
    }

    /// Whether the folio had buffers.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

impl Drop for FolioBufferRefs {
    fn drop(&mut self) {
        let head = self.head;
        if head.is_null() {
            return;
        }
        let mut bh = head;
        loop {
            // SAFETY: By the type invariants we hold a reference on every buffer of the ring,
            // so none is freed and the ring is intact until the last `put_bh`; read the next
            // pointer before dropping the reference.
            unsafe {
                let next = (*bh).b_this_page;
                bindings::put_bh(bh);
                bh = next;
            }
            if bh == head {
                break;
            }
        }
    }
}
