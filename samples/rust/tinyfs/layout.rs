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
//!
//! Every metadata block (bitmap, inode table, indirect and directory blocks)
//! ends with a [`CSUM_SIZE`]-byte CRC32C of the bytes before it, like the super
//! block area. The helpers that change a block in place ([`bitmap_set`],
//! [`dir_insert`], ...) do not update that checksum: a cached block is changed
//! many times between two writes, so the caller stores it with
//! [`set_block_csum`] when it writes the block out, and checks it with
//! [`block_csum_ok_with`] when it reads the block in. The `init_*` helpers,
//! which build a whole block, do store it.

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

/// Stores the checksum of `block` in its last [`CSUM_SIZE`] bytes. A buffer
/// shorter than that has no room for one and is left alone.
pub fn set_block_csum(block: &mut [u8]) {
    set_block_csum_with(crc32c, block)
}

/// [`set_block_csum`] with `crc` as the CRC32C function (the kernel's
/// `crc32c()`, say; see [`crc32c`] for the convention).
pub fn set_block_csum_with(crc: impl Fn(u32, &[u8]) -> u32, block: &mut [u8]) {
    let csum = block_csum_with(crc, block);
    let len = block.len();
    if let Some(tail) = block.get_mut(len.saturating_sub(CSUM_SIZE)..) {
        if tail.len() == CSUM_SIZE {
            tail.copy_from_slice(&csum.to_le_bytes());
        }
    }
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

fn get_i64(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(get_u64(b, off).to_le_bytes())
}

fn put_i64(b: &mut [u8], off: usize, v: i64) {
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

/// `Ok` when `block` is exactly one block of `g`.
fn check_block_len(g: &Geometry, block: &[u8]) -> Result<()> {
    if block.len() == g.block_size() {
        Ok(())
    } else {
        Err(Error::InvalidParameter("block buffer length"))
    }
}

// Bitmaps.

/// Where the bit that stands for one block (in the block bitmap) or one inode
/// (in the inode bitmap) lies.
///
/// Both bitmaps are a sequence of bits numbered from 0, LSB first within each
/// byte, laid over consecutive bitmap blocks that each hold
/// [`Geometry::bits_per_bitmap_block`] bits (the block minus its checksum
/// tail). Bit `n` of the block bitmap stands for block `n`; bit `i` of the
/// inode bitmap stands for inode `i + 1`. A set bit means "in use". Bits past
/// the last block or inode (padding in the last bitmap block) are always set,
/// and so are the bits of blocks `[0, data_start)`, the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapPos {
    /// Which bitmap block, counted from the start of the bitmap (0 for the
    /// first).
    pub index: u32,
    /// That bitmap block's number on the device.
    pub block: u64,
    /// The bit within that bitmap block.
    pub bit: u32,
}

impl Geometry {
    /// Bytes of a metadata block before its checksum tail.
    pub fn usable_block_size(&self) -> usize {
        self.block_size() - CSUM_SIZE
    }

    /// Whether `ino` is an inode number of this file system (1 to
    /// `inodes_count`; 0 is never one).
    pub fn is_valid_ino(&self, ino: u32) -> bool {
        ino != 0 && ino <= self.inodes_count
    }

    /// Whether block `block` is a data block, `[data_start, blocks_count)`.
    pub fn is_data_block(&self, block: u64) -> bool {
        block >= self.data_start && block < self.blocks_count
    }

    /// Whether `ptr` may appear as a block pointer (in an inode or an indirect
    /// block): 0 for a hole, or a data block.
    pub fn is_valid_block_ptr(&self, ptr: u32) -> bool {
        ptr == 0 || self.is_data_block(u64::from(ptr))
    }

    fn bitmap_pos(&self, start: u64, n: u64) -> BitmapPos {
        let per_block = self.bits_per_bitmap_block();
        let index = n / per_block;
        BitmapPos {
            index: index as u32,
            block: start + index,
            bit: (n % per_block) as u32,
        }
    }

    /// Where the block bitmap keeps the bit of block `block`. A block number
    /// past the end of the file system is refused as corrupt (block numbers
    /// come from the disk).
    pub fn block_bitmap_pos(&self, block: u64) -> Result<BitmapPos> {
        if block >= self.blocks_count {
            return Err(Error::Corrupt("block number"));
        }
        Ok(self.bitmap_pos(self.block_bitmap_start, block))
    }

    /// Where the inode bitmap keeps the bit of inode `ino`. An invalid inode
    /// number is refused as corrupt (inode numbers come from the disk).
    pub fn inode_bitmap_pos(&self, ino: u32) -> Result<BitmapPos> {
        if !self.is_valid_ino(ino) {
            return Err(Error::Corrupt("inode number"));
        }
        Ok(self.bitmap_pos(self.inode_bitmap_start, u64::from(ino - 1)))
    }

    fn item_of_bit(&self, index: u32, bit: u32) -> Option<u64> {
        let per_block = self.bits_per_bitmap_block();
        if u64::from(bit) >= per_block {
            return None;
        }
        Some(u64::from(index) * per_block + u64::from(bit))
    }

    /// The block that bit `bit` of block bitmap block `index` stands for, or
    /// `None` for a padding bit or a bit out of range.
    pub fn block_of_bit(&self, index: u32, bit: u32) -> Option<u64> {
        self.item_of_bit(index, bit)
            .filter(|&n| n < self.blocks_count)
    }

    /// The inode that bit `bit` of inode bitmap block `index` stands for, or
    /// `None` for a padding bit or a bit out of range.
    pub fn inode_of_bit(&self, index: u32, bit: u32) -> Option<u32> {
        let n = self.item_of_bit(index, bit)?;
        if n < u64::from(self.inodes_count) {
            Some(n as u32 + 1)
        } else {
            None
        }
    }

    /// The bits of bitmap block `index` that must always be set: those of
    /// items `[0, reserved)` and those past item `count`, as two ranges of
    /// bits `[0, a)` and `[b, bits_per_bitmap_block)`.
    fn fixed_bits(&self, index: u32, reserved: u64, count: u64) -> (u32, u32) {
        let per_block = self.bits_per_bitmap_block();
        let base = u64::from(index) * per_block;
        let a = reserved.saturating_sub(base).min(per_block);
        let b = count.saturating_sub(base).min(per_block);
        (a as u32, b as u32)
    }

    fn init_bitmap(
        &self,
        index: u32,
        blocks: u32,
        reserved: u64,
        count: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        check_block_len(self, buf)?;
        if index >= blocks {
            return Err(Error::InvalidParameter("bitmap block index"));
        }
        buf.fill(0);
        let (a, b) = self.fixed_bits(index, reserved, count);
        set_bit_range(buf, 0, a);
        set_bit_range(buf, b, self.bits_per_bitmap_block() as u32);
        set_block_csum(buf);
        Ok(())
    }

    fn check_bitmap(
        &self,
        index: u32,
        blocks: u32,
        reserved: u64,
        count: u64,
        buf: &[u8],
        what: &'static str,
    ) -> Result<()> {
        check_block_len(self, buf)?;
        if index >= blocks {
            return Err(Error::InvalidParameter("bitmap block index"));
        }
        let (a, b) = self.fixed_bits(index, reserved, count);
        if bit_range_set(buf, 0, a) && bit_range_set(buf, b, self.bits_per_bitmap_block() as u32) {
            Ok(())
        } else {
            Err(Error::Corrupt(what))
        }
    }

    /// Builds block `index` of the block bitmap of an empty file system in
    /// `buf` (one block): the metadata blocks `[0, data_start)` and the padding
    /// past `blocks_count` marked used, everything else free, checksum stored.
    pub fn init_block_bitmap(&self, index: u32, buf: &mut [u8]) -> Result<()> {
        self.init_bitmap(
            index,
            self.block_bitmap_blocks,
            self.data_start,
            self.blocks_count,
            buf,
        )
    }

    /// Builds block `index` of the inode bitmap of a file system without any
    /// inode in `buf` (one block): the padding past `inodes_count` marked used,
    /// everything else free, checksum stored.
    pub fn init_inode_bitmap(&self, index: u32, buf: &mut [u8]) -> Result<()> {
        self.init_bitmap(
            index,
            self.inode_bitmap_blocks,
            0,
            u64::from(self.inodes_count),
            buf,
        )
    }

    /// Checks block `index` of the block bitmap (the checksum aside): the
    /// metadata blocks and the padding bits must be marked used.
    pub fn check_block_bitmap(&self, index: u32, buf: &[u8]) -> Result<()> {
        self.check_bitmap(
            index,
            self.block_bitmap_blocks,
            self.data_start,
            self.blocks_count,
            buf,
            "block bitmap (metadata or padding marked free)",
        )
    }

    /// Checks block `index` of the inode bitmap (the checksum aside): the
    /// padding bits must be marked used.
    pub fn check_inode_bitmap(&self, index: u32, buf: &[u8]) -> Result<()> {
        self.check_bitmap(
            index,
            self.inode_bitmap_blocks,
            0,
            u64::from(self.inodes_count),
            buf,
            "inode bitmap (padding marked free)",
        )
    }
}

/// The bitmap bytes of a bitmap block: all but the checksum tail.
fn bitmap_bytes(buf: &[u8]) -> &[u8] {
    buf.get(..buf.len().saturating_sub(CSUM_SIZE))
        .unwrap_or(&[])
}

/// The byte index and mask of bit `bit` of a bitmap block.
fn bit_place(buf: &[u8], bit: u32) -> Result<(usize, u8)> {
    let byte = (bit / 8) as usize;
    if byte >= bitmap_bytes(buf).len() {
        return Err(Error::InvalidParameter("bitmap bit"));
    }
    Ok((byte, 1 << (bit % 8)))
}

/// Sets bits `[from, to)` of the bitmap block `buf` (clamped to its bits).
fn set_bit_range(buf: &mut [u8], from: u32, to: u32) {
    for bit in from..to {
        if let Ok((byte, mask)) = bit_place(buf, bit) {
            if let Some(b) = buf.get_mut(byte) {
                *b |= mask;
            }
        }
    }
}

/// Whether bits `[from, to)` of the bitmap block `buf` are all set (bits past
/// its end count as clear).
fn bit_range_set(buf: &[u8], from: u32, to: u32) -> bool {
    (from..to).all(|bit| bitmap_test(buf, bit).unwrap_or(false))
}

/// Whether bit `bit` of the bitmap block `buf` is set. A bit past the bitmap
/// bytes of the block (into the checksum tail or beyond) is refused.
pub fn bitmap_test(buf: &[u8], bit: u32) -> Result<bool> {
    let (byte, mask) = bit_place(buf, bit)?;
    Ok(buf.get(byte).is_some_and(|b| b & mask != 0))
}

/// Sets bit `bit` of the bitmap block `buf`; returns whether it was already
/// set. The checksum is not updated.
pub fn bitmap_set(buf: &mut [u8], bit: u32) -> Result<bool> {
    let (byte, mask) = bit_place(buf, bit)?;
    let b = buf
        .get_mut(byte)
        .ok_or(Error::InvalidParameter("bitmap bit"))?;
    let was = *b & mask != 0;
    *b |= mask;
    Ok(was)
}

/// Clears bit `bit` of the bitmap block `buf`; returns whether it was set.
/// The checksum is not updated.
pub fn bitmap_clear(buf: &mut [u8], bit: u32) -> Result<bool> {
    let (byte, mask) = bit_place(buf, bit)?;
    let b = buf
        .get_mut(byte)
        .ok_or(Error::InvalidParameter("bitmap bit"))?;
    let was = *b & mask != 0;
    *b &= !mask;
    Ok(was)
}

/// The first clear bit of the bitmap block `buf` at or after bit `start`, or
/// `None` if there is none up to the end of the block. No wrapping around: to
/// search the whole block after a miss, search again from 0.
///
/// A clear bit may still be a padding bit in a corrupt bitmap: map it with
/// [`Geometry::block_of_bit`] or [`Geometry::inode_of_bit`], which refuse
/// those.
pub fn bitmap_find_zero(buf: &[u8], start: u32) -> Option<u32> {
    let bytes = bitmap_bytes(buf);
    let mut i = (start / 8) as usize;
    // Bits below `start` in its byte count as used.
    let first = *bytes.get(i)? | ((1u8 << (start % 8)) - 1);
    if first != 0xff {
        return Some(i as u32 * 8 + first.trailing_ones());
    }
    i += 1;
    while let Some(&b) = bytes.get(i) {
        if b != 0xff {
            return Some(i as u32 * 8 + b.trailing_ones());
        }
        i += 1;
    }
    None
}

/// The number of clear bits of the bitmap block `buf` (its free items, since
/// padding bits are set).
pub fn bitmap_count_zeros(buf: &[u8]) -> u32 {
    bitmap_bytes(buf).iter().map(|b| b.count_zeros()).sum()
}

// Inodes.

/// The inode number of the root directory.
pub const ROOT_INO: u32 = 1;

/// Mask of the file type bits of a mode.
pub const S_IFMT: u16 = 0o170_000;
/// File type of a regular file.
pub const S_IFREG: u16 = 0o100_000;
/// File type of a directory.
pub const S_IFDIR: u16 = 0o040_000;
/// File type of a symbolic link.
pub const S_IFLNK: u16 = 0o120_000;
/// Mask of the permission bits of a mode (with set-user-ID, set-group-ID and
/// sticky bits).
pub const S_IALLUGO: u16 = 0o7777;

/// Inode flags this version knows: none yet. An inode with an unknown flag is
/// corrupt.
pub const INODE_FLAGS_SUPP: u32 = 0;

/// Direct block pointers in an inode.
pub const N_DIRECT: usize = 12;

/// Longest symbolic link target: a symlink's target is its data, read as one
/// page, NUL-terminated (`PATH_MAX - 1` bytes).
pub const MAX_SYMLINK_LEN: u64 = 4095;

/// Nanoseconds in a second: a timestamp's nanoseconds stay below it.
pub const NSEC_PER_SEC: u32 = 1_000_000_000;

/// A point in time: seconds since the epoch (negative before it) and
/// nanoseconds, below [`NSEC_PER_SEC`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, below [`NSEC_PER_SEC`].
    pub nsec: u32,
}

