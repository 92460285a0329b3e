// SPDX-License-Identifier: GPL-2.0

//! Host tests of the directory blocks of the on-disk format.

use tinyfs::layout::*;

const DIR_INO: u32 = 5;
const PARENT_INO: u32 = 3;

fn geometry(bits: u32) -> Geometry {
    Geometry::new(bits, 1 << 14, 1000).unwrap()
}

fn all_geometries() -> impl Iterator<Item = Geometry> {
    (MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS).map(geometry)
}

fn first_block(g: &Geometry) -> Vec<u8> {
    let mut block = vec![0xeeu8; g.block_size()];
    init_first_dir_block(g, &mut block, DIR_INO, PARENT_INO).unwrap();
    block
}

fn entries(g: &Geometry, block: &[u8], first: bool) -> Vec<(u32, u8, Vec<u8>, usize)> {
    DirIter::new(g, block, first)
        .map(|e| e.unwrap())
        .map(|e| (e.inode, e.file_type, e.name.to_vec(), e.rec_len))
        .collect()
}

fn used_names(g: &Geometry, block: &[u8], first: bool) -> Vec<Vec<u8>> {
    entries(g, block, first)
        .into_iter()
        .filter(|e| e.0 != 0)
        .map(|e| e.2)
        .collect()
}

/// Checks that `block` is valid, checksum included once stored.
fn assert_valid(g: &Geometry, block: &[u8], first: bool) {
    check_dir_block(g, block, first, DIR_INO).unwrap();
    let mut copy = block.to_vec();
    set_block_csum(&mut copy);
    assert!(block_csum_ok_with(crc32c, &copy));
    // The records tile the block up to the checksum tail.
    let total: usize = entries(g, block, first).iter().map(|e| e.3).sum();
    assert_eq!(total, g.block_size() - CSUM_SIZE);
}

#[test]
fn a_new_directory_block_has_dot_and_dotdot() {
    for g in all_geometries() {
        let block = first_block(&g);
        assert!(block_csum_ok_with(crc32c, &block));
        assert_eq!(
            entries(&g, &block, true),
            vec![
                (DIR_INO, FT_DIR, b".".to_vec(), 12),
                (PARENT_INO, FT_DIR, b"..".to_vec(), g.block_size() - 4 - 12),
            ]
        );
        // The bytes themselves: inode, rec_len, name_len, file_type, name.
        assert_eq!(block[0..4], DIR_INO.to_le_bytes());
        assert_eq!(block[4..6], 12u16.to_le_bytes());
        assert_eq!(block[6..9], [1, FT_DIR, b'.']);
        assert_eq!(block[12..16], PARENT_INO.to_le_bytes());
        assert_eq!(block[18..21], [2, FT_DIR, b'.']);
        assert_valid(&g, &block, true);
        assert!(dir_block_is_empty(&g, &block, true).unwrap());
        assert_eq!(
            dir_find(&g, &block, true, b"..").unwrap().unwrap().inode,
            PARENT_INO
        );
        assert!(dir_find(&g, &block, true, b"x").unwrap().is_none());
        // "." must name the directory itself.
        assert!(check_dir_block(&g, &block, true, DIR_INO + 1)
            .unwrap_err()
            .is_corruption());
        // Not a first block: "." and ".." are out of place.
        assert!(check_dir_block(&g, &block, false, DIR_INO)
            .unwrap_err()
            .is_corruption());

        let mut block = vec![0xeeu8; g.block_size()];
        init_dir_block(&g, &mut block).unwrap();
        assert!(block_csum_ok_with(crc32c, &block));
        assert_eq!(
            entries(&g, &block, false),
            vec![(0, 0, vec![], g.block_size() - 4)]
        );
        assert_valid(&g, &block, false);
        assert!(dir_block_is_empty(&g, &block, false).unwrap());
        // A first block needs "." and "..".
        assert!(check_dir_block(&g, &block, true, DIR_INO)
            .unwrap_err()
            .is_corruption());
    }
}

fn name(i: usize) -> Vec<u8> {
    // Names of every length from 1 to 255, some with odd bytes.
    let len = 1 + (i * 37) % MAX_NAME_LEN;
    (0..len)
        .map(|j| match (i + j) % 7 {
            0 => 0xff,
            1 => b'.',
            _ => b'a' + ((i + j) % 26) as u8,
        })
        .collect()
}

fn ftype(i: usize) -> u8 {
    [FT_REG_FILE, FT_DIR, FT_SYMLINK][i % 3]
}

