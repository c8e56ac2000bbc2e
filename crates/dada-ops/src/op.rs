//! The `AugOp` trait: one differentiable augmentation of a batch of images.
use std::sync::Arc;

use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::{ImageKernel, MagnitudeRange, OpParams};

/// How an op's output depends on its magnitude, for gradient purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MagnitudeGrad {
    /// The op is smooth in its parameter; the gradient is exact.
    Exact,
    /// The op is piecewise constant in its parameter; the gradient is a straight-through estimate.
    StraightThrough,
    /// The op is piecewise constant; the gradient is that of a documented smooth surrogate.
    Surrogate,
    /// The op has no magnitude.
    None,
}

/// How geometric ops sample the source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Nearest neighbour, PIL-exact.
    #[default]
    Nearest,
    /// Bilinear, smooth in the transform parameter.
    Bilinear,
}

/// Which magnitude-gradient estimator an op that is not smooth in its parameter uses
/// (posterize, solarize, nearest-sampled geometric ops, hard-edged cutout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    /// DADA's straight-through estimator: `d out / d m = 1` for every output element
    /// (`out + m - m.detach()`), so the magnitude receives the sum of the upstream gradient.
    StraightThrough,
    /// The gradient of a smooth surrogate of the op, documented per op.
    #[default]
    Surrogate,
}

impl Estimator {
    /// The `MagnitudeGrad` this estimator reports.
    pub fn magnitude_grad(self) -> MagnitudeGrad {
        match self {
            Estimator::StraightThrough => MagnitudeGrad::StraightThrough,
            Estimator::Surrogate => MagnitudeGrad::Surrogate,
        }
    }
}

/// One differentiable augmentation of a batch `(B, C, H, W)`, f32 in [0, 1].
///
/// `apply` is differentiable w.r.t. `images` and `magnitudes` (shape `(B,)`, values in [0, 1]);
/// random parts (signs, cutout centres, noise) are drawn by `sample` beforehand, so `apply` is
/// pure and can be replayed.
pub trait AugOp: Send + Sync + std::fmt::Debug {
    /// Stable snake_case key, e.g. `"shear_x"` (what policy files store).
    fn name(&self) -> &'static str;
    /// Parameter range, `None` for magnitude-free ops.
    fn range(&self) -> Option<MagnitudeRange>;
    /// What the magnitude gradient of this op is.
    fn magnitude_grad(&self) -> MagnitudeGrad;
    /// Draw the per-image random parameters for a batch of `b_sz` images.
    fn sample(&self, b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<OpParams>;
    /// Apply the op to `images (B,C,H,W)` with `magnitudes (B,)` and sampled `params`.
    fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor>;

    /// The same op built from plain candle ops only (runs on any device and dtype).
    ///
    /// Built-in ops use a fused CPU kernel in `apply` for f32 CPU tensors and this path
    /// elsewhere. The default forwards to `apply`.
    fn apply_reference(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        params: &OpParams,
    ) -> Result<Tensor> {
        self.apply(images, magnitudes, params)
    }

    /// A per-image CPU kernel for this op and these params, for images of shape
    /// `(b, c, h, w)`; `None` if the op has none. `weighted_mixture` fuses the kernels of all
    /// ops of a set into one pass over the batch.
    fn kernel(
        &self,
        _params: &OpParams,
        _shape: (usize, usize, usize, usize),
    ) -> Result<Option<Arc<dyn ImageKernel>>> {
        Ok(None)
    }
}
