// SPDX-License-Identifier: GPL-2.0

//! `fsck.tinyfs [-n] [-f] [-v] DEVICE`: check a tinyfs file system.
//!
//! Check only: the device is opened read-only and nothing is ever written.
//! The options of fsck(8) are accepted: `-n` (change nothing) and `-f`
//! (check even a clean file system) are what this program always does; `-a`,
//! `-p` and `-y` (repair) are accepted and ignored with a note, since there
//! is no repair; `-v` lists every problem found, where by default only the
//! first few are (with the count of the others).
//!
//! The exit status is that of fsck(8), a sum of: 0 no problem, 4 problems
//! left uncorrected (a corrupt or inconsistent file system), 8 an operational
//! error (the device cannot be opened or read, or holds no tinyfs file
//! system: bad magic number, unknown version or incompatible feature), 16 a
//! usage error.
//!
//! Cargo target `fsck-tinyfs`, installed as `fsck.tinyfs`; the program calls
//! itself `fsck.tinyfs` whatever its file name.

#![forbid(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tinyfs::layout::{self, STATE_CLEAN};
use tinyfs::read::{Error, Image};

/// No problem found.
const EXIT_OK: u8 = 0;
/// Problems found and left uncorrected.
const EXIT_UNCORRECTED: u8 = 4;
/// The check could not be done (or not all of it): I/O error, no tinyfs file
/// system on the device.
const EXIT_OPERATIONAL: u8 = 8;
/// Bad command line.
const EXIT_USAGE: u8 = 16;

/// Problems listed without `-v`.
const SHOWN: usize = 10;

/// The command line of `fsck.tinyfs`.
#[derive(Parser, Debug)]
#[command(
    name = "fsck.tinyfs",
    bin_name = "fsck.tinyfs",
    version,
    about = "Check a tinyfs file system on DEVICE (a block device or an image file)",
    long_about = "Check a tinyfs file system on DEVICE (a block device or an image file). \
                  Check only: DEVICE is opened read-only and nothing is ever repaired.\n\n\
                  Exit status (fsck(8)): 0 no problem, 4 problems left uncorrected, \
                  8 operational error (cannot read DEVICE, or no tinyfs file system on it), \
                  16 usage error."
)]
struct Args {
    /// Change nothing (always the case: fsck.tinyfs never writes)
    #[arg(short = 'n')]
    no_change: bool,

    /// Check even a file system marked clean (always the case)
    #[arg(short = 'f')]
    force: bool,

    /// Repair automatically: accepted, but repair is not implemented (check only)
    #[arg(short = 'a')]
    auto: bool,

    /// Repair automatically (preen): accepted, but repair is not implemented (check only)
    #[arg(short = 'p')]
    preen: bool,

    /// Answer yes to every repair: accepted, but repair is not implemented (check only)
    #[arg(short = 'y')]
    yes: bool,

    /// List every problem found, not only the first few, and what the file
    /// system holds
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// The block device or image file to check
    device: PathBuf,
}

/// `n` followed by `one` or `many`.
fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A problem as `fsck.tinyfs` words it, on a line of its own after the
/// device.
fn describe(e: &Error) -> String {
    match e {
        // Every problem is one of the file system: no need to say so.
        Error::Inconsistent(msg) => msg.clone(),
        Error::Format {
            err: layout::Error::BadMagic,
            ..
        } => "not a tinyfs file system (bad magic number in the super block)".into(),
        // Those name the super block already.
        Error::Format { what, err } if what == "super block" => err.to_string(),
        e => e.to_string(),
    }
}

/// Checks `args.device`; returns the exit status.
fn fsck(args: &Args) -> u8 {
    let dev = args.device.display();
    if args.auto || args.preen || args.yes {
        eprintln!(
            "fsck.tinyfs: repair is not implemented: -a, -p and -y are ignored; \
             checking only, nothing will be changed"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if let Some(mount_point) = tinyfs::mkfs::mounted_on(&mounts, &args.device) {
        eprintln!(
            "fsck.tinyfs: warning: {dev} is mounted on {mount_point}; \
             the check may report problems that are not there"
        );
    }

    let image = match Image::open(&args.device) {
        Ok(image) => image,
        Err(e @ Error::Io { .. }) => {
            // The message names the device.
            eprintln!("fsck.tinyfs: {e}");
            return EXIT_OPERATIONAL;
        }
        Err(e) if e.is_operational() => {
            eprintln!("fsck.tinyfs: {dev}: {}", describe(&e));
            return EXIT_OPERATIONAL;
        }
        Err(e) => {
            let note = "the super block is unusable: nothing else was checked";
            return uncorrected(args, &[e], Some(note));
        }
    };
    let sb = image.super_block();
    let g = image.geometry();
    if sb.state != STATE_CLEAN {
        println!("fsck.tinyfs: {dev}: note: mounted, or not cleanly unmounted");
    }

    let findings = image.check_all();
    let report = &findings.report;
    if findings.is_clean() {
        println!(
            "fsck.tinyfs: {dev}: clean, {}/{} files, {}/{} blocks",
            report.inodes_used,
            g.inodes_count,
            g.data_start + report.blocks_used,
            g.blocks_count
        );
        if args.verbose {
            println!(
                "fsck.tinyfs: {dev}: {}, {}, {}; {} in use",
                count(report.dirs, "directory", "directories"),
                count(report.files, "regular file", "regular files"),
                count(report.symlinks, "symbolic link", "symbolic links"),
                count(report.blocks_used, "data block", "data blocks"),
            );
        }
        return EXIT_OK;
    }

    let problems = &findings.problems;
    uncorrected(args, problems, None)
}

/// Lists `problems` (all of them with `-v`) found on `args.device`, then
/// `note`, then their count; returns the exit status.
fn uncorrected(args: &Args, problems: &[Error], note: Option<&str>) -> u8 {
    let dev = args.device.display();
    let shown = if args.verbose {
        problems.len()
    } else {
        problems.len().min(SHOWN)
    };
    for e in &problems[..shown] {
        println!("fsck.tinyfs: {dev}: {}", describe(e));
    }
    if shown < problems.len() {
        println!(
            "fsck.tinyfs: {dev}: ... and {} more (-v lists them all)",
            problems.len() - shown
        );
    }
    if let Some(note) = note {
        println!("fsck.tinyfs: {dev}: {note}");
    }
    println!(
        "fsck.tinyfs: {dev}: {} found, left uncorrected (repair is not implemented)",
        count(problems.len() as u64, "problem", "problems")
    );
    let mut status = 0;
    if problems.iter().any(|e| !e.is_operational()) {
        status |= EXIT_UNCORRECTED;
    }
    if problems.iter().any(Error::is_operational) {
        status |= EXIT_OPERATIONAL;
    }
    status
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to standard output, with status 0; usage
            // errors to standard error, with the status fsck(8) gives them.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(fsck(&args))
}
