//! `Noise`: additive Gaussian noise with standard deviation up to 0.1 (the tutorial's extra op).
use std::sync::{Arc, Mutex};

use candle::{bail, DType, Device, Result, Tensor};
use rand::rngs::StdRng;
use rayon::prelude::*;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::enhance::{clamp_grad, sum8};
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
/// Reads `params.noise` `(B, C, H, W)`, or draws `n` from `params.seeds` (one seed per image,
/// [`standard_normals`]; what `sample` stores). No PIL reference. Image and magnitude gradients
/// exact.
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
            .for_each(|(chunk, &seed)| standard_normals(seed, chunk));
    }
    Ok(out)
}

/// Fills `out` with standard-normal samples determined by `seed`: Box-Muller on a
/// counter-based hash of `(seed, index)` (Chris Wellons' `lowbias32` mixer), with polynomial
/// `ln`, `sin` and `cos` accurate to about 1e-7. Every sample depends only on the seed and its
/// position, so the loop vectorizes (a sequential generator with a ziggurat was 10% of the
/// tutorial mixture's time). The first half of `out` takes the cosine branch of each pair, the
/// second half the sine branch.
pub fn standard_normals(seed: u64, out: &mut [f32]) {
    let k0 = lowbias32(seed as u32 ^ 0x9e37_79b9);
    let k1 = lowbias32((seed >> 32) as u32 ^ k0 ^ 0x85eb_ca6b);
    let half = out.len().div_ceil(2);
    let (first, second) = out.split_at_mut(half);
    let pairs = second.len();
    let (head, last) = first.split_at_mut(pairs);
    for (j, (a, b)) in head.iter_mut().zip(second.iter_mut()).enumerate() {
        (*a, *b) = box_muller(j as u32, k0, k1);
    }
    if let Some(z) = last.first_mut() {
        *z = box_muller(pairs as u32, k0, k1).0;
    }
}

/// A bijective 32-bit mixer (Chris Wellons, "lowbias32").
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The pair `(r cos t, r sin t)`, `r = sqrt(-2 ln u1)`, `t = 2 pi u2`, for counter `j`.
#[inline(always)]
fn box_muller(j: u32, k0: u32, k1: u32) -> (f32, f32) {
    let h1 = lowbias32(j ^ k0);
    let h2 = lowbias32(h1 ^ k1);
    // (24-bit values, converted through i32: one instruction, where u32 takes several)
    let u1 = ((h1 >> 8) as i32 as f32 + 1.0) * (1.0 / 16_777_216.0); // (0, 1]
    let u2 = (h2 >> 8) as i32 as f32 * (1.0 / 16_777_216.0); // [0, 1)
    let r = (-2.0 * ln_approx(u1)).max(0.0).sqrt();
    let (s, c) = sincos_turns(u2);
    (r * c, r * s)
}

/// `ln(x)` for finite `x > 0`: `e ln 2 + ln m` with `m` in [sqrt(1/2), sqrt(2)) and the atanh
/// series `ln m = 2 (s + s^3/3 + ... + s^9/9)`, `s = (m - 1)/(m + 1)`.
#[inline(always)]
fn ln_approx(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + 2.0 * s * series
}

/// `(sin, cos)` of `2 pi t` for `t` in [0, 1): the quadrant from `4 t`, then Taylor series of
/// degree 11 / 12 on [0, pi/2).
#[inline(always)]
fn sincos_turns(t: f32) -> (f32, f32) {
    let q = t * 4.0;
    let k = q.floor();
    let phi = (q - k) * std::f32::consts::FRAC_PI_2;
    let p2 = phi * phi;
    let s = phi
        * (1.0
            + p2 * (-1.0 / 6.0
                + p2 * (1.0 / 120.0
                    + p2 * (-1.0 / 5040.0 + p2 * (1.0 / 362_880.0 + p2 * (-1.0 / 39_916_800.0))))));
    let c = 1.0
        + p2 * (-0.5
            + p2 * (1.0 / 24.0
                + p2 * (-1.0 / 720.0
                    + p2 * (1.0 / 40_320.0
                        + p2 * (-1.0 / 3_628_800.0 + p2 * (1.0 / 479_001_600.0))))));
    // rotate by k quarter turns: (sin, cos) of phi + k pi/2, k in {0, 1, 2, 3} (float
    // compares, not an int cast: Rust's saturating `as i32` kept this loop scalar)
    let odd = (k == 1.0) | (k == 3.0);
    let (s1, c1) = if odd { (c, -s) } else { (s, c) };
    if k >= 2.0 {
        (-s1, -c1)
    } else {
        (s1, c1)
    }
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
        let (b, c, h, w) = shape;
        let source = match (&params.noise, &params.seeds) {
            (Some(_), _) => NoiseSource::Given(noise_values(params, shape)?),
            (None, Some(seeds)) if seeds.len() == b => NoiseSource::Seeds(seeds.clone()),
            // the errors of noise_values (missing or wrong-length seeds)
            _ => NoiseSource::Given(noise_values(params, shape)?),
        };
        Ok(Some(Arc::new(NoiseKernel {
            source,
            drawn: (0..b).map(|_| Mutex::new(None)).collect(),
            len: c * h * w,
        })))
    }
}

