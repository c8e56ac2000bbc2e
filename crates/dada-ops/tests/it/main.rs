//! dada-ops integration tests: one binary, one module per topic.

// Shared helpers: op variants, batches, gradients.
mod common;
// Fused CPU kernels agree with the plain-candle reference path (values and gradients).
mod agreement;
// Finite-difference checks of image and magnitude gradients, estimator sign checks.
mod grads;
// `weighted_mixture`: fused vs reference, finite differences, shapes.
mod mixture;
// Forward results against Pillow golden fixtures from real CIFAR-10 images.
mod golden;
// The examples (`examples/`), run with small sizes so they keep working.
mod examples;
