// SPDX-License-Identifier: GPL-2.0

//! tinyfs: a small block-backed read-write filesystem.
//!
//! This part of the series mounts a tinyfs image read-only: it validates the super block
//! against the device, reads inodes, directories, file data (through the page cache) and
//! symbolic links, and answers `statfs()`. Writing and the O_DIRECT path come in later
//! parts. See
//! `Documentation/filesystems/tinyfs.rst`.
//!
//! The on-disk format is defined in `layout.rs`, shared with the userspace tools. The module
//! has no `unsafe` code: everything it needs from the kernel comes from `kernel::fs`.

use kernel::{
    crc32c::crc32c,
    fs::{
        self, address_space,
        buffer::{self, GetBlock},
        dentry::{self, DEntry},
        folio,
        fops::{self, DirEmitter, DirEntryType},
        inode::{self, INode},
        sb::{self, SuperBlock},
    },
    prelude::*,
    sync::aref::ARef,
};

pub mod layout;

module! {
    type: TinyFsModule,
    name: "tinyfs",
    authors: ["tinyfs developers"],
    description: "tinyfs: a small block-backed read-write filesystem",
    license: "GPL",
}

#[pin_data(PinnedDrop)]
struct TinyFsModule {
    #[pin]
    _fs: fs::Registration<TinyFs>,
}

