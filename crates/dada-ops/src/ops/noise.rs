//! `Noise`: additive Gaussian noise with standard deviation up to 0.1 (the tutorial's extra op).
use std::sync::Arc;

use candle::{bail, DType, Device, Result, Tensor};
use rand::rngs::SmallRng;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::enhance::clamp_grad;
use crate::ops::per_image4;
use crate::params::random_seeds;
use crate::{AugOp, MagnitudeGrad, MagnitudeRange, OpParams};

/// Noise standard deviation range: `std = 0.1 m`.
pub const NOISE_RANGE: MagnitudeRange = MagnitudeRange {
    low: 0.0,
    high: 0.1,
    symmetric: false,
};

/// Additive Gaussian noise, `out = clip(x + 0.1 m n)` with `n` standard normal.
///
/// Reads `params.noise` `(B, C, H, W)`, or draws `n` from `params.seeds` (one seed per image, a
/// `SmallRng` per image; what `sample` stores). No PIL reference. Image and magnitude gradients exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Noise;

impl Noise {
    /// The op.
    pub fn new() -> Self {
        Self
    }
}

/// The standard-normal noise `(B, C, H, W)` the op adds, as a flat vector.
pub fn noise_values(params: &OpParams, shape: (usize, usize, usize, usize)) -> Result<Vec<f32>> {
    let (b, c, h, w) = shape;
    if let Some(n) = &params.noise {
        if n.dims() != [b, c, h, w] {
            bail!(
                "noise: params.noise must be {:?}, got {:?}",
                [b, c, h, w],
                n.dims()
            )
        }
        return n.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
    }
    let Some(seeds) = &params.seeds else {
        bail!("noise: params need `noise` or `seeds` (draw them with `sample`)")
    };
    if seeds.len() != b {
        bail!("noise: need {b} seeds, got {}", seeds.len())
    }
    let n = c * h * w;
    let mut out = vec![0f32; b * n];
    if n > 0 {
        out.par_chunks_mut(n)
            .zip(seeds.par_iter())
            .for_each(|(chunk, &seed)| {
                let mut rng = SmallRng::seed_from_u64(seed);
                chunk
                    .iter_mut()
                    .for_each(|z| *z = StandardNormal.sample(&mut rng));
            });
    }
    Ok(out)
}

impl AugOp for Noise {
    fn name(&self) -> &'static str {
        "noise"
    }
    fn range(&self) -> Option<MagnitudeRange> {
        Some(NOISE_RANGE)
    }
    fn magnitude_grad(&self) -> MagnitudeGrad {
        MagnitudeGrad::Exact
    }
    fn sample(&self, b_sz: usize, rng: &mut StdRng, _dev: &Device) -> Result<OpParams> {
        Ok(OpParams {
            seeds: Some(random_seeds(b_sz, rng)),
            ..OpParams::default()
        })
    }
    fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
        dispatch(self, images, magnitudes, params)
    }
    fn apply_reference(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        params: &OpParams,
    ) -> Result<Tensor> {
        check_inputs(self.name(), images, magnitudes)?;
        let noise = match &params.noise {
            Some(n) => n.to_dtype(images.dtype())?,
            None => Tensor::from_vec(
                noise_values(params, images.dims4()?)?,
                images.shape(),
                images.device(),
            )?
            .to_dtype(images.dtype())?,
        };
        let std = per_image4(&magnitudes.affine(NOISE_RANGE.high as f64, 0.0)?)?;
        (images + noise.broadcast_mul(&std)?)?.clamp(0f32, 1f32)
    }
    fn kernel(
        &self,
        params: &OpParams,
        shape: (usize, usize, usize, usize),
    ) -> Result<Option<Arc<dyn ImageKernel>>> {
        Ok(Some(Arc::new(NoiseKernel {
            noise: noise_values(params, shape)?,
        })))
    }
}

struct NoiseKernel {
    noise: Vec<f32>,
}

impl ImageKernel for NoiseKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let std = magnitude * NOISE_RANGE.high;
        let n = &self.noise[index * dims.len()..(index + 1) * dims.len()];
        for ((d, x), z) in dst.iter_mut().zip(src).zip(n) {
            *d = (x + z * std).clamp(0.0, 1.0);
        }
    }

    fn backward(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        let std = magnitude * NOISE_RANGE.high;
        let n = &self.noise[index * dims.len()..(index + 1) * dims.len()];
        let mut dm = 0f32;
        for (((v, g), x), z) in grad_src.iter_mut().zip(grad_out).zip(src).zip(n) {
            let gm = g * clamp_grad(x + z * std);
            *v += scale * gm;
            dm += gm * z;
        }
        dm * NOISE_RANGE.high
    }
}
