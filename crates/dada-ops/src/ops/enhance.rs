//! PIL `ImageEnhance` blends: `Brightness`, `Contrast`, `Color`, `Sharpness`
//! (`out = clip(degenerate + f * (x - degenerate))`, `f = 0.1 + 1.8 m` in [0.1, 1.9]).
use std::sync::Arc;

use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::{luma_weights, per_image4};
use crate::{AugOp, MagnitudeGrad, MagnitudeRange, OpParams};

/// The enhance factor range shared by the four blends: `f = 0.1 + 1.8 m`, m = 0.5 is identity.
pub const ENHANCE_RANGE: MagnitudeRange = MagnitudeRange {
    low: 0.1,
    high: 1.9,
    symmetric: false,
};

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

/// The gradient candle's `clamp(0, 1)` passes: 1 inside, 1/2 on the bound, 0 outside
/// (branch-free, so loops using it vectorize).
#[inline(always)]
pub(crate) fn clamp_grad(pre: f32) -> f32 {
    let inside = ((pre > 0.0) & (pre < 1.0)) as u32 as f32;
    let bound = ((pre == 0.0) | (pre == 1.0)) as u32 as f32;
    inside + 0.5 * bound
}

/// Sum of `f(i)` over `0..n`, vectorized: `f` is mapped over blocks of 256 into a stack
/// buffer (a plain loop the loop vectorizer handles, however long `f` is), and each block is
/// summed with eight independent accumulators (f32 sums are otherwise a serial chain). The
/// order of additions is fixed, so results are deterministic.
#[inline(always)]
pub(crate) fn sum8(n: usize, mut f: impl FnMut(usize) -> f32) -> f32 {
    const BLOCK: usize = 256;
    // not zeroed: every element read is written first (a zeroed 1 KB per call showed up as
    // memset time where sums are short and many)
    let mut buf = [std::mem::MaybeUninit::<f32>::uninit(); BLOCK];
    let mut acc = [0f32; 8];
    let mut start = 0;
    while start < n {
        let len = (n - start).min(BLOCK);
        for (j, v) in buf[..len].iter_mut().enumerate() {
            v.write(f(start + j));
        }
        // SAFETY: the first `len` elements were just written
        let block: &[f32] = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const f32, len) };
        add_lanes(&mut acc, block);
        start += len;
    }
    acc.iter().sum()
}

/// The two sums of `f(i) = (a_i, b_i)` over `0..n`, vectorized as in [`sum8`] (`f` may write
/// elsewhere too: a one-pass backward that also needs two sums).
pub(crate) fn sum8_pair(n: usize, mut f: impl FnMut(usize) -> (f32, f32)) -> (f32, f32) {
    const BLOCK: usize = 256;
    let (mut ta, mut tb) = ([0f32; BLOCK], [0f32; BLOCK]);
    let (mut acc_a, mut acc_b) = ([0f32; 8], [0f32; 8]);
    let mut start = 0;
    while start < n {
        let len = (n - start).min(BLOCK);
        let (ta, tb) = (&mut ta[..len], &mut tb[..len]);
        for j in 0..len {
            (ta[j], tb[j]) = f(start + j);
        }
        add_lanes(&mut acc_a, ta);
        add_lanes(&mut acc_b, tb);
        start += len;
    }
    (acc_a.iter().sum(), acc_b.iter().sum())
}

