// SPDX-License-Identifier: GPL-2.0

//! Inodes.
//!
//! Every in-memory inode of a file system of type `T` is allocated by these abstractions
//! (`super_operations::alloc_inode`) together with a `T::INodeData`, so that the file system
//! gets typed per-inode data: [`INode::data`].
//!
//! Inodes are looked up with [`super::sb::SuperBlock::iget`], which returns either a cached,
//! initialised inode or a locked [`New`] inode that the file system initialises from its
//! disk with [`New::init`].
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{address_space, dentry, fops, sb::SuperBlock, FileSystem};
use crate::{
    bindings,
    error::{from_result, to_result},
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::{NotThreadSafe, Opaque},
};
use core::{marker::PhantomData, mem::ManuallyDrop, mem::MaybeUninit, ptr};

/// The allocation behind every inode of a file system of type `T`.
///
/// # Invariants
///
/// `data` is initialised if and only if `data_init` is true; `data_init` only changes while a
/// single owner has exclusive access to the inode (initialisation of a new inode, and
/// `destroy_inode`).
#[repr(C)]
struct WithData<T: FileSystem> {
    data: MaybeUninit<T::INodeData>,
    data_init: bool,
    inode: Opaque<bindings::inode>,
}

/// An inode of a file system of type `T`: C's `struct inode`.
///
/// # Invariants
///
/// The wrapped inode is valid while a reference is held (every `&INode` and `ARef<INode>`
/// guarantees one), belongs to a file system of type `T` whose super block is
/// [`super::sb::Ready`], is embedded in a `WithData<T>` and, once visible through an
/// `&INode`, has its data initialised.
#[repr(transparent)]
pub struct INode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

// SAFETY: The type invariants guarantee that `INode` is always ref-counted.
unsafe impl<T: FileSystem> AlwaysRefCounted for INode<T> {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the refcount is nonzero.
        unsafe { bindings::ihold(self.0.get()) };
    }

    unsafe fn dec_ref(obj: ptr::NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the refcount is nonzero.
        unsafe { bindings::iput(obj.cast().as_ptr()) }
    }
}

// SAFETY: Inodes are reference-counted and their fields synchronised by the VFS; the
// per-inode data is `Send + Sync` as `FileSystem::INodeData` requires.
unsafe impl<T: FileSystem> Send for INode<T> {}

// SAFETY: As for `Send`.
unsafe impl<T: FileSystem> Sync for INode<T> {}

impl<T: FileSystem> INode<T> {
    /// Creates a reference to an inode from a pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised inode of a file system of type `T` that stays valid
    /// (referenced) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: `INode` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer to the C inode.
    pub(crate) fn as_ptr(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        // SAFETY: By the type invariants the inode is valid; `i_ino` does not change.
        unsafe { (*self.as_ptr()).i_ino as u64 }
    }

