//! Integration tests of dada-train, one module per topic.

/// CIFAR-10 import of the shared archive, known images, splits.
mod cifar_import;
/// Corrupt and malformed input: each gives its clear error.
mod data_errors;
/// The search on a tiny CNN: resume, NaN, every configuration.
mod search;
/// Training with a fixed policy.
mod train;
/// candle-datasets' reader agrees with ours (only with the `hf-datasets` feature).
#[cfg(feature = "hf-datasets")]
mod hf_reader;
