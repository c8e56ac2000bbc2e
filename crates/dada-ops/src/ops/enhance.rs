//! PIL `ImageEnhance` blends: `Brightness`, `Contrast`, `Color`, `Sharpness`
//! (`out = clip(degenerate + f * (x - degenerate))`, `f = 0.1 + 1.8 m` in [0.1, 1.9]).
use std::sync::Arc;

use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::{luma_weights, per_image4};
use crate::{AugOp, MagnitudeGrad, MagnitudeRange, OpParams};

/// The enhance factor range shared by the four blends: `f = 0.1 + 1.8 m`, m = 0.5 is identity.
pub const ENHANCE_RANGE: MagnitudeRange = MagnitudeRange { low: 0.1, high: 1.9, symmetric: false };

macro_rules! enhance_op {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            /// The op.
            pub fn new() -> Self {
                Self
            }
        }

        impl AugOp for $name {
            fn name(&self) -> &'static str {
                $kind.name()
            }
            fn range(&self) -> Option<MagnitudeRange> {
                Some(ENHANCE_RANGE)
            }
            fn magnitude_grad(&self) -> MagnitudeGrad {
                MagnitudeGrad::Exact
            }
            fn sample(&self, _b_sz: usize, _rng: &mut StdRng, _dev: &Device) -> Result<OpParams> {
                Ok(OpParams::none())
            }
            fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
                dispatch(self, images, magnitudes, params)
            }
            fn apply_reference(&self, images: &Tensor, magnitudes: &Tensor, _: &OpParams) -> Result<Tensor> {
                check_inputs(self.name(), images, magnitudes)?;
                enhance_reference($kind, images, magnitudes)
            }
            fn kernel(
                &self,
                _: &OpParams,
                shape: (usize, usize, usize, usize),
            ) -> Result<Option<Arc<dyn ImageKernel>>> {
                if $kind != EnhanceKind::Brightness {
                    luma_weights($kind.name(), shape.1)?;
                }
                Ok(Some(Arc::new(EnhanceKernel { kind: $kind })))
            }
        }
    };
}

enhance_op!(
    /// Brightness: blend with black, `out = clip(f x)`; PIL `ImageEnhance.Brightness`.
    ///
    /// Factor `f = 0.1 + 1.8 m` in [0.1, 1.9]. Image and magnitude gradients exact.
    Brightness,
    EnhanceKind::Brightness
);
enhance_op!(
    /// Contrast: blend with the mean luma `mu` of the image, `out = clip(mu + f (x - mu))`;
    /// PIL `ImageEnhance.Contrast` (PIL rounds `mu` to an integer level; we do not).
    ///
    /// Factor `f = 0.1 + 1.8 m` in [0.1, 1.9]; 1 or 3 channels. Gradients exact (the image
    /// gradient includes the dependence of `mu` on every pixel).
    Contrast,
    EnhanceKind::Contrast
);
enhance_op!(
    /// Color (saturation): blend with the per-pixel luma `L`, `out = clip(L + f (x - L))`;
    /// PIL `ImageEnhance.Color`.
    ///
    /// Factor `f = 0.1 + 1.8 m` in [0.1, 1.9]; 1 or 3 channels. Gradients exact.
    Color,
    EnhanceKind::Color
);
enhance_op!(
    /// Sharpness: blend with PIL's `SMOOTH` filter (3x3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13`,
    /// border pixels kept), `out = clip(S + f (x - S))`; PIL `ImageEnhance.Sharpness`.
    ///
    /// Factor `f = 0.1 + 1.8 m` in [0.1, 1.9]. Gradients exact.
    Sharpness,
    EnhanceKind::Sharpness
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnhanceKind {
    Brightness,
    Contrast,
    Color,
    Sharpness,
}

impl EnhanceKind {
    fn name(self) -> &'static str {
        match self {
            EnhanceKind::Brightness => "brightness",
            EnhanceKind::Contrast => "contrast",
            EnhanceKind::Color => "color",
            EnhanceKind::Sharpness => "sharpness",
        }
    }
}

