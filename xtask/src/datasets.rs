//! `cargo xtask datasets`: prepare CIFAR-10 in the binary layout.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dada_train::data::{self, Prepared, Source};
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::DatasetsCmd;
use crate::project_root;

/// Default data directory: `<project>/data`.
pub fn default_data_dir() -> PathBuf {
    project_root().join("data")
}

/// The source to build CIFAR-10 from when nothing is said: the bundled ImageFolder archive if
/// present (offline), else the official download.
pub fn auto_source() -> Source {
    match data::default_archive(&project_root()) {
        Some(archive) => Source::ImageFolder(archive),
        None => Source::Download,
    }
}

/// Prepares CIFAR-10 under `data_dir` from `source`, with a spinner / progress bar.
pub fn ensure_cifar10(data_dir: &Path, source: &Source, seed: u64, force: bool) -> Result<PathBuf> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let start = std::time::Instant::now();
    let prepared = data::prepare_cifar10(data_dir, source, seed, force, &mut |stage, done, total| match total {
        Some(t) => bar.set_message(format!("{stage}: {:.1} / {:.1} MB", done as f64 / 1e6, t as f64 / 1e6)),
        None if done > 0 => bar.set_message(format!("{stage}: {:.1} MB", done as f64 / 1e6)),
        None => bar.set_message(format!("{stage}...")),
    })
    .with_context(|| format!("preparing CIFAR-10 in {}", data_dir.display()))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    match &prepared {
        Prepared::AlreadyThere(d) => eprintln!("CIFAR-10 is ready in {}", d.display()),
        Prepared::Imported(d) => eprintln!("imported CIFAR-10 into {} in {secs:.1} s", d.display()),
        Prepared::Extracted(d) => eprintln!("extracted CIFAR-10 into {} in {secs:.1} s", d.display()),
    }
    Ok(prepared.dir().to_path_buf())
}

impl DatasetsCmd {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        if self.name != "cifar10" {
            bail!("unknown dataset '{}': the only dataset is 'cifar10'", self.name);
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let source = if self.download {
            Source::Download
        } else if let Some(from) = &self.from {
            let name = from.to_string_lossy();
            if name.ends_with("cifar-10-binary.tar.gz") {
                Source::OfficialArchive(from.clone())
            } else {
                Source::ImageFolder(from.clone())
            }
        } else {
            auto_source()
        };
        let dir = ensure_cifar10(&data_dir, &source, self.seed, self.force)?;
        let ds = data::load_dir(&dir)?;
        eprintln!(
            "{} training and {} test images of {}x{}x{}, {} classes",
            ds.train.len(),
            ds.test.len(),
            ds.meta.channels,
            ds.meta.height,
            ds.meta.width,
            ds.meta.classes.len()
        );
        Ok(())
    }
}
