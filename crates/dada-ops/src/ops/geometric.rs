//! Geometric ops: `ShearX`, `ShearY`, `TranslateX`, `TranslateY`, `Rotate` (PIL affine warps,
//! nearest or bilinear sampling, fill 0) and `FlipLR`.
use std::cell::RefCell;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

use candle::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, per_image, ImageDims, ImageKernel};
use crate::ops::enhance::sum8;
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

/// PIL's nearest-neighbour affine sampling: 16.16 fixed point (`affine_fixed`) unless the
/// warp is a pure scale/translation (`ImagingScaleAffine`) or the coordinates could overflow,
/// where PIL uses doubles and truncation (`COORD`).
enum NearestMap {
    Fixed([i64; 6]),
    Float([f64; 6]),
}

impl NearestMap {
    fn new(a: [f64; 6], dims: ImageDims) -> Self {
        let check = |x: f64, y: f64| {
            (x * a[0] + y * a[1] + a[2]).abs() < 32768.0
                && (x * a[3] + y * a[4] + a[5]).abs() < 32768.0
        };
        let (w, h) = (dims.w as f64, dims.h as f64);
        let scale_only = a[1] == 0.0 && a[3] == 0.0;
        if scale_only || !(check(0.0, 0.0) && check(w, h) && check(0.0, h) && check(w, 0.0)) {
            return NearestMap::Float(a);
        }
        let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
        NearestMap::Fixed([
            fix(a[0]),
            fix(a[1]),
            fix(a[2] + a[0] * 0.5 + a[1] * 0.5),
            fix(a[3]),
            fix(a[4]),
            fix(a[5] + a[3] * 0.5 + a[4] * 0.5),
        ])
    }
}

/// Bilinear taps of every output pixel, as indices into a source plane padded with a zero
/// border of one pixel (`(h + 2) x (w + 2)`): taps outside the image read the border, so
/// sampling and its derivatives are branch-free. Pixel centres are at `i + 0.5`; a pixel
/// whose four taps all lie outside the image points at index 0 with `mask = 0`.
#[derive(Default)]
struct TapField {
    /// Padded index of the tap `(x0, y0)`; the others are `+1`, `+pw`, `+pw + 1`.
    idx: Vec<u32>,
    fx: Vec<f32>,
    fy: Vec<f32>,
    mask: Vec<f32>,
    /// Padded row width, `w + 2`.
    pw: usize,
}

/// The taps of up to 64 consecutive pixels of one row (see [`tap_blocks`]).
struct TapBlock {
    n: usize,
    idx: [u32; 64],
    fx: [f32; 64],
    fy: [f32; 64],
    mask: [f32; 64],
}

/// Walks the bilinear taps of the warp `a` on images of `dims` in blocks of up to 64 pixels of
/// a row, calling `f(y, x0, block)` for each: [`TapField`]'s definition (padded index of the tap
/// `(x0, y0)`, fractions, inside mask; index 0 and mask 0 outside), shared by
/// [`TapField::fill`] and [`TapField::fill_weights`].
#[inline(always)]
fn tap_blocks(a: &[f64; 6], dims: ImageDims, mut f: impl FnMut(usize, usize, &TapBlock)) {
    let (h, w, pw) = (dims.h, dims.w, dims.w + 2);
    let mut b = TapBlock {
        n: 0,
        idx: [0; 64],
        fx: [0.0; 64],
        fy: [0.0; 64],
        mask: [0.0; 64],
    };
    let (mut us, mut vs) = ([0f32; 64], [0f32; 64]);
    let (wi, hi, pwi) = (w as i32, h as i32, pw as i32);
    let (wf, hf) = (w as f32, h as f32);
    for y in 0..h {
        let yy = y as f64 + 0.5;
        let (bu, bv) = (a[1] * yy, a[4] * yy);
        for x0 in (0..w).step_by(64) {
            let nx = (w - x0).min(64);
            // the same arithmetic as PIL's and the reference path's: a0 X + a1 Y + a2 in f64
            // (through i32, which converts to floats in one instruction: `fits_kernel_indices`)
            for x in 0..nx {
                let xx = (x0 + x) as i32 as f64 + 0.5;
                us[x] = (a[0] * xx + bu + a[2]) as f32 - 0.5;
                vs[x] = (a[3] * xx + bv + a[5]) as f32 - 0.5;
            }
            b.n = nx;
            for x in 0..nx {
                let (u, v) = (us[x], vs[x]);
                let (fu, fv) = (u.floor(), v.floor());
                // clamped into [-2, size], where -2 and size are both outside (NaN -> -2)
                let (xc, yc) = (fu.max(-2.0).min(wf), fv.max(-2.0).min(hf));
                // SAFETY: finite and within i32 after the clamp (`fits_kernel_indices`)
                let (xi, yi) =
                    unsafe { (xc.to_int_unchecked::<i32>(), yc.to_int_unchecked::<i32>()) };
                let inside = (xi >= -1) & (xi < wi) & (yi >= -1) & (yi < hi);
                // (outside, the fractions of an infinite coordinate would be NaN)
                b.fx[x] = if inside { u - fu } else { 0.0 };
                b.fy[x] = if inside { v - fv } else { 0.0 };
                b.mask[x] = if inside { 1.0 } else { 0.0 };
                b.idx[x] = if inside {
                    ((yi + 1) * pwi + xi + 1) as u32
                } else {
                    0
                };
            }
            f(y, x0, &b);
        }
    }
}

impl TapField {
    /// Overwrites the field with the taps of the warp `a` on images of `dims` (buffers are
    /// reused: every element is written).
    fn fill(&mut self, a: &[f64; 6], dims: ImageDims) {
        let (w, n) = (dims.w, dims.plane());
        for v in [&mut self.fx, &mut self.fy, &mut self.mask] {
            v.resize(n, 0.0);
        }
        self.idx.resize(n, 0);
        self.pw = w + 2;
        let (idx, fx, fy, mask) = (&mut self.idx, &mut self.fx, &mut self.fy, &mut self.mask);
        tap_blocks(a, dims, |y, x0, b| {
            let r = y * w + x0..y * w + x0 + b.n;
            idx[r.clone()].copy_from_slice(&b.idx[..b.n]);
            fx[r.clone()].copy_from_slice(&b.fx[..b.n]);
            fy[r.clone()].copy_from_slice(&b.fy[..b.n]);
            mask[r].copy_from_slice(&b.mask[..b.n]);
        });
    }

    /// [`TapField::fill`] and [`magnitude_weights`] in one pass, for when only the tap indices
    /// and the derivative's weights are needed (nearest sampling's surrogate): writes `idx` and
    /// `e`, not `fx`, `fy`, `mask`. The same arithmetic, so the same values.
    fn fill_weights(&mut self, a: &[f64; 6], da: [f32; 6], dims: ImageDims, e: &mut [Vec<f32>; 4]) {
        let (w, n) = (dims.w, dims.plane());
        self.idx.resize(n, 0);
        self.pw = w + 2;
        for v in e.iter_mut() {
            v.resize(n, 0.0);
        }
        let [e0, e1, e2, e3] = e;
        let idx = &mut self.idx;
        tap_blocks(a, dims, |y, x0, b| {
            let yy = y as f32 + 0.5;
            let (du_row, dv_row) = (da[1] * yy + da[2], da[4] * yy + da[5]);
            let r = y * w + x0..y * w + x0 + b.n;
            idx[r.clone()].copy_from_slice(&b.idx[..b.n]);
            let (e0, e1, e2, e3) = (
                &mut e0[r.clone()],
                &mut e1[r.clone()],
                &mut e2[r.clone()],
                &mut e3[r],
            );
            for x in 0..b.n {
                let xx = (x0 + x) as i32 as f32 + 0.5;
                let m = b.mask[x];
                let (du, dv) = ((da[0] * xx + du_row) * m, (da[3] * xx + dv_row) * m);
                [e0[x], e1[x], e2[x], e3[x]] = tap_weights(b.fx[x], b.fy[x], du, dv);
            }
        });
    }
}

