// SPDX-License-Identifier: GPL-2.0

//! Reading a tinyfs image back, validating everything on the way: what
//! `fsck.tinyfs` and the tests of `mkfs.tinyfs` check images with.
//!
//! [`Image`] reads one structure at a time straight from the device or image
//! file (no cache): every metadata block's checksum is verified and every
//! structure goes through the decoders and checks of [`crate::layout`]
//! before it is used. [`Image::check_all`] checks the whole file system (the
//! bitmaps against what the inodes use, the free counts against the bitmaps,
//! the directory tree and the link counts) and reports every problem it
//! finds; [`Image::check`] is the same check, stopping at the first.

use crate::layout::{
    self, bitmap_test, block_csum_ok_with, check_dir_block, check_indirect_block, crc32c,
    indirect_get, inode_record, DirIter, Geometry, Inode, SuperBlock, INODE_SIZE, N_DIRECT,
    ROOT_INO, SUPER_SIZE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
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

impl Error {
    /// Whether the error says nothing of the consistency of a file system:
    /// an I/O error, or a device that holds no file system this code can
    /// check (a bad magic number, an unknown format version or incompatible
    /// feature). What `fsck.tinyfs` calls an operational error.
    pub fn is_operational(&self) -> bool {
        match self {
            Error::Io { .. } => true,
            Error::Format { err, .. } => !err.is_corruption(),
            Error::Inconsistent(_) | Error::NotFound(_) => false,
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

/// What [`Image::check`] found in a consistent file system (or, in
/// [`Findings`], what [`Image::check_all`] could read of an inconsistent
/// one).
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

/// What [`Image::check_all`] found.
#[derive(Debug, Default)]
pub struct Findings {
    /// What the file system holds: exact when there is no problem, else
    /// counting only what could be read.
    pub report: Report,
    /// Every problem found, in the order found: inconsistencies, corrupt
    /// structures, and I/O errors (see [`Error::is_operational`]). A problem
    /// that makes a structure unusable hides those that could only be seen
    /// through it (the entries of a directory block whose checksum is wrong,
    /// the blocks of a file whose indirect block is, ...), and the checks
    /// that need the whole of what it hides are left out rather than report
    /// problems that may not be there.
    pub problems: Vec<Error>,
}

impl Findings {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `Ok` if `problems` is empty, else its first problem.
fn first_problem(problems: Vec<Error>) -> Result<()> {
    problems.into_iter().next().map_or(Ok(()), Err)
}

/// The inode whose block map [`Image::map_all`] walks.
struct FileToMap {
    ino: u32,
    /// Blocks of the file: its size, in blocks.
    nblocks: u64,
    /// Blocks allocated to it, as its inode says.
    blocks: u64,
}

impl FileToMap {
    /// The problem of a file whose block pointers claim `claimed` blocks.
    fn miscounted(&self, claimed: u64) -> Error {
        Error::Inconsistent(format!(
            "inode {}: block count {}, but {}{} blocks mapped",
            self.ino,
            self.blocks,
            if claimed > self.blocks {
                "at least "
            } else {
                ""
            },
            claimed
        ))
    }
}

/// The block map of a file as far as it could be read.
#[derive(Debug, Default)]
struct Walk {
    /// The blocks mapped.
    map: BlockMap,
    /// Blocks the file points to past its end (each one a problem): claimed
    /// by the file, but not part of `map`.
    stray: Vec<u32>,
    /// Whether every block the file claims is in `map` or `stray`: not so if
    /// an indirect block could not be used or the walk stopped early.
    complete: bool,
    /// Whether no problem was found.
    ok: bool,
}

impl Walk {
    /// Blocks claimed by the file so far.
    fn claimed(&self) -> u64 {
        self.map.blocks() + self.stray.len() as u64
    }

    /// Every block claimed by the file.
    fn blocks(&self) -> impl Iterator<Item = u32> + '_ {
        self.map
            .indirect
            .iter()
            .chain(self.map.data.iter().map(|(_, p)| p))
            .chain(self.stray.iter())
            .copied()
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

/// A bitmap as far as it could be read: bit `n` stands for block `n`, or
/// for inode `n + 1`.
struct Bitmap {
    set: Bits,
    /// Whether each bitmap block could be read (its checksum matches).
    known: Vec<bool>,
    per_block: u64,
    /// The items of readable blocks marked free (padding and metadata bits
    /// not counted); `None` if a block could not be read.
    free: Option<u64>,
}

impl Bitmap {
    /// Bit `n`, `None` if its bitmap block could not be read.
    fn get(&self, n: u64) -> Option<bool> {
        self.known[(n / self.per_block) as usize].then(|| self.set.get(n))
    }
}

/// The state of [`Image::check_all`] through the directory tree.
#[derive(Default)]
struct Tree {
    /// Entries naming each inode.
    refs: HashMap<u32, u32>,
    /// Entries naming each inode, `"."` and `".."` not counted.
    names: HashMap<u32, u32>,
    /// The subdirectories each directory names (`"."` and `".."` aside).
    children: HashMap<u32, Vec<u32>>,
    /// Directories reached.
    seen: HashSet<u32>,
    /// The block maps walked, by inode.
    maps: HashMap<u32, Walk>,
    /// Whether every directory could be read whole: if not, entries may be
    /// missing, and no link count is known to be too high.
    complete: bool,
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
        let mut problems = Vec::new();
        let walk = self.map_all(ino, inode, &mut problems);
        first_problem(problems).map(|()| walk.map)
    }

    /// The block map of `inode`, inode `ino`, as far as it can be read:
    /// [`Image::map`], adding every problem to `problems` and going on past
    /// those it can (a block mapped past the end of the file, an unusable
    /// indirect block). Stops as soon as more blocks are mapped than the
    /// inode says, so that the work stays bounded whatever the image.
    fn map_all(&self, ino: u32, inode: &Inode, problems: &mut Vec<Error>) -> Walk {
        let g = self.geometry();
        let file = FileToMap {
            ino,
            nblocks: inode.size.div_ceil(g.block_size() as u64),
            blocks: u64::from(inode.blocks),
        };
        let before = problems.len();
        let mut walk = Walk {
            complete: true,
            ..Walk::default()
        };
        let p = u64::from(g.ptrs_per_block());
        let mut first = N_DIRECT as u64;
        let mut span = 1;
        let stopped = inode
            .direct
            .iter()
            .enumerate()
            .try_for_each(|(i, &ptr)| self.walk(&file, ptr, 0, i as u64, &mut walk, problems))
            .and_then(|()| {
                (1..)
                    .zip(inode.indirect.iter())
                    .try_for_each(|(level, &ptr)| {
                        span *= p;
                        let r = self.walk(&file, ptr, level, first, &mut walk, problems);
                        first += span;
                        r
                    })
            })
            .is_err();
        if !stopped && walk.complete && walk.claimed() != file.blocks {
            problems.push(file.miscounted(walk.claimed()));
        }
        walk.ok = problems.len() == before;
        walk
    }

    /// Adds to `walk` the blocks under `ptr`, a data block (`level` 0) or an
    /// indirect block of level 1 to 3, whose first block is block `first` of
    /// `file`, and to `problems` what is wrong with them. `Err` when the walk
    /// must stop: more blocks are mapped than the inode says.
    fn walk(
        &self,
        file: &FileToMap,
        ptr: u32,
        level: u32,
        first: u64,
        walk: &mut Walk,
        problems: &mut Vec<Error>,
    ) -> std::result::Result<(), ()> {
        if ptr == 0 {
            return Ok(());
        }
        let stray = first >= file.nblocks;
        if stray {
            problems.push(Error::Inconsistent(format!(
                "inode {}: block {ptr} mapped past the end of the file",
                file.ino
            )));
            walk.stray.push(ptr);
            if level > 0 {
                // What it points to is past the end too: not walked.
                walk.complete = false;
            }
        } else if level == 0 {
            walk.map.data.push((first, ptr));
        } else {
            walk.map.indirect.push(ptr);
        }
        if walk.claimed() > file.blocks {
            problems.push(file.miscounted(walk.claimed()));
            walk.complete = false;
            return Err(());
        }
        if level == 0 || stray {
            return Ok(());
        }
        let g = self.geometry();
        let what = || format!("inode {}: indirect block {ptr}", file.ino);
        let block = match self
            .read_meta_block(u64::from(ptr), "indirect block")
            .and_then(|block| {
                check_indirect_block(g, &block).map_err(format_err(what()))?;
                Ok(block)
            }) {
            Ok(block) => block,
            Err(e) => {
                problems.push(e);
                walk.complete = false;
                return Ok(());
            }
        };
        let span = u64::from(g.ptrs_per_block()).pow(level - 1);
        for i in 0..g.ptrs_per_block() {
            match indirect_get(g, &block, i) {
                Ok(next) => self.walk(
                    file,
                    next,
                    level - 1,
                    first + u64::from(i) * span,
                    walk,
                    problems,
                )?,
                Err(e) => {
                    problems.push(format_err(what())(e));
                    walk.complete = false;
                }
            }
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
        let mut problems = Vec::new();
        let walk = self.map_all(ino, &inode, &mut problems);
        let (entries, _) = self.dir_entries(ino, &inode, &walk, &mut problems);
        first_problem(problems).map(|()| entries)
    }

    /// The entries of directory `inode`, inode `ino`, whose blocks `walk`
    /// maps: [`Image::read_dir`], adding every problem to `problems` and
    /// skipping the blocks that cannot be used. Also returns whether every
    /// block of the directory was read.
    fn dir_entries(
        &self,
        ino: u32,
        inode: &Inode,
        walk: &Walk,
        problems: &mut Vec<Error>,
    ) -> (Vec<Entry>, bool) {
        let g = self.geometry();
        let nblocks = inode.size >> g.block_size_bits;
        if walk.complete && walk.map.data.len() as u64 != nblocks {
            problems.push(Error::Inconsistent(format!("directory {ino} has a hole")));
        }
        let mut complete = walk.complete;
        let mut entries = Vec::new();
        let mut names = HashSet::new();
        for &(n, ptr) in &walk.map.data {
            let what = || format!("directory {ino}, block {n}");
            let block = match self
                .read_meta_block(u64::from(ptr), "directory block")
                .and_then(|block| {
                    check_dir_block(g, &block, n == 0, ino).map_err(format_err(what()))?;
                    Ok(block)
                }) {
                Ok(block) => block,
                Err(e) => {
                    problems.push(e);
                    complete = false;
                    continue;
                }
            };
            for e in DirIter::new(g, &block, n == 0) {
                let e = match e {
                    Ok(e) => e,
                    Err(e) => {
                        problems.push(format_err(what())(e));
                        complete = false;
                        break;
                    }
                };
                if !e.is_used() {
                    continue;
                }
                if !names.insert(e.name.to_vec()) {
                    problems.push(Error::Inconsistent(format!(
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
        (entries, complete)
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

    /// Reads the inode bitmap (`inodes`) or the block bitmap, adding to
    /// `problems` what is wrong with its blocks.
    fn read_bitmap(&self, inodes: bool, problems: &mut Vec<Error>) -> Bitmap {
        let g = self.geometry();
        let (start, blocks, what) = if inodes {
            (g.inode_bitmap_start, g.inode_bitmap_blocks, "inode bitmap")
        } else {
            (g.block_bitmap_start, g.block_bitmap_blocks, "block bitmap")
        };
        let per_block = g.bits_per_bitmap_block();
        let mut bitmap = Bitmap {
            set: Bits::new(u64::from(blocks) * per_block),
            known: vec![false; blocks as usize],
            per_block,
            free: Some(0),
        };
        for index in 0..blocks {
            let nr = start + u64::from(index);
            let block = match self.read_meta_block(nr, what) {
                Ok(block) => block,
                Err(e) => {
                    problems.push(e);
                    bitmap.free = None;
                    continue;
                }
            };
            if let Err(e) = if inodes {
                g.check_inode_bitmap(index, &block)
            } else {
                g.check_block_bitmap(index, &block)
            } {
                problems.push(format_err(format!("block {nr}"))(e));
            }
            let mut free = 0;
            for bit in 0..per_block as u32 {
                // Whether the bit stands for an item that may be free (not
                // padding, not a metadata block).
                let item = if inodes {
                    g.inode_of_bit(index, bit).is_some()
                } else {
                    g.block_of_bit(index, bit)
                        .is_some_and(|n| n >= g.data_start)
                };
                match bitmap_test(&block, bit) {
                    Ok(true) => bitmap
                        .set
                        .set(u64::from(index) * per_block + u64::from(bit)),
                    Ok(false) => free += u64::from(item),
                    Err(e) => {
                        problems.push(format_err(what)(e));
                        bitmap.free = None;
                        break;
                    }
                }
            }
            bitmap.known[index as usize] = true;
            bitmap.free = bitmap.free.map(|f| f + free);
        }
        bitmap
    }

    /// Checks the whole file system: every metadata block (checksums, the
    /// format's checks), the free counts against the bitmaps, every inode in
    /// use reachable from the root directory with the right link count and
    /// file type in its entries, free inodes zero, every block in use used
    /// once and marked in the bitmap, every block marked used in use.
    ///
    /// [`Image::check_all`], stopping at the first problem.
    pub fn check(&self) -> Result<Report> {
        let findings = self.check_all();
        first_problem(findings.problems).map(|()| findings.report)
    }

    /// Checks what [`Image::check`] does, going on past every problem it
    /// can: returns every problem found, and what the file system holds.
    pub fn check_all(&self) -> Findings {
        let g = *self.geometry();
        let sb = &self.sb;
        let mut problems = Vec::new();

        let inode_bitmap = self.read_bitmap(true, &mut problems);
        if let Some(free) = inode_bitmap
            .free
            .filter(|&free| free != u64::from(sb.free_inodes))
        {
            problems.push(Error::Inconsistent(format!(
                "super block: {} free inodes, the bitmap {free}",
                sb.free_inodes
            )));
        }
        let block_bitmap = self.read_bitmap(false, &mut problems);
        if let Some(free) = block_bitmap.free.filter(|&free| free != sb.free_blocks) {
            problems.push(Error::Inconsistent(format!(
                "super block: {} free blocks, the bitmap {free}",
                sb.free_blocks
            )));
        }

        // The inode table, a block at a time. `inodes`: the inodes in use;
        // `lost`: those that may be in use, whose record cannot be used.
        let mut inodes = HashMap::new();
        let mut lost = HashSet::new();
        // Whether the blocks of every inode in use can be known.
        let mut blocks_known = true;
        let per_block = g.inodes_per_block();
        for index in 0..g.inode_table_blocks {
            let first = index * per_block + 1;
            let last = (first - 1).saturating_add(per_block).min(g.inodes_count);
            let table = self
                .read_meta_block(g.inode_table_start + u64::from(index), "inode table block")
                .map_err(|e| problems.push(e));
            for ino in first..=last {
                let in_use = inode_bitmap.get(u64::from(ino - 1));
                let record = match &table {
                    Ok(table) => {
                        let offset = ((ino - 1) % per_block) as usize * INODE_SIZE;
                        self.decode_record(ino, table, offset)
                            .map_err(|e| problems.push(e))
                    }
                    Err(()) => Err(()),
                };
                match (in_use, record) {
                    (Some(false), Err(())) => {}
                    (_, Err(())) => {
                        lost.insert(ino);
                        blocks_known = false;
                    }
                    (Some(true) | None, Ok(Some(inode))) => {
                        inodes.insert(ino, inode);
                    }
                    (Some(false) | None, Ok(None)) => {}
                    (Some(true), Ok(None)) => {
                        problems.push(Error::Inconsistent(format!(
                            "inode {ino} is in use but zero"
                        )));
                        lost.insert(ino);
                    }
                    (Some(false), Ok(Some(_))) => problems.push(Error::Inconsistent(format!(
                        "inode {ino} is free but not zero"
                    ))),
                }
            }
        }
        let is_dir = |inode: &Inode| inode.mode & S_IFMT == S_IFDIR;
        let root_ok = inodes.get(&ROOT_INO).is_some_and(is_dir);
        if !root_ok && !lost.contains(&ROOT_INO) {
            problems.push(Error::Inconsistent(
                "the root inode is not a directory in use".into(),
            ));
        }

        // The tree: every entry names an inode in use, of its type; every
        // directory has one name. The directories the root does not lead to
        // are read too, for the names they hold.
        let mut tree = Tree {
            complete: root_ok && lost.is_empty(),
            ..Tree::default()
        };
        if root_ok {
            self.walk_tree(
                ROOT_INO,
                Some(ROOT_INO),
                &inodes,
                &lost,
                &mut tree,
                &mut problems,
            );
        }
        let reached = tree.seen.clone();
        let mut ids: Vec<u32> = inodes.keys().copied().collect();
        ids.sort_unstable();
        for &ino in &ids {
            if is_dir(&inodes[&ino]) && !tree.seen.contains(&ino) {
                self.walk_tree(ino, None, &inodes, &lost, &mut tree, &mut problems);
            }
        }
        // The directories not reached from the root that no entry names,
        // and those under them.
        let mut under: HashSet<u32> = ids
            .iter()
            .copied()
            .filter(|ino| {
                is_dir(&inodes[ino]) && !reached.contains(ino) && !tree.names.contains_key(ino)
            })
            .collect();
        let mut queue: VecDeque<u32> = under.iter().copied().collect();
        while let Some(dir) = queue.pop_front() {
            for &sub in tree.children.get(&dir).into_iter().flatten() {
                if under.insert(sub) {
                    queue.push_back(sub);
                }
            }
        }

        // Link counts and blocks.
        let mut report = Report {
            inodes_used: inodes.len() as u32,
            ..Report::default()
        };
        let mut used = Bits::new(g.blocks_count);
        for &ino in &ids {
            let inode = &inodes[&ino];
            let n = tree.refs.get(&ino).copied().unwrap_or(0);
            let names = tree.names.get(&ino).copied().unwrap_or(0);
            let links = u32::from(inode.links);
            if is_dir(inode) && names > u32::from(ino != ROOT_INO) {
                problems.push(Error::Inconsistent(format!(
                    "directory {ino} has more than one name"
                )));
            }
            if ino != ROOT_INO && names == 0 {
                // Its link count cannot be checked: the entries that should
                // name it are not known.
                if tree.complete {
                    problems.push(Error::Inconsistent(format!(
                        "inode {ino} is in use but in no directory"
                    )));
                }
            } else {
                if tree.complete
                    && is_dir(inode)
                    && !reached.contains(&ino)
                    && !under.contains(&ino)
                {
                    problems.push(Error::Inconsistent(format!(
                        "directory {ino} is not reachable from the root directory"
                    )));
                }
                if n != links && (n > links || tree.complete) {
                    problems.push(Error::Inconsistent(format!(
                        "inode {ino}: link count {links}, but {n} entries name it"
                    )));
                }
            }
            let walk = tree
                .maps
                .remove(&ino)
                .unwrap_or_else(|| self.map_all(ino, inode, &mut problems));
            blocks_known &= walk.complete;
            for ptr in walk.blocks() {
                let ptr = u64::from(ptr);
                if used.get(ptr) {
                    problems.push(Error::Inconsistent(format!(
                        "block {ptr} is used twice (inode {ino})"
                    )));
                    continue;
                }
                used.set(ptr);
                report.blocks_used += 1;
            }
            match inode.mode & S_IFMT {
                S_IFDIR => report.dirs += 1,
                S_IFLNK => {
                    report.symlinks += 1;
                    if walk.ok {
                        match self.read_data(ino, inode, &walk.map) {
                            Ok(target) if target.contains(&0) => {
                                problems.push(Error::Inconsistent(format!(
                                    "symbolic link {ino}: NUL byte in the target"
                                )))
                            }
                            Ok(_) => {}
                            Err(e) => problems.push(e),
                        }
                    }
                }
                _ => report.files += 1,
            }
        }
        for nr in g.data_start..g.blocks_count {
            let in_use = used.get(nr);
            match block_bitmap.get(nr) {
                // A block no inode is known to use may be one of a file
                // whose blocks could not all be read.
                Some(marked) if marked != in_use && (in_use || blocks_known) => {
                    problems.push(Error::Inconsistent(format!(
                        "block {nr} is {} but marked {} in the bitmap",
                        if in_use { "in use" } else { "not in use" },
                        if marked { "used" } else { "free" },
                    )))
                }
                _ => {}
            }
        }
        Findings { report, problems }
    }

    /// Walks the directory tree from directory `start` (in `inodes`, the
    /// inodes in use; `lost`: those whose record cannot be used), whose
    /// parent is `parent` if known, into `tree`: the entries naming each
    /// inode, the block maps of the directories, and every problem of the
    /// directories and their entries. Directories already seen are not
    /// walked again.
    fn walk_tree(
        &self,
        start: u32,
        parent: Option<u32>,
        inodes: &HashMap<u32, Inode>,
        lost: &HashSet<u32>,
        tree: &mut Tree,
        problems: &mut Vec<Error>,
    ) {
        tree.seen.insert(start);
        let mut queue = VecDeque::from([(start, parent)]);
        while let Some((dir, parent)) = queue.pop_front() {
            let inode = &inodes[&dir];
            let walk = self.map_all(dir, inode, problems);
            let (entries, complete) = self.dir_entries(dir, inode, &walk, problems);
            tree.maps.insert(dir, walk);
            tree.complete &= complete;
            // `entries` starts with "." and ".." if the first block could be
            // read.
            if let (Some(parent), Some(dotdot)) =
                (parent, entries.get(1).filter(|e| e.name == b".."))
            {
                if dotdot.ino != parent {
                    problems.push(Error::Inconsistent(format!(
                        "directory {dir}: \"..\" is {}, not {parent}",
                        dotdot.ino
                    )));
                }
            }
            for e in &entries {
                *tree.refs.entry(e.ino).or_default() += 1;
                let name = || String::from_utf8_lossy(&e.name);
                let Some(target) = inodes.get(&e.ino) else {
                    // A lost inode is a problem already.
                    if !lost.contains(&e.ino) {
                        problems.push(Error::Inconsistent(format!(
                            "directory {dir}: {:?} names free inode {}",
                            name(),
                            e.ino
                        )));
                    }
                    continue;
                };
                if target.file_type() != e.file_type {
                    problems.push(Error::Inconsistent(format!(
                        "directory {dir}: {:?} has file type {}, inode {} is of type {}",
                        name(),
                        e.file_type,
                        e.ino,
                        target.file_type()
                    )));
                }
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                *tree.names.entry(e.ino).or_default() += 1;
                if target.mode & S_IFMT == S_IFDIR {
                    tree.children.entry(dir).or_default().push(e.ino);
                    if tree.seen.insert(e.ino) {
                        queue.push_back((e.ino, Some(dir)));
                    }
                }
            }
        }
    }
}
