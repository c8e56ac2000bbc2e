//! Geometric ops: `ShearX`, `ShearY`, `TranslateX`, `TranslateY`, `Rotate` (PIL affine warps,
//! nearest or bilinear sampling, fill 0) and `FlipLR`.
use std::f64::consts::PI;
use std::sync::Arc;

use candle::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, per_image, ImageDims, ImageKernel};
use crate::ops::ste;
use crate::params::random_signs;
use crate::{AugOp, Estimator, Interpolation, MagnitudeGrad, MagnitudeRange, OpParams};

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
                let signs = per_image(params.signs.as_ref(), shape.0, 1.0, "signs")?;
                Ok(Some(Arc::new(AffineKernel {
                    kind: $kind,
                    interpolation: self.interpolation,
                    estimator: self.estimator,
                    signs,
                })))
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
    fn apply_reference(&self, images: &Tensor, magnitudes: &Tensor, _: &OpParams) -> Result<Tensor> {
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
        MagnitudeRange { low, high, symmetric: true }
    }

    /// PIL's affine coefficients `(a, b, c, d, e, f)` (output pixel centre `(X, Y)` maps to input
    /// `(aX + bY + c, dX + eY + f)`) for parameter `p`, and their derivatives w.r.t. `p`.
    fn coeffs(self, p: f64, h: usize, w: usize) -> ([f64; 6], [f64; 6]) {
        match self {
            AffineKind::ShearX => ([1., p, 0., 0., 1., 0.], [0., 1., 0., 0., 0., 0.]),
            AffineKind::ShearY => ([1., 0., 0., p, 1., 0.], [0., 0., 0., 1., 0., 0.]),
            AffineKind::TranslateX => {
                ([1., 0., p * w as f64, 0., 1., 0.], [0., 0., w as f64, 0., 0., 0.])
            }
            AffineKind::TranslateY => {
                ([1., 0., 0., 0., 1., p * h as f64], [0., 0., 0., 0., 0., h as f64])
            }
            AffineKind::Rotate => {
                let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
                let theta = p * (-PI / 180.0);
                let (s, c) = (theta.sin(), theta.cos());
                // d theta / d p = -pi / 180; d cos = -sin d theta; d sin = cos d theta.
                let dt = -PI / 180.0;
                let (dc, ds) = (-s * dt, c * dt);
                (
                    [c, s, c * (-cx) + s * (-cy) + cx, -s, c, s * cx + c * (-cy) + cy],
                    [dc, ds, dc * (-cx) + ds * (-cy), -ds, dc, ds * cx + dc * (-cy)],
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
            AffineKind::ShearX => [ones.clone(), p.clone(), zeros.clone(), zeros, ones, p.zeros_like()?],
            AffineKind::ShearY => [ones.clone(), zeros.clone(), zeros.clone(), p.clone(), ones, zeros],
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

/// Nearest source pixel (PIL `COORD`: truncation, negative is outside) or `None` (fill).
#[inline]
fn nearest_index(u: f64, v: f64, dims: ImageDims) -> Option<usize> {
    if u < 0.0 || v < 0.0 {
        return None;
    }
    let (xi, yi) = (u as usize, v as usize);
    (xi < dims.w && yi < dims.h).then_some(yi * dims.w + xi)
}

/// The four bilinear taps at input coordinates `(u, v)` (pixel centres at `i + 0.5`), zero
/// outside the image.
struct Taps {
    idx: [usize; 4],
    weight: [f32; 4],
    valid: [bool; 4],
    fx: f32,
    fy: f32,
}

impl Taps {
    #[inline]
    fn new(u: f64, v: f64, dims: ImageDims) -> Self {
        let (ux, vy) = (u - 0.5, v - 0.5);
        let (x0, y0) = (ux.floor(), vy.floor());
        let (fx, fy) = (ux - x0, vy - y0);
        let mut t = Taps { idx: [0; 4], weight: [0.0; 4], valid: [false; 4], fx: fx as f32, fy: fy as f32 };
        for (k, (dx, dy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
            let (xi, yi) = (x0 + dx as f64, y0 + dy as f64);
            let valid = xi >= 0.0 && yi >= 0.0 && xi < dims.w as f64 && yi < dims.h as f64;
            let wx = if dx == 0 { 1.0 - fx } else { fx };
            let wy = if dy == 0 { 1.0 - fy } else { fy };
            t.valid[k] = valid;
            if valid {
                t.idx[k] = yi as usize * dims.w + xi as usize;
                t.weight[k] = (wx * wy) as f32;
            }
        }
        t
    }

    #[inline]
    fn sample(&self, plane: &[f32]) -> f32 {
        let mut acc = 0f32;
        for k in 0..4 {
            if self.valid[k] {
                acc += plane[self.idx[k]] * self.weight[k];
            }
        }
        acc
    }

    #[inline]
    fn value(&self, plane: &[f32], k: usize) -> f32 {
        if self.valid[k] {
            plane[self.idx[k]]
        } else {
            0.0
        }
    }

    /// `(d sample / d u, d sample / d v)`.
    #[inline]
    fn deriv(&self, plane: &[f32]) -> (f32, f32) {
        let (v00, v10, v01, v11) =
            (self.value(plane, 0), self.value(plane, 1), self.value(plane, 2), self.value(plane, 3));
        let (fx, fy) = (self.fx, self.fy);
        let du = (1.0 - fy) * (v10 - v00) + fy * (v11 - v01);
        let dv = (1.0 - fx) * (v01 - v00) + fx * (v11 - v10);
        (du, dv)
    }
}

struct AffineKernel {
    kind: AffineKind,
    interpolation: Interpolation,
    estimator: Estimator,
    signs: Vec<f32>,
}

impl ImageKernel for AffineKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let p = self.kind.range().param_f64(magnitude, self.signs[index]);
        let (a, _) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        for y in 0..dims.h {
            let yy = y as f64 + 0.5;
            for x in 0..dims.w {
                let xx = x as f64 + 0.5;
                let u = a[0] * xx + a[1] * yy + a[2];
                let v = a[3] * xx + a[4] * yy + a[5];
                let o = y * dims.w + x;
                match self.interpolation {
                    Interpolation::Nearest => match nearest_index(u, v, dims) {
                        Some(q) => (0..dims.c).for_each(|c| dst[c * plane + o] = src[c * plane + q]),
                        None => (0..dims.c).for_each(|c| dst[c * plane + o] = 0.0),
                    },
                    Interpolation::Bilinear => {
                        let taps = Taps::new(u, v, dims);
                        for c in 0..dims.c {
                            dst[c * plane + o] = taps.sample(&src[c * plane..(c + 1) * plane]);
                        }
                    }
                }
            }
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
        let sign = self.signs[index];
        let range = self.kind.range();
        let p = range.param_f64(magnitude, sign);
        let (a, da) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        let straight_through =
            self.interpolation == Interpolation::Nearest && self.estimator == Estimator::StraightThrough;
        // d out / d p = d out / d u * d u / d p + d out / d v * d v / d p (bilinear derivative;
        // the surrogate under nearest sampling).
        let mut dp = 0f64;
        for y in 0..dims.h {
            let yy = y as f64 + 0.5;
            let mut row = 0f32;
            for x in 0..dims.w {
                let xx = x as f64 + 0.5;
                let u = a[0] * xx + a[1] * yy + a[2];
                let v = a[3] * xx + a[4] * yy + a[5];
                let o = y * dims.w + x;
                if self.interpolation == Interpolation::Nearest {
                    if let Some(q) = nearest_index(u, v, dims) {
                        for c in 0..dims.c {
                            grad_src[c * plane + q] += scale * grad_out[c * plane + o];
                        }
                    }
                    if straight_through {
                        for c in 0..dims.c {
                            row += grad_out[c * plane + o];
                        }
                        continue;
                    }
                }
                let taps = Taps::new(u, v, dims);
                let du_dp = (da[0] * xx + da[1] * yy + da[2]) as f32;
                let dv_dp = (da[3] * xx + da[4] * yy + da[5]) as f32;
                for c in 0..dims.c {
                    let g = grad_out[c * plane + o];
                    let src_c = &src[c * plane..(c + 1) * plane];
                    if self.interpolation == Interpolation::Bilinear {
                        let gs = &mut grad_src[c * plane..(c + 1) * plane];
                        for k in 0..4 {
                            if taps.valid[k] {
                                gs[taps.idx[k]] += scale * g * taps.weight[k];
                            }
                        }
                    }
                    let (du, dv) = taps.deriv(src_c);
                    row += g * (du * du_dp + dv * dv_dp);
                }
            }
            dp += row as f64;
        }
        if straight_through {
            dp as f32
        } else {
            (dp * range.dparam_dm(sign) as f64) as f32
        }
    }
}

struct FlipKernel;

impl ImageKernel for FlipKernel {
    fn forward(&self, _: usize, _: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        for (d, s) in dst.chunks_exact_mut(dims.w).zip(src.chunks_exact(dims.w)) {
            for (dv, sv) in d.iter_mut().zip(s.iter().rev()) {
                *dv = *sv;
            }
        }
    }

    fn backward(
        &self,
        _: usize,
        _: f32,
        _: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        for (gs, g) in grad_src.chunks_exact_mut(dims.w).zip(grad_out.chunks_exact(dims.w)) {
            for (gv, go) in gs.iter_mut().zip(g.iter().rev()) {
                *gv += scale * go;
            }
        }
        0.0
    }
}

/// The plain-candle affine warp (any device and dtype; coordinates in f64).
fn affine_reference(
    kind: AffineKind,
    interpolation: Interpolation,
    estimator: Estimator,
    images: &Tensor,
    magnitudes: &Tensor,
    params: &OpParams,
) -> Result<Tensor> {
    let (b, _, h, w) = images.dims4()?;
    let dev = images.device();
    let signs = match &params.signs {
        Some(s) => s.to_dtype(DType::F64)?,
        None => Tensor::ones(b, DType::F64, dev)?,
    };
    let range = kind.range();
    let m = magnitudes.to_dtype(DType::F64)?;
    let p = (m.affine(range.high as f64 - range.low as f64, range.low as f64)? * signs)?;
    let a = kind.coeffs_tensor(&p, h, w)?;
    let xs: Vec<f64> = (0..h * w).map(|i| (i % w) as f64 + 0.5).collect();
    let ys: Vec<f64> = (0..h * w).map(|i| (i / w) as f64 + 0.5).collect();
    let xs = Tensor::from_vec(xs, (1, h * w), dev)?;
    let ys = Tensor::from_vec(ys, (1, h * w), dev)?;
    let col = |t: &Tensor| t.unsqueeze(1);
    let u = col(&a[0])?
        .broadcast_mul(&xs)?
        .broadcast_add(&col(&a[1])?.broadcast_mul(&ys)?)?
        .broadcast_add(&col(&a[2])?)?;
    let v = col(&a[3])?
        .broadcast_mul(&xs)?
        .broadcast_add(&col(&a[4])?.broadcast_mul(&ys)?)?
        .broadcast_add(&col(&a[5])?)?;
    match interpolation {
        Interpolation::Bilinear => bilinear_sample(images, &u, &v),
        Interpolation::Nearest => {
            let out = nearest_sample(images, &u, &v)?;
            match estimator {
                Estimator::Surrogate => {
                    let s = bilinear_sample(&images.detach(), &u, &v)?;
                    out + (&s - s.detach())?
                }
                Estimator::StraightThrough => out.broadcast_add(&ste(magnitudes)?),
            }
        }
    }
}

/// 1 where `0 <= xi < w` and `0 <= yi < h` (integer-valued f64 `(B, HW)`), else 0.
fn in_bounds(xi: &Tensor, yi: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let f = |t: Tensor| t.to_dtype(DType::F64);
    let vx = (f(xi.ge(0f64)?)? * f(xi.lt(w as f64)?)?)?;
    let vy = (f(yi.ge(0f64)?)? * f(yi.lt(h as f64)?)?)?;
    vx * vy
}

/// `images (B,C,H,W)` gathered at integer pixel `(xi, yi)` (f64 `(B, HW)`), 0 outside.
fn gather_pixels(images: &Tensor, xi: &Tensor, yi: &Tensor) -> Result<(Tensor, Tensor)> {
    let (b, c, h, w) = images.dims4()?;
    let valid = in_bounds(xi, yi, h, w)?;
    let idx = (yi.clamp(0f64, (h - 1) as f64)?.affine(w as f64, 0.0)?
        + xi.clamp(0f64, (w - 1) as f64)?)?
    .to_dtype(DType::U32)?
    .unsqueeze(1)?
    .broadcast_as((b, c, h * w))?
    .contiguous()?;
    let vals = images.reshape((b, c, h * w))?.gather(&idx, 2)?;
    Ok((vals, valid.unsqueeze(1)?))
}

/// Nearest sampling at input coordinates `(u, v)` (PIL: truncate, fill 0).
fn nearest_sample(images: &Tensor, u: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (vals, valid) = gather_pixels(images, &u.floor()?, &v.floor()?)?;
    vals.broadcast_mul(&valid.to_dtype(images.dtype())?)?.reshape((b, c, h, w))
}

/// Bilinear sampling at input coordinates `(u, v)` with zero padding; differentiable in the
/// images and in `(u, v)`.
fn bilinear_sample(images: &Tensor, u: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (ux, vy) = (u.affine(1.0, -0.5)?, v.affine(1.0, -0.5)?);
    let (x0, y0) = (ux.floor()?, vy.floor()?);
    let (fx, fy) = ((&ux - &x0)?, (&vy - &y0)?);
    let mut acc: Option<Tensor> = None;
    for (dx, dy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
        let (vals, valid) = gather_pixels(images, &x0.affine(1.0, dx)?, &y0.affine(1.0, dy)?)?;
        let wx = if dx == 0.0 { fx.affine(-1.0, 1.0)? } else { fx.clone() };
        let wy = if dy == 0.0 { fy.affine(-1.0, 1.0)? } else { fy.clone() };
        let weight = (wx * wy)?.unsqueeze(1)?.broadcast_mul(&valid)?.to_dtype(images.dtype())?;
        let term = vals.broadcast_mul(&weight)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    acc.expect("four taps").reshape((b, c, h, w))
}
