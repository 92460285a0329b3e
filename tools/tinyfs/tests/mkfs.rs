// SPDX-License-Identifier: GPL-2.0

//! Tests of mkfs.tinyfs's logic, called as a library.

mod common;

use clap::Parser;
use common::{check_fresh_image, TempFile};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tinyfs::layout::{Geometry, SuperBlock, MAX_BLOCKS, MAX_BLOCK_SIZE_BITS, MIN_BLOCK_SIZE_BITS};
use tinyfs::mkfs::{self, Args, Error};

const MIB: u64 = 1 << 20;

fn args(path: &Path, block_size: u32) -> Args {
    Args {
        block_size,
        quiet: true,
        ..Args::new(path)
    }
}

fn run(args: &Args) -> Result<(SuperBlock, String), Error> {
    let mut out = Vec::new();
    let sb = mkfs::run(args, &mut out)?;
    Ok((sb, String::from_utf8(out).unwrap()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn mkfs_makes_a_valid_file_system_at_every_block_size() {
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        let bs = 1u32 << bits;
        let img = TempFile::new("each", 8 * MIB + 1234);
        let a = Args {
            label: Some("data".into()),
            uuid: Some("0123abcd-4567-89ef-FEDC-ba9876543210".into()),
            ..args(&img.path, bs)
        };
        let before = unix_now();
        let (sb, out) = run(&a).unwrap();
        let after = unix_now();
        assert_eq!(out, "", "quiet");
        let (read, _root) = check_fresh_image(&img.path);
        assert_eq!(read, sb);
        let g = sb.geometry;
        assert_eq!(g.block_size(), bs as usize);
        // The whole device, the partial block at its end left out.
        assert_eq!(g.blocks_count, (8 * MIB + 1234) / u64::from(bs));
        // One inode per 16 KiB.
        assert_eq!(g.inodes_count, (8 * MIB / (16 << 10)) as u32);
        assert!((before..=after).contains(&sb.mkfs_time));
        assert_eq!(
            mkfs::format_uuid(&sb.uuid),
            "0123abcd-4567-89ef-fedc-ba9876543210"
        );
        assert_eq!(&sb.label[..5], b"data\0");
        // Data blocks other than the root directory's are left alone.
        let image = img.read();
        let next = (g.data_start + 1) as usize * g.block_size();
        assert_ne!(image[next..next + 64], [0u8; 64]);
    }
}

#[test]
fn bitmaps_and_tables_spanning_several_blocks_are_written_whole() {
    // 1 KiB blocks: 8160 bits a bitmap block, 7 inodes a table block.
    let img = TempFile::new("multi", 20_000 * 1024);
    let a = Args {
        inodes: Some(9000),
        ..args(&img.path, 1024)
    };
    let (sb, _) = run(&a).unwrap();
    let g = sb.geometry;
    assert_eq!(g.block_bitmap_blocks, 3);
    assert_eq!(g.inode_bitmap_blocks, 2);
    assert_eq!(g.inodes_count, 9000);
    assert_eq!(g.inode_table_blocks, 9000u32.div_ceil(7));
    // The data start lies past the first block bitmap block here too.
    let (read, _) = check_fresh_image(&img.path);
    assert_eq!(read, sb);
}

#[test]
fn the_block_count_limits_the_file_system() {
    let img = TempFile::new("count", 4 * MIB);
    let original = img.read();
    let a = Args {
        blocks: Some(1000),
        ..args(&img.path, 1024)
    };
    let (sb, _) = run(&a).unwrap();
    assert_eq!(sb.geometry.blocks_count, 1000);
    check_fresh_image(&img.path);
    // Nothing past the file system is touched.
    assert_eq!(img.read()[1000 * 1024..], original[1000 * 1024..]);
    // More blocks than the device has, or none, are refused.
    for blocks in [0, 4097, MAX_BLOCKS + 1] {
        let a = Args {
            blocks: Some(blocks),
            ..args(&img.path, 1024)
        };
        assert!(matches!(run(&a), Err(Error::Invalid(_))), "{blocks} blocks");
    }
}

#[test]
fn a_dry_run_writes_nothing() {
    let img = TempFile::new("dry", 2 * MIB);
    let original = img.read();
    let a = Args {
        dry_run: true,
        quiet: false,
        label: Some("dry".into()),
        ..Args::new(&img.path)
    };
    let (sb, out) = run(&a).unwrap();
    assert_eq!(img.read(), original);
    assert!(out.contains("block size:    4096"), "{out}");
    assert!(out.contains(&format!("data start:    block {}", sb.geometry.data_start)));
    assert!(out.contains(&mkfs::format_uuid(&sb.uuid)));
    assert!(out.contains("label:         dry"));
    assert!(out.contains("nothing written"));
}

#[test]
fn the_summary_is_printed_unless_quiet() {
    let img = TempFile::new("summary", 2 * MIB);
    let (sb, out) = run(&Args::new(&img.path)).unwrap();
    assert!(
        out.contains(&format!("blocks:        {}", sb.geometry.blocks_count)),
        "{out}"
    );
    assert!(out.contains(&format!("inodes:        {}", sb.geometry.inodes_count)));
    assert!(out.contains("label:         (none)"));
    assert!(!out.contains("nothing written"));
    check_fresh_image(&img.path);
}

#[test]
fn a_too_small_device_is_refused_untouched() {
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        let min = mkfs::min_blocks(bits);
        assert!(Geometry::new(bits, min, 16).is_ok());
        assert!(Geometry::new(bits, min - 1, 16).is_err());
        let img = TempFile::new("small", (min - 1) << bits);
        let original = img.read();
        let e = run(&args(&img.path, 1 << bits)).unwrap_err();
        assert!(matches!(e, Error::TooSmall(_)), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("too small") && msg.contains(&format!("at least {min}")),
            "{msg}"
        );
        assert_eq!(img.read(), original);
        // The smallest size works.
        let img = TempFile::new("smallest", min << bits);
        run(&args(&img.path, 1 << bits)).unwrap();
        check_fresh_image(&img.path);
    }
    let empty = TempFile::new("empty", 0);
    assert!(matches!(
        run(&Args::new(&empty.path)),
        Err(Error::TooSmall(_))
    ));
}

#[test]
fn bad_options_are_refused() {
    let img = TempFile::new("bad", 2 * MIB);
    let original = img.read();
    let refused = |a: Args| match run(&a) {
        Err(Error::Invalid(msg)) => msg,
        other => panic!("{a:?}: {other:?}"),
    };
    for bs in [0, 512, 1000, 3072, 8192, 65536] {
        let msg = refused(args(&img.path, bs));
        assert!(msg.contains("block size"), "{msg}");
    }
    let msg = refused(Args {
        label: Some("x".repeat(33)),
        ..Args::new(&img.path)
    });
    assert!(msg.contains("too long"), "{msg}");
    // Multi-byte characters count in bytes.
    refused(Args {
        label: Some("é".repeat(17)),
        ..Args::new(&img.path)
    });
    for uuid in [
        "",
        "0123",
        "0123abcd456789effedcba9876543210",
        "0123abcd-4567-89ef-fedc-ba987654321",
        "0123abcd-4567-89ef-fedc-ba98765432100",
        "0123abcd-4567-89ef-fedcba-9876543210",
        "0123abcg-4567-89ef-fedc-ba9876543210",
        "+123abcd-4567-89ef-fedc-ba9876543210",
        "0123abcd-4567-89ef-fedc-ba987654321é",
    ] {
        let msg = refused(Args {
            uuid: Some(uuid.into()),
            ..Args::new(&img.path)
        });
        assert!(msg.contains("UUID"), "{msg}");
    }
    let msg = refused(Args {
        inodes: Some(0),
        ..Args::new(&img.path)
    });
    assert!(msg.contains("inode"), "{msg}");
    let msg = refused(Args {
        inodes: Some(u32::MAX),
        ..Args::new(&img.path)
    });
    assert!(msg.contains("too many inodes"), "{msg}");
    assert_eq!(img.read(), original);
    // Not a device or a file.
    let dir = std::env::temp_dir();
    assert!(run(&Args::new(&dir)).is_err());
    let missing = dir.join(format!("tinyfs-test-{}-missing.img", std::process::id()));
    assert!(matches!(run(&Args::new(&missing)), Err(Error::Io { .. })));
    assert!(!missing.exists());
}

#[test]
fn labels_and_uuids_parse_and_print() {
    assert_eq!(mkfs::parse_label("").unwrap(), [0u8; 32]);
    let label = mkfs::parse_label(&"L".repeat(32)).unwrap();
    assert_eq!(label, [b'L'; 32]);
    assert!(mkfs::parse_label("a\0b").is_err());
    let uuid = mkfs::parse_uuid("00112233-4455-6677-8899-AABBCCDDEEFF").unwrap();
    assert_eq!(
        uuid,
        [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ]
    );
    assert_eq!(
        mkfs::format_uuid(&uuid),
        "00112233-4455-6677-8899-aabbccddeeff"
    );
    let a = mkfs::random_uuid().unwrap();
    let b = mkfs::random_uuid().unwrap();
    assert_ne!(a, b);
    for u in [a, b] {
        assert_eq!(u[6] >> 4, 4, "version 4");
        assert_eq!(u[8] >> 6, 0b10, "RFC 4122 variant");
        assert_eq!(mkfs::parse_uuid(&mkfs::format_uuid(&u)).unwrap(), u);
    }
}

#[test]
fn default_inode_counts() {
    for bits in MIN_BLOCK_SIZE_BITS..=MAX_BLOCK_SIZE_BITS {
        // One per 16 KiB, at least 16.
        let blocks = (64 * MIB) >> bits;
        assert_eq!(mkfs::default_inodes(bits, blocks), 4096);
        assert_eq!(mkfs::default_inodes(bits, mkfs::min_blocks(bits)), 16);
        // What fits, exactly.
        for blocks in [mkfs::min_blocks(bits), 100, 5000] {
            let max = mkfs::max_inodes(bits, blocks);
            assert!(Geometry::new(bits, blocks, max).is_ok());
            assert!(Geometry::new(bits, blocks, max + 1).is_err());
        }
        assert_eq!(mkfs::max_inodes(bits, 3), 0);
    }
    // A device larger than 2^32 - 1 blocks gives a file system of that many.
    let g = mkfs::plan_geometry(12, 1 << 50, None, None).unwrap();
    assert_eq!(g.blocks_count, MAX_BLOCKS);
    assert_eq!(u64::from(g.inodes_count), (MAX_BLOCKS << 12) / (16 << 10));
    // The inode count given is used as is.
    let g = mkfs::plan_geometry(10, 10 * MIB, None, Some(17)).unwrap();
    assert_eq!(g.inodes_count, 17);
}

#[test]
fn the_command_line_parses_like_mke2fs() {
    let a = Args::try_parse_from([
        "mkfs.tinyfs",
        "-b",
        "2048",
        "-N",
        "100",
        "-L",
        "lbl",
        "-U",
        "00112233-4455-6677-8899-aabbccddeeff",
        "-d",
        "tree",
        "-q",
        "-n",
        "/dev/null",
        "5000",
    ])
    .unwrap();
    assert_eq!(
        a,
        Args {
            block_size: 2048,
            inodes: Some(100),
            label: Some("lbl".into()),
            uuid: Some("00112233-4455-6677-8899-aabbccddeeff".into()),
            root_dir: Some(PathBuf::from("tree")),
            quiet: true,
            dry_run: true,
            device: PathBuf::from("/dev/null"),
            blocks: Some(5000),
        }
    );
    let long = Args::try_parse_from([
        "mkfs.tinyfs",
        "--block-size=1024",
        "--inodes=7",
        "--label=x",
        "--uuid=u",
        "--root-dir=some/dir",
        "--quiet",
        "--dry-run",
        "img",
    ])
    .unwrap();
    assert_eq!(
        (long.block_size, long.inodes, long.blocks),
        (1024, Some(7), None)
    );
    assert_eq!(long.root_dir, Some(PathBuf::from("some/dir")));
    assert_eq!(
        Args::try_parse_from(["mkfs.tinyfs", "img"]).unwrap(),
        Args::new("img")
    );
    for bad in [
        &["mkfs.tinyfs"][..],
        &["mkfs.tinyfs", "-b", "big", "img"],
        &["mkfs.tinyfs", "img", "-5"],
        &["mkfs.tinyfs", "img", "10", "20"],
        &["mkfs.tinyfs", "--force", "img"],
    ] {
        assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn mounted_devices_are_found_in_the_mount_table() {
    let img = TempFile::new("mounted", 1024);
    let path = img.path.to_str().unwrap().to_string();
    let no_loop = |_: &Path| None;
    let table = format!(
        "proc /proc proc rw,nosuid 0 0\n\
         tmpfs /tmp tmpfs rw 0 0\n\
         {path} /mnt/a\\040b ext4 rw 0 0\n"
    );
    assert_eq!(
        mkfs::mounted_on_with(&table, &img.path, no_loop).as_deref(),
        Some("/mnt/a b")
    );
    // Through another name for the same file.
    let link = std::env::temp_dir().join(format!("tinyfs-test-{}-link", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&img.path, &link).unwrap();
    assert_eq!(
        mkfs::mounted_on_with(&table, &link, no_loop).as_deref(),
        Some("/mnt/a b")
    );
    let via_link = format!("{} /mnt/c xfs rw 0 0\n", link.display());
    assert_eq!(
        mkfs::mounted_on_with(&via_link, &img.path, no_loop).as_deref(),
        Some("/mnt/c")
    );
    std::fs::remove_file(&link).unwrap();
    // A loop device backed by the file.
    let looped = "/dev/loop7 /mnt/loop tinyfs rw 0 0\n";
    let backing = |dev: &Path| (dev == Path::new("/dev/loop7")).then(|| img.path.clone());
    assert_eq!(
        mkfs::mounted_on_with(looped, &img.path, backing).as_deref(),
        Some("/mnt/loop")
    );
    assert_eq!(mkfs::mounted_on_with(looped, &img.path, no_loop), None);
    // Unrelated or malformed lines.
    let other = TempFile::new("other", 1024);
    assert_eq!(mkfs::mounted_on_with(&table, &other.path, no_loop), None);
    assert_eq!(mkfs::mounted_on_with("", &img.path, no_loop), None);
    assert_eq!(
        mkfs::mounted_on_with("garbage\n\n \\\n", &img.path, no_loop),
        None
    );
    // A path with a space, escaped in the table.
    let spaced = std::env::temp_dir().join(format!("tinyfs test {}", std::process::id()));
    std::fs::write(&spaced, b"x").unwrap();
    let table = format!(
        "{} /mnt/s ext2 rw 0 0\n",
        spaced.to_str().unwrap().replace(' ', "\\040")
    );
    let found = mkfs::mounted_on(&table, &spaced);
    std::fs::remove_file(&spaced).unwrap();
    assert_eq!(found.as_deref(), Some("/mnt/s"));
    // The real table: whatever is mounted on / is found as mounted, and a
    // fresh image file is not.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert_eq!(mkfs::mounted_on(&mounts, &img.path), None);
    let error = Error::Mounted {
        device: "/dev/x".into(),
        mount_point: "/mnt".into(),
    };
    assert_eq!(
        error.to_string(),
        "/dev/x is mounted on /mnt; will not make a file system here"
    );
}
