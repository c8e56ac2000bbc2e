//! Per-pixel and histogram ops: `Identity`, `Invert`, `Solarize`, `Posterize`, `AutoContrast`,
//! `Equalize` (PIL `ImageOps`).
use std::sync::Arc;

use candle::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::enhance::{sum8, sum8_pair};
use crate::ops::{per_image4, ste};
use crate::{AugOp, Estimator, MagnitudeGrad, MagnitudeRange, OpParams};

/// Solarize threshold range on the 0..255 scale: `thr = 256 m`.
pub const SOLARIZE_RANGE: MagnitudeRange = MagnitudeRange {
    low: 0.0,
    high: 256.0,
    symmetric: false,
};
/// Posterize bits range: `bits = int(4 + 4 m)`.
pub const POSTERIZE_RANGE: MagnitudeRange = MagnitudeRange {
    low: 4.0,
    high: 8.0,
    symmetric: false,
};
/// Width (in 0..255 levels) of the sigmoid that smooths the solarize threshold in its surrogate.
pub const SOLARIZE_SURROGATE_WIDTH: f32 = 8.0;
/// Solarize compares `255 x >= thr - THRESHOLD_TOLERANCE`, so u8 levels stored as f32 compare
/// exactly like PIL's integer LUT (`i < thr` keeps `i`).
pub const THRESHOLD_TOLERANCE: f32 = 1e-3;
/// AutoContrast leaves a channel unchanged when `max - min` is at most this (PIL: `hi <= lo`).
pub const AUTOCONTRAST_MIN_SPREAD: f32 = 1e-6;

macro_rules! simple_op {
    ($name:ident, $key:expr, $range:expr, $grad:expr) => {
        impl AugOp for $name {
            fn name(&self) -> &'static str {
                $key
            }
            fn range(&self) -> Option<MagnitudeRange> {
                $range
            }
            fn magnitude_grad(&self) -> MagnitudeGrad {
                #[allow(clippy::redundant_closure_call)]
                ($grad)(self)
            }
            fn sample(&self, _b_sz: usize, _rng: &mut StdRng, _dev: &Device) -> Result<OpParams> {
                Ok(OpParams::none())
            }
            fn apply(
                &self,
                images: &Tensor,
                magnitudes: &Tensor,
                params: &OpParams,
            ) -> Result<Tensor> {
                dispatch(self, images, magnitudes, params)
            }
            fn apply_reference(
                &self,
                images: &Tensor,
                magnitudes: &Tensor,
                _: &OpParams,
            ) -> Result<Tensor> {
                check_inputs(self.name(), images, magnitudes)?;
                self.reference(images, magnitudes)
            }
            fn kernel(
                &self,
                _: &OpParams,
                _: (usize, usize, usize, usize),
            ) -> Result<Option<Arc<dyn ImageKernel>>> {
                Ok(Some(Arc::new(PointKernel {
                    op: self.as_point(),
                })))
            }
        }
    };
}

/// The identity (magnitude-free): `out = x`. Gradients: identity, magnitude zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity;

/// Invert (magnitude-free): `out = 1 - x`; PIL `ImageOps.invert`. Image gradient exact (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Invert;

/// Solarize: invert pixels at or above the threshold, `out = x if 255 x < thr else 1 - x`, with
/// `thr = 256 m` in [0, 256] (larger m, weaker effect); PIL `ImageOps.solarize(img, thr)`.
///
/// Image gradient exact (+1 / -1). Magnitude: straight-through, or (default) the surrogate
/// `x + sigmoid((255 x - 256 m) / w) (1 - 2 x)` with `w = SOLARIZE_SURROGATE_WIDTH` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Solarize {
    /// Magnitude-gradient estimator.
    pub estimator: Estimator,
}

/// Posterize: keep the top `bits = int(4 + 4 m)` bits in [4, 8] of each u8 level (pixels are
/// rounded to u8 first; 8 bits leaves the image unchanged); PIL `ImageOps.posterize`.
///
/// Image gradient straight-through (identity). Magnitude: straight-through, or (default) the
/// surrogate "expected truncation loss" `-(2^(8 - b) - 1) / 510` with `b = 4 + 4 m` continuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Posterize {
    /// Magnitude-gradient estimator.
    pub estimator: Estimator,
}

