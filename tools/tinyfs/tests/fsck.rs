// SPDX-License-Identifier: GPL-2.0

//! Tests of the fsck.tinyfs binary, and of `Image::check_all` under it, on
//! images made with the library and corrupted one way or another.

mod common;

use common::{TempDir, TempFile};
use std::fs;
use std::path::Path;
use std::process::Command;
use tinyfs::layout::{
    bitmap_clear, bitmap_set, dir_find, dir_set_entry, inode_record, inode_record_mut,
    set_block_csum, Geometry, Inode, SuperBlock, FT_REG_FILE, ROOT_INO, SUPER_SIZE,
};
use tinyfs::mkfs::{self, Args};
use tinyfs::read::Image;

/// The binary: Cargo target `fsck-tinyfs`, installed as `fsck.tinyfs`.
const FSCK: &str = env!("CARGO_BIN_EXE_fsck-tinyfs");

/// What a run of the binary gave: its status, standard output and error.
struct Run {
    code: i32,
    out: String,
    err: String,
}

fn fsck(args: &[&str]) -> Run {
    let out = Command::new(FSCK).args(args).output().unwrap();
    Run {
        code: out.status.code().expect("killed by a signal"),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Makes a file system of 1 KiB blocks on `image`, holding a copy of `tree`
/// if given.
fn make(image: &Path, tree: Option<&Path>) -> SuperBlock {
    let mut args = Args::new(image);
    args.block_size = 1024;
    args.root_dir = tree.map(Path::to_path_buf);
    mkfs::run_to(&args, &mut std::io::sink(), &mut std::io::sink()).unwrap()
}

/// An image holding a small tree: `f` (20 KiB, with an indirect block),
/// `d/` holding `g`, and `link` to `d/g`.
struct Populated {
    image: TempFile,
    _tree: TempDir,
    g: Geometry,
    pristine: Vec<u8>,
    /// The inode of `f`.
    f: u32,
}

impl Populated {
    fn new(tag: &str) -> Self {
        let tree = TempDir::new(tag);
        fs::write(tree.path.join("f"), vec![0x5a; 20 << 10]).unwrap();
        fs::create_dir(tree.path.join("d")).unwrap();
        fs::write(tree.path.join("d/g"), b"g\n").unwrap();
        std::os::unix::fs::symlink("d/g", tree.path.join("link")).unwrap();
        let image = TempFile::new(tag, 2 << 20);
        let sb = make(&image.path, Some(&tree.path));
        let f = Image::open(&image.path).unwrap().lookup(b"f").unwrap();
        Populated {
            pristine: image.read(),
            image,
            _tree: tree,
            g: sb.geometry,
            f,
        }
    }

    fn path(&self) -> &str {
        self.image.path.to_str().unwrap()
    }

    /// Writes the pristine image changed by `change`, runs the binary on it
    /// with `args` before the device; expects status `code` and no output on
    /// standard error.
    fn corrupt(&self, args: &[&str], code: i32, change: impl FnOnce(&mut Bytes)) -> Run {
        let mut bytes = Bytes {
            raw: self.pristine.clone(),
            g: self.g,
        };
        change(&mut bytes);
        assert_ne!(bytes.raw, self.pristine, "nothing changed");
        fs::write(&self.image.path, &bytes.raw).unwrap();
        let mut all = args.to_vec();
        all.push(self.path());
        let run = fsck(&all);
        assert_eq!(run.code, code, "{}{}", run.out, run.err);
        assert_eq!(run.err, "");
        assert_eq!(
            self.image.read(),
            bytes.raw,
            "fsck.tinyfs changed the image"
        );
        run
    }
}

/// The bytes of an image, with ways to change its structures and keep
/// their checksums right.
struct Bytes {
    raw: Vec<u8>,
    g: Geometry,
}

impl Bytes {
    fn block(&mut self, nr: u64) -> &mut [u8] {
        let bs = self.g.block_size();
        let start = nr as usize * bs;
        &mut self.raw[start..start + bs]
    }

    /// Changes metadata block `nr` with `change`, then stores its checksum.
    fn meta(&mut self, nr: u64, change: impl FnOnce(&mut [u8])) {
        let block = self.block(nr);
        change(block);
        set_block_csum(block);
    }

    fn super_block(&mut self, change: impl FnOnce(&mut SuperBlock)) {
        let mut sb = SuperBlock::decode(&self.raw).unwrap();
        change(&mut sb);
        sb.encode(&mut self.raw[..SUPER_SIZE]);
    }

    fn inode(&mut self, ino: u32, change: impl FnOnce(&mut Inode)) {
        let g = self.g;
        let pos = g.inode_pos(ino).unwrap();
        self.meta(pos.block, |block| {
            let raw = inode_record_mut(block, pos.offset).unwrap();
            let mut inode = Inode::decode(&g, raw).unwrap();
            change(&mut inode);
            inode.encode(raw);
        });
    }

    /// Sets (`used`) or clears the bit of block `nr` in the block bitmap.
    fn mark_block(&mut self, nr: u64, used: bool) {
        let pos = self.g.block_bitmap_pos(nr).unwrap();
        self.meta(pos.block, |block| {
            let was = if used {
                bitmap_set(block, pos.bit)
            } else {
                bitmap_clear(block, pos.bit)
            };
            assert_ne!(was.unwrap(), used, "block {nr}");
        });
    }

    /// The first data block of the root directory (its only one).
    fn root_dir_block(&self) -> u64 {
        let pos = self.g.inode_pos(ROOT_INO).unwrap();
        let bs = self.g.block_size();
        let block = &self.raw[pos.block as usize * bs..(pos.block as usize + 1) * bs];
        let raw = inode_record(block, pos.offset).unwrap();
        u64::from(Inode::decode(&self.g, raw).unwrap().direct[0])
    }
}

/// The problem lines of a run (the final count aside), without the prefix.
fn problems<'a>(run: &'a Run, device: &str) -> Vec<&'a str> {
    let prefix = format!("fsck.tinyfs: {device}: ");
    let lines: Vec<&str> = run
        .out
        .lines()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{l:?}: no prefix"))
        })
        .collect();
    let (last, problems) = lines.split_last().unwrap();
    assert!(
        last.ends_with("left uncorrected (repair is not implemented)"),
        "{}",
        run.out
    );
    problems.to_vec()
}

