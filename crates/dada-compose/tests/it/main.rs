//! Integration tests of dada-compose: one module per strategy, plus batches and dada-ops.

// Shared helpers: seeded inputs, small test operators, the finite-difference checker.
mod common;

// Batch and Element construction, validation, slicing.
mod batch;
// Sequential, ConditionalSequential, DynamicSequential.
mod sequential;
// Parallel with every merge mode, and the four ensembles.
mod parallel;
// WeightedParallel in its three weight modes.
mod weighted_parallel;
// ConditionalParallel.
mod conditional_parallel;
// Branching.
mod branching;
// dada-ops augmentations as operators, and the fused 15-op mixture.
mod aug;
