// SPDX-License-Identifier: GPL-2.0

//! Tests of `mkfs.tinyfs -d`: copying a host directory tree into the new
//! file system, read back with `tinyfs::read::Image`.

mod common;

use common::{TempDir, TempFile};
use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tinyfs::layout::{
    bitmap_clear, inode_record_mut, set_block_csum, Geometry, Inode, SuperBlock, FT_DIR,
    MAX_BLOCK_SIZE_BITS, MIN_BLOCK_SIZE_BITS, ROOT_INO, S_IALLUGO, S_IFDIR, S_IFLNK, S_IFMT,
    S_IFREG,
};
use tinyfs::mkfs::{self, populate, Args, Error};
use tinyfs::read::{self, Image};

const KIB: usize = 1024;
const MIB: u64 = 1 << 20;

/// Bytes that are never zero, different for each `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(seed) * 7) % 251) as u8 + 1)
        .collect()
}

fn set_times(path: &Path, atime: SystemTime, mtime: SystemTime) {
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(atime).set_modified(mtime))
        .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The long name of entry `i` of the big directory: 60 bytes, so that
/// hundreds of them need more than 12 blocks of 1 KiB.
fn many_name(i: usize) -> String {
    format!("{i:04}-{}", "m".repeat(55))
}

/// Fills `root` with the test tree.
fn build_tree(root: &Path) {
    let w = |rel: &str, data: &[u8]| fs::write(root.join(rel), data).unwrap();
    w("empty", b"");
    w("one", b"x");
    for (i, size) in [1024, 2048, 4096].into_iter().enumerate() {
        w(&format!("block{}k", size / KIB), &pattern(size, i as u8));
    }
    // Past the single indirect blocks into the double ones with 1 KiB blocks
    // (12 + 255 blocks).
    w("big", &pattern(300 * KIB + 123, 9));
    let mut sparse = pattern(10 * KIB, 1);
    sparse.resize(74 * KIB, 0);
    sparse.extend(pattern(5 * KIB + 100, 2));
    w("sparse", &sparse);
    w("zeros", &vec![0; 20_000]);
    let mut tail = pattern(5000, 3);
    tail.resize(5000 + 8 * KIB, 0);
    w("zero-tail", &tail);
    w(&"n".repeat(255), b"the longest name");

    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join("a/b2")).unwrap();
    fs::create_dir(root.join("emptydir")).unwrap();
    w("a/b/c/deep.txt", b"deep down\n");
    w("a/file", &pattern(3000, 4));
    std::os::unix::fs::symlink("a/b/c/deep.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("a/dangling")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(1500), root.join("longlink")).unwrap();
    // The longest target; not every host file system takes it.
    let _ = std::os::unix::fs::symlink("y".repeat(4095), root.join("maxlink"));
    // A hard link: copied as a file of its own.
    fs::hard_link(root.join("one"), root.join("a/hard")).unwrap();

    fs::create_dir(root.join("many")).unwrap();
    for i in 0..300 {
        w(&format!("many/{}", many_name(i)), &[i as u8 | 1]);
    }

    fs::create_dir(root.join("modes")).unwrap();
    for (name, mode) in [
        ("suid", 0o4755),
        ("sgid", 0o2750),
        ("ro", 0o444),
        ("none", 0),
    ] {
        let p = root.join("modes").join(name);
        fs::write(&p, name).unwrap();
        chmod(&p, mode);
    }
    fs::create_dir(root.join("modes/sticky")).unwrap();
    chmod(&root.join("modes/sticky"), 0o1777);
    // Another owner, where the tests may set one.
    let _ = std::os::unix::fs::chown(root.join("modes/ro"), Some(1234), Some(56789));

    // Times with nanoseconds; the access times in the future so that reading
    // does not change them (relatime).
    let mtime = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let atime = SystemTime::now() + Duration::new(3600, 987_654_321);
    for rel in ["one", "big", "sparse", "a/b/c/deep.txt", "a/b/c", "a", ""] {
        set_times(&root.join(rel), atime, mtime);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKind {
    File(Vec<u8>),
    Dir(Vec<Vec<u8>>),
    Link(Vec<u8>),
    Other,
}

#[derive(Debug, Clone)]
struct HostFile {
    kind: HostKind,
    mode: u32,
    uid: u32,
    gid: u32,
    times: [(i64, i64); 3],
}

/// What the host tree under `root` holds, by path relative to it. Each file
/// is read before it is looked at, so that its access time no longer
/// changes when mkfs reads it.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, HostFile> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, HostFile>) {
        let path = root.join(rel);
        let ft = fs::symlink_metadata(&path).unwrap().file_type();
        let kind = if ft.is_symlink() {
            HostKind::Link(
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_dir() {
            let mut names: Vec<Vec<u8>> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            HostKind::Dir(names)
        } else if ft.is_file() {
            HostKind::File(fs::read(&path).unwrap())
        } else {
            HostKind::Other
        };
        let m = fs::symlink_metadata(&path).unwrap();
        out.insert(
            rel.to_path_buf(),
            HostFile {
                kind: kind.clone(),
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                times: [
                    (m.atime(), m.atime_nsec()),
                    (m.mtime(), m.mtime_nsec()),
                    (m.ctime(), m.ctime_nsec()),
                ],
            },
        );
        if let HostKind::Dir(names) = kind {
            for name in names {
                walk(root, &rel.join(std::ffi::OsStr::from_bytes(&name)), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// Checks that inode `ino` of `img` is a copy of `rel` in `snap`, and
/// everything under it.
fn compare(img: &Image, snap: &BTreeMap<PathBuf, HostFile>, rel: &Path, ino: u32) {
    let h = &snap[rel];
    let inode = img.inode(ino).unwrap();
    let bs = img.geometry().block_size() as u64;
    assert_eq!(
        u32::from(inode.mode & S_IALLUGO),
        h.mode & 0o7777,
        "{rel:?}"
    );
    assert_eq!((inode.uid, inode.gid), (h.uid, h.gid), "{rel:?}");
    let times = [inode.atime, inode.mtime, inode.ctime].map(|t| (t.sec, i64::from(t.nsec)));
    assert_eq!(times, h.times, "{rel:?}");
    match &h.kind {
        HostKind::File(data) => {
            assert_eq!(inode.mode & S_IFMT, S_IFREG, "{rel:?}");
            assert_eq!(inode.links, 1, "{rel:?}");
            assert_eq!(inode.size, data.len() as u64, "{rel:?}");
            assert!(img.read_file(ino).unwrap() == *data, "{rel:?}: contents");
            // Every block of zeros is a hole, every other one is there.
            let map = img.block_map(ino).unwrap();
            for (n, chunk) in data.chunks(bs as usize).enumerate() {
                let zero = chunk.iter().all(|&b| b == 0);
                assert_eq!(map.get(n as u64) == 0, zero, "{rel:?}: block {n}");
            }
        }
        HostKind::Link(target) => {
            assert_eq!(inode.mode & S_IFMT, S_IFLNK, "{rel:?}");
            assert_eq!(inode.links, 1, "{rel:?}");
            assert_eq!(inode.size, target.len() as u64);
            assert_eq!(img.read_link(ino).unwrap(), *target, "{rel:?}");
            assert_eq!(
                u64::from(inode.blocks),
                (target.len() as u64).div_ceil(bs),
                "{rel:?}"
            );
        }
        HostKind::Dir(names) => {
            assert_eq!(inode.mode & S_IFMT, S_IFDIR, "{rel:?}");
            assert_eq!(inode.size % bs, 0);
            let entries = img.read_dir(ino).unwrap();
            assert_eq!(entries[0].name, b".");
            assert_eq!(entries[0].ino, ino);
            assert_eq!(entries[1].name, b"..");
            let mut copied: Vec<_> = entries[2..].to_vec();
            copied.sort_by(|a, b| a.name.cmp(&b.name));
            let kept: Vec<&Vec<u8>> = names
                .iter()
                .filter(|n| snap[&rel.join(std::ffi::OsStr::from_bytes(n))].kind != HostKind::Other)
                .collect();
            assert_eq!(
                copied.iter().map(|e| &e.name).collect::<Vec<_>>(),
                kept,
                "{rel:?}"
            );
            let subdirs = copied.iter().filter(|e| e.file_type == FT_DIR).count();
            assert_eq!(usize::from(inode.links), 2 + subdirs, "{rel:?}");
            for e in copied {
                let child = rel.join(std::ffi::OsStr::from_bytes(&e.name));
                compare(img, snap, &child, e.ino);
                // The entry's type is the inode's.
                assert_eq!(e.file_type, img.inode(e.ino).unwrap().file_type());
                if e.file_type == FT_DIR {
                    assert_eq!(img.read_dir(e.ino).unwrap()[1].ino, ino, "{child:?}: ..");
                }
            }
        }
        HostKind::Other => panic!("{rel:?} was copied"),
    }
}

fn args(img: &Path, block_size: u32, dir: &Path) -> Args {
    Args {
        block_size,
        quiet: true,
        uuid: Some("00112233-4455-6677-8899-aabbccddeeff".into()),
        root_dir: Some(dir.to_path_buf()),
        ..Args::new(img)
    }
}

/// Runs mkfs with `args`; returns the super block and the warnings.
fn run(args: &Args) -> Result<(SuperBlock, String), Error> {
    let mut out = Vec::new();
    let mut warn = Vec::new();
    let sb = mkfs::run_to(args, &mut out, &mut warn)?;
    if args.quiet {
        assert_eq!(out, b"");
    }
    Ok((sb, String::from_utf8(warn).unwrap()))
}

/// Every block an inode uses, data and indirect.
fn blocks_of(img: &Image, ino: u32) -> Vec<u32> {
    let map = img.block_map(ino).unwrap();
    let mut v = map.indirect.clone();
    v.extend(map.data.iter().map(|&(_, p)| p));
    v
}

#[test]
fn copies_a_tree_at_every_block_size() {
    let tree = TempDir::new("tree");
    build_tree(&tree.path);
    // A socket: skipped with a warning.
    let sock = tree.path.join("a/sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        let bs = 1u32 << bits;
        let image = TempFile::new("tree", 8 * MIB);
        let snap = snapshot(&tree.path);
        let (sb, warnings) = run(&args(&image.path, bs, &tree.path)).unwrap();
        assert_eq!(
            warnings,
            format!(
                "mkfs.tinyfs: warning: skipping {}: a socket (tinyfs has only regular files, \
                 directories and symbolic links)\n",
                sock.display()
            )
        );

        let img = Image::open(&image.path).unwrap();
        assert_eq!(*img.super_block(), sb);
        let g = sb.geometry;
        let report = img.check().unwrap();
        let host_count = |f: fn(&HostKind) -> bool| snap.values().filter(|h| f(&h.kind)).count();
        assert_eq!(
            report.dirs as usize,
            host_count(|k| matches!(k, HostKind::Dir(_)))
        );
        assert_eq!(
            report.files as usize,
            host_count(|k| matches!(k, HostKind::File(_)))
        );
        assert_eq!(
            report.symlinks as usize,
            host_count(|k| matches!(k, HostKind::Link(_)))
        );
        assert_eq!(report.inodes_used, g.inodes_count - sb.free_inodes);
        assert_eq!(
            report.blocks_used,
            g.blocks_count - g.data_start - sb.free_blocks
        );

        compare(&img, &snap, Path::new(""), ROOT_INO);

        // The blocks in use are the first ones, without a gap, the root
        // directory's first.
        let mut all: Vec<u32> = (1..=report.inodes_used)
            .flat_map(|ino| blocks_of(&img, ino))
            .collect();
        all.sort_unstable();
        let first = g.data_start as u32;
        assert_eq!(
            all,
            (first..first + report.blocks_used as u32).collect::<Vec<_>>()
        );
        assert_eq!(img.block_map(ROOT_INO).unwrap().data[0], (0, first));

        // Indirect blocks come right before the data they map.
        let big = img.lookup(b"big").unwrap();
        let inode = img.inode(big).unwrap();
        let map = img.block_map(big).unwrap();
        assert_eq!(inode.indirect[0], inode.direct[11] + 1);
        assert_eq!(map.get(12), inode.indirect[0] + 1);
        let p = g.ptrs_per_block() as u64;
        if bits == 10 {
            // 300 KiB: into the double indirect blocks.
            assert_ne!(inode.indirect[1], 0);
            assert_eq!(map.get(12 + p), inode.indirect[1] + 2);
            assert_eq!(map.indirect.len(), 3);
        } else {
            assert_eq!(inode.indirect[1..], [0, 0]);
        }
        assert_eq!(u64::from(inode.blocks), map.blocks());

        // Holes.
        let zeros = img.inode(img.lookup(b"zeros").unwrap()).unwrap();
        assert_eq!((zeros.size, zeros.blocks), (20_000, 0));
        let sparse = img.inode(img.lookup(b"sparse").unwrap()).unwrap();
        assert!(u64::from(sparse.blocks) < sparse.size.div_ceil(u64::from(bs)));
        let tail = img.block_map(img.lookup(b"zero-tail").unwrap()).unwrap();
        assert_eq!(tail.data.len(), 5000usize.div_ceil(bs as usize));

        // Exactly one block.
        for k in [1, 2, 4] {
            let ino = img.lookup(format!("block{k}k").as_bytes()).unwrap();
            let blocks = img.inode(ino).unwrap().blocks;
            assert_eq!(blocks, (k * 1024u32).div_ceil(bs), "block{k}k");
        }

        // The big directory grows by whole blocks, past the direct ones with
        // 1 KiB blocks.
        let many = img.lookup(b"many").unwrap();
        let inode = img.inode(many).unwrap();
        let nblocks = inode.size / u64::from(bs);
        assert_eq!(u64::from(inode.blocks), nblocks + u64::from(nblocks > 12));
        assert_eq!(inode.indirect[0] != 0, bits == 10);
        assert_eq!(img.read_dir(many).unwrap().len(), 302);
        let name = many_name(299);
        let last = img.lookup(format!("many/{name}").as_bytes()).unwrap();
        assert_eq!(img.read_file(last).unwrap(), [299u16 as u8 | 1]);

        // Lookups.
        let deep = img.lookup(b"/a/b/c/deep.txt").unwrap();
        assert_eq!(img.read_file(deep).unwrap(), b"deep down\n");
        assert!(matches!(
            img.lookup(b"a/nope"),
            Err(read::Error::NotFound(_))
        ));
        assert!(img.lookup(&[b'n'; 255]).is_ok());
        // The hard link is a file of its own.
        assert_ne!(img.lookup(b"a/hard").unwrap(), img.lookup(b"one").unwrap());
        assert!(img.read_file(img.lookup(b"a").unwrap()).is_err());
    }
}

#[test]
fn names_the_format_refuses_are_errors() {
    let dir = Path::new("/some/dir");
    let long = vec![b'x'; 256];
    let e = populate::check_name(&dir.join("x"), &long).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(
        msg.contains("/some/dir/x") && msg.contains("name too long") && msg.contains("256"),
        "{msg}"
    );
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let e = populate::check_name(dir, bad).unwrap_err();
        assert!(e.to_string().starts_with("/some/dir: invalid name"), "{e}");
    }
    populate::check_name(dir, &long[..255]).unwrap();
    populate::check_name(dir, "é".as_bytes()).unwrap();
}

#[test]
fn a_tree_too_large_is_refused() {
    let tree = TempDir::new("big-tree");
    fs::write(tree.path.join("big"), pattern(300 * KIB, 5)).unwrap();
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        let bs = 1u32 << bits;
        let blocks = mkfs::min_blocks(bits);
        let image = TempFile::new("nospace", blocks << bits);
        let original = image.read();
        // A dry run says so and writes nothing.
        let a = Args {
            dry_run: true,
            ..args(&image.path, bs, &tree.path)
        };
        let e = run(&a).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::NoSpace(_)), "{e:?}");
        let need = (300 * KIB as u64).div_ceil(u64::from(bs));
        assert!(
            msg.contains("not enough space") && msg.contains(&tree.path.display().to_string()),
            "{msg}"
        );
        let g = Geometry::new(bits, blocks, 16).unwrap();
        let have = blocks - g.data_start;
        // The root directory, the data and its indirect blocks.
        let p = u64::from(g.ptrs_per_block());
        let indirect = match need {
            n if n <= 12 => 0,
            n if n <= 12 + p => 1,
            n => 2 + (n - 12 - p).div_ceil(p),
        };
        let needed: u64 = msg
            .split("need ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(needed, 1 + need + indirect, "{msg}");
        assert!(msg.contains(&format!("have {have}")), "{msg}");
        assert!(!msg.contains("inodes"), "{msg}");
        assert!(!msg.contains("holds no valid file system"), "{msg}");
        assert_eq!(image.read(), original);

        // For real: the same need, and the image is left without a file system.
        let e = run(&args(&image.path, bs, &tree.path)).unwrap_err();
        let msg2 = e.to_string();
        assert!(matches!(e, Error::NoSpace(_)), "{e:?}");
        assert!(msg2.starts_with(&msg), "{msg2}");
        assert!(msg2.ends_with("holds no valid file system now"), "{msg2}");
        assert!(matches!(
            Image::open(&image.path),
            Err(read::Error::Format {
                err: tinyfs::layout::Error::BadMagic,
                ..
            })
        ));
        // Nothing past the file system was written.
        let end = (blocks as usize) << bits;
        assert_eq!(image.read()[end..], original[end..]);
    }
}

#[test]
fn running_out_of_inodes_is_refused() {
    let tree = TempDir::new("inodes");
    for i in 0..40 {
        fs::write(tree.path.join(format!("f{i}")), b"x").unwrap();
    }
    let image = TempFile::new("inodes", 4 * MIB);
    let a = Args {
        inodes: Some(20),
        ..args(&image.path, 1024, &tree.path)
    };
    let e = run(&a).unwrap_err();
    assert!(matches!(e, Error::NoSpace(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("need 41 inodes, have 20"), "{msg}");
    assert!(!msg.contains("blocks"), "{msg}");
    // Exactly enough.
    let a = Args {
        inodes: Some(41),
        ..a
    };
    let (sb, _) = run(&a).unwrap();
    assert_eq!(sb.free_inodes, 0);
    let img = Image::open(&image.path).unwrap();
    assert_eq!(img.check().unwrap().files, 40);
}

#[test]
fn a_tree_that_fills_the_file_system_exactly() {
    let tree = TempDir::new("exact");
    fs::write(tree.path.join("f"), pattern(12 * KIB, 1)).unwrap();
    let bits = 10;
    let blocks = mkfs::min_blocks(bits);
    let g = Geometry::new(bits, blocks, 16).unwrap();
    let data_blocks = blocks - g.data_start;
    // The root directory and 12 direct blocks leave this many.
    let rest = data_blocks - 13;
    // Filling them: 12 direct blocks, one indirect block, the others data.
    let size = (12 + rest - 1) as usize * KIB;
    fs::write(tree.path.join("f"), pattern(size, 1)).unwrap();
    let image = TempFile::new("exact", blocks << bits);
    let (sb, _) = run(&args(&image.path, 1024, &tree.path)).unwrap();
    assert_eq!(sb.free_blocks, 0);
    let img = Image::open(&image.path).unwrap();
    img.check().unwrap();
    assert_eq!(
        img.read_file(img.lookup(b"f").unwrap()).unwrap(),
        pattern(size, 1)
    );
    // One byte more does not fit.
    fs::write(tree.path.join("f"), pattern(size + 1, 1)).unwrap();
    let e = run(&args(&image.path, 1024, &tree.path)).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "need {} blocks of 1024 bytes, have {data_blocks}",
            data_blocks + 1
        )),
        "{e}"
    );
}

#[test]
fn the_dry_run_counts_like_the_real_one() {
    let tree = TempDir::new("dry");
    build_tree(&tree.path);
    let image = TempFile::new("dry", 8 * MIB);
    let original = image.read();
    let a = Args {
        dry_run: true,
        quiet: false,
        ..args(&image.path, 1024, &tree.path)
    };
    let mut out = Vec::new();
    let dry = mkfs::run_to(&a, &mut out, &mut Vec::new()).unwrap();
    assert_eq!(image.read(), original);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!("copied:        {}", tree.path.display())),
        "{out}"
    );
    assert!(out.contains("nothing written"), "{out}");
    let (sb, _) = run(&args(&image.path, 1024, &tree.path)).unwrap();
    assert_eq!(
        (dry.free_blocks, dry.free_inodes),
        (sb.free_blocks, sb.free_inodes)
    );
}

#[test]
fn bad_source_directories_are_refused_untouched() {
    let image = TempFile::new("badsrc", 2 * MIB);
    let original = image.read();
    let file = TempFile::new("notadir", 10);
    let e = run(&args(&image.path, 1024, &file.path)).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("is not a directory"), "{e}");
    let missing = std::env::temp_dir().join(format!("tinyfs-test-{}-nodir", std::process::id()));
    let e = run(&args(&image.path, 1024, &missing)).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(image.read(), original);
}