/// Where a noise kernel's standard normals come from.
enum NoiseSource {
    /// `params.noise`, flattened `(B, C, H, W)`.
    Given(Vec<f32>),
    /// One seed per image ([`standard_normals`]), drawn lazily per image.
    Seeds(Vec<u64>),
}

struct NoiseKernel {
    source: NoiseSource,
    /// The normals `forward` drew for each image (from seeds), kept for its backward pass: drawn
    /// in the parallel forward loop, where the image is in cache, instead of for the whole batch
    /// when the kernel is built.
    drawn: Vec<Mutex<Option<Vec<f32>>>>,
    /// Elements per image the kernel was built for.
    len: usize,
}

impl NoiseKernel {
    /// Runs `f` on image `index`'s normals (`n` of them): the given ones, the ones `forward`
    /// kept, or freshly drawn (and kept if `keep`).
    fn with_normals<R>(
        &self,
        index: usize,
        n: usize,
        keep: bool,
        f: impl FnOnce(&[f32]) -> R,
    ) -> R {
        let seed = match &self.source {
            NoiseSource::Given(v) => return f(&v[index * n..(index + 1) * n]),
            NoiseSource::Seeds(seeds) => seeds[index],
        };
        let slot = self.drawn.get(index).filter(|_| n == self.len);
        if let Some(slot) = slot {
            if let Ok(guard) = slot.lock() {
                if let Some(z) = guard.as_ref().filter(|z| z.len() == n) {
                    return f(z);
                }
            }
        }
        let mut z = vec![0f32; n];
        standard_normals(seed, &mut z);
        let r = f(&z);
        if keep {
            if let Some(Ok(mut guard)) = slot.map(|s| s.lock()) {
                *guard = Some(z);
            }
        }
        r
    }
}

impl ImageKernel for NoiseKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let std = magnitude * NOISE_RANGE.high;
        self.with_normals(index, dims.len(), true, |n| {
            for ((d, x), z) in dst.iter_mut().zip(src).zip(n) {
                *d = (x + z * std).clamp(0.0, 1.0);
            }
        })
    }

    fn recompute_output(&self) -> bool {
        // the noise is kept in the kernel: the output is one pass over it
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
        let std = magnitude * NOISE_RANGE.high;
        self.with_normals(index, dims.len(), false, |n| {
            let len = grad_out.len();
            let (g, x, z, gs) = (
                &grad_out[..len],
                &src[..len],
                &n[..len],
                &mut grad_src[..len],
            );
            // one pass: the image gradient and the magnitude's terms (sum8 vectorizes the body)
            let dm = sum8(len, |i| {
                let gc = g[i] * clamp_grad(x[i] + z[i] * std);
                gs[i] += scale * gc;
                gc * z[i]
            });
            dm * NOISE_RANGE.high
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_sincos_approximations_are_accurate() {
        for i in 1..=10_000 {
            let x = i as f32 / 10_000.0;
            let (a, e) = (ln_approx(x), x.ln());
            assert!(
                (a - e).abs() <= 2e-7 * (1.0 + e.abs()),
                "ln({x}) = {a}, expected {e}"
            );
            let t = (i - 1) as f32 / 10_000.0;
            let (s, c) = sincos_turns(t);
            let th = (t as f64) * std::f64::consts::TAU;
            assert!(
                (s as f64 - th.sin()).abs() < 5e-7 && (c as f64 - th.cos()).abs() < 5e-7,
                "sincos at {t}: {s} {c}"
            );
        }
        assert!((ln_approx(f32::MIN_POSITIVE) - f32::MIN_POSITIVE.ln()).abs() < 1e-4);
    }

    #[test]
    fn standard_normals_have_the_normal_distribution() {
        let mut z = vec![0f32; 200_000];
        standard_normals(7, &mut z);
        let n = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let within = |k: f32| z.iter().filter(|v| v.abs() < k).count() as f64 / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        // P(|z| < 1), P(|z| < 2), P(|z| < 3) of the standard normal
        assert!((within(1.0) - 0.6827).abs() < 0.005, "{}", within(1.0));
        assert!((within(2.0) - 0.9545).abs() < 0.003, "{}", within(2.0));
        assert!((within(3.0) - 0.9973).abs() < 0.001, "{}", within(3.0));
        assert!(z.iter().all(|v| v.is_finite() && v.abs() < 6.5));
        // the two halves (cosine and sine branches) are uncorrelated
        let h = z.len() / 2;
        let corr = (0..h).map(|i| z[i] as f64 * z[i + h] as f64).sum::<f64>() / h as f64;
        assert!(corr.abs() < 0.01, "correlation {corr}");
    }

    #[test]
    fn standard_normals_follow_the_seed() {
        let (mut a, mut b, mut c) = (vec![0f32; 64], vec![0f32; 64], vec![0f32; 64]);
        standard_normals(1, &mut a);
        standard_normals(1, &mut b);
        standard_normals(2, &mut c);
        assert_eq!(a, b);
        assert!(a.iter().zip(&c).filter(|(x, y)| x != y).count() > 60);
    }
}