/// AutoContrast (magnitude-free): per channel, stretch `[min, max]` to `[0, 1]`,
/// `out = (x - min) / (max - min)`; PIL `ImageOps.autocontrast` (cutoff 0).
///
/// Image gradient exact, including through `min` and `max` (ties share as in candle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AutoContrast;

/// Equalize (magnitude-free): per channel, PIL's histogram equalization LUT on the u8 levels;
/// PIL `ImageOps.equalize`.
///
/// Image gradient straight-through (identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Equalize;

impl Identity {
    /// The op.
    pub fn new() -> Self {
        Self
    }
    fn as_point(&self) -> PointOp {
        PointOp::Identity
    }
    fn reference(&self, images: &Tensor, _: &Tensor) -> Result<Tensor> {
        Ok(images.clone())
    }
}

impl Invert {
    /// The op.
    pub fn new() -> Self {
        Self
    }
    fn as_point(&self) -> PointOp {
        PointOp::Invert
    }
    fn reference(&self, images: &Tensor, _: &Tensor) -> Result<Tensor> {
        images.affine(-1.0, 1.0)
    }
}

impl Solarize {
    /// The op with the given magnitude-gradient estimator.
    pub fn new(estimator: Estimator) -> Self {
        Self { estimator }
    }
    fn as_point(&self) -> PointOp {
        PointOp::Solarize(self.estimator)
    }
    fn reference(&self, images: &Tensor, magnitudes: &Tensor) -> Result<Tensor> {
        let thr = per_image4(
            &magnitudes.affine(SOLARIZE_RANGE.high as f64, -THRESHOLD_TOLERANCE as f64)?,
        )?;
        let level = images.affine(255.0, 0.0)?;
        let mask = level.broadcast_ge(&thr)?.to_dtype(images.dtype())?.detach();
        // out = x + mask (1 - 2 x)
        let out = (images + (mask * images.affine(-2.0, 1.0)?)?)?;
        match self.estimator {
            Estimator::StraightThrough => out.broadcast_add(&ste(magnitudes)?),
            Estimator::Surrogate => {
                let w = SOLARIZE_SURROGATE_WIDTH as f64;
                let x = images.detach();
                let z = x.affine(255.0 / w, 0.0)?.broadcast_sub(&per_image4(
                    &magnitudes.affine(SOLARIZE_RANGE.high as f64 / w, 0.0)?,
                )?)?;
                let s = (z.neg()?.exp()? + 1.0)?.recip()?;
                let surrogate = (s * x.affine(-2.0, 1.0)?)?;
                out + (&surrogate - surrogate.detach())?
            }
        }
    }
}

impl Posterize {
    /// The op with the given magnitude-gradient estimator.
    pub fn new(estimator: Estimator) -> Self {
        Self { estimator }
    }
    fn as_point(&self) -> PointOp {
        PointOp::Posterize(self.estimator)
    }
    fn reference(&self, images: &Tensor, magnitudes: &Tensor) -> Result<Tensor> {
        let (lo, hi) = (POSTERIZE_RANGE.low as f64, POSTERIZE_RANGE.high as f64);
        let bits = magnitudes
            .detach()
            .affine(hi - lo, lo)?
            .floor()?
            .clamp(lo, hi)?;
        // q = 2^(8 - bits), an exact power of two after rounding.
        let q = per_image4(
            &bits
                .affine(-std::f64::consts::LN_2, 8.0 * std::f64::consts::LN_2)?
                .exp()?
                .round()?,
        )?;
        let full = per_image4(&bits.ge(hi)?.to_dtype(images.dtype())?)?;
        let levels = images
            .detach()
            .affine(255.0, 0.5)?
            .floor()?
            .clamp(0.0, 255.0)?;
        let kept = levels
            .broadcast_div(&q)?
            .floor()?
            .broadcast_mul(&q)?
            .affine(1.0 / 255.0, 0.0)?;
        let hard = (full.broadcast_mul(&images.detach())?
            + full.affine(-1.0, 1.0)?.broadcast_mul(&kept)?)?;
        // Straight-through to the image: value `hard`, gradient identity.
        let out = (hard + (images - images.detach())?)?;
        match self.estimator {
            Estimator::StraightThrough => out.broadcast_add(&ste(magnitudes)?),
            Estimator::Surrogate => {
                // -(2^(8 - b) - 1) / 510 with b = 4 + 4 m = -(exp((4 - 4 m) ln 2) - 1) / 510.
                let ln2 = std::f64::consts::LN_2;
                let loss = magnitudes
                    .affine(-(hi - lo) * ln2, (8.0 - lo) * ln2)?
                    .exp()?
                    .affine(-1.0 / 510.0, 1.0 / 510.0)?;
                let loss = per_image4(&loss)?;
                out.broadcast_add(&(&loss - loss.detach())?)
            }
        }
    }
}

