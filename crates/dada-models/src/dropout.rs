//! Dropout with reproducible masks: the mask of every call follows from a seed, so a training
//! run with dropout repeats exactly (candle's `dropout` draws from an unseeded generator).
use std::sync::atomic::{AtomicU64, Ordering};

use candle::{bail, Result, Tensor};
use rayon::prelude::*;

/// Inverted dropout with seeded masks: call `t` of a layer keeps element `i` iff a hash of
/// `(seed, t, i)` is at least `p * 2^32`, and scales the kept ones by `1 / (1 - p)`.
///
/// Each call draws a fresh mask; a layer's masks depend only on its seed and on how many times
/// it has been called, so a run started with the same seed draws the same masks.
#[derive(Debug)]
pub struct SeededDropout {
    p: f32,
    seed: u64,
    calls: AtomicU64,
}

impl Clone for SeededDropout {
    fn clone(&self) -> Self {
        Self {
            p: self.p,
            seed: self.seed,
            calls: AtomicU64::new(self.calls.load(Ordering::Relaxed)),
        }
    }
}

impl SeededDropout {
    /// Dropout with probability `p` in [0, 1) and masks drawn from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            bail!("dropout probability must be in [0, 1), got {p}")
        }
        Ok(Self {
            p,
            seed,
            calls: AtomicU64::new(0),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// `x` with a fresh mask applied (the next call draws the next mask). Differentiable in
    /// `x`: the gradient is the same mask.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.p == 0.0 {
            return Ok(x.clone());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mask = keep_mask(self.seed, call, x.elem_count(), self.p);
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// `1 / (1 - p)` for kept elements and 0 for dropped ones, for call `call` of a layer seeded
/// with `seed`: a counter-based hash per element, so the mask is filled in parallel.
fn keep_mask(seed: u64, call: u64, n: usize, p: f32) -> Vec<f32> {
    let k = splitmix64(seed ^ splitmix64(call.wrapping_add(0x632b_e59b_d9b4_e019)));
    let (k0, k1, k2) = (k as u32, (k >> 32) as u32, splitmix64(k) as u32);
    let threshold = ((p as f64) * 4_294_967_296.0).min(u32::MAX as f64) as u32;
    let scale = 1.0 / (1.0 - p);
    let mut mask = vec![0f32; n];
    mask.par_chunks_mut(1 << 14)
        .enumerate()
        .for_each(|(c, chunk)| {
            let base = (c as u64) << 14;
            for (j, m) in chunk.iter_mut().enumerate() {
                let i = base + j as u64;
                let h = lowbias32(lowbias32(i as u32 ^ k0) ^ k1 ^ ((i >> 32) as u32).wrapping_mul(k2));
                *m = if h >= threshold { scale } else { 0.0 };
            }
        });
    mask
}

/// A bijective 32-bit mixer (Chris Wellons' "lowbias32").
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// SplitMix64's finaliser.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device, Var};

    #[test]
    fn masks_follow_the_seed_and_the_call() {
        let x = Tensor::ones((4, 8, 16, 16), DType::F32, &Device::Cpu).unwrap();
        let (a, b, c) = (
            SeededDropout::new(0.3, 7).unwrap(),
            SeededDropout::new(0.3, 7).unwrap(),
            SeededDropout::new(0.3, 8).unwrap(),
        );
        let v = |d: &SeededDropout| d.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (a1, b1, c1) = (v(&a), v(&b), v(&c));
        assert_eq!(a1, b1, "same seed, same first mask");
        assert_ne!(a1, c1, "another seed, another mask");
        let a2 = v(&a);
        assert_ne!(a1, a2, "the next call draws a new mask");
        assert_eq!(a2, v(&b), "and the same next mask for the same seed");
        // a clone continues from where the original is
        assert_eq!(v(&a.clone()), v(&a));
    }

    #[test]
    fn drops_the_requested_fraction_and_keeps_the_mean() {
        for p in [0.1f32, 0.3, 0.5, 0.9] {
            let d = SeededDropout::new(p, 3).unwrap();
            let x = Tensor::ones(200_000, DType::F32, &Device::Cpu).unwrap();
            let y: Vec<f32> = d.forward(&x).unwrap().to_vec1().unwrap();
            let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
            assert!((dropped - p as f64).abs() < 0.005, "p {p}: dropped {dropped}");
            let kept = 1.0 / (1.0 - p);
            assert!(y.iter().all(|&v| v == 0.0 || (v - kept).abs() < 1e-6));
            let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
            assert!((mean - 1.0).abs() < 0.02, "p {p}: mean {mean}");
        }
        assert!(SeededDropout::new(1.0, 0).is_err());
        assert!(SeededDropout::new(-0.1, 0).is_err());
        let x = Tensor::ones(10, DType::F32, &Device::Cpu).unwrap();
        let y: Vec<f32> = SeededDropout::new(0.0, 0).unwrap().forward(&x).unwrap().to_vec1().unwrap();
        assert_eq!(y, vec![1.0; 10]);
    }

    #[test]
    fn the_gradient_is_the_mask() {
        let x = Var::from_tensor(&Tensor::arange(0f32, 64.0, &Device::Cpu).unwrap().reshape((4, 16)).unwrap()).unwrap();
        let d = SeededDropout::new(0.5, 11).unwrap();
        let y = d.forward(x.as_tensor()).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx: Vec<f32> = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        // replaying call 0 of the same seed gives the mask
        let mask = keep_mask(11, 0, 64, 0.5);
        assert_eq!(gx, mask);
        let yv: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (&yi, &m)) in yv.iter().zip(&mask).enumerate() {
            assert_eq!(yi, i as f32 * m);
        }
    }
}
