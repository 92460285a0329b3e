// SPDX-License-Identifier: GPL-2.0

//! Reading a tinyfs image back, validating everything on the way: the seed of
//! `fsck.tinyfs`, and what the tests of `mkfs.tinyfs` check its images with.
//!
//! [`Image`] reads one structure at a time straight from the device or image
//! file (no cache): every metadata block's checksum is verified and every
//! structure goes through the decoders and checks of [`crate::layout`]
//! before it is used. [`Image::check`] checks the whole file system: the
//! bitmaps against what the inodes use, the free counts against the bitmaps,
//! the directory tree and the link counts.

use crate::layout::{
    self, bitmap_count_zeros, bitmap_test, block_csum_ok_with, check_dir_block,
    check_indirect_block, crc32c, indirect_get, inode_record, DirIter, Geometry, Inode, SuperBlock,
    FT_DIR, INODE_SIZE, N_DIRECT, ROOT_INO, SUPER_SIZE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why an image could not be read, or is not consistent.
#[derive(Debug)]
pub enum Error {
    /// An I/O error.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        err: io::Error,
    },
    /// A structure was refused by the format's decoders or checks.
    Format {
        /// Which structure.
        what: String,
        /// Why.
        err: layout::Error,
    },
    /// The structures are valid one by one but do not agree with each other
    /// (a free count, a link count, a block used twice, ...).
    Inconsistent(String),
    /// [`Image::lookup`] found no such name.
    NotFound(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { what, err } => write!(f, "{what}: {err}"),
            Error::Format { what, err } => write!(f, "{what}: {err}"),
            Error::Inconsistent(msg) => write!(f, "inconsistent file system: {msg}"),
            Error::NotFound(path) => write!(f, "{path}: no such file or directory"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// Result of the functions of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn format_err(what: impl Into<String>) -> impl FnOnce(layout::Error) -> Error {
    let what = what.into();
    move |err| Error::Format { what, err }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |err| Error::Io { what, err }
}

/// An entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub name: Vec<u8>,
    /// The inode it names.
    pub ino: u32,
    /// Its file type: [`layout::FT_REG_FILE`], [`FT_DIR`] or
    /// [`layout::FT_SYMLINK`].
    pub file_type: u8,
}

/// Where the blocks of a file lie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockMap {
    /// The blocks of the file that are not holes, in increasing order:
    /// (block of the file, block of the device).
    pub data: Vec<(u64, u32)>,
    /// The indirect blocks, in the order of the walk (each before those it
    /// points to).
    pub indirect: Vec<u32>,
}

impl BlockMap {
    /// The device block holding block `file_block` of the file, or 0 for a
    /// hole.
    pub fn get(&self, file_block: u64) -> u32 {
        self.data
            .binary_search_by_key(&file_block, |&(n, _)| n)
            .map_or(0, |i| self.data[i].1)
    }

    /// Blocks allocated to the file, indirect ones included: what the
    /// inode's block count must say.
    pub fn blocks(&self) -> u64 {
        (self.data.len() + self.indirect.len()) as u64
    }
}

/// What [`Image::check`] found in a consistent file system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Inodes in use.
    pub inodes_used: u32,
    /// Data blocks in use (metadata blocks not counted).
    pub blocks_used: u64,
    /// Directories, the root included.
    pub dirs: u32,
    /// Regular files.
    pub files: u32,
    /// Symbolic links.
    pub symlinks: u32,
}

/// The inode whose block map [`Image::map`] walks.
struct FileToMap {
    ino: u32,
    /// Blocks of the file: its size, in blocks.
    nblocks: u64,
    /// Blocks allocated to it, as its inode says.
    blocks: u64,
}

impl FileToMap {
    fn miscounted(&self, map: &BlockMap) -> Error {
        Error::Inconsistent(format!(
            "inode {}: block count {}, but {}{} blocks mapped",
            self.ino,
            self.blocks,
            if map.blocks() > self.blocks {
                "at least "
            } else {
                ""
            },
            map.blocks()
        ))
    }
}

/// A set of numbers below a bound.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: u64) -> Self {
        Bits(vec![0; n.div_ceil(64) as usize])
    }

    fn get(&self, i: u64) -> bool {
        self.0[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u64) {
        self.0[(i / 64) as usize] |= 1 << (i % 64);
    }
}

/// A tinyfs image (or device), open for reading.
#[derive(Debug)]
pub struct Image {
    file: File,
    sb: SuperBlock,
}

