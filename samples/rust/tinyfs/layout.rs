// SPDX-License-Identifier: GPL-2.0

//! The tinyfs on-disk format.
//!
//! This file is the one definition of the format. The kernel module includes it
//! as a module and the userspace tools (`tools/tinyfs`) include the same file by
//! path, so it uses `core` only: no kernel types, no `std`, no allocation, no
//! `unsafe`. Every multi-byte field is little-endian. See
//! `Documentation/filesystems/tinyfs.rst` for the description in prose.
//!
//! Every value read from a disk is validated here before anyone uses it: the
//! decoders return [`Error`] for a bad image and never panic, whatever the bytes.

/// `"TNFS"` read as a little-endian `u32`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TNFS");
/// The format version this file describes.
pub const VERSION: u32 = 1;

/// Smallest supported block size, as a power of two (1024 bytes).
pub const MIN_BLOCK_SIZE_BITS: u32 = 10;
/// Largest supported block size, as a power of two (4096 bytes).
pub const MAX_BLOCK_SIZE_BITS: u32 = 12;

/// The super block lives in the first `SUPER_SIZE` bytes of the device, whatever
/// the block size, so that it can be read before the block size is known.
pub const SUPER_SIZE: usize = 1024;

/// Every metadata block (and the super block area) ends with a CRC32C of the
/// bytes before it, this many bytes long.
pub const CSUM_SIZE: usize = 4;

/// Incompatible features this version knows: none yet. A file system with an
/// unknown incompatible feature is refused.
pub const FEATURE_INCOMPAT_SUPP: u32 = 0;
/// Read-only compatible features this version knows: none yet. A file system
/// with an unknown one may only be mounted read-only.
pub const FEATURE_RO_COMPAT_SUPP: u32 = 0;

/// The file system was unmounted cleanly.
pub const STATE_CLEAN: u16 = 1;
/// The file system is mounted, or was not unmounted cleanly.
pub const STATE_DIRTY: u16 = 2;

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The magic number is not [`MAGIC`]: this is not a tinyfs image.
    BadMagic,
    /// The format version is not one this code reads.
    BadVersion(u32),
    /// Incompatible features this code does not know.
    UnsupportedFeatures(u32),
    /// A CRC32C did not match: the named structure is corrupt.
    BadChecksum(&'static str),
    /// A field is out of range or inconsistent with the others.
    Corrupt(&'static str),
    /// A parameter given to a constructor (not read from disk) is invalid.
    InvalidParameter(&'static str),
}

impl Error {
    /// Whether the error means "corrupt image" (`EUCLEAN` in the kernel), as
    /// opposed to "not an image this code can use" (`EINVAL`).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::BadChecksum(_) | Error::Corrupt(_))
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BadMagic => write!(f, "bad magic number (not a tinyfs image)"),
            Error::BadVersion(v) => write!(f, "unsupported format version {v}"),
            Error::UnsupportedFeatures(x) => write!(f, "unsupported incompatible features {x:#x}"),
            Error::BadChecksum(what) => write!(f, "{what}: checksum mismatch"),
            Error::Corrupt(what) => write!(f, "corrupt {what}"),
            Error::InvalidParameter(what) => write!(f, "invalid {what}"),
        }
    }
}

/// Result of the decoders and constructors in this file.
pub type Result<T> = core::result::Result<T, Error>;

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// CRC32C (Castagnoli) of `data`, continuing from `crc`.
///
/// Same convention as the kernel's `crc32c()`: no inversion on entry or exit,
/// so `crc32c(!0, data)` is the bitwise complement of the usual CRC32C. The
/// kernel module may use the kernel's (accelerated) function instead: the two
/// must agree, and the module's tests check that they do.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The checksum a metadata block (or the super block area) must carry in its
/// last [`CSUM_SIZE`] bytes: `crc32c(!0, ...)` of the bytes before them.
///
/// `crc` computes a CRC32C with the kernel's convention (see [`crc32c`]).
pub fn block_csum_with(crc: impl Fn(u32, &[u8]) -> u32, block: &[u8]) -> u32 {
    crc(!0, &block[..block.len().saturating_sub(CSUM_SIZE)])
}