    /// The size of the file, in bytes (`i_size_read()`).
    pub fn size(&self) -> i64 {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::i_size_read(self.as_ptr()) }
    }

    /// The super block the inode belongs to.
    pub fn super_block(&self) -> &SuperBlock<T> {
        // SAFETY: By the type invariants the inode is valid and its super block is ready and
        // outlives it.
        unsafe { SuperBlock::from_raw((*self.as_ptr()).i_sb) }
    }

    /// The number of hard links.
    pub fn nlink(&self) -> u32 {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.i_nlink }
    }

    /// Adds a hard link (`inc_nlink()`). Callers hold the inode's lock.
    pub fn inc_nlink(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::inc_nlink(self.as_ptr()) };
    }

    /// Removes a hard link (`drop_nlink()`). Callers hold the inode's lock.
    pub fn drop_nlink(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::drop_nlink(self.as_ptr()) };
    }

    /// Sets the change time to now (`inode_set_ctime_current()`).
    pub fn touch_ctime(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::inode_set_ctime_current(self.as_ptr()) };
    }

    /// Sets the modification and change times to now.
    pub fn touch_mtime_ctime(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe {
            let now = bindings::inode_set_ctime_current(self.as_ptr());
            bindings::inode_set_mtime_to_ts(self.as_ptr(), now);
        }
    }

    /// Sets the size (`i_size_write()`). Callers hold the inode's lock.
    pub fn set_size(&self, size: i64) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::i_size_write(self.as_ptr(), size) };
    }

    /// Accounts `bytes` more (or, if negative, fewer) bytes of storage to the inode
    /// (`inode_add_bytes()`, `inode_sub_bytes()`), as `stat(2)` reports in `st_blocks`.
    pub fn add_bytes(&self, bytes: i64) {
        // SAFETY: By the type invariants the inode is valid; these take the inode's lock.
        unsafe {
            if bytes >= 0 {
                bindings::inode_add_bytes(self.as_ptr(), bytes)
            } else {
                bindings::inode_sub_bytes(self.as_ptr(), -bytes)
            }
        }
    }

    /// Marks the inode dirty, so that writeback calls `write_inode` (`mark_inode_dirty()`).
    pub fn mark_dirty(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::mark_inode_dirty(self.as_ptr()) };
    }

    /// The attributes that `write_inode` stores: mode, owner, times and block count.
    pub fn attrs(&self) -> Attrs {
        let p = self.as_ptr();
        // SAFETY: By the type invariants the inode is valid.
        unsafe {
            let a = bindings::inode_get_atime(p);
            let m = bindings::inode_get_mtime(p);
            let c = bindings::inode_get_ctime(p);
            Attrs {
                mode: (*p).i_mode as u16,
                uid: bindings::i_uid_read(p),
                gid: bindings::i_gid_read(p),
                atime: Time {
                    secs: a.tv_sec,
                    nsecs: a.tv_nsec as u32,
                },
                mtime: Time {
                    secs: m.tv_sec,
                    nsecs: m.tv_nsec as u32,
                },
                ctime: Time {
                    secs: c.tv_sec,
                    nsecs: c.tv_nsec as u32,
                },
            }
        }
    }

    /// Writes the inode's dirty data back and waits for it (`filemap_write_and_wait()`).
    pub fn write_and_wait_data(&self) -> Result {
        // SAFETY: By the type invariants the inode is valid, and so is its mapping.
        to_result(unsafe {
            bindings::filemap_write_and_wait_range((*self.as_ptr()).i_mapping, 0, i64::MAX)
        })
    }

    /// Waits for the direct I/O requests in flight on the inode to complete
    /// (`inode_dio_wait()`), including asynchronous ones submitted earlier.
    ///
    /// Must not be called from the completion of a direct I/O request of the inode.
    pub fn dio_wait(&self) {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::inode_dio_wait(self.as_ptr()) };
    }

    /// The page cache of the inode's data (`i_mapping`).
    pub fn mapping(&self) -> &address_space::Mapping<T> {
        // SAFETY: By the type invariants the inode is valid and initialised; its mapping is
        // valid as long as it is.
        unsafe { address_space::Mapping::from_raw((*self.as_ptr()).i_mapping) }
    }

    /// Takes the inode's lock (`i_rwsem`) exclusively (`inode_lock()`), as writes, size
    /// changes and directory changes do. Sleeps.
    pub fn lock(&self) -> Locked<'_, T> {
        // SAFETY: By the type invariants the inode is valid.
        unsafe { bindings::inode_lock(self.as_ptr()) };
        // INVARIANT: The lock was taken above.
        Locked(self, NotThreadSafe)
    }

    /// Takes the inode's lock exclusively if that does not block (`inode_trylock()`).
    pub fn try_lock(&self) -> Option<Locked<'_, T>> {
        // SAFETY: By the type invariants the inode is valid.
        if unsafe { bindings::inode_trylock(self.as_ptr()) } == 0 {
            return None;
        }
        // INVARIANT: The lock was taken above.
        Some(Locked(self, NotThreadSafe))
    }

    /// The file system's data for this inode.
    pub fn data(&self) -> &T::INodeData {
        // SAFETY: By the type invariants the inode is embedded in a `WithData<T>` whose data
        // is initialised.
        unsafe { (*with_data::<T>(self.as_ptr())).data.assume_init_ref() }
    }
}