/// Expects a run to report exactly `want.len()` problems, each containing
/// the corresponding string.
fn expect_problems(run: &Run, device: &str, want: &[&str]) {
    let got = problems(run, device);
    assert_eq!(got.len(), want.len(), "{}", run.out);
    for (got, want) in got.iter().zip(want) {
        assert!(got.contains(want), "{want:?} not in {got:?}:\n{}", run.out);
    }
    let n = want.len();
    let summary = format!(
        "{n} problem{} found, left uncorrected",
        if n == 1 { "" } else { "s" }
    );
    assert!(run.out.contains(&summary), "{}", run.out);
}

#[test]
fn a_fresh_image_is_clean() {
    let image = TempFile::new("fsck-fresh", 4 << 20);
    let sb = make(&image.path, None);
    let g = sb.geometry;
    let path = image.path.to_str().unwrap();
    let before = image.read();
    let run = fsck(&[path]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert_eq!(
        run.out,
        format!(
            "fsck.tinyfs: {path}: clean, 1/{} files, {}/{} blocks\n",
            g.inodes_count,
            g.data_start + 1,
            g.blocks_count
        )
    );
    assert_eq!(run.err, "");
    // The options of fsck(8) change nothing here.
    for args in [&["-n"][..], &["-f"], &["-fn"], &["-n", "-f", "-v"]] {
        let mut all = args.to_vec();
        all.push(path);
        let run = fsck(&all);
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.out, run.err);
        assert!(run.out.contains(": clean, 1/"), "{args:?}: {}", run.out);
        assert_eq!(run.err, "", "{args:?}");
    }
    assert_eq!(image.read(), before, "fsck.tinyfs wrote");
}

