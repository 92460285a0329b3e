// SPDX-License-Identifier: GPL-2.0

//! Host tests of inodes, the block map and indirect blocks of the on-disk
//! format.

use tinyfs::layout::*;

const GIB: u64 = 1 << 30;

fn geometry(bits: u32) -> Geometry {
    Geometry::new(bits, 1 << 16, 1000).unwrap()
}

fn all_geometries() -> impl Iterator<Item = Geometry> {
    (MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS).map(geometry)
}

/// An inode with every field distinct and valid for `g`.
fn sample(g: &Geometry) -> Inode {
    let d = g.data_start as u32;
    let last = (g.blocks_count - 1) as u32;
    Inode {
        mode: S_IFREG | 0o4755,
        links: 3,
        uid: 1000,
        gid: 100_000,
        flags: 0,
        size: 123_456_789,
        atime: Timestamp {
            sec: -1,
            nsec: 999_999_999,
        },
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 1,
        },
        ctime: Timestamp {
            sec: i64::MAX,
            nsec: 0,
        },
        blocks: 42,
        direct: [
            d,
            0,
            d + 2,
            d + 3,
            0,
            d + 5,
            d + 6,
            d + 7,
            0,
            d + 9,
            d + 10,
            last,
        ],
        indirect: [d + 20, d + 21, last],
        generation: 0xdead_beef,
    }
}

fn encoded(inode: &Inode) -> [u8; INODE_SIZE] {
    let mut raw = [0u8; INODE_SIZE];
    inode.encode(&mut raw);
    raw
}

#[test]
fn inodes_round_trip_for_every_block_size() {
    for g in all_geometries() {
        let inode = sample(&g);
        assert_eq!(Inode::decode(&g, &encoded(&inode)).unwrap(), inode);
        let dir = Inode {
            mode: S_IFDIR | 0o755,
            size: 3 * g.block_size() as u64,
            ..inode
        };
        assert_eq!(Inode::decode(&g, &encoded(&dir)).unwrap(), dir);
        let symlink = Inode {
            mode: S_IFLNK | 0o777,
            size: MAX_SYMLINK_LEN,
            ..inode
        };
        assert_eq!(Inode::decode(&g, &encoded(&symlink)).unwrap(), symlink);
        assert_eq!(inode.file_type(), FT_REG_FILE);
        assert_eq!(dir.file_type(), FT_DIR);
        assert_eq!(symlink.file_type(), FT_SYMLINK);
    }
}