/// Whether the file system's data of `inode` is initialised.
///
/// # Safety
///
/// `inode` must be a valid inode of file system type `T` that nothing else initialises or
/// destroys concurrently.
pub(crate) unsafe fn data_initialised<T: FileSystem>(inode: *mut bindings::inode) -> bool {
    // SAFETY: Per the safety requirements the inode is embedded in a `WithData<T>`.
    unsafe { (*with_data::<T>(inode)).data_init }
}

/// Returns the `WithData<T>` that holds `inode`.
///
/// # Safety
///
/// `inode` must be the `inode` field of a `WithData<T>`.
unsafe fn with_data<T: FileSystem>(inode: *mut bindings::inode) -> *mut WithData<T> {
    // SAFETY: Per the safety requirements, stepping back by the field offset stays within the
    // same allocation.
    unsafe {
        inode
            .cast::<u8>()
            .sub(core::mem::offset_of!(WithData<T>, inode))
            .cast()
    }
}

/// The kind of file an inode is, with the permission bits of its mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Type {
    /// A directory.
    Dir,
    /// A regular file.
    Reg,
    /// A symbolic link, whose target is the file's data, read through the page cache with
    /// the address space operations (`page_get_link()`).
    Lnk,
}

/// The guard of an inode's lock (`i_rwsem`, held exclusively), from [`INode::lock`]; the lock
/// is released when the guard is dropped.
///
/// Functions that need the lock held take a reference to the guard as proof.
///
/// # Invariants
///
/// The current thread holds the lock of inode `0` exclusively.
pub struct Locked<'a, T: FileSystem>(&'a INode<T>, NotThreadSafe);

impl<T: FileSystem> Locked<'_, T> {
    /// The locked inode.
    pub fn inode(&self) -> &INode<T> {
        self.0
    }
}

impl<T: FileSystem> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants this thread holds the lock.
        unsafe { bindings::inode_unlock(self.0.as_ptr()) };
    }
}

/// Timestamp of an inode.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Time {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds, below 1,000,000,000.
    pub nsecs: u32,
}

impl Time {
    /// The current wall-clock time (`ktime_get_real_ts64()`).
    pub fn now() -> Self {
        let mut ts = bindings::timespec64::default();
        // SAFETY: `ts` is valid for writes.
        unsafe { bindings::ktime_get_real_ts64(&mut ts) };
        Self {
            secs: ts.tv_sec,
            nsecs: ts.tv_nsec as u32,
        }
    }
}

/// A change of an inode's attributes (`chmod`, `chown`, `utimes`, `truncate`): C's
/// `struct iattr`.
///
/// # Invariants
///
/// The wrapped `iattr` is valid for the duration of the `setattr` call that received it.
#[repr(transparent)]
pub struct Attr(Opaque<bindings::iattr>);

impl Attr {
    /// The new size, if the change sets one.
    pub fn size(&self) -> Option<i64> {
        // SAFETY: By the type invariants the attribute change is valid.
        let a = unsafe { &*self.0.get() };
        (a.ia_valid & bindings::ATTR_SIZE != 0).then_some(a.ia_size)
    }
}

/// An inode's mode, owner and times, as [`INode::attrs`] reads them.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    /// File type and permission bits.
    pub mode: u16,
    /// Owner, in the initial user namespace.
    pub uid: u32,
    /// Group, in the initial user namespace.
    pub gid: u32,
    /// Last access.
    pub atime: Time,
    /// Last modification of the contents.
    pub mtime: Time,
    /// Last change of the inode.
    pub ctime: Time,
}

/// The idmapping of the mount a directory operation came through: C's `struct mnt_idmap`.
///
/// # Invariants
///
/// The wrapped idmap is valid for the duration of the operation that received it.
#[repr(transparent)]
pub struct MntIdmap(Opaque<bindings::mnt_idmap>);

impl MntIdmap {
    /// # Safety
    ///
    /// `ptr` must be a valid idmap for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::mnt_idmap) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }
}