/// Where an inode's record lies in the inode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodePos {
    /// The inode table block's number on the device.
    pub block: u64,
    /// Byte offset of the [`INODE_SIZE`]-byte record within that block.
    pub offset: usize,
}

/// An inode, decoded and validated.
///
/// Inodes are numbered from 1 to `inodes_count` (0 is never an inode); inode
/// `n` is record `(n - 1) % inodes_per_block` of inode table block
/// `(n - 1) / inodes_per_block` (see [`Geometry::inode_pos`]). A record is
/// [`INODE_SIZE`] bytes:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0   | 2  | mode: file type and permissions |
/// | 2   | 2  | links |
/// | 4   | 4  | uid |
/// | 8   | 4  | gid |
/// | 12  | 4  | flags ([`INODE_FLAGS_SUPP`]) |
/// | 16  | 8  | size in bytes |
/// | 24  | 8  | atime, seconds (signed) |
/// | 32  | 8  | mtime, seconds (signed) |
/// | 40  | 8  | ctime, seconds (signed) |
/// | 48  | 4  | atime, nanoseconds |
/// | 52  | 4  | mtime, nanoseconds |
/// | 56  | 4  | ctime, nanoseconds |
/// | 60  | 4  | blocks allocated to the inode, indirect blocks included |
/// | 64  | 48 | 12 direct block pointers |
/// | 112 | 4  | indirect block pointer |
/// | 116 | 4  | double indirect block pointer |
/// | 120 | 4  | triple indirect block pointer |
/// | 124 | 4  | generation |
///
/// The record of a free inode (its bitmap bit clear) is all zero. A block
/// pointer is 0 for a hole, or else a data block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inode {
    /// File type ([`S_IFREG`], [`S_IFDIR`] or [`S_IFLNK`]) and permission bits.
    pub mode: u16,
    /// Hard links (directory entries) to the inode.
    pub links: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Flags: none is defined yet, so 0.
    pub flags: u32,
    /// Size in bytes.
    pub size: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last change of the contents.
    pub mtime: Timestamp,
    /// Last change of the inode.
    pub ctime: Timestamp,
    /// File system blocks allocated to the inode, indirect blocks included.
    pub blocks: u32,
    /// Pointers to the first [`N_DIRECT`] blocks of the file.
    pub direct: [u32; N_DIRECT],
    /// Pointers to the single (`[0]`), double (`[1]`) and triple (`[2]`)
    /// indirect blocks.
    pub indirect: [u32; 3],
    /// Generation number, for NFS file handles.
    pub generation: u32,
}

