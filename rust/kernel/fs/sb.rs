// SPDX-License-Identifier: GPL-2.0

//! Super blocks.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{buffer, dentry::DEntry, inode, inode::INode, FileSystem};
use crate::{bindings, error::from_result, prelude::*, sync::aref::ARef, types::Opaque};
use core::marker::PhantomData;

/// A typestate of a [`SuperBlock`].
pub trait State: private::Sealed {}

/// A new super block, being set up by [`FileSystem::fill_super`]: its file system data is
/// not in place yet.
pub struct New;

/// A super block that is set up: its file system data is in place.
pub struct Ready;

impl State for New {}
impl State for Ready {}

mod private {
    pub trait Sealed {}
    impl Sealed for super::New {}
    impl Sealed for super::Ready {}
}

/// A super block of a file system of type `T`: C's `struct super_block`.
///
/// # Invariants
///
/// The wrapped `super_block` is valid for the lifetime of every reference to it and belongs
/// to file system type `T`. In state [`Ready`], `s_fs_info` points to the `T::Data` returned
/// by [`FileSystem::fill_super`], which lives until the super block is shut down.
#[repr(transparent)]
pub struct SuperBlock<T: FileSystem, S: State = Ready>(
    Opaque<bindings::super_block>,
    PhantomData<(T, S)>,
);

impl<T: FileSystem, S: State> SuperBlock<T, S> {
    /// Creates a reference to a super block from a pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid super block of file system type `T` that stays valid for
    /// `'a`; in state [`Ready`] its `s_fs_info` must point to its `T::Data`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is a transparent wrapper, and the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// Creates a mutable reference to a super block from a pointer.
    ///
    /// # Safety
    ///
    /// As [`SuperBlock::from_raw`], and nothing else may access the super block through Rust
    /// references during `'a` (true of a new super block during `fill_super`).
    pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut bindings::super_block) -> &'a mut Self {
        // SAFETY: `SuperBlock` is a transparent wrapper, and the caller guarantees validity
        // and exclusivity.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw pointer to the C super block.
    pub(crate) fn as_ptr(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// Reads block `block` (in units of the super block's block size) of the device.
    ///
    /// Returns `EIO` if the block cannot be read.
    pub fn bread(&self, block: u64) -> Result<ARef<buffer::Head>> {
        // SAFETY: By the type invariants the super block is valid, and its block device is
        // open while it is.
        let bh = unsafe { bindings::sb_bread(self.as_ptr(), block) };
        if bh.is_null() {
            return Err(EIO);
        }
        // SAFETY: `sb_bread` returned a valid buffer head with a reference we own.
        Ok(unsafe { buffer::Head::from_raw_owned(bh) })
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        // SAFETY: By the type invariants the super block is valid.
        unsafe { (*self.as_ptr()).s_blocksize as u32 }
    }

    /// The size of the underlying block device, in bytes.
    pub fn device_size(&self) -> u64 {
        // SAFETY: By the type invariants the super block is valid; a block-device-backed
        // super block has its `s_bdev` open while it is.
        let bytes = unsafe { bindings::bdev_nr_bytes((*self.as_ptr()).s_bdev) };
        bytes as u64
    }

    /// The name of the device, for messages (`s_id`, such as `vda`).
    pub fn id(&self) -> &CStr {
        // SAFETY: By the type invariants the super block is valid; `s_id` is a NUL-terminated
        // string set when the super block was made, not changed afterwards.
        let id = unsafe { &(*self.as_ptr()).s_id };
        // SAFETY: `c_char` and `u8` have the same layout; the array lives as long as `self`.
        let bytes = unsafe { core::slice::from_raw_parts(id.as_ptr().cast::<u8>(), id.len()) };
        CStr::from_bytes_until_nul(bytes).unwrap_or(c"?")
    }

    /// The logical block size of the device (`bdev_logical_block_size()`): the smallest unit
    /// of direct I/O to it.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariants the super block is valid and its device open.
        unsafe { bindings::bdev_logical_block_size((*self.as_ptr()).s_bdev) }
    }

    /// The debugfs directory of the file system type (`/sys/kernel/debug/<name>/`, empty
    /// without `CONFIG_DEBUG_FS`), in which a mount can create its own directory.
    pub fn debugfs_dir(&self) -> &crate::debugfs::Dir {
        // SAFETY: By the type invariants the super block is valid and of type `T`, so its
        // `s_type` is the `fs` of the `Registration<T>`, which outlives every super block of
        // the type: the module stays referenced while one exists.
        unsafe { super::registration::Registration::<T>::debugfs_dir((*self.as_ptr()).s_type) }
    }

    /// Whether the file system is mounted read-only.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: By the type invariants the super block is valid.
        unsafe { (*self.as_ptr()).s_flags & bindings::SB_RDONLY != 0 }
    }
}