impl Image {
    /// Opens the image at `path`: reads and validates its super block, and
    /// checks that the file is large enough for the file system.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(format!("cannot open {}", path.display())))?;
        let mut raw = vec![0u8; SUPER_SIZE];
        file.read_exact_at(&mut raw, 0).map_err(io_err(format!(
            "cannot read the super block of {}",
            path.display()
        )))?;
        let sb = SuperBlock::decode(&raw).map_err(format_err("super block"))?;
        let len = (&file)
            .seek(SeekFrom::End(0))
            .map_err(io_err(format!("cannot size {}", path.display())))?;
        let g = sb.geometry;
        let need = g.blocks_count << g.block_size_bits;
        if len < need {
            return Err(Error::Inconsistent(format!(
                "{} has {len} bytes, the file system {need}",
                path.display()
            )));
        }
        Ok(Image { file, sb })
    }

    /// The super block.
    pub fn super_block(&self) -> &SuperBlock {
        &self.sb
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.sb.geometry
    }

    /// Reads block `nr`, whatever it holds.
    pub fn read_block(&self, nr: u64) -> Result<Vec<u8>> {
        let g = self.geometry();
        if nr >= g.blocks_count {
            return Err(format_err(format!("block {nr}"))(layout::Error::Corrupt(
                "block number",
            )));
        }
        let mut block = vec![0u8; g.block_size()];
        self.file
            .read_exact_at(&mut block, nr << g.block_size_bits)
            .map_err(io_err(format!("cannot read block {nr}")))?;
        Ok(block)
    }

    /// Reads metadata block `nr`, a `what`, and verifies its checksum.
    pub fn read_meta_block(&self, nr: u64, what: &'static str) -> Result<Vec<u8>> {
        let block = self.read_block(nr)?;
        if !block_csum_ok_with(crc32c, &block) {
            return Err(format_err(format!("block {nr}"))(
                layout::Error::BadChecksum(what),
            ));
        }
        Ok(block)
    }

    /// Whether the inode bitmap marks inode `ino` in use. (The bitmap
    /// block's checksum is verified; its padding bits, which say nothing of
    /// `ino`, are left to [`Image::check`].)
    pub fn inode_in_use(&self, ino: u32) -> Result<bool> {
        let g = self.geometry();
        let pos = g
            .inode_bitmap_pos(ino)
            .map_err(format_err("inode number"))?;
        let block = self.read_meta_block(pos.block, "inode bitmap")?;
        bitmap_test(&block, pos.bit).map_err(format_err("inode bitmap"))
    }

    /// The record of inode `ino`, which must be in use, decoded and
    /// validated.
    pub fn inode(&self, ino: u32) -> Result<Inode> {
        if !self.inode_in_use(ino)? {
            return Err(Error::Inconsistent(format!("inode {ino} is free")));
        }
        self.inode_record(ino)?
            .ok_or_else(|| Error::Inconsistent(format!("inode {ino} is in use but zero")))
    }

    /// The record of inode `ino`, decoded and validated; `None` if it is all
    /// zero (a free inode's). The bitmap is not looked at.
    fn inode_record(&self, ino: u32) -> Result<Option<Inode>> {
        let pos = self
            .geometry()
            .inode_pos(ino)
            .map_err(format_err("inode number"))?;
        let block = self.read_meta_block(pos.block, "inode table block")?;
        self.decode_record(ino, &block, pos.offset)
    }

    /// [`Image::inode_record`] of inode `ino`, at `offset` in the inode table
    /// block `block`.
    fn decode_record(&self, ino: u32, block: &[u8], offset: usize) -> Result<Option<Inode>> {
        let raw = inode_record(block, offset).map_err(format_err("inode table"))?;
        if Inode::is_free_record(raw) {
            return Ok(None);
        }
        Inode::decode(self.geometry(), raw)
            .map(Some)
            .map_err(format_err(format!("inode {ino}")))
    }

    /// The block map of inode `ino`.
    pub fn block_map(&self, ino: u32) -> Result<BlockMap> {
        let inode = self.inode(ino)?;
        self.map(ino, &inode)
    }

    /// The block map of `inode`, inode `ino`, every indirect block verified.
    /// No block may be mapped past the end of the file, and the inode's
    /// block count must match the map.
    fn map(&self, ino: u32, inode: &Inode) -> Result<BlockMap> {
        let g = self.geometry();
        let file = FileToMap {
            ino,
            nblocks: inode.size.div_ceil(g.block_size() as u64),
            blocks: u64::from(inode.blocks),
        };
        let mut map = BlockMap::default();
        for (i, &ptr) in inode.direct.iter().enumerate() {
            self.walk(&file, ptr, 0, i as u64, &mut map)?;
        }
        let p = u64::from(g.ptrs_per_block());
        let mut first = N_DIRECT as u64;
        let mut span = 1;
        for (level, &ptr) in (1..).zip(inode.indirect.iter()) {
            span *= p;
            self.walk(&file, ptr, level, first, &mut map)?;
            first += span;
        }
        if map.blocks() != file.blocks {
            return Err(file.miscounted(&map));
        }
        Ok(map)
    }

    /// Adds to `map` the blocks under `ptr`, a data block (`level` 0) or an
    /// indirect block of level 1 to 3, whose first block is block `first` of
    /// `file`. Stops as soon as more blocks are mapped than the inode says,
    /// so that the work stays bounded whatever the image.
    fn walk(
        &self,
        file: &FileToMap,
        ptr: u32,
        level: u32,
        first: u64,
        map: &mut BlockMap,
    ) -> Result<()> {
        if ptr == 0 {
            return Ok(());
        }
        if first >= file.nblocks {
            return Err(Error::Inconsistent(format!(
                "inode {}: block {ptr} mapped past the end of the file",
                file.ino
            )));
        }
        if level == 0 {
            map.data.push((first, ptr));
        } else {
            map.indirect.push(ptr);
        }
        if map.blocks() > file.blocks {
            return Err(file.miscounted(map));
        }
        if level == 0 {
            return Ok(());
        }
        let g = self.geometry();
        let block = self.read_meta_block(u64::from(ptr), "indirect block")?;
        let what = || format!("inode {}: indirect block {ptr}", file.ino);
        check_indirect_block(g, &block).map_err(format_err(what()))?;
        let span = u64::from(g.ptrs_per_block()).pow(level - 1);
        for i in 0..g.ptrs_per_block() {
            let next = indirect_get(g, &block, i).map_err(format_err(what()))?;
            self.walk(file, next, level - 1, first + u64::from(i) * span, map)?;
        }
        Ok(())
    }

    /// The `size` bytes of `inode` (mapped by `map`), holes read as zeros.
    fn read_data(&self, ino: u32, inode: &Inode, map: &BlockMap) -> Result<Vec<u8>> {
        let bits = self.geometry().block_size_bits;
        let mut data = Vec::new();
        let size = usize::try_from(inode.size)
            .ok()
            .filter(|&size| data.try_reserve_exact(size).is_ok())
            .ok_or_else(|| {
                Error::Inconsistent(format!(
                    "inode {ino}: {} bytes do not fit in memory",
                    inode.size
                ))
            })?;
        data.resize(size, 0);
        // Runs of blocks consecutive both in the file and on the device, read
        // at once.
        let mut i = 0;
        while i < map.data.len() {
            let (first, ptr) = map.data[i];
            let mut n = 1;
            while map.data.get(i + n).is_some_and(|&(f, p)| {
                f == first + n as u64 && u64::from(p) == u64::from(ptr) + n as u64
            }) {
                n += 1;
            }
            let start = (first << bits) as usize;
            let end = (((first + n as u64) << bits) as usize).min(data.len());
            self.file
                .read_exact_at(&mut data[start..end], u64::from(ptr) << bits)
                .map_err(io_err(format!("cannot read the data of inode {ino}")))?;
            i += n;
        }
        Ok(data)
    }

    fn inode_of_type(&self, ino: u32, file_type: u16, what: &str) -> Result<Inode> {
        let inode = self.inode(ino)?;
        if inode.mode & S_IFMT != file_type {
            return Err(Error::Inconsistent(format!("inode {ino} is not {what}")));
        }
        Ok(inode)
    }

    /// The contents of regular file `ino`, holes read as zeros.
    pub fn read_file(&self, ino: u32) -> Result<Vec<u8>> {
        let inode = self.inode_of_type(ino, S_IFREG, "a regular file")?;
        let map = self.map(ino, &inode)?;
        self.read_data(ino, &inode, &map)
    }

    /// The target of symbolic link `ino`: its data, which must not hold a
    /// NUL byte.
    pub fn read_link(&self, ino: u32) -> Result<Vec<u8>> {
        let inode = self.inode_of_type(ino, S_IFLNK, "a symbolic link")?;
        let map = self.map(ino, &inode)?;
        let target = self.read_data(ino, &inode, &map)?;
        if target.contains(&0) {
            return Err(Error::Inconsistent(format!(
                "symbolic link {ino}: NUL byte in the target"
            )));
        }
        Ok(target)
    }

    /// The entries of directory `ino`, in the order of its blocks, `"."` and
    /// `".."` first. Every block is verified: no hole, valid records tiling
    /// it, `"."` naming the directory, no name twice.
    pub fn read_dir(&self, ino: u32) -> Result<Vec<Entry>> {
        let inode = self.inode_of_type(ino, S_IFDIR, "a directory")?;
        let map = self.map(ino, &inode)?;
        let g = self.geometry();
        let nblocks = inode.size >> g.block_size_bits;
        if map.data.len() as u64 != nblocks {
            return Err(Error::Inconsistent(format!("directory {ino} has a hole")));
        }
        let mut entries = Vec::new();
        let mut names = HashSet::new();
        for &(n, ptr) in &map.data {
            let block = self.read_meta_block(u64::from(ptr), "directory block")?;
            let what = || format!("directory {ino}, block {n}");
            check_dir_block(g, &block, n == 0, ino).map_err(format_err(what()))?;
            for e in DirIter::new(g, &block, n == 0) {
                let e = e.map_err(format_err(what()))?;
                if !e.is_used() {
                    continue;
                }
                if !names.insert(e.name.to_vec()) {
                    return Err(Error::Inconsistent(format!(
                        "directory {ino}: two entries named {:?}",
                        String::from_utf8_lossy(e.name)
                    )));
                }
                entries.push(Entry {
                    name: e.name.to_vec(),
                    ino: e.inode,
                    file_type: e.file_type,
                });
            }
        }
        Ok(entries)
    }

    /// The inode that `path` (names separated by `/`, from the root
    /// directory) names; symbolic links are not followed.
    pub fn lookup(&self, path: &[u8]) -> Result<u32> {
        let mut ino = ROOT_INO;
        for name in path.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
            ino = self
                .read_dir(ino)?
                .into_iter()
                .find(|e| e.name == name)
                .map(|e| e.ino)
                .ok_or_else(|| Error::NotFound(String::from_utf8_lossy(path).into_owned()))?;
        }
        Ok(ino)
    }

    /// Reads bitmap block `index` of the bitmap starting at `start` and adds
    /// the items it marks used to `used`; returns its free bits.
    fn read_bitmap(&self, start: u64, index: u32, inodes: bool, used: &mut Bits) -> Result<u64> {
        let g = self.geometry();
        let nr = start + u64::from(index);
        let what = if inodes {
            "inode bitmap"
        } else {
            "block bitmap"
        };
        let block = self.read_meta_block(nr, what)?;
        if inodes {
            g.check_inode_bitmap(index, &block)
        } else {
            g.check_block_bitmap(index, &block)
        }
        .map_err(format_err(format!("block {nr}")))?;
        for bit in 0..g.bits_per_bitmap_block() as u32 {
            let item = if inodes {
                g.inode_of_bit(index, bit).map(u64::from)
            } else {
                g.block_of_bit(index, bit)
            };
            if let Some(item) = item {
                if bitmap_test(&block, bit).map_err(format_err(what))? {
                    used.set(item);
                }
            }
        }
        Ok(u64::from(bitmap_count_zeros(&block)))
    }

    /// Checks the whole file system: every metadata block (checksums, the
    /// format's checks), the free counts against the bitmaps, every inode in
    /// use reachable from the root directory with the right link count and
    /// file type in its entries, free inodes zero, every block in use used
    /// once and marked in the bitmap, every block marked used in use.
    pub fn check(&self) -> Result<Report> {
        let g = *self.geometry();
        let sb = &self.sb;

        let mut inode_bits = Bits::new(u64::from(g.inodes_count) + 1);
        let mut free = 0;
        for i in 0..g.inode_bitmap_blocks {
            free += self.read_bitmap(g.inode_bitmap_start, i, true, &mut inode_bits)?;
        }
        if free != u64::from(sb.free_inodes) {
            return Err(Error::Inconsistent(format!(
                "super block: {} free inodes, the bitmap {free}",
                sb.free_inodes
            )));
        }
        let mut block_bits = Bits::new(g.blocks_count);
        let mut free = 0;
        for i in 0..g.block_bitmap_blocks {
            free += self.read_bitmap(g.block_bitmap_start, i, false, &mut block_bits)?;
        }
        if free != sb.free_blocks {
            return Err(Error::Inconsistent(format!(
                "super block: {} free blocks, the bitmap {free}",
                sb.free_blocks
            )));
        }

        // The inode table, a block at a time.
        let mut table = Vec::new();
        let mut inodes = HashMap::new();
        let per_block = g.inodes_per_block();
        for ino in 1..=g.inodes_count {
            let index = (ino - 1) % per_block;
            if index == 0 {
                table = self.read_meta_block(
                    g.inode_table_start + u64::from((ino - 1) / per_block),
                    "inode table block",
                )?;
            }
            let inode = self.decode_record(ino, &table, index as usize * INODE_SIZE)?;
            match (inode_bits.get(u64::from(ino)), inode) {
                (true, Some(inode)) => {
                    inodes.insert(ino, inode);
                }
                (false, None) => {}
                (true, None) => {
                    return Err(Error::Inconsistent(format!(
                        "inode {ino} is in use but zero"
                    )))
                }
                (false, Some(_)) => {
                    return Err(Error::Inconsistent(format!(
                        "inode {ino} is free but not zero"
                    )))
                }
            }
        }
        match inodes.get(&ROOT_INO) {
            Some(root) if root.mode & S_IFMT == S_IFDIR => {}
            _ => {
                return Err(Error::Inconsistent(
                    "the root inode is not a directory in use".into(),
                ))
            }
        }

        // The tree: every entry names an inode in use, of its type; every
        // directory has one name.
        let mut report = Report {
            inodes_used: inodes.len() as u32,
            ..Report::default()
        };
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let mut seen = HashSet::from([ROOT_INO]);
        let mut queue = VecDeque::from([(ROOT_INO, ROOT_INO)]);
        while let Some((dir, parent)) = queue.pop_front() {
            let entries = self.read_dir(dir)?;
            match entries.get(1) {
                Some(e) if e.ino == parent => {}
                _ => {
                    return Err(Error::Inconsistent(format!(
                        "directory {dir}: \"..\" is not {parent}"
                    )))
                }
            }
            for (i, e) in entries.iter().enumerate() {
                let inode = inodes.get(&e.ino).ok_or_else(|| {
                    Error::Inconsistent(format!(
                        "directory {dir}: {:?} names free inode {}",
                        String::from_utf8_lossy(&e.name),
                        e.ino
                    ))
                })?;
                if inode.file_type() != e.file_type {
                    return Err(Error::Inconsistent(format!(
                        "directory {dir}: {:?} has file type {}, inode {} is of type {}",
                        String::from_utf8_lossy(&e.name),
                        e.file_type,
                        e.ino,
                        inode.file_type()
                    )));
                }
                *refs.entry(e.ino).or_default() += 1;
                if i >= 2 && e.file_type == FT_DIR {
                    if !seen.insert(e.ino) {
                        return Err(Error::Inconsistent(format!(
                            "directory {} has more than one name",
                            e.ino
                        )));
                    }
                    queue.push_back((e.ino, dir));
                }
            }
        }

        // Link counts and blocks.
        let mut used = Bits::new(g.blocks_count);
        let mut ids: Vec<u32> = inodes.keys().copied().collect();
        ids.sort_unstable();
        for ino in ids {
            let inode = &inodes[&ino];
            let n = refs.get(&ino).copied().unwrap_or(0);
            if n == 0 {
                return Err(Error::Inconsistent(format!(
                    "inode {ino} is in use but in no directory"
                )));
            }
            if n != u32::from(inode.links) {
                return Err(Error::Inconsistent(format!(
                    "inode {ino}: link count {}, but {n} entries name it",
                    inode.links
                )));
            }
            let map = self.map(ino, inode)?;
            for ptr in map.indirect.iter().chain(map.data.iter().map(|(_, p)| p)) {
                let ptr = u64::from(*ptr);
                if used.get(ptr) {
                    return Err(Error::Inconsistent(format!(
                        "block {ptr} is used twice (inode {ino})"
                    )));
                }
                used.set(ptr);
                report.blocks_used += 1;
            }
            match inode.mode & S_IFMT {
                S_IFDIR => report.dirs += 1,
                S_IFLNK => {
                    self.read_link(ino)?;
                    report.symlinks += 1;
                }
                _ => report.files += 1,
            }
        }
        for nr in g.data_start..g.blocks_count {
            if used.get(nr) != block_bits.get(nr) {
                return Err(Error::Inconsistent(format!(
                    "block {nr} is {} but marked {} in the bitmap",
                    if used.get(nr) { "in use" } else { "not in use" },
                    if block_bits.get(nr) { "used" } else { "free" },
                )));
            }
        }
        Ok(report)
    }
}