/// The gradient candle's `clamp(0, 1)` passes: 1 inside, 1/2 on the bound, 0 outside.
#[inline]
pub(crate) fn clamp_grad(pre: f32) -> f32 {
    if pre > 0.0 && pre < 1.0 {
        1.0
    } else if pre == 0.0 || pre == 1.0 {
        0.5
    } else {
        0.0
    }
}

struct EnhanceKernel {
    kind: EnhanceKind,
}

impl EnhanceKernel {
    /// The degenerate image into `deg` (unused for brightness).
    fn degenerate(&self, src: &[f32], dims: ImageDims, deg: &mut Vec<f32>) {
        let plane = dims.plane();
        match self.kind {
            EnhanceKind::Brightness => {}
            EnhanceKind::Contrast => {
                let weights = luma_weights("contrast", dims.c).unwrap_or(&[1.0]);
                let mut mean = 0f32;
                for (c, wc) in weights.iter().enumerate() {
                    let s: f32 = src[c * plane..(c + 1) * plane].iter().sum();
                    mean += wc * s;
                }
                deg.clear();
                deg.push(mean / plane as f32);
            }
            EnhanceKind::Color => {
                let weights = luma_weights("color", dims.c).unwrap_or(&[1.0]);
                deg.clear();
                deg.resize(plane, 0.0);
                for (c, wc) in weights.iter().enumerate() {
                    for (d, x) in deg.iter_mut().zip(&src[c * plane..(c + 1) * plane]) {
                        *d += wc * x;
                    }
                }
            }
            EnhanceKind::Sharpness => {
                deg.clear();
                deg.extend_from_slice(src);
                let (h, w) = (dims.h, dims.w);
                if h < 3 || w < 3 {
                    return;
                }
                for c in 0..dims.c {
                    let s = &src[c * plane..(c + 1) * plane];
                    let d = &mut deg[c * plane..(c + 1) * plane];
                    for y in 1..h - 1 {
                        let (r0, r1, r2) = (&s[(y - 1) * w..y * w], &s[y * w..(y + 1) * w], &s[(y + 1) * w..(y + 2) * w]);
                        for x in 1..w - 1 {
                            let sum = r0[x - 1] + r0[x] + r0[x + 1] + r1[x - 1] + 5.0 * r1[x] + r1[x + 1]
                                + r2[x - 1] + r2[x] + r2[x + 1];
                            d[y * w + x] = sum / 13.0;
                        }
                    }
                }
            }
        }
    }

    #[inline]
    fn deg_at(&self, deg: &[f32], i: usize, plane: usize) -> f32 {
        match self.kind {
            EnhanceKind::Brightness => 0.0,
            EnhanceKind::Contrast => deg[0],
            EnhanceKind::Color => deg[i % plane],
            EnhanceKind::Sharpness => deg[i],
        }
    }
}