/// `acc[i mod 8] += block[i]`: eight independent f32 accumulators (a single one would be a
/// serial chain).
#[inline(always)]
fn add_lanes(acc: &mut [f32; 8], block: &[f32]) {
    let mut chunks = block.chunks_exact(8);
    // LLVM keeps the eight lanes as eight scalar sums; with AVX, one vector does all eight
    // (the same additions in the same order, so the same results)
    #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
    {
        use std::arch::x86_64::{_mm256_add_ps, _mm256_loadu_ps, _mm256_storeu_ps};
        // SAFETY: AVX is enabled at compile time; each load reads one chunk's eight floats and
        // the store writes `acc`'s eight
        unsafe {
            let mut v = _mm256_loadu_ps(acc.as_ptr());
            for c in &mut chunks {
                v = _mm256_add_ps(v, _mm256_loadu_ps(c.as_ptr()));
            }
            _mm256_storeu_ps(acc.as_mut_ptr(), v);
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx")))]
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        acc[l] += v;
    }
}

struct EnhanceKernel {
    kind: EnhanceKind,
}

/// PIL's `SMOOTH` filter of one plane (`[1 1 1; 1 5 1; 1 1 1] / 13`), borders copied: the
/// 3x3 box sum as horizontal 3-sums (`hs`, scratch) summed over three rows, plus 4 x the centre.
/// Both passes run over the flattened plane in single long loops (rows of 32 would leave most
/// of each vector loop to its scalar tail); the values they produce across row ends land only in
/// border pixels, which are copied from the input afterwards.
fn smooth_plane(s: &[f32], h: usize, w: usize, d: &mut [f32], hs: &mut Vec<f32>) {
    if h < 3 || w < 3 {
        d.copy_from_slice(s);
        return;
    }
    let n = h * w;
    let (s, d) = (&s[..n], &mut d[..n]);
    hs.resize(n, 0.0);
    {
        let (l, c, r) = (&s[..n - 2], &s[1..n - 1], &s[2..]);
        for (i, o) in hs[1..n - 1].iter_mut().enumerate() {
            *o = l[i] + c[i] + r[i];
        }
    }
    {
        let m = (h - 2) * w;
        let (up, mid, down, c) = (&hs[..m], &hs[w..w + m], &hs[2 * w..2 * w + m], &s[w..w + m]);
        for (i, o) in d[w..w + m].iter_mut().enumerate() {
            *o = (up[i] + mid[i] + down[i] + 4.0 * c[i]) * (1.0 / 13.0);
        }
    }
    d[..w].copy_from_slice(&s[..w]);
    d[(h - 1) * w..].copy_from_slice(&s[(h - 1) * w..]);
    for y in 1..h - 1 {
        d[y * w] = s[y * w];
        d[y * w + w - 1] = s[y * w + w - 1];
    }
}

/// The transpose of [`smooth_plane`] applied to `g`, scaled by `k` and added to `out` (`t` and
/// `hs` are scratch). Border outputs copy their input; interior outputs spread `g / 13` over
/// their 3x3 neighbourhood (5 / 13 on the centre). The kernel is symmetric, so this gathers
/// `t = interior(k g) / 13` the same way, over the flattened plane: `t` is zero on the border,
/// so sums across row ends add only zeros.
fn smooth_plane_transpose_add(
    g: &[f32],
    h: usize,
    w: usize,
    k: f32,
    out: &mut [f32],
    t: &mut Vec<f32>,
    hs: &mut Vec<f32>,
) {
    if h < 3 || w < 3 {
        out.iter_mut().zip(g).for_each(|(o, g)| *o += k * g);
        return;
    }
    let n = h * w;
    let (g, out) = (&g[..n], &mut out[..n]);
    t.resize(n, 0.0);
    let k13 = k / 13.0;
    t.iter_mut().zip(g).for_each(|(t, g)| *t = g * k13);
    t[..w].fill(0.0);
    t[(h - 1) * w..].fill(0.0);
    for y in 1..h - 1 {
        t[y * w] = 0.0;
        t[y * w + w - 1] = 0.0;
    }
    // horizontal 3-sums; zero on the border rows because t is
    hs.resize(n, 0.0);
    hs[0] = t[0] + t[1];
    hs[n - 1] = t[n - 2] + t[n - 1];
    {
        let (l, c, r) = (&t[..n - 2], &t[1..n - 1], &t[2..]);
        for (i, o) in hs[1..n - 1].iter_mut().enumerate() {
            *o = l[i] + c[i] + r[i];
        }
    }
    {
        let m = (h - 2) * w;
        let (up, mid, down, c) = (&hs[..m], &hs[w..w + m], &hs[2 * w..2 * w + m], &t[w..w + m]);
        for (i, o) in out[w..w + m].iter_mut().enumerate() {
            *o += up[i] + mid[i] + down[i] + 4.0 * c[i];
        }
    }
    // border pixels pass their own gradient through, and take the interior's spread
    for x in 0..w {
        out[x] += hs[w + x] + k * g[x];
        let i = (h - 1) * w + x;
        out[i] += hs[i - w] + k * g[i];
    }
    for y in 1..h - 1 {
        out[y * w] += k * g[y * w];
        out[y * w + w - 1] += k * g[y * w + w - 1];
    }
}

/// One channel of the backward pass of a blend `out = clip(d + f (x - d))` with degenerate
/// values `deg(i)`, in one pass per block of 256: writes `m = g clip'(pre)` (the gradient through
/// the clip), adds `sf m` to `gs`, and returns `(sum m (x - d), sum g out)`, the factor's
/// gradient and the output's dot with `g`. The per-pixel terms of the two sums go to stack
/// buffers in the same vectorized loop and are summed with eight accumulators after it (f32
/// sums in the loop itself would be a serial chain).
#[inline(always)]
fn blend_backward(
    f: f32,
    sf: f32,
    s: &[f32],
    g: &[f32],
    deg: impl Fn(usize) -> f32,
    m: &mut [f32],
    gs: &mut [f32],
) -> (f32, f32) {
    const BLOCK: usize = 256;
    let n = s.len();
    let (g, m, gs) = (&g[..n], &mut m[..n], &mut gs[..n]);
    let (mut tdf, mut tdot) = ([0f32; BLOCK], [0f32; BLOCK]);
    let (mut acc_df, mut acc_dot) = ([0f32; 8], [0f32; 8]);
    let mut start = 0;
    while start < n {
        let len = (n - start).min(BLOCK);
        let (sb, gb) = (&s[start..start + len], &g[start..start + len]);
        let (mb, gsb) = (&mut m[start..start + len], &mut gs[start..start + len]);
        let (tdf, tdot) = (&mut tdf[..len], &mut tdot[..len]);
        for j in 0..len {
            let dv = deg(start + j);
            let pre = dv + f * (sb[j] - dv);
            let mi = gb[j] * clamp_grad(pre);
            mb[j] = mi;
            gsb[j] += sf * mi;
            tdf[j] = mi * (sb[j] - dv);
            tdot[j] = gb[j] * pre.clamp(0.0, 1.0);
        }
        add_lanes(&mut acc_df, tdf);
        add_lanes(&mut acc_dot, tdot);
        start += len;
    }
    (acc_df.iter().sum(), acc_dot.iter().sum())
}

/// Makes `v` at least `n` long (new elements zero; old ones kept).
fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Per-thread buffers of the enhance kernels, reused from image to image: the degenerate
/// image, the gradient through the clip, and the smoothing's planes.
#[derive(Default)]
struct EnhanceScratch {
    deg: Vec<f32>,
    gm: Vec<f32>,
    t: Vec<f32>,
    hs: Vec<f32>,
}

thread_local! {
    static ENHANCE_SCRATCH: std::cell::RefCell<EnhanceScratch> =
        std::cell::RefCell::new(EnhanceScratch::default());
}

/// Runs `f` on this thread's [`EnhanceScratch`] (a fresh one if it is in use further up the
/// stack).
fn with_enhance_scratch<R>(f: impl FnOnce(&mut EnhanceScratch) -> R) -> R {
    ENHANCE_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut EnhanceScratch::default()),
    })
}