// Offsets of the inode fields.
const I_MODE: usize = 0;
const I_LINKS: usize = 2;
const I_UID: usize = 4;
const I_GID: usize = 8;
const I_FLAGS: usize = 12;
const I_SIZE: usize = 16;
const I_ATIME: usize = 24;
const I_MTIME: usize = 32;
const I_CTIME: usize = 40;
const I_ATIME_NSEC: usize = 48;
const I_MTIME_NSEC: usize = 52;
const I_CTIME_NSEC: usize = 56;
const I_BLOCKS: usize = 60;
const I_DIRECT: usize = 64;
const I_INDIRECT: usize = 112;
const I_GENERATION: usize = 124;

impl Geometry {
    /// Where the record of inode `ino` lies. An invalid inode number is
    /// refused as corrupt (inode numbers come from the disk).
    pub fn inode_pos(&self, ino: u32) -> Result<InodePos> {
        if !self.is_valid_ino(ino) {
            return Err(Error::Corrupt("inode number"));
        }
        let per_block = self.inodes_per_block();
        let i = ino - 1;
        Ok(InodePos {
            block: self.inode_table_start + u64::from(i / per_block),
            offset: (i % per_block) as usize * INODE_SIZE,
        })
    }

    /// Block pointers in an indirect block: the block minus its checksum
    /// tail, in 4-byte pointers.
    pub fn ptrs_per_block(&self) -> u32 {
        (self.usable_block_size() / 4) as u32
    }
}