/// Who owns a new inode.
pub enum Owner<'a, T: FileSystem> {
    /// The given owner, as read from the disk.
    Ids {
        /// Owner, in the initial user namespace.
        uid: u32,
        /// Group, in the initial user namespace.
        gid: u32,
    },
    /// The creating task, in directory `dir` of a mount with `idmap` (`inode_init_owner()`:
    /// the caller's fsuid, and the fsgid or the directory's group if it is set-group-ID).
    Creator {
        /// The mount's idmapping.
        idmap: &'a MntIdmap,
        /// The directory the inode is created in.
        dir: &'a INode<T>,
    },
}

/// What [`New::init`] sets in a new inode; `I` initialises the file system's data for the
/// inode in place (a plain value will do, or a pin-initialiser for data holding locks).
pub struct Params<'a, T: FileSystem, I> {
    /// The kind of file.
    pub typ: Type,
    /// Permission bits (the low 12 bits of the mode).
    pub mode: u16,
    /// Size in bytes.
    pub size: i64,
    /// Number of hard links.
    pub nlink: u32,
    /// Owner and group.
    pub owner: Owner<'a, T>,
    /// Blocks in use, in 512-byte units (`i_blocks`).
    pub blocks: u64,
    /// Last access.
    pub atime: Time,
    /// Last modification of the contents.
    pub mtime: Time,
    /// Last change of the inode.
    pub ctime: Time,
    /// The file system's data for the inode.
    pub value: I,
}

/// The result of [`super::sb::SuperBlock::iget`].
pub enum Cached<T: FileSystem> {
    /// The inode was in the cache, initialised.
    Found(ARef<INode<T>>),
    /// The inode is new: it must be initialised.
    New(New<T>),
}

impl<T: FileSystem> Cached<T> {
    /// Wraps what `iget_locked()` returned.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid inode of a file system of type `T` returned by `iget_locked()`,
    /// with the reference it returned, which this function takes over.
    pub(crate) unsafe fn from_iget(ptr: *mut bindings::inode) -> Self {
        // SAFETY: `ptr` is valid and referenced, per the safety requirements.
        let aref = unsafe { ARef::from_raw(ptr::NonNull::new_unchecked(ptr.cast::<INode<T>>())) };
        // SAFETY: `ptr` is valid.
        if unsafe { bindings::inode_is_new(ptr) } {
            // INVARIANT: The inode is locked and new; only we may initialise it.
            Cached::New(New {
                inode: ManuallyDrop::new(aref),
                iops: None,
                fops: None,
                aops: None,
            })
        } else {
            Cached::Found(aref)
        }
    }
}

/// A new, locked inode (`I_NEW`) that its owner must initialise.
///
/// Dropping it without calling [`New::init`] marks the inode bad and releases it
/// (`iget_failed()`), so that a failed read from disk leaves no half-made inode behind.
///
/// # Invariants
///
/// `inode` is a new inode (`I_NEW` set, data not initialised) that only this object may
/// initialise; its reference is owned by this object.
pub struct New<T: FileSystem> {
    inode: ManuallyDrop<ARef<INode<T>>>,
    iops: Option<&'static bindings::inode_operations>,
    fops: Option<&'static bindings::file_operations>,
    aops: Option<&'static bindings::address_space_operations>,
}

