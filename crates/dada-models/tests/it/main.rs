//! Integration tests of dada-models, one module per topic.

// shared helpers: seeded random tensors, relative error
mod common;
// fast convolution vs candle's conv2d and finite differences
mod conv;
// fused BatchNorm(+ReLU) vs the plain-candle reference and finite differences
mod batch_norm;
// parameter counts, output shapes, seeded determinism, fast vs stock whole-model gradients
mod models;
// trainable / buffer split, checkpoints and their errors
mod params;
// the AVX-512 copies of the kernels against the build target's, bit for bit
mod simd;
// SgdMomentum, clipping, and a few training steps where the loss falls
mod training;