/// The [`INODE_SIZE`]-byte record at byte `offset` of the inode table block
/// `block`, as from [`InodePos::offset`]. Refused if it does not fit before
/// the checksum tail.
pub fn inode_record(block: &[u8], offset: usize) -> Result<&[u8; INODE_SIZE]> {
    let end = block.len().saturating_sub(CSUM_SIZE);
    block
        .get(offset..end)
        .and_then(|r| r.get(..INODE_SIZE))
        .and_then(|r| r.try_into().ok())
        .ok_or(Error::InvalidParameter("inode record offset"))
}

/// [`inode_record`], mutable.
pub fn inode_record_mut(block: &mut [u8], offset: usize) -> Result<&mut [u8; INODE_SIZE]> {
    let end = block.len().saturating_sub(CSUM_SIZE);
    block
        .get_mut(offset..end)
        .and_then(|r| r.get_mut(..INODE_SIZE))
        .and_then(|r| r.try_into().ok())
        .ok_or(Error::InvalidParameter("inode record offset"))
}

/// The directory entry file type ([`FT_REG_FILE`], [`FT_DIR`] or
/// [`FT_SYMLINK`]) of an inode of mode `mode`, or [`FT_UNKNOWN`] for a file
/// type tinyfs does not have.
pub fn file_type_of_mode(mode: u16) -> u8 {
    match mode & S_IFMT {
        S_IFREG => FT_REG_FILE,
        S_IFDIR => FT_DIR,
        S_IFLNK => FT_SYMLINK,
        _ => FT_UNKNOWN,
    }
}

impl Inode {
    /// Whether the record `raw` is that of a free inode: all zero.
    pub fn is_free_record(raw: &[u8; INODE_SIZE]) -> bool {
        raw.iter().all(|&b| b == 0)
    }

    /// Decodes and validates the record of an inode in use (see
    /// [`Inode::validate`]). A free inode's record (all zero) is refused: its
    /// mode is not a valid one.
    pub fn decode(g: &Geometry, raw: &[u8; INODE_SIZE]) -> Result<Self> {
        let time = |sec, nsec| Timestamp {
            sec: get_i64(raw, sec),
            nsec: get_u32(raw, nsec),
        };
        let mut direct = [0u32; N_DIRECT];
        for (i, p) in direct.iter_mut().enumerate() {
            *p = get_u32(raw, I_DIRECT + 4 * i);
        }
        let mut indirect = [0u32; 3];
        for (i, p) in indirect.iter_mut().enumerate() {
            *p = get_u32(raw, I_INDIRECT + 4 * i);
        }
        let inode = Inode {
            mode: get_u16(raw, I_MODE),
            links: get_u16(raw, I_LINKS),
            uid: get_u32(raw, I_UID),
            gid: get_u32(raw, I_GID),
            flags: get_u32(raw, I_FLAGS),
            size: get_u64(raw, I_SIZE),
            atime: time(I_ATIME, I_ATIME_NSEC),
            mtime: time(I_MTIME, I_MTIME_NSEC),
            ctime: time(I_CTIME, I_CTIME_NSEC),
            blocks: get_u32(raw, I_BLOCKS),
            direct,
            indirect,
            generation: get_u32(raw, I_GENERATION),
        };
        inode.validate(g)?;
        Ok(inode)
    }

    /// Checks every field against `g`: no unknown flag; a regular file,
    /// directory or symlink mode; nanoseconds below [`NSEC_PER_SEC`]; a size
    /// within [`max_file_size`] (a directory's a non-zero multiple of the
    /// block size, a symlink's 1 to [`MAX_SYMLINK_LEN`]); a block count within
    /// the data blocks; every block pointer a hole or a data block.
    pub fn validate(&self, g: &Geometry) -> Result<()> {
        if self.flags & !INODE_FLAGS_SUPP != 0 {
            return Err(Error::Corrupt("inode flags"));
        }
        let file_type = file_type_of_mode(self.mode);
        if file_type == FT_UNKNOWN {
            return Err(Error::Corrupt("inode mode"));
        }
        if [self.atime, self.mtime, self.ctime]
            .iter()
            .any(|t| t.nsec >= NSEC_PER_SEC)
        {
            return Err(Error::Corrupt("inode timestamp"));
        }
        if self.size > max_file_size(g) {
            return Err(Error::Corrupt("inode size"));
        }
        let block_size = g.block_size() as u64;
        if file_type == FT_DIR && (self.size == 0 || !self.size.is_multiple_of(block_size)) {
            return Err(Error::Corrupt("directory size"));
        }
        if file_type == FT_SYMLINK && (self.size == 0 || self.size > MAX_SYMLINK_LEN) {
            return Err(Error::Corrupt("symlink size"));
        }
        if u64::from(self.blocks) > g.blocks_count - g.data_start {
            return Err(Error::Corrupt("inode block count"));
        }
        if !self
            .direct
            .iter()
            .chain(self.indirect.iter())
            .all(|&p| g.is_valid_block_ptr(p))
        {
            return Err(Error::Corrupt("inode block pointer"));
        }
        Ok(())
    }