#[test]
fn inode_fields_are_at_their_documented_offsets() {
    let g = geometry(12);
    let inode = sample(&g);
    let raw = encoded(&inode);
    let u16_at = |o: usize| u16::from_le_bytes(raw[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
    let i64_at = |o: usize| i64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
    assert_eq!(u16_at(0), inode.mode);
    assert_eq!(u16_at(2), inode.links);
    assert_eq!(u32_at(4), inode.uid);
    assert_eq!(u32_at(8), inode.gid);
    assert_eq!(u32_at(12), inode.flags);
    assert_eq!(u64_at(16), inode.size);
    assert_eq!(i64_at(24), inode.atime.sec);
    assert_eq!(i64_at(32), inode.mtime.sec);
    assert_eq!(i64_at(40), inode.ctime.sec);
    assert_eq!(u32_at(48), inode.atime.nsec);
    assert_eq!(u32_at(52), inode.mtime.nsec);
    assert_eq!(u32_at(56), inode.ctime.nsec);
    assert_eq!(u32_at(60), inode.blocks);
    for i in 0..N_DIRECT {
        assert_eq!(u32_at(64 + 4 * i), inode.direct[i]);
    }
    assert_eq!(u32_at(112), inode.indirect[0]);
    assert_eq!(u32_at(116), inode.indirect[1]);
    assert_eq!(u32_at(120), inode.indirect[2]);
    assert_eq!(u32_at(124), inode.generation);
}

#[test]
fn inode_positions_follow_the_table() {
    for g in all_geometries() {
        let per_block = g.inodes_per_block();
        assert_eq!(per_block as usize, (g.block_size() - 4) / 128);
        let pos = |ino| g.inode_pos(ino).unwrap();
        assert_eq!(
            pos(ROOT_INO),
            InodePos {
                block: g.inode_table_start,
                offset: 0
            }
        );
        assert_eq!(pos(per_block).offset, (per_block as usize - 1) * 128);
        assert_eq!(
            pos(per_block + 1),
            InodePos {
                block: g.inode_table_start + 1,
                offset: 0
            }
        );
        let last = pos(g.inodes_count);
        assert_eq!(
            last.block,
            g.inode_table_start + u64::from(g.inode_table_blocks) - 1
        );
        assert!(g.inode_pos(0).unwrap_err().is_corruption());
        assert!(g.inode_pos(g.inodes_count + 1).unwrap_err().is_corruption());

        // Records are read and written in place, before the checksum tail.
        let mut block = vec![0u8; g.block_size()];
        let inode = sample(&g);
        inode.encode(inode_record_mut(&mut block, last.offset).unwrap());
        set_block_csum(&mut block);
        assert!(block_csum_ok_with(crc32c, &block));
        let raw = inode_record(&block, last.offset).unwrap();
        assert_eq!(Inode::decode(&g, raw).unwrap(), inode);
        if last.offset != 0 {
            assert!(Inode::is_free_record(inode_record(&block, 0).unwrap()));
        }
        let tail = g.block_size() - 4;
        assert!(inode_record(&block, tail - 127).is_err());
        assert!(inode_record(&block, usize::MAX).is_err());
        assert!(inode_record_mut(&mut block, tail - 127).is_err());
    }
}

/// Changes the encoded sample inode with `edit` and expects a refusal.
fn refused_after(g: &Geometry, edit: impl Fn(&mut [u8; INODE_SIZE])) -> Error {
    let mut raw = encoded(&sample(g));
    edit(&mut raw);
    let e = Inode::decode(g, &raw).unwrap_err();
    assert!(e.is_corruption(), "{e:?}");
    e
}

fn put16(raw: &mut [u8], off: usize, v: u16) {
    raw[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(raw: &mut [u8], off: usize, v: u32) {
    raw[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(raw: &mut [u8], off: usize, v: u64) {
    raw[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn every_inode_field_is_validated() {
    for g in all_geometries() {
        let g = &g;
        let bs = g.block_size() as u64;
        // Modes: only regular files, directories and symlinks.
        for mode in [0, 0o755, 0o010644, 0o020644, 0o060644, 0o140755, 0o170755] {
            let e = refused_after(g, |r| put16(r, 0, mode));
            assert_eq!(e, Error::Corrupt("inode mode"), "mode {mode:o}");
        }
        // Unknown flags.
        for flag in [1u32, 0x8000_0000] {
            assert_eq!(
                refused_after(g, |r| put32(r, 12, flag)),
                Error::Corrupt("inode flags")
            );
        }
        // Nanoseconds of each timestamp.
        for off in [48, 52, 56] {
            for nsec in [NSEC_PER_SEC, u32::MAX] {
                let e = refused_after(g, |r| put32(r, off, nsec));
                assert_eq!(e, Error::Corrupt("inode timestamp"), "offset {off}");
            }
        }
        // Every block pointer: just below the data region, just past the end.
        for slot in 0..15 {
            let off = 64 + 4 * slot;
            for ptr in [
                1,
                (g.data_start - 1) as u32,
                g.blocks_count as u32,
                u32::MAX,
            ] {
                let e = refused_after(g, |r| put32(r, off, ptr));
                assert_eq!(
                    e,
                    Error::Corrupt("inode block pointer"),
                    "slot {slot} = {ptr}"
                );
            }
        }
        // Sizes.
        let max = max_file_size(g);
        assert_eq!(
            refused_after(g, |r| put64(r, 16, max + 1)),
            Error::Corrupt("inode size")
        );
        assert_eq!(
            refused_after(g, |r| put64(r, 16, u64::MAX)),
            Error::Corrupt("inode size")
        );
        let as_dir = |r: &mut [u8; INODE_SIZE], size: u64| {
            put16(r, 0, S_IFDIR | 0o755);
            put64(r, 16, size);
        };
        for size in [0, 1, bs - 1, bs + 4] {
            let e = refused_after(g, |r| as_dir(r, size));
            assert_eq!(e, Error::Corrupt("directory size"), "size {size}");
        }
        let as_symlink = |r: &mut [u8; INODE_SIZE], size: u64| {
            put16(r, 0, S_IFLNK | 0o777);
            put64(r, 16, size);
        };
        for size in [0, MAX_SYMLINK_LEN + 1] {
            let e = refused_after(g, |r| as_symlink(r, size));
            assert_eq!(e, Error::Corrupt("symlink size"), "size {size}");
        }
        // More blocks than the file system has data blocks.
        let too_many = (g.blocks_count - g.data_start + 1) as u32;
        assert_eq!(
            refused_after(g, |r| put32(r, 60, too_many)),
            Error::Corrupt("inode block count")
        );
        // A free (all-zero) record is not an inode in use.
        let zero = [0u8; INODE_SIZE];
        assert!(Inode::is_free_record(&zero));
        assert!(!Inode::is_free_record(&encoded(&sample(g))));
        assert!(Inode::decode(g, &zero).unwrap_err().is_corruption());
        // Edge values that are fine.
        let mut ok = encoded(&sample(g));
        put64(&mut ok, 16, max);
        put32(&mut ok, 64, (g.blocks_count - 1) as u32);
        put32(&mut ok, 68, g.data_start as u32);
        put32(&mut ok, 60, (g.blocks_count - g.data_start) as u32);
        put16(&mut ok, 0, S_IFREG | 0o7777);
        Inode::decode(g, &ok).unwrap();
    }
}

#[test]
fn garbage_inodes_never_panic() {
    let mut x = 0x9e37_79b9u32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for g in all_geometries() {
        let mut decoded = 0;
        for _ in 0..5000 {
            let mut raw = [0u8; INODE_SIZE];
            for b in raw.iter_mut() {
                *b = next() as u8;
            }
            // Half of them plausible, with now and then one bad field, to
            // reach every check.
            if next() % 2 == 0 {
                let modes = [S_IFREG, S_IFDIR, S_IFLNK, 0o010000];
                put16(&mut raw, 0, modes[next() as usize % 4] | 0o644);
                put32(&mut raw, 12, u32::from(next() % 64 == 0));
                let size = match next() % 3 {
                    0 => u64::from(next() % 4096),
                    1 => g.block_size() as u64 * u64::from(1 + next() % 8),
                    _ => u64::from(next()) << 8,
                };
                put64(&mut raw, 16, size);
                for off in [48, 52, 56] {
                    put32(&mut raw, off, next() % (NSEC_PER_SEC + NSEC_PER_SEC / 64));
                }
                put32(&mut raw, 60, next() % 100);
                for slot in 0..15 {
                    let ptr = match next() % 40 {
                        0 => next(),
                        1..=20 => 0,
                        _ => {
                            (g.data_start + u64::from(next()) % (g.blocks_count - g.data_start))
                                as u32
                        }
                    };
                    put32(&mut raw, 64 + 4 * slot, ptr);
                }
            }
            if let Ok(inode) = Inode::decode(&g, &raw) {
                inode.validate(&g).unwrap();
                assert_eq!(encoded(&inode), raw);
                decoded += 1;
            }
        }
        assert!(decoded > 50, "only {decoded} plausible inodes decoded");
    }
}

#[test]
fn the_largest_file_is_at_least_1_gib_at_every_block_size() {
    for g in all_geometries() {
        let p = u64::from(g.ptrs_per_block());
        assert_eq!(p, (g.block_size() as u64 - 4) / 4);
        let blocks = max_file_blocks(&g);
        assert_eq!(blocks, 12 + p + p * p + p * p * p);
        let size = max_file_size(&g);
        assert_eq!(size, blocks * g.block_size() as u64);
        assert!(
            size >= GIB,
            "{} bytes at {} byte blocks",
            size,
            g.block_size()
        );
        assert!(size <= i64::MAX as u64);
        // A file of that size, block pointers included, fits the 32-bit
        // blocks field.
        let meta = 1 + (1 + p) + (1 + p + p * p);
        assert!(blocks + meta <= u64::from(u32::MAX));
    }
}

/// The file block a path leads to, computed independently of `block_path`.
fn block_of_path(g: &Geometry, path: &BlockPath) -> u64 {
    let p = u64::from(g.ptrs_per_block());
    let [a, b, c] = path.index.map(u64::from);
    match path.levels {
        0 => a,
        1 => 12 + a,
        2 => 12 + p + a * p + b,
        3 => 12 + p + p * p + a * p * p + b * p + c,
        _ => unreachable!(),
    }
}

#[test]
fn block_paths_cover_every_level() {
    for g in all_geometries() {
        let p = g.ptrs_per_block();
        let q = u64::from(p);
        let path = |n| block_path(&g, n).unwrap();
        let bp = |levels, index| BlockPath { levels, index };
        assert_eq!(path(0), bp(0, [0, 0, 0]));
        assert_eq!(path(11), bp(0, [11, 0, 0]));
        assert_eq!(path(12), bp(1, [0, 0, 0]));
        assert_eq!(path(12 + q - 1), bp(1, [p - 1, 0, 0]));
        assert_eq!(path(12 + q), bp(2, [0, 0, 0]));
        assert_eq!(path(12 + q + 1), bp(2, [0, 1, 0]));
        assert_eq!(path(12 + q + q), bp(2, [1, 0, 0]));
        assert_eq!(path(12 + q + q * q - 1), bp(2, [p - 1, p - 1, 0]));
        assert_eq!(path(12 + q + q * q), bp(3, [0, 0, 0]));
        assert_eq!(path(12 + q + q * q + q * q), bp(3, [1, 0, 0]));
        let max = max_file_blocks(&g);
        assert_eq!(path(max - 1), bp(3, [p - 1, p - 1, p - 1]));
        assert!(block_path(&g, max).is_err());
        assert!(block_path(&g, u64::MAX).is_err());
        // Every path leads back to its block, with valid slots.
        let mut n = 0u64;
        while n < max {
            let bp = path(n);
            assert_eq!(block_of_path(&g, &bp), n);
            assert_eq!(bp.indirect_slots().len(), usize::from(bp.levels));
            assert!(bp.indirect_slots().iter().all(|&i| i < p));
            n = n * 3 / 2 + 1;
        }
        // The walk starts at the right inode pointer.
        let inode = sample(&g);
        assert_eq!(inode.map_root(&path(2)), inode.direct[2]);
        assert_eq!(inode.map_root(&path(12)), inode.indirect[0]);
        assert_eq!(inode.map_root(&path(12 + q)), inode.indirect[1]);
        assert_eq!(inode.map_root(&path(max - 1)), inode.indirect[2]);
    }
}

#[test]
fn indirect_blocks_round_trip_for_every_block_size() {
    for g in all_geometries() {
        let p = g.ptrs_per_block();
        let mut block = vec![0xa5u8; g.block_size()];
        init_indirect_block(&g, &mut block).unwrap();
        assert!(block_csum_ok_with(crc32c, &block));
        check_indirect_block(&g, &block).unwrap();
        assert!((0..p).all(|i| indirect_get(&g, &block, i).unwrap() == 0));
        let ptr = |i: u32| match i % 5 {
            0 => 0,
            _ => (g.data_start + u64::from(i)) as u32,
        };
        for i in 0..p {
            indirect_set(&g, &mut block, i, ptr(i)).unwrap();
        }
        set_block_csum(&mut block);
        let copy = block.clone();
        assert!(block_csum_ok_with(crc32c, &copy));
        check_indirect_block(&g, &copy).unwrap();
        for i in 0..p {
            assert_eq!(indirect_get(&g, &copy, i).unwrap(), ptr(i));
            let off = i as usize * 4;
            assert_eq!(copy[off..off + 4], ptr(i).to_le_bytes());
        }
        // Out of range indexes, pointers and buffers.
        assert!(indirect_get(&g, &copy, p).is_err());
        assert!(indirect_set(&g, &mut block, p, 0).is_err());
        assert!(indirect_set(&g, &mut block, 0, 1).is_err());
        assert!(indirect_set(&g, &mut block, 0, g.blocks_count as u32).is_err());
        assert!(indirect_get(&g, &copy[1..], 0).is_err());
        assert!(check_indirect_block(&g, &copy[1..]).is_err());
        // A bad pointer on disk is corruption.
        for bad in [1u32, (g.data_start - 1) as u32, g.blocks_count as u32] {
            let mut raw = copy.clone();
            raw[8..12].copy_from_slice(&bad.to_le_bytes());
            assert!(indirect_get(&g, &raw, 2).unwrap_err().is_corruption());
            assert!(check_indirect_block(&g, &raw).unwrap_err().is_corruption());
        }
    }
}
