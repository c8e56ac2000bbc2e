//! Batches, operators and composition strategies for differentiable data pipelines on candle.
//!
//! A [`Batch`] holds named tensors stacked on a leading batch axis (`"image"` `(B,C,H,W)`,
//! `"magnitude"` `(B,)`, `"op_weights"` `(B, 15)`, ...) plus named states; an [`Element`] is one
//! sample of it. An [`Operator`] maps a batch to a new batch, differentiably: applying to the
//! whole batch is its job, so user code never loops over elements. Leaves are
//! [`ElementOperator`]s (a per-batch kernel, a per-element function that is applied to each
//! element and re-stacked, or a dada-ops augmentation) and [`AugOperator`]s; composites are the
//! eleven strategies:
//!
//! | strategy | what it does |
//! |---|---|
//! | [`Sequential`] | children in order |
//! | [`ConditionalSequential`] | children in order, each where its [`Condition`] holds (per batch or per element) |
//! | [`DynamicSequential`] | children in order; add / insert / remove / reorder between calls |
//! | [`Parallel`] | same input to all; merge by [`MergeMode`]: stack, concat, sum, mean, max, min, named |
//! | [`WeightedParallel`] | `sum_i w_i * child_i(x)`: static, learnable (`Var`) or dynamic (`weight_key`, `(B, n)`) weights |
//! | [`ConditionalParallel`] | the children whose conditions hold, merged by sum or mean per element |
//! | [`EnsembleMean`], [`EnsembleSum`], [`EnsembleMax`], [`EnsembleMin`] | element-wise reductions of all children |
//! | [`Branching`] | a router sends each element to one child |
//!
//! **The design decision to know:** weights are inputs. `WeightedParallel` takes them fixed, as
//! a caller-owned `Var`, or per call from the batch (the DADA case: the policy's Gumbel-Softmax
//! sample under `"op_weights"`, stripped before the children run). When every child is a
//! dada-ops augmentation of the same images, the weighted sum runs as one fused
//! [`dada_ops::weighted_mixture`] pass with its own backward, instead of 15 full-size outputs
//! and their sum; the result and gradients are the same
//! ([`WeightedParallel::uses_fused_mixture`]). Keys that every child passes through unchanged
//! (`"magnitude"`) are carried over, not merged.
//!
//! Randomness is explicit: augmentation parameters come from a [`ParamSource`] (fixed, or a
//! seeded generator per operator), never from a global generator. Errors are [`ComposeError`]
//! values (the crate [`Result`]), raised at build time (wrong number of weights, two weight
//! modes, no children) or call time (a missing key, mismatched child outputs, a router index
//! out of range), never panics; `ComposeError` converts into `candle::Error` and back, so `?`
//! works in candle code.
//!
//! Left out on purpose: learning (no optimiser, no probabilities or Gumbel sampling: that is
//! dada-policy), the augmentations themselves (dada-ops), models and datasets (dada-models,
//! dada-train).
//!
//! # Example: the DADA mixture of 15 ops with Gumbel-Softmax weights
//!
//! ```
//! use candle::{DType, Device, Tensor, Var, D};
//! use dada_compose::{aug_operators, Batch, Operator, WeightedParallel, WeightedParallelConfig};
//! use dada_ops::OpSet;
//!
//! # fn main() -> dada_compose::Result<()> {
//! let (b_sz, n_ops, dev) = (8, 15, Device::Cpu);
//! // The 15 paper ops, each drawing its random parameters from its own seeded generator.
//! let ops = aug_operators(&OpSet::paper(), 0);
//! let config = WeightedParallelConfig::dynamic("op_weights");
//! let mixture = WeightedParallel::new(ops, config)?;
//! assert!(mixture.uses_fused_mixture());
//!
//! // Policy side (dada-policy does this for real): Gumbel-Softmax weights from logits.
//! let logits = Var::zeros((b_sz, n_ops), DType::F32, &dev)?;
//! let u = Tensor::rand(1e-6f32, 1.0 - 1e-6, (b_sz, n_ops), &dev)?;
//! let gumbel = u.log()?.neg()?.log()?.neg()?; // -log(-log u)
//! let temperature = 0.5;
//! let op_weights = candle_nn::ops::softmax(&((logits.as_tensor() + gumbel)? / temperature)?, D::Minus1)?;
//!
//! let images = Tensor::rand(0f32, 1.0, (b_sz, 3, 32, 32), &dev)?;
//! let magnitudes = Tensor::full(0.5f32, b_sz, &dev)?;
//! let batch = Batch::new([("image", images), ("magnitude", magnitudes), ("op_weights", op_weights)])?;
//!
//! let augmented = mixture.apply_batch(&batch)?; // {image, magnitude}: the weights are stripped
//! let image = augmented.require("image")?;
//! assert_eq!(image.dims(), [b_sz, 3, 32, 32]);
//!
//! // Any loss on the augmented images sends gradients back to the policy logits.
//! let grads = image.sqr()?.mean_all()?.backward()?;
//! assert!(grads.get(logits.as_tensor()).is_some());
//! # Ok(())
//! # }
//! ```
//!
//! Sibling crates: dada-ops (the ops and the fused mixture kernel) below; dada-policy (policy
//! parameters, Gumbel-Softmax, RELAX) and dada-train above.
#![warn(missing_docs)]

mod aug;
mod batch;
mod condition;
mod error;
mod fused;
mod merge;
mod operator;
mod strategy;

pub use aug::{aug_operators, AugOperator, ParamSource};
pub use batch::{Batch, Element, TensorMap};
pub use condition::{Condition, Mask};
pub use error::{ComposeError, Result};
pub use merge::MergeMode;
pub use operator::{ElementOperator, Operator};
pub use strategy::{
    Branching, ConditionalMerge, ConditionalParallel, ConditionalSequential, DynamicSequential,
    EnsembleMax, EnsembleMean, EnsembleMin, EnsembleSum, Parallel, Sequential, WeightMode,
    WeightedParallel, WeightedParallelConfig,
};
