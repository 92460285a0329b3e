// SPDX-License-Identifier: GPL-2.0

//! tinyfs: a small block-backed read-write filesystem.
//!
//! It validates the super block against the device, looks up and lists directories, creates,
//! writes (through the page cache, with ordered data: data reaches the disk before the
//! metadata that points at it), reads and removes regular files, follows symbolic links and
//! answers `statfs()`. `O_DIRECT` writes go through [`direct_write`], which falls back to the
//! page cache when writeback holds the range's buffers (the 2.6.27 fix "VFS: fix dio write
//! returning EIO when try_to_release_page fails"), and counts what it does in debugfs. See
//! `Documentation/filesystems/tinyfs.rst`.
//!
//! The on-disk format is defined in `layout.rs`, shared with the userspace tools. The module
//! has no `unsafe` code: everything it needs from the kernel comes from `kernel::fs`.

use kernel::{
    crc32c::crc32c,
    debugfs,
    fs::{
        self,
        address_space::{self, DirectIter},
        buffer::{self, GetBlock},
        dentry::{self, DEntry},
        folio,
        fops::{self, DirEmitter, DirEntryType},
        inode::{self, INode},
        sb::{self, SuperBlock},
        Kiocb,
    },
    iov::IovIterSource,
    page::PAGE_SHIFT,
    pr_warn_once,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        new_mutex, Mutex,
    },
    time::{delay::fsleep, Delta},
};

pub mod layout;

module! {
    type: TinyFsModule,
    name: "tinyfs",
    authors: ["tinyfs developers"],
    description: "tinyfs: a small block-backed read-write filesystem",
    license: "GPL",
    params: {
        ordered_data: bool {
            default: true,
            description: "Write data before the metadata that points at it (debugging aid: \
                          false writes block pointers to the disk as soon as blocks are \
                          allocated, the negative control of the crash test)",
        },
        debug_writeback_hold_ms: u32 {
            default: 0,
            description: "Fault injection: writeback keeps its references on a folio's \
                          buffers this many milliseconds after the folio is unlocked, so \
                          that O_DIRECT writes meet busy buffers (default 0)",
        },
        dio_fallback: bool {
            default: true,
            description: "Fall back to a buffered write when the page cache of an O_DIRECT \
                          write's range cannot be invalidated (debugging aid: false returns \
                          EIO instead, as Linux 2.6.27-rc1 did)",
        },
    },
}

/// Whether data is ordered before metadata (the default; see `ordered_data`).
fn ordered() -> bool {
    module_parameters::ordered_data.value()
}

/// How long writeback holds a folio's buffers after unlocking it (0: not at all).
fn writeback_hold_ms() -> u32 {
    module_parameters::debug_writeback_hold_ms.value()
}

