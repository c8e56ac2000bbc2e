//! Geometric ops: `ShearX`, `ShearY`, `TranslateX`, `TranslateY`, `Rotate` (PIL affine warps,
//! nearest or bilinear sampling, fill 0) and `FlipLR`.
//!
//! This module holds the op types, their `AugOp` impls and the warps' coefficients
//! (`AffineKind`); its `cpu` module holds the fused CPU kernels and `reference` the
//! plain-candle path.
use std::f64::consts::PI;
use std::sync::Arc;

use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, per_image, ImageKernel};
use crate::params::random_signs;
use crate::{AugOp, Estimator, Interpolation, MagnitudeGrad, MagnitudeRange, OpParams};

mod cpu;
mod reference;

use cpu::{fits_kernel_indices, AffineKernel, FlipKernel};
use reference::affine_reference;

macro_rules! affine_op {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            /// Nearest (PIL-exact, the default) or bilinear sampling.
            pub interpolation: Interpolation,
            /// Magnitude-gradient estimator under nearest sampling (bilinear is exact).
            pub estimator: Estimator,
        }

        impl $name {
            /// The op with the given sampling and the default (surrogate) estimator.
            pub fn new(interpolation: Interpolation) -> Self {
                Self { interpolation, estimator: Estimator::default() }
            }

            /// The same op with another magnitude-gradient estimator for nearest sampling.
            pub fn with_estimator(mut self, estimator: Estimator) -> Self {
                self.estimator = estimator;
                self
            }
        }

        impl AugOp for $name {
            fn name(&self) -> &'static str {
                $kind.name()
            }
            fn range(&self) -> Option<MagnitudeRange> {
                Some($kind.range())
            }
            fn magnitude_grad(&self) -> MagnitudeGrad {
                match self.interpolation {
                    Interpolation::Bilinear => MagnitudeGrad::Exact,
                    Interpolation::Nearest => self.estimator.magnitude_grad(),
                }
            }
            fn sample(&self, b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<OpParams> {
                Ok(OpParams { signs: Some(random_signs(b_sz, rng, dev)?), ..OpParams::default() })
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
                affine_reference($kind, self.interpolation, self.estimator, images, magnitudes, params)
            }
            fn kernel(
                &self,
                params: &OpParams,
                shape: (usize, usize, usize, usize),
            ) -> Result<Option<Arc<dyn ImageKernel>>> {
                if !fits_kernel_indices(shape.2, shape.3) {
                    // the kernels index padded planes in i32 / u32: the reference path
                    return Ok(None);
                }
                let signs = per_image(params.signs.as_ref(), shape.0, 1.0, "signs")?;
                Ok(Some(Arc::new(AffineKernel::new($kind, self.interpolation, self.estimator, signs))))
            }
        }
    };
}

affine_op!(
    /// Horizontal shear pivoting on the top-left corner: PIL
    /// `img.transform(size, AFFINE, (1, v, 0, 0, 1, 0), NEAREST, fillcolor=0)`.
    ///
    /// Shear `v = sign * (-0.3 + 0.6 m)` in [-0.3, 0.3] (m = 0.5 is the identity); reads
    /// `params.signs`. Image gradient exact; magnitude gradient exact with bilinear sampling,
    /// the bilinear surrogate (or straight-through) with nearest.
    ShearX,
    AffineKind::ShearX
);
affine_op!(
    /// Vertical shear pivoting on the top-left corner: PIL affine `(1, 0, 0, v, 1, 0)`.
    ///
    /// Shear `v = sign * (-0.3 + 0.6 m)` in [-0.3, 0.3]; gradients as [`ShearX`].
    ShearY,
    AffineKind::ShearY
);
affine_op!(
    /// Horizontal translation by `v * W` pixels: PIL affine `(1, 0, v * W, 0, 1, 0)`.
    ///
    /// `v = sign * (-0.45 + 0.9 m)` in [-0.45, 0.45]; gradients as [`ShearX`].
    TranslateX,
    AffineKind::TranslateX
);
affine_op!(
    /// Vertical translation by `v * H` pixels: PIL affine `(1, 0, 0, 0, 1, v * H)`.
    ///
    /// `v = sign * (-0.45 + 0.9 m)` in [-0.45, 0.45]; gradients as [`ShearX`].
    TranslateY,
    AffineKind::TranslateY
);
affine_op!(
    /// Rotation about the image centre by `v` degrees counter-clockwise: PIL `img.rotate(v)`.
    ///
    /// `v = sign * (-30 + 60 m)` in [-30, 30]; gradients as [`ShearX`].
    Rotate,
    AffineKind::Rotate
);

/// Horizontal flip (magnitude-free): `out[.., x] = in[.., W - 1 - x]`, PIL
/// `ImageOps.mirror`. Image gradient exact, magnitude gradient zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlipLR;

impl FlipLR {
    /// The op.
    pub fn new() -> Self {
        Self
    }
}

