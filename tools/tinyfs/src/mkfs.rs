// SPDX-License-Identifier: GPL-2.0

//! `mkfs.tinyfs`: make a tinyfs file system on a device or image file, empty
//! or holding a copy of a host directory tree (`-d`, see [`populate`]).
//!
//! The binary (`src/bin/mkfs.rs`, Cargo target `mkfs-tinyfs`, installed as
//! `mkfs.tinyfs`) only parses the command line into [`Args`]
//! and calls [`run`]; everything else is here, so that the tests can call it.

pub mod populate;

use crate::layout::{
    self, bitmap_set, init_first_dir_block, set_block_csum, Geometry, Inode, SuperBlock, Timestamp,
    INODE_SIZE, MAX_BLOCKS, MAX_BLOCK_SIZE_BITS, MIN_BLOCK_SIZE_BITS, ROOT_INO, STATE_CLEAN,
    S_IFDIR,
};
use clap::Parser;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default block size in bytes.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// Bytes of file system per inode when the inode count is not given.
pub const BYTES_PER_INODE: u64 = 16 * 1024;

/// Fewest inodes given by default.
pub const MIN_INODES: u32 = 16;

/// Longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;

/// The command line of `mkfs.tinyfs`.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "mkfs.tinyfs",
    bin_name = "mkfs.tinyfs",
    version,
    about = "Make a tinyfs file system on DEVICE (a block device or an image file)"
)]
pub struct Args {
    /// Block size in bytes: 1024, 2048 or 4096
    #[arg(short = 'b', long = "block-size", default_value_t = DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,

    /// Number of inodes [default: one per 16 KiB of file system, at least 16]
    #[arg(short = 'N', long = "inodes")]
    pub inodes: Option<u32>,

    /// Volume label, at most 32 bytes
    #[arg(short = 'L', long = "label")]
    pub label: Option<String>,

    /// UUID, as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx [default: random]
    #[arg(short = 'U', long = "uuid")]
    pub uuid: Option<String>,

    /// Copy the directory tree DIR into the new file system's root
    /// (regular files, directories and symbolic links; hard links are
    /// copied as separate files, other file types are skipped with a warning)
    #[arg(short = 'd', long = "root-dir", value_name = "DIR")]
    pub root_dir: Option<PathBuf>,

    /// Print nothing but errors and warnings
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Print the geometry, write nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,

    /// The block device or image file to format
    pub device: PathBuf,

    /// Size of the file system in blocks [default: the whole device]
    pub blocks: Option<u64>,
}

impl Args {
    /// The arguments for formatting `device` with every option at its default.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Args {
            block_size: DEFAULT_BLOCK_SIZE,
            inodes: None,
            label: None,
            uuid: None,
            root_dir: None,
            quiet: false,
            dry_run: false,
            device: device.into(),
            blocks: None,
        }
    }
}

/// Why `mkfs.tinyfs` did not make a file system.
#[derive(Debug)]
pub enum Error {
    /// An option or argument is invalid.
    Invalid(String),
    /// The device (or the requested size) is too small for a file system.
    TooSmall(String),
    /// The file system is too small for the tree to copy into it (`-d`).
    NoSpace(String),
    /// The device is mounted.
    Mounted {
        /// The device as given.
        device: PathBuf,
        /// Where it is mounted.
        mount_point: String,
    },
    /// An I/O error.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        err: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(msg) | Error::TooSmall(msg) | Error::NoSpace(msg) => f.write_str(msg),
            Error::Mounted {
                device,
                mount_point,
            } => write!(
                f,
                "{} is mounted on {mount_point}; will not make a file system here",
                device.display()
            ),
            Error::Io { what, err } => write!(f, "{what}: {err}"),
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

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |err| Error::Io { what, err }
}

/// log2 of `block_size`, which must be 1024, 2048 or 4096.
pub fn block_size_bits(block_size: u32) -> Result<u32, Error> {
    let bits = block_size.trailing_zeros();
    if block_size.is_power_of_two() && (MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(Error::Invalid(format!(
            "invalid block size {block_size} (1024, 2048 or 4096)"
        )))
    }
}