#[test]
fn inserting_and_removing_keeps_the_block_valid() {
    for g in all_geometries() {
        for first in [true, false] {
            let mut block = if first {
                first_block(&g)
            } else {
                let mut b = vec![0u8; g.block_size()];
                init_dir_block(&g, &mut b).unwrap();
                b
            };
            // Fill the block.
            let mut names = Vec::new();
            for i in 0.. {
                let ino = 10 + i as u32;
                match dir_insert(&g, &mut block, first, ino, &name(i), ftype(i)).unwrap() {
                    Some(offset) => {
                        assert_eq!(offset % 4, 0);
                        assert_valid(&g, &block, first);
                        let e = dir_find(&g, &block, first, &name(i)).unwrap().unwrap();
                        assert_eq!((e.offset, e.inode, e.file_type), (offset, ino, ftype(i)));
                        names.push(i);
                    }
                    None => break,
                }
            }
            assert!(names.len() >= 3, "{} names fit", names.len());
            assert!(!dir_block_is_empty(&g, &block, first).unwrap());
            // A full block stays as it was.
            let full = block.clone();
            assert_eq!(
                dir_insert(&g, &mut block, first, 9, &[b'z'; 255], FT_REG_FILE),
                Ok(None)
            );
            assert_eq!(block, full);

            // Remove every other name, the first one inserted included.
            for &i in names.iter().step_by(2) {
                let offset = dir_find(&g, &block, first, &name(i))
                    .unwrap()
                    .unwrap()
                    .offset;
                dir_remove(&g, &mut block, first, offset).unwrap();
                assert_valid(&g, &block, first);
                assert!(dir_find(&g, &block, first, &name(i)).unwrap().is_none());
            }
            for (k, &i) in names.iter().enumerate() {
                let found = dir_find(&g, &block, first, &name(i)).unwrap();
                assert_eq!(found.is_some(), k % 2 == 1, "name {i}");
            }
            // The space is reused.
            let again = dir_insert(&g, &mut block, first, 999, b"again", FT_REG_FILE).unwrap();
            assert!(again.is_some());
            assert_valid(&g, &block, first);
            let e = dir_find(&g, &block, first, &name(names[1]))
                .unwrap()
                .unwrap();
            assert_eq!(e.inode, 10 + names[1] as u32);

            // Remove everything: back to an empty block.
            for n in used_names(&g, &block, first) {
                if n == b"." || n == b".." {
                    continue;
                }
                let offset = dir_find(&g, &block, first, &n).unwrap().unwrap().offset;
                dir_remove(&g, &mut block, first, offset).unwrap();
                assert_valid(&g, &block, first);
            }
            assert!(dir_block_is_empty(&g, &block, first).unwrap());
            let expected = if first {
                vec![b".".to_vec(), b"..".to_vec()]
            } else {
                vec![]
            };
            assert_eq!(used_names(&g, &block, first), expected);
            if first {
                // ".." spans the block again: the next name goes right after it.
                assert_eq!(entries(&g, &block, true).len(), 2);
            } else {
                // One unused record spans the block, as when new.
                assert_eq!(
                    entries(&g, &block, false),
                    vec![(0, 0, vec![], g.block_size() - 4)]
                );
            }
        }
    }
}

#[test]
fn removing_the_first_record_of_a_block_marks_it_unused() {
    for g in all_geometries() {
        let mut block = vec![0u8; g.block_size()];
        init_dir_block(&g, &mut block).unwrap();
        assert_eq!(
            dir_insert(&g, &mut block, false, 7, b"a", FT_REG_FILE),
            Ok(Some(0))
        );
        assert_eq!(
            dir_insert(&g, &mut block, false, 8, b"b", FT_REG_FILE),
            Ok(Some(12))
        );
        dir_remove(&g, &mut block, false, 0).unwrap();
        assert_valid(&g, &block, false);
        let e = entries(&g, &block, false);
        assert_eq!(e[0], (0, 0, vec![], 12));
        assert_eq!(e[1].0, 8);
        // The unused record is reused for a name that fits.
        assert_eq!(
            dir_insert(&g, &mut block, false, 9, b"cdef", FT_DIR),
            Ok(Some(0))
        );
        assert_eq!(
            entries(&g, &block, false)[0],
            (9, FT_DIR, b"cdef".to_vec(), 12)
        );
        // A record in the middle is absorbed by the one before it.
        dir_remove(&g, &mut block, false, 12).unwrap();
        assert_eq!(
            entries(&g, &block, false),
            vec![(9, FT_DIR, b"cdef".to_vec(), g.block_size() - 4)]
        );
    }
}