#[test]
fn a_populated_image_is_clean() {
    let fs = Populated::new("fsck-tree");
    let path = fs.path();
    let run = fsck(&[path]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let sb = SuperBlock::decode(&fs.pristine).unwrap();
    let g = fs.g;
    // The root, f, d, d/g and link; 20 + 1 blocks for f, one each for the
    // rest.
    assert_eq!(g.inodes_count - sb.free_inodes, 5);
    assert_eq!(
        run.out,
        format!(
            "fsck.tinyfs: {path}: clean, 5/{} files, {}/{} blocks\n",
            g.inodes_count,
            g.blocks_count - sb.free_blocks,
            g.blocks_count
        )
    );
    assert_eq!(g.blocks_count - sb.free_blocks, g.data_start + 25);
    let run = fsck(&["-v", path]);
    assert_eq!(run.code, 0);
    assert!(
        run.out.ends_with(&format!(
            "fsck.tinyfs: {path}: 2 directories, 2 regular files, 1 symbolic link; \
             25 data blocks in use\n"
        )),
        "{}",
        run.out
    );
}

#[test]
fn repair_options_are_accepted_and_ignored() {
    let fs = Populated::new("fsck-repair");
    for opt in ["-a", "-p", "-y"] {
        let run = fsck(&[opt, fs.path()]);
        assert_eq!(run.code, 0, "{opt}: {}{}", run.out, run.err);
        assert!(run.out.contains(": clean, "), "{opt}: {}", run.out);
        assert!(
            run.err.contains("repair is not implemented"),
            "{opt}: {}",
            run.err
        );
    }
    // On a corrupt image: still a check, status 4, nothing written.
    let mut bytes = fs.pristine.clone();
    let g = fs.g;
    let pos = g.inode_pos(fs.f).unwrap();
    let bs = g.block_size();
    bytes[pos.block as usize * bs + pos.offset + 10] ^= 0x40;
    fs::write(&fs.image.path, &bytes).unwrap();
    for opt in ["-a", "-p", "-y"] {
        let run = fsck(&[opt, fs.path()]);
        assert_eq!(run.code, 4, "{opt}: {}{}", run.out, run.err);
        assert!(run.out.contains("checksum"), "{opt}: {}", run.out);
        assert!(
            run.err.contains("repair is not implemented"),
            "{opt}: {}",
            run.err
        );
        assert_eq!(fs.image.read(), bytes);
    }
}

#[test]
fn a_block_bitmap_bit() {
    let fs = Populated::new("fsck-bitmap");
    let path = fs.path();
    let g = fs.g;
    // A block of f marked free, the free count following: only the bitmap
    // is wrong.
    let nr = Image::open(&fs.image.path)
        .unwrap()
        .block_map(fs.f)
        .unwrap()
        .get(3);
    let run = fs.corrupt(&[], 4, |b| {
        b.mark_block(u64::from(nr), false);
        b.super_block(|sb| sb.free_blocks += 1);
    });
    expect_problems(
        &run,
        path,
        &[&format!(
            "block {nr} is in use but marked free in the bitmap"
        )],
    );
    // A free block marked used, the free count not following: two problems.
    let free = g.blocks_count - 1;
    let run = fs.corrupt(&[], 4, |b| b.mark_block(free, true));
    expect_problems(
        &run,
        path,
        &[
            "free blocks, the bitmap",
            &format!("block {free} is not in use but marked used in the bitmap"),
        ],
    );
}

#[test]
fn a_free_count() {
    let fs = Populated::new("fsck-count");
    let sb = SuperBlock::decode(&fs.pristine).unwrap();
    let run = fs.corrupt(&[], 4, |b| b.super_block(|sb| sb.free_inodes -= 1));
    expect_problems(
        &run,
        fs.path(),
        &[&format!(
            "super block: {} free inodes, the bitmap {}",
            sb.free_inodes - 1,
            sb.free_inodes
        )],
    );
    let run = fs.corrupt(&[], 4, |b| b.super_block(|sb| sb.free_blocks += 7));
    expect_problems(
        &run,
        fs.path(),
        &[&format!(
            "super block: {} free blocks, the bitmap {}",
            sb.free_blocks + 7,
            sb.free_blocks
        )],
    );
}

#[test]
fn a_link_count() {
    let fs = Populated::new("fsck-links");
    let f = fs.f;
    let run = fs.corrupt(&[], 4, |b| b.inode(f, |i| i.links = 3));
    expect_problems(
        &run,
        fs.path(),
        &[&format!("inode {f}: link count 3, but 1 entries name it")],
    );
    // The root directory's, too low.
    let run = fs.corrupt(&[], 4, |b| b.inode(ROOT_INO, |i| i.links = 2));
    expect_problems(
        &run,
        fs.path(),
        &["inode 1: link count 2, but 3 entries name it"],
    );
}

#[test]
fn an_entry_naming_a_free_inode() {
    let fs = Populated::new("fsck-free");
    let g = fs.g;
    let (f, free) = (fs.f, g.inodes_count);
    let run = fs.corrupt(&[], 4, |b| {
        let nr = b.root_dir_block();
        b.meta(nr, |block| {
            let offset = dir_find(&g, block, true, b"f").unwrap().unwrap().offset;
            dir_set_entry(&g, block, true, offset, free, FT_REG_FILE).unwrap();
        });
    });
    // And f is now in no directory.
    expect_problems(
        &run,
        fs.path(),
        &[
            &format!("directory 1: \"f\" names free inode {free}"),
            &format!("inode {f} is in use but in no directory"),
        ],
    );
}

#[test]
fn a_flipped_byte_in_the_inode_table() {
    let fs = Populated::new("fsck-flip");
    let g = fs.g;
    let pos = g.inode_pos(fs.f).unwrap();
    let run = fs.corrupt(&[], 4, |b| b.block(pos.block)[pos.offset + 20] ^= 1);
    expect_problems(
        &run,
        fs.path(),
        &[&format!(
            "block {}: inode table block: checksum mismatch",
            pos.block
        )],
    );
    // In the last block of the table, all free inodes, along with a link
    // count: both found, and nothing else.
    let last = g.inode_table_start + u64::from(g.inode_table_blocks) - 1;
    assert_ne!(last, pos.block);
    let f = fs.f;
    let run = fs.corrupt(&[], 4, |b| {
        b.block(last)[7] ^= 0x80;
        b.inode(f, |i| i.links = 2);
    });
    expect_problems(
        &run,
        fs.path(),
        &[
            &format!("block {last}: inode table block: checksum mismatch"),
            &format!("inode {f}: link count 2"),
        ],
    );
}

#[test]
fn many_problems_are_all_reported_with_v() {
    let fs = Populated::new("fsck-many");
    let g = fs.g;
    let marked: Vec<u64> = (g.blocks_count - 15..g.blocks_count).collect();
    let change = |b: &mut Bytes| {
        for &nr in &marked {
            b.mark_block(nr, true);
        }
    };
    // The free count, and each block.
    let mut want = vec!["free blocks, the bitmap".to_string()];
    want.extend(
        marked
            .iter()
            .map(|nr| format!("block {nr} is not in use but marked used")),
    );
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    let run = fs.corrupt(&["-v"], 4, change);
    expect_problems(&run, fs.path(), &want);

    // Without -v: the first ten, and how many more.
    let run = fs.corrupt(&[], 4, change);
    let got = problems(&run, fs.path());
    assert_eq!(got.len(), 11, "{}", run.out);
    for (got, want) in got.iter().zip(&want[..10]) {
        assert!(got.contains(want), "{want:?} not in {got:?}");
    }
    assert_eq!(got[10], "... and 6 more (-v lists them all)");
    assert!(run.out.contains(": 16 problems found, "), "{}", run.out);

    // The library finds the same, and check() stops at the first.
    let img = Image::open(&fs.image.path).unwrap();
    let findings = img.check_all();
    assert_eq!(findings.problems.len(), 16);
    assert!(!findings.is_clean());
    assert_eq!(
        img.check().unwrap_err().to_string(),
        findings.problems[0].to_string()
    );
}

#[test]
fn not_a_tinyfs_image() {
    let fs = Populated::new("fsck-magic");
    let path = fs.path();
    let mut bytes = fs.pristine.clone();
    bytes[0] ^= 0xff;
    fs::write(&fs.image.path, &bytes).unwrap();
    let run = fsck(&[path]);
    assert_eq!(run.code, 8, "{}{}", run.out, run.err);
    assert_eq!(run.out, "");
    assert_eq!(
        run.err,
        format!(
            "fsck.tinyfs: {path}: not a tinyfs file system (bad magic number in the super block)\n"
        )
    );
    // Neither is a file of zeros, nor a directory, nor nothing.
    let zeros = TempFile::new("fsck-zeros", 0);
    fs::write(&zeros.path, vec![0; 64 << 10]).unwrap();
    let run = fsck(&[zeros.path.to_str().unwrap()]);
    assert_eq!(run.code, 8, "{}", run.err);
    assert!(run.err.contains("bad magic number"), "{}", run.err);
    let dir = TempDir::new("fsck-dir");
    for (device, what) in [
        (dir.path.to_str().unwrap(), "cannot read the super block"),
        (
            "/nonexistent/tinyfs.img",
            "cannot open /nonexistent/tinyfs.img",
        ),
    ] {
        let run = fsck(&[device]);
        assert_eq!(run.code, 8, "{device}: {}", run.err);
        assert_eq!(run.out, "", "{device}");
        assert!(
            run.err.starts_with("fsck.tinyfs: ") && run.err.contains(what),
            "{device}: {}",
            run.err
        );
    }
}

#[test]
fn a_corrupt_super_block_is_a_problem() {
    let fs = Populated::new("fsck-sb");
    let path = fs.path();
    // A byte of the label: the checksum.
    let run = fs.corrupt(&[], 4, |b| b.raw[130] ^= 1);
    assert_eq!(
        problems(&run, path),
        [
            "super block: checksum mismatch",
            "the super block is unusable: nothing else was checked"
        ],
        "{}",
        run.out
    );
    // A truncated image.
    fs::write(&fs.image.path, &fs.pristine[..100 << 10]).unwrap();
    let run = fsck(&[path]);
    assert_eq!(run.code, 4, "{}{}", run.out, run.err);
    let got = problems(&run, path);
    assert!(
        got[0].ends_with("has 102400 bytes, the file system 2097152"),
        "{}",
        run.out
    );
}

#[test]
fn usage_errors_are_status_16() {
    let fs = Populated::new("fsck-usage");
    let path = fs.path();
    for args in [
        &[][..],
        &["--bogus", path],
        &["-x", path],
        &["-C", "0", path],
        &[path, path],
        &["-v"],
    ] {
        let run = fsck(args);
        assert_eq!(run.code, 16, "{args:?}: {}", run.err);
        assert_eq!(run.out, "", "{args:?}");
        assert!(run.err.starts_with("error: "), "{args:?}: {}", run.err);
        assert!(
            run.err.contains("Usage: fsck.tinyfs "),
            "{args:?}: {}",
            run.err
        );
    }
    let run = fsck(&["--help"]);
    assert_eq!(run.code, 0);
    for opt in ["-n", "-f", "-a", "-p", "-y", "--verbose", "<DEVICE>"] {
        assert!(run.out.contains(opt), "{opt} not in:\n{}", run.out);
    }
    let run = fsck(&["-V"]);
    assert_eq!(run.code, 0);
    assert!(run.out.starts_with("fsck.tinyfs "), "{}", run.out);
}

#[test]
fn a_directory_block_hides_only_what_it_holds() {
    let fs = Populated::new("fsck-dirblock");
    let img = Image::open(&fs.image.path).unwrap();
    let d = img.lookup(b"d").unwrap();
    let block = u64::from(img.block_map(d).unwrap().get(0));
    drop(img);
    // Its checksum: the entries of d are unknown, so d/g is not reported as
    // in no directory, nor d's link count (its subdirectories' ".." unknown).
    let run = fs.corrupt(&[], 4, |b| b.block(block)[40] ^= 1);
    expect_problems(
        &run,
        fs.path(),
        &[&format!(
            "block {block}: directory block: checksum mismatch"
        )],
    );
    // A link count lower than the entries found is still found (one higher
    // could be right, the missing entries naming it).
    let f = fs.f;
    let run = fs.corrupt(&["-v"], 4, |b| {
        b.block(block)[40] ^= 1;
        b.inode(f, |i| i.links = 0);
    });
    expect_problems(
        &run,
        fs.path(),
        &[
            "directory block: checksum mismatch",
            &format!("inode {f}: link count 0, but 1 entries name it"),
        ],
    );
}

#[test]
fn a_directory_in_no_directory() {
    let fs = Populated::new("fsck-orphan");
    let g = fs.g;
    let d = Image::open(&fs.image.path).unwrap().lookup(b"d").unwrap();
    // Its entry removed (and the root's link count following): d is
    // reported, not what is in it.
    let run = fs.corrupt(&[], 4, |b| {
        let nr = b.root_dir_block();
        b.meta(nr, |block| {
            let offset = dir_find(&g, block, true, b"d").unwrap().unwrap().offset;
            tinyfs::layout::dir_remove(&g, block, true, offset).unwrap();
        });
        b.inode(ROOT_INO, |i| i.links = 2);
    });
    expect_problems(
        &run,
        fs.path(),
        &[
            // d's ".." still names the root.
            "inode 1: link count 2, but 3 entries name it",
            &format!("inode {d} is in use but in no directory"),
        ],
    );
}

/// A small deterministic generator of numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn check_all_survives_random_corruption() {
    let fs = Populated::new("fsck-random");
    let g = fs.g;
    // The metadata, and the blocks of the directories and of f's indirect
    // block: where a change means something.
    let img = Image::open(&fs.image.path).unwrap();
    let mut meta: Vec<u64> = (0..g.data_start).collect();
    for path in [&b""[..], b"d"] {
        let map = img.block_map(img.lookup(path).unwrap()).unwrap();
        meta.extend(map.data.iter().map(|&(_, p)| u64::from(p)));
    }
    meta.extend(
        img.block_map(fs.f)
            .unwrap()
            .indirect
            .iter()
            .map(|&p| u64::from(p)),
    );
    drop(img);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut found = 0;
    for _ in 0..300 {
        let mut bytes = Bytes {
            raw: fs.pristine.clone(),
            g,
        };
        for _ in 0..1 + rng.below(3) {
            let nr = meta[rng.below(meta.len() as u64) as usize];
            let len = if nr == 0 { SUPER_SIZE } else { g.block_size() };
            let at = rng.below(len as u64 - 4) as usize;
            let bit = rng.below(8);
            let block = bytes.block(nr);
            block[at] ^= 1 << bit;
            // Mostly with the checksum right, so that the checks behind it
            // see the change.
            if rng.below(4) != 0 {
                set_block_csum(&mut block[..len]);
            }
        }
        fs::write(&fs.image.path, &bytes.raw).unwrap();
        let Ok(img) = Image::open(&fs.image.path) else {
            continue;
        };
        let findings = img.check_all();
        match img.check() {
            Ok(report) => {
                assert!(findings.is_clean());
                assert_eq!(report, findings.report);
            }
            Err(e) => {
                found += 1;
                assert_eq!(e.to_string(), findings.problems[0].to_string());
            }
        }
    }
    assert!(found > 100, "{found}");
}
