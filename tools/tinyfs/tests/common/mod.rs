// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the mkfs tests: temporary image files and a reader that
//! decodes and checks a whole freshly made image.

#![allow(dead_code)]

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use tinyfs::layout::*;

/// A file under the temporary directory, removed when dropped.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    /// A new file of `len` bytes, filled with a pattern so that nothing
    /// relies on an image being zeroed.
    pub fn new(tag: &str, len: u64) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tinyfs-test-{}-{tag}-{n}.img", std::process::id()));
        let file = File::create(&path).unwrap();
        let chunk: Vec<u8> = (0..1 << 16).map(|i| (i * 7 + 0xa5) as u8).collect();
        let mut off = 0;
        while off < len {
            let n = chunk.len().min((len - off) as usize);
            file.write_all_at(&chunk[..n], off).unwrap();
            off += n as u64;
        }
        TempFile { path }
    }

    pub fn read(&self) -> Vec<u8> {
        fs::read(&self.path).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A directory under the temporary directory, removed with its contents
/// when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tinyfs-test-{}-{tag}-{n}.d", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Decodes and checks every metadata block of the fresh image at `path`;
/// returns its super block and root inode.
pub fn check_fresh_image(path: &Path) -> (SuperBlock, Inode) {
    let image = fs::read(path).unwrap();
    let sb = SuperBlock::decode(&image).unwrap();
    let g = sb.geometry;
    let bs = g.block_size();
    assert!(image.len() as u64 >= g.blocks_count * bs as u64);
    let block = |n: u64| {
        let b = &image[n as usize * bs..(n as usize + 1) * bs];
        assert!(block_csum_ok_with(crc32c, b), "checksum of block {n}");
        b
    };
    assert_eq!(sb.state, STATE_CLEAN);
    assert_eq!(sb.mkfs_time, sb.write_time);
    assert_eq!(
        (sb.feature_compat, sb.feature_incompat, sb.feature_ro_compat),
        (0, 0, 0)
    );
    // The rest of block 0 is zero.
    assert!(image[SUPER_SIZE..bs].iter().all(|&b| b == 0));

    // Inode bitmap: only the root inode in use.
    let mut free_inodes = 0u64;
    for i in 0..g.inode_bitmap_blocks {
        let b = block(g.inode_bitmap_start + u64::from(i));
        g.check_inode_bitmap(i, b).unwrap();
        free_inodes += u64::from(bitmap_count_zeros(b));
        for bit in 0..g.bits_per_bitmap_block() as u32 {
            if let Some(ino) = g.inode_of_bit(i, bit) {
                assert_eq!(bitmap_test(b, bit).unwrap(), ino == ROOT_INO, "inode {ino}");
            }
        }
    }
    assert_eq!(free_inodes, u64::from(sb.free_inodes));
    assert_eq!(sb.free_inodes, g.inodes_count - 1);

    // Block bitmap: the metadata and the root directory's block in use.
    let mut free_blocks = 0u64;
    for i in 0..g.block_bitmap_blocks {
        let b = block(g.block_bitmap_start + u64::from(i));
        g.check_block_bitmap(i, b).unwrap();
        free_blocks += u64::from(bitmap_count_zeros(b));
        for bit in 0..g.bits_per_bitmap_block() as u32 {
            if let Some(n) = g.block_of_bit(i, bit) {
                assert_eq!(bitmap_test(b, bit).unwrap(), n <= g.data_start, "block {n}");
            }
        }
    }
    assert_eq!(free_blocks, sb.free_blocks);
    assert_eq!(sb.free_blocks, g.blocks_count - g.data_start - 1);

    // Inode table: the root inode, every other record zero.
    let mut root = None;
    for ino in 1..=g.inodes_count {
        let pos = g.inode_pos(ino).unwrap();
        let raw = inode_record(block(pos.block), pos.offset).unwrap();
        if ino == ROOT_INO {
            root = Some(Inode::decode(&g, raw).unwrap());
        } else {
            assert!(Inode::is_free_record(raw), "inode {ino}");
        }
    }
    for i in 0..u64::from(g.inode_table_blocks) {
        block(g.inode_table_start + i);
    }
    let root = root.unwrap();
    assert_eq!(root.mode, S_IFDIR | 0o755);
    assert_eq!((root.links, root.uid, root.gid, root.flags), (2, 0, 0, 0));
    assert_eq!(root.size, bs as u64);
    assert_eq!(root.blocks, 1);
    assert_eq!(u64::from(root.direct[0]), g.data_start);
    assert!(root.direct[1..].iter().all(|&p| p == 0));
    assert_eq!(root.indirect, [0; 3]);
    assert_eq!(root.atime, root.mtime);
    assert_eq!(root.ctime, root.mtime);
    assert_eq!(root.mtime.sec as u64, sb.mkfs_time);

    // Root directory: "." and "..", both the root, ".." spanning the rest.
    let dir = block(g.data_start);
    check_dir_block(&g, dir, true, ROOT_INO).unwrap();
    let entries: Vec<_> = DirIter::new(&g, dir, true)
        .map(|e| e.unwrap())
        .map(|e| (e.inode, e.file_type, e.name.to_vec(), e.offset, e.rec_len))
        .collect();
    assert_eq!(
        entries,
        vec![
            (ROOT_INO, FT_DIR, b".".to_vec(), 0, 12),
            (ROOT_INO, FT_DIR, b"..".to_vec(), 12, bs - CSUM_SIZE - 12),
        ]
    );

    // The reader agrees.
    let img = tinyfs::read::Image::open(path).unwrap();
    let report = img.check().unwrap();
    assert_eq!((report.inodes_used, report.blocks_used), (1, 1));
    assert_eq!((report.dirs, report.files, report.symlinks), (1, 0, 0));
    (sb, root)
}