impl<T: FileSystem> New<T> {
    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.inode.ino()
    }

    /// Sets the inode operations.
    pub fn set_iops(&mut self, ops: Ops<T>) -> &mut Self {
        self.iops = Some(ops.0);
        self
    }

    /// Sets the file operations.
    pub fn set_fops(&mut self, ops: fops::Ops<T>) -> &mut Self {
        self.fops = Some(ops.table());
        self
    }

    /// Sets the address space operations, which move the file's data between the page cache
    /// and the device.
    pub fn set_aops(&mut self, ops: address_space::Ops<T>) -> &mut Self {
        self.aops = Some(ops.table());
        self
    }

    /// Initialises the inode and unlocks it, making it visible to other users.
    ///
    /// If the data cannot be initialised, the inode is marked bad and released, and the error
    /// is returned.
    pub fn init(
        self,
        params: Params<'_, T, impl PinInit<T::INodeData, Error>>,
    ) -> Result<ARef<INode<T>>> {
        let ptr = self.inode.as_ptr();
        // SAFETY: By the type invariants the inode is new and exclusively ours, and it is
        // embedded in a `WithData<T>` (a `KBox` allocation that never moves) whose data is
        // not initialised. On failure `self` is dropped, which releases the inode without
        // touching the data.
        unsafe {
            let outer = with_data::<T>(ptr);
            params.value.__init((*outer).data.as_mut_ptr())?;
            // INVARIANT: The data was initialised just above.
            (*outer).data_init = true;
        }
        let mut this = ManuallyDrop::new(self);
        let fmt = match params.typ {
            Type::Dir => bindings::S_IFDIR,
            Type::Reg => bindings::S_IFREG,
            Type::Lnk => bindings::S_IFLNK,
        };
        // SAFETY: By the type invariants the inode is new and exclusively ours.
        unsafe {
            let mode = (fmt as u16 | (params.mode & 0o7777)) as _;
            match params.owner {
                Owner::Ids { uid, gid } => {
                    (*ptr).i_mode = mode;
                    bindings::i_uid_write(ptr, uid);
                    bindings::i_gid_write(ptr, gid);
                }
                Owner::Creator { idmap, dir } => {
                    bindings::inode_init_owner(idmap.0.get(), ptr, dir.as_ptr(), mode);
                }
            }
            bindings::set_nlink(ptr, params.nlink);
            bindings::i_size_write(ptr, params.size);
            (*ptr).i_blocks = params.blocks;
            bindings::inode_set_atime(ptr, params.atime.secs, params.atime.nsecs as _);
            bindings::inode_set_mtime(ptr, params.mtime.secs, params.mtime.nsecs as _);
            bindings::inode_set_ctime(ptr, params.ctime.secs, params.ctime.nsecs as _);
            if params.typ == Type::Lnk {
                // The target is read with `page_get_link()`, which needs lowmem pages.
                (*ptr).i_op = &bindings::page_symlink_inode_operations;
                bindings::inode_nohighmem(ptr);
            }
            if let Some(iops) = this.iops {
                (*ptr).i_op = iops;
            }
            if let Some(aops) = this.aops {
                (*(*ptr).i_mapping).a_ops = aops;
            }
            if let Some(fops) = this.fops {
                (*ptr).__bindgen_anon_3.i_fop = fops;
            }
            bindings::unlock_new_inode(ptr);
        }
        // SAFETY: `this` is neither used nor dropped again (it is a `ManuallyDrop`, so
        // `New::drop` does not run): the inode reference moves to the caller.
        Ok(unsafe { ManuallyDrop::take(&mut this.inode) })
    }
}

impl<T: FileSystem> Drop for New<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the inode is new, locked and ours, and we own its
        // reference, which `iget_failed` drops.
        unsafe { bindings::iget_failed(self.inode.as_ptr()) };
    }
}

/// Inode operations: C's `struct inode_operations`.
#[vtable]
pub trait Operations {
    /// The file system type these operations belong to.
    type FileSystem: FileSystem;

    /// Looks `dentry`'s name up in directory `parent`.
    ///
    /// Called with `parent` locked (shared). Returns the result of
    /// [`dentry::Unhashed::splice_alias`], called with the inode found or `None` for a name
    /// that does not exist.
    fn lookup(
        _parent: &INode<Self::FileSystem>,
        _dentry: dentry::Unhashed<'_, Self::FileSystem>,
        _flags: u32,
    ) -> Result<Option<ARef<dentry::DEntry<Self::FileSystem>>>> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Creates a regular file for the negative dentry `dentry` in directory `dir`
    /// (`->create`), called with `dir` locked. On success the file system has instantiated
    /// the dentry ([`dentry::DEntry::instantiate`]).
    fn create(
        _idmap: &MntIdmap,
        _dir: &INode<Self::FileSystem>,
        _dentry: &dentry::DEntry<Self::FileSystem>,
        _mode: u16,
    ) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Changes the attributes of `dentry`'s inode (`->setattr`). Implementations check
    /// what they support, then call [`setattr_apply`] for the generic checks and changes.
    fn setattr(
        _idmap: &MntIdmap,
        _dentry: &dentry::DEntry<Self::FileSystem>,
        _attr: &Attr,
    ) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Removes the entry `dentry` from directory `dir` (`->unlink`), called with `dir` and the
    /// dentry's inode locked. The file system drops the inode's link count; the inode is
    /// evicted when its last reference goes.
    fn unlink(
        _dir: &INode<Self::FileSystem>,
        _dentry: &dentry::DEntry<Self::FileSystem>,
    ) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// An inode operations table for file system type `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::inode_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T>>() -> Self {
        Self(&OpsTable::<U>::TABLE, PhantomData)
    }
}