impl<T: FileSystem> SuperBlock<T, New> {
    /// Sets the block size, which must be a power of two between 512 bytes and the page size,
    /// and no smaller than the device's logical block size.
    ///
    /// Fails with `EINVAL` otherwise.
    pub fn set_block_size(&mut self, size: u32) -> Result {
        // SAFETY: By the type invariants the super block is valid; it is new and ours.
        if unsafe { bindings::sb_set_blocksize(self.as_ptr(), size as c_int) } == 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Sets the largest block size among `size` and the device's logical block size and
    /// returns it (`sb_min_blocksize()`). Fails with `EINVAL` if that size is unusable.
    pub fn set_min_block_size(&mut self, size: u32) -> Result<u32> {
        // SAFETY: By the type invariants the super block is valid; it is new and ours.
        match unsafe { bindings::sb_min_blocksize(self.as_ptr(), size as c_int) } {
            0 => Err(EINVAL),
            n => Ok(n as u32),
        }
    }

    /// Makes the mount read-only, whatever the mount options asked for.
    pub fn set_read_only(&mut self) {
        // SAFETY: By the type invariants the super block is valid; it is new and ours.
        unsafe { (*self.as_ptr()).s_flags |= bindings::SB_RDONLY };
    }

    /// Sets the magic number reported by `statfs()` and used by tools to identify the file
    /// system.
    pub fn set_magic(&mut self, magic: u64) {
        // SAFETY: By the type invariants the super block is valid; it is new and ours.
        unsafe { (*self.as_ptr()).s_magic = magic as _ };
    }

    /// Sets the largest file size the file system supports.
    pub fn set_max_bytes(&mut self, max: i64) {
        // SAFETY: By the type invariants the super block is valid; it is new and ours.
        unsafe { (*self.as_ptr()).s_maxbytes = max };
    }
}

impl<T: FileSystem> SuperBlock<T> {
    /// The file system data returned by [`FileSystem::fill_super`].
    pub fn data(&self) -> &T::Data {
        // SAFETY: By the type invariants, in state `Ready` `s_fs_info` points to the `T::Data`,
        // which lives as long as the super block.
        unsafe { &*(*self.as_ptr()).s_fs_info.cast::<T::Data>() }
    }

    /// Makes a new inode numbered `ino`, for a file being created; the caller initialises it
    /// with [`inode::New::init`]. Fails with `EBUSY` if an inode with that number is still in
    /// the inode cache.
    pub fn new_inode(&self, ino: u64) -> Result<inode::New<T>> {
        inode::new_inode(self, ino)
    }

    /// Gets the inode numbered `ino` from the inode cache, or a new one to initialise.
    ///
    /// Returns [`inode::Cached::Found`] with a reference to an initialised inode, or
    /// [`inode::Cached::New`] with a locked new inode that the caller must initialise with
    /// [`inode::New::init`] (dropping it instead marks it bad).
    pub fn iget(&self, ino: u64) -> Result<inode::Cached<T>> {
        // SAFETY: By the type invariants the super block is valid.
        let ptr = unsafe { bindings::iget_locked(self.as_ptr(), ino as _) };
        if ptr.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `iget_locked` returned a valid inode of this super block with a reference we
        // own; if it is new, it is locked (`I_NEW`) and only we may initialise it.
        Ok(unsafe { inode::Cached::from_iget(ptr) })
    }
}

/// File system statistics, reported by [`Operations::statfs`].
#[derive(Default, Clone, Copy)]
pub struct Stat {
    /// The file system's magic number.
    pub magic: u64,
    /// The longest file name, in bytes.
    pub namelen: u64,
    /// The block size, in bytes.
    pub bsize: u64,
    /// Blocks in the file system.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks available to unprivileged users.
    pub bavail: u64,
    /// Inodes in the file system.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// The file system's ID (`f_fsid`), for example derived from its UUID.
    pub fsid: u64,
}

/// Super block operations: C's `struct super_operations`.
///
/// Inode allocation and freeing are done by the abstraction (they hold the typed per-inode
/// data); the file system provides what its format needs.
#[vtable]
pub trait Operations {
    /// The file system type these operations belong to.
    type FileSystem: FileSystem;

