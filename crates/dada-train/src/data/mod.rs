//! Datasets: named datasets under a data root ([`store`]), the binary layout they are kept in
//! ([`cifar`]), the readers of the official CIFAR-100 and SVHN files, the ImageFolder importer,
//! download and splits.
pub mod cifar;
pub mod cifar100;
pub mod download;
pub mod import;
pub mod mat;
pub mod split;
pub mod svhn;
pub mod store;

use std::path::{Path, PathBuf};

pub use cifar::{load_dir, BinaryDataset, DatasetMeta, ImageSet, CIFAR10_CLASSES, CIFAR10_DIR};
pub use import::{import_image_folder, ImportConfig, Imported};
pub use split::{make_splits, SplitConfig, Splits};
pub use store::{dataset_dir, describe, inspect, load, prepare, PrepareOptions, Prepared, Source, State};

/// The ImageFolder archive used offline when present: `$DADA_CIFAR10_ARCHIVE`, else
/// `<project>/../shared/datasets/cifar10-imagefolder.tar.gz`.
pub fn default_archive(project_root: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DADA_CIFAR10_ARCHIVE") {
        return Some(PathBuf::from(p));
    }
    let p = project_root.join("..").join("shared").join("datasets").join("cifar10-imagefolder.tar.gz");
    p.exists().then_some(p)
}
