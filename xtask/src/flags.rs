//! Every flag of every subcommand, declared in one place.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DADA: Differentiable Automatic Data Augmentation, in Rust on candle.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a dataset in the CIFAR-10 binary layout.
    Datasets(DatasetsCmd),
    /// Search an augmentation policy (the main job).
    Search(SearchCmd),
    /// Check the repository's layering and file headers.
    Tidy,
}

/// `cargo xtask datasets cifar10 [--data-dir DIR] [--from PATH | --download]`.
#[derive(Debug, Args)]
pub struct DatasetsCmd {
    /// Which dataset (only `cifar10`).
    pub name: String,
    /// Where to write `cifar-10-batches-bin/` (default: `<project>/data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Import from this ImageFolder directory or archive (`train/<class>/*.jpg`, `test/...`),
    /// or extract this official `cifar-10-binary.tar.gz`.
    #[arg(long, conflicts_with = "download")]
    pub from: Option<PathBuf>,
    /// Download the official binary release (md5-checked) instead of importing.
    #[arg(long)]
    pub download: bool,
    /// Rebuild even if the data is already there.
    #[arg(long)]
    pub force: bool,
    /// Seed of the record order of imported data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `cargo xtask search [--quick] ...`.
#[derive(Debug, Args)]
pub struct SearchCmd {
    /// Shrink the preset to 1,024 / 256 / 256 images and one epoch.
    #[arg(long)]
    pub quick: bool,
    /// Where the dataset lives (default: `<project>/data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}