struct OpsTable<U>(PhantomData<U>);

impl<U: Operations> OpsTable<U> {
    const TABLE: bindings::inode_operations = bindings::inode_operations {
        lookup: if U::HAS_LOOKUP {
            Some(lookup::<U>)
        } else {
            None
        },
        create: if U::HAS_CREATE {
            Some(create::<U>)
        } else {
            None
        },
        unlink: if U::HAS_UNLINK {
            Some(unlink::<U>)
        } else {
            None
        },
        setattr: if U::HAS_SETATTR {
            Some(setattr::<U>)
        } else {
            None
        },
        // SAFETY: All-zeroes (no operation) is valid for the remaining fields.
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };
}

/// # Safety
///
/// Called by the VFS with a valid, locked directory inode of a file system of type
/// `U::FileSystem` and a valid, unhashed dentry whose parent is that directory.
unsafe extern "C" fn lookup<U: Operations>(
    parent: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    flags: c_uint,
) -> *mut bindings::dentry {
    // SAFETY: Per the function's safety requirements the inode is valid and initialised, and
    // the VFS holds a reference for the duration of the call.
    let parent = unsafe { INode::from_raw(parent) };
    // SAFETY: Per the function's safety requirements the dentry is valid and unhashed.
    let dentry = unsafe { dentry::Unhashed::from_raw(dentry) };
    match U::lookup(parent, dentry, flags) {
        Err(e) => e.to_ptr(),
        Ok(None) => ptr::null_mut(),
        Ok(Some(d)) => ARef::into_raw(d).as_ptr().cast(),
    }
}

