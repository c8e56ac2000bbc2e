//! `OpParams`: the per-image random parameters an op draws before it is applied.
use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;
use rand::Rng;

/// Per-image random parameters of one op for one batch, drawn by `AugOp::sample`.
///
/// Every field is optional; an op documents which it reads. Keeping them apart from `apply`
/// makes `apply` pure (replayable, finite-difference checkable).
#[derive(Debug, Clone, Default)]
pub struct OpParams {
    /// `(B,)` f32, +1 or -1: the sign of symmetric ops (shear, translate, rotate).
    pub signs: Option<Tensor>,
    /// `(B, 2)` f32 in [0, 1): relative (y, x) centres, e.g. of the cutout square.
    pub centers: Option<Tensor>,
    /// `(B, C, H, W)` f32 standard-normal noise, for the noise op.
    pub noise: Option<Tensor>,
    /// Per-image seeds: the noise op draws its standard-normal noise from these when `noise`
    /// is `None` (`sample` does not know the image size, so it stores seeds).
    pub seeds: Option<Vec<u64>>,
}

impl OpParams {
    /// No random parameters (deterministic ops).
    pub fn none() -> Self {
        Self::default()
    }

    /// Fixed signs for every image (e.g. `+1` for all): for replaying or showing an op.
    pub fn with_signs(signs: &[f32], dev: &Device) -> Result<Self> {
        Ok(Self {
            signs: Some(Tensor::new(signs, dev)?),
            ..Self::default()
        })
    }

    /// Fixed relative `(y, x)` centres, one pair per image.
    pub fn with_centers(centers: &[[f32; 2]], dev: &Device) -> Result<Self> {
        let flat: Vec<f32> = centers.iter().flatten().copied().collect();
        Ok(Self {
            centers: Some(Tensor::from_vec(flat, (centers.len(), 2), dev)?),
            ..Self::default()
        })
    }
}

/// `(B,)` random signs, each +1 or -1 with probability 1/2.
pub(crate) fn random_signs(b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let signs: Vec<f32> = (0..b_sz)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    Tensor::from_vec(signs, b_sz, dev)
}

/// `(B, 2)` uniform relative centres in [0, 1).
pub(crate) fn random_centers(b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let c: Vec<f32> = (0..2 * b_sz).map(|_| rng.random::<f32>()).collect();
    Tensor::from_vec(c, (b_sz, 2), dev)
}

/// `b_sz` random per-image seeds.
pub(crate) fn random_seeds(b_sz: usize, rng: &mut StdRng) -> Vec<u64> {
    (0..b_sz).map(|_| rng.random::<u64>()).collect()
}
