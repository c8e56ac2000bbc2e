//! `ConditionalParallel`: children run in parallel where their conditions hold; outputs merged.
use std::sync::Arc;

use candle::{DType, Tensor};

use crate::condition::select;
use crate::merge::{merge, Reduce};
use crate::{Batch, ComposeError, Condition, Mask, Operator, Result};

/// How [`ConditionalParallel`] merges the outputs of its active children, per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalMerge {
    /// The sum of the active children's outputs.
    Sum,
    /// The mean of the active children's outputs.
    Mean,
}

/// Applies each child whose [`Condition`] holds (on the input batch) and merges the active
/// outputs by sum or mean, element by element. An element for which no condition holds keeps
/// its input; children whose condition is false for the whole batch are not run at all.
#[derive(Debug)]
pub struct ConditionalParallel {
    name: String,
    branches: Vec<(Arc<dyn Operator>, Condition)>,
    merge: ConditionalMerge,
}

impl ConditionalParallel {
    /// `(operator, condition)` branches merged by `merge`; errors if there are none.
    pub fn new(
        branches: impl IntoIterator<Item = (Arc<dyn Operator>, Condition)>,
        merge: ConditionalMerge,
    ) -> Result<Self> {
        let branches: Vec<_> = branches.into_iter().collect();
        if branches.is_empty() {
            return Err(ComposeError::NoOperators {
                op: "conditional_parallel".into(),
            });
        }
        Ok(Self {
            name: "conditional_parallel".into(),
            branches,
            merge,
        })
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Operator for ConditionalParallel {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let b_sz = batch.batch_size();
        let device = batch.device().clone();
        let mut outputs = Vec::new();
        let mut masks = Vec::new();
        for (op, condition) in &self.branches {
            let mask = match condition.eval(&self.name, batch)? {
                Mask::All(false) => continue,
                Mask::All(true) => Tensor::ones(b_sz, DType::F64, &device)?,
                Mask::PerElement(mask) => mask.to_dtype(DType::F64)?,
            };
            outputs.push(op.apply_batch(batch)?);
            masks.push(mask);
        }
        if outputs.is_empty() {
            return Ok(batch.clone());
        }
        let masks = Tensor::stack(&masks, 1)?; // (B, n_active), 0/1
        let counts = masks.sum(1)?; // (B,)
        let weights = match self.merge {
            ConditionalMerge::Sum => masks,
            ConditionalMerge::Mean => masks.broadcast_div(&counts.maximum(1.0)?.unsqueeze(1)?)?,
        };
        let merged = merge(&self.name, batch, &outputs, Reduce::Weighted(&weights))?;
        let none_active = counts.eq(0.0)?;
        let n_none: f64 = none_active.to_dtype(DType::F64)?.sum_all()?.to_scalar()?;
        if n_none == 0.0 {
            return Ok(merged);
        }
        let mut out = merged.clone();
        for (key, value) in merged.get_data() {
            let Some(original) = batch.get(key) else {
                continue;
            };
            if original.id() == value.id() {
                continue;
            }
            if original.dims() != value.dims() {
                return Err(ComposeError::ShapeMismatch {
                    op: self.name.clone(),
                    key: key.clone(),
                    child: 0,
                    expected: original.dims().to_vec(),
                    got: value.dims().to_vec(),
                });
            }
            out = out.with(key.clone(), select(&none_active, original, value)?)?;
        }
        Ok(out)
    }
}