impl EnhanceKernel {
    #[allow(clippy::too_many_arguments)]
    fn backward_impl(
        &self,
        _: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        out_dot: Option<&mut f32>,
    ) -> f32 {
        let f = ENHANCE_RANGE.param(magnitude, 1.0);
        let plane = dims.plane();
        with_enhance_scratch(|sc| {
            let EnhanceScratch { deg, gm, t, hs } = sc;
            self.degenerate(src, dims, deg, hs);
            // gm = grad through the clip; d out / d f = x - deg; d out / d x = f I + (1 - f) D.
            // (every element is written below)
            gm.resize(src.len(), 0.0);
            let mut df = 0f32;
            let mut total_dot = 0f32;
            let want_dot = out_dot.is_some();
            for c in 0..dims.c {
                let r = c * plane..(c + 1) * plane;
                let (s, g, m, gs) = (
                    &src[r.clone()],
                    &grad_out[r.clone()],
                    &mut gm[r.clone()],
                    &mut grad_src[r],
                );
                let sf = scale * f;
                let (d, o) = match self.deg_plane(deg, c, plane) {
                    DegPlane::Scalar(v) => blend_backward(f, sf, s, g, |_| v, m, gs),
                    DegPlane::Plane(gp) => {
                        let gp = &gp[..plane];
                        blend_backward(f, sf, s, g, |i| gp[i], m, gs)
                    }
                };
                df += d;
                if want_dot {
                    total_dot += o;
                }
            }
            let k = scale * (1.0 - f);
            match self.kind {
                EnhanceKind::Brightness => {}
                EnhanceKind::Contrast => {
                    let weights = luma_weights("contrast", dims.c).unwrap_or(&[1.0]);
                    let total = sum8(gm.len(), |i| gm[i]);
                    for (c, wc) in weights.iter().enumerate() {
                        let add = k * wc * total / plane as f32;
                        grad_src[c * plane..(c + 1) * plane]
                            .iter_mut()
                            .for_each(|v| *v += add);
                    }
                }
                EnhanceKind::Color => {
                    let weights = luma_weights("color", dims.c).unwrap_or(&[1.0]);
                    let mut per_pixel = vec![0f32; plane];
                    for m in gm.chunks_exact(plane) {
                        per_pixel.iter_mut().zip(m).for_each(|(t, m)| *t += m);
                    }
                    for (c, wc) in weights.iter().enumerate() {
                        let kw = k * wc;
                        for (v, t) in grad_src[c * plane..(c + 1) * plane]
                            .iter_mut()
                            .zip(&per_pixel)
                        {
                            *v += kw * t;
                        }
                    }
                }
                EnhanceKind::Sharpness => {
                    for (g, gs) in gm.chunks_exact(plane).zip(grad_src.chunks_exact_mut(plane)) {
                        smooth_plane_transpose_add(g, dims.h, dims.w, k, gs, t, hs);
                    }
                }
            }
            if let Some(d) = out_dot {
                *d = total_dot;
            }
            df * (ENHANCE_RANGE.high - ENHANCE_RANGE.low)
        })
    }