impl AutoContrast {
    /// The op.
    pub fn new() -> Self {
        Self
    }
    fn as_point(&self) -> PointOp {
        PointOp::AutoContrast
    }
    fn reference(&self, images: &Tensor, _: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        let flat = images.reshape((b, c, h * w))?;
        let lo = flat.min_keepdim(2)?.unsqueeze(3)?;
        let hi = flat.max_keepdim(2)?.unsqueeze(3)?;
        let spread = (&hi - &lo)?;
        let flat_spread = spread
            .le(AUTOCONTRAST_MIN_SPREAD as f64)?
            .to_dtype(images.dtype())?;
        let stretched = images
            .broadcast_sub(&lo)?
            .broadcast_div(&(spread + &flat_spread)?)?;
        images.broadcast_mul(&flat_spread)?
            + stretched.broadcast_mul(&flat_spread.affine(-1.0, 1.0)?)?
    }
}

impl Equalize {
    /// The op.
    pub fn new() -> Self {
        Self
    }
    fn as_point(&self) -> PointOp {
        PointOp::Equalize
    }
    fn reference(&self, images: &Tensor, _: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        let n = (h * w) as f64;
        let dt = images.dtype();
        let x = images.detach();
        let levels = x
            .affine(255.0, 0.5)?
            .floor()?
            .clamp(0.0, 255.0)?
            .reshape((b, c, h * w))?;
        let idx = levels.to_dtype(DType::U32)?;
        let hist = Tensor::zeros((b, c, 256), dt, images.device())?.scatter_add(
            &idx,
            &levels.ones_like()?,
            2,
        )?;
        let nonzero = hist.gt(0.0)?.to_dtype(dt)?.sum_keepdim(2)?;
        let top = levels.max_keepdim(2)?.to_dtype(DType::U32)?;
        let last = hist.gather(&top, 2)?;
        // (n - last) // 255, robust to the inexact 1/255: integer + 0.5 never rounds across a multiple.
        let step = last
            .affine(-1.0, n + 0.5)?
            .affine(1.0 / 255.0, 0.0)?
            .floor()?;
        let unchanged =
            ((nonzero.le(1.0)?.to_dtype(dt)? + step.le(0.0)?.to_dtype(dt)?)?.clamp(0.0, 1.0))?;
        let safe_step = (&step + &unchanged)?;
        let half = safe_step.affine(0.5, 0.0)?.floor()?;
        let before = (hist.cumsum(2)? - &hist)?;
        let lut = before
            .broadcast_add(&half)?
            .broadcast_div(&safe_step)?
            .floor()?
            .clamp(0.0, 255.0)?;
        let eq = lut
            .gather(&idx, 2)?
            .affine(1.0 / 255.0, 0.0)?
            .reshape((b, c, h, w))?;
        let unchanged = unchanged.unsqueeze(3)?;
        let hard =
            (x.broadcast_mul(&unchanged)? + eq.broadcast_mul(&unchanged.affine(-1.0, 1.0)?)?)?;
        hard + (images - images.detach())?
    }
}