impl ImageKernel for EnhanceKernel {
    fn forward(&self, _: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let f = ENHANCE_RANGE.param(magnitude, 1.0);
        if self.kind == EnhanceKind::Brightness {
            for (d, x) in dst.iter_mut().zip(src) {
                *d = (f * x).clamp(0.0, 1.0);
            }
            return;
        }
        let mut deg = Vec::new();
        self.degenerate(src, dims, &mut deg);
        let plane = dims.plane();
        for (i, (d, x)) in dst.iter_mut().zip(src).enumerate() {
            let g = self.deg_at(&deg, i, plane);
            *d = (g + f * (x - g)).clamp(0.0, 1.0);
        }
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
        let f = ENHANCE_RANGE.param(magnitude, 1.0);
        let plane = dims.plane();
        let mut deg = Vec::new();
        self.degenerate(src, dims, &mut deg);
        // gm = grad through the clip; d out / d f = x - deg; d out / d x = f I + (1 - f) D.
        let mut gm = vec![0f32; src.len()];
        let mut df = 0f32;
        for (i, x) in src.iter().enumerate() {
            let g = self.deg_at(&deg, i, plane);
            let pre = g + f * (x - g);
            let m = grad_out[i] * clamp_grad(pre);
            gm[i] = m;
            df += m * (x - g);
            grad_src[i] += scale * f * m;
        }
        let k = scale * (1.0 - f);
        match self.kind {
            EnhanceKind::Brightness => {}
            EnhanceKind::Contrast => {
                let weights = luma_weights("contrast", dims.c).unwrap_or(&[1.0]);
                let total: f32 = gm.iter().sum();
                for (c, wc) in weights.iter().enumerate() {
                    let add = k * wc * total / plane as f32;
                    grad_src[c * plane..(c + 1) * plane].iter_mut().for_each(|v| *v += add);
                }
            }
            EnhanceKind::Color => {
                let weights = luma_weights("color", dims.c).unwrap_or(&[1.0]);
                let mut per_pixel = vec![0f32; plane];
                for c in 0..dims.c {
                    for (t, m) in per_pixel.iter_mut().zip(&gm[c * plane..(c + 1) * plane]) {
                        *t += m;
                    }
                }
                for (c, wc) in weights.iter().enumerate() {
                    for (v, t) in grad_src[c * plane..(c + 1) * plane].iter_mut().zip(&per_pixel) {
                        *v += k * wc * t;
                    }
                }
            }
            EnhanceKind::Sharpness => {
                let (h, w) = (dims.h, dims.w);
                for c in 0..dims.c {
                    let g = &gm[c * plane..(c + 1) * plane];
                    let gs = &mut grad_src[c * plane..(c + 1) * plane];
                    for y in 0..h {
                        for x in 0..w {
                            let o = y * w + x;
                            let border = y == 0 || x == 0 || y + 1 >= h || x + 1 >= w;
                            if border {
                                gs[o] += k * g[o];
                                continue;
                            }
                            let t = k * g[o] / 13.0;
                            for yy in y - 1..=y + 1 {
                                for xx in x - 1..=x + 1 {
                                    gs[yy * w + xx] += t;
                                }
                            }
                            gs[o] += 4.0 * t;
                        }
                    }
                }
            }
        }
        df * (ENHANCE_RANGE.high - ENHANCE_RANGE.low)
    }
}

/// The plain-candle blends.
fn enhance_reference(kind: EnhanceKind, images: &Tensor, magnitudes: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let f = per_image4(&magnitudes.affine(
        (ENHANCE_RANGE.high - ENHANCE_RANGE.low) as f64,
        ENHANCE_RANGE.low as f64,
    )?)?;
    let luma = |images: &Tensor| -> Result<Tensor> {
        let weights = luma_weights(kind.name(), c)?;
        let wt = Tensor::new(weights, images.device())?.to_dtype(images.dtype())?.reshape((1, c, 1, 1))?;
        images.broadcast_mul(&wt)?.sum_keepdim(1)
    };
    let deg = match kind {
        EnhanceKind::Brightness => return images.broadcast_mul(&f)?.clamp(0f32, 1f32),
        EnhanceKind::Contrast => luma(images)?.reshape((b, 1, h * w))?.mean_keepdim(2)?.unsqueeze(3)?,
        EnhanceKind::Color => luma(images)?,
        EnhanceKind::Sharpness => {
            if h < 3 || w < 3 {
                images.clone()
            } else {
                let mut sum = images.narrow(2, 1, h - 2)?.narrow(3, 1, w - 2)?.affine(4.0, 0.0)?;
                for dy in 0..3 {
                    for dx in 0..3 {
                        sum = (sum + images.narrow(2, dy, h - 2)?.narrow(3, dx, w - 2)?)?;
                    }
                }
                let inner = sum.affine(1.0 / 13.0, 0.0)?.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
                let border: Vec<f32> = (0..h * w)
                    .map(|i| {
                        let (y, x) = (i / w, i % w);
                        if y == 0 || x == 0 || y == h - 1 || x == w - 1 {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let border = Tensor::from_vec(border, (1, 1, h, w), images.device())?.to_dtype(images.dtype())?;
                (inner + images.broadcast_mul(&border)?)?
            }
        }
    };
    let diff = images.broadcast_sub(&deg)?;
    deg.broadcast_add(&diff.broadcast_mul(&f)?)?.clamp(0f32, 1f32)
}