    /// Encodes the inode into `raw`. Does not validate: encoding what
    /// [`Inode::validate`] refuses gives a record that decoding refuses.
    pub fn encode(&self, raw: &mut [u8; INODE_SIZE]) {
        put_u16(raw, I_MODE, self.mode);
        put_u16(raw, I_LINKS, self.links);
        put_u32(raw, I_UID, self.uid);
        put_u32(raw, I_GID, self.gid);
        put_u32(raw, I_FLAGS, self.flags);
        put_u64(raw, I_SIZE, self.size);
        put_i64(raw, I_ATIME, self.atime.sec);
        put_i64(raw, I_MTIME, self.mtime.sec);
        put_i64(raw, I_CTIME, self.ctime.sec);
        put_u32(raw, I_ATIME_NSEC, self.atime.nsec);
        put_u32(raw, I_MTIME_NSEC, self.mtime.nsec);
        put_u32(raw, I_CTIME_NSEC, self.ctime.nsec);
        put_u32(raw, I_BLOCKS, self.blocks);
        for (i, &p) in self.direct.iter().enumerate() {
            put_u32(raw, I_DIRECT + 4 * i, p);
        }
        for (i, &p) in self.indirect.iter().enumerate() {
            put_u32(raw, I_INDIRECT + 4 * i, p);
        }
        put_u32(raw, I_GENERATION, self.generation);
    }

    /// The directory entry file type of the inode (see [`file_type_of_mode`]).
    pub fn file_type(&self) -> u8 {
        file_type_of_mode(self.mode)
    }

    /// The pointer where the walk of `path` through the block map starts: the
    /// direct pointer itself, or the indirect block of the path's level.
    pub fn map_root(&self, path: &BlockPath) -> u32 {
        let slot = if path.levels == 0 {
            self.direct.get(path.index[0] as usize)
        } else {
            self.indirect.get(usize::from(path.levels) - 1)
        };
        slot.copied().unwrap_or(0)
    }
}

// Block map.

/// Blocks the largest file can have: [`N_DIRECT`] direct, then `P`, `P^2` and
/// `P^3` through the single, double and triple indirect blocks, where `P` is
/// [`Geometry::ptrs_per_block`]; capped so that the size in bytes fits an
/// `i64` (`loff_t`).
pub fn max_file_blocks(g: &Geometry) -> u64 {
    let p = u64::from(g.ptrs_per_block());
    let tree = N_DIRECT as u64 + p + p * p + p * p * p;
    tree.min((i64::MAX as u64) >> g.block_size_bits)
}

/// The largest file size in bytes: [`max_file_blocks`] blocks.
pub fn max_file_size(g: &Geometry) -> u64 {
    max_file_blocks(g) << g.block_size_bits
}

/// The path from an inode to the pointer of one block of a file.
///
/// With `levels == 0` the pointer is `direct[index[0]]` of the inode. With
/// `levels` from 1 to 3 the walk starts at `indirect[levels - 1]` of the inode
/// (see [`Inode::map_root`]): the pointer to follow in the first indirect
/// block is at `index[0]`, in the next one at `index[1]`, and so on; the
/// pointer found in the last one, at `index[levels - 1]`, is the data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPath {
    /// Indirect blocks on the way: 0 to 3.
    pub levels: u8,
    /// The slots, see the type's description; unused ones are 0.
    pub index: [u32; 3],
}

impl BlockPath {
    /// The slots to follow in the indirect blocks, in order: `index[..levels]`
    /// (empty for a direct pointer).
    pub fn indirect_slots(&self) -> &[u32] {
        self.index.get(..usize::from(self.levels)).unwrap_or(&[])
    }
}

/// The path through the block map to block `file_block` of a file (block 0
/// holds bytes `[0, block_size)`). Refused past [`max_file_blocks`].
pub fn block_path(g: &Geometry, file_block: u64) -> Result<BlockPath> {
    if file_block >= max_file_blocks(g) {
        return Err(Error::InvalidParameter(
            "file block (past the largest file)",
        ));
    }
    // At least 255 for any valid geometry; `max(1)` lets the compiler drop the
    // division-by-zero panic, which objtool does not know as noreturn.
    let p = u64::from(g.ptrs_per_block()).max(1);
    let mut n = file_block;
    if n < N_DIRECT as u64 {
        return Ok(BlockPath {
            levels: 0,
            index: [n as u32, 0, 0],
        });
    }
    n -= N_DIRECT as u64;
    if n < p {
        return Ok(BlockPath {
            levels: 1,
            index: [n as u32, 0, 0],
        });
    }
    n -= p;
    if n < p * p {
        return Ok(BlockPath {
            levels: 2,
            index: [(n / p) as u32, (n % p) as u32, 0],
        });
    }
    n -= p * p;
    if n < p * p * p {
        return Ok(BlockPath {
            levels: 3,
            index: [(n / (p * p)) as u32, (n / p % p) as u32, (n % p) as u32],
        });
    }
    Err(Error::InvalidParameter(
        "file block (past the largest file)",
    ))
}

// Indirect blocks.

/// The byte offset of pointer `index` of an indirect block of `g`.
fn indirect_offset(g: &Geometry, block: &[u8], index: u32) -> Result<usize> {
    check_block_len(g, block)?;
    if index >= g.ptrs_per_block() {
        return Err(Error::InvalidParameter("indirect block index"));
    }
    Ok(index as usize * 4)
}