/// # Safety
///
/// Called by the VFS with a valid idmap, a valid, locked directory inode of file system type
/// `U::FileSystem` and a valid negative dentry in it.
unsafe extern "C" fn create<U: Operations>(
    idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements all three are valid for the call, and
        // the VFS holds references on the directory and the dentry.
        let (idmap, dir, dentry) = unsafe {
            (
                MntIdmap::from_raw(idmap),
                INode::from_raw(dir),
                dentry::DEntry::from_raw(dentry),
            )
        };
        U::create(idmap, dir, dentry, mode as u16)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the VFS with a valid, locked directory inode of file system type `U::FileSystem`
/// and a valid positive dentry in it whose inode is locked.
unsafe extern "C" fn unlink<U: Operations>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements both are valid and referenced.
        let (dir, dentry) = unsafe { (INode::from_raw(dir), dentry::DEntry::from_raw(dentry)) };
        U::unlink(dir, dentry)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the VFS (`notify_change()`) with a valid idmap, a valid dentry of file system type
/// `U::FileSystem` whose inode is locked, and a valid attribute change.
unsafe extern "C" fn setattr<U: Operations>(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    attr: *mut bindings::iattr,
) -> c_int {
    from_result(|| {
        // SAFETY: Per the function's safety requirements.
        let (idmap, dentry, attr) = unsafe {
            (
                MntIdmap::from_raw(idmap),
                dentry::DEntry::from_raw(dentry),
                &*attr.cast::<Attr>(),
            )
        };
        U::setattr(idmap, dentry, attr)?;
        Ok(0)
    })
}

/// The generic part of `setattr` for attribute changes other than the size: checks
/// permissions (`setattr_prepare()`), copies the new mode, owner and times into the inode
/// (`setattr_copy()`) and marks it dirty. Fails with `EINVAL` for a size change, which the file
/// system must handle itself.
pub fn setattr_apply<T: FileSystem>(
    idmap: &MntIdmap,
    dentry: &dentry::DEntry<T>,
    attr: &Attr,
) -> Result {
    if attr.size().is_some() {
        return Err(EINVAL);
    }
    let inode = dentry.inode().ok_or(ENOENT)?;
    // SAFETY: All three are valid for the duration of the `setattr` call that gave them, with
    // the inode locked by the VFS.
    unsafe {
        to_result(bindings::setattr_prepare(
            idmap.0.get(),
            dentry.as_ptr(),
            attr.0.get(),
        ))?;
        bindings::setattr_copy(idmap.0.get(), inode.as_ptr(), attr.0.get());
    }
    inode.mark_dirty();
    Ok(())
}

/// Allocates a new inode numbered `ino` in `sb` and hashes it (`new_inode()`,
/// `insert_inode_locked()`): the result is locked until [`New::init`].
///
/// Fails with `EBUSY` if an inode with that number is still in the inode cache (one being
/// evicted, for instance).
pub(crate) fn new_inode<T: FileSystem>(sb: &SuperBlock<T>, ino: u64) -> Result<New<T>> {
    // SAFETY: The super block is valid.
    let ptr = unsafe { bindings::new_inode(sb.as_ptr()) };
    if ptr.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `new_inode` returned a valid inode with a reference we own.
    let aref = unsafe { ARef::from_raw(ptr::NonNull::new_unchecked(ptr.cast::<INode<T>>())) };
    // SAFETY: The inode is new and not hashed: only we use it.
    unsafe { (*ptr).i_ino = ino as _ };
    // SAFETY: As above; on success the inode is hashed with `I_NEW` set.
    if unsafe { bindings::insert_inode_locked(ptr) } != 0 {
        // Not hashed: the reference drops it as a plain new inode.
        drop(aref);
        return Err(EBUSY);
    }
    // INVARIANT: The inode is new, locked (`I_NEW`) and only ours to initialise.
    Ok(New {
        inode: ManuallyDrop::new(aref),
        iops: None,
        fops: None,
        aops: None,
    })
}

/// # Safety
///
/// Called by the VFS (`alloc_inode()`) with a valid super block of file system type `T`.
pub(crate) unsafe extern "C" fn alloc_inode<T: FileSystem>(
    _sb: *mut bindings::super_block,
) -> *mut bindings::inode {
    let Ok(outer) = KBox::new(
        WithData::<T> {
            data: MaybeUninit::uninit(),
            data_init: false,
            inode: Opaque::uninit(),
        },
        GFP_KERNEL,
    ) else {
        return ptr::null_mut();
    };
    let outer = KBox::into_raw(outer);
    // SAFETY: `outer` is a valid allocation; its inode is initialised once, as a slab
    // constructor would, before `alloc_inode()` initialises the rest.
    unsafe {
        let inode = (*outer).inode.get();
        bindings::inode_init_once(inode);
        inode
    }
}

/// # Safety
///
/// Called by the VFS with a valid inode of file system type `T` that nothing uses any more.
pub(crate) unsafe extern "C" fn destroy_inode<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: Every inode of this file system type was allocated by `alloc_inode` inside a
    // `WithData<T>`, and nothing else uses it now.
    unsafe {
        let outer = with_data::<T>(inode);
        if (*outer).data_init {
            (*outer).data_init = false;
            (*outer).data.assume_init_drop();
        }
    }
}

/// # Safety
///
/// Called by the VFS, after an RCU grace period, with an inode of file system type `T` that
/// has been destroyed.
pub(crate) unsafe extern "C" fn free_inode<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: The inode was allocated by `alloc_inode` inside a `KBox<WithData<T>>` and is
    // not used any more; its data was dropped by `destroy_inode`.
    drop(unsafe { KBox::from_raw(with_data::<T>(inode)) });
}
