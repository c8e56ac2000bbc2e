//! Batches, operators and composition strategies for differentiable data pipelines on candle.
//!
//! (crate docs: see below)
#![warn(missing_docs)]

mod aug;
mod batch;
mod condition;
mod error;
mod fused;
mod merge;
mod operator;
mod strategy;

pub use aug::{AugOperator, ParamSource};
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
