//! The fused path of `WeightedParallel`: all children are dada-ops augmentations of one image.
use std::sync::Arc;

use candle::Tensor;
use dada_ops::{weighted_mixture, OpSet};

use crate::{AugOperator, Batch, Operator, Result};

/// The children as augmentation operators sharing image and magnitude keys, if they all are.
pub(crate) fn aug_children(ops: &[Arc<dyn Operator>]) -> Option<Vec<&AugOperator>> {
    let augs: Vec<&AugOperator> = ops
        .iter()
        .map(|op| op.as_aug_operator())
        .collect::<Option<_>>()?;
    let first = augs.first()?;
    let same_keys = augs
        .iter()
        .all(|a| a.image_key() == first.image_key() && a.magnitude_key() == first.magnitude_key());
    same_keys.then_some(augs)
}

/// The weighted mixture through `dada_ops::weighted_mixture` (one fused pass over the batch, no
/// per-op full-size temporaries), or `None` when the children are not all augmentations of the
/// same images. Parameters are drawn from each child in order, exactly as the unfused path does,
/// so both paths give the same result for the same seeds.
pub(crate) fn try_mixture(
    ops: &[Arc<dyn Operator>],
    batch: &Batch,
    weights: &Tensor,
) -> Result<Option<Batch>> {
    let Some(augs) = aug_children(ops) else {
        return Ok(None);
    };
    let image_key = augs[0].image_key();
    let images = batch.require(image_key)?;
    let (b_sz, device) = (batch.batch_size(), images.device());
    let set = OpSet::new(augs.iter().map(|a| a.op().clone()).collect());
    let params = augs
        .iter()
        .map(|a| a.draw_params(b_sz, device))
        .collect::<Result<Vec<_>>>()?;
    let magnitudes = augs
        .iter()
        .map(|a| a.magnitudes(batch))
        .collect::<Result<Vec<_>>>()?;
    // One shared (B,) tensor when every op reads the same magnitudes, else (B, n_ops).
    let magnitudes = if magnitudes.iter().all(|m| m.id() == magnitudes[0].id()) {
        magnitudes[0].clone()
    } else {
        Tensor::stack(&magnitudes, 1)?
    };
    let dtype = images.dtype();
    let mixture = weighted_mixture(
        &set,
        images,
        &magnitudes.to_dtype(dtype)?,
        &weights.to_dtype(dtype)?,
        &params,
    )?;
    Ok(Some(batch.with(image_key, mixture)?))
}
