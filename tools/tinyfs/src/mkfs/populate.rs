// SPDX-License-Identifier: GPL-2.0

//! Copying a host directory tree into a new file system: `mkfs.tinyfs -d DIR`,
//! like `mke2fs -d`.
//!
//! What is copied, for every file: the permission bits (set-user-ID,
//! set-group-ID and sticky bits included), the owner and group, the access,
//! modification and change times (with their nanoseconds) and the size. The
//! root directory gets those of `DIR` itself.
//!
//! - Regular files, with their contents. A block-aligned block of zeros (the
//!   last, partial block included) is left as a hole: sparse files stay
//!   sparse, and so do files that merely hold zeros.
//! - Directories, recursively, each with `"."` and `".."`; a directory's link
//!   count is 2 plus its number of subdirectories.
//! - Symbolic links: the target (1 to [`MAX_SYMLINK_LEN`] bytes) is the link's
//!   data, mapped like a regular file's: one data block, unless the target is
//!   longer than a block (with 1 and 2 KiB blocks), then as many blocks as it
//!   spans, since the kernel reads a symlink's first page.
//!
//! Not copied: devices, FIFOs and sockets are skipped with a warning naming
//! their path, and so is the device being formatted if it lies in the tree.
//! Hard links are not kept: every path to a file becomes a file of its own,
//! with one link. A file that changes while it is copied gets what was read
//! of it, at most its size when its directory was read.
//!
//! A name longer than [`MAX_NAME_LEN`] bytes (or one the format refuses
//! otherwise), a file larger than [`max_file_size`], a symbolic link target
//! too long or a directory with more than 65533 subdirectories stops the copy
//! with an error naming the path.
//!
//! Layout: the walk reads each directory's entries sorted by name (bytes),
//! gives them the next inode numbers (the root directory is
//! [`ROOT_INO`]), writes the directory's blocks, then copies its regular files
//! and symbolic links, then its subdirectories in turn, depth first. Blocks
//! are allocated one after the other from the first data block on, without
//! gaps: the first is the root directory's, and every indirect block comes
//! right before the first data block it maps. A directory's records fill a
//! block before the next is started. Everything is written in large runs,
//! the indirect blocks patched in when they are complete.

use super::{io_err, BlockWriter, Error};
use crate::layout::{
    self, block_path, dir_insert, indirect_set, init_dir_block, init_first_dir_block,
    is_valid_name, max_file_size, set_block_csum, Geometry, Inode, Timestamp, FT_DIR, FT_REG_FILE,
    FT_SYMLINK, MAX_NAME_LEN, MAX_SYMLINK_LEN, NSEC_PER_SEC, N_DIRECT, ROOT_INO, S_IALLUGO,
    S_IFDIR, S_IFLNK, S_IFREG,
};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes of a regular file read at a time.
const READ_CHUNK: usize = 1 << 20;

/// What copying a tree made, or would have made.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The inodes, the `i`-th being inode `i + 1` (the first the root
    /// directory's). When the tree does not fit (see [`Tree::fits`]), or
    /// nothing was written, their block pointers are meaningless.
    pub inodes: Vec<Inode>,
    /// Inodes the tree needs, the root directory's included: the length of
    /// `inodes`.
    pub inodes_needed: u64,
    /// Data blocks the tree needs, from the first one on (the root
    /// directory's included), indirect blocks included.
    pub blocks_needed: u64,
    /// The paths skipped: devices, FIFOs, sockets, the device itself.
    pub skipped: Vec<PathBuf>,
}

impl Tree {
    /// Whether the tree fits in a file system of geometry `g`: enough inodes
    /// and data blocks.
    pub fn fits(&self, g: &Geometry) -> bool {
        self.inodes_needed <= u64::from(g.inodes_count)
            && self.blocks_needed <= g.blocks_count - g.data_start
    }
}