    /// The degenerate image (all channels) into the front of `deg` (which only grows: the
    /// kinds share one scratch buffer, and shrinking it would zero it again on the next growth): unused for brightness, one value for
    /// contrast, a plane for color, the smoothed image for sharpness.
    fn degenerate(&self, src: &[f32], dims: ImageDims, deg: &mut Vec<f32>, hs: &mut Vec<f32>) {
        let plane = dims.plane();
        match self.kind {
            EnhanceKind::Brightness => {}
            EnhanceKind::Contrast => {
                let weights = luma_weights("contrast", dims.c).unwrap_or(&[1.0]);
                let mut mean = 0f32;
                for (c, wc) in weights.iter().enumerate() {
                    let s = &src[c * plane..(c + 1) * plane];
                    mean += wc * sum8(plane, |i| s[i]);
                }
                grow(deg, 1);
                deg[0] = mean / plane as f32;
            }
            EnhanceKind::Color => {
                let weights = luma_weights("color", dims.c).unwrap_or(&[1.0]);
                grow(deg, plane);
                for (c, wc) in weights.iter().enumerate() {
                    let d = deg[..plane].iter_mut();
                    if c == 0 {
                        d.zip(&src[..plane]).for_each(|(d, x)| *d = wc * x);
                    } else {
                        d.zip(&src[c * plane..(c + 1) * plane])
                            .for_each(|(d, x)| *d += wc * x);
                    }
                }
            }
            EnhanceKind::Sharpness => {
                // (every element is written by smooth_plane)
                grow(deg, src.len());
                for (s, d) in src
                    .chunks_exact(plane)
                    .zip(deg[..src.len()].chunks_exact_mut(plane))
                {
                    smooth_plane(s, dims.h, dims.w, d, hs);
                }
            }
        }
    }