/// A nearest-sampling table: per output pixel, its source pixel as an index into the image
/// plane (`FILL`, which is past any plane, for fill); per output row, `(lo, hi, s)` where the
/// row's pixels `lo..hi` read `s..s + hi - lo` consecutively and the rest are fill (every row of
/// shear_x and of the translations), so that row is a copy instead of a gather. The ops read and
/// write the image planes directly: no padded copy, no padded gradient to copy back.
struct NearestTable {
    idx: Vec<u32>,
    runs: Vec<Option<(usize, usize, usize)>>,
    /// The image shape the indices are for (a cached table is reused only for this shape).
    dims: (usize, usize),
}

/// A [`NearestTable`] entry for an output pixel filled with 0 (no plane is this large:
/// `fits_kernel_indices`).
const FILL: u32 = u32::MAX;

impl NearestTable {
    fn new(idx: Vec<u32>, dims: ImageDims) -> Self {
        let runs = idx
            .chunks_exact(dims.w.max(1))
            .map(|row| {
                // vectorizable passes (no early exit but the first one, which is short): a row
                // is a run when its `count` inside pixels start at `lo` and read consecutively
                let count = row.iter().filter(|&&q| q != FILL).count();
                let Some(lo) = row.iter().position(|&q| q != FILL) else {
                    return Some((0, 0, 0));
                };
                let (hi, s) = (lo + count, row[lo]);
                let consecutive = row[lo..hi]
                    .iter()
                    .zip(s..)
                    .fold(true, |ok, (&t, want)| ok & (t == want));
                consecutive.then_some((lo, hi, s as usize))
            })
            .collect();
        Self {
            idx,
            runs,
            dims: (dims.h, dims.w),
        }
    }

    /// Per output row: its table entries and its run, if it is one.
    fn rows(&self, w: usize) -> impl Iterator<Item = (&[u32], Option<(usize, usize, usize)>)> {
        self.idx
            .chunks_exact(w.max(1))
            .zip(self.runs.iter().copied())
    }