/// Pointer `index` of the indirect block `block`: [`Geometry::ptrs_per_block`]
/// little-endian `u32` block pointers, then the checksum tail. A pointer that
/// is neither 0 (a hole) nor a data block is refused as corrupt.
pub fn indirect_get(g: &Geometry, block: &[u8], index: u32) -> Result<u32> {
    let off = indirect_offset(g, block, index)?;
    let ptr = get_u32(block, off);
    if !g.is_valid_block_ptr(ptr) {
        return Err(Error::Corrupt("indirect block pointer"));
    }
    Ok(ptr)
}

/// Stores `ptr` (0 or a data block) as pointer `index` of the indirect block
/// `block`. The checksum is not updated.
pub fn indirect_set(g: &Geometry, block: &mut [u8], index: u32, ptr: u32) -> Result<()> {
    let off = indirect_offset(g, block, index)?;
    if !g.is_valid_block_ptr(ptr) {
        return Err(Error::InvalidParameter("block pointer"));
    }
    put_u32(block, off, ptr);
    Ok(())
}

/// Builds an indirect block with every pointer a hole, checksum stored.
pub fn init_indirect_block(g: &Geometry, block: &mut [u8]) -> Result<()> {
    check_block_len(g, block)?;
    block.fill(0);
    set_block_csum(block);
    Ok(())
}

/// Checks an indirect block (the checksum aside): every pointer a hole or a
/// data block.
pub fn check_indirect_block(g: &Geometry, block: &[u8]) -> Result<()> {
    check_block_len(g, block)?;
    for i in 0..g.ptrs_per_block() {
        indirect_get(g, block, i)?;
    }
    Ok(())
}

// Directories.

/// File type of an unused directory record.
pub const FT_UNKNOWN: u8 = 0;
/// File type of a directory entry for a regular file.
pub const FT_REG_FILE: u8 = 1;
/// File type of a directory entry for a directory.
pub const FT_DIR: u8 = 2;
/// File type of a directory entry for a symbolic link.
pub const FT_SYMLINK: u8 = 7;

/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Bytes of a directory record before its name.
pub const DIR_REC_HEADER: usize = 8;

/// The smallest record length for a name of `name_len` bytes: the header and
/// the name, rounded up to a multiple of 4.
pub const fn dir_rec_len(name_len: usize) -> usize {
    DIR_REC_HEADER.saturating_add(name_len).saturating_add(3) & !3
}

/// One record of a directory block.
///
/// A directory block holds variable-length records that tile its bytes
/// `[0, block_size - 4)` exactly (the checksum tail follows). A record is:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | inode (0: unused record) |
/// | 4 | 2 | record length, a multiple of 4, at least [`dir_rec_len`] of the name |
/// | 6 | 1 | name length |
/// | 7 | 1 | file type: [`FT_REG_FILE`], [`FT_DIR`] or [`FT_SYMLINK`] |
/// | 8 | name length | name: 1 to 255 bytes, no `/` and no NUL |
///
/// The bytes after the name up to the record length are slack, where new
/// records may go. An unused record (inode 0) still covers its record length;
/// its other fields are ignored. The first two records of a directory's first
/// block are `"."` (the directory itself) and `".."` (its parent), both in use
/// with type [`FT_DIR`]; no other record may be named `"."` or `".."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Byte offset of the record in the block.
    pub offset: usize,
    /// Record length in bytes.
    pub rec_len: usize,
    /// The inode, or 0 for an unused record.
    pub inode: u32,
    /// [`FT_REG_FILE`], [`FT_DIR`] or [`FT_SYMLINK`] when in use.
    pub file_type: u8,
    /// The name.
    pub name: &'a [u8],
}

impl DirEntry<'_> {
    /// Whether the record is in use (names an inode).
    pub fn is_used(&self) -> bool {
        self.inode != 0
    }
}

/// Whether `name` may name a directory entry: 1 to [`MAX_NAME_LEN`] bytes,
/// no `/`, no NUL.
pub fn is_valid_name(name: &[u8]) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len()) && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Decodes and validates the record at `pos` of a directory block whose
/// records end at `end` (`block.len() >= end`).
fn decode_dir_rec(block: &[u8], pos: usize, end: usize, inodes_count: u32) -> Result<DirEntry<'_>> {
    let avail = end.saturating_sub(pos);
    let rec = block
        .get(pos..end)
        .filter(|r| r.len() >= DIR_REC_HEADER)
        .ok_or(Error::Corrupt(
            "directory entry (crosses the end of the block)",
        ))?;
    let inode = get_u32(rec, 0);
    let rec_len = usize::from(get_u16(rec, 4));
    let name_len = usize::from(rec[6]);
    let file_type = rec[7];
    if rec_len % 4 != 0 {
        return Err(Error::Corrupt("directory entry (unaligned record length)"));
    }
    if rec_len < dir_rec_len(name_len) {
        return Err(Error::Corrupt("directory entry (record length too small)"));
    }
    if rec_len > avail {
        return Err(Error::Corrupt(
            "directory entry (crosses the end of the block)",
        ));
    }
    let name = rec
        .get(DIR_REC_HEADER..DIR_REC_HEADER + name_len)
        .ok_or(Error::Corrupt(
            "directory entry (crosses the end of the block)",
        ))?;
    if inode != 0 {
        if inode > inodes_count {
            return Err(Error::Corrupt("directory entry inode number"));
        }
        if !is_valid_name(name) {
            return Err(Error::Corrupt("directory entry name"));
        }
        if !matches!(file_type, FT_REG_FILE | FT_DIR | FT_SYMLINK) {
            return Err(Error::Corrupt("directory entry file type"));
        }
    }
    Ok(DirEntry {
        offset: pos,
        rec_len,
        inode,
        file_type,
        name,
    })
}