#[test]
fn bad_requests_are_refused() {
    for g in all_geometries() {
        let mut block = first_block(&g);
        let orig = block.clone();
        let mut insert = |ino, name: &[u8], ft| dir_insert(&g, &mut block, true, ino, name, ft);
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", &[b'x'; 256]] {
            assert!(insert(10, bad, FT_REG_FILE).is_err(), "{bad:?}");
        }
        assert!(insert(0, b"x", FT_REG_FILE).is_err());
        assert!(insert(1001, b"x", FT_REG_FILE).is_err());
        for ft in [0, 3, 4, 5, 6, 8, 255] {
            assert!(insert(10, b"x", ft).is_err());
        }
        assert_eq!(block, orig);
        assert!(
            dir_insert(&g, &mut block, true, 10, &[b'x'; 255], FT_REG_FILE)
                .unwrap()
                .is_some()
        );
        // "." and ".." stay; offsets must be records in use.
        let mut block = first_block(&g);
        assert!(dir_remove(&g, &mut block, true, 0).is_err());
        assert!(dir_remove(&g, &mut block, true, 12).is_err());
        assert!(dir_remove(&g, &mut block, true, 4).is_err());
        assert!(dir_remove(&g, &mut block, true, 1 << 20).is_err());
        let mut other = vec![0u8; g.block_size()];
        init_dir_block(&g, &mut other).unwrap();
        assert!(
            dir_remove(&g, &mut other, false, 0).is_err(),
            "unused record"
        );
        assert_eq!(block, first_block(&g));
        // Entries can be repointed, "." cannot, ".." only to a directory.
        let at = dir_insert(&g, &mut block, true, 10, b"f", FT_REG_FILE)
            .unwrap()
            .unwrap();
        dir_set_entry(&g, &mut block, true, at, 11, FT_SYMLINK).unwrap();
        let e = dir_find(&g, &block, true, b"f").unwrap().unwrap();
        assert_eq!((e.inode, e.file_type), (11, FT_SYMLINK));
        dir_set_entry(&g, &mut block, true, 12, 20, FT_DIR).unwrap();
        assert_eq!(
            dir_find(&g, &block, true, b"..").unwrap().unwrap().inode,
            20
        );
        assert!(dir_set_entry(&g, &mut block, true, 12, 20, FT_REG_FILE).is_err());
        assert!(dir_set_entry(&g, &mut block, true, 0, 20, FT_DIR).is_err());
        assert!(dir_set_entry(&g, &mut block, true, 4, 20, FT_DIR).is_err());
        assert!(dir_set_entry(&g, &mut block, true, at, 0, FT_DIR).is_err());
        assert_valid(&g, &block, true);
        // Buffers of the wrong size.
        assert!(init_dir_block(&g, &mut block[1..]).is_err());
        assert!(check_dir_block(&g, &block[1..], true, DIR_INO).is_err());
        assert!(DirIter::new(&g, &block[..8], true).next().unwrap().is_err());
    }
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A first block with "." (at 0), ".." (at 12), "abc" (at 24, inode 7) and
/// "de" (at 36, spanning the rest).
fn populated(g: &Geometry) -> Vec<u8> {
    let mut block = first_block(g);
    assert_eq!(
        dir_insert(g, &mut block, true, 7, b"abc", FT_REG_FILE),
        Ok(Some(24))
    );
    assert_eq!(
        dir_insert(g, &mut block, true, 8, b"de", FT_DIR),
        Ok(Some(36))
    );
    assert_valid(g, &block, true);
    block
}

/// Corrupts a populated block with `edit` (checksum restored) and expects
/// every reader and writer to refuse it.
fn refused_after(g: &Geometry, what: &str, edit: impl Fn(&mut [u8])) -> Error {
    let mut block = populated(g);
    edit(&mut block);
    set_block_csum(&mut block);
    let e = check_dir_block(g, &block, true, DIR_INO)
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted"));
    assert!(e.is_corruption(), "{what}: {e:?}");
    assert!(DirIter::new(g, &block, true).any(|e| e.is_err()), "{what}");
    assert!(dir_block_is_empty(g, &block, true).is_err(), "{what}");
    let mut copy = block.clone();
    assert!(
        dir_insert(g, &mut copy, true, 9, b"new", FT_REG_FILE).is_err(),
        "{what}"
    );
    assert!(dir_remove(g, &mut copy, true, 24).is_err(), "{what}");
    assert_eq!(copy, block, "{what}: a refused change changed the block");
    e
}

