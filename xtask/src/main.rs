//! `cargo xtask`: the DADA command line.
//!
//! The pattern (as in rust-analyzer's xtask): flags are declared in `flags.rs`, `main` parses
//! them and dispatches to one module per subcommand; each module turns raw flags into a
//! validated config and calls into `dada-train`, where the work (and its tests) live. xtask
//! only parses, reports progress and exits with a status.
mod augment;
mod datasets;
mod figures;
mod plot;
mod progress;
mod flags;
mod search;
mod tidy;
mod train;
mod verify_grads;

use std::path::PathBuf;

use clap::Parser;

/// The workspace root (paths resolve from here, never from the caller's working directory).
pub fn project_root() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    PathBuf::from(dir).parent().expect("xtask lives one level below the root").to_path_buf()
}

fn main() {
    let cli = flags::Cli::parse();
    let result = match cli.command {
        flags::Command::Datasets(cmd) => cmd.run(),
        flags::Command::Search(cmd) => cmd.run(),
        flags::Command::Augment(cmd) => cmd.run(),
        flags::Command::Showcase(cmd) => cmd.run(),
        flags::Command::Train(cmd) => cmd.run(),
        flags::Command::VerifyGrads(cmd) => cmd.run(),
        flags::Command::Tidy => tidy::run(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