/// Stores the checksum of `block` in its last [`CSUM_SIZE`] bytes.
pub fn set_block_csum(block: &mut [u8]) {
    let csum = block_csum_with(crc32c, block);
    let len = block.len();
    block[len - CSUM_SIZE..].copy_from_slice(&csum.to_le_bytes());
}

/// Whether the checksum stored at the end of `block` matches its contents.
pub fn block_csum_ok_with(crc: impl Fn(u32, &[u8]) -> u32, block: &[u8]) -> bool {
    if block.len() < CSUM_SIZE {
        return false;
    }
    let stored = get_u32(block, block.len() - CSUM_SIZE);
    stored == block_csum_with(crc, block)
}

fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(x)
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where the regions of a file system lie, in blocks. Derived from the block
/// size and the block and inode counts alone, so a super block that stores a
/// different geometry is corrupt.
///
/// Block 0 holds the super block; then come the inode bitmap, the block bitmap
/// and the inode table; data blocks fill the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// log2 of the block size.
    pub block_size_bits: u32,
    /// Blocks in the file system (the device may be larger).
    pub blocks_count: u64,
    /// Inodes in the file system; inode numbers run from 1 to `inodes_count`.
    pub inodes_count: u32,
    /// First block of the inode bitmap.
    pub inode_bitmap_start: u64,
    /// Blocks of the inode bitmap.
    pub inode_bitmap_blocks: u32,
    /// First block of the block bitmap.
    pub block_bitmap_start: u64,
    /// Blocks of the block bitmap.
    pub block_bitmap_blocks: u32,
    /// First block of the inode table.
    pub inode_table_start: u64,
    /// Blocks of the inode table.
    pub inode_table_blocks: u32,
    /// First data block.
    pub data_start: u64,
}

/// Size of an inode record in the inode table.
pub const INODE_SIZE: usize = 128;

/// Block numbers are 32 bits wide on disk.
pub const MAX_BLOCKS: u64 = u32::MAX as u64;

/// Fewest data blocks a file system may have (the root directory needs one).
pub const MIN_DATA_BLOCKS: u64 = 16;

impl Geometry {
    /// The geometry of a file system of `blocks_count` blocks of
    /// `1 << block_size_bits` bytes with `inodes_count` inodes.
    pub fn new(block_size_bits: u32, blocks_count: u64, inodes_count: u32) -> Result<Self> {
        if !(MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS).contains(&block_size_bits) {
            return Err(Error::InvalidParameter("block size"));
        }
        if blocks_count > MAX_BLOCKS {
            return Err(Error::InvalidParameter("block count (too large)"));
        }
        if inodes_count == 0 {
            return Err(Error::InvalidParameter("inode count"));
        }
        let bs = 1u64 << block_size_bits;
        let bits_per_block = (bs - CSUM_SIZE as u64) * 8;
        let inodes_per_block = (bs - CSUM_SIZE as u64) / INODE_SIZE as u64;
        let inode_bitmap_blocks = u64::from(inodes_count).div_ceil(bits_per_block);
        let block_bitmap_blocks = blocks_count.div_ceil(bits_per_block);
        let inode_table_blocks = u64::from(inodes_count).div_ceil(inodes_per_block);
        let inode_bitmap_start = 1;
        let block_bitmap_start = inode_bitmap_start + inode_bitmap_blocks;
        let inode_table_start = block_bitmap_start + block_bitmap_blocks;
        let data_start = inode_table_start + inode_table_blocks;
        if data_start.saturating_add(MIN_DATA_BLOCKS) > blocks_count {
            return Err(Error::InvalidParameter("size (too small for its metadata)"));
        }
        Ok(Geometry {
            block_size_bits,
            blocks_count,
            inodes_count,
            inode_bitmap_start,
            inode_bitmap_blocks: inode_bitmap_blocks as u32,
            block_bitmap_start,
            block_bitmap_blocks: block_bitmap_blocks as u32,
            inode_table_start,
            inode_table_blocks: inode_table_blocks as u32,
            data_start,
        })
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> usize {
        1 << self.block_size_bits
    }

    /// Bits held by one bitmap block.
    pub fn bits_per_bitmap_block(&self) -> u64 {
        (self.block_size() - CSUM_SIZE) as u64 * 8
    }

    /// Inode records held by one inode table block.
    pub fn inodes_per_block(&self) -> u32 {
        ((self.block_size() - CSUM_SIZE) / INODE_SIZE) as u32
    }
}

/// The super block, decoded and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperBlock {
    /// Where everything lies.
    pub geometry: Geometry,
    /// Compatible features (ignored when unknown).
    pub feature_compat: u32,
    /// Incompatible features (refused when unknown).
    pub feature_incompat: u32,
    /// Read-only compatible features (read-only mount when unknown).
    pub feature_ro_compat: u32,
    /// Free data blocks.
    pub free_blocks: u64,
    /// Free inodes.
    pub free_inodes: u32,
    /// [`STATE_CLEAN`] or [`STATE_DIRTY`].
    pub state: u16,
    /// Creation time, seconds since the epoch.
    pub mkfs_time: u64,
    /// Last write of the super block, seconds since the epoch.
    pub write_time: u64,
    /// The file system's UUID.
    pub uuid: [u8; 16],
    /// The label, NUL-padded.
    pub label: [u8; 32],
}

