//! How parallel strategies merge their children's outputs: `MergeMode` and the shared merge.
use candle::Tensor;

use crate::batch::{check_same_shapes, TensorMap};
use crate::{Batch, ComposeError, Result};

/// How [`Parallel`](crate::Parallel) merges the outputs of its children, key by key.
///
/// A key that no child changed (every child returns the very tensor it was given, as with
/// `"magnitude"` in the DADA pipeline) is carried over as is and not merged. States always come
/// through from the input unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeMode {
    /// Stack on a new axis 1: `(B, ...)` from `n` children gives `(B, n, ...)`.
    Stack,
    /// Concatenate along `axis` (counted with the batch axis, so `axis >= 1`), e.g. channels.
    Concat {
        /// The axis to concatenate along.
        axis: usize,
    },
    /// Element-wise sum.
    Sum,
    /// Element-wise mean.
    Mean,
    /// Element-wise maximum (the gradient goes to the maximal children).
    Max,
    /// Element-wise minimum (the gradient goes to the minimal children).
    Min,
    /// Keep every output under `"{child_name}/{key}"` (child names must be distinct).
    Named,
}

/// The shared merge: `Mode` for `MergeMode`, `Weighted` for a `(B, n)` weighted sum.
pub(crate) enum Reduce<'a> {
    Mode(&'a MergeMode, &'a [String]),
    Weighted(&'a Tensor),
}

/// Merges `outputs` (one per child, same keys) of `input` into one batch.
pub(crate) fn merge(op: &str, input: &Batch, outputs: &[Batch], how: Reduce<'_>) -> Result<Batch> {
    let Some(first) = outputs.first() else {
        return Err(ComposeError::NoOperators { op: op.to_string() });
    };
    let keys: Vec<String> = first.keys().map(String::from).collect();
    for (child, out) in outputs.iter().enumerate().skip(1) {
        let got: Vec<String> = out.keys().map(String::from).collect();
        if got != keys {
            return Err(ComposeError::KeyMismatch {
                op: op.to_string(),
                child,
                expected: keys,
                got,
            });
        }
    }
    let mut data = TensorMap::new();
    for key in &keys {
        let tensors: Vec<&Tensor> = outputs.iter().map(|o| &o.get_data()[key]).collect();
        let unchanged = input
            .get(key)
            .is_some_and(|original| tensors.iter().all(|t| t.id() == original.id()));
        if unchanged {
            data.insert(key.clone(), tensors[0].clone());
            continue;
        }
        match &how {
            Reduce::Mode(MergeMode::Named, names) => {
                for (name, t) in names.iter().zip(&tensors) {
                    data.insert(format!("{name}/{key}"), (*t).clone());
                }
            }
            Reduce::Mode(MergeMode::Concat { axis }, _) => {
                data.insert(key.clone(), concat(op, key, &tensors, *axis)?);
            }
            Reduce::Mode(mode, _) => {
                check_same_shapes(op, key, &tensors)?;
                let merged = match mode {
                    MergeMode::Stack => Tensor::stack(&tensors, 1)?,
                    MergeMode::Sum => sum(&tensors)?,
                    MergeMode::Mean => (sum(&tensors)? / tensors.len() as f64)?,
                    MergeMode::Max => Tensor::stack(&tensors, 1)?.max(1)?,
                    MergeMode::Min => Tensor::stack(&tensors, 1)?.min(1)?,
                    MergeMode::Concat { .. } | MergeMode::Named => unreachable!("handled above"),
                };
                data.insert(key.clone(), merged);
            }
            Reduce::Weighted(weights) => {
                check_same_shapes(op, key, &tensors)?;
                data.insert(key.clone(), weighted_sum(&tensors, weights)?);
            }
        }
    }
    Batch::from_parts(data, input.get_states().clone())
}

/// `sum_i weights[:, i] * tensors[i]` with `weights (B, n)` broadcast over trailing dims.
pub(crate) fn weighted_sum(tensors: &[&Tensor], weights: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1usize; tensors[0].rank()];
    shape[0] = weights.dim(0)?;
    let weights = weights.to_dtype(tensors[0].dtype())?;
    let mut acc: Option<Tensor> = None;
    for (i, t) in tensors.iter().enumerate() {
        let w = weights.narrow(1, i, 1)?.reshape(shape.as_slice())?;
        let term = t.broadcast_mul(&w)?;
        acc = Some(match acc {
            None => term,
            Some(acc) => (acc + term)?,
        });
    }
    // `tensors` is never empty: composites refuse to be built without children.
    acc.ok_or_else(|| candle::Error::msg("weighted_sum: no tensors").into())
}

fn sum(tensors: &[&Tensor]) -> Result<Tensor> {
    let mut acc = tensors[0].clone();
    for t in &tensors[1..] {
        acc = (acc + *t)?;
    }
    Ok(acc)
}

fn concat(op: &str, key: &str, tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = tensors[0];
    if axis == 0 || axis >= first.rank() {
        return Err(ComposeError::InvalidAxis {
            op: op.to_string(),
            key: key.to_string(),
            axis,
            dims: first.dims().to_vec(),
        });
    }
    for (child, t) in tensors.iter().enumerate().skip(1) {
        let same_rank = t.rank() == first.rank();
        let agree =
            same_rank && (0..first.rank()).all(|d| d == axis || t.dims()[d] == first.dims()[d]);
        if !agree {
            return Err(ComposeError::ShapeMismatch {
                op: op.to_string(),
                key: key.to_string(),
                child,
                expected: first.dims().to_vec(),
                got: t.dims().to_vec(),
            });
        }
    }
    Ok(Tensor::cat(tensors, axis)?)
}