impl kernel::InPlaceModule for TinyFsModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _fs <- fs::Registration::new(module),
        })
        .pin_chain(|_| {
            pr_info!("module loaded\n");
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for TinyFsModule {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("module unloaded\n");
    }
}

/// The tinyfs file system type.
struct TinyFs;

/// What tinyfs keeps of a mounted file system.
#[pin_data]
struct SbInfo {
    /// The super block as read at mount time.
    disk: layout::SuperBlock,
}

impl SbInfo {
    fn geometry(&self) -> &layout::Geometry {
        &self.disk.geometry
    }
}

/// What tinyfs keeps in each in-memory inode.
#[pin_data]
struct InodeInfo {
    /// The inode as read from the inode table.
    disk: layout::Inode,
}

/// Refuses an image: logs why, with the device, and returns `EUCLEAN` for corruption or
/// `EINVAL` for an image this code cannot use.
fn refuse(sb: &SuperBlock<TinyFs, impl sb::State>, e: layout::Error) -> Error {
    // `layout.rs` is shared with userspace: it implements `core::fmt::Display`.
    pr_err!(
        "{}: {}\n",
        sb.id().to_str().unwrap_or("?"),
        format_args!("{e}")
    );
    if e.is_corruption() {
        EUCLEAN
    } else {
        EINVAL
    }
}

/// Reads metadata block `nr` and checks its checksum (with the kernel's `crc32c()`, which
/// agrees with the software one in `layout.rs`: both are tested against the standard check
/// value).
fn read_meta(
    sb: &SuperBlock<TinyFs>,
    nr: u64,
    what: &'static str,
) -> Result<ARef<fs::buffer::Head>> {
    let bh = sb.bread(nr)?;
    if !layout::block_csum_ok_with(crc32c, bh.data()) {
        return Err(refuse(sb, layout::Error::BadChecksum(what)));
    }
    Ok(bh)
}

impl fs::FileSystem for TinyFs {
    type Data = SbInfo;
    type INodeData = InodeInfo;
    type SuperOperations = Self;
    const NAME: &'static CStr = c"tinyfs";

    fn fill_super(sb: &mut SuperBlock<Self, sb::New>) -> Result<impl PinInit<SbInfo, Error>> {
        // The super block area is the first 1 KiB, whatever the file system's block size.
        let dev_bs = sb.set_min_block_size(layout::SUPER_SIZE as u32)?;
        let disk = {
            let bh = sb.bread(0)?;
            let raw = bh.data().get(..layout::SUPER_SIZE).ok_or(EINVAL)?;
            layout::SuperBlock::decode_with(crc32c, raw).map_err(|e| refuse(sb, e))?
        };
        let g = disk.geometry;
        let bs = g.block_size() as u32;
        if bs < dev_bs {
            pr_err!(
                "{}: block size {} is smaller than the device's sectors ({})\n",
                sb.id().to_str().unwrap_or("?"),
                bs,
                dev_bs
            );
            return Err(EINVAL);
        }
        let need = g.blocks_count * u64::from(bs);
        if need > sb.device_size() {
            pr_err!(
                "{}: the file system needs {} bytes but the device has only {}\n",
                sb.id().to_str().unwrap_or("?"),
                need,
                sb.device_size()
            );
            return Err(EINVAL);
        }
        sb.set_block_size(bs)?;
        sb.set_magic(layout::MAGIC.into());
        sb.set_max_bytes(i64::try_from(layout::max_file_size(&g)).unwrap_or(i64::MAX));
        // Writing is not implemented yet (Documentation/filesystems/tinyfs.rst, "Status").
        sb.set_read_only();
        Ok(try_pin_init!(SbInfo { disk }))
    }

    fn init_root(sb: &SuperBlock<Self>) -> Result<dentry::Root<Self>> {
        let root = iget(sb, layout::ROOT_INO)?;
        if root.data().disk.mode & layout::S_IFMT != layout::S_IFDIR {
            return Err(refuse(
                sb,
                layout::Error::Corrupt("root inode (not a directory)"),
            ));
        }
        dentry::Root::try_new(root)
    }
}

const DIR_IOPS: inode::Ops<TinyFs> = inode::Ops::new::<Dir>();
const DIR_FOPS: fops::Ops<TinyFs> = fops::Ops::new::<Dir>();
const AOPS: address_space::Ops<TinyFs> = address_space::Ops::new::<TinyFs>();

fn to_time(t: layout::Timestamp) -> inode::Time {
    inode::Time {
        secs: t.sec,
        nsecs: t.nsec,
    }
}

/// Gets inode `ino`, from the inode cache or from the disk.
fn iget(sb: &SuperBlock<TinyFs>, ino: u32) -> Result<ARef<INode<TinyFs>>> {
    let g = sb.data().geometry();
    let mut new = match sb.iget(ino.into())? {
        inode::Cached::Found(inode) => return Ok(inode),
        inode::Cached::New(new) => new,
    };
    let pos = g.inode_pos(ino).map_err(|e| refuse(sb, e))?;
    let bh = read_meta(sb, pos.block, "inode table block")?;
    let raw = layout::inode_record(bh.data(), pos.offset).map_err(|e| refuse(sb, e))?;
    if layout::Inode::is_free_record(raw) {
        return Err(refuse(
            sb,
            layout::Error::Corrupt("directory entry (names a free inode)"),
        ));
    }
    let disk = layout::Inode::decode(g, raw).map_err(|e| refuse(sb, e))?;
    let typ = match disk.mode & layout::S_IFMT {
        layout::S_IFDIR => {
            new.set_iops(DIR_IOPS).set_fops(DIR_FOPS);
            inode::Type::Dir
        }
        layout::S_IFREG => {
            new.set_aops(AOPS).set_fops(fops::Ops::generic_read_only());
            inode::Type::Reg
        }
        // `Inode::decode` accepts no other type.
        _ => {
            new.set_aops(AOPS);
            inode::Type::Lnk
        }
    };
    new.init(inode::Params {
        typ,
        mode: disk.mode & layout::S_IALLUGO,
        size: i64::try_from(disk.size).map_err(|_| EUCLEAN)?,
        nlink: disk.links.into(),
        uid: disk.uid,
        gid: disk.gid,
        blocks: u64::from(disk.blocks) << (g.block_size_bits - 9),
        atime: to_time(disk.atime),
        mtime: to_time(disk.mtime),
        ctime: to_time(disk.ctime),
        value: try_pin_init!(InodeInfo { disk }),
    })
}

/// The device block holding block `n` of `inode`'s data, or 0 for a hole.
fn map_block(inode: &INode<TinyFs>, n: u64) -> Result<u32> {
    let sb = inode.super_block();
    let g = sb.data().geometry();
    let path = layout::block_path(g, n).map_err(|e| refuse(sb, e))?;
    let mut ptr = inode.data().disk.map_root(&path);
    for &slot in path.indirect_slots() {
        if ptr == 0 {
            break;
        }
        let bh = read_meta(sb, ptr.into(), "indirect block")?;
        ptr = layout::indirect_get(g, bh.data(), slot).map_err(|e| refuse(sb, e))?;
    }
    Ok(ptr)
}

/// Reads block `n` of directory `dir` (directories have no holes).
fn dir_block(dir: &INode<TinyFs>, n: u64) -> Result<ARef<fs::buffer::Head>> {
    let sb = dir.super_block();
    match map_block(dir, n)? {
        0 => Err(refuse(sb, layout::Error::Corrupt("directory (hole)"))),
        ptr => read_meta(sb, ptr.into(), "directory block"),
    }
}

/// Directory operations.
struct Dir;

#[vtable]
impl inode::Operations for Dir {
    type FileSystem = TinyFs;

    fn lookup(
        parent: &INode<TinyFs>,
        dentry: dentry::Unhashed<'_, TinyFs>,
        _flags: u32,
    ) -> Result<Option<ARef<DEntry<TinyFs>>>> {
        let name = dentry.name();
        if name.len() > layout::MAX_NAME_LEN {
            return Err(ENAMETOOLONG);
        }
        let sb = parent.super_block();
        let g = sb.data().geometry();
        let blocks = (parent.size() as u64) >> g.block_size_bits;
        for n in 0..blocks {
            let bh = dir_block(parent, n)?;
            let found = layout::dir_find(g, bh.data(), n == 0, name).map_err(|e| refuse(sb, e))?;
            if let Some(e) = found {
                let inode = iget(sb, e.inode)?;
                return dentry.splice_alias(Some(inode));
            }
        }
        dentry.splice_alias(None)
    }
}

#[vtable]
impl fops::Operations for Dir {
    type FileSystem = TinyFs;

    fn read_dir(
        _file: &fs::LocalFile,
        dir: &INode<TinyFs>,
        emitter: &mut DirEmitter<'_>,
    ) -> Result {
        let sb = dir.super_block();
        let g = sb.data().geometry();
        let bs = g.block_size() as u64;
        let pos = u64::try_from(emitter.pos()).map_err(|_| EINVAL)?;
        let size = dir.size() as u64;
        let mut n = pos / bs;
        while n * bs < size {
            let bh = dir_block(dir, n)?;
            for e in layout::DirIter::new(g, bh.data(), n == 0) {
                let e = e.map_err(|e| refuse(sb, e))?;
                let at = n * bs + e.offset as u64;
                if at < pos || !e.is_used() {
                    continue;
                }
                let etype = match e.file_type {
                    layout::FT_DIR => DirEntryType::Dir,
                    layout::FT_REG_FILE => DirEntryType::Reg,
                    layout::FT_SYMLINK => DirEntryType::Lnk,
                    _ => DirEntryType::Unknown,
                };
                // Move the position past this record, from wherever it is now.
                let next = (at + e.rec_len as u64) as i64;
                if !emitter.emit(next - emitter.pos(), e.name, e.inode.into(), etype) {
                    return Ok(());
                }
            }
            n += 1;
        }
        Ok(())
    }
}

impl GetBlock for TinyFs {
    type FileSystem = TinyFs;

    fn get_block(
        inode: &INode<TinyFs>,
        block: u64,
        create: bool,
    ) -> Result<Option<buffer::Mapping>> {
        if create {
            // Every mount is read-only for now.
            return Err(EROFS);
        }
        Ok(match map_block(inode, block)? {
            0 => None,
            ptr => Some(buffer::Mapping {
                block: ptr.into(),
                new: false,
            }),
        })
    }
}

/// File data moves between the page cache and the device with `mpage`, through the block map.
#[vtable]
impl address_space::Operations for TinyFs {
    type FileSystem = TinyFs;

    fn read_folio(_file: Option<&fs::LocalFile>, folio: folio::Locked<'_>) -> Result {
        buffer::mpage_read_folio::<TinyFs>(folio)
    }

    fn readahead(rac: &mut address_space::ReadaheadControl) {
        buffer::mpage_readahead::<TinyFs>(rac)
    }
}

#[vtable]
impl sb::Operations for TinyFs {
    type FileSystem = TinyFs;

    fn statfs(dentry: &DEntry<TinyFs>, stat: &mut sb::Stat) -> Result {
        let d = &dentry.super_block().data().disk;
        let uuid = d.uuid;
        let lo = u64::from_le_bytes([
            uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
        ]);
        let hi = u64::from_le_bytes([
            uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15],
        ]);
        *stat = sb::Stat {
            magic: layout::MAGIC.into(),
            namelen: layout::MAX_NAME_LEN as u64,
            bsize: d.geometry.block_size() as u64,
            blocks: d.geometry.blocks_count,
            bfree: d.free_blocks,
            bavail: d.free_blocks,
            files: d.geometry.inodes_count.into(),
            ffree: d.free_inodes.into(),
            fsid: lo ^ hi,
        };
        Ok(())
    }
}
