// SPDX-License-Identifier: GPL-2.0

//! Directory entries.
//!
//! C header: [`include/linux/dcache.h`](srctree/include/linux/dcache.h)

use super::{inode::INode, FileSystem};
use crate::{
    bindings,
    error::from_err_ptr,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::{marker::PhantomData, ptr};

/// A directory entry of a file system of type `T`: C's `struct dentry`.
///
/// # Invariants
///
/// The wrapped dentry is valid while a reference is held (every `&DEntry` and `ARef<DEntry>`
/// guarantees one) and belongs to a file system of type `T`.
#[repr(transparent)]
pub struct DEntry<T: FileSystem>(Opaque<bindings::dentry>, PhantomData<T>);

// SAFETY: The type invariants guarantee that `DEntry` is always ref-counted.
unsafe impl<T: FileSystem> AlwaysRefCounted for DEntry<T> {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the refcount is nonzero.
        unsafe { bindings::dget(self.0.get()) };
    }

    unsafe fn dec_ref(obj: ptr::NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the refcount is nonzero.
        unsafe { bindings::dput(obj.cast().as_ptr()) }
    }
}

impl<T: FileSystem> DEntry<T> {
    /// Creates a reference to a dentry from a pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid dentry of a file system of type `T` that stays referenced
    /// for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: `DEntry` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer to the C dentry.
    pub(crate) fn as_ptr(&self) -> *mut bindings::dentry {
        self.0.get()
    }

    /// The super block of the file system the dentry belongs to.
    pub fn super_block(&self) -> &super::sb::SuperBlock<T> {
        // SAFETY: By the type invariants the dentry is valid; its super block is set up
        // (dentries exist only after `fill_super`) and outlives it.
        unsafe { super::sb::SuperBlock::from_raw((*self.0.get()).d_sb) }
    }
}

/// The root dentry of a new mount, made by [`Root::try_new`] in
/// [`FileSystem::init_root`].
///
/// # Invariants
///
/// `0` is a valid root dentry (`d_make_root()`) with a reference owned by this object.
pub struct Root<T: FileSystem>(ptr::NonNull<bindings::dentry>, PhantomData<T>);

impl<T: FileSystem> Root<T> {
    /// Makes the root dentry of the file system from its root directory inode.
    pub fn try_new(inode: ARef<INode<T>>) -> Result<Self> {
        // SAFETY: `d_make_root` takes over the inode reference, also when it fails.
        let ptr = unsafe { bindings::d_make_root(ARef::into_raw(inode).as_ptr().cast()) };
        // INVARIANT: A non-null result is a new root dentry with a reference we own.
        ptr::NonNull::new(ptr)
            .map(|p| Self(p, PhantomData))
            .ok_or(ENOMEM)
    }

    /// Gives the reference to the caller (who stores it in `sb->s_root`).
    pub(crate) fn into_raw(self) -> *mut bindings::dentry {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl<T: FileSystem> Drop for Root<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own a reference.
        unsafe { bindings::dput(self.0.as_ptr()) };
    }
}

/// A dentry being looked up: not hashed yet, with no inode.
///
/// # Invariants
///
/// `0` is a valid, unhashed dentry of a file system of type `T`, passed to `->lookup` and
/// referenced by the VFS for `'a`.
pub struct Unhashed<'a, T: FileSystem>(&'a DEntry<T>);

impl<'a, T: FileSystem> Unhashed<'a, T> {
    /// # Safety
    ///
    /// `ptr` must be the valid, unhashed dentry passed to `->lookup`, referenced for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::dentry) -> Self {
        // SAFETY: Per the safety requirements.
        Self(unsafe { DEntry::from_raw(ptr) })
    }

    /// The name being looked up.
    pub fn name(&self) -> &[u8] {
        let d = self.0 .0.get();
        // SAFETY: By the type invariants the dentry is valid; the name of a dentry being
        // looked up is stable (its parent is locked).
        unsafe {
            let qstr = &(*d).__bindgen_anon_1.d_name;
            core::slice::from_raw_parts(
                qstr.name,
                qstr.__bindgen_anon_1.__bindgen_anon_1.len as usize,
            )
        }
    }

    /// Attaches `inode` (`None` for a name that does not exist) to the dentry, or returns an
    /// existing alias of a directory inode instead (`d_splice_alias()`).
    pub fn splice_alias(self, inode: Option<ARef<INode<T>>>) -> Result<Option<ARef<DEntry<T>>>> {
        let inode_ptr = inode.map_or(ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast());
        // SAFETY: By the type invariants the dentry is valid and unhashed; `d_splice_alias`
        // takes over the inode reference.
        let ret = from_err_ptr(unsafe { bindings::d_splice_alias(inode_ptr, self.0 .0.get()) })?;
        // SAFETY: A non-null result is a valid dentry of this file system with a reference we
        // own.
        Ok(ptr::NonNull::new(ret).map(|p| unsafe { ARef::from_raw(p.cast()) }))
    }
}

impl<T: FileSystem> DEntry<T> {
    /// The name of the dentry.
    ///
    /// Only stable while the parent directory is locked, as it is in the directory
    /// operations that receive a dentry (`create`, `unlink`).
    pub fn name(&self) -> &[u8] {
        let d = self.0.get();
        // SAFETY: By the type invariants the dentry is valid; callers hold the parent's lock,
        // so the name does not change under the returned slice's lifetime (tied to `self`).
        unsafe {
            let qstr = &(*d).__bindgen_anon_1.d_name;
            core::slice::from_raw_parts(
                qstr.name,
                qstr.__bindgen_anon_1.__bindgen_anon_1.len as usize,
            )
        }
    }

    /// The inode of a positive dentry (`d_inode()`), or `None` for a negative one.
    pub fn inode(&self) -> Option<&INode<T>> {
        // SAFETY: By the type invariants the dentry is valid; the inode of a positive dentry
        // is referenced by it for as long as the dentry is.
        let ptr = unsafe { (*self.0.get()).d_inode };
        // SAFETY: A non-null `d_inode` is an initialised inode of this file system.
        (!ptr.is_null()).then(|| unsafe { INode::from_raw(ptr) })
    }

    /// Attaches `inode` to this negative dentry, making it positive (`d_instantiate()`).
    ///
    /// Used by `create` once the new inode is initialised; the dentry takes the reference.
    pub fn instantiate(&self, inode: ARef<INode<T>>) {
        // SAFETY: By the type invariants the dentry is valid; `d_instantiate` takes over the
        // inode reference. The VFS calls `create` with a negative dentry, the only kind this is
        // used on.
        unsafe { bindings::d_instantiate(self.0.get(), ARef::into_raw(inode).as_ptr().cast()) };
    }
}