/// Checks that `name`, the last component of the host path `path`, may name
/// a directory entry: 1 to [`MAX_NAME_LEN`] bytes, no `/`, no NUL.
pub fn check_name(path: &Path, name: &[u8]) -> Result<(), Error> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "{}: name too long for tinyfs: {} bytes, at most {MAX_NAME_LEN}",
            path.display(),
            name.len()
        )));
    }
    if !is_valid_name(name) || name == b"." || name == b".." {
        return Err(Error::Invalid(format!(
            "{}: invalid name for tinyfs (empty, \".\", \"..\", or with a '/' or a NUL byte)",
            path.display()
        )));
    }
    Ok(())
}

/// Copies the directory tree `dir` into the new file system of geometry `g`
/// on `device` (named `device_path`), from its first data block on; see the
/// module's documentation. Writes only data blocks (directory, indirect,
/// file and symlink blocks), and only if `write`; the inodes returned are for
/// [`super::write_metadata`]. Warnings (skipped files) go to `warn`.
///
/// When the tree does not fit, the walk goes on without writing, to count
/// what it needs, and returns a [`Tree`] that does not [fit](Tree::fits).
pub fn copy_tree(
    g: &Geometry,
    dir: &Path,
    device_path: &Path,
    device: &File,
    write: bool,
    warn: &mut dyn Write,
) -> Result<Tree, Error> {
    let meta = fs::metadata(dir).map_err(io_err(format!("cannot stat {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let dev_meta = device
        .metadata()
        .map_err(io_err(format!("cannot stat {}", device_path.display())))?;
    let mut b = Builder {
        g: *g,
        out: write.then(|| BlockWriter::new(device, g.block_size())),
        device_path,
        device_id: (dev_meta.dev(), dev_meta.ino()),
        next_block: g.data_start,
        inodes: Vec::new(),
        skipped: Vec::new(),
        warn,
        buf: vec![0; READ_CHUNK],
    };
    let root = b.new_inode();
    let mut stack = vec![PendingDir {
        idx: root,
        parent_idx: root,
        path: dir.to_path_buf(),
        meta,
    }];
    while let Some(d) = stack.pop() {
        b.copy_dir(d, &mut stack)?;
    }
    if let Some(mut out) = b.out.take() {
        out.flush().map_err(b.write_err())?;
    }
    Ok(Tree {
        inodes_needed: b.inodes.len() as u64,
        blocks_needed: b.next_block - g.data_start,
        inodes: b.inodes,
        skipped: b.skipped,
    })
}

/// A directory whose inode number is given but whose blocks are not written
/// yet.
struct PendingDir {
    idx: usize,
    parent_idx: usize,
    path: PathBuf,
    meta: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// An entry of a host directory.
struct Child {
    name: OsString,
    path: PathBuf,
    meta: Metadata,
    kind: Kind,
}

/// An indirect block being filled: the one at some depth on the path to the
/// block mapped last.
struct OpenIndirect {
    /// The `levels` of the paths through it ([`layout::BlockPath`]).
    levels: u8,
    /// The slots followed above it, `index[..depth]` of those paths.
    prefix: [u32; 3],
    /// Where it is.
    nr: u32,
    buf: Vec<u8>,
}

/// The block map of the file being copied.
#[derive(Default)]
struct BlockMap {
    direct: [u32; N_DIRECT],
    indirect: [u32; 3],
    /// The indirect blocks on the path to the block mapped last, by depth.
    open: [Option<OpenIndirect>; 3],
    /// Blocks allocated, indirect ones included.
    blocks: u64,
}

fn internal(e: layout::Error) -> Error {
    Error::Invalid(format!("internal error: {e}"))
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: u32::try_from(nsec)
            .ok()
            .filter(|&n| n < NSEC_PER_SEC)
            .unwrap_or(0),
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct Builder<'a> {
    g: Geometry,
    /// Where blocks go; `None` when only counting: a dry run, or once the
    /// tree is known not to fit.
    out: Option<BlockWriter<'a>>,
    device_path: &'a Path,
    /// `(st_dev, st_ino)` of the device, not to be copied into itself.
    device_id: (u64, u64),
    /// The next block to allocate.
    next_block: u64,
    inodes: Vec<Inode>,
    skipped: Vec<PathBuf>,
    warn: &'a mut dyn Write,
    buf: Vec<u8>,
}

impl Builder<'_> {
    fn write_err(&self) -> impl FnOnce(io::Error) -> Error {
        io_err(format!("cannot write to {}", self.device_path.display()))
    }

    /// A new inode, its index in `inodes`. Past the last inode the tree does
    /// not fit: writing stops.
    fn new_inode(&mut self) -> usize {
        self.inodes.push(Inode::default());
        if self.inodes.len() as u64 > u64::from(self.g.inodes_count) {
            self.out = None;
        }
        self.inodes.len() - 1
    }

    /// The inode number of `inodes[idx]` in what is written; any valid one
    /// when only counting.
    fn ino(&self, idx: usize) -> u32 {
        match self.out {
            Some(_) => idx as u32 + 1,
            None => ROOT_INO,
        }
    }

    /// Allocates the next block and writes `data` there (padded with zeros to
    /// a block); returns its number, 0 when only counting. Past the last
    /// block the tree does not fit: writing stops.
    fn alloc(&mut self, data: &[u8]) -> Result<u32, Error> {
        let nr = self.next_block;
        self.next_block += 1;
        if nr >= self.g.blocks_count {
            self.out = None;
        }
        let err = self.write_err();
        match self.out.as_mut() {
            // `Geometry::new` keeps block numbers below 2^32.
            Some(out) => out.write(nr, data).map_err(err).map(|()| nr as u32),
            None => Ok(0),
        }
    }

    /// Allocates and writes block `file_block` of the file mapped by `m`,
    /// holding `data`, after the indirect blocks that lead to it that are
    /// not allocated yet. Blocks must come in increasing order.
    fn map_block(&mut self, m: &mut BlockMap, file_block: u64, data: &[u8]) -> Result<(), Error> {
        let g = self.g;
        let path = block_path(&g, file_block).map_err(internal)?;
        let levels = usize::from(path.levels);
        if levels == 0 {
            m.direct[path.index[0] as usize] = self.alloc(data)?;
            m.blocks += 1;
            return Ok(());
        }
        for depth in 0..levels {
            let open = m.open[depth].as_ref().is_some_and(|o| {
                o.levels == path.levels && o.prefix[..depth] == path.index[..depth]
            });
            if open {
                continue;
            }
            self.close_indirect(m, depth)?;
            let nr = self.alloc(&[])?;
            m.blocks += 1;
            if depth == 0 {
                m.indirect[levels - 1] = nr;
            } else {
                let parent = m.open[depth - 1]
                    .as_mut()
                    .ok_or(internal(layout::Error::InvalidParameter("block map")))?;
                indirect_set(&g, &mut parent.buf, path.index[depth - 1], nr).map_err(internal)?;
            }
            let mut prefix = [0; 3];
            prefix[..depth].copy_from_slice(&path.index[..depth]);
            m.open[depth] = Some(OpenIndirect {
                levels: path.levels,
                prefix,
                nr,
                buf: vec![0; g.block_size()],
            });
        }
        let nr = self.alloc(data)?;
        m.blocks += 1;
        let last = m.open[levels - 1]
            .as_mut()
            .ok_or(internal(layout::Error::InvalidParameter("block map")))?;
        indirect_set(&g, &mut last.buf, path.index[levels - 1], nr).map_err(internal)
    }

    /// Writes out the open indirect blocks of `m` at depth `from` and deeper.
    fn close_indirect(&mut self, m: &mut BlockMap, from: usize) -> Result<(), Error> {
        for slot in m.open[from..].iter_mut().rev() {
            if let Some(mut o) = slot.take() {
                set_block_csum(&mut o.buf);
                let err = self.write_err();
                if let Some(out) = self.out.as_mut() {
                    out.patch(u64::from(o.nr), &o.buf).map_err(err)?;
                }
            }
        }
        Ok(())
    }

    /// The inode of a file of type `file_type` described by `meta`, of
    /// `size` bytes and `links` links, mapped by `m` (whose indirect blocks
    /// it writes out).
    fn finish_inode(
        &mut self,
        m: &mut BlockMap,
        meta: &Metadata,
        file_type: u16,
        size: u64,
        links: u16,
    ) -> Result<Inode, Error> {
        self.close_indirect(m, 0)?;
        Ok(Inode {
            mode: file_type | (meta.mode() & u32::from(S_IALLUGO)) as u16,
            links,
            uid: meta.uid(),
            gid: meta.gid(),
            flags: 0,
            size,
            atime: timestamp(meta.atime(), meta.atime_nsec()),
            mtime: timestamp(meta.mtime(), meta.mtime_nsec()),
            ctime: timestamp(meta.ctime(), meta.ctime_nsec()),
            // Past 2^32 - 1 the tree does not fit anyway.
            blocks: u32::try_from(m.blocks).unwrap_or(u32::MAX),
            direct: m.direct,
            indirect: m.indirect,
            generation: 0,
        })
    }

    fn skip(&mut self, path: &Path, why: &str) {
        // A warning that cannot be printed is no reason to fail.
        let _ = writeln!(
            self.warn,
            "mkfs.tinyfs: warning: skipping {}: {why}",
            path.display()
        );
        self.skipped.push(path.to_path_buf());
    }

    /// The entries of the host directory `path` to copy, sorted by name.
    fn read_children(&mut self, path: &Path) -> Result<Vec<Child>, Error> {
        let what = || format!("cannot read directory {}", path.display());
        let mut children = Vec::new();
        for entry in fs::read_dir(path).map_err(io_err(what()))? {
            let entry = entry.map_err(io_err(what()))?;
            let child = entry.path();
            let meta = fs::symlink_metadata(&child)
                .map_err(io_err(format!("cannot stat {}", child.display())))?;
            let ft = meta.file_type();
            let kind = if ft.is_file() {
                Kind::File
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink
            } else {
                let what = if ft.is_block_device() {
                    "a block device"
                } else if ft.is_char_device() {
                    "a character device"
                } else if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "of an unknown type"
                };
                self.skip(
                    &child,
                    &format!(
                        "{what} (tinyfs has only regular files, directories and symbolic links)"
                    ),
                );
                continue;
            };
            if kind == Kind::File && (meta.dev(), meta.ino()) == self.device_id {
                self.skip(&child, "the device being formatted");
                continue;
            }
            let name = entry.file_name();
            check_name(&child, name.as_bytes())?;
            children.push(Child {
                name,
                path: child,
                meta,
                kind,
            });
        }
        children.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(children)
    }

    /// Writes directory `d`: numbers its entries, writes its blocks and the
    /// files and symbolic links in it; pushes its subdirectories on `stack`.
    fn copy_dir(&mut self, d: PendingDir, stack: &mut Vec<PendingDir>) -> Result<(), Error> {
        let g = self.g;
        let children = self.read_children(&d.path)?;
        let idx: Vec<usize> = children.iter().map(|_| self.new_inode()).collect();
        let subdirs = children.iter().filter(|c| c.kind == Kind::Dir).count();
        let links = u16::try_from(2 + subdirs).map_err(|_| {
            Error::Invalid(format!(
                "{}: too many subdirectories for tinyfs: {subdirs}, at most {}",
                d.path.display(),
                u16::MAX - 2
            ))
        })?;

        let mut blocks = vec![vec![0u8; g.block_size()]];
        init_first_dir_block(&g, &mut blocks[0], self.ino(d.idx), self.ino(d.parent_idx))
            .map_err(internal)?;
        for (c, &i) in children.iter().zip(&idx) {
            let file_type = match c.kind {
                Kind::File => FT_REG_FILE,
                Kind::Dir => FT_DIR,
                Kind::Symlink => FT_SYMLINK,
            };
            let name = c.name.as_bytes();
            let ino = self.ino(i);
            let last = blocks.len() - 1;
            let inserted = dir_insert(&g, &mut blocks[last], last == 0, ino, name, file_type)
                .map_err(internal)?;
            if inserted.is_none() {
                let mut block = vec![0u8; g.block_size()];
                init_dir_block(&g, &mut block).map_err(internal)?;
                dir_insert(&g, &mut block, false, ino, name, file_type)
                    .map_err(internal)?
                    .ok_or(internal(layout::Error::InvalidParameter("directory entry")))?;
                blocks.push(block);
            }
        }
        let mut m = BlockMap::default();
        for (n, block) in blocks.iter_mut().enumerate() {
            set_block_csum(block);
            self.map_block(&mut m, n as u64, block)?;
        }
        let size = (blocks.len() as u64) << g.block_size_bits;
        self.inodes[d.idx] = self.finish_inode(&mut m, &d.meta, S_IFDIR, size, links)?;

        let mut subdirs = Vec::with_capacity(subdirs);
        for (c, i) in children.into_iter().zip(idx) {
            match c.kind {
                Kind::File => self.inodes[i] = self.copy_file(&c)?,
                Kind::Symlink => self.inodes[i] = self.copy_symlink(&c)?,
                Kind::Dir => subdirs.push(PendingDir {
                    idx: i,
                    parent_idx: d.idx,
                    path: c.path,
                    meta: c.meta,
                }),
            }
        }
        stack.extend(subdirs.into_iter().rev());
        Ok(())
    }

    fn copy_file(&mut self, c: &Child) -> Result<Inode, Error> {
        let max = max_file_size(&self.g);
        let len = c.meta.len();
        if len > max {
            return Err(Error::Invalid(format!(
                "{}: too large for tinyfs with {}-byte blocks: {len} bytes, at most {max}",
                c.path.display(),
                self.g.block_size()
            )));
        }
        let mut file =
            File::open(&c.path).map_err(io_err(format!("cannot open {}", c.path.display())))?;
        let mut buf = std::mem::take(&mut self.buf);
        let mut m = BlockMap::default();
        let copied = self.copy_data(&mut file, &c.path, len, &mut m, &mut buf);
        self.buf = buf;
        let size = copied?;
        self.finish_inode(&mut m, &c.meta, S_IFREG, size, 1)
    }

    /// Copies at most `len` bytes of `file` into blocks mapped by `m`,
    /// leaving blocks of zeros as holes; returns the bytes copied.
    fn copy_data(
        &mut self,
        file: &mut File,
        path: &Path,
        len: u64,
        m: &mut BlockMap,
        buf: &mut [u8],
    ) -> Result<u64, Error> {
        let bs = self.g.block_size();
        let mut size = 0u64;
        let mut file_block = 0u64;
        while size < len {
            let want = (len - size).min(buf.len() as u64) as usize;
            let n = read_full(file, &mut buf[..want])
                .map_err(io_err(format!("cannot read {}", path.display())))?;
            for chunk in buf[..n].chunks(bs) {
                if chunk.iter().any(|&b| b != 0) {
                    self.map_block(m, file_block, chunk)?;
                }
                file_block += 1;
            }
            size += n as u64;
            if n < want {
                break;
            }
        }
        Ok(size)
    }

    fn copy_symlink(&mut self, c: &Child) -> Result<Inode, Error> {
        let target =
            fs::read_link(&c.path).map_err(io_err(format!("cannot read {}", c.path.display())))?;
        let target = target.as_os_str().as_bytes();
        let len = target.len() as u64;
        if len == 0 || len > MAX_SYMLINK_LEN {
            return Err(Error::Invalid(format!(
                "{}: symbolic link target of {len} bytes: tinyfs takes 1 to {MAX_SYMLINK_LEN}",
                c.path.display()
            )));
        }
        let mut m = BlockMap::default();
        // A target has no NUL byte, so no block of it is a hole.
        for (n, chunk) in target.chunks(self.g.block_size()).enumerate() {
            self.map_block(&mut m, n as u64, chunk)?;
        }
        self.finish_inode(&mut m, &c.meta, S_IFLNK, len, 1)
    }
}
