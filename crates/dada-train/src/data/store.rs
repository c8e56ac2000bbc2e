//! Named datasets under a data root, and the rule that nothing a user prepared is replaced.
//!
//! Each dataset lives in its own folder of the binary layout ([`crate::data::cifar`]): `cifar10`
//! in the official `cifar-10-batches-bin/`, every other name in `<root>/<name>/`.
//!
//! - A folder is built only where there is no dataset at all: no folder, or an empty one.
//! - A folder that holds an incomplete or damaged dataset, or another dataset than the one asked
//!   for, gets an error that names the file and the command that fixes it; nothing is changed.
//! - A new folder is built beside its target (`.<name>.partial-<pid>`) and renamed into place,
//!   so a dataset folder is either complete or absent. `force` replaces an existing dataset the
//!   same way; it never replaces a folder that holds anything but a dataset, nor the folder a
//!   dataset is being imported from.
use std::fs;
use std::path::{Path, PathBuf};

use crate::data::cifar::{self, DatasetMeta, ImageSet, CIFAR10_CLASSES, CIFAR10_DIR, TEST_FILE, TRAIN_FILES};
use crate::data::{cifar100, download, import, svhn};
use crate::error::{clip, DataError, DataResult};

/// Datasets this crate knows how to fetch by name, in their official distribution formats.
pub const BUILT_IN: [&str; 4] = ["cifar10", "cifar100", "cifar100-coarse", "svhn"];

/// The files that make a folder a dataset folder of the binary layout.
const LAYOUT_FILES: [&str; 8] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
    "batches.meta.txt",
    "dada-meta.json",
];

/// Bytes of each file of the official CIFAR-10 release (10,000 records of 3,073 bytes).
const CIFAR10_OFFICIAL_FILE_LEN: u64 = 10_000 * 3_073;

/// Checks that `name` is a plain dataset name: 1 to 64 ASCII letters, digits, `-` or `_`,
/// starting with a letter or digit.
pub fn check_name(name: &str) -> DataResult<()> {
    let bad = |reason: &str| Err(DataError::BadName { name: clip(name), reason: reason.to_string() });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return bad("it may hold only ASCII letters, digits, '-' and '_'");
    }
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or a digit");
    }
    Ok(())
}

/// Where dataset `name` lives under `root`: `cifar-10-batches-bin/` for `cifar10` (the
/// official folder name), `<name>/` for every other name.
pub fn dataset_dir(root: &Path, name: &str) -> PathBuf {
    if name == "cifar10" {
        root.join(CIFAR10_DIR)
    } else {
        root.join(name)
    }
}

/// `pets: 600 training and 150 test images of 3x48x48, 3 classes`.
pub fn describe(name: &str, meta: &DatasetMeta, train: &ImageSet, test: &ImageSet) -> String {
    format!(
        "{name}: {} training and {} test images of {}, {} classes",
        train.len(),
        test.len(),
        meta.shape_text(),
        meta.classes.len()
    )
}

/// What a folder's metadata says it holds: `pets (3 classes of 3x48x48)`.
fn holds(meta: &DatasetMeta) -> String {
    let name = meta.name.as_deref().map(clip).unwrap_or_else(|| "a dataset".into());
    format!("{name} ({} classes of {})", meta.classes.len(), meta.shape_text())
}

/// The command that rebuilds dataset `name`, for messages.
pub fn rebuild_hint(name: &str, meta: Option<&DatasetMeta>) -> String {
    if BUILT_IN.contains(&name) {
        return format!("restore the file, or rebuild the dataset with `cargo xtask datasets {name} --force`");
    }
    let source = meta.and_then(|m| m.source.as_deref().map(clip)).unwrap_or_else(|| "<images>".into());
    format!("restore the file, or re-import the dataset with `cargo xtask datasets import {source} --name {name} --force`")
}

/// The command that prepares dataset `name` where it is missing, for messages.
pub fn prepare_hint(name: &str) -> String {
    if BUILT_IN.contains(&name) {
        format!("prepare it with `cargo xtask datasets {name}`")
    } else {
        format!("import it with `cargo xtask datasets import <images-or-archive> --name {name}`")
    }
}

/// Whether `meta` is CIFAR-10's shape and classes.
fn is_cifar10_shaped(meta: &DatasetMeta) -> bool {
    meta.shape_text() == "3x32x32" && meta.classes.iter().map(String::as_str).eq(CIFAR10_CLASSES)
}

