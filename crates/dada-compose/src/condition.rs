//! `Condition`: a predicate on a batch, for the whole batch or per element.
use std::fmt;
use std::sync::Arc;

use candle::{DType, Tensor};

use crate::{Batch, ComposeError, Result};

/// The value of a [`Condition`] on a batch.
#[derive(Debug, Clone)]
pub enum Mask {
    /// The same answer for every element.
    All(bool),
    /// A `(B,)` tensor: nonzero where the condition holds (any dtype).
    PerElement(Tensor),
}

type ConditionFn = dyn Fn(&Batch) -> Result<Mask> + Send + Sync;

/// A predicate deciding whether an operator applies, evaluated on the batch it would receive.
///
/// Batch-level conditions skip the operator entirely; per-element conditions select, element by
/// element, between the operator's output and its input (gradients flow to the selected one).
#[derive(Clone)]
pub struct Condition(Arc<ConditionFn>);

impl Condition {
    /// A condition on the whole batch.
    pub fn batch(f: impl Fn(&Batch) -> Result<bool> + Send + Sync + 'static) -> Self {
        Self(Arc::new(move |b| f(b).map(Mask::All)))
    }

    /// A per-element condition: `f` returns a `(B,)` tensor, nonzero where it holds.
    pub fn per_element(f: impl Fn(&Batch) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        Self(Arc::new(move |b| f(b).map(Mask::PerElement)))
    }

    /// Always true.
    pub fn always() -> Self {
        Self(Arc::new(|_| Ok(Mask::All(true))))
    }

    /// Never true.
    pub fn never() -> Self {
        Self(Arc::new(|_| Ok(Mask::All(false))))
    }

    /// Evaluates the condition; a per-element mask comes back as a `(B,)` u8 0/1 tensor, or as
    /// `Mask::All` when every element agrees.
    pub(crate) fn eval(&self, op: &str, batch: &Batch) -> Result<Mask> {
        match (self.0)(batch)? {
            Mask::All(value) => Ok(Mask::All(value)),
            Mask::PerElement(mask) => {
                let b_sz = batch.batch_size();
                if mask.dims() != [b_sz] {
                    return Err(ComposeError::PerElementShape {
                        op: op.to_string(),
                        what: "condition mask",
                        b_sz,
                        dims: mask.dims().to_vec(),
                    });
                }
                let mask = mask.ne(0.0)?;
                let count: u32 = mask.to_dtype(DType::U32)?.sum_all()?.to_scalar()?;
                Ok(match count as usize {
                    0 => Mask::All(false),
                    n if n == b_sz => Mask::All(true),
                    _ => Mask::PerElement(mask),
                })
            }
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condition")
    }
}

/// Element-wise `mask ? on_true : on_false` for a `(B,)` u8 mask and two `(B, ...)` tensors.
pub(crate) fn select(mask: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1usize; on_true.rank()];
    shape[0] = mask.dim(0)?;
    let mask = mask.reshape(shape)?.broadcast_as(on_true.shape())?;
    Ok(mask.where_cond(on_true, on_false)?)
}