simple_op!(Identity, "identity", None, |_: &Identity| {
    MagnitudeGrad::None
});
simple_op!(Invert, "invert", None, |_: &Invert| MagnitudeGrad::None);
simple_op!(
    Solarize,
    "solarize",
    Some(SOLARIZE_RANGE),
    |s: &Solarize| s.estimator.magnitude_grad()
);
simple_op!(
    Posterize,
    "posterize",
    Some(POSTERIZE_RANGE),
    |s: &Posterize| s.estimator.magnitude_grad()
);
simple_op!(AutoContrast, "auto_contrast", None, |_: &AutoContrast| {
    MagnitudeGrad::None
});
simple_op!(Equalize, "equalize", None, |_: &Equalize| {
    MagnitudeGrad::None
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PointOp {
    Identity,
    Invert,
    Solarize(Estimator),
    Posterize(Estimator),
    AutoContrast,
    Equalize,
}

struct PointKernel {
    op: PointOp,
}

/// Posterize bits for magnitude `m` (4..=8).
fn posterize_bits(m: f32) -> u32 {
    POSTERIZE_RANGE
        .param(m, 1.0)
        .floor()
        .clamp(POSTERIZE_RANGE.low, POSTERIZE_RANGE.high) as u32
}

/// The u8 level of `x` (round half up, clamped).
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; `max` then `min` maps it to 0
fn level(x: f32) -> i32 {
    // Truncation is floor for the non-negative argument; NaN maps to 0 (`max` drops it).
    let v = (x * 255.0 + 0.5).max(0.0).min(255.0);
    // SAFETY: v is finite and in [0, 255] (an unchecked cast, unlike `as`, vectorizes; to i32,
    // not u32, because x86-64 before AVX-512 converts only signed integers in one instruction)
    unsafe { v.to_int_unchecked::<i32>() }
}

/// PIL's equalize LUT for one channel from its u8 levels, or `None` when PIL leaves the channel
/// unchanged.
fn equalize_lut(levels: &[u8]) -> Option<[f32; 256]> {
    // four interleaved histograms: consecutive pixels of equal level would otherwise wait on
    // each other's increment
    let mut sub = [[0u32; 256]; 4];
    let mut chunks = levels.chunks_exact(4);
    for c in &mut chunks {
        for (h, &l) in sub.iter_mut().zip(c) {
            h[l as usize] += 1;
        }
    }
    for &l in chunks.remainder() {
        sub[0][l as usize] += 1;
    }
    let mut hist = [0u32; 256];
    for (l, h) in hist.iter_mut().enumerate() {
        *h = sub[0][l] + sub[1][l] + sub[2][l] + sub[3][l];
    }
    let nonzero = hist.iter().filter(|&&h| h > 0).count();
    let top = hist.iter().rposition(|&h| h > 0)?;
    let step = (levels.len() as u32 - hist[top]) / 255;
    if nonzero <= 1 || step == 0 {
        return None;
    }
    // PIL's `lut[l] = min(255, n_l / step)` with `n_l = step / 2 + sum of hist below l`: the
    // prefix sums first, then the integer quotients as f64 divisions (exact: the quotient of two
    // integers below 2^32 is never within f64 rounding of an integer it is not), which vectorize
    let mut n = [0f64; 256];
    let mut acc = step / 2;
    for (nl, h) in n.iter_mut().zip(hist) {
        *nl = acc as f64;
        acc += h;
    }
    let inv = step as f64;
    let mut lut = [0f32; 256];
    for (l, nl) in lut.iter_mut().zip(n) {
        *l = (nl / inv).floor().min(255.0) as f32 / 255.0;
    }
    Some(lut)
}

/// `e^x` for `x` in about [-87, 87], branch-free (vectorizes, unlike libm's `expf`): `2^n e^r`
/// with `r` in [-ln 2 / 2, ln 2 / 2] and a degree-6 Taylor polynomial, relative error below 1e-6.
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    // (max / min, not clamp: NaN becomes -87, so `n` is always finite)
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(87.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // SAFETY: |n| <= 126 after the clamp. (Rust's saturating `as i32` kept callers' loops
    // scalar.)
    let ni = unsafe { n.to_int_unchecked::<i32>() };
    // Cody-Waite: ln 2 in two parts, so r keeps its precision for large |n|
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Per channel `(min, max)` and whether autocontrast stretches it.
fn channel_range(plane: &[f32]) -> (f32, f32, bool) {
    // separate passes for the minimum and the maximum: one 8-lane accumulator each, which the
    // compiler keeps in a vector register (together, it shuffled lanes between them)
    let mut chunks = plane.chunks_exact(8);
    let mut lo = [f32::INFINITY; 8];
    for c in &mut chunks {
        for l in 0..8 {
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
        }
    }
    let mut hi = [f32::NEG_INFINITY; 8];
    for c in plane.chunks_exact(8) {
        for l in 0..8 {
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    let (mut lo, mut hi) = lo
        .iter()
        .zip(&hi)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (l, h)| {
            (a.min(*l), b.max(*h))
        });
    for &x in chunks.remainder() {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    (lo, hi, hi - lo > AUTOCONTRAST_MIN_SPREAD)
}

impl ImageKernel for PointKernel {
    fn forward(&self, _: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        match self.op {
            PointOp::Identity => dst.copy_from_slice(src),
            PointOp::Invert => dst.iter_mut().zip(src).for_each(|(d, x)| *d = 1.0 - x),
            PointOp::Solarize(_) => {
                let thr = SOLARIZE_RANGE.param(magnitude, 1.0) + -THRESHOLD_TOLERANCE;
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d = if x * 255.0 >= thr { 1.0 - x } else { x };
                }
            }
            PointOp::Posterize(_) => {
                let bits = posterize_bits(magnitude);
                if bits >= 8 {
                    dst.copy_from_slice(src);
                    return;
                }
                // (level >> shift) << shift, in exact float arithmetic (q is a power of two).
                let q = (1u32 << (8 - bits)) as f32;
                let (inv_q, scale) = (1.0 / q, q / 255.0);
                for (d, &x) in dst.iter_mut().zip(src) {
                    let l = level(x) as f32;
                    *d = (l * inv_q).floor() * scale;
                }
            }
            PointOp::AutoContrast => {
                for (d, s) in dst
                    .chunks_exact_mut(dims.plane())
                    .zip(src.chunks_exact(dims.plane()))
                {
                    let (lo, hi, stretch) = channel_range(s);
                    if stretch {
                        let inv = 1.0 / (hi - lo);
                        d.iter_mut().zip(s).for_each(|(d, x)| *d = (x - lo) * inv);
                    } else {
                        d.copy_from_slice(s);
                    }
                }
            }
            PointOp::Equalize => {
                // the u8 levels once (vectorized), then histogram and LUT lookups by u8 index
                // (no bounds checks)
                let levels: Vec<u8> = src.iter().map(|&x| level(x) as u8).collect();
                for ((d, s), lv) in dst
                    .chunks_exact_mut(dims.plane())
                    .zip(src.chunks_exact(dims.plane()))
                    .zip(levels.chunks_exact(dims.plane()))
                {
                    match equalize_lut(lv) {
                        Some(lut) => d
                            .iter_mut()
                            .zip(lv)
                            .for_each(|(d, &l)| *d = lut[l as usize]),
                        None => d.copy_from_slice(s),
                    }
                }
            }
        }
    }

    fn recompute_output(&self) -> bool {
        // equalize's output needs a histogram per channel: cheaper to keep
        !matches!(self.op, PointOp::Equalize)
    }

    fn backward(
        &self,
        _: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        self.backward_impl(magnitude, src, dims, grad_out, scale, grad_src, None)
    }

    fn backward_with_dot(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        tmp: &mut [f32],
    ) -> (f32, f32) {
        if matches!(self.op, PointOp::Posterize(_) | PointOp::Equalize) {
            // their outputs need the levels: the forward into tmp
            let out_dot = self.output_dot(index, magnitude, src, dims, grad_out, tmp);
            let dm = self.backward_impl(magnitude, src, dims, grad_out, scale, grad_src, None);
            return (dm, out_dot);
        }
        let mut out_dot = 0.0;
        let dm = self.backward_impl(
            magnitude,
            src,
            dims,
            grad_out,
            scale,
            grad_src,
            Some(&mut out_dot),
        );
        (dm, out_dot)
    }
}

impl PointKernel {
    /// [`ImageKernel::backward`], and `sum(grad_out * out)` into `out_dot` where given, for the
    /// ops whose output is a cheap function of what the backward pass already computes
    /// (identity, invert, solarize, autocontrast; not posterize or equalize).
    #[allow(clippy::too_many_arguments)]
    fn backward_impl(
        &self,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        out_dot: Option<&mut f32>,
    ) -> f32 {
        let n = grad_out.len();
        let (g, x) = (&grad_out[..n], &src[..n]);
        let mut dot = 0f32;
        let want_dot = out_dot.is_some();
        let straight_through = |gs: &mut [f32]| {
            gs.iter_mut()
                .zip(grad_out)
                .for_each(|(v, g)| *v += scale * g)
        };
        let dm = match self.op {
            PointOp::Identity | PointOp::Equalize => {
                straight_through(grad_src);
                if want_dot {
                    dot = sum8(n, |i| g[i] * x[i]);
                }
                0.0
            }
            PointOp::Invert => {
                grad_src
                    .iter_mut()
                    .zip(grad_out)
                    .for_each(|(v, g)| *v -= scale * g);
                if want_dot {
                    dot = sum8(n, |i| g[i] * (1.0 - x[i]));
                }
                0.0
            }
            PointOp::Solarize(estimator) => {
                let thr = SOLARIZE_RANGE.param(magnitude, 1.0) + -THRESHOLD_TOLERANCE;
                let gs = &mut grad_src[..n];
                for i in 0..n {
                    gs[i] += if x[i] * 255.0 >= thr {
                        -scale * g[i]
                    } else {
                        scale * g[i]
                    };
                }
                if want_dot {
                    dot = sum8(n, |i| {
                        g[i] * if x[i] * 255.0 >= thr {
                            1.0 - x[i]
                        } else {
                            x[i]
                        }
                    });
                }
                match estimator {
                    Estimator::StraightThrough => sum8(n, |i| g[i]),
                    Estimator::Surrogate => {
                        // d/dm [x + s (1 - 2x)], s = sigmoid((255 x - 256 m) / w):
                        // s (1 - s) (-256 / w) (1 - 2 x). z is clamped to +-30, where the
                        // derivative is below 1e-13 (branch-free, so the loop vectorizes).
                        let w = SOLARIZE_SURROGATE_WIDTH;
                        let t = SOLARIZE_RANGE.high * magnitude;
                        let k = -SOLARIZE_RANGE.high / w;
                        sum8(n, |i| {
                            let z = ((x[i] * 255.0 - t) / w).clamp(-30.0, 30.0);
                            let s = 1.0 / (1.0 + exp_approx(-z));
                            g[i] * s * (1.0 - s) * k * (1.0 - 2.0 * x[i])
                        })
                    }
                }
            }
            PointOp::Posterize(estimator) => {
                straight_through(grad_src);
                let total = sum8(grad_out.len(), |i| grad_out[i]);
                match estimator {
                    Estimator::StraightThrough => total,
                    Estimator::Surrogate => {
                        // d/dm [-(2^(8 - b) - 1) / 510], b = 4 + 4 m: 2^(4 - 4 m) 4 ln 2 / 510.
                        let span = POSTERIZE_RANGE.high - POSTERIZE_RANGE.low;
                        let q = ((8.0 - POSTERIZE_RANGE.low - span * magnitude)
                            * std::f32::consts::LN_2)
                            .exp();
                        total * q * span * std::f32::consts::LN_2 / 510.0
                    }
                }
            }
            PointOp::AutoContrast => {
                let plane = dims.plane();
                for c in 0..dims.c {
                    let s = &src[c * plane..(c + 1) * plane];
                    let g = &grad_out[c * plane..(c + 1) * plane];
                    let gs = &mut grad_src[c * plane..(c + 1) * plane];
                    let (lo, hi, stretch) = channel_range(s);
                    if !stretch {
                        gs.iter_mut().zip(g).for_each(|(v, g)| *v += scale * g);
                        if want_dot {
                            dot += sum8(plane, |i| g[i] * s[i]);
                        }
                        continue;
                    }
                    // out = (x - lo) / d, d = hi - lo: d/dx = 1/d, d/dlo = (out - 1)/d,
                    // d/dhi = -out/d; sum(g out) = a / d with a = sum(g (x - lo)).
                    let d = hi - lo;
                    let inv = 1.0 / d;
                    let m = s.len();
                    let (s, g, gs) = (&s[..m], &g[..m], &mut gs[..m]);
                    let (a, total) = sum8_pair(m, |i| (g[i] * (s[i] - lo), g[i]));
                    let glo = (a * inv - total) * inv;
                    let ghi = -a * inv * inv;
                    dot += a * inv;
                    for i in 0..m {
                        let at_lo = if s[i] == lo { glo } else { 0.0 };
                        let at_hi = if s[i] == hi { ghi } else { 0.0 };
                        gs[i] += scale * (g[i] * inv + at_lo + at_hi);
                    }
                }
                0.0
            }
        };
        if let Some(d) = out_dot {
            *d = dot;
        }
        dm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_approx_is_accurate_and_total() {
        for i in -8700..=8700 {
            let x = i as f32 / 100.0;
            let (a, e) = (exp_approx(x) as f64, (x as f64).exp());
            assert!((a - e).abs() <= 1e-6 * e, "exp({x}) = {a}, expected {e}");
        }
        // outside the range it saturates at the ends (NaN at the low end), never UB or inf
        assert_eq!(exp_approx(1e9), exp_approx(87.0));
        assert_eq!(exp_approx(-1e9), exp_approx(-87.0));
        assert_eq!(exp_approx(f32::NAN), exp_approx(-87.0));
    }
}