/// What a dataset folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No folder.
    Absent,
    /// An empty folder.
    Empty,
    /// A complete dataset of the name asked for.
    Ready(DatasetMeta),
}

/// Looks at the folder of dataset `name` under `root` without changing anything: absent, empty,
/// or complete; any other state is an error naming the file and the fix.
pub fn inspect(root: &Path, name: &str) -> DataResult<State> {
    check_name(name)?;
    let dir = dataset_dir(root, name);
    let Ok(md) = fs::metadata(&dir) else { return Ok(State::Absent) };
    if !md.is_dir() {
        return Err(DataError::Occupied { path: dir, hint: "it is a file; move it, or use another --data-dir".into() });
    }
    let entries: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| DataError::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if entries.is_empty() {
        return Ok(State::Empty);
    }
    if !entries.iter().any(|e| LAYOUT_FILES.contains(&e.as_str())) {
        return Err(DataError::Occupied {
            path: dir,
            hint: format!("move its files elsewhere or use another --data-dir; {}", prepare_hint(name)),
        });
    }
    let meta = cifar::read_meta(&dir)?;
    let has_json = dir.join("dada-meta.json").exists();
    let wrong = |meta: &DatasetMeta| DataError::WrongDataset {
        path: dir.clone(),
        found: holds(meta),
        want: name.to_string(),
        hint: match &meta.name {
            Some(other) if other != name => format!("use `--dataset {}`, or give another --data-dir for {name}", clip(other)),
            _ => format!("move the folder to a name of its own (`mv {} <root>/<name>` and use `--dataset <name>`), or give another --data-dir for {name}", dir.display()),
        },
    };
    match &meta.name {
        Some(n) if n != name => return Err(wrong(&meta)),
        None if name == "cifar10" && !is_cifar10_shaped(&meta) => return Err(wrong(&meta)),
        _ => {}
    }
    for f in TRAIN_FILES.iter().chain(std::iter::once(&TEST_FILE)) {
        let path = dir.join(f);
        let incomplete = |reason: String| DataError::Incomplete { path: path.clone(), reason, hint: rebuild_hint(name, Some(&meta)) };
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => return Err(incomplete("the file is missing".into())),
        };
        let want = match meta.sizes.get(*f) {
            Some(&n) => Some(n),
            None if !has_json && name == "cifar10" => Some(CIFAR10_OFFICIAL_FILE_LEN),
            None => None,
        };
        match want {
            Some(w) if w != len => return Err(incomplete(format!("{len} bytes, but {w} were written"))),
            None if len % meta.record_len() as u64 != 0 => {
                return Err(incomplete(format!("{len} bytes is not a whole number of {}-byte records", meta.record_len())))
            }
            _ => {}
        }
    }
    Ok(State::Ready(meta))
}

/// Where a dataset is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An ImageFolder directory or archive (`train/<class>/*.jpg`, `test/<class>/*.jpg`).
    ImageFolder(PathBuf),
    /// The official distribution: `cifar-10-binary.tar.gz` or `cifar-100-binary.tar.gz` (or
    /// the folder they extract to), or the folder holding SVHN's `train_32x32.mat` and
    /// `test_32x32.mat`.
    Official(PathBuf),
    /// Download the official distribution (md5-checked) into `<root>/downloads/`.
    Download,
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The folder already held the complete dataset; nothing was written.
    AlreadyThere(PathBuf),
    /// A new folder was built (or, with `force`, an existing dataset replaced).
    Built {
        /// The dataset folder.
        dir: PathBuf,
        /// Whether an earlier dataset was replaced (`force`).
        replaced: bool,
    },
}

impl Prepared {
    /// The dataset folder.
    pub fn dir(&self) -> &Path {
        match self {
            Prepared::AlreadyThere(p) | Prepared::Built { dir: p, .. } => p,
        }
    }
}

/// Options of [`prepare`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    /// Seed of the record order of imported images.
    pub seed: u64,
    /// Replace an existing dataset of this name.
    pub force: bool,
}

/// Progress callback: a stage name and `(done, total)` counts.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

