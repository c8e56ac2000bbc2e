//! `sample_discrete`: a policy file applied as ordinary (non-differentiable) augmentation.
use candle::Tensor;
use rand::rngs::StdRng;
use rand::Rng;

use crate::policy::apply_grouped;
use crate::{canonical_op_name, PolicyError, PolicyFile, PolicyResult};

/// Augments `images (B,C,H,W)` with `policy` as in fast-autoaugment / DADA training: each
/// image gets one sub-policy chosen uniformly, and each of its ops is applied with its
/// probability at its magnitude. No gradients (the input is detached); images sharing an op
/// are processed together.
pub fn sample_discrete(policy: &PolicyFile, images: &Tensor, rng: &mut StdRng) -> PolicyResult<Tensor> {
    let ops = policy.op_set()?;
    if policy.sub_policies.is_empty() {
        return Err(PolicyError::Empty);
    }
    let dims = images.dims();
    if dims.len() != 4 {
        return Err(candle::Error::Msg(format!("sample_discrete: images must be (B,C,H,W), got {dims:?}")).into());
    }
    let b = dims[0];
    let chosen: Vec<usize> = (0..b).map(|_| rng.random_range(0..policy.sub_policies.len())).collect();
    let n_slots = policy.sub_policies.iter().map(|s| s.ops.len()).max().unwrap_or(0);
    let mut x = images.detach();
    for j in 0..n_slots {
        let mut choice = Vec::with_capacity(b);
        let mut mags = Vec::with_capacity(b);
        for &sp in &chosen {
            match policy.sub_policies[sp].ops.get(j) {
                Some(e) if rng.random::<f64>() < e.probability => {
                    let Some(k) = canonical_op_name(&e.op).and_then(|n| ops.index_of(n)) else {
                        return Err(PolicyError::Malformed(format!("sample_discrete: unknown op {:?}", e.op)));
                    };
                    choice.push(Some(k));
                    mags.push(e.magnitude as f32);
                }
                _ => {
                    choice.push(None);
                    mags.push(0.0);
                }
            }
        }
        let m = Tensor::from_vec(mags, b, images.device())?.to_dtype(images.dtype())?;
        x = apply_grouped(&ops, &x, &choice, &m, rng)?;
    }
    Ok(x)
}
