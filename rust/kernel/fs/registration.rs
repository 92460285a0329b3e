// SPDX-License-Identifier: GPL-2.0

//! File system types and their registration.
//!
//! A file system implements [`FileSystem`] and registers it with a [`Registration`], which
//! must live in the module's static memory (a field of an [`crate::InPlaceModule`]): the
//! `struct file_system_type` it wraps holds lockdep class keys, which lockdep accepts only
//! in static memory.
//!
//! Mounting goes through the `fs_context` API: the context's `get_tree` calls
//! `get_tree_bdev()`, whose `fill_super` callback calls [`FileSystem::fill_super`] and then
//! [`FileSystem::init_root`]. Mount options are not parsed yet: the VFS refuses every option
//! but the generic ones (`ro`, `rw`, `sync`, ...) with `-EINVAL` and an "Unknown parameter"
//! log line.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h)

use super::{dentry, sb};
use crate::{
    bindings, debugfs,
    error::{from_result, to_result},
    prelude::*,
    types::Opaque,
    ThisModule,
};
use core::marker::PhantomData;

/// A block-device-backed file system type.
pub trait FileSystem: Sized + Send + Sync + 'static {
    /// Data of each mounted file system, made by [`FileSystem::fill_super`], pinned, and
    /// dropped after the super block has been shut down (all inodes evicted).
    type Data: Send + Sync;

    /// Data kept in each in-memory inode of this file system.
    type INodeData: Send + Sync;

    /// The super block operations.
    type SuperOperations: sb::Operations<FileSystem = Self>;

    /// The name of the file system type, as in `/proc/filesystems` and `mount -t`.
    const NAME: &'static CStr;

    /// Reads and checks the super block of a new mount and sets the super block up; returns
    /// an initialiser of the file system's data (a plain value will do, or a pin-initialiser
    /// for data holding locks).
    ///
    /// Called with the new super block locked; the block device is open. An error fails the
    /// mount with that error.
    fn fill_super(
        sb: &mut sb::SuperBlock<Self, sb::New>,
    ) -> Result<impl PinInit<Self::Data, Error>>;

    /// Returns the root directory of a new mount, once its data is in place.
    fn init_root(sb: &sb::SuperBlock<Self>) -> Result<dentry::Root<Self>>;
}

/// A registration of a file system type.
///
/// It also makes a debugfs directory named after the file system type, in which mounted file
/// systems can publish their state ([`sb::SuperBlock::debugfs_dir`]).
///
/// # Invariants
///
/// `fs` is registered with the VFS (`register_filesystem`) from initialisation until drop.
/// Every super block whose `s_type` is `fs` is of file system type `T`.
#[pin_data(PinnedDrop)]
pub struct Registration<T: FileSystem> {
    #[pin]
    fs: Opaque<bindings::file_system_type>,
    debugfs: debugfs::Dir,
    _p: PhantomData<T>,
}

// SAFETY: The VFS synchronises its own accesses to the `file_system_type`; the debugfs
// directory is `Sync`.
unsafe impl<T: FileSystem> Sync for Registration<T> {}

// SAFETY: The `file_system_type` may be unregistered from any thread.
unsafe impl<T: FileSystem> Send for Registration<T> {}

impl<T: FileSystem> Registration<T> {
    /// Registers file system type `T`, owned by `module`.
    pub fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _p: PhantomData,
            debugfs: debugfs::Dir::new(T::NAME),
            fs <- Opaque::try_ffi_init(|fs: *mut bindings::file_system_type| {
                // SAFETY: `fs` is valid for writes; all-zeroes is a valid `file_system_type`
                // (null pointers, no flags, empty lists and lock class keys).
                unsafe { fs.write_bytes(0, 1) };
                // SAFETY: `fs` is valid for writes and initialised above.
                unsafe {
                    (*fs).owner = module.as_ptr();
                    (*fs).name = T::NAME.as_char_ptr();
                    (*fs).fs_flags = bindings::FS_REQUIRES_DEV as c_int;
                    (*fs).init_fs_context = Some(init_fs_context::<T>);
                    (*fs).kill_sb = Some(kill_sb::<T>);
                }
                // SAFETY: `fs` is initialised and pinned: it stays in place until `drop`
                // unregisters it.
                to_result(unsafe { bindings::register_filesystem(fs) })
            }),
        })
    }
}