impl AugOp for FlipLR {
    fn name(&self) -> &'static str {
        "flip_lr"
    }
    fn range(&self) -> Option<MagnitudeRange> {
        None
    }
    fn magnitude_grad(&self) -> MagnitudeGrad {
        MagnitudeGrad::None
    }
    fn sample(&self, _b_sz: usize, _rng: &mut StdRng, _dev: &Device) -> Result<OpParams> {
        Ok(OpParams::none())
    }
    fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
        dispatch(self, images, magnitudes, params)
    }
    fn apply_reference(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        _: &OpParams,
    ) -> Result<Tensor> {
        let (_, dims) = check_inputs(self.name(), images, magnitudes)?;
        let idx: Vec<u32> = (0..dims.w as u32).rev().collect();
        let idx = Tensor::new(idx.as_slice(), images.device())?;
        images.index_select(&idx, 3)
    }
    fn kernel(
        &self,
        _: &OpParams,
        _: (usize, usize, usize, usize),
    ) -> Result<Option<Arc<dyn ImageKernel>>> {
        Ok(Some(Arc::new(FlipKernel)))
    }
}

/// The five affine warps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AffineKind {
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
}

impl AffineKind {
    fn name(self) -> &'static str {
        match self {
            AffineKind::ShearX => "shear_x",
            AffineKind::ShearY => "shear_y",
            AffineKind::TranslateX => "translate_x",
            AffineKind::TranslateY => "translate_y",
            AffineKind::Rotate => "rotate",
        }
    }

    fn range(self) -> MagnitudeRange {
        let (low, high) = match self {
            AffineKind::ShearX | AffineKind::ShearY => (-0.3, 0.3),
            AffineKind::TranslateX | AffineKind::TranslateY => (-0.45, 0.45),
            AffineKind::Rotate => (-30.0, 30.0),
        };
        MagnitudeRange {
            low,
            high,
            symmetric: true,
        }
    }

    /// PIL's affine coefficients `(a, b, c, d, e, f)` (output pixel centre `(X, Y)` maps to input
    /// `(aX + bY + c, dX + eY + f)`) for parameter `p`, and their derivatives w.r.t. `p`.
    fn coeffs(self, p: f64, h: usize, w: usize) -> ([f64; 6], [f64; 6]) {
        match self {
            AffineKind::ShearX => ([1., p, 0., 0., 1., 0.], [0., 1., 0., 0., 0., 0.]),
            AffineKind::ShearY => ([1., 0., 0., p, 1., 0.], [0., 0., 0., 1., 0., 0.]),
            AffineKind::TranslateX => (
                [1., 0., p * w as f64, 0., 1., 0.],
                [0., 0., w as f64, 0., 0., 0.],
            ),
            AffineKind::TranslateY => (
                [1., 0., 0., 0., 1., p * h as f64],
                [0., 0., 0., 0., 0., h as f64],
            ),
            AffineKind::Rotate => {
                let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
                let theta = p * (-PI / 180.0);
                let (s, c) = (theta.sin(), theta.cos());
                // d theta / d p = -pi / 180; d cos = -sin d theta; d sin = cos d theta.
                let dt = -PI / 180.0;
                let (dc, ds) = (-s * dt, c * dt);
                (
                    [
                        c,
                        s,
                        c * (-cx) + s * (-cy) + cx,
                        -s,
                        c,
                        s * cx + c * (-cy) + cy,
                    ],
                    [
                        dc,
                        ds,
                        dc * (-cx) + ds * (-cy),
                        -ds,
                        dc,
                        ds * cx + dc * (-cy),
                    ],
                )
            }
        }
    }

    /// `coeffs` for a batch of parameters `p (B,)` (f64) as six `(B,)` tensors, with the same
    /// arithmetic as `coeffs` so nearest sampling picks the same pixels on both paths.
    fn coeffs_tensor(self, p: &Tensor, h: usize, w: usize) -> Result<[Tensor; 6]> {
        let ones = p.ones_like()?;
        let zeros = p.zeros_like()?;
        Ok(match self {
            AffineKind::ShearX => [
                ones.clone(),
                p.clone(),
                zeros.clone(),
                zeros,
                ones,
                p.zeros_like()?,
            ],
            AffineKind::ShearY => [
                ones.clone(),
                zeros.clone(),
                zeros.clone(),
                p.clone(),
                ones,
                zeros,
            ],
            AffineKind::TranslateX => {
                let tx = p.affine(w as f64, 0.0)?;
                [ones.clone(), zeros.clone(), tx, zeros.clone(), ones, zeros]
            }
            AffineKind::TranslateY => {
                let ty = p.affine(h as f64, 0.0)?;
                [ones.clone(), zeros.clone(), zeros.clone(), zeros, ones, ty]
            }
            AffineKind::Rotate => {
                let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
                let theta = p.affine(-PI / 180.0, 0.0)?;
                let (s, c) = (theta.sin()?, theta.cos()?);
                let a2 = (c.affine(-cx, 0.0)? + s.affine(-cy, 0.0)?)?.affine(1.0, cx)?;
                let a5 = (s.affine(cx, 0.0)? + c.affine(-cy, 0.0)?)?.affine(1.0, cy)?;
                [c.clone(), s.clone(), a2, s.neg()?, c, a5]
            }
        })
    }
}
