// SPDX-License-Identifier: GPL-2.0

//! Host tests of the bitmaps of the on-disk format.

use tinyfs::layout::*;

/// A geometry per block size whose bitmaps span several blocks.
fn geometries() -> Vec<Geometry> {
    (MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS)
        .map(|bits| {
            let per_block = ((1u64 << bits) - CSUM_SIZE as u64) * 8;
            // Three block bitmap blocks, the last one partly padding; two
            // inode bitmap blocks, likewise.
            let blocks = 2 * per_block + 1000;
            let inodes = per_block as u32 + 77;
            let g = Geometry::new(bits, blocks, inodes).unwrap();
            assert_eq!(g.block_bitmap_blocks, 3);
            assert_eq!(g.inode_bitmap_blocks, 2);
            g
        })
        .collect()
}

#[test]
fn bit_positions_map_items_both_ways() {
    for g in geometries() {
        let per_block = g.bits_per_bitmap_block();
        assert_eq!(per_block, (g.block_size() as u64 - 4) * 8);
        for n in [
            0,
            1,
            g.data_start,
            per_block - 1,
            per_block,
            2 * per_block + 7,
            g.blocks_count - 1,
        ] {
            let pos = g.block_bitmap_pos(n).unwrap();
            assert_eq!(u64::from(pos.index), n / per_block);
            assert_eq!(u64::from(pos.bit), n % per_block);
            assert_eq!(pos.block, g.block_bitmap_start + u64::from(pos.index));
            assert_eq!(g.block_of_bit(pos.index, pos.bit), Some(n));
        }
        assert!(g.block_bitmap_pos(g.blocks_count).is_err());
        assert!(g.block_bitmap_pos(u64::MAX).is_err());
        // Padding bits and bits out of a block stand for nothing.
        let last = g.block_bitmap_pos(g.blocks_count - 1).unwrap();
        assert_eq!(g.block_of_bit(last.index, last.bit + 1), None);
        assert_eq!(g.block_of_bit(0, per_block as u32), None);

        let first = g.inode_bitmap_pos(ROOT_INO).unwrap();
        assert_eq!(
            (first.index, first.bit, first.block),
            (0, 0, g.inode_bitmap_start)
        );
        for ino in [1, 2, per_block as u32, per_block as u32 + 1, g.inodes_count] {
            let pos = g.inode_bitmap_pos(ino).unwrap();
            assert_eq!(u64::from(pos.index), u64::from(ino - 1) / per_block);
            assert_eq!(u64::from(pos.bit), u64::from(ino - 1) % per_block);
            assert_eq!(pos.block, g.inode_bitmap_start + u64::from(pos.index));
            assert_eq!(g.inode_of_bit(pos.index, pos.bit), Some(ino));
        }
        assert!(g.inode_bitmap_pos(0).is_err());
        assert!(g.inode_bitmap_pos(g.inodes_count + 1).is_err());
        let last = g.inode_bitmap_pos(g.inodes_count).unwrap();
        assert_eq!(g.inode_of_bit(last.index, last.bit + 1), None);
    }
}

#[test]
fn bits_are_lsb_first_and_round_trip() {
    for g in geometries() {
        let bs = g.block_size();
        let mut block = vec![0u8; bs];
        assert!(!bitmap_set(&mut block, 0).unwrap());
        assert_eq!(block[0], 0x01);
        assert!(!bitmap_set(&mut block, 9).unwrap());
        assert_eq!(block[1], 0x02);
        assert!(bitmap_set(&mut block, 9).unwrap(), "was already set");
        assert!(bitmap_clear(&mut block, 0).unwrap());
        assert!(!bitmap_clear(&mut block, 0).unwrap());
        assert_eq!(block[0], 0);

        // A pattern survives a checksummed round trip through the bytes.
        let per_block = g.bits_per_bitmap_block() as u32;
        let pattern = |bit: u32| bit.is_multiple_of(3) || bit % 7 == 1;
        let mut block = vec![0u8; bs];
        for bit in (0..per_block).filter(|&b| pattern(b)) {
            bitmap_set(&mut block, bit).unwrap();
        }
        set_block_csum(&mut block);
        let copy = block.clone();
        assert!(block_csum_ok_with(crc32c, &copy));
        for bit in 0..per_block {
            assert_eq!(bitmap_test(&copy, bit).unwrap(), pattern(bit), "bit {bit}");
        }
        let set = (0..per_block).filter(|&b| pattern(b)).count() as u32;
        assert_eq!(bitmap_count_zeros(&copy), per_block - set);

        // The checksum tail holds no bits.
        let mut block = vec![0u8; bs];
        assert!(bitmap_test(&block, per_block).is_err());
        assert!(bitmap_set(&mut block, per_block).is_err());
        assert!(bitmap_clear(&mut block, u32::MAX).is_err());
        assert!(block.iter().all(|&b| b == 0));
        assert!(bitmap_test(&[], 0).is_err());
    }
}

