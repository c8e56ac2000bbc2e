//! `cargo xtask`: the DADA command line.
//!
//! The pattern (as in rust-analyzer's xtask): flags are declared in `flags.rs`, `main` parses
//! them and dispatches to one module per subcommand; each module turns raw flags into a
//! validated config and calls into `dada-train`, where the work (and its tests) live. xtask
//! only parses, reports progress and exits with a status.
mod augment;
mod check;
mod compare;
mod datasets;
mod figures;
mod plot;
mod progress;
mod flags;
mod gpu_check;
mod runs;
mod search;
mod tidy;
mod train;
mod verify_grads;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};

/// The workspace root (paths resolve from here, never from the caller's working directory).
pub fn project_root() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    PathBuf::from(dir).parent().expect("xtask lives one level below the root").to_path_buf()
}

/// The flags of a subcommand given on the command line (not defaults), as `--name` spells them.
/// Only the subcommand's arguments count, not the groups clap makes of flattened flag structs.
fn given_flags(command: &clap::Command, matches: &clap::ArgMatches) -> Vec<String> {
    command
        .get_arguments()
        .map(|arg| arg.get_id())
        .filter(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| match id.as_str() {
            "data_kind" => "data".to_string(),
            other => other.replace('_', "-"),
        })
        .collect()
}

/// The error and its causes, each printed once (a cause whose text its parent already shows
/// is left out).
fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

fn main() {
    // Negative numbers parse as values, so that their error names the flag.
    let command = flags::Cli::command().mut_subcommands(|c| c.allow_negative_numbers(true));
    let matches = command.clone().get_matches();
    let cli = flags::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = matches
        .subcommand()
        .and_then(|(name, m)| command.find_subcommand(name).map(|sub| given_flags(sub, m)))
        .unwrap_or_default();
    let result = match cli.command {
        flags::Command::Datasets(cmd) => cmd.run(),
        flags::Command::Search(cmd) => cmd.run(&given),
        flags::Command::Augment(cmd) => cmd.run(),
        flags::Command::Showcase(cmd) => cmd.run(),
        flags::Command::Train(cmd) => cmd.run(&given),
        flags::Command::VerifyGrads(cmd) => cmd.run(),
        flags::Command::GpuCheck(cmd) => cmd.run(),
        flags::Command::Compare(cmd) => cmd.run(),
        flags::Command::Tidy => tidy::run(),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_text(&e));
        std::process::exit(1);
    }
}