/// Iterator over the records of a directory block, used and unused, each
/// validated before it is returned. On the first bad record it returns that
/// error and then ends. It never panics, whatever the block holds; it does not
/// check the checksum.
#[derive(Debug, Clone)]
pub struct DirIter<'a> {
    block: &'a [u8],
    block_size: usize,
    inodes_count: u32,
    first: bool,
    pos: usize,
    count: u32,
    done: bool,
}

impl<'a> DirIter<'a> {
    /// Iterates over the records of `block`, one block of `g`; `first` says
    /// whether it is the first block of its directory, which must start with
    /// `"."` and `".."`.
    pub fn new(g: &Geometry, block: &'a [u8], first: bool) -> Self {
        DirIter {
            block,
            block_size: g.block_size(),
            inodes_count: g.inodes_count,
            first,
            pos: 0,
            count: 0,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<DirEntry<'a>>> {
        if self.block.len() != self.block_size {
            return Err(Error::InvalidParameter("block buffer length"));
        }
        let end = self.block_size - CSUM_SIZE;
        if self.pos >= end {
            if self.first && self.count < 2 {
                return Err(Error::Corrupt("directory block (no . or ..)"));
            }
            return Ok(None);
        }
        let e = decode_dir_rec(self.block, self.pos, end, self.inodes_count)?;
        let dots = e.name == b"." || e.name == b"..";
        if self.first && self.count < 2 {
            let want: &[u8] = if self.count == 0 { b"." } else { b".." };
            if !e.is_used() || e.name != want || e.file_type != FT_DIR {
                return Err(Error::Corrupt("directory block (no . or ..)"));
            }
        } else if e.is_used() && dots {
            return Err(Error::Corrupt("directory entry (misplaced . or ..)"));
        }
        self.pos += e.rec_len;
        self.count += 1;
        Ok(Some(e))
    }
}

impl<'a> Iterator for DirIter<'a> {
    type Item = Result<DirEntry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for DirIter<'_> {}

/// Checks a whole directory block (the checksum aside): every record valid,
/// the records tiling the block; for the first block of directory `dir_ino`
/// (`first`), `"."` naming `dir_ino` and `".."` following it.
pub fn check_dir_block(g: &Geometry, block: &[u8], first: bool, dir_ino: u32) -> Result<()> {
    for e in DirIter::new(g, block, first) {
        let e = e?;
        if first && e.offset == 0 && e.inode != dir_ino {
            return Err(Error::Corrupt("directory entry . (not the directory)"));
        }
    }
    Ok(())
}

/// Writes a record of length `rec_len` at `offset`, its slack zeroed.
fn put_dir_rec(
    block: &mut [u8],
    offset: usize,
    rec_len: usize,
    inode: u32,
    name: &[u8],
    file_type: u8,
) -> Result<()> {
    let bad = Error::InvalidParameter("directory record");
    let rec_len16 = u16::try_from(rec_len).map_err(|_| bad)?;
    let name_len = u8::try_from(name.len()).map_err(|_| bad)?;
    let end = offset.checked_add(rec_len).ok_or(bad)?;
    let rec = block.get_mut(offset..end).ok_or(bad)?;
    if rec_len < dir_rec_len(name.len()) {
        return Err(bad);
    }
    rec.fill(0);
    put_u32(rec, 0, inode);
    put_u16(rec, 4, rec_len16);
    rec[6] = name_len;
    rec[7] = file_type;
    rec[DIR_REC_HEADER..DIR_REC_HEADER + name.len()].copy_from_slice(name);
    Ok(())
}

/// Sets the record length of the record at `offset`.
fn set_dir_rec_len(block: &mut [u8], offset: usize, rec_len: usize) -> Result<()> {
    let bad = Error::InvalidParameter("directory record");
    let rec_len = u16::try_from(rec_len).map_err(|_| bad)?;
    let field = block
        .get_mut(offset.saturating_add(4)..offset.saturating_add(6))
        .ok_or(bad)?;
    field.copy_from_slice(&rec_len.to_le_bytes());
    Ok(())
}

fn check_new_entry(g: &Geometry, inode: u32, file_type: u8) -> Result<()> {
    if !g.is_valid_ino(inode) {
        return Err(Error::InvalidParameter("inode number"));
    }
    if !matches!(file_type, FT_REG_FILE | FT_DIR | FT_SYMLINK) {
        return Err(Error::InvalidParameter("file type"));
    }
    Ok(())
}

/// Builds the first block of directory `dir_ino` whose parent is
/// `parent_ino` (the root directory is its own parent): `"."`, then `".."`
/// whose record spans the rest of the block; checksum stored.
pub fn init_first_dir_block(
    g: &Geometry,
    block: &mut [u8],
    dir_ino: u32,
    parent_ino: u32,
) -> Result<()> {
    check_block_len(g, block)?;
    check_new_entry(g, dir_ino, FT_DIR)?;
    check_new_entry(g, parent_ino, FT_DIR)?;
    block.fill(0);
    let dot_len = dir_rec_len(1);
    put_dir_rec(block, 0, dot_len, dir_ino, b".", FT_DIR)?;
    put_dir_rec(
        block,
        dot_len,
        g.usable_block_size() - dot_len,
        parent_ino,
        b"..",
        FT_DIR,
    )?;
    set_block_csum(block);
    Ok(())
}

/// Builds a directory block past the first: one unused record spanning the
/// block; checksum stored.
pub fn init_dir_block(g: &Geometry, block: &mut [u8]) -> Result<()> {
    check_block_len(g, block)?;
    block.fill(0);
    put_dir_rec(block, 0, g.usable_block_size(), 0, b"", FT_UNKNOWN)?;
    set_block_csum(block);
    Ok(())
}

/// Adds an entry `name` for inode `inode` of type `file_type` to the
/// directory block `block` (`first`: the directory's first block), like
/// ext2: in an unused record long enough, or in the slack after a record's
/// name (but `"."`'s), which then shrinks to fit its name. Returns the new record's offset,
/// or `None` if the block has no room. The checksum is not updated.
///
/// The whole block is validated first; a bad block is refused. `name` must be
/// valid and neither `"."` nor `".."`. Whether the name already exists in the
/// directory is the caller's business.
pub fn dir_insert(
    g: &Geometry,
    block: &mut [u8],
    first: bool,
    inode: u32,
    name: &[u8],
    file_type: u8,
) -> Result<Option<usize>> {
    if !is_valid_name(name) || name == b"." || name == b".." {
        return Err(Error::InvalidParameter("name"));
    }
    check_new_entry(g, inode, file_type)?;
    let needed = dir_rec_len(name.len());
    // Where the new record goes: (its offset, its length); and the record
    // whose slack it takes, to shrink first: (its offset, its new length).
    let mut slot = None;
    let mut shrink = None;
    for (i, e) in (0u32..).zip(DirIter::new(g, block, first)) {
        let e = e?;
        // Nothing goes between "." and "..".
        if slot.is_some() || (first && i == 0) {
            continue;
        }
        if !e.is_used() {
            if e.rec_len >= needed {
                slot = Some((e.offset, e.rec_len));
            }
        } else {
            let used = dir_rec_len(e.name.len());
            if e.rec_len - used >= needed {
                slot = Some((e.offset + used, e.rec_len - used));
                shrink = Some((e.offset, used));
            }
        }
    }
    let Some((offset, rec_len)) = slot else {
        return Ok(None);
    };
    if let Some((prev, prev_len)) = shrink {
        set_dir_rec_len(block, prev, prev_len)?;
    }
    put_dir_rec(block, offset, rec_len, inode, name, file_type)?;
    Ok(Some(offset))
}

/// Removes the entry whose record is at `offset` from the directory block
/// `block` (`first`: the directory's first block): the previous record
/// absorbs its length, or, for the first record of a block, it becomes an
/// unused record. The checksum is not updated.
///
/// The whole block is validated first; a bad block is refused, and so is an
/// offset that is not that of a record in use, or that of `"."` or `".."`.
pub fn dir_remove(g: &Geometry, block: &mut [u8], first: bool, offset: usize) -> Result<()> {
    // The record to remove: (its position, its length, whether in use); and
    // the one before it: (its offset, its length).
    let mut found = None;
    let mut before = None;
    let mut prev = None;
    for (i, e) in (0u32..).zip(DirIter::new(g, block, first)) {
        let e = e?;
        if found.is_none() {
            if e.offset == offset {
                found = Some((i, e.rec_len, e.is_used()));
                before = prev;
            }
            prev = Some((e.offset, e.rec_len));
        }
    }
    let Some((i, rec_len, used)) = found else {
        return Err(Error::InvalidParameter("directory entry offset"));
    };
    if !used {
        return Err(Error::InvalidParameter("directory entry (unused)"));
    }
    if first && i < 2 {
        return Err(Error::InvalidParameter("directory entry (. or ..)"));
    }
    match before {
        Some((prev, prev_len)) => set_dir_rec_len(block, prev, prev_len + rec_len),
        None => put_dir_rec(block, offset, rec_len, 0, b"", FT_UNKNOWN),
    }
}

/// Points the entry whose record is at `offset` to `inode` of type
/// `file_type` (a rename over an existing name, or `".."` of a directory that
/// moves). `"."` cannot change and `".."` must stay a directory. The whole
/// block is validated first. The checksum is not updated.
pub fn dir_set_entry(
    g: &Geometry,
    block: &mut [u8],
    first: bool,
    offset: usize,
    inode: u32,
    file_type: u8,
) -> Result<()> {
    check_new_entry(g, inode, file_type)?;
    let mut found = None;
    for (i, e) in (0u32..).zip(DirIter::new(g, block, first)) {
        let e = e?;
        if e.offset == offset && e.is_used() {
            found = Some(i);
        }
    }
    match found {
        None => Err(Error::InvalidParameter("directory entry offset")),
        Some(0) if first => Err(Error::InvalidParameter("directory entry (.)")),
        Some(1) if first && file_type != FT_DIR => Err(Error::InvalidParameter("file type")),
        Some(_) => {
            let rec = block
                .get_mut(offset..offset + DIR_REC_HEADER)
                .ok_or(Error::InvalidParameter("directory entry offset"))?;
            put_u32(rec, 0, inode);
            rec[7] = file_type;
            Ok(())
        }
    }
}

/// The entry named `name` in the directory block `block` (`first`: the
/// directory's first block), validating the records up to it. `"."` and
/// `".."` are found like any other name.
pub fn dir_find<'a>(
    g: &Geometry,
    block: &'a [u8],
    first: bool,
    name: &[u8],
) -> Result<Option<DirEntry<'a>>> {
    for e in DirIter::new(g, block, first) {
        let e = e?;
        if e.is_used() && e.name == name {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Whether the directory block `block` (`first`: the directory's first block)
/// names nothing but `"."` and `".."`: what `rmdir` needs of every block. The
/// whole block is validated.
pub fn dir_block_is_empty(g: &Geometry, block: &[u8], first: bool) -> Result<bool> {
    let mut empty = true;
    for (i, e) in (0u32..).zip(DirIter::new(g, block, first)) {
        let e = e?;
        if e.is_used() && !(first && i < 2) {
            empty = false;
        }
    }
    Ok(empty)
}