#[test]
fn bad_records_are_refused() {
    for g in all_geometries() {
        let g = &g;
        let end = g.block_size() - CSUM_SIZE;
        let last_len = (end - 36) as u16;
        assert_eq!(
            refused_after(g, "rec_len too small", |b| put16(b, 24 + 4, 8)),
            Error::Corrupt("directory entry (record length too small)")
        );
        assert_eq!(
            refused_after(g, "rec_len zero", |b| put16(b, 24 + 4, 0)),
            Error::Corrupt("directory entry (record length too small)")
        );
        refused_after(g, "rec_len zero at the start", |b| put16(b, 4, 0));
        assert_eq!(
            refused_after(g, "rec_len unaligned", |b| put16(b, 24 + 4, 14)),
            Error::Corrupt("directory entry (unaligned record length)")
        );
        assert_eq!(
            refused_after(g, "rec_len unaligned, last", |b| put16(
                b,
                36 + 4,
                last_len - 2
            )),
            Error::Corrupt("directory entry (unaligned record length)")
        );
        assert_eq!(
            refused_after(g, "crossing the end", |b| put16(b, 36 + 4, last_len + 4)),
            Error::Corrupt("directory entry (crosses the end of the block)")
        );
        assert_eq!(
            refused_after(g, "crossing far", |b| put16(b, 36 + 4, 0xfffc)),
            Error::Corrupt("directory entry (crosses the end of the block)")
        );
        assert_eq!(
            refused_after(g, "short of the end", |b| put16(b, 36 + 4, last_len - 4)),
            Error::Corrupt("directory entry (crosses the end of the block)")
        );
        assert_eq!(
            refused_after(g, "name_len > rec_len", |b| b[24 + 6] = 200),
            Error::Corrupt("directory entry (record length too small)")
        );
        assert_eq!(
            refused_after(g, "name_len 0 in use", |b| b[24 + 6] = 0),
            Error::Corrupt("directory entry name")
        );
        assert_eq!(
            refused_after(g, "'/' in a name", |b| b[24 + 9] = b'/'),
            Error::Corrupt("directory entry name")
        );
        assert_eq!(
            refused_after(g, "NUL in a name", |b| b[24 + 8] = 0),
            Error::Corrupt("directory entry name")
        );
        assert_eq!(
            refused_after(g, "file type 0 in use", |b| b[24 + 7] = 0),
            Error::Corrupt("directory entry file type")
        );
        assert_eq!(
            refused_after(g, "file type 3", |b| b[24 + 7] = 3),
            Error::Corrupt("directory entry file type")
        );
        assert_eq!(
            refused_after(g, "inode past the end", |b| put32(b, 24, 1001)),
            Error::Corrupt("directory entry inode number")
        );
        refused_after(g, "a second \".\"", |b| {
            b[36 + 6] = 1;
            b[36 + 8] = b'.';
        });
        refused_after(g, "a second \"..\"", |b| {
            b[36 + 8..36 + 10].copy_from_slice(b"..")
        });
        refused_after(g, "\".\" unused", |b| put32(b, 0, 0));
        refused_after(g, "\"..\" unused", |b| put32(b, 12, 0));
        refused_after(g, "\".\" a file", |b| b[7] = FT_REG_FILE);
        refused_after(g, "\".\" misnamed", |b| b[8] = b'x');
        refused_after(g, "no \"..\"", |b| put16(b, 4, end as u16));
        // An unused record may hold anything in its name, if it fits.
        let mut block = populated(g);
        put32(&mut block, 24, 0);
        block[24 + 7] = 99;
        block[24 + 9] = b'/';
        check_dir_block(g, &block, true, DIR_INO).unwrap();
        block[24 + 6] = 9;
        assert!(check_dir_block(g, &block, true, DIR_INO)
            .unwrap_err()
            .is_corruption());
    }
}

struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        *x
    }
}

