//! The DADA search and training: datasets, splits, the bi-level loop, checkpoints, evaluation.
//!
//! This is the only library crate of the workspace that opens paths. Datasets live in [`data`]:
//! a reader and writer of the CIFAR-10 binary layout, an ImageFolder importer (directories and
//! `.tar.gz` archives), the official download (md5-checked) and seeded splits.
#![warn(missing_docs)]

pub mod data;
pub mod error;

pub use error::{DataError, DataResult};