/// Whether an O_DIRECT write falls back to the page cache on `EBUSY` (the default).
fn dio_fallback() -> bool {
    module_parameters::dio_fallback.value()
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
///
/// Lock order: an inode's [`InodeInfo::state`], then [`SbInfo::alloc`], then
/// [`SbInfo::itable`], then buffer locks.
#[pin_data]
struct SbInfo {
    /// The super block as read at mount time; its free counts live in `alloc`.
    disk: layout::SuperBlock,
    /// The allocation bitmaps' counters; held while a bitmap block is changed.
    #[pin]
    alloc: Mutex<Alloc>,
    /// Held while a record of the inode table is changed: several inodes share a block and
    /// its checksum.
    #[pin]
    itable: Mutex<()>,
    /// Counters of the direct I/O path, published in `/sys/kernel/debug/tinyfs/<device>/`.
    stats: Pin<KBox<debugfs::Scope<Stats>>>,
}

/// What the direct I/O path of a mount did; see Documentation/filesystems/tinyfs.rst,
/// "Direct I/O".
struct Stats {
    /// `O_DIRECT` writes done with direct I/O.
    direct_writes: Atomic<u64>,
    /// Bytes those wrote (for asynchronous ones: submitted).
    direct_write_bytes: Atomic<u64>,
    /// `O_DIRECT` writes (or their remainders) done through the page cache instead.
    buffered_fallbacks: Atomic<u64>,
    /// `O_DIRECT` reads.
    direct_reads: Atomic<u64>,
    /// Folios whose buffers writeback held for `debug_writeback_hold_ms`.
    writeback_holds: Atomic<u64>,
}

impl Stats {
    fn new() -> impl PinInit<Self, Error> {
        try_init!(Self {
            direct_writes: Atomic::new(0),
            direct_write_bytes: Atomic::new(0),
            buffered_fallbacks: Atomic::new(0),
            direct_reads: Atomic::new(0),
            writeback_holds: Atomic::new(0),
        }? Error)
    }
}

/// Adds `n` to counter `c`.
fn count(c: &Atomic<u64>, n: u64) {
    c.add(n, Relaxed);
}

/// Free counts, kept up to date with the bitmaps and written by `sync_fs`.
struct Alloc {
    free_blocks: u64,
    free_inodes: u32,
}

impl SbInfo {
    fn geometry(&self) -> &layout::Geometry {
        &self.disk.geometry
    }
}

/// What tinyfs keeps in each in-memory inode.
#[pin_data]
struct InodeInfo {
    #[pin]
    state: Mutex<InodeState>,
}

/// An inode's block map and fields as they will next be written.
///
/// Ordered data: a block allocated for new data is only recorded in `pending`; `write_inode`
/// moves the pending pointers into the inode and its indirect blocks after the data has
/// reached the disk. See Documentation/filesystems/tinyfs.rst, "Ordered data".
struct InodeState {
    /// The inode as it is (or will next be) on disk.
    disk: layout::Inode,
    /// Blocks allocated but not yet recorded on disk: (file block, device block), sorted.
    pending: KVec<(u64, u32)>,
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

/// Stores the checksum of a metadata block in its last bytes.
fn seal(block: &mut [u8]) {
    layout::set_block_csum_with(crc32c, block);
}

/// Changes metadata block `bh` with `f` under the buffer lock, reseals and dirties it.
fn change_meta<R>(
    bh: &fs::buffer::Head,
    f: impl FnOnce(&mut [u8]) -> core::result::Result<R, layout::Error>,
) -> core::result::Result<R, layout::Error> {
    let r = {
        let mut locked = bh.lock();
        let data = locked.data_mut();
        let r = f(data)?;
        seal(data);
        r
    };
    bh.mark_dirty();
    Ok(r)
}

/// Counts the free items of a bitmap of `blocks` blocks from block `start`, checking each.
fn count_free(
    sb: &SuperBlock<TinyFs, sb::New>,
    start: u64,
    blocks: u32,
    check: impl Fn(u32, &[u8]) -> core::result::Result<(), layout::Error>,
) -> Result<u64> {
    let mut free = 0u64;
    for i in 0..blocks {
        let bh = sb.bread(start + u64::from(i))?;
        if !layout::block_csum_ok_with(crc32c, bh.data()) {
            return Err(refuse(sb, layout::Error::BadChecksum("bitmap block")));
        }
        check(i, bh.data()).map_err(|e| refuse(sb, e))?;
        free += u64::from(layout::bitmap_count_zeros(bh.data()));
    }
    Ok(free)
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
        if disk.feature_ro_compat & !layout::FEATURE_RO_COMPAT_SUPP != 0 && !sb.is_read_only() {
            pr_err!(
                "{}: unknown read-only features: mount read-only\n",
                sb.id().to_str().unwrap_or("?")
            );
            return Err(EROFS);
        }
        sb.set_block_size(bs)?;
        sb.set_magic(layout::MAGIC.into());
        sb.set_max_bytes(i64::try_from(layout::max_file_size(&g)).unwrap_or(i64::MAX));
        // The super block's free counts are only written by `sync_fs`: after a crash they
        // lag the bitmaps, which are the truth.
        let free_blocks = count_free(sb, g.block_bitmap_start, g.block_bitmap_blocks, |i, b| {
            g.check_block_bitmap(i, b)
        })?;
        let free_inodes = count_free(sb, g.inode_bitmap_start, g.inode_bitmap_blocks, |i, b| {
            g.check_inode_bitmap(i, b)
        })?;
        if free_blocks != disk.free_blocks || free_inodes != u64::from(disk.free_inodes) {
            pr_info!(
                "{}: free counts taken from the bitmaps (the file system was not unmounted cleanly)\n",
                sb.id().to_str().unwrap_or("?")
            );
        }
        let alloc = Alloc {
            free_blocks,
            free_inodes: u32::try_from(free_inodes).map_err(|_| EUCLEAN)?,
        };
        let stats = KBox::pin_init(
            sb.debugfs_dir().scope(Stats::new(), sb.id(), |s, dir| {
                dir.read_only_file(c"direct_writes", &s.direct_writes);
                dir.read_only_file(c"direct_write_bytes", &s.direct_write_bytes);
                dir.read_only_file(c"buffered_fallbacks", &s.buffered_fallbacks);
                dir.read_only_file(c"direct_reads", &s.direct_reads);
                dir.read_only_file(c"writeback_holds", &s.writeback_holds);
            }),
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(SbInfo {
            disk,
            alloc <- new_mutex!(alloc),
            itable <- new_mutex!(()),
            stats,
        }))
    }

    fn init_root(sb: &SuperBlock<Self>) -> Result<dentry::Root<Self>> {
        let root = iget(sb, layout::ROOT_INO)?;
        if root.data().state.lock().disk.mode & layout::S_IFMT != layout::S_IFDIR {
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
const FILE_IOPS: inode::Ops<TinyFs> = inode::Ops::new::<File>();
const FILE_FOPS: fops::Ops<TinyFs> = fops::Ops::new::<File>();
const AOPS: address_space::Ops<TinyFs> = address_space::Ops::new::<TinyFs>();

fn to_time(t: layout::Timestamp) -> inode::Time {
    inode::Time {
        secs: t.sec,
        nsecs: t.nsec,
    }
}

fn from_time(t: inode::Time) -> layout::Timestamp {
    layout::Timestamp {
        sec: t.secs,
        nsec: t.nsecs,
    }
}

/// Sets the operations of a new inode of type `mode & S_IFMT`.
fn set_ops(new: &mut inode::New<TinyFs>, mode: u16) -> inode::Type {
    match mode & layout::S_IFMT {
        layout::S_IFDIR => {
            new.set_iops(DIR_IOPS).set_fops(DIR_FOPS);
            inode::Type::Dir
        }
        layout::S_IFREG => {
            new.set_iops(FILE_IOPS).set_aops(AOPS).set_fops(FILE_FOPS);
            inode::Type::Reg
        }
        // `Inode::decode` accepts no other type.
        _ => {
            new.set_aops(AOPS);
            inode::Type::Lnk
        }
    }
}

fn inode_info(disk: layout::Inode) -> impl PinInit<InodeInfo, Error> {
    try_pin_init!(InodeInfo {
        state <- new_mutex!(InodeState {
            disk,
            pending: KVec::new(),
        }),
    })
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
    let typ = set_ops(&mut new, disk.mode);
    new.init(inode::Params {
        typ,
        mode: disk.mode & layout::S_IALLUGO,
        size: i64::try_from(disk.size).map_err(|_| EUCLEAN)?,
        nlink: disk.links.into(),
        owner: inode::Owner::Ids {
            uid: disk.uid,
            gid: disk.gid,
        },
        blocks: u64::from(disk.blocks) << (g.block_size_bits - 9),
        atime: to_time(disk.atime),
        mtime: to_time(disk.mtime),
        ctime: to_time(disk.ctime),
        value: inode_info(disk),
    })
}

/// The device block holding block `n` of the file whose state is `st`, or 0 for a hole.
fn map_locked(sb: &SuperBlock<TinyFs>, st: &InodeState, n: u64) -> Result<u32> {
    if let Ok(i) = st.pending.binary_search_by_key(&n, |&(f, _)| f) {
        return Ok(st.pending[i].1);
    }
    let g = sb.data().geometry();
    let path = layout::block_path(g, n).map_err(|e| refuse(sb, e))?;
    let mut ptr = st.disk.map_root(&path);
    for &slot in path.indirect_slots() {
        if ptr == 0 {
            break;
        }
        let bh = read_meta(sb, ptr.into(), "indirect block")?;
        ptr = layout::indirect_get(g, bh.data(), slot).map_err(|e| refuse(sb, e))?;
    }
    Ok(ptr)
}

/// The device block holding block `n` of `inode`'s data, or 0 for a hole.
fn map_block(inode: &INode<TinyFs>, n: u64) -> Result<u32> {
    map_locked(inode.super_block(), &inode.data().state.lock(), n)
}

/// Reads block `n` of directory `dir` (directories have no holes).
fn dir_block(dir: &INode<TinyFs>, n: u64) -> Result<ARef<fs::buffer::Head>> {
    let sb = dir.super_block();
    match map_block(dir, n)? {
        0 => Err(refuse(sb, layout::Error::Corrupt("directory (hole)"))),
        ptr => read_meta(sb, ptr.into(), "directory block"),
    }
}

/// Allocates a free item from a bitmap, starting the search at bit `goal`: returns its bit
/// number. `pos` maps a bit number to its bitmap block; `nbits` is the bitmap's length.
fn alloc_bit(
    sb: &SuperBlock<TinyFs>,
    start: u64,
    blocks: u32,
    nbits: u64,
    goal: u64,
) -> Result<Option<u64>> {
    let g = sb.data().geometry();
    let per = g.bits_per_bitmap_block();
    let goal = if goal < nbits { goal } else { 0 };
    let first = (goal / per) as u32;
    // Every bitmap block once from the goal on, then the goal's block again from its start.
    for k in 0..=blocks {
        let index = (first + k) % blocks;
        let from = if k == 0 { (goal % per) as u32 } else { 0 };
        let bh = read_meta(sb, start + u64::from(index), "bitmap block")?;
        let found = change_meta(&bh, |data| {
            Ok(match layout::bitmap_find_zero(data, from) {
                Some(bit) => {
                    layout::bitmap_set(data, bit)?;
                    Some(bit)
                }
                None => None,
            })
        })
        .map_err(|e| refuse(sb, e))?;
        if let Some(bit) = found {
            return Ok(Some(u64::from(index) * per + u64::from(bit)));
        }
    }
    Ok(None)
}

/// Clears bit `n` of a bitmap; complains if it was clear already.
fn free_bit(sb: &SuperBlock<TinyFs>, start: u64, n: u64) -> Result {
    let per = sb.data().geometry().bits_per_bitmap_block();
    let bh = read_meta(sb, start + n / per, "bitmap block")?;
    let was = change_meta(&bh, |data| layout::bitmap_clear(data, (n % per) as u32))
        .map_err(|e| refuse(sb, e))?;
    if !was {
        return Err(refuse(
            sb,
            layout::Error::Corrupt("bitmap (freeing a free item)"),
        ));
    }
    Ok(())
}

/// Allocates a data block, near `goal` if it is free.
fn alloc_block(sb: &SuperBlock<TinyFs>, goal: u64) -> Result<u32> {
    let d = sb.data();
    let g = d.geometry();
    let mut a = d.alloc.lock();
    if a.free_blocks == 0 {
        return Err(ENOSPC);
    }
    let goal = goal.max(g.data_start);
    let n = alloc_bit(
        sb,
        g.block_bitmap_start,
        g.block_bitmap_blocks,
        g.blocks_count,
        goal,
    )?
    .ok_or_else(|| refuse(sb, layout::Error::Corrupt("block bitmap (free count)")))?;
    if !g.is_data_block(n) {
        return Err(refuse(
            sb,
            layout::Error::Corrupt("block bitmap (metadata free)"),
        ));
    }
    a.free_blocks -= 1;
    Ok(n as u32)
}

/// Frees data block `n`.
fn free_block(sb: &SuperBlock<TinyFs>, n: u32) -> Result {
    let d = sb.data();
    let g = d.geometry();
    let mut a = d.alloc.lock();
    free_bit(sb, g.block_bitmap_start, n.into())?;
    a.free_blocks += 1;
    Ok(())
}

/// Allocates an inode number.
fn alloc_ino(sb: &SuperBlock<TinyFs>) -> Result<u32> {
    let d = sb.data();
    let g = d.geometry();
    let mut a = d.alloc.lock();
    if a.free_inodes == 0 {
        return Err(ENOSPC);
    }
    let bit = alloc_bit(
        sb,
        g.inode_bitmap_start,
        g.inode_bitmap_blocks,
        g.inodes_count.into(),
        0,
    )?
    .ok_or_else(|| refuse(sb, layout::Error::Corrupt("inode bitmap (free count)")))?;
    a.free_inodes -= 1;
    Ok(bit as u32 + 1)
}

/// Frees inode number `ino`.
fn free_ino(sb: &SuperBlock<TinyFs>, ino: u32) -> Result {
    let d = sb.data();
    let g = d.geometry();
    let mut a = d.alloc.lock();
    free_bit(sb, g.inode_bitmap_start, u64::from(ino - 1))?;
    a.free_inodes += 1;
    Ok(())
}

/// Writes `disk` as inode `ino`'s record into the inode table buffer; with `sync`, waits for
/// it to reach the disk.
fn store_inode(sb: &SuperBlock<TinyFs>, ino: u32, disk: &layout::Inode, sync: bool) -> Result {
    let g = sb.data().geometry();
    let pos = g.inode_pos(ino).map_err(|e| refuse(sb, e))?;
    let bh = read_meta(sb, pos.block, "inode table block")?;
    {
        let _itable = sb.data().itable.lock();
        change_meta(&bh, |data| {
            let rec = layout::inode_record_mut(data, pos.offset)?;
            disk.encode(rec);
            Ok(())
        })
        .map_err(|e| refuse(sb, e))?;
    }
    if sync {
        bh.sync()?;
    }
    Ok(())
}

/// Allocates a zeroed indirect block near `goal` and writes it to the disk before anything
/// points at it.
fn new_indirect(inode: &INode<TinyFs>, st: &mut InodeState, goal: u64) -> Result<u32> {
    let sb = inode.super_block();
    let g = sb.data().geometry();
    let n = alloc_block(sb, goal)?;
    let bh = fs::buffer::Head::get_new(sb, n.into())?;
    {
        let mut locked = bh.lock();
        layout::init_indirect_block(g, locked.data_mut()).map_err(|e| refuse(sb, e))?;
        seal(locked.data_mut());
        locked.set_uptodate();
    }
    bh.mark_dirty();
    bh.sync()?;
    st.disk.blocks += 1;
    inode.add_bytes(g.block_size() as i64);
    Ok(n)
}

/// Records data block `dblock` as block `n` of the file, in its inode or indirect blocks.
///
/// Called by `write_inode` once the data is on the disk. Every indirect block it creates is
/// zeroed and written before it is linked, so no pointer on the disk ever leads to a block
/// that holds anything but written data or valid pointers.
fn record_block(inode: &INode<TinyFs>, st: &mut InodeState, n: u64, dblock: u32) -> Result {
    let sb = inode.super_block();
    let g = sb.data().geometry();
    let path = layout::block_path(g, n).map_err(|e| refuse(sb, e))?;
    if path.levels == 0 {
        st.disk.direct[path.index[0] as usize] = dblock;
        return Ok(());
    }
    let level = usize::from(path.levels) - 1;
    let mut ptr = st.disk.indirect[level];
    if ptr == 0 {
        ptr = new_indirect(inode, st, dblock.into())?;
        st.disk.indirect[level] = ptr;
    }
    let slots = path.indirect_slots();
    for (i, &slot) in slots.iter().enumerate() {
        let bh = read_meta(sb, ptr.into(), "indirect block")?;
        let next = if i + 1 == slots.len() {
            dblock
        } else {
            match layout::indirect_get(g, bh.data(), slot).map_err(|e| refuse(sb, e))? {
                0 => new_indirect(inode, st, dblock.into())?,
                existing => {
                    ptr = existing;
                    continue;
                }
            }
        };
        change_meta(&bh, |data| layout::indirect_set(g, data, slot, next))
            .map_err(|e| refuse(sb, e))?;
        if !ordered() {
            bh.sync()?;
        }
        ptr = next;
    }
    Ok(())
}

/// Block `n` of a file, for allocation: the block after the file's previous one, if known.
fn goal_for(sb: &SuperBlock<TinyFs>, st: &InodeState, n: u64) -> u64 {
    match n.checked_sub(1).map(|p| map_locked(sb, st, p)) {
        Some(Ok(prev)) if prev != 0 => u64::from(prev) + 1,
        _ => 0,
    }
}

/// Adds entry `name` → `ino` (of type `file_type`) to directory `dir`, growing it by a
/// block if no block has room.
fn add_entry(dir: &INode<TinyFs>, name: &[u8], ino: u32, file_type: u8) -> Result {
    let sb = dir.super_block();
    let g = sb.data().geometry();
    let blocks = (dir.size() as u64) >> g.block_size_bits;
    for n in 0..blocks {
        let bh = dir_block(dir, n)?;
        let done = change_meta(&bh, |data| {
            layout::dir_insert(g, data, n == 0, ino, name, file_type)
        })
        .map_err(|e| refuse(sb, e))?;
        if done.is_some() {
            bh.sync()?;
            return Ok(());
        }
    }
    // A new directory block, written before the directory points at it.
    let mut st = dir.data().state.lock();
    let goal = goal_for(sb, &st, blocks);
    let nb = alloc_block(sb, goal)?;
    let bh = fs::buffer::Head::get_new(sb, nb.into())?;
    {
        let mut locked = bh.lock();
        let data = locked.data_mut();
        layout::init_dir_block(g, data).map_err(|e| refuse(sb, e))?;
        layout::dir_insert(g, data, false, ino, name, file_type).map_err(|e| refuse(sb, e))?;
        seal(data);
        locked.set_uptodate();
    }
    bh.mark_dirty();
    bh.sync()?;
    st.disk.blocks += 1;
    record_block(dir, &mut st, blocks, nb)?;
    drop(st);
    dir.add_bytes(g.block_size() as i64);
    dir.set_size(((blocks + 1) << g.block_size_bits) as i64);
    dir.mark_dirty();
    Ok(())
}

/// Writes `inode`'s record, moving pending blocks into it first; see [`InodeState`].
fn write_inode_now(inode: &INode<TinyFs>, sync: bool) -> Result {
    let sb = inode.super_block();
    // What this write will record: the blocks allocated and the size reached so far (they
    // stay in `pending`, where `get_block` finds them, until recorded)...
    let (pending, size) = {
        let st = inode.data().state.lock();
        let mut pending = KVec::with_capacity(st.pending.len(), GFP_NOFS)?;
        pending.extend_from_slice(&st.pending, GFP_NOFS)?;
        (pending, inode.size())
    };
    // ... once the data they cover is on the disk: written back from the page cache, or
    // written by direct I/O requests, which may still be in flight.
    if !pending.is_empty() && ordered() {
        inode.write_and_wait_data()?;
        inode.dio_wait();
    }
    let mut st = inode.data().state.lock();
    for &(n, dblock) in pending.iter() {
        record_block(inode, &mut st, n, dblock)?;
    }
    // Both are sorted; entries added meanwhile stay.
    st.pending.retain(|e| pending.binary_search(e).is_err());
    let a = inode.attrs();
    st.disk.mode = a.mode;
    st.disk.uid = a.uid;
    st.disk.gid = a.gid;
    st.disk.atime = from_time(a.atime);
    st.disk.mtime = from_time(a.mtime);
    st.disk.ctime = from_time(a.ctime);
    st.disk.links = u16::try_from(inode.nlink()).map_err(|_| EMLINK)?;
    st.disk.size = size as u64;
    let disk = st.disk;
    drop(st);
    store_inode(sb, inode.ino() as u32, &disk, sync)
}

/// Every block a file uses, data and indirect, visited from the disk map and `pending`.
fn for_each_block(
    sb: &SuperBlock<TinyFs>,
    st: &InodeState,
    f: &mut impl FnMut(u32) -> Result,
) -> Result {
    fn walk(
        sb: &SuperBlock<TinyFs>,
        ptr: u32,
        depth: u8,
        f: &mut impl FnMut(u32) -> Result,
    ) -> Result {
        if ptr == 0 {
            return Ok(());
        }
        if depth > 0 {
            let g = sb.data().geometry();
            let bh = read_meta(sb, ptr.into(), "indirect block")?;
            for slot in 0..g.ptrs_per_block() {
                let child = layout::indirect_get(g, bh.data(), slot).map_err(|e| refuse(sb, e))?;
                walk(sb, child, depth - 1, f)?;
            }
        }
        f(ptr)
    }
    for &p in st.disk.direct.iter() {
        walk(sb, p, 0, f)?;
    }
    for (level, &p) in st.disk.indirect.iter().enumerate() {
        walk(sb, p, level as u8 + 1, f)?;
    }
    for &(_, p) in st.pending.iter() {
        f(p)?;
    }
    Ok(())
}

/// A directory entry found by [`find_entry`].
struct Found {
    /// The directory block holding it.
    bh: ARef<fs::buffer::Head>,
    /// That block's index in the directory.
    n: u64,
    /// The record's offset in the block.
    offset: usize,
    /// The inode it names.
    ino: u32,
}

/// Looks `name` up in directory `dir`, block by block.
fn find_entry(dir: &INode<TinyFs>, name: &[u8]) -> Result<Option<Found>> {
    let sb = dir.super_block();
    let g = sb.data().geometry();
    let blocks = (dir.size() as u64) >> g.block_size_bits;
    for n in 0..blocks {
        let bh = dir_block(dir, n)?;
        let found = layout::dir_find(g, bh.data(), n == 0, name).map_err(|e| refuse(sb, e))?;
        if let Some(e) = found {
            let (offset, ino) = (e.offset, e.inode);
            return Ok(Some(Found { bh, n, offset, ino }));
        }
    }
    Ok(None)
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
        match find_entry(parent, name)? {
            Some(found) => {
                let inode = iget(parent.super_block(), found.ino)?;
                dentry.splice_alias(Some(inode))
            }
            None => dentry.splice_alias(None),
        }
    }

    fn create(
        idmap: &inode::MntIdmap,
        dir: &INode<TinyFs>,
        dentry: &DEntry<TinyFs>,
        mode: u16,
    ) -> Result {
        let name = dentry.name();
        if name.len() > layout::MAX_NAME_LEN {
            return Err(ENAMETOOLONG);
        }
        let sb = dir.super_block();
        let ino = alloc_ino(sb)?;
        let mut new = match sb.new_inode(ino.into()) {
            Ok(new) => new,
            Err(e) => {
                free_ino(sb, ino)?;
                return Err(e);
            }
        };
        let mode = layout::S_IFREG | (mode & layout::S_IALLUGO);
        let typ = set_ops(&mut new, mode);
        let now = inode::Time::now();
        let inode = new.init(inode::Params {
            typ,
            mode,
            size: 0,
            nlink: 1,
            owner: inode::Owner::Creator { idmap, dir },
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            value: inode_info(layout::Inode {
                mode,
                links: 1,
                ..Default::default()
            }),
        })?;
        // The inode reaches the disk before the entry that names it.
        write_inode_now(&inode, true)?;
        if let Err(e) = add_entry(dir, name, ino, layout::FT_REG_FILE) {
            // Evicted with no link: its number and record are freed.
            inode.drop_nlink();
            return Err(e);
        }
        dir.touch_mtime_ctime();
        dir.mark_dirty();
        dentry.instantiate(inode);
        Ok(())
    }

    fn unlink(dir: &INode<TinyFs>, dentry: &DEntry<TinyFs>) -> Result {
        let inode = dentry.inode().ok_or(ENOENT)?;
        let sb = dir.super_block();
        let g = sb.data().geometry();
        let found = find_entry(dir, dentry.name())?
            .ok_or_else(|| refuse(sb, layout::Error::Corrupt("directory (entry vanished)")))?;
        let first = found.n == 0;
        change_meta(&found.bh, |data| {
            layout::dir_remove(g, data, first, found.offset)
        })
        .map_err(|e| refuse(sb, e))?;
        // The entry is gone from the disk before the inode can be freed.
        found.bh.sync()?;
        dir.touch_mtime_ctime();
        dir.mark_dirty();
        inode.touch_ctime();
        inode.drop_nlink();
        inode.mark_dirty();
        Ok(())
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

/// Regular file inode and file operations.
struct File;

#[vtable]
impl fops::Operations for File {
    type FileSystem = TinyFs;

    /// `direct_write` refuses what would wait for the page cache; reads are the VFS's
    /// (buffered) or refused by `direct_io` (direct).
    const SUPPORTS_NOWAIT: bool = true;

    fn write_iter(
        kiocb: &mut Kiocb<'_, ()>,
        inode: &INode<TinyFs>,
        iter: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        if kiocb.is_direct() {
            direct_write(kiocb, inode, iter)
        } else {
            fops::generic_write_iter(kiocb, iter)
        }
    }
}

/// Refuses a direct request whose position, length or memory is not aligned to the device's
/// logical block size, with `EINVAL` and (once) a log line.
fn check_alignment(
    inode: &INode<TinyFs>,
    pos: i64,
    len: usize,
    mem_align: usize,
    what: &str,
) -> Result {
    let sb = inode.super_block();
    let lbs = sb.logical_block_size();
    let mask = u64::from(lbs) - 1;
    if (pos as u64 | len as u64 | mem_align as u64) & mask == 0 {
        return Ok(());
    }
    pr_warn_once!(
        "{}: inode {}: O_DIRECT {} of {} bytes at {} is not aligned to the device's {}-byte \
         blocks in position, length and memory: EINVAL (logged once)\n",
        sb.id().to_str().unwrap_or("?"),
        inode.ino(),
        what,
        len,
        pos,
        lbs
    );
    Err(EINVAL)
}

/// An `O_DIRECT` write: direct I/O where the page cache of the range can be emptied, a
/// buffered write that is written back before returning where it cannot.
///
/// The page cache of the range is written back and invalidated first, so that neither later
/// buffered reads nor later writeback see stale data. Invalidation fails with `EBUSY` when a
/// folio's buffers are still referenced, as tinyfs's ordered writeback does after unlocking
/// the folio (see [`address_space::Operations::writepages`] above). Linux 2.6.27-rc1 returned
/// `EIO` there; the fix was to fall back to the page cache, as this does.
fn direct_write(
    kiocb: &mut Kiocb<'_, ()>,
    inode: &INode<TinyFs>,
    iter: &mut IovIterSource<'_>,
) -> Result<usize> {
    let sb = inode.super_block();
    let locked = if kiocb.is_nowait() {
        inode.try_lock().ok_or(EAGAIN)?
    } else {
        inode.lock()
    };
    let len = fops::write_checks(&locked, kiocb, iter)?;
    if len == 0 {
        return Ok(0);
    }
    let pos = kiocb.ki_pos();
    check_alignment(inode, pos, len, iter.alignment(), "write")?;
    fops::modified(&locked, kiocb)?;
    let end = pos + len as i64 - 1;
    let mapping = inode.mapping();
    if kiocb.is_nowait() {
        if mapping.range_has_folio(pos, end) {
            return Err(EAGAIN);
        }
    } else {
        mapping.write_and_wait_range(pos, end)?;
    }
    match mapping.invalidate_range(pos as u64 >> PAGE_SHIFT, end as u64 >> PAGE_SHIFT) {
        Ok(()) => {}
        Err(e) if e == EBUSY && kiocb.is_nowait() => return Err(EAGAIN),
        Err(e) if e == EBUSY && !dio_fallback() => {
            pr_warn!(
                "{}: inode {}: O_DIRECT write at {}: the page cache is busy and dio_fallback=0: EIO\n",
                sb.id().to_str().unwrap_or("?"),
                inode.ino(),
                pos
            );
            return Err(EIO);
        }
        Err(e) if e == EBUSY => {
            let written = buffered_fallback(&locked, kiocb, iter)?;
            drop(locked);
            return fops::write_sync(kiocb, written);
        }
        Err(e) => return Err(e),
    }
    let mut written = match <TinyFs as address_space::Operations>::direct_io(
        kiocb,
        inode,
        DirectIter::Write(iter),
    ) {
        // Completes later, and extends nothing: `blockdev_direct_io` waits for a write
        // past the end of the file.
        Err(e) if e == EIOCBQUEUED => return Err(EIOCBQUEUED),
        r => r?,
    };
    let new_pos = pos + written as i64;
    *kiocb.ki_pos_mut() = new_pos;
    // The size grows after the data is on the disk.
    if new_pos > inode.size() {
        inode.set_size(new_pos);
        inode.mark_dirty();
    }
    if written < len {
        // A hole the direct path left, or a partial failure: the rest through the page cache.
        written += buffered_fallback(&locked, kiocb, iter)?;
    }
    drop(locked);
    fops::write_sync(kiocb, written)
}

/// Writes `iter` through the page cache, then writes the range back and waits, so that the
/// data is on the disk when the `O_DIRECT` write returns, and drops its page cache where
/// possible. Counted as a fallback.
fn buffered_fallback(
    locked: &inode::Locked<'_, TinyFs>,
    kiocb: &mut Kiocb<'_, ()>,
    iter: &mut IovIterSource<'_>,
) -> Result<usize> {
    let inode = locked.inode();
    let pos = kiocb.ki_pos();
    let written = fops::perform_write(locked, kiocb, iter)?;
    count(&inode.super_block().data().stats.buffered_fallbacks, 1);
    if written == 0 {
        return Ok(0);
    }
    let end = pos + written as i64 - 1;
    let mapping = inode.mapping();
    mapping.write_and_wait_range(pos, end)?;
    // Folios whose buffers are still held stay cached: clean, uptodate, so coherent with the
    // disk.
    let _ = mapping.invalidate_range(pos as u64 >> PAGE_SHIFT, end as u64 >> PAGE_SHIFT);
    Ok(written)
}

#[vtable]
impl inode::Operations for File {
    type FileSystem = TinyFs;

    fn setattr(idmap: &inode::MntIdmap, dentry: &DEntry<TinyFs>, attr: &inode::Attr) -> Result {
        if let Some(size) = attr.size() {
            // Truncation is not implemented yet: only a size change that changes nothing.
            if dentry.inode().map(|i| i.size()) != Some(size) {
                return Err(EOPNOTSUPP);
            }
            return Ok(());
        }
        inode::setattr_apply(idmap, dentry, attr)
    }
}

impl GetBlock for TinyFs {
    type FileSystem = TinyFs;

    fn get_block(
        inode: &INode<TinyFs>,
        block: u64,
        create: bool,
    ) -> Result<Option<buffer::Mapping>> {
        let sb = inode.super_block();
        let mut st = inode.data().state.lock();
        let ptr = map_locked(sb, &st, block)?;
        if ptr != 0 {
            return Ok(Some(buffer::Mapping {
                block: ptr.into(),
                new: false,
            }));
        }
        if !create {
            return Ok(None);
        }
        // Only the data block is allocated now; `write_inode` records it once written.
        st.pending.reserve(1, GFP_NOFS)?;
        let goal = goal_for(sb, &st, block);
        let new = alloc_block(sb, goal)?;
        if !ordered() {
            // Unordered: the pointer goes into the inode and indirect blocks, and onto the
            // disk, at once, before the data.
            record_block(inode, &mut st, block, new)?;
            st.disk.blocks += 1;
            st.disk.size = inode.size() as u64;
            let disk = st.disk;
            drop(st);
            store_inode(sb, inode.ino() as u32, &disk, true)?;
            inode.add_bytes(sb.block_size().into());
            inode.mark_dirty();
            return Ok(Some(buffer::Mapping {
                block: new.into(),
                new: true,
            }));
        }
        let at = st
            .pending
            .binary_search_by_key(&block, |&(f, _)| f)
            .unwrap_or_else(|i| i);
        // Cannot fail: the room was reserved above.
        let _ = st.pending.insert_within_capacity(at, (block, new));
        st.disk.blocks += 1;
        drop(st);
        inode.add_bytes(sb.block_size().into());
        inode.mark_dirty();
        Ok(Some(buffer::Mapping {
            block: new.into(),
            new: true,
        }))
    }
}

/// File data moves between the page cache and the device through the block map.
#[vtable]
impl address_space::Operations for TinyFs {
    type FileSystem = TinyFs;

    fn read_folio(_file: Option<&fs::LocalFile>, folio: folio::Locked<'_>) -> Result {
        buffer::mpage_read_folio::<TinyFs>(folio)
    }

    fn readahead(rac: &mut address_space::ReadaheadControl) {
        buffer::mpage_readahead::<TinyFs>(rac)
    }

    fn write_begin(
        _file: Option<&fs::LocalFile>,
        mapping: &address_space::Mapping<TinyFs>,
        pos: i64,
        len: u32,
    ) -> Result<folio::Owned> {
        buffer::block_write_begin::<TinyFs>(mapping, pos, len)
    }

    fn write_end(
        _file: Option<&fs::LocalFile>,
        mapping: &address_space::Mapping<TinyFs>,
        pos: i64,
        len: u32,
        copied: u32,
        folio: folio::Owned,
    ) -> Result<u32> {
        buffer::generic_write_end(mapping, pos, len, copied, folio)
    }

    /// Ordered writeback, as ext3's ordered `writepage`: references on the folio's buffers
    /// are held across the write, which unlocks the folio, and dropped only afterwards.
    fn writepages(
        mapping: &address_space::Mapping<TinyFs>,
        wbc: &mut sb::WritebackControl,
    ) -> Result {
        let stats = &mapping.host().super_block().data().stats;
        mapping.for_each_writeback_folio(wbc, |folio, wbc| {
            let refs = buffer::FolioBufferRefs::new(&folio);
            let ret = buffer::write_full_folio::<TinyFs>(folio, wbc);
            // Fault injection: the window in which ext3's ordered writepage still held the
            // buffers (filing them with the journal), made as long as asked.
            let hold = writeback_hold_ms();
            if hold != 0 {
                count(&stats.writeback_holds, 1);
                fsleep(Delta::from_millis(hold.into()));
            }
            drop(refs);
            ret
        })
    }

    fn direct_io(
        kiocb: &mut Kiocb<'_, ()>,
        inode: &INode<TinyFs>,
        iter: DirectIter<'_, '_>,
    ) -> Result<usize> {
        let stats = &inode.super_block().data().stats;
        let len = iter.len();
        match &iter {
            DirectIter::Read(i) => {
                check_alignment(inode, kiocb.ki_pos(), len, i.alignment(), "read")?;
                // `blockdev_direct_io` takes the inode's lock for reads.
                if kiocb.is_nowait() {
                    return Err(EAGAIN);
                }
                count(&stats.direct_reads, 1);
            }
            // `direct_write` checked the alignment.
            DirectIter::Write(_) => count(&stats.direct_writes, 1),
        }
        let is_write = matches!(iter, DirectIter::Write(_));
        let ret = buffer::blockdev_direct_io::<TinyFs>(kiocb, inode, iter);
        if is_write {
            match ret {
                Ok(n) => count(&stats.direct_write_bytes, n as u64),
                Err(e) if e == EIOCBQUEUED => count(&stats.direct_write_bytes, len as u64),
                Err(_) => {}
            }
        }
        ret
    }
}

#[vtable]
impl sb::Operations for TinyFs {
    type FileSystem = TinyFs;

    fn statfs(dentry: &DEntry<TinyFs>, stat: &mut sb::Stat) -> Result {
        let data = dentry.super_block().data();
        let d = &data.disk;
        let (free_blocks, free_inodes) = {
            let a = data.alloc.lock();
            (a.free_blocks, a.free_inodes)
        };
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
            bfree: free_blocks,
            bavail: free_blocks,
            files: d.geometry.inodes_count.into(),
            ffree: free_inodes.into(),
            fsid: lo ^ hi,
        };
        Ok(())
    }

    fn write_inode(inode: &INode<TinyFs>, wbc: &mut sb::WritebackControl) -> Result {
        write_inode_now(inode, wbc.is_sync())
    }

    fn evict_inode(inode: &INode<TinyFs>) {
        if inode.nlink() != 0 {
            return;
        }
        let sb = inode.super_block();
        let ino = inode.ino() as u32;
        let st = inode.data().state.lock();
        // The record is cleared on the disk before its blocks and number can be reused.
        if store_inode(sb, ino, &layout::Inode::default(), true).is_err() {
            pr_err!(
                "inode {}: cannot clear its record: its blocks are leaked\n",
                ino
            );
            return;
        }
        let mut blocks = KVec::<u32>::new();
        let walked = for_each_block(sb, &st, &mut |b| {
            blocks.push(b, GFP_NOFS)?;
            Ok(())
        });
        drop(st);
        if walked.is_err() {
            pr_err!(
                "inode {}: cannot read its block map: its blocks are leaked\n",
                ino
            );
        }
        for b in blocks {
            let _ = free_block(sb, b);
        }
        let _ = free_ino(sb, ino);
    }

    fn sync_fs(sb: &SuperBlock<TinyFs>, wait: bool) -> Result {
        let data = sb.data();
        let mut disk = data.disk.clone();
        {
            let a = data.alloc.lock();
            disk.free_blocks = a.free_blocks;
            disk.free_inodes = a.free_inodes;
        }
        disk.write_time = inode::Time::now().secs as u64;
        let bh = sb.bread(0)?;
        {
            let mut locked = bh.lock();
            disk.encode(locked.data_mut());
        }
        bh.mark_dirty();
        if wait {
            bh.sync()?;
        }
        Ok(())
    }
}