    /// The degenerate values of channel plane `c`, as a slice the length of a plane (or one
    /// value repeated through `scalar`).
    fn deg_plane<'a>(&self, deg: &'a [f32], c: usize, plane: usize) -> DegPlane<'a> {
        match self.kind {
            EnhanceKind::Brightness => DegPlane::Scalar(0.0),
            EnhanceKind::Contrast => DegPlane::Scalar(deg[0]),
            EnhanceKind::Color => DegPlane::Plane(&deg[..plane]),
            EnhanceKind::Sharpness => DegPlane::Plane(&deg[c * plane..(c + 1) * plane]),
        }
    }
}

enum DegPlane<'a> {
    Scalar(f32),
    Plane(&'a [f32]),
}

impl ImageKernel for EnhanceKernel {
    fn forward(&self, _: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let f = ENHANCE_RANGE.param(magnitude, 1.0);
        let plane = dims.plane();
        with_enhance_scratch(|sc| {
            let EnhanceScratch { deg, hs, .. } = sc;
            self.degenerate(src, dims, deg, hs);
            for (c, (s, d)) in src
                .chunks_exact(plane)
                .zip(dst.chunks_exact_mut(plane))
                .enumerate()
            {
                match self.deg_plane(deg, c, plane) {
                    DegPlane::Scalar(g) => d
                        .iter_mut()
                        .zip(s)
                        .for_each(|(d, x)| *d = (g + f * (x - g)).clamp(0.0, 1.0)),
                    DegPlane::Plane(gp) => {
                        for ((d, x), g) in d.iter_mut().zip(s).zip(gp) {
                            *d = (g + f * (x - g)).clamp(0.0, 1.0);
                        }
                    }
                }
            }
        })
    }

    fn recompute_output(&self) -> bool {
        true
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
        _tmp: &mut [f32],
    ) -> (f32, f32) {
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

/// The plain-candle blends.
fn enhance_reference(kind: EnhanceKind, images: &Tensor, magnitudes: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let f = per_image4(&magnitudes.affine(
        (ENHANCE_RANGE.high - ENHANCE_RANGE.low) as f64,
        ENHANCE_RANGE.low as f64,
    )?)?;
    let luma = |images: &Tensor| -> Result<Tensor> {
        let weights = luma_weights(kind.name(), c)?;
        let wt = Tensor::new(weights, images.device())?
            .to_dtype(images.dtype())?
            .reshape((1, c, 1, 1))?;
        images.broadcast_mul(&wt)?.sum_keepdim(1)
    };
    let deg = match kind {
        EnhanceKind::Brightness => return images.broadcast_mul(&f)?.clamp(0f32, 1f32),
        EnhanceKind::Contrast => luma(images)?
            .reshape((b, 1, h * w))?
            .mean_keepdim(2)?
            .unsqueeze(3)?,
        EnhanceKind::Color => luma(images)?,
        EnhanceKind::Sharpness => {
            if h < 3 || w < 3 {
                images.clone()
            } else {
                let mut sum = images
                    .narrow(2, 1, h - 2)?
                    .narrow(3, 1, w - 2)?
                    .affine(4.0, 0.0)?;
                for dy in 0..3 {
                    for dx in 0..3 {
                        sum = (sum + images.narrow(2, dy, h - 2)?.narrow(3, dx, w - 2)?)?;
                    }
                }
                let inner = sum
                    .affine(1.0 / 13.0, 0.0)?
                    .pad_with_zeros(2, 1, 1)?
                    .pad_with_zeros(3, 1, 1)?;
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
                let border = Tensor::from_vec(border, (1, 1, h, w), images.device())?
                    .to_dtype(images.dtype())?;
                (inner + images.broadcast_mul(&border)?)?
            }
        }
    };
    let diff = images.broadcast_sub(&deg)?;
    deg.broadcast_add(&diff.broadcast_mul(&f)?)?
        .clamp(0f32, 1f32)
}
