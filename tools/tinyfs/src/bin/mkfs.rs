// SPDX-License-Identifier: GPL-2.0

//! `mkfs.tinyfs [OPTIONS] <DEVICE> [BLOCKS]`: make a tinyfs file system.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;
use tinyfs::mkfs::{run, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkfs.tinyfs: {e}");
            ExitCode::FAILURE
        }
    }
}