#[test]
fn a_file_too_large_for_the_block_size_is_refused() {
    let tree = TempDir::new("huge");
    let huge = tree.path.join("huge");
    // Sparse on the host; past the 16 GiB that 1 KiB blocks allow.
    if File::create(&huge)
        .and_then(|f| f.set_len(18 << 30))
        .is_err()
    {
        eprintln!("cannot make a sparse 18 GiB file here");
        return;
    }
    let image = TempFile::new("huge", 2 * MIB);
    let e = run(&args(&image.path, 1024, &tree.path)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&huge.display().to_string()) && msg.contains("too large"),
        "{msg}"
    );
    assert!(msg.contains("holds no valid file system now"), "{msg}");
}

#[test]
fn the_image_itself_is_not_copied() {
    let tree = TempDir::new("self");
    fs::write(tree.path.join("f"), b"data").unwrap();
    let image = tree.path.join("image");
    fs::write(&image, vec![0u8; 2 * MIB as usize]).unwrap();
    let (_, warnings) = run(&args(&image, 1024, &tree.path)).unwrap();
    assert!(
        warnings.contains(&format!("skipping {}: the device", image.display())),
        "{warnings}"
    );
    let img = Image::open(&image).unwrap();
    img.check().unwrap();
    let names: Vec<_> = img
        .read_dir(ROOT_INO)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [&b"."[..], b"..", b"f"]);
}