/// The on-disk label for `label`: at most [`MAX_LABEL_LEN`] bytes, no NUL,
/// NUL-padded.
pub fn parse_label(label: &str) -> Result<[u8; 32], Error> {
    let bytes = label.as_bytes();
    if bytes.len() > MAX_LABEL_LEN {
        return Err(Error::Invalid(format!(
            "label '{label}' is too long: {} bytes, at most {MAX_LABEL_LEN}",
            bytes.len()
        )));
    }
    if bytes.contains(&0) {
        return Err(Error::Invalid("label contains a NUL byte".into()));
    }
    let mut raw = [0u8; 32];
    raw[..bytes.len()].copy_from_slice(bytes);
    Ok(raw)
}

/// Parses a UUID written as 32 hexadecimal digits in groups of 8-4-4-4-12
/// separated by dashes (either case).
pub fn parse_uuid(text: &str) -> Result<[u8; 16], Error> {
    let bad = || {
        Error::Invalid(format!(
            "invalid UUID '{text}' (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))
    };
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return Err(bad());
    }
    let hex: Vec<u8> = groups.concat().into_bytes();
    let mut uuid = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or_else(bad);
        uuid[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(uuid)
}

/// Formats a UUID as 8-4-4-4-12 lower-case hexadecimal digits.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A random (version 4) UUID, from `/dev/urandom`.
pub fn random_uuid() -> Result<[u8; 16], Error> {
    let mut uuid = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .map_err(io_err("cannot read /dev/urandom"))?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    Ok(uuid)
}

/// Undoes the octal escapes (`\040` for a space, ...) of a field of
/// `/proc/self/mounts`.
fn unescape_mount_field(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The backing file of the loop device `/dev/loopN`, from sysfs.
fn sysfs_loop_backing_file(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?.to_str()?;
    if dev.parent() != Some(Path::new("/dev")) || !name.starts_with("loop") {
        return None;
    }
    let text = fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Where `device` is mounted according to `mounts` (the text of
/// `/proc/self/mounts`), if it is: a mount source that is the same path as
/// `device` after resolving symbolic links, the same block device, or a loop
/// device whose backing file `loop_backing_file` says is `device`.
pub fn mounted_on_with(
    mounts: &str,
    device: &Path,
    loop_backing_file: impl Fn(&Path) -> Option<PathBuf>,
) -> Option<String> {
    let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let target = canonical(device);
    let target_rdev = fs::metadata(&target)
        .ok()
        .filter(|m| m.file_type().is_block_device())
        .map(|m| m.rdev());
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(mount_point)) = (fields.next(), fields.next()) else {
            continue;
        };
        let source = PathBuf::from(unescape_mount_field(source));
        if !source.is_absolute() {
            continue;
        }
        let source = canonical(&source);
        let same = source == target
            || target_rdev.is_some_and(|rdev| {
                fs::metadata(&source)
                    .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
            })
            || loop_backing_file(&source).is_some_and(|f| canonical(&f) == target);
        if same {
            return Some(unescape_mount_field(mount_point));
        }
    }
    None
}

/// [`mounted_on_with`], finding the backing files of loop devices in sysfs.
pub fn mounted_on(mounts: &str, device: &Path) -> Option<String> {
    mounted_on_with(mounts, device, sysfs_loop_backing_file)
}

/// The size in bytes of the open device or image file, found by seeking to
/// its end (which works for block devices too).
pub fn device_size(file: &mut File) -> io::Result<u64> {
    let size = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    Ok(size)
}

/// The most inodes that fit in `blocks` blocks of `1 << bits` bytes, or 0 if
/// even one does not.
pub fn max_inodes(bits: u32, blocks: u64) -> u32 {
    let fits = |n: u32| Geometry::new(bits, blocks, n).is_ok();
    if !fits(1) {
        return 0;
    }
    // Largest n with fits(n): fits(lo) holds, fits(hi + 1) does not.
    let (mut lo, mut hi) = (1u32, u32::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The default inode count: one per [`BYTES_PER_INODE`], at most what fits,
/// at least [`MIN_INODES`].
pub fn default_inodes(bits: u32, blocks: u64) -> u32 {
    let wanted = (blocks << bits) / BYTES_PER_INODE;
    let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
    wanted.min(max_inodes(bits, blocks)).max(MIN_INODES)
}

/// The fewest blocks of `1 << bits` bytes that hold a file system with
/// [`MIN_INODES`] inodes.
pub fn min_blocks(bits: u32) -> u64 {
    (1..=MAX_BLOCKS)
        .find(|&n| Geometry::new(bits, n, MIN_INODES).is_ok())
        .unwrap_or(MAX_BLOCKS)
}

/// The geometry for a device of `device_bytes` bytes: `blocks` blocks
/// (default: the whole device, at most [`MAX_BLOCKS`]) of `1 << bits` bytes,
/// with `inodes` inodes (default: [`default_inodes`]).
pub fn plan_geometry(
    bits: u32,
    device_bytes: u64,
    blocks: Option<u64>,
    inodes: Option<u32>,
) -> Result<Geometry, Error> {
    let block_size = 1u64 << bits;
    let device_blocks = device_bytes / block_size;
    let blocks = match blocks {
        None => device_blocks.min(MAX_BLOCKS),
        Some(0) => return Err(Error::Invalid("the block count must be positive".into())),
        Some(n) if n > MAX_BLOCKS => {
            return Err(Error::Invalid(format!(
                "{n} blocks is too many: at most {MAX_BLOCKS}"
            )))
        }
        Some(n) if n > device_blocks => {
            return Err(Error::Invalid(format!(
                "{n} blocks do not fit on the device ({device_blocks} blocks of {block_size} bytes)"
            )))
        }
        Some(n) => n,
    };
    let too_small = || {
        Error::TooSmall(format!(
            "too small for a file system: {blocks} blocks of {block_size} bytes, \
             at least {} needed",
            min_blocks(bits)
        ))
    };
    let inodes = match inodes {
        Some(0) => return Err(Error::Invalid("the inode count must be positive".into())),
        Some(n) => n,
        None => default_inodes(bits, blocks),
    };
    Geometry::new(bits, blocks, inodes).map_err(|_| match max_inodes(bits, blocks) {
        max if max < MIN_INODES.min(inodes) => too_small(),
        max => Error::Invalid(format!(
            "too many inodes: {inodes}; at most {max} fit in {blocks} blocks"
        )),
    })
}

/// The current time.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nsec: d.subsec_nanos(),
    }
}

/// The super block of a new file system of geometry `g`, made at `now`.
pub fn new_super_block(g: Geometry, uuid: [u8; 16], label: [u8; 32], now: Timestamp) -> SuperBlock {
    let now = u64::try_from(now.sec).unwrap_or(0);
    SuperBlock {
        geometry: g,
        feature_compat: 0,
        feature_incompat: 0,
        feature_ro_compat: 0,
        // The root directory has the first data block and the first inode.
        free_blocks: g.blocks_count - g.data_start - 1,
        free_inodes: g.inodes_count - 1,
        state: STATE_CLEAN,
        mkfs_time: now,
        write_time: now,
        uuid,
        label,
    }
}

/// The root directory's inode in a new file system of geometry `g`.
pub fn root_inode(g: &Geometry, now: Timestamp) -> Inode {
    let mut direct = [0u32; layout::N_DIRECT];
    // `Geometry::new` keeps every block number below 2^32.
    direct[0] = g.data_start as u32;
    Inode {
        mode: S_IFDIR | 0o755,
        links: 2,
        uid: 0,
        gid: 0,
        flags: 0,
        size: g.block_size() as u64,
        atime: now,
        mtime: now,
        ctime: now,
        blocks: 1,
        direct,
        indirect: [0; 3],
        generation: 0,
    }
}

/// Writes runs of consecutive blocks with few system calls.
struct BlockWriter<'a> {
    file: &'a File,
    block_size: usize,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> BlockWriter<'a> {
    const CHUNK: usize = 1 << 20;

    fn new(file: &'a File, block_size: usize) -> Self {
        BlockWriter {
            file,
            block_size,
            start: 0,
            buf: Vec::with_capacity(Self::CHUNK),
        }
    }

    /// Queues `data`, at most one block, as block `block`; a short `data` is
    /// padded with zeros to a whole block.
    fn write(&mut self, block: u64, data: &[u8]) -> io::Result<()> {
        debug_assert!(data.len() <= self.block_size);
        let next = self.start + (self.buf.len() / self.block_size) as u64;
        if !self.buf.is_empty() && (block != next || self.buf.len() >= Self::CHUNK) {
            self.flush()?;
        }
        if self.buf.is_empty() {
            self.start = block;
        }
        self.buf.extend_from_slice(data);
        let padded = self.buf.len() + self.block_size - data.len();
        self.buf.resize(padded, 0);
        Ok(())
    }

    /// Replaces block `block`, written (or queued) before, by `data` (one
    /// whole block): in the queue if it is still there, else on the device.
    fn patch(&mut self, block: u64, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(data.len(), self.block_size);
        let queued = (self.buf.len() / self.block_size) as u64;
        if block >= self.start && block - self.start < queued {
            let off = (block - self.start) as usize * self.block_size;
            self.buf[off..off + self.block_size].copy_from_slice(data);
            Ok(())
        } else {
            self.file.write_all_at(data, block * self.block_size as u64)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .write_all_at(&self.buf, self.start * self.block_size as u64)?;
        self.buf.clear();
        Ok(())
    }
}

fn layout_err(e: layout::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// Sets bits `[from, to)` of the bitmap block `buf`.
fn set_bits(buf: &mut [u8], from: u64, to: u64) -> io::Result<()> {
    for bit in from..to {
        let bit =
            u32::try_from(bit).map_err(|_| layout_err(layout::Error::InvalidParameter("bit")))?;
        bitmap_set(buf, bit).map_err(layout_err)?;
    }
    Ok(())
}

/// Writes the metadata of a new file system described by `sb` to `file`:
/// both bitmaps, the whole inode table and, last, block 0 with the super
/// block; every one with its checksum.
///
/// Inodes `1..=inodes.len()` are `inodes` (the first one the root
/// directory's), every other inode is free; so `sb.free_inodes` must be
/// `inodes_count - inodes.len()`. The data blocks in use are the first
/// `blocks_count - data_start - free_blocks` from `data_start` on (at least
/// the root directory's); they are not written here. Does not sync.
pub fn write_metadata(file: &File, sb: &SuperBlock, inodes: &[Inode]) -> io::Result<()> {
    let g = sb.geometry;
    let bs = g.block_size();
    let used_inodes = inodes.len() as u64;
    if inodes.is_empty() || used_inodes + u64::from(sb.free_inodes) != u64::from(g.inodes_count) {
        return Err(layout_err(layout::Error::InvalidParameter(
            "inode list (does not match the free inode count)",
        )));
    }
    if sb.free_blocks >= g.blocks_count - g.data_start {
        return Err(layout_err(layout::Error::InvalidParameter(
            "free block count (the root directory needs a block)",
        )));
    }
    // Blocks [0, used_end) are in use.
    let used_end = g.blocks_count - sb.free_blocks;
    let mut out = BlockWriter::new(file, bs);
    let mut block = vec![0u8; bs];
    // An all-zero metadata block with its checksum: a free part of a bitmap
    // or of the inode table.
    let mut empty = vec![0u8; bs];
    set_block_csum(&mut empty);

    let per_bitmap = g.bits_per_bitmap_block();
    for i in 0..g.inode_bitmap_blocks {
        let base = u64::from(i) * per_bitmap;
        g.init_inode_bitmap(i, &mut block).map_err(layout_err)?;
        // Bit n is inode n + 1.
        set_bits(
            &mut block,
            0,
            used_inodes.saturating_sub(base).min(per_bitmap),
        )?;
        set_block_csum(&mut block);
        out.write(g.inode_bitmap_start + u64::from(i), &block)?;
    }

    for i in 0..g.block_bitmap_blocks {
        let base = u64::from(i) * per_bitmap;
        let end = base + per_bitmap;
        let data = if base >= used_end && end <= g.blocks_count {
            &empty
        } else {
            g.init_block_bitmap(i, &mut block).map_err(layout_err)?;
            let from = g.data_start.clamp(base, end) - base;
            let to = used_end.clamp(base, end) - base;
            set_bits(&mut block, from, to)?;
            set_block_csum(&mut block);
            &block
        };
        out.write(g.block_bitmap_start + u64::from(i), data)?;
    }

    let per_table = u64::from(g.inodes_per_block());
    for i in 0..u64::from(g.inode_table_blocks) {
        let nr = g.inode_table_start + i;
        let first = i * per_table;
        if first >= used_inodes {
            out.write(nr, &empty)?;
            continue;
        }
        block.fill(0);
        let last = (first + per_table).min(used_inodes);
        for (k, inode) in inodes[first as usize..last as usize].iter().enumerate() {
            let raw: &mut [u8; INODE_SIZE] =
                layout::inode_record_mut(&mut block, k * INODE_SIZE).map_err(layout_err)?;
            inode.encode(raw);
        }
        set_block_csum(&mut block);
        out.write(nr, &block)?;
    }
    out.flush()?;

    // The super block last: until it is written, the device holds no valid
    // file system if block 0 was cleared first.
    block.fill(0);
    sb.encode(&mut block);
    file.write_all_at(&block, 0)
}

/// Writes a new, empty file system described by `sb` to `file`, made at
/// `now`: the super block, both bitmaps, the whole inode table (every record
/// zero but the root directory's) and the root directory's block, every
/// metadata block with its checksum. Data blocks other than the root
/// directory's are left as they are. Does not sync.
pub fn write_file_system(file: &File, sb: &SuperBlock, now: Timestamp) -> io::Result<()> {
    let g = sb.geometry;
    let mut block = vec![0u8; g.block_size()];
    init_first_dir_block(&g, &mut block, ROOT_INO, ROOT_INO).map_err(layout_err)?;
    file.write_all_at(&block, g.data_start << g.block_size_bits)?;
    write_metadata(file, sb, &[root_inode(&g, now)])
}

/// A few lines describing the file system `sb` will make on `device`.
pub fn summary(device: &Path, sb: &SuperBlock) -> String {
    let g = &sb.geometry;
    let bytes = g.blocks_count << g.block_size_bits;
    let label_len = sb.label.iter().position(|&b| b == 0).unwrap_or(32);
    let label = match String::from_utf8_lossy(&sb.label[..label_len]) {
        l if l.is_empty() => "(none)".into(),
        l => l,
    };
    let range = |start: u64, n: u32| match n {
        1 => format!("block {start}"),
        _ => format!("blocks {start}-{}", start + u64::from(n) - 1),
    };
    let mut s = String::new();
    s.push_str(&format!("tinyfs on {}\n", device.display()));
    s.push_str(&format!("  block size:    {}\n", g.block_size()));
    s.push_str(&format!(
        "  blocks:        {} ({:.1} MiB)\n",
        g.blocks_count,
        bytes as f64 / (1u64 << 20) as f64
    ));
    s.push_str(&format!("  inodes:        {}\n", g.inodes_count));
    s.push_str(&format!(
        "  inode bitmap:  {}\n",
        range(g.inode_bitmap_start, g.inode_bitmap_blocks)
    ));
    s.push_str(&format!(
        "  block bitmap:  {}\n",
        range(g.block_bitmap_start, g.block_bitmap_blocks)
    ));
    s.push_str(&format!(
        "  inode table:   {}\n",
        range(g.inode_table_start, g.inode_table_blocks)
    ));
    s.push_str(&format!("  data start:    block {}\n", g.data_start));
    s.push_str(&format!(
        "  free:          {} blocks, {} inodes\n",
        sb.free_blocks, sb.free_inodes
    ));
    s.push_str(&format!("  UUID:          {}\n", format_uuid(&sb.uuid)));
    s.push_str(&format!("  label:         {label}\n"));
    s
}

/// Does what `mkfs.tinyfs` does with `args`, printing to `out` and warnings
/// (files of the `-d` tree that are skipped) to standard error; returns the
/// super block written (or that would have been, with `--dry-run`).
pub fn run(args: &Args, out: &mut dyn Write) -> Result<SuperBlock, Error> {
    run_to(args, out, &mut io::stderr())
}

/// [`run`], printing warnings to `warn`.
pub fn run_to(args: &Args, out: &mut dyn Write, warn: &mut dyn Write) -> Result<SuperBlock, Error> {
    let bits = block_size_bits(args.block_size)?;
    let label = parse_label(args.label.as_deref().unwrap_or(""))?;
    let uuid = match &args.uuid {
        Some(text) => parse_uuid(text)?,
        None => random_uuid()?,
    };
    if let Some(dir) = &args.root_dir {
        let meta = fs::metadata(dir).map_err(io_err(format!("cannot stat {}", dir.display())))?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
    }
    let dev = &args.device;
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if let Some(mount_point) = mounted_on(&mounts, dev) {
        return Err(Error::Mounted {
            device: dev.clone(),
            mount_point,
        });
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(!args.dry_run)
        .open(dev)
        .map_err(io_err(format!("cannot open {}", dev.display())))?;
    let meta = file
        .metadata()
        .map_err(io_err(format!("cannot stat {}", dev.display())))?;
    if !meta.file_type().is_file() && !meta.file_type().is_block_device() {
        return Err(Error::Invalid(format!(
            "{} is not a block device or a regular file",
            dev.display()
        )));
    }
    let size = device_size(&mut file).map_err(io_err(format!("cannot size {}", dev.display())))?;
    let geometry = plan_geometry(bits, size, args.blocks, args.inodes).map_err(|e| match e {
        Error::TooSmall(msg) => Error::TooSmall(format!("{}: {msg}", dev.display())),
        e => e,
    })?;
    let now = now();
    let mut sb = new_super_block(geometry, uuid, label, now);
    let what = format!("cannot write to {}", dev.display());
    let tree = match &args.root_dir {
        None => None,
        Some(dir) => {
            if !args.dry_run {
                // Clear the super block area first: should the copy fail,
                // the device holds no file system rather than a stale one.
                file.write_all_at(&vec![0u8; geometry.block_size()], 0)
                    .map_err(io_err(what.clone()))?;
            }
            let tree = populate::copy_tree(&geometry, dir, dev, &file, !args.dry_run, warn)
                .map_err(|e| unusable(e, dev, args.dry_run))?;
            let have_blocks = geometry.blocks_count - geometry.data_start;
            let have_inodes = u64::from(geometry.inodes_count);
            if !tree.fits(&geometry) {
                let mut short = Vec::new();
                if tree.blocks_needed > have_blocks {
                    short.push(format!(
                        "need {} blocks of {} bytes, have {have_blocks}",
                        tree.blocks_needed,
                        geometry.block_size()
                    ));
                }
                if tree.inodes_needed > have_inodes {
                    short.push(format!(
                        "need {} inodes, have {have_inodes} (see --inodes)",
                        tree.inodes_needed
                    ));
                }
                return Err(unusable(
                    Error::NoSpace(format!(
                        "not enough space on {} for {}: {}",
                        dev.display(),
                        dir.display(),
                        short.join(", ")
                    )),
                    dev,
                    args.dry_run,
                ));
            }
            sb.free_blocks = have_blocks - tree.blocks_needed;
            sb.free_inodes = geometry.inodes_count - tree.inodes.len() as u32;
            Some(tree)
        }
    };
    let report = |out: &mut dyn Write, text: &str| {
        out.write_all(text.as_bytes())
            .map_err(io_err("cannot write the summary"))
    };
    let copied = |out: &mut dyn Write| match (&args.root_dir, &tree) {
        (Some(dir), Some(tree)) => report(
            out,
            &format!(
                "  copied:        {} ({} inodes, {} blocks; {} skipped)\n",
                dir.display(),
                tree.inodes_needed,
                tree.blocks_needed,
                tree.skipped.len()
            ),
        ),
        _ => Ok(()),
    };
    if args.dry_run {
        report(out, &summary(dev, &sb))?;
        copied(out)?;
        return report(out, "dry run: nothing written\n").map(|()| sb);
    }
    match &tree {
        Some(tree) => write_metadata(&file, &sb, &tree.inodes),
        None => write_file_system(&file, &sb, now),
    }
    .map_err(io_err(what.clone()))?;
    file.sync_all().map_err(io_err(what))?;
    if !args.quiet {
        report(out, &summary(dev, &sb))?;
        copied(out)?;
    }
    Ok(sb)
}

/// `e`, which stopped the copy of a tree onto `dev`, noting that `dev` no
/// longer holds a file system (unless this is a dry run).
fn unusable(e: Error, dev: &Path, dry_run: bool) -> Error {
    if dry_run {
        return e;
    }
    let note = format!("{} holds no valid file system now", dev.display());
    match e {
        Error::Invalid(msg) => Error::Invalid(format!("{msg}; {note}")),
        Error::TooSmall(msg) => Error::TooSmall(format!("{msg}; {note}")),
        Error::NoSpace(msg) => Error::NoSpace(format!("{msg}; {note}")),
        // Displayed as "what: err".
        Error::Io { what, err } => Error::Io {
            what: format!("{what} ({note})"),
            err,
        },
        e @ Error::Mounted { .. } => e,
    }
}