// Offsets of the super block fields.
const SB_MAGIC: usize = 0;
const SB_VERSION: usize = 4;
const SB_BLOCK_SIZE_BITS: usize = 8;
const SB_FEATURE_COMPAT: usize = 12;
const SB_FEATURE_INCOMPAT: usize = 16;
const SB_FEATURE_RO_COMPAT: usize = 20;
const SB_BLOCKS_COUNT: usize = 24;
const SB_INODES_COUNT: usize = 32;
const SB_FREE_INODES: usize = 36;
const SB_FREE_BLOCKS: usize = 40;
const SB_INODE_BITMAP_START: usize = 48;
const SB_INODE_BITMAP_BLOCKS: usize = 56;
const SB_BLOCK_BITMAP_BLOCKS: usize = 60;
const SB_BLOCK_BITMAP_START: usize = 64;
const SB_INODE_TABLE_START: usize = 72;
const SB_INODE_TABLE_BLOCKS: usize = 80;
const SB_STATE: usize = 84;
const SB_DATA_START: usize = 88;
const SB_MKFS_TIME: usize = 96;
const SB_WRITE_TIME: usize = 104;
const SB_UUID: usize = 112;
const SB_LABEL: usize = 128;
const SB_END: usize = 160;

impl SuperBlock {
    /// Decodes and validates the super block area (the first [`SUPER_SIZE`]
    /// bytes of the device), with `crc` as the CRC32C function.
    pub fn decode_with(crc: impl Fn(u32, &[u8]) -> u32, raw: &[u8]) -> Result<Self> {
        if raw.len() < SUPER_SIZE {
            return Err(Error::Corrupt("super block (short read)"));
        }
        let raw = &raw[..SUPER_SIZE];
        if get_u32(raw, SB_MAGIC) != MAGIC {
            return Err(Error::BadMagic);
        }
        if !block_csum_ok_with(crc, raw) {
            return Err(Error::BadChecksum("super block"));
        }
        let version = get_u32(raw, SB_VERSION);
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let feature_incompat = get_u32(raw, SB_FEATURE_INCOMPAT);
        if feature_incompat & !FEATURE_INCOMPAT_SUPP != 0 {
            return Err(Error::UnsupportedFeatures(
                feature_incompat & !FEATURE_INCOMPAT_SUPP,
            ));
        }
        let geometry = Geometry::new(
            get_u32(raw, SB_BLOCK_SIZE_BITS),
            get_u64(raw, SB_BLOCKS_COUNT),
            get_u32(raw, SB_INODES_COUNT),
        )
        .map_err(|_| Error::Corrupt("super block geometry"))?;
        let stored = Geometry {
            inode_bitmap_start: get_u64(raw, SB_INODE_BITMAP_START),
            inode_bitmap_blocks: get_u32(raw, SB_INODE_BITMAP_BLOCKS),
            block_bitmap_start: get_u64(raw, SB_BLOCK_BITMAP_START),
            block_bitmap_blocks: get_u32(raw, SB_BLOCK_BITMAP_BLOCKS),
            inode_table_start: get_u64(raw, SB_INODE_TABLE_START),
            inode_table_blocks: get_u32(raw, SB_INODE_TABLE_BLOCKS),
            data_start: get_u64(raw, SB_DATA_START),
            ..geometry
        };
        if stored != geometry {
            return Err(Error::Corrupt("super block geometry"));
        }
        let free_blocks = get_u64(raw, SB_FREE_BLOCKS);
        if free_blocks > geometry.blocks_count - geometry.data_start {
            return Err(Error::Corrupt("super block free block count"));
        }
        let free_inodes = get_u32(raw, SB_FREE_INODES);
        if free_inodes >= geometry.inodes_count {
            // The root directory always uses one.
            return Err(Error::Corrupt("super block free inode count"));
        }
        let state = get_u16(raw, SB_STATE);
        if state != STATE_CLEAN && state != STATE_DIRTY {
            return Err(Error::Corrupt("super block state"));
        }
        if raw[SB_END..SUPER_SIZE - CSUM_SIZE].iter().any(|&b| b != 0) {
            return Err(Error::Corrupt("super block (reserved bytes not zero)"));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[SB_UUID..SB_UUID + 16]);
        let mut label = [0u8; 32];
        label.copy_from_slice(&raw[SB_LABEL..SB_LABEL + 32]);
        Ok(SuperBlock {
            geometry,
            feature_compat: get_u32(raw, SB_FEATURE_COMPAT),
            feature_incompat,
            feature_ro_compat: get_u32(raw, SB_FEATURE_RO_COMPAT),
            free_blocks,
            free_inodes,
            state,
            mkfs_time: get_u64(raw, SB_MKFS_TIME),
            write_time: get_u64(raw, SB_WRITE_TIME),
            uuid,
            label,
        })
    }