#[test]
fn an_empty_tree_gives_an_empty_file_system_with_its_root() {
    let tree = TempDir::new("emptytree");
    chmod(&tree.path, 0o700);
    let image = TempFile::new("emptytree", 2 * MIB);
    let (sb, _) = run(&args(&image.path, 4096, &tree.path)).unwrap();
    assert_eq!(
        sb.free_blocks,
        sb.geometry.blocks_count - sb.geometry.data_start - 1
    );
    assert_eq!(sb.free_inodes, sb.geometry.inodes_count - 1);
    let img = Image::open(&image.path).unwrap();
    img.check().unwrap();
    let root = img.inode(ROOT_INO).unwrap();
    assert_eq!(root.mode, S_IFDIR | 0o700);
    assert_eq!(root.links, 2);
}

#[test]
fn the_reader_catches_corruption() {
    let tree = TempDir::new("corrupt");
    fs::write(tree.path.join("f"), pattern(20 * KIB, 1)).unwrap();
    fs::create_dir(tree.path.join("d")).unwrap();
    let image = TempFile::new("corrupt", 2 * MIB);
    let (sb, _) = run(&args(&image.path, 1024, &tree.path)).unwrap();
    let g = sb.geometry;
    let bs = g.block_size();
    let pristine = image.read();
    let img = Image::open(&image.path).unwrap();
    img.check().unwrap();
    let f = img.lookup(b"f").unwrap();
    let inode = img.inode(f).unwrap();
    let ind = inode.indirect[0] as usize;
    drop(img);

    let corrupt = |what: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = pristine.clone();
        change(&mut bytes);
        fs::write(&image.path, &bytes).unwrap();
        let result = Image::open(&image.path).and_then(|img| img.check());
        assert!(result.is_err(), "{what}: not caught");
        result.unwrap_err().to_string()
    };
    // A bit of an indirect block: its checksum.
    let msg = corrupt("indirect block", &|b| b[ind * bs + 1] ^= 1);
    assert!(msg.contains("checksum"), "{msg}");
    // A block marked free in the bitmap, the checksum recomputed.
    let bitmap = g.block_bitmap_start as usize * bs;
    let msg = corrupt("bitmap", &|b| {
        let pos = g.block_bitmap_pos(ind as u64).unwrap();
        let blk = &mut b[bitmap..bitmap + bs];
        bitmap_clear(blk, pos.bit).unwrap();
        set_block_csum(blk);
    });
    assert!(msg.contains("free"), "{msg}");
    // A link count.
    let msg = corrupt("link count", &|b| {
        let pos = g.inode_pos(f).unwrap();
        let blk = &mut b[pos.block as usize * bs..(pos.block as usize + 1) * bs];
        let raw = inode_record_mut(blk, pos.offset).unwrap();
        let mut i = Inode::decode(&g, raw).unwrap();
        i.links = 2;
        i.encode(raw);
        set_block_csum(blk);
    });
    assert!(msg.contains("link count 2"), "{msg}");
    // A block count.
    let msg = corrupt("block count", &|b| {
        let pos = g.inode_pos(f).unwrap();
        let blk = &mut b[pos.block as usize * bs..(pos.block as usize + 1) * bs];
        let raw = inode_record_mut(blk, pos.offset).unwrap();
        let mut i = Inode::decode(&g, raw).unwrap();
        i.blocks -= 1;
        i.encode(raw);
        set_block_csum(blk);
    });
    assert!(msg.contains("block count"), "{msg}");
    fs::write(&image.path, &pristine).unwrap();
    Image::open(&image.path).unwrap().check().unwrap();
}