/// A block of records that are mostly well formed, with random mistakes.
fn plausible_garbage(g: &Geometry, rng: &mut XorShift, first: bool) -> Vec<u8> {
    let mut block = vec![0u8; g.block_size()];
    for b in block.iter_mut() {
        *b = rng.next() as u8;
    }
    let end = g.block_size() - CSUM_SIZE;
    let mut pos = 0;
    let mut count = 0;
    while pos + 8 <= end {
        let name_len = match rng.next() % 8 {
            0 => 0,
            1 => 255,
            _ => 1 + rng.next() as usize % 20,
        };
        let min = dir_rec_len(name_len);
        let mut rec_len = min + 4 * (rng.next() as usize % 4);
        if rng.next().is_multiple_of(4) || pos + rec_len > end {
            rec_len = end - pos;
        }
        if rng.next().is_multiple_of(50) {
            rec_len ^= 1 << (rng.next() % 12);
        }
        let ino = match rng.next() % 10 {
            0 => 0,
            1 => rng.next(),
            _ => 1 + rng.next() % 1000,
        };
        put32(&mut block, pos, ino);
        put16(&mut block, pos + 4, rec_len as u16);
        block[pos + 6] = name_len as u8;
        block[pos + 7] = [FT_REG_FILE, FT_DIR, FT_SYMLINK, 0, 5][rng.next() as usize % 5];
        for i in 0..name_len.min(end.saturating_sub(pos + 8)) {
            block[pos + 8 + i] = match rng.next() % 40 {
                0 => b'/',
                1 => 0,
                _ => b'a' + (rng.next() % 26) as u8,
            };
        }
        if first && count < 2 && !rng.next().is_multiple_of(8) {
            let dots: &[u8] = if count == 0 { b"." } else { b".." };
            put32(&mut block, pos, 1 + rng.next() % 1000);
            block[pos + 6] = dots.len() as u8;
            block[pos + 7] = FT_DIR;
            block[pos + 8..pos + 8 + dots.len()].copy_from_slice(dots);
        }
        if rec_len == 0 {
            break;
        }
        pos += rec_len;
        count += 1;
    }
    set_block_csum(&mut block);
    block
}

/// Runs every reader and writer on `block`: none may panic, and when the
/// block is valid the writers keep it valid.
fn exercise(g: &Geometry, block: &[u8], first: bool, rng: &mut XorShift) -> bool {
    let n = DirIter::new(g, block, first).take(g.block_size()).count();
    assert!(n <= g.block_size() / 8 + 1);
    let dir_ino = get_first_inode(block);
    let valid = check_dir_block(g, block, first, dir_ino).is_ok();
    let _ = dir_find(g, block, first, b"abc");
    let _ = dir_block_is_empty(g, block, first);
    let mut copy = block.to_vec();
    let offset = (rng.next() as usize % g.block_size()) & !3;
    let removed = dir_remove(g, &mut copy, first, offset).is_ok();
    if valid {
        check_dir_block(g, &copy, first, dir_ino).unwrap();
        // Remove every entry, one by one: the block stays valid.
        let mut copy = block.to_vec();
        let skip = if first { 2 } else { 0 };
        let used: Vec<usize> = DirIter::new(g, block, first)
            .skip(skip)
            .map(|e| e.unwrap())
            .filter(|e| e.is_used())
            .map(|e| e.offset)
            .collect();
        for offset in used {
            dir_remove(g, &mut copy, first, offset).unwrap();
            check_dir_block(g, &copy, first, dir_ino).unwrap();
        }
        assert!(dir_block_is_empty(g, &copy, first).unwrap());
    } else {
        assert!(!removed);
    }
    let mut copy = block.to_vec();
    let inserted = dir_insert(g, &mut copy, first, 1, b"new-name", FT_REG_FILE);
    if valid {
        assert!(inserted.is_ok());
        check_dir_block(g, &copy, first, dir_ino).unwrap();
    } else {
        assert!(inserted.is_err());
    }
    let _ = dir_set_entry(g, &mut copy, first, offset, 2, FT_DIR);
    valid
}

fn get_first_inode(block: &[u8]) -> u32 {
    u32::from_le_bytes(block[0..4].try_into().unwrap())
}

#[test]
fn garbage_directory_blocks_never_panic() {
    let mut rng = XorShift(0x1234_5678);
    for g in all_geometries() {
        // Random bytes with a valid checksum.
        for _ in 0..3000 {
            let mut block = vec![0u8; g.block_size()];
            for b in block.iter_mut() {
                *b = rng.next() as u8;
            }
            set_block_csum(&mut block);
            let first = rng.next().is_multiple_of(2);
            assert!(block_csum_ok_with(crc32c, &block));
            exercise(&g, &block, first, &mut rng);
        }
        // Records that are nearly right: some valid blocks, many subtly bad.
        let (mut valid, mut total) = (0, 0);
        for _ in 0..3000 {
            let first = rng.next().is_multiple_of(2);
            let block = plausible_garbage(&g, &mut rng, first);
            valid += usize::from(exercise(&g, &block, first, &mut rng));
            total += 1;
        }
        assert!(
            valid > 10 && valid < total,
            "{valid} valid blocks of {total}"
        );
    }
}