    /// [`SuperBlock::decode_with`] with this file's [`crc32c`].
    pub fn decode(raw: &[u8]) -> Result<Self> {
        Self::decode_with(crc32c, raw)
    }

    /// Encodes the super block into `raw` (at least [`SUPER_SIZE`] bytes), checksum
    /// included. Bytes of `raw` past the super block area are left alone.
    pub fn encode(&self, raw: &mut [u8]) {
        let raw = &mut raw[..SUPER_SIZE];
        raw.fill(0);
        let g = &self.geometry;
        put_u32(raw, SB_MAGIC, MAGIC);
        put_u32(raw, SB_VERSION, VERSION);
        put_u32(raw, SB_BLOCK_SIZE_BITS, g.block_size_bits);
        put_u32(raw, SB_FEATURE_COMPAT, self.feature_compat);
        put_u32(raw, SB_FEATURE_INCOMPAT, self.feature_incompat);
        put_u32(raw, SB_FEATURE_RO_COMPAT, self.feature_ro_compat);
        put_u64(raw, SB_BLOCKS_COUNT, g.blocks_count);
        put_u32(raw, SB_INODES_COUNT, g.inodes_count);
        put_u32(raw, SB_FREE_INODES, self.free_inodes);
        put_u64(raw, SB_FREE_BLOCKS, self.free_blocks);
        put_u64(raw, SB_INODE_BITMAP_START, g.inode_bitmap_start);
        put_u32(raw, SB_INODE_BITMAP_BLOCKS, g.inode_bitmap_blocks);
        put_u32(raw, SB_BLOCK_BITMAP_BLOCKS, g.block_bitmap_blocks);
        put_u64(raw, SB_BLOCK_BITMAP_START, g.block_bitmap_start);
        put_u64(raw, SB_INODE_TABLE_START, g.inode_table_start);
        put_u32(raw, SB_INODE_TABLE_BLOCKS, g.inode_table_blocks);
        put_u16(raw, SB_STATE, self.state);
        put_u64(raw, SB_DATA_START, g.data_start);
        put_u64(raw, SB_MKFS_TIME, self.mkfs_time);
        put_u64(raw, SB_WRITE_TIME, self.write_time);
        raw[SB_UUID..SB_UUID + 16].copy_from_slice(&self.uuid);
        raw[SB_LABEL..SB_LABEL + 32].copy_from_slice(&self.label);
        set_block_csum(raw);
    }
}
