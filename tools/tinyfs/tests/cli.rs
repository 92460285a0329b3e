// SPDX-License-Identifier: GPL-2.0

//! Tests of the mkfs.tinyfs binary itself.

mod common;

use common::{check_fresh_image, TempDir, TempFile};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tinyfs::read::Image;

/// The binary: Cargo target `mkfs-tinyfs`, installed as `mkfs.tinyfs`.
const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-tinyfs");

fn mkfs(args: &[&str]) -> Output {
    Command::new(MKFS).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn formats_an_image_file() {
    let img = TempFile::new("cli", 16 << 20);
    let path = img.path.to_str().unwrap();
    let out = mkfs(&["-b", "1024", "-L", "cli-test", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    let (sb, _) = check_fresh_image(&img.path);
    assert_eq!(sb.geometry.block_size(), 1024);
    assert_eq!(sb.geometry.blocks_count, 16 << 10);
    for want in [
        "block size:    1024".to_string(),
        format!("blocks:        {}", 16 << 10),
        format!("inodes:        {}", sb.geometry.inodes_count),
        format!("data start:    block {}", sb.geometry.data_start),
        format!("UUID:          {}", tinyfs::mkfs::format_uuid(&sb.uuid)),
        "label:         cli-test".to_string(),
    ] {
        assert!(stdout.contains(&want), "{want:?} not in:\n{stdout}");
    }
}

#[test]
fn quiet_dry_run_and_block_count() {
    let img = TempFile::new("cli-q", 4 << 20);
    let path = img.path.to_str().unwrap();
    let original = img.read();
    let out = mkfs(&["-n", path, "100"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("blocks:        100 "));
    assert_eq!(img.read(), original, "a dry run wrote");

    let out = mkfs(&[
        "-q",
        "-N",
        "40",
        "-U",
        "00112233-4455-6677-8899-aabbccddeeff",
        path,
        "100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let (sb, _) = check_fresh_image(&img.path);
    assert_eq!(sb.geometry.blocks_count, 100);
    assert_eq!(sb.geometry.inodes_count, 40);
    assert_eq!(sb.uuid[15], 0xff);
}

/// Runs the binary, expects it to fail with status `code` and returns its
/// standard error.
fn fails(args: &[&str], code: i32) -> String {
    let out = mkfs(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "", "{args:?}");
    text(&out.stderr)
}

#[test]
fn refuses_a_tiny_file_with_a_message() {
    let img = TempFile::new("cli-tiny", 10 << 10);
    let original = img.read();
    let err = fails(&[img.path.to_str().unwrap()], 1);
    assert!(err.starts_with("mkfs.tinyfs: "), "{err}");
    assert!(err.contains("too small"), "{err}");
    assert!(err.ends_with('\n') && err.lines().count() == 1, "{err}");
    assert_eq!(img.read(), original);
}

#[test]
fn refuses_bad_options_with_a_message() {
    let img = TempFile::new("cli-bad", 1 << 20);
    let path = img.path.to_str().unwrap();
    let original = img.read();
    for (args, what) in [
        (&["-b", "512", path][..], "block size"),
        (&["-L", "0123456789abcdef0123456789abcdefX", path], "label"),
        (&["-U", "not-a-uuid", path], "UUID"),
        (&["-N", "1000000", path], "too many inodes"),
        (&[path, "100000"], "do not fit"),
        (&["/nonexistent/tinyfs.img"], "cannot open"),
    ] {
        let err = fails(args, 1);
        assert!(
            err.starts_with("mkfs.tinyfs: ") && err.contains(what),
            "{args:?}: {err}"
        );
    }
    // Usage errors are clap's, status 2.
    for args in [&[][..], &["-b"], &["--bogus", path], &["-b", "x", path]] {
        let err = fails(args, 2);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    assert!(fails(&[], 2).contains("Usage: mkfs.tinyfs "));
    assert_eq!(img.read(), original);
}

#[test]
fn refuses_a_mounted_device() {
    // Whatever block device is mounted here (the root file system, usually).
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let device = mounts.lines().find_map(|line| {
        let source = PathBuf::from(line.split_whitespace().next()?);
        let meta = std::fs::metadata(&source).ok()?;
        use std::os::unix::fs::FileTypeExt;
        (source.is_absolute() && meta.file_type().is_block_device()).then_some(source)
    });
    let Some(device) = device else {
        eprintln!("no mounted block device to try");
        return;
    };
    // A dry run, so that nothing could be written even if the check failed.
    let err = fails(&["-n", device.to_str().unwrap()], 1);
    assert!(
        err.starts_with("mkfs.tinyfs: ") && err.contains("is mounted on"),
        "{err}"
    );
}

#[test]
fn prints_help_and_version() {
    let out = mkfs(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for opt in [
        "--block-size",
        "--inodes",
        "--label",
        "--uuid",
        "--quiet",
        "--dry-run",
        "--root-dir <DIR>",
        "<DEVICE>",
        "[BLOCKS]",
    ] {
        assert!(help.contains(opt), "{opt} not in:\n{help}");
    }
    let out = mkfs(&["-V"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("mkfs.tinyfs "));
}

#[test]
fn works_under_its_installed_name() {
    let dir = std::env::temp_dir().join(format!("tinyfs-test-{}-bin", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let installed = dir.join("mkfs.tinyfs");
    let _ = std::fs::remove_file(&installed);
    std::os::unix::fs::symlink(Path::new(MKFS), &installed).unwrap();
    let img = TempFile::new("cli-installed", 1 << 20);
    let out = Command::new(&installed)
        .args(["-q", img.path.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_fresh_image(&img.path);
}

#[test]
fn copies_a_directory_tree() {
    let tree = TempDir::new("cli-tree");
    std::fs::create_dir(tree.path.join("sub")).unwrap();
    std::fs::write(tree.path.join("sub/hello"), b"hello, tinyfs\n").unwrap();
    std::os::unix::fs::symlink("sub/hello", tree.path.join("link")).unwrap();
    let sock = tree.path.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let img = TempFile::new("cli-tree", 4 << 20);
    let out = mkfs(&[
        "-b",
        "2048",
        "-d",
        tree.path.to_str().unwrap(),
        img.path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "mkfs.tinyfs: warning: skipping {}: a socket (tinyfs has only regular files, \
             directories and symbolic links)\n",
            sock.display()
        )
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "copied:        {} (4 inodes, 4 blocks; 1 skipped)",
            tree.path.display()
        )),
        "{stdout}"
    );
    let image = Image::open(&img.path).unwrap();
    let report = image.check().unwrap();
    assert_eq!((report.dirs, report.files, report.symlinks), (2, 1, 1));
    let hello = image.lookup(b"sub/hello").unwrap();
    assert_eq!(image.read_file(hello).unwrap(), b"hello, tinyfs\n");
    let link = image.lookup(b"link").unwrap();
    assert_eq!(image.read_link(link).unwrap(), b"sub/hello");
    assert!(stdout.contains(&format!(
        "free:          {} blocks",
        image.super_block().free_blocks
    )));

    // A tree that does not fit: a one-line error (after the warning),
    // status 1.
    std::fs::write(tree.path.join("big"), vec![1u8; 8 << 20]).unwrap();
    let err = fails(
        &[
            "-d",
            tree.path.to_str().unwrap(),
            img.path.to_str().unwrap(),
        ],
        1,
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("warning: skipping"), "{err}");
    assert!(
        lines[1].starts_with("mkfs.tinyfs: not enough space on "),
        "{err}"
    );
    assert!(err.contains("holds no valid file system now"), "{err}");
}
