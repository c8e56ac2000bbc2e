//! `cargo xtask datasets`: prepare a dataset by name, import one of the user's, list them; and
//! [`open`], which every command that reads a dataset goes through.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dada_train::data::{self, store, BinaryDataset, PrepareOptions, Prepared, Source, State};
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::{DataFlags, DatasetsCmd};
use crate::project_root;

/// Default data directory: `<project>/data`.
pub fn default_data_dir() -> PathBuf {
    project_root().join("data")
}

/// Where a built-in dataset comes from when nothing is said: for CIFAR-10 the bundled
/// ImageFolder archive if present (offline), else the official download.
fn auto_source(name: &str) -> Source {
    match (name, data::default_archive(&project_root())) {
        ("cifar10", Some(archive)) => Source::ImageFolder(archive),
        _ => Source::Download,
    }
}

/// Prepares dataset `name` under `root` from `source`, with a spinner / progress bar, and says
/// what was done.
fn prepare(root: &Path, name: &str, source: &Source, opts: PrepareOptions) -> Result<PathBuf> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let start = std::time::Instant::now();
    let prepared = store::prepare(root, name, source, opts, &mut |stage, done, total| match total {
        Some(t) => bar.set_message(format!("{stage}: {:.1} / {:.1} MB", done as f64 / 1e6, t as f64 / 1e6)),
        None if done > 0 => bar.set_message(format!("{stage}: {:.1} MB", done as f64 / 1e6)),
        None => bar.set_message(format!("{stage}...")),
    });
    bar.finish_and_clear();
    let prepared = prepared.with_context(|| format!("preparing {name} in {}", root.display()))?;
    let secs = start.elapsed().as_secs_f64();
    let from = match source {
        Source::ImageFolder(p) | Source::Official(p) => p.display().to_string(),
        Source::Download => "the official download".into(),
    };
    match &prepared {
        Prepared::AlreadyThere(d) => eprintln!("{name} is ready in {} (nothing written; --force rebuilds it)", d.display()),
        Prepared::Built { dir, replaced: false } => eprintln!("built {name} in {} from {from} in {secs:.1} s", dir.display()),
        Prepared::Built { dir, replaced: true } => eprintln!("replaced {name} in {} with one built from {from} in {secs:.1} s", dir.display()),
    }
    Ok(prepared.dir().to_path_buf())
}

/// Opens the dataset the flags name, preparing a built-in one where its folder holds no
/// dataset at all, and prints its one-line description.
pub fn open(flags: &DataFlags) -> Result<BinaryDataset> {
    let root = flags.data_dir.clone().unwrap_or_else(default_data_dir);
    let name = flags.name();
    store::check_name(name).context("--dataset")?;
    if matches!(store::inspect(&root, name)?, State::Absent | State::Empty) {
        if !store::BUILT_IN.contains(&name) {
            bail!(
                "no dataset '{name}' in {}: import it with `cargo xtask datasets import <images-or-archive> --name {name}{}`",
                root.display(),
                flags.data_dir.as_ref().map(|d| format!(" --data-dir {}", d.display())).unwrap_or_default()
            );
        }
        prepare(&root, name, &auto_source(name), PrepareOptions::default())?;
    }
    let ds = store::load(&root, name)?;
    eprintln!("{}", store::describe(name, &ds.meta, &ds.train, &ds.test));
    Ok(ds)
}

impl DatasetsCmd {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let root = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let opts = PrepareOptions { seed: self.seed, force: self.force };
        let (name, source) = match self.what.as_str() {
            "list" => return list(&root),
            "import" => {
                let Some(path) = self.path.clone() else {
                    bail!("`datasets import` needs the ImageFolder directory or archive: `cargo xtask datasets import my-images/ --name pets`")
                };
                let Some(name) = self.name.clone() else {
                    bail!("`datasets import {}` needs --name NAME (the dataset is written to <data-dir>/NAME/)", path.display())
                };
                if self.from.is_some() || self.download {
                    bail!("`datasets import` takes its source as the PATH argument; --from and --download are for the built-in datasets");
                }
                store::check_name(&name).context("--name")?;
                if store::BUILT_IN.contains(&name.as_str()) {
                    bail!("--name {name} is a built-in dataset: use `cargo xtask datasets {name} --from {}`", path.display());
                }
                (name, Source::ImageFolder(path))
            }
            other => {
                if !store::BUILT_IN.contains(&other) {
                    bail!(
                        "unknown dataset '{}': expected one of {} (or `import PATH --name NAME` for your own data, or `list`)",
                        dada_train::error::clip(other),
                        store::BUILT_IN.join(", ")
                    );
                }
                if let Some(p) = &self.path {
                    bail!("unexpected argument {}: give the source with --from {}", p.display(), p.display());
                }
                if self.name.is_some() {
                    bail!("--name is for `datasets import`; the built-in dataset '{other}' keeps its name");
                }
                let source = if self.download {
                    Source::Download
                } else if let Some(from) = &self.from {
                    official_or_folder(other, from)
                } else {
                    auto_source(other)
                };
                (other.to_string(), source)
            }
        };
        let dir = prepare(&root, &name, &source, opts)?;
        let ds = data::load_dir(&dir)?;
        eprintln!("{}", store::describe(&name, &ds.meta, &ds.train, &ds.test));
        Ok(())
    }
}

/// For `--from`: CIFAR-10 also takes an ImageFolder tree or archive (the bundled copy is one);
/// everything else is the official distribution.
fn official_or_folder(name: &str, from: &Path) -> Source {
    let file = from.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let official = file.starts_with("cifar-10-binary") || file == "cifar-10-batches-bin" || from.join("data_batch_1.bin").exists();
    if name == "cifar10" && !official {
        Source::ImageFolder(from.to_path_buf())
    } else {
        Source::Official(from.to_path_buf())
    }
}

/// `datasets list`: every dataset folder under the root, with its description or its problem.
fn list(root: &Path) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if f.starts_with('.') || !e.path().is_dir() || f == "downloads" {
                continue;
            }
            names.push(if f == data::CIFAR10_DIR { "cifar10".into() } else { f });
        }
    }
    names.sort();
    if names.is_empty() {
        println!("no datasets in {} (prepare one with `cargo xtask datasets cifar10`)", root.display());
    }
    for name in names {
        if store::check_name(&name).is_err() {
            continue;
        }
        match store::inspect(root, &name) {
            Ok(State::Ready(meta)) => {
                let n = |files: &[&str]| -> u64 {
                    files.iter().map(|f| meta.sizes.get(*f).copied().unwrap_or(0)).sum::<u64>() / meta.record_len() as u64
                };
                let train = n(&data::cifar::TRAIN_FILES);
                let test = n(&[data::cifar::TEST_FILE]);
                if meta.sizes.is_empty() {
                    println!("{name}: {}, {} classes ({})", meta.shape_text(), meta.classes.len(), store::dataset_dir(root, &name).display());
                } else {
                    println!("{name}: {train} training and {test} test images of {}, {} classes", meta.shape_text(), meta.classes.len());
                }
            }
            Ok(_) => {}
            Err(e) => println!("{name}: {e}"),
        }
    }
    Ok(())
}