    /// `dst = out` of `N` channels (`src` and `dst` hold the `N` planes back to back), each
    /// row's indices loaded once for all of them.
    fn gather<const N: usize>(&self, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let (w, plane) = (dims.w, dims.plane());
        let (srcs, mut dsts) = (planes::<N>(src, plane), planes_mut::<N>(dst, plane));
        for (y, (row, run)) in self.rows(w).enumerate() {
            let r = y * w..(y + 1) * w;
            match run {
                Some((lo, hi, s)) => {
                    for (d, x) in dsts.iter_mut().zip(srcs) {
                        let d = &mut d[r.clone()];
                        d[..lo].fill(0.0);
                        d[lo..hi].copy_from_slice(&x[s..s + hi - lo]);
                        d[hi..].fill(0.0);
                    }
                }
                None => {
                    let mut drows = dsts.each_mut().map(|d| &mut d[r.clone()][..row.len()]);
                    for (o, &q) in row.iter().enumerate() {
                        let q = q as usize;
                        for (d, x) in drows.iter_mut().zip(srcs) {
                            d[o] = if q < plane { x[q] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }

    /// `grad_src += scale * g` through the table for `N` channels (`g` and `grad_src` hold the
    /// `N` planes back to back), each row's indices loaded once for all of them.
    fn scatter<const N: usize>(
        &self,
        g: &[f32],
        scale: f32,
        dims: ImageDims,
        grad_src: &mut [f32],
    ) {
        let (w, plane) = (dims.w, dims.plane());
        let (gs, mut dsts) = (planes::<N>(g, plane), planes_mut::<N>(grad_src, plane));
        for (y, (row, run)) in self.rows(w).enumerate() {
            let r = y * w..(y + 1) * w;
            match run {
                Some((lo, hi, s)) => {
                    for (d, g) in dsts.iter_mut().zip(gs) {
                        let g = &g[r.start + lo..r.start + hi];
                        for (d, &gv) in d[s..s + hi - lo].iter_mut().zip(g) {
                            *d += scale * gv;
                        }
                    }
                }
                None => {
                    let grows = gs.map(|g| &g[r.clone()][..row.len()]);
                    for (o, &q) in row.iter().enumerate() {
                        let q = q as usize;
                        if q < plane {
                            for (d, g) in dsts.iter_mut().zip(grows) {
                                d[q] += scale * g[o];
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`NearestTable::scatter`] of one channel, returning `sum(g * out)` with `out` read from
    /// the plane `src` in the same pass: the weight gradient of a mixture.
    fn scatter_dot(
        &self,
        src: &[f32],
        g: &[f32],
        scale: f32,
        dims: ImageDims,
        grad_src: &mut [f32],
    ) -> f32 {
        let plane = dims.plane();
        let (grad_src, src) = (&mut grad_src[..plane], &src[..plane]);
        let mut total = 0f32;
        for ((row, run), gr) in self.rows(dims.w).zip(g.chunks_exact(dims.w)) {
            total += match run {
                Some((lo, hi, s)) => {
                    let gr = &gr[lo..hi];
                    for (d, &gv) in grad_src[s..s + hi - lo].iter_mut().zip(gr) {
                        *d += scale * gv;
                    }
                    crate::kernel::dot(gr, &src[s..s + hi - lo])
                }
                None => {
                    let mut acc = [0f32; 8];
                    for (x, (&q, &gv)) in row.iter().zip(gr).enumerate() {
                        let q = q as usize;
                        if q < plane {
                            grad_src[q] += scale * gv;
                            acc[x % 8] += gv * src[q];
                        }
                    }
                    acc.iter().sum()
                }
            };
        }
        total
    }

    /// `sum(g * out)` of one channel, with `out` read from its plane `src`.
    fn dot(&self, src: &[f32], g: &[f32], dims: ImageDims) -> f32 {
        let src = &src[..dims.plane()];
        let mut total = 0f32;
        for ((row, run), gr) in self.rows(dims.w).zip(g.chunks_exact(dims.w)) {
            total += match run {
                Some((lo, hi, s)) => crate::kernel::dot(&gr[lo..hi], &src[s..s + hi - lo]),
                None => {
                    let gr = &gr[..row.len()];
                    sum8(row.len(), |x| {
                        gr[x] * src.get(row[x] as usize).copied().unwrap_or(0.0)
                    })
                }
            };
        }
        total
    }
}

/// The first `N` planes of `plane` elements of `buf`.
fn planes<const N: usize>(buf: &[f32], plane: usize) -> [&[f32]; N] {
    std::array::from_fn(|c| &buf[c * plane..(c + 1) * plane])
}

/// [`planes`], mutable.
fn planes_mut<const N: usize>(buf: &mut [f32], plane: usize) -> [&mut [f32]; N] {
    let mut chunks = buf.chunks_exact_mut(plane);
    std::array::from_fn(|_| chunks.next().expect("N planes"))
}

/// `sum(grad_out * out)` over every channel for the nearest-sampled output of `table`.
fn nearest_dot(table: &NearestTable, src: &[f32], dims: ImageDims, grad_out: &[f32]) -> f32 {
    let plane = dims.plane();
    src.chunks_exact(plane)
        .zip(grad_out.chunks_exact(plane))
        .map(|(x, g)| table.dot(x, g, dims))
        .sum()
}

/// Per-thread buffers of the geometric kernels, reused from image to image: no allocation or
/// zeroing per image (the padded planes' borders stay zero; their interiors are overwritten).
#[derive(Default)]
struct Scratch {
    taps: TapField,
    /// Per-pixel weights of the magnitude derivative, `d sample / d p = sum_k v_k e_k`.
    e: [Vec<f32>; 4],
    /// Every channel of the current image, zero-padded (see [`Scratch::pad`]).
    pads: Vec<f32>,
    /// The image gradient of the current image in zero-padded planes (bilinear sampling).
    grads: Vec<f32>,
    /// A three-channel image, zero-padded, as one quad per padded pixel (see [`quad_dp`]).
    quad: Vec<f32>,
    quad_dims: Option<ImageDims>,
    /// The upstream gradient of a three-channel image as one quad per pixel.
    gquad: Vec<f32>,
    /// Whether `grads` is all zero: the backward pass zeroes what it touched as it copies the
    /// gradient out, instead of a memset of the whole buffer per image.
    grads_zero: bool,
    pads_dims: Option<ImageDims>,
}

impl Scratch {
    /// Copies every channel of `image` into the interior of its own zero-bordered padded plane
    /// in `self.pads`.
    fn pad(&mut self, image: &[f32], dims: ImageDims) {
        let (pw, pl) = (dims.w + 2, padded_len(dims));
        if self.pads_dims != Some(dims) {
            self.pads = vec![0f32; dims.c * pl];
            self.pads_dims = Some(dims);
        }
        for (plane, pad) in image
            .chunks_exact(dims.plane())
            .zip(self.pads.chunks_exact_mut(pl))
        {
            for (y, row) in plane.chunks_exact(dims.w).enumerate() {
                pad[(y + 1) * pw + 1..(y + 1) * pw + 1 + dims.w].copy_from_slice(row);
            }
        }
    }

    /// The quads of [`quad_dp`]: a three-channel `image` zero-padded into `self.quad` and
    /// `grad_out` into `self.gquad`.
    fn fill_quads(&mut self, image: &[f32], grad_out: &[f32], dims: ImageDims) {
        debug_assert_eq!(dims.c, 3);
        let (plane, pw) = (dims.plane(), dims.w + 2);
        if self.quad_dims != Some(dims) {
            self.quad = vec![0f32; 4 * padded_len(dims)];
            self.quad_dims = Some(dims);
        }
        interleave3(image, plane, dims.w, &mut self.quad, |y| (y + 1) * pw + 1);
        self.gquad.resize(4 * plane, 0.0);
        interleave3(grad_out, plane, dims.w, &mut self.gquad, |y| y * dims.w);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` on this thread's [`Scratch`].
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// Whether images of `h x w` fit the geometric kernels' index arithmetic: padded-plane indices
/// in `i32` (so every image up to about 46,000 x 46,000 pixels); larger ones take the
/// plain-candle path.
fn fits_kernel_indices(h: usize, w: usize) -> bool {
    (h + 2)
        .checked_mul(w + 2)
        .is_some_and(|n| n < i32::MAX as usize)
}

/// Elements of one zero-padded plane, `(h + 2) (w + 2)`.
fn padded_len(dims: ImageDims) -> usize {
    (dims.h + 2) * (dims.w + 2)
}

/// The weights `e_k` of the four taps `(v00, v01, v10, v11)` in `d sample / d p = sum_k v_k e_k`,
/// for fractions `(fx, fy)` and coordinate derivatives `du = d u / d p`, `dv = d v / d p`.
#[inline(always)]
fn tap_weights(fx: f32, fy: f32, du: f32, dv: f32) -> [f32; 4] {
    [
        -(1.0 - fy) * du - (1.0 - fx) * dv,
        (1.0 - fy) * du - fx * dv,
        -fy * du + (1.0 - fx) * dv,
        fy * du + fx * dv,
    ]
}

/// The per-pixel weights `e_k` of the bilinear derivative of the warp w.r.t. its parameter `p`
/// (`da` = d coefficients / d p): `d sample / d p = sum_k v_k e_k` with `v_k` the four taps
/// `(v00, v01, v10, v11)`, from `d/du = (1 - fy)(v01 - v00) + fy (v11 - v10)` and
/// `d/dv = (1 - fx)(v10 - v00) + fx (v11 - v01)`, each times the coordinate's derivative.
#[inline(never)]
fn magnitude_weights(taps: &TapField, da: [f32; 6], dims: ImageDims, e: &mut [Vec<f32>; 4]) {
    let [e0, e1, e2, e3] = e;
    for y in 0..dims.h {
        let yy = y as f32 + 0.5;
        let (du_row, dv_row) = (da[1] * yy + da[2], da[4] * yy + da[5]);
        let r = y * dims.w..(y + 1) * dims.w;
        let (fx, fy, m) = (
            &taps.fx[r.clone()],
            &taps.fy[r.clone()],
            &taps.mask[r.clone()],
        );
        let (e0, e1, e2, e3) = (
            &mut e0[r.clone()],
            &mut e1[r.clone()],
            &mut e2[r.clone()],
            &mut e3[r],
        );
        for x in 0..dims.w {
            let xx = x as i32 as f32 + 0.5;
            let (du, dv) = ((da[0] * xx + du_row) * m[x], (da[3] * xx + dv_row) * m[x]);
            [e0[x], e1[x], e2[x], e3[x]] = tap_weights(fx[x], fy[x], du, dv);
        }
    }
}

/// `sum_o g[o] sum_k v_k(o) e_k(o)` over one padded plane: one channel's share of
/// `d out / d p` against the upstream gradient `g`.
#[inline(never)]
fn channel_dp(pad: &[f32], pw: usize, idx: &[u32], e: &[Vec<f32>; 4], g: &[f32]) -> f32 {
    let n = g.len();
    let (idx, e0, e1, e2, e3) = (&idx[..n], &e[0][..n], &e[1][..n], &e[2][..n], &e[3][..n]);
    sum8(n, |o| {
        // SAFETY: a TapField index of this size into one padded plane
        let v = unsafe { taps4(pad, *idx.get_unchecked(o) as usize, pw) };
        g[o] * (v[0] * e0[o] + v[1] * e1[o] + v[2] * e2[o] + v[3] * e3[o])
    })
}

/// `sum_o g[o] d out[o] / d p` of the bilinear derivative, summed over channels, for the warps
/// that move pixels along one axis: shear_x and translate_x (`u = x + t(y)`, `v = y`) and
/// translate_y (`u = x`, `v = y + t`). Their taps in a row are consecutive and their fractions
/// constant, so each row is a difference of two contiguous slices instead of four gathers per
/// pixel. The same values as [`TapField`] + [`magnitude_weights`] + [`channel_dp`] (the same
/// coordinate arithmetic); `None` for the other kinds.
fn axis_dp(
    kind: AffineKind,
    a: &[f64; 6],
    da: [f32; 6],
    pads: &[f32],
    dims: ImageDims,
    grad_out: &[f32],
) -> Option<f64> {
    let (h, w, pw) = (dims.h, dims.w, dims.w + 2);
    let (plane, pl) = (dims.plane(), padded_len(dims));
    let mut acc = [0f32; 8];
    // every channel's row y, pixels x0..x1: k * sum_x g[x] (pad[q1 + x] - pad[q0 + x])
    let add_row =
        |acc: &mut [f32; 8], k: f32, y: usize, x0: usize, x1: usize, q0: usize, q1: usize| {
            for c in 0..dims.c {
                let g = &grad_out[c * plane + y * w + x0..c * plane + y * w + x1];
                let pad = &pads[c * pl..(c + 1) * pl];
                acc_diff(acc, k, g, &pad[q0..q0 + g.len()], &pad[q1..q1 + g.len()]);
            }
        };
    match kind {
        AffineKind::ShearX | AffineKind::TranslateX => {
            // v = y exactly, fy = 0: d out / d p = du (v01 - v00), du constant over a row
            let (wi, wf) = (w as i32, w as f32);
            for y in 0..h {
                let yy = y as f64 + 0.5;
                let bu = a[1] * yy;
                // TapField's coordinate: u(x) = f32(a0 X + bu + a2) - 0.5, X = x + 0.5
                let u = |x: usize| (a[0] * (x as f64 + 0.5) + bu + a[2]) as f32 - 0.5;
                let du = da[1] * (y as f32 + 0.5) + da[2];
                let row_base = (y + 1) * pw + 1;
                match uniform_offset(a[0], bu + a[2], w, &u) {
                    Some(k) => {
                        // inside where xi = x + k lies in [-1, w - 1]
                        let x0 = (-1 - k).clamp(0, w as i64) as usize;
                        let x1 = (w as i64 - k).clamp(x0 as i64, w as i64) as usize;
                        if x0 < x1 {
                            let q = (row_base as i64 + x0 as i64 + k) as usize;
                            add_row(&mut acc, du, y, x0, x1, q, q + 1);
                        }
                    }
                    None => {
                        for x in 0..w {
                            let fu = u(x).floor();
                            // SAFETY: finite and within i32 after the clamp
                            // (`fits_kernel_indices`)
                            let xi = unsafe { fu.max(-2.0).min(wf).to_int_unchecked::<i32>() };
                            if xi >= -1 && xi < wi {
                                let i = (row_base as i64 + xi as i64) as usize;
                                add_row(&mut acc, du, y, x, x + 1, i, i + 1);
                            }
                        }
                    }
                }
            }
        }
        AffineKind::TranslateY => {
            // u = x exactly, fx = 0: d out / d p = dv (v10 - v00), dv constant
            let (hi, hf) = (h as i32, h as f32);
            let dv = da[5];
            for y in 0..h {
                let bv = a[4] * (y as f64 + 0.5);
                // TapField's `a3 X + bv + a5` with a3 = 0
                let v = (bv + a[5]) as f32 - 0.5;
                // SAFETY: finite and within i32 after the clamp (`fits_kernel_indices`)
                let yi = unsafe { v.floor().max(-2.0).min(hf).to_int_unchecked::<i32>() };
                if yi >= -1 && yi < hi {
                    let q = (yi + 1) as usize * pw + 1;
                    add_row(&mut acc, dv, y, 0, w, q, q + pw);
                }
            }
        }
        AffineKind::ShearY | AffineKind::Rotate => return None,
    }
    Some(acc.iter().map(|&v| v as f64).sum())
}

/// `acc[i mod 8] += k g[i] (p1[i] - p0[i])` (vectorizes; equal lengths).
#[inline(always)]
fn acc_diff(acc: &mut [f32; 8], k: f32, g: &[f32], p0: &[f32], p1: &[f32]) {
    let n = g.len();
    let (p0, p1) = (&p0[..n], &p1[..n]);
    let (cg, c0, c1) = (g.chunks_exact(8), p0.chunks_exact(8), p1.chunks_exact(8));
    let (rg, r0, r1) = (cg.remainder(), c0.remainder(), c1.remainder());
    for ((g, p0), p1) in cg.zip(c0).zip(c1) {
        for l in 0..8 {
            acc[l] += k * g[l] * (p1[l] - p0[l]);
        }
    }
    for (l, ((g, p0), p1)) in rg.iter().zip(r0).zip(r1).enumerate() {
        acc[l] += k * g * (p1 - p0);
    }
}

/// The row's constant `floor(u(x)) - x` when TapField's f32 coordinates `u(x)` (`a0 = 1`,
/// `u(x) = f32(x + 0.5 + c) - 0.5`) floor to consecutive pixels across the whole row, else
/// `None`. Without rounding the offset is `floor(c)`; f32 rounding can move a coordinate by at
/// most half an ulp, so when `c` lies farther than that from an integer the offset is certain,
/// and otherwise every pixel is checked.
fn uniform_offset(a0: f64, c: f64, w: usize, u: &impl Fn(usize) -> f32) -> Option<i64> {
    if a0 != 1.0 || !c.is_finite() || c.abs() > 1e6 {
        return None;
    }
    let frac = c - c.floor();
    // generous: a few f32 ulps at the row's largest coordinate, plus the f64 sum's error
    let margin = 4.0 * f32::EPSILON as f64 * (c.abs() + w as f64 + 1.0);
    if frac > margin && frac < 1.0 - margin {
        return Some(c.floor() as i64);
    }
    let k0 = (u(0).floor() - 0.0) as i64;
    (0..w)
        .all(|x| u(x).floor() as i64 - x as i64 == k0)
        .then_some(k0)
}

/// [`channel_dp`] of three channels in one pass, on channel-interleaved planes (see
/// [`Scratch::fill_quads`]): `quad` holds the zero-padded image as one `[c0, c1, c2, 0]` quad
/// per padded pixel and `gquad` the upstream gradient as one quad per pixel. A pixel's taps
/// `(x0, y0)` and `(x0 + 1, y0)` are then eight consecutive floats, and so are the two below:
/// two vector loads instead of twelve scalar ones. With `VERTICAL`, the warp keeps every
/// pixel's column (`u = x`, so `fx = 0` and `du = 0`: shear_y), the weights of the right-hand
/// taps are zero, and only the two left-hand quads are read.
#[inline(never)]
fn quad_dp<const VERTICAL: bool>(
    quad: &[f32],
    pw: usize,
    idx: &[u32],
    e: &[Vec<f32>; 4],
    gquad: &[f32],
) -> f32 {
    let n = idx.len();
    let (e0, e1, e2, e3) = (&e[0][..n], &e[1][..n], &e[2][..n], &e[3][..n]);
    let gquad = &gquad[..4 * n];
    let mut acc = [0f32; 8];
    for o in 0..n {
        let i = idx[o] as usize;
        // a TapField index is at most h pw + w, so the quads up to `i + pw + 1` are inside
        // the padded plane of (h + 2) pw quads
        assert!(4 * (i + pw) + 8 <= quad.len());
        // SAFETY: checked just above
        let (t, b): (&[f32; 8], &[f32; 8]) = unsafe {
            (
                &*(quad.as_ptr().add(4 * i) as *const [f32; 8]),
                &*(quad.as_ptr().add(4 * (i + pw)) as *const [f32; 8]),
            )
        };
        let g = &gquad[4 * o..4 * o + 4];
        if VERTICAL {
            let (w0, w2) = (e0[o], e2[o]);
            for l in 0..4 {
                acc[l] += (t[l] * w0 + b[l] * w2) * g[l];
            }
            continue;
        }
        let (w0, w1, w2, w3) = (e0[o], e1[o], e2[o], e3[o]);
        for l in 0..4 {
            acc[l] += (t[l] * w0 + b[l] * w2) * g[l];
            acc[4 + l] += (t[4 + l] * w1 + b[4 + l] * w3) * g[l];
        }
    }
    acc.iter().sum()
}

/// Writes three planes (`planes`, `n` pixels of `w`-wide rows each) as one `[c0, c1, c2, 0]`
/// quad per pixel into `quad`, row `y` starting at quad `row_start(y)`.
fn interleave3(
    planes: &[f32],
    n: usize,
    w: usize,
    quad: &mut [f32],
    row_start: impl Fn(usize) -> usize,
) {
    let (p0, p1, p2) = (&planes[..n], &planes[n..2 * n], &planes[2 * n..3 * n]);
    let rows = p0
        .chunks_exact(w)
        .zip(p1.chunks_exact(w))
        .zip(p2.chunks_exact(w));
    for (y, ((r0, r1), r2)) in rows.enumerate() {
        let q = &mut quad[4 * row_start(y)..4 * (row_start(y) + w)];
        for (x, d) in q.chunks_exact_mut(4).enumerate() {
            d[0] = r0[x];
            d[1] = r1[x];
            d[2] = r2[x];
            d[3] = 0.0;
        }
    }
}

/// The four taps of a [`TapField`] pixel in one padded plane: `(v00, v01, v10, v11)` (`v_yx`).
///
/// # Safety
/// `i` must come from a `TapField` of this image size and `pad` be one padded plane of it:
/// `i <= h pw + w`, so `i + pw + 1 < (h + 2) pw`.
#[inline(always)]
unsafe fn taps4(pad: &[f32], i: usize, pw: usize) -> [f32; 4] {
    debug_assert!(i + pw + 1 < pad.len());
    [
        *pad.get_unchecked(i),
        *pad.get_unchecked(i + 1),
        *pad.get_unchecked(i + pw),
        *pad.get_unchecked(i + pw + 1),
    ]
}

struct AffineKernel {
    kind: AffineKind,
    interpolation: Interpolation,
    estimator: Estimator,
    signs: Vec<f32>,
    /// Nearest tables built by `forward`, per image, keyed by the magnitude's bits: the
    /// backward pass of the same image takes its table instead of building it again.
    tables: Vec<Mutex<Option<(u32, NearestTable)>>>,
}

impl AffineKernel {
    fn new(
        kind: AffineKind,
        interpolation: Interpolation,
        estimator: Estimator,
        signs: Vec<f32>,
    ) -> Self {
        let tables = if interpolation == Interpolation::Nearest {
            (0..signs.len()).map(|_| Mutex::new(None)).collect()
        } else {
            Vec::new()
        };
        Self {
            kind,
            interpolation,
            estimator,
            signs,
            tables,
        }
    }

    /// Source pixel of every output pixel, PIL's nearest rule, as an index into the image plane
    /// (`FILL` for fill).
    fn nearest_table(a: [f64; 6], dims: ImageDims) -> NearestTable {
        let mut table = vec![FILL; dims.plane()];
        let (w, h) = (dims.w as i64, dims.h as i64);
        match NearestMap::new(a, dims) {
            NearestMap::Fixed(f) => {
                // PIL's `affine_fixed`: `(f2 + y f1 + x f0) >> 16`; where a row's sums stay well
                // inside i32 (always for images up to a few thousand pixels), in i32 with an
                // arithmetic shift (branch-free: the loop vectorizes), else in i64
                let (wi, hi) = (w as i32, h as i32);
                let fits = |v: i64| v.abs() < (1 << 30);
                for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                    let (xs0, ys0) = (f[2] + y as i64 * f[1], f[5] + y as i64 * f[4]);
                    let last = dims.w as i64 - 1;
                    let (xs1, ys1) = (xs0 + last * f[0], ys0 + last * f[3]);
                    if [xs0, ys0, xs1, ys1, f[0], f[3]].into_iter().all(fits) {
                        // linear in x, so every sum lies between the row's ends
                        let (mut xs, mut ys, fx, fy) =
                            (xs0 as i32, ys0 as i32, f[0] as i32, f[3] as i32);
                        for t in row.iter_mut() {
                            let (xi, yi) = (xs >> 16, ys >> 16);
                            let inside = (xi >= 0) & (yi >= 0) & (xi < wi) & (yi < hi);
                            *t = if inside { (yi * wi + xi) as u32 } else { FILL };
                            xs = xs.wrapping_add(fx);
                            ys = ys.wrapping_add(fy);
                        }
                        continue;
                    }
                    let (mut xs, mut ys) = (xs0, ys0);
                    for t in row.iter_mut() {
                        let (xi, yi) = (xs >> 16, ys >> 16);
                        if xi >= 0 && yi >= 0 && xi < w && yi < h {
                            *t = (yi * w + xi) as u32;
                        }
                        xs += f[0];
                        ys += f[3];
                    }
                }
            }
            NearestMap::Float(a) => {
                // PIL's `COORD`: `u = a0 X + a1 Y + a2` in doubles, truncated, fill below 0
                // (branch-free: the loop vectorizes)
                let (wf, hf, wi) = (dims.w as f64, dims.h as f64, dims.w as i32);
                if a[1] == 0.0 && a[3] == 0.0 {
                    // u depends on x alone and v on y alone (the translations): the columns'
                    // sources once, then each row's. `a1 Y` is a zero of a1's sign for every
                    // pixel centre Y > 0, so `a1 * 0.5` gives the same sums bit for bit.
                    let cols: Vec<Option<i32>> = (0..dims.w)
                        .map(|x| {
                            let u = a[0] * (x as i32 as f64 + 0.5) + a[1] * 0.5 + a[2];
                            ((u >= 0.0) & (u < wf)).then_some(u as i32)
                        })
                        .collect();
                    for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                        let v = a[3] * 0.5 + a[4] * (y as i32 as f64 + 0.5) + a[5];
                        if !((v >= 0.0) & (v < hf)) {
                            continue; // left as fill
                        }
                        let base = v as i32 * wi;
                        for (t, c) in row.iter_mut().zip(&cols) {
                            *t = c.map_or(FILL, |xi| (base + xi) as u32);
                        }
                    }
                    return NearestTable::new(table, dims);
                }
                for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                    let yy = y as f64 + 0.5;
                    for (x, t) in row.iter_mut().enumerate() {
                        let xx = x as i32 as f64 + 0.5;
                        let u = a[0] * xx + a[1] * yy + a[2];
                        let v = a[3] * xx + a[4] * yy + a[5];
                        let inside = (u >= 0.0) & (v >= 0.0) & (u < wf) & (v < hf);
                        // SAFETY: clamped into [0, size], finite (NaN -> 0)
                        let (xi, yi) = unsafe {
                            (
                                u.max(0.0).min(wf).to_int_unchecked::<i32>(),
                                v.max(0.0).min(hf).to_int_unchecked::<i32>(),
                            )
                        };
                        *t = if inside { (yi * wi + xi) as u32 } else { FILL };
                    }
                }
            }
        }
        NearestTable::new(table, dims)
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_impl(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        out_dot: Option<&mut f32>,
    ) -> f32 {
        let sign = self.signs[index];
        let range = self.kind.range();
        let p = range.param_f64(magnitude, sign);
        let (a, da) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        let bilinear = self.interpolation == Interpolation::Bilinear;
        let table = (!bilinear).then(|| self.take_table(index, magnitude, a, dims));
        let pl = padded_len(dims);
        with_scratch(|scratch| {
            // nearest sampling scatters straight into grad_src (and reads the output's dot from
            // src); bilinear sampling goes through zero-padded planes (the border dropped)
            if bilinear {
                if !scratch.grads_zero {
                    scratch.grads.clear();
                }
                scratch.grads.resize(dims.c * pl, 0.0);
                scratch.grads_zero = false;
            }
            // the straight-through estimate is d out / d m = 1 itself, not a derivative in p
            let straight_through = !bilinear && self.estimator == Estimator::StraightThrough;
            // rotate and shear_y under nearest sampling, three channels: the surrogate reads
            // channel-interleaved quads instead of padded planes
            let quads = !bilinear
                && !straight_through
                && dims.c == 3
                && matches!(self.kind, AffineKind::Rotate | AffineKind::ShearY);
            if quads {
                scratch.fill_quads(src, grad_out, dims);
            } else if !straight_through {
                scratch.pad(src, dims);
            }
            if let Some(table) = &table {
                let planes = grad_out.chunks_exact(plane);
                match out_dot {
                    None if dims.c == 3 => table.scatter::<3>(grad_out, scale, dims, grad_src),
                    None => planes
                        .zip(grad_src.chunks_exact_mut(plane))
                        .for_each(|(g, gs)| table.scatter::<1>(g, scale, dims, gs)),
                    // with the weight gradient of a mixture, sum(grad_out * out), out gathered by
                    // the table, in the same pass as the scatter
                    Some(d) => {
                        *d = planes
                            .zip(grad_src.chunks_exact_mut(plane))
                            .zip(src.chunks_exact(plane))
                            .map(|((g, gs), x)| table.scatter_dot(x, g, scale, dims, gs))
                            .sum();
                    }
                }
            }
            let axis = if bilinear || straight_through {
                None
            } else {
                let da = da.map(|v| v as f32);
                axis_dp(self.kind, &a, da, &scratch.pads, dims, grad_out)
            };
            let dp = if straight_through {
                sum8(grad_out.len(), |j| grad_out[j]) as f64
            } else if let Some(dp) = axis {
                dp
            } else {
                // d out / d p = d out / d u * d u / d p + d out / d v * d v / d p (bilinear
                // derivative; the surrogate under nearest sampling)
                let Scratch {
                    taps,
                    e,
                    pads,
                    grads,
                    quad,
                    gquad,
                    ..
                } = &mut *scratch;
                let da32 = da.map(|v| v as f32);
                if bilinear {
                    // the image gradient needs the fractions too
                    taps.fill(&a, dims);
                    for e in e.iter_mut() {
                        e.resize(plane, 0.0);
                    }
                    magnitude_weights(taps, da32, dims, e);
                } else {
                    taps.fill_weights(&a, da32, dims, e);
                }
                let pw = taps.pw;
                let idx = &taps.idx[..plane];
                let mut dp = 0f64;
                if dims.c == 3 && !bilinear {
                    // (`quads` holds here: rotate or shear_y, nearest, three channels)
                    dp += if self.kind == AffineKind::ShearY {
                        quad_dp::<true>(quad, pw, idx, e, gquad)
                    } else {
                        quad_dp::<false>(quad, pw, idx, e, gquad)
                    } as f64;
                }
                for c in (0..dims.c).filter(|_| dims.c != 3 || bilinear) {
                    let g = &grad_out[c * plane..(c + 1) * plane];
                    dp += channel_dp(&pads[c * pl..(c + 1) * pl], pw, idx, e, g) as f64;
                    if bilinear {
                        let gp = &mut grads[c * pl..(c + 1) * pl];
                        for o in 0..plane {
                            let (i, fx, fy) = (idx[o] as usize, taps.fx[o], taps.fy[o]);
                            let sg = scale * g[o] * taps.mask[o];
                            let (gy0, gy1) = (sg * (1.0 - fy), sg * fy);
                            gp[i] += gy0 * (1.0 - fx);
                            gp[i + 1] += gy0 * fx;
                            gp[i + pw] += gy1 * (1.0 - fx);
                            gp[i + pw + 1] += gy1 * fx;
                        }
                    }
                }
                dp
            };
            // the interior goes to grad_src and is zeroed in the same pass, then the border
            // (where fill pixels and edge taps scattered) is zeroed: grads is all zero again
            let pw = dims.w + 2;
            if bilinear {
                for (gp, gs) in scratch
                    .grads
                    .chunks_exact_mut(pl)
                    .zip(grad_src.chunks_exact_mut(plane))
                {
                    for (y, row) in gs.chunks_exact_mut(dims.w).enumerate() {
                        let from = &mut gp[(y + 1) * pw + 1..(y + 1) * pw + 1 + dims.w];
                        row.iter_mut().zip(from.iter_mut()).for_each(|(d, s)| {
                            *d += *s;
                            *s = 0.0;
                        });
                        gp[(y + 1) * pw] = 0.0;
                        gp[(y + 1) * pw + pw - 1] = 0.0;
                    }
                    gp[..pw].fill(0.0);
                    gp[pl - pw..].fill(0.0);
                }
                scratch.grads_zero = true;
            }
            if straight_through {
                dp as f32
            } else {
                (dp * range.dparam_dm(sign) as f64) as f32
            }
        })
    }

    /// The nearest table of image `index` at `magnitude` (the one `forward` built, if any).
    fn take_table(
        &self,
        index: usize,
        magnitude: f32,
        a: [f64; 6],
        dims: ImageDims,
    ) -> NearestTable {
        let cached = self
            .tables
            .get(index)
            .and_then(|slot| slot.lock().ok()?.take());
        match cached {
            Some((bits, table))
                if bits == magnitude.to_bits() && table.dims == (dims.h, dims.w) =>
            {
                table
            }
            _ => Self::nearest_table(a, dims),
        }
    }
}

impl ImageKernel for AffineKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let p = self.kind.range().param_f64(magnitude, self.signs[index]);
        let (a, _) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        match self.interpolation {
            Interpolation::Nearest => {
                let table = Self::nearest_table(a, dims);
                if dims.c == 3 {
                    table.gather::<3>(src, dims, dst);
                } else {
                    for (s, d) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
                        table.gather::<1>(s, dims, d);
                    }
                }
                if let Some(slot) = self.tables.get(index) {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some((magnitude.to_bits(), table));
                    }
                }
            }
            Interpolation::Bilinear => with_scratch(|scratch| {
                scratch.taps.fill(&a, dims);
                scratch.pad(src, dims);
                let (taps, pads) = (&scratch.taps, &scratch.pads);
                let (pw, pl) = (taps.pw, padded_len(dims));
                for (pad, d) in pads.chunks_exact(pl).zip(dst.chunks_exact_mut(plane)) {
                    for (o, d) in d.iter_mut().enumerate() {
                        // SAFETY: a TapField index of this size into one padded plane
                        let v = unsafe { taps4(pad, taps.idx[o] as usize, pw) };
                        let (fx, fy, m) = (taps.fx[o], taps.fy[o], taps.mask[o]);
                        let (wy0, wy1) = ((1.0 - fy) * m, fy * m);
                        *d = v[0] * ((1.0 - fx) * wy0)
                            + v[1] * (fx * wy0)
                            + v[2] * ((1.0 - fx) * wy1)
                            + v[3] * (fx * wy1);
                    }
                }
            }),
        }
    }

    fn recompute_output(&self) -> bool {
        true
    }

    fn output_dot(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        tmp: &mut [f32],
    ) -> f32 {
        if self.interpolation == Interpolation::Bilinear {
            self.forward(index, magnitude, src, dims, tmp);
            return crate::kernel::dot(tmp, grad_out);
        }
        // the nearest table the forward kept (left for the backward pass), or a new one
        let peeked = self.tables.get(index).and_then(|slot| {
            let slot = slot.lock().ok()?;
            let (bits, table) = slot.as_ref()?;
            (*bits == magnitude.to_bits() && table.dims == (dims.h, dims.w))
                .then(|| nearest_dot(table, src, dims, grad_out))
        });
        peeked.unwrap_or_else(|| {
            let p = self.kind.range().param_f64(magnitude, self.signs[index]);
            let (a, _) = self.kind.coeffs(p, dims.h, dims.w);
            nearest_dot(&Self::nearest_table(a, dims), src, dims, grad_out)
        })
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
        self.backward_impl(index, magnitude, src, dims, grad_out, scale, grad_src, None)
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
        if self.interpolation == Interpolation::Bilinear {
            let out_dot = self.output_dot(index, magnitude, src, dims, grad_out, tmp);
            return (
                self.backward(index, magnitude, src, dims, grad_out, scale, grad_src),
                out_dot,
            );
        }
        let mut out_dot = 0.0;
        let dm = self.backward_impl(
            index,
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

struct FlipKernel;

impl ImageKernel for FlipKernel {
    fn forward(&self, _: usize, _: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        for (d, s) in dst.chunks_exact_mut(dims.w).zip(src.chunks_exact(dims.w)) {
            for (dv, sv) in d.iter_mut().zip(s.iter().rev()) {
                *dv = *sv;
            }
        }
    }

    fn recompute_output(&self) -> bool {
        true
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
        for (gs, g) in grad_src
            .chunks_exact_mut(dims.w)
            .zip(grad_out.chunks_exact(dims.w))
        {
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
            let (xi, yi) = nearest_indices(&a, &u, &v, h, w)?;
            let out = nearest_sample(images, &xi, &yi)?;
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

/// PIL's nearest source pixel `(xi, yi)` (integer-valued f64 `(B, HW)`) for affine
/// coefficients `a` (six `(B,)` f64) and float coordinates `(u, v)`: see `NearestMap`.
fn nearest_indices(
    a: &[Tensor; 6],
    u: &Tensor,
    v: &Tensor,
    h: usize,
    w: usize,
) -> Result<(Tensor, Tensor)> {
    let dev = u.device();
    let col = |t: &Tensor| t.unsqueeze(1);
    let fix = |t: &Tensor| t.affine(65536.0, 0.5)?.floor();
    let f = [
        fix(&a[0])?,
        fix(&a[1])?,
        fix(&((&a[2] + a[0].affine(0.5, 0.0)?)? + a[1].affine(0.5, 0.0)?)?)?,
        fix(&a[3])?,
        fix(&a[4])?,
        fix(&((&a[5] + a[3].affine(0.5, 0.0)?)? + a[4].affine(0.5, 0.0)?)?)?,
    ];
    let xs: Vec<f64> = (0..h * w).map(|i| (i % w) as f64).collect();
    let ys: Vec<f64> = (0..h * w).map(|i| (i / w) as f64).collect();
    let xs = Tensor::from_vec(xs, (1, h * w), dev)?;
    let ys = Tensor::from_vec(ys, (1, h * w), dev)?;
    let fixed_coord = |c: &Tensor, cy: &Tensor, cx: &Tensor| -> Result<Tensor> {
        col(c)?
            .broadcast_add(&ys.broadcast_mul(&col(cy)?)?)?
            .broadcast_add(&xs.broadcast_mul(&col(cx)?)?)?
            .affine(1.0 / 65536.0, 0.0)?
            .floor()
    };
    let xi_fixed = fixed_coord(&f[2], &f[1], &f[0])?;
    let yi_fixed = fixed_coord(&f[5], &f[4], &f[3])?;
    // Fixed point unless a pure scale/translation or a corner could overflow 16.16.
    let to_f = |t: Tensor| t.to_dtype(DType::F64);
    let mut use_fixed = to_f((a[1].abs()? + a[3].abs()?)?.gt(0f64)?)?;
    for (x, y) in [
        (0.0, 0.0),
        (w as f64, h as f64),
        (0.0, h as f64),
        (w as f64, 0.0),
    ] {
        for (c0, c1, c2) in [(&a[0], &a[1], &a[2]), (&a[3], &a[4], &a[5])] {
            let at = ((c0.affine(x, 0.0)? + c1.affine(y, 0.0)?)? + c2)?;
            use_fixed = (use_fixed * to_f(at.abs()?.lt(32768f64)?)?)?;
        }
    }
    let use_fixed = col(&use_fixed)?;
    let use_float = use_fixed.affine(-1.0, 1.0)?;
    let pick = |fixed: Tensor, float: Tensor| -> Result<Tensor> {
        fixed.broadcast_mul(&use_fixed)? + float.broadcast_mul(&use_float)?
    };
    Ok((pick(xi_fixed, u.floor()?)?, pick(yi_fixed, v.floor()?)?))
}

/// Nearest sampling at integer source pixels `(xi, yi)` (f64 `(B, HW)`), fill 0 outside.
fn nearest_sample(images: &Tensor, xi: &Tensor, yi: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (vals, valid) = gather_pixels(images, xi, yi)?;
    vals.broadcast_mul(&valid.to_dtype(images.dtype())?)?
        .reshape((b, c, h, w))
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
        let wx = if dx == 0.0 {
            fx.affine(-1.0, 1.0)?
        } else {
            fx.clone()
        };
        let wy = if dy == 0.0 {
            fy.affine(-1.0, 1.0)?
        } else {
            fy.clone()
        };
        let weight = (wx * wy)?
            .unsqueeze(1)?
            .broadcast_mul(&valid)?
            .to_dtype(images.dtype())?;
        let term = vals.broadcast_mul(&weight)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    acc.expect("four taps").reshape((b, c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform values in [-1, 1) from a fixed LCG.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The general path: TapField, magnitude_weights and channel_dp.
    fn tap_field_dp(a: &[f64; 6], da: [f32; 6], pads: &[f32], dims: ImageDims, g: &[f32]) -> f64 {
        let mut taps = TapField::default();
        taps.fill(a, dims);
        let mut e: [Vec<f32>; 4] = Default::default();
        for e in &mut e {
            e.resize(dims.plane(), 0.0);
        }
        magnitude_weights(&taps, da, dims, &mut e);
        let (plane, pl) = (dims.plane(), padded_len(dims));
        (0..dims.c)
            .map(|c| {
                let (pad, g) = (&pads[c * pl..(c + 1) * pl], &g[c * plane..(c + 1) * plane]);
                channel_dp(pad, taps.pw, &taps.idx, &e, g) as f64
            })
            .sum()
    }

    /// Image and magnitude gradients of `kernel` on one image of `dims`.
    fn grads(kernel: &AffineKernel, dims: ImageDims, m: f32, seed: u64) -> (Vec<f32>, f32) {
        let x: Vec<f32> = values(dims.len(), seed)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let g = values(dims.len(), seed + 1);
        let mut gx = vec![0f32; dims.len()];
        let mut out = vec![0f32; dims.len()];
        kernel.forward(0, m, &x, dims, &mut out);
        let gm = kernel.backward(0, m, &x, dims, &g, 1.0, &mut gx);
        (gx, gm)
    }

    #[test]
    fn reused_scratch_gives_the_gradients_of_a_fresh_one() {
        // bilinear taps and nearest fill scatter into the padded border; a later image of
        // another shape must not see any of it (its interior overlaps the old border)
        for interpolation in [Interpolation::Bilinear, Interpolation::Nearest] {
            for kind in [
                AffineKind::Rotate,
                AffineKind::ShearY,
                AffineKind::TranslateX,
            ] {
                let kernel =
                    AffineKernel::new(kind, interpolation, Estimator::Surrogate, vec![1.0]);
                let a = ImageDims { c: 3, h: 9, w: 11 };
                for b in [
                    ImageDims { c: 2, h: 12, w: 8 },
                    ImageDims { c: 3, h: 5, w: 4 },
                    ImageDims { c: 1, h: 20, w: 2 },
                    ImageDims { c: 1, h: 30, w: 3 },
                    a,
                ] {
                    let fresh =
                        std::thread::scope(|s| s.spawn(|| grads(&kernel, b, 0.9, 5)).join());
                    let fresh = fresh.expect("fresh thread");
                    for m in [0.95, 0.05] {
                        grads(&kernel, a, m, 3);
                        let again = grads(&kernel, b, 0.9, 5);
                        assert_eq!(again, fresh, "{kind:?} {interpolation:?} {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn quad_dp_is_the_tap_field_path() {
        // the channel-interleaved dot equals three single-channel dots; shear_y keeps every
        // pixel's column, its right-hand weights are zero, and the two-tap dot equals the
        // four-tap one
        let dims = ImageDims { c: 3, h: 13, w: 9 };
        let image: Vec<f32> = values(dims.len(), 21)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let g = values(dims.len(), 22);
        let mut scratch = Scratch::default();
        scratch.pad(&image, dims);
        scratch.fill_quads(&image, &g, dims);
        for (kind, p) in [
            (AffineKind::ShearY, -0.3),
            (AffineKind::ShearY, -0.11),
            (AffineKind::ShearY, 0.0),
            (AffineKind::ShearY, 0.29),
            (AffineKind::ShearY, 1.7),
            (AffineKind::Rotate, 0.0),
            (AffineKind::Rotate, 13.0),
            (AffineKind::Rotate, -29.9),
            (AffineKind::Rotate, 170.0),
        ] {
            let (a, da) = kind.coeffs(p, dims.h, dims.w);
            let da = da.map(|v| v as f32);
            let mut taps = TapField::default();
            let mut e: [Vec<f32>; 4] = Default::default();
            taps.fill_weights(&a, da, dims, &mut e);
            let (quad, gquad, pw) = (&scratch.quad, &scratch.gquad, taps.pw);
            let four = quad_dp::<false>(quad, pw, &taps.idx, &e, gquad);
            let want = tap_field_dp(&a, da, &scratch.pads, dims, &g) as f32;
            assert!(
                (four - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{kind:?} p {p}: {four} vs {want}"
            );
            if kind == AffineKind::ShearY {
                assert!(e[1].iter().chain(&e[3]).all(|&v| v == 0.0), "p {p}");
                let two = quad_dp::<true>(quad, pw, &taps.idx, &e, gquad);
                assert!(
                    (two - four).abs() <= 1e-5 * (1.0 + four.abs()),
                    "p {p}: {two} vs {four}"
                );
            }
        }
    }

    #[test]
    fn fill_weights_is_fill_then_magnitude_weights() {
        for (kind, p) in [
            (AffineKind::Rotate, 17.0),
            (AffineKind::Rotate, -29.5),
            (AffineKind::ShearY, 0.21),
            (AffineKind::ShearX, -0.3),
        ] {
            for dims in [
                ImageDims { c: 3, h: 9, w: 70 },
                ImageDims { c: 1, h: 32, w: 32 },
            ] {
                let (a, da) = kind.coeffs(p, dims.h, dims.w);
                let da = da.map(|v| v as f32);
                let (mut t1, mut t2) = (TapField::default(), TapField::default());
                let (mut e1, mut e2): ([Vec<f32>; 4], [Vec<f32>; 4]) = Default::default();
                t1.fill(&a, dims);
                for e in &mut e1 {
                    e.resize(dims.plane(), 0.0);
                }
                magnitude_weights(&t1, da, dims, &mut e1);
                t2.fill_weights(&a, da, dims, &mut e2);
                assert_eq!((t1.idx, t1.pw), (t2.idx, t2.pw), "{kind:?}");
                assert_eq!(e1, e2, "{kind:?}");
            }
        }
    }

    #[test]
    fn nearest_tables_follow_pils_float_rule() {
        // every table entry against PIL's `COORD` evaluated pixel by pixel: the translations'
        // separable shortcut, the fixed-point maps and runs of consecutive sources
        let general = |a: [f64; 6], dims: ImageDims| -> Vec<u32> {
            let (wf, hf) = (dims.w as f64, dims.h as f64);
            (0..dims.plane())
                .map(|o| {
                    let (xx, yy) = ((o % dims.w) as f64 + 0.5, (o / dims.w) as f64 + 0.5);
                    let u = a[0] * xx + a[1] * yy + a[2];
                    let v = a[3] * xx + a[4] * yy + a[5];
                    if u >= 0.0 && v >= 0.0 && u < wf && v < hf {
                        (v as u32) * dims.w as u32 + u as u32
                    } else {
                        FILL
                    }
                })
                .collect()
        };
        for dims in [
            ImageDims { c: 3, h: 32, w: 32 },
            ImageDims { c: 1, h: 7, w: 13 },
        ] {
            for kind in [AffineKind::TranslateX, AffineKind::TranslateY] {
                // whole-pixel and half-pixel shifts, and shifts past the image
                for p in [0.0, 0.45, -0.45, 3.0 / 32.0, -0.5 / 13.0, 0.2999, 1.5, -2.0] {
                    let (a, _) = kind.coeffs(p, dims.h, dims.w);
                    let table = AffineKernel::nearest_table(a, dims);
                    assert_eq!(table.idx, general(a, dims), "{kind:?} p {p} {dims:?}");
                    for (row, run) in table.idx.chunks_exact(dims.w).zip(&table.runs) {
                        let Some((lo, hi, s)) = *run else {
                            panic!("{kind:?} p {p}: a row of a translation is a run");
                        };
                        for (x, &q) in row.iter().enumerate() {
                            let want = if (lo..hi).contains(&x) {
                                (s + x - lo) as u32
                            } else {
                                FILL
                            };
                            assert_eq!(q, want, "{kind:?} p {p} x {x}");
                        }
                    }
                }
            }
            for kind in [AffineKind::Rotate, AffineKind::ShearX, AffineKind::ShearY] {
                for p in [0.0, 0.3, -0.17, 29.0, -13.5] {
                    let (a, _) = kind.coeffs(p, dims.h, dims.w);
                    let table = AffineKernel::nearest_table(a, dims);
                    // the fixed-point rule may round differently from the float one right at a
                    // pixel boundary (as PIL's does); inside/outside and the sources agree
                    // elsewhere
                    let want = general(a, dims);
                    let differ = table.idx.iter().zip(&want).filter(|(a, b)| a != b).count();
                    assert!(
                        differ * 50 <= dims.plane(),
                        "{kind:?} p {p}: {differ} differ"
                    );
                    assert!(table
                        .idx
                        .iter()
                        .all(|&q| q == FILL || (q as usize) < dims.plane()));
                }
            }
        }
    }

    #[test]
    fn axis_dp_matches_the_tap_field_path() {
        for (c, h, w) in [(3, 9, 11), (3, 32, 32), (1, 5, 40), (2, 1, 1)] {
            let dims = ImageDims { c, h, w };
            let image: Vec<f32> = values(dims.len(), (h * w) as u64)
                .iter()
                .map(|v| 0.5 + 0.5 * v)
                .collect();
            let g = values(dims.len(), 7 + w as u64);
            let mut scratch = Scratch::default();
            scratch.pad(&image, dims);
            for kind in [
                AffineKind::ShearX,
                AffineKind::TranslateX,
                AffineKind::TranslateY,
            ] {
                let r = kind.range();
                // a sweep of the range, exact whole-pixel shifts and shifts of the whole image
                let mut ps: Vec<f64> = (0..=40)
                    .map(|i| r.low as f64 + (r.high - r.low) as f64 * i as f64 / 40.0)
                    .collect();
                ps.extend((-3..=3).map(|k| k as f64 / w.max(h) as f64));
                ps.extend([-2.0, 1.5, 7.0, -0.0]);
                for p in ps {
                    let (a, da) = kind.coeffs(p, h, w);
                    let da = da.map(|v| v as f32);
                    let fast = axis_dp(kind, &a, da, &scratch.pads, dims, &g).unwrap();
                    let slow = tap_field_dp(&a, da, &scratch.pads, dims, &g);
                    assert!(
                        (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                        "{kind:?} {dims:?} p {p}: {fast} vs {slow}"
                    );
                }
            }
            // a slight x scale breaks the rows' constant offset: the per-pixel fallback
            for (scale, p) in [(1.01, 0.2), (0.97, -0.25), (1.3, 0.05)] {
                let (mut a, da) = AffineKind::ShearX.coeffs(p, h, w);
                a[0] = scale;
                a[2] = 0.3;
                let da = da.map(|v| v as f32);
                let fast = axis_dp(AffineKind::ShearX, &a, da, &scratch.pads, dims, &g).unwrap();
                let slow = tap_field_dp(&a, da, &scratch.pads, dims, &g);
                assert!(
                    (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                    "scaled shear {dims:?} {scale} {p}: {fast} vs {slow}"
                );
            }
            let (a, da) = AffineKind::Rotate.coeffs(10.0, h, w);
            let da = da.map(|v| v as f32);
            assert!(axis_dp(AffineKind::Rotate, &a, da, &scratch.pads, dims, &g).is_none());
        }
    }
}
