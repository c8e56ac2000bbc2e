//! Run folders: a new run never writes into the folder of an earlier one, and a resumed run
//! reads back what it was started with (`run.json`).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What a run was started with, beside its checkpoint: what `--resume` needs and the
/// checkpoint does not hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `search` or `train`.
    pub command: String,
    /// The dataset's name.
    pub dataset: String,
    /// The data root, if one was given.
    pub data_dir: Option<PathBuf>,
}

const RUN_INFO: &str = "run.json";

/// Whether `dir` exists and holds anything.
fn is_used(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(dir.exists())
}

/// The folder of a new run. An explicit `--out` that already holds files is refused; the
/// default folder, when taken, gives way to `<default>-2`, `-3`, ... and the choice is printed.
pub fn fresh(default: PathBuf, explicit: Option<&Path>, command: &str) -> Result<PathBuf> {
    if let Some(out) = explicit {
        if is_used(out) {
            bail!(
                "--out {}: the folder already holds files (an earlier run?); nothing was changed. Continue that run with `cargo xtask {command} --resume {}`, or give another --out",
                out.display(),
                out.display()
            );
        }
        return Ok(out.to_path_buf());
    }
    if !is_used(&default) {
        return Ok(default);
    }
    for k in 2.. {
        let mut name = default.file_name().context("a run folder has a name")?.to_os_string();
        name.push(format!("-{k}"));
        let candidate = default.with_file_name(name);
        if !is_used(&candidate) {
            eprintln!(
                "{} holds an earlier run; this run writes to {} (continue the earlier one with `cargo xtask {command} --resume {}`)",
                default.display(),
                candidate.display(),
                default.display()
            );
            return Ok(candidate);
        }
    }
    unreachable!("some suffix is free")
}

/// Writes `run.json` into a new run folder (creating it).
pub fn start(dir: &Path, info: &RunInfo) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(info)?;
    dada_train::data::cifar::write_atomic(&dir.join(RUN_INFO), json.as_bytes())?;
    Ok(())
}

/// Reads `run.json` of a run folder; runs written before it existed are CIFAR-10 runs.
pub fn info(dir: &Path, command: &str) -> Result<RunInfo> {
    let path = dir.join(RUN_INFO);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{}: malformed run information", path.display())),
        Err(_) => Ok(RunInfo { command: command.into(), dataset: "cifar10".into(), data_dir: None }),
    }
}
