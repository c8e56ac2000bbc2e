//! Integration tests of dada-policy, one binary.

// RELAX / REINFORCE on toy objectives with known gradients: unbiasedness and variance.
mod estimators;
// Gradients from a loss on augmented images reach every parameter group.
mod grad_flow;
// JSON, fast-autoaugment and safetensors round trips; malformed files; sample_discrete.
mod files;
/// Property tests: random and mutated input to both policy-file readers never panics; errors stay short.
mod properties;
// The examples (`examples/`), run with small sizes so they keep working.
mod examples;
