// SPDX-License-Identifier: GPL-2.0

//! Host tests of the on-disk format shared with the kernel module.

use tinyfs::layout::*;

/// The usual CRC32C check value, for "123456789", is 0xe3069283; the kernel's
/// convention (no final inversion) gives its complement.
#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(!0, b""), !0);
    // Incremental use gives the same result as one call.
    let whole = crc32c(!0, b"hello, tinyfs");
    assert_eq!(crc32c(crc32c(!0, b"hello, "), b"tinyfs"), whole);
}

fn sample(bits: u32) -> SuperBlock {
    let geometry = Geometry::new(bits, 1 << 16, 4096).unwrap();
    SuperBlock {
        geometry,
        feature_compat: 0,
        feature_incompat: 0,
        feature_ro_compat: 0,
        free_blocks: geometry.blocks_count - geometry.data_start - 1,
        free_inodes: geometry.inodes_count - 1,
        state: STATE_CLEAN,
        mkfs_time: 1_700_000_000,
        write_time: 1_700_000_001,
        uuid: *b"0123456789abcdef",
        label: *b"label\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    }
}

fn encoded(sb: &SuperBlock) -> Vec<u8> {
    let mut raw = vec![0u8; SUPER_SIZE];
    sb.encode(&mut raw);
    raw
}

#[test]
fn super_block_round_trips_for_every_block_size() {
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        let sb = sample(bits);
        assert_eq!(SuperBlock::decode(&encoded(&sb)).unwrap(), sb);
    }
}

#[test]
fn geometry_regions_are_ordered_and_fit() {
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        for &(blocks, inodes) in &[(64u64, 1u32), (1 << 16, 4096), (MAX_BLOCKS, u32::MAX)] {
            let g = match Geometry::new(bits, blocks, inodes) {
                Ok(g) => g,
                Err(_) => continue,
            };
            assert_eq!(g.inode_bitmap_start, 1);
            assert_eq!(
                g.block_bitmap_start,
                g.inode_bitmap_start + u64::from(g.inode_bitmap_blocks)
            );
            assert_eq!(
                g.inode_table_start,
                g.block_bitmap_start + u64::from(g.block_bitmap_blocks)
            );
            assert_eq!(
                g.data_start,
                g.inode_table_start + u64::from(g.inode_table_blocks)
            );
            assert!(
                u64::from(g.inode_bitmap_blocks) * g.bits_per_bitmap_block() >= u64::from(inodes)
            );
            assert!(u64::from(g.block_bitmap_blocks) * g.bits_per_bitmap_block() >= blocks);
            assert!(
                u64::from(g.inode_table_blocks) * u64::from(g.inodes_per_block())
                    >= u64::from(inodes)
            );
            assert!(g.data_start + MIN_DATA_BLOCKS <= blocks);
        }
    }
}

#[test]
fn geometry_refuses_bad_parameters() {
    assert!(Geometry::new(9, 1 << 16, 16).is_err());
    assert!(Geometry::new(13, 1 << 16, 16).is_err());
    assert!(Geometry::new(12, 1 << 16, 0).is_err());
    assert!(Geometry::new(12, MAX_BLOCKS + 1, 16).is_err());
    assert!(Geometry::new(12, 8, 16).is_err());
}

#[test]
fn files_of_64_gib_file_systems_fit_32_bit_block_numbers() {
    // 64 GiB of 1 KiB blocks is the largest block count the format must hold.
    assert!(Geometry::new(10, 64 << 20, 1 << 20).is_ok());
}

#[test]
fn wrong_magic_is_refused_as_not_tinyfs() {
    let mut raw = encoded(&sample(12));
    raw[0] ^= 1;
    assert_eq!(SuperBlock::decode(&raw), Err(Error::BadMagic));
    assert!(!Error::BadMagic.is_corruption());
}

#[test]
fn every_flipped_bit_is_caught() {
    // A single flipped bit anywhere in the super block area is refused, never
    // accepted and never a panic.
    let raw = encoded(&sample(10));
    for byte in 0..SUPER_SIZE {
        for bit in 0..8 {
            let mut bad = raw.clone();
            bad[byte] ^= 1 << bit;
            assert!(SuperBlock::decode(&bad).is_err(), "byte {byte} bit {bit}");
        }
    }
}

/// Changes a field, recomputes the checksum and expects a refusal.
fn refused_after(edit: impl Fn(&mut [u8])) -> Error {
    let mut raw = encoded(&sample(12));
    edit(&mut raw);
    set_block_csum(&mut raw);
    SuperBlock::decode(&raw).unwrap_err()
}

#[test]
fn every_field_is_validated() {
    assert_eq!(refused_after(|r| r[4] = 2), Error::BadVersion(2));
    assert_eq!(
        refused_after(|r| r[8] = 9),
        Error::Corrupt("super block geometry")
    );
    assert_eq!(refused_after(|r| r[16] = 1), Error::UnsupportedFeatures(1));
    // The counts alone decide the geometry: one too small for its metadata,
    // or too large for 32-bit block numbers, is refused.
    for blocks in [0u64, 8, MAX_BLOCKS + 1] {
        let e = refused_after(|r| r[24..32].copy_from_slice(&blocks.to_le_bytes()));
        assert_eq!(e, Error::Corrupt("super block geometry"), "{blocks} blocks");
    }
    assert_eq!(
        refused_after(|r| r[32..36].fill(0)),
        Error::Corrupt("super block geometry")
    );
    // Every stored region start or length must be the derived one.
    for off in [48, 56, 60, 64, 72, 80, 88] {
        let e = refused_after(|r| r[off] ^= 1);
        assert_eq!(e, Error::Corrupt("super block geometry"), "offset {off}");
    }
    assert!(refused_after(|r| r[36..40].copy_from_slice(&4096u32.to_le_bytes())).is_corruption());
    assert!(refused_after(|r| r[40..48].copy_from_slice(&u64::MAX.to_le_bytes())).is_corruption());
    assert!(refused_after(|r| r[84] = 3).is_corruption());
    assert!(refused_after(|r| r[500] = 1).is_corruption());
}

#[test]
fn short_or_garbage_input_is_refused_without_panic() {
    assert!(SuperBlock::decode(&[]).is_err());
    assert!(SuperBlock::decode(&[0u8; SUPER_SIZE - 1]).is_err());
    // Garbage that carries the magic and a valid checksum still fails validation.
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut raw = vec![0u8; SUPER_SIZE];
        for b in raw.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        raw[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        raw[4..8].copy_from_slice(&VERSION.to_le_bytes());
        set_block_csum(&mut raw);
        assert!(SuperBlock::decode(&raw).is_err());
    }
}

#[test]
fn checksums_of_short_buffers_never_panic() {
    for len in 0..CSUM_SIZE {
        let mut short = vec![0xaau8; len];
        set_block_csum(&mut short);
        assert_eq!(short, vec![0xaau8; len]);
        assert!(!block_csum_ok_with(crc32c, &short));
    }
    let mut tail_only = [0u8; CSUM_SIZE];
    set_block_csum(&mut tail_only);
    assert_eq!(u32::from_le_bytes(tail_only), crc32c(!0, &[]));
    assert!(block_csum_ok_with(crc32c, &tail_only));
}
