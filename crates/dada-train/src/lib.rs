//! The DADA search and training: datasets, splits, the bi-level loop, checkpoints, evaluation.
//!
//! This is the only library crate of the workspace that opens paths. Datasets live in [`data`]:
//! a reader and writer of the CIFAR-10 binary layout, an ImageFolder importer (directories and
//! `.tar.gz` archives), the official download (md5-checked) and seeded splits.
#![warn(missing_docs)]

pub mod data;
pub mod error;

pub use error::{DataError, DataResult};
pub mod checkpoint;
pub mod pipeline;
pub mod config;
pub mod search;

pub use config::{Draw, EstimatorKind, HypergradKind, OpGradKind, SearchConfig, SpaceKind, TemperatureSchedule};
pub use search::{evaluate, EvalResult, HistoryRow, Search, SearchError, SearchResult};

/// The ops crate, re-exported for the command line and examples.
pub use dada_ops as ops;
/// The compose crate, re-exported.
pub use dada_compose as compose;
/// The policy crate, re-exported.
pub use dada_policy as policy;
/// The models crate, re-exported.
pub use dada_models as models;
pub mod device;
pub mod devcheck;
pub mod known_policies;
pub mod memory;
pub mod train;
pub mod verify;

/// The guide's code blocks (docs/guide.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct GuideDoctests;
