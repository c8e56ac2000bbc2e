//! Integration tests of dada-train, one module per topic.

/// CIFAR-10 import of the shared archive, known images, splits.
mod cifar_import;
/// The DADA policies the authors published: load, agree with `file:`, train.
mod dada_official;
/// Corrupt and malformed input: each gives its clear error.
mod data_errors;
/// Named datasets: nothing a user prepared is replaced; any image size end to end.
mod datasets;
/// The official CIFAR-100 (binary) and SVHN (.mat) formats: written here, read back, damaged.
mod official_formats;
/// Property tests: random and mutated checkpoints, dataset metadata and dataset files never panic.
mod properties;
/// The search on a tiny CNN: resume, NaN, every configuration.
mod search;
/// Training with a fixed policy.
mod train;
/// candle-datasets' reader agrees with ours (only with the `hf-datasets` feature).
#[cfg(feature = "hf-datasets")]
mod hf_reader;
/// The examples (`examples/`), run with small sizes so they keep working.
mod examples;
