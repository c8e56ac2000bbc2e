//! Datasets: the CIFAR-10 binary layout, the ImageFolder importer, download, splits.
pub mod cifar;
pub mod download;
pub mod import;
pub mod split;

use std::path::{Path, PathBuf};

use crate::error::{DataError, DataResult};
pub use cifar::{load_dir, BinaryDataset, DatasetMeta, ImageSet, CIFAR10_CLASSES, CIFAR10_DIR};
pub use import::{import_image_folder, ImportConfig, Imported};
pub use split::{make_splits, SplitConfig, Splits};

/// Where CIFAR-10 comes from when `prepare_cifar10` has to build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An ImageFolder directory or archive (`train/<class>/*.jpg`, `test/<class>/*.jpg`).
    ImageFolder(PathBuf),
    /// A local copy of the official `cifar-10-binary.tar.gz` (md5-checked).
    OfficialArchive(PathBuf),
    /// Download the official release (md5-checked).
    Download,
}

/// What `prepare_cifar10` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The directory was already complete.
    AlreadyThere(PathBuf),
    /// Imported from an ImageFolder tree or archive.
    Imported(PathBuf),
    /// Extracted from the official archive (downloaded or local).
    Extracted(PathBuf),
}

impl Prepared {
    /// The binary dataset directory.
    pub fn dir(&self) -> &Path {
        match self {
            Prepared::AlreadyThere(p) | Prepared::Imported(p) | Prepared::Extracted(p) => p,
        }
    }
}

/// The ImageFolder archive used offline when present: `$DADA_CIFAR10_ARCHIVE`, else
/// `<project>/../shared/datasets/cifar10-imagefolder.tar.gz`.
pub fn default_archive(project_root: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DADA_CIFAR10_ARCHIVE") {
        return Some(PathBuf::from(p));
    }
    let p = project_root.join("..").join("shared").join("datasets").join("cifar10-imagefolder.tar.gz");
    p.exists().then_some(p)
}

/// Makes sure `data_dir/cifar-10-batches-bin` holds CIFAR-10 in the binary layout, building it
/// from `source` when it is missing or incomplete (or always, with `force`).
/// `progress` receives a stage name and (done, total) counts.
pub fn prepare_cifar10(
    data_dir: &Path,
    source: &Source,
    seed: u64,
    force: bool,
    progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> DataResult<Prepared> {
    let dir = data_dir.join(CIFAR10_DIR);
    if !force && cifar::is_complete(&dir) {
        return Ok(Prepared::AlreadyThere(dir));
    }
    match source {
        Source::ImageFolder(path) => {
            progress("importing", 0, None);
            let imported = import_image_folder(path, &ImportConfig { classes: None, seed })?;
            progress("writing", 0, None);
            cifar::write_dir(&dir, &imported.train, &imported.test, &imported.meta)?;
            Ok(Prepared::Imported(dir))
        }
        Source::OfficialArchive(path) => {
            if !path.exists() {
                return Err(DataError::Missing { path: path.clone(), hint: "give the path of cifar-10-binary.tar.gz".into() });
            }
            Ok(Prepared::Extracted(download::extract_official(path, data_dir)?))
        }
        Source::Download => {
            let archive = data_dir.join("cifar-10-binary.tar.gz");
            download::download(download::CIFAR10_URL, &archive, download::CIFAR10_MD5, &mut |d, t| {
                progress("downloading", d, t)
            })?;
            Ok(Prepared::Extracted(download::extract_official(&archive, data_dir)?))
        }
    }
}