/// Makes sure `root` holds dataset `name`, building it from `source` where its folder holds
/// no dataset at all (or replacing it, with `force`). See the module docs for the rules.
pub fn prepare(root: &Path, name: &str, source: &Source, opts: PrepareOptions, progress: Progress) -> DataResult<Prepared> {
    let state = inspect(root, name);
    let dir = dataset_dir(root, name);
    let replaced = match state {
        Ok(State::Ready(_)) if !opts.force => return Ok(Prepared::AlreadyThere(dir)),
        Ok(State::Ready(_)) => true,
        Ok(State::Absent | State::Empty) => false,
        // A damaged dataset of this name may be replaced on request; anything else never is.
        Err(DataError::Incomplete { .. } | DataError::Truncated { .. } | DataError::Layout { .. }) if opts.force => true,
        Err(e) => return Err(e),
    };
    if let Source::ImageFolder(src) | Source::Official(src) = source {
        if let (Ok(s), Ok(d)) = (src.canonicalize(), dir.canonicalize()) {
            if s.starts_with(&d) || d.starts_with(&s) {
                return Err(DataError::Occupied {
                    path: dir,
                    hint: format!("it is the source {} or inside it; import into another --data-dir", src.display()),
                });
            }
        }
    }
    fs::create_dir_all(root).map_err(|e| DataError::io(root, e))?;
    let dir_name = dir.file_name().expect("a dataset folder has a name").to_string_lossy().into_owned();
    let staging = root.join(format!(".{dir_name}.partial-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    let built = build(root, name, source, opts.seed, &staging, progress);
    let result = built.and_then(|(train, test, meta)| {
        progress("writing", 0, None);
        let out = staging.join("out");
        cifar::write_dir(&out, &train, &test, &meta)?;
        install(&out, &dir, root, &dir_name)
    });
    let _ = fs::remove_dir_all(&staging);
    result.map(|()| Prepared::Built { dir, replaced })
}

/// Renames the complete folder `out` to `dir`, moving an earlier `dir` aside first and
/// deleting it only once the new one is in place.
fn install(out: &Path, dir: &Path, root: &Path, dir_name: &str) -> DataResult<()> {
    let old = root.join(format!(".{dir_name}.replaced-{}", std::process::id()));
    let had = dir.exists();
    if had {
        fs::rename(dir, &old).map_err(|e| DataError::io(dir, e))?;
    }
    if let Err(e) = fs::rename(out, dir) {
        if had {
            let _ = fs::rename(&old, dir);
        }
        return Err(DataError::io(dir, e));
    }
    if had {
        fs::remove_dir_all(&old).map_err(|e| DataError::io(&old, e))?;
    }
    Ok(())
}

/// Checks an imported dataset: at least two classes, and every class in both splits.
pub fn check_splits(train: &ImageSet, test: &ImageSet, meta: &DatasetMeta, source: &Path) -> DataResult<()> {
    meta.check(source)?;
    for (set, split) in [(train, "train"), (test, "test")] {
        let counts = set.class_counts(meta.classes.len());
        if let Some(k) = counts.iter().position(|&c| c == 0) {
            return Err(DataError::Layout {
                path: source.to_path_buf(),
                reason: format!(
                    "class '{}' has no {split} images; every class needs images in train/ and in test/ ({split}/{}/*.jpg)",
                    clip(&meta.classes[k]),
                    clip(&meta.classes[k])
                ),
            });
        }
    }
    Ok(())
}

type Built = (ImageSet, ImageSet, DatasetMeta);

/// Reads `source` for dataset `name` into memory; `staging` is scratch space.
fn build(root: &Path, name: &str, source: &Source, seed: u64, staging: &Path, progress: Progress) -> DataResult<Built> {
    let (train, test, mut meta) = match source {
        Source::ImageFolder(path) => {
            progress("importing", 0, None);
            let imp = import::import_image_folder(path, &import::ImportConfig { classes: None, seed })?;
            let expect = match name {
                "cifar10" => Some((10, 32)),
                "cifar100" => Some((100, 32)),
                "cifar100-coarse" => Some((20, 32)),
                "svhn" => Some((10, 32)),
                _ => None,
            };
            if let Some((classes, side)) = expect {
                if imp.meta.classes.len() != classes || imp.meta.shape_text() != format!("3x{side}x{side}") {
                    return Err(DataError::WrongDataset {
                        path: path.clone(),
                        found: format!("{} classes of {}", imp.meta.classes.len(), imp.meta.shape_text()),
                        want: format!("{name} ({classes} classes of 3x{side}x{side})"),
                        hint: format!("import your own data under its own name: `cargo xtask datasets import {} --name <name>`", path.display()),
                    });
                }
            }
            (imp.train, imp.test, imp.meta)
        }
        Source::Official(path) => read_official(name, path, staging, progress)?,
        Source::Download => {
            let downloads = root.join("downloads");
            let files: Vec<(&str, &str, &str)> = match name {
                "cifar10" => vec![(download::CIFAR10_URL, "cifar-10-binary.tar.gz", download::CIFAR10_MD5)],
                "cifar100" | "cifar100-coarse" => vec![(cifar100::CIFAR100_URL, "cifar-100-binary.tar.gz", cifar100::CIFAR100_MD5)],
                "svhn" => vec![
                    (svhn::SVHN_TRAIN_URL, svhn::SVHN_TRAIN_FILE, svhn::SVHN_TRAIN_MD5),
                    (svhn::SVHN_TEST_URL, svhn::SVHN_TEST_FILE, svhn::SVHN_TEST_MD5),
                ],
                other => {
                    return Err(DataError::Missing { path: dataset_dir(root, other), hint: prepare_hint(other) });
                }
            };
            for (url, file, md5) in &files {
                download::download(url, &downloads.join(file), md5, &mut |d, t| progress("downloading", d, t))?;
            }
            let path = if name == "svhn" { downloads.clone() } else { downloads.join(files[0].1) };
            read_official(name, &path, staging, progress)?
        }
    };
    meta.name = Some(name.to_string());
    if meta.source.is_none() {
        meta.source = Some(match source {
            Source::ImageFolder(p) | Source::Official(p) => p.display().to_string(),
            Source::Download => "download".into(),
        });
    }
    let where_ = match source {
        Source::ImageFolder(p) | Source::Official(p) => p.clone(),
        Source::Download => root.join("downloads"),
    };
    check_splits(&train, &test, &meta, &where_)?;
    Ok((train, test, meta))
}

/// Reads the official distribution of a built-in dataset.
fn read_official(name: &str, path: &Path, staging: &Path, progress: Progress) -> DataResult<Built> {
    progress("reading the official files", 0, None);
    let is_file = path.is_file();
    match name {
        "cifar10" => {
            let dir = if is_file {
                download::extract_official(path, &staging.join("extract"))?
            } else if path.join("data_batch_1.bin").exists() {
                path.to_path_buf()
            } else {
                path.join(CIFAR10_DIR)
            };
            let meta = DatasetMeta::cifar10();
            let mut train = ImageSet::empty(3, 32, 32);
            for f in TRAIN_FILES {
                train.extend(&cifar::read_batch_file(&dir.join(f), &meta)?);
            }
            let test = cifar::read_batch_file(&dir.join(TEST_FILE), &meta)?;
            Ok((train, test, meta))
        }
        "cifar100" | "cifar100-coarse" => {
            let dir = if is_file {
                cifar100::extract_cifar100(path, &staging.join("extract"))?
            } else if path.join("train.bin").exists() {
                path.to_path_buf()
            } else {
                path.join(cifar100::CIFAR100_DIR)
            };
            let labels = if name == "cifar100" { cifar100::Cifar100Labels::Fine } else { cifar100::Cifar100Labels::Coarse };
            let (train, test, classes) = cifar100::read_cifar100_dir(&dir, labels)?;
            Ok((train, test, DatasetMeta::new(3, 32, 32, classes)))
        }
        "svhn" => {
            if is_file {
                return Err(DataError::Layout {
                    path: path.to_path_buf(),
                    reason: format!("give the folder that holds {} and {}", svhn::SVHN_TRAIN_FILE, svhn::SVHN_TEST_FILE),
                });
            }
            let train = svhn::read_svhn_mat(&path.join(svhn::SVHN_TRAIN_FILE))?;
            let test = svhn::read_svhn_mat(&path.join(svhn::SVHN_TEST_FILE))?;
            let classes = svhn::SVHN_CLASSES.iter().map(|s| s.to_string()).collect();
            Ok((train, test, DatasetMeta::new(3, 32, 32, classes)))
        }
        other => Err(DataError::Layout {
            path: path.to_path_buf(),
            reason: format!(
                "'{}' has no official distribution format; import an ImageFolder with `cargo xtask datasets import {} --name {}`",
                clip(other),
                path.display(),
                clip(other)
            ),
        }),
    }
}

/// Loads dataset `name` from `root`, checking that its folder holds that dataset, complete.
pub fn load(root: &Path, name: &str) -> DataResult<cifar::BinaryDataset> {
    match inspect(root, name)? {
        State::Ready(_) => cifar::load_dir(&dataset_dir(root, name)),
        State::Absent | State::Empty => Err(DataError::Missing { path: dataset_dir(root, name), hint: prepare_hint(name) }),
    }
}