impl<T: FileSystem> Registration<T> {
    /// The debugfs directory of the registration of the file system type `fs`.
    ///
    /// # Safety
    ///
    /// `fs` must be the `fs` field of a live `Registration<T>` that outlives `'a`.
    pub(crate) unsafe fn debugfs_dir<'a>(fs: *mut bindings::file_system_type) -> &'a debugfs::Dir {
        // SAFETY: `Opaque<T>` is a transparent wrapper, and per the safety requirements `fs`
        // is the `fs` field of a `Registration<T>`, which lives for `'a`.
        let reg = unsafe { &*crate::container_of!(fs.cast::<Opaque<_>>(), Self, fs) };
        &reg.debugfs
    }
}

#[pinned_drop]
impl<T: FileSystem> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants `fs` is registered. The module's refcount is held
        // while any super block of this type exists, so none does when the module (and this
        // registration) goes away.
        unsafe { bindings::unregister_filesystem(self.fs.get()) };
    }
}

struct Tables<T>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const CONTEXT: bindings::fs_context_operations = bindings::fs_context_operations {
        free: None,
        dup: None,
        parse_param: None,
        parse_monolithic: None,
        get_tree: Some(get_tree::<T>),
        reconfigure: None,
    };
}

/// # Safety
///
/// Called by the VFS with a valid, new `fs_context` of this file system type.
unsafe extern "C" fn init_fs_context<T: FileSystem>(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: `fc` is valid per the function's safety requirements; the operations table is
    // a `'static` constant.
    unsafe { (*fc).ops = &Tables::<T>::CONTEXT };
    0
}

/// # Safety
///
/// Called by the VFS with a valid `fs_context` whose operations are `Tables::<T>::CONTEXT`.
unsafe extern "C" fn get_tree<T: FileSystem>(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: `fc` is valid per the function's safety requirements.
    unsafe { bindings::get_tree_bdev(fc, Some(fill_super::<T>)) }
}

/// # Safety
///
/// Called by `get_tree_bdev()` with a new, locked super block of this file system type
/// whose block device is open.
unsafe extern "C" fn fill_super<T: FileSystem>(
    sb_ptr: *mut bindings::super_block,
    _fc: *mut bindings::fs_context,
) -> c_int {
    from_result(|| {
        // SAFETY: The super block is new, valid and exclusively ours until `fill_super`
        // returns, per the function's safety requirements.
        unsafe {
            (*sb_ptr).s_op = sb::Tables::<T>::super_operations();
            (*sb_ptr).s_time_gran = 1;
        }
        // SAFETY: As above; `SuperBlock` is a transparent wrapper of the C struct.
        let new_sb = unsafe { sb::SuperBlock::<T, sb::New>::from_raw_mut(sb_ptr) };
        let data = KBox::pin_init(T::fill_super(new_sb)?, GFP_KERNEL)?;
        // SAFETY: The data stays pinned: it is only dropped in place, by `kill_sb`, also when the
        // rest of the mount fails.
        let data = KBox::into_raw(unsafe { Pin::into_inner_unchecked(data) });
        // SAFETY: As above.
        unsafe { (*sb_ptr).s_fs_info = data.cast() };
        // SAFETY: The super block is valid and its data is in place.
        let ready = unsafe { sb::SuperBlock::<T>::from_raw(sb_ptr) };
        let root = T::init_root(ready)?;
        // SAFETY: The super block is valid; the VFS owns the root dentry's reference from now.
        unsafe { (*sb_ptr).s_root = root.into_raw() };
        Ok(0)
    })
}

/// # Safety
///
/// Called by the VFS with a valid super block of this file system type that is being shut
/// down; nothing else uses it.
unsafe extern "C" fn kill_sb<T: FileSystem>(sb_ptr: *mut bindings::super_block) {
    // SAFETY: Per the function's safety requirements; this shuts the super block down,
    // evicting all inodes, and closes the block device.
    unsafe { bindings::kill_block_super(sb_ptr) };
    // SAFETY: The super block stays allocated until this function returns; `s_fs_info` is
    // null or came from `KBox::into_raw` in `fill_super`, and nothing uses it any more.
    let data = unsafe { (*sb_ptr).s_fs_info };
    if !data.is_null() {
        // SAFETY: As above.
        drop(unsafe { KBox::<T::Data>::from_raw(data.cast()) });
    }
}