    /// Reports file system statistics for `statfs(2)`, with the dentry it was called on.
    fn statfs(_dentry: &DEntry<Self::FileSystem>, _stat: &mut Stat) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes a dirty inode's metadata out (`->write_inode`). With
    /// [`WritebackControl::is_sync`] the write must have completed when this returns.
    fn write_inode(_inode: &INode<Self::FileSystem>, _wbc: &mut WritebackControl) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called when an inode leaves memory (`->evict_inode`), after its page cache has been
    /// emptied and before it is cleared. An inode with no link left is being deleted: the file
    /// system frees what it uses on disk. The inode has no reference left; it is valid for the
    /// duration of the call.
    fn evict_inode(_inode: &INode<Self::FileSystem>) {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes the file system's own metadata (super block, counters) out (`->sync_fs`);
    /// with `wait`, waits for it.
    fn sync_fs(_sb: &SuperBlock<Self::FileSystem>, _wait: bool) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Parameters of a writeback: C's `struct writeback_control`.
///
/// # Invariants
///
/// The wrapped control is valid and exclusively ours for the duration of the operation that
/// received it.
#[repr(transparent)]
pub struct WritebackControl(Opaque<bindings::writeback_control>);

impl WritebackControl {
    /// # Safety
    ///
    /// `ptr` must be valid and exclusively the caller's for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::writeback_control) -> &'a mut Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity and exclusivity.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw pointer to the C control.
    pub(crate) fn as_ptr(&mut self) -> *mut bindings::writeback_control {
        self.0.get()
    }

    /// Whether this is a data integrity writeback (`WB_SYNC_ALL`: `fsync`, `sync`), which must
    /// wait for the I/O, rather than background writeback.
    pub fn is_sync(&self) -> bool {
        // SAFETY: By the type invariants the control is valid.
        unsafe { (*self.0.get()).sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL }
    }
}

pub(crate) struct Tables<T>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const SUPER: bindings::super_operations = bindings::super_operations {
        alloc_inode: Some(inode::alloc_inode::<T>),
        destroy_inode: Some(inode::destroy_inode::<T>),
        free_inode: Some(inode::free_inode::<T>),
        statfs: if <T::SuperOperations as Operations>::HAS_STATFS {
            Some(statfs::<T>)
        } else {
            None
        },
        write_inode: if <T::SuperOperations as Operations>::HAS_WRITE_INODE {
            Some(write_inode::<T>)
        } else {
            None
        },
        evict_inode: if <T::SuperOperations as Operations>::HAS_EVICT_INODE {
            Some(evict_inode::<T>)
        } else {
            None
        },
        sync_fs: if <T::SuperOperations as Operations>::HAS_SYNC_FS {
            Some(sync_fs::<T>)
        } else {
            None
        },
        // SAFETY: All-zeroes (no operation) is valid for the remaining fields.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };

    pub(crate) const fn super_operations() -> &'static bindings::super_operations {
        &Self::SUPER
    }
}

/// # Safety
///
/// Called by the VFS with a valid dentry of a mounted file system of type `T` and a valid
/// `kstatfs` to fill.
unsafe extern "C" fn statfs<T: FileSystem>(
    dentry: *mut bindings::dentry,
    buf: *mut bindings::kstatfs,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements the dentry is valid and referenced
        // for the duration of the call.
        let dentry = unsafe { DEntry::<T>::from_raw(dentry) };
        let mut stat = Stat::default();
        <T::SuperOperations as Operations>::statfs(dentry, &mut stat)?;
        // SAFETY: `buf` is valid for writes per the function's safety requirements.
        unsafe {
            (*buf).f_type = stat.magic as _;
            (*buf).f_namelen = stat.namelen as _;
            (*buf).f_bsize = stat.bsize as _;
            (*buf).f_blocks = stat.blocks;
            (*buf).f_bfree = stat.bfree;
            (*buf).f_bavail = stat.bavail;
            (*buf).f_files = stat.files;
            (*buf).f_ffree = stat.ffree;
            (*buf).f_fsid.val = [stat.fsid as u32 as c_int, (stat.fsid >> 32) as u32 as c_int];
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called by writeback with a valid, referenced inode of file system type `T` and a valid
/// writeback control.
unsafe extern "C" fn write_inode<T: FileSystem>(
    inode: *mut bindings::inode,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements.
        let (inode, wbc) =
            unsafe { (INode::<T>::from_raw(inode), WritebackControl::from_raw(wbc)) };
        <T::SuperOperations as Operations>::write_inode(inode, wbc)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the VFS (`evict()`) with a valid inode of file system type `T` that is leaving
/// memory and that nothing else uses.
unsafe extern "C" fn evict_inode<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: Per the function's safety requirements the inode is valid and ours.
    unsafe { bindings::truncate_inode_pages_final(&raw mut (*inode).i_data) };
    // SAFETY: As above. The file system is only called for inodes it initialised: not for one
    // whose initialisation failed (`iget_failed()`) or never happened, nor for one the VFS
    // marked bad.
    if unsafe { inode::data_initialised::<T>(inode) && !bindings::is_bad_inode(inode) } {
        // SAFETY: As above; the inode is initialised.
        <T::SuperOperations as Operations>::evict_inode(unsafe { INode::<T>::from_raw(inode) });
    }
    // SAFETY: As above; the page cache is empty. (The abstractions associate no metadata
    // buffers with an inode's mapping, so there are none to invalidate.)
    unsafe { bindings::clear_inode(inode) };
}

/// # Safety
///
/// Called by the VFS with a valid, ready super block of file system type `T`.
unsafe extern "C" fn sync_fs<T: FileSystem>(sb: *mut bindings::super_block, wait: c_int) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements.
        <T::SuperOperations as Operations>::sync_fs(
            unsafe { SuperBlock::from_raw(sb) },
            wait != 0,
        )?;
        Ok(0)
    })
}