#[test]
fn find_zero_searches_from_the_hint_to_the_end() {
    for g in geometries() {
        let per_block = g.bits_per_bitmap_block() as u32;
        let mut block = vec![0xffu8; g.block_size()];
        assert_eq!(bitmap_find_zero(&block, 0), None, "a full block");
        bitmap_clear(&mut block, 5).unwrap();
        bitmap_clear(&mut block, 200).unwrap();
        bitmap_clear(&mut block, per_block - 1).unwrap();
        assert_eq!(bitmap_find_zero(&block, 0), Some(5));
        assert_eq!(bitmap_find_zero(&block, 5), Some(5));
        assert_eq!(bitmap_find_zero(&block, 6), Some(200));
        assert_eq!(bitmap_find_zero(&block, 201), Some(per_block - 1));
        assert_eq!(bitmap_find_zero(&block, per_block), None);
        assert_eq!(bitmap_find_zero(&block, u32::MAX), None);
        // The checksum tail is never taken for free bits.
        let mut block = vec![0xffu8; g.block_size()];
        let len = block.len();
        block[len - CSUM_SIZE..].fill(0);
        assert_eq!(bitmap_find_zero(&block, 0), None);
        // Every clear bit is found, in order.
        let mut block = vec![0u8; g.block_size()];
        let mut next = 0;
        while let Some(bit) = bitmap_find_zero(&block, next) {
            assert_eq!(bit, next);
            bitmap_set(&mut block, bit).unwrap();
            next = bit + 1;
        }
        assert_eq!(next, per_block);
    }
}

#[test]
fn fresh_bitmaps_mark_metadata_and_padding_used() {
    for g in geometries() {
        let bs = g.block_size();
        let per_block = g.bits_per_bitmap_block();
        let mut free = 0u64;
        for index in 0..g.block_bitmap_blocks {
            let mut block = vec![0x5au8; bs];
            g.init_block_bitmap(index, &mut block).unwrap();
            assert!(block_csum_ok_with(crc32c, &block));
            g.check_block_bitmap(index, &block).unwrap();
            free += u64::from(bitmap_count_zeros(&block));
            for bit in 0..per_block as u32 {
                let used = match g.block_of_bit(index, bit) {
                    None => true, // padding
                    Some(n) => n < g.data_start,
                };
                assert_eq!(
                    bitmap_test(&block, bit).unwrap(),
                    used,
                    "block bit {index}/{bit}"
                );
            }
        }
        assert_eq!(free, g.blocks_count - g.data_start);

        let mut free = 0u64;
        for index in 0..g.inode_bitmap_blocks {
            let mut block = vec![0x5au8; bs];
            g.init_inode_bitmap(index, &mut block).unwrap();
            assert!(block_csum_ok_with(crc32c, &block));
            g.check_inode_bitmap(index, &block).unwrap();
            free += u64::from(bitmap_count_zeros(&block));
        }
        assert_eq!(free, u64::from(g.inodes_count));

        // Out of range indexes and wrong buffer sizes are refused.
        let mut block = vec![0u8; bs];
        assert!(g
            .init_block_bitmap(g.block_bitmap_blocks, &mut block)
            .is_err());
        assert!(g
            .init_inode_bitmap(g.inode_bitmap_blocks, &mut block)
            .is_err());
        assert!(g.init_block_bitmap(0, &mut block[..bs - 1]).is_err());
        assert!(g.check_block_bitmap(0, &block[..bs - 1]).is_err());
    }
}

#[test]
fn bitmaps_with_metadata_or_padding_free_are_corrupt() {
    for g in geometries() {
        let bs = g.block_size();
        // A metadata block marked free.
        let mut block = vec![0u8; bs];
        g.init_block_bitmap(0, &mut block).unwrap();
        bitmap_clear(&mut block, (g.data_start - 1) as u32).unwrap();
        assert!(g.check_block_bitmap(0, &block).unwrap_err().is_corruption());
        // A padding bit of the last block bitmap block marked free.
        let last = g.block_bitmap_blocks - 1;
        let pos = g.block_bitmap_pos(g.blocks_count - 1).unwrap();
        g.init_block_bitmap(last, &mut block).unwrap();
        bitmap_clear(&mut block, pos.bit + 1).unwrap();
        assert!(g
            .check_block_bitmap(last, &block)
            .unwrap_err()
            .is_corruption());
        // Freeing a data block is fine.
        g.init_block_bitmap(last, &mut block).unwrap();
        bitmap_set(&mut block, pos.bit).unwrap();
        g.check_block_bitmap(last, &block).unwrap();
        // A padding bit of the inode bitmap marked free.
        let last = g.inode_bitmap_blocks - 1;
        let pos = g.inode_bitmap_pos(g.inodes_count).unwrap();
        g.init_inode_bitmap(last, &mut block).unwrap();
        bitmap_clear(&mut block, g.bits_per_bitmap_block() as u32 - 1).unwrap();
        assert!(g
            .check_inode_bitmap(last, &block)
            .unwrap_err()
            .is_corruption());
        g.init_inode_bitmap(last, &mut block).unwrap();
        bitmap_set(&mut block, pos.bit).unwrap();
        g.check_inode_bitmap(last, &block).unwrap();
    }
}
