//! `StraightThrough`: any op with DADA's all-op straight-through magnitude gradient.
//!
//! The official DADA search applies every op in PIL and attaches the magnitude to the result
//! as `out + m - m.detach()`, whatever the op: the magnitude's gradient is the sum of the
//! upstream gradient over the image, for shear and brightness alike. The built-in ops give the
//! exact derivative where the op is smooth in its parameter (and a surrogate where it is not);
//! this wrapper reproduces the official estimator for comparison, keeping the wrapped op's
//! forward values and image gradient.
use std::sync::Arc;

use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{ImageDims, ImageKernel};
use crate::ops::ste;
use crate::{AugOp, MagnitudeGrad, MagnitudeRange, OpParams, OpSet};

/// `inner` with the straight-through magnitude gradient `d out / d m = 1` per output element.
/// Ops without a magnitude are left as they are by [`OpSet::straight_through`].
#[derive(Debug, Clone)]
pub struct StraightThrough {
    inner: Arc<dyn AugOp>,
}

impl StraightThrough {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn AugOp>) -> Self {
        Self { inner }
    }

    /// The wrapped op.
    pub fn inner(&self) -> &Arc<dyn AugOp> {
        &self.inner
    }
}

impl AugOp for StraightThrough {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn range(&self) -> Option<MagnitudeRange> {
        self.inner.range()
    }

    fn magnitude_grad(&self) -> MagnitudeGrad {
        MagnitudeGrad::StraightThrough
    }

    fn sample(&self, b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<OpParams> {
        self.inner.sample(b_sz, rng, dev)
    }

    fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
        let out = self.inner.apply(images, &magnitudes.detach(), params)?;
        out.broadcast_add(&ste(magnitudes)?)
    }

    fn apply_reference(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        params: &OpParams,
    ) -> Result<Tensor> {
        let out = self
            .inner
            .apply_reference(images, &magnitudes.detach(), params)?;
        out.broadcast_add(&ste(magnitudes)?)
    }

    fn kernel(
        &self,
        params: &OpParams,
        shape: (usize, usize, usize, usize),
    ) -> Result<Option<Arc<dyn ImageKernel>>> {
        Ok(self
            .inner
            .kernel(params, shape)?
            .map(|inner| Arc::new(StraightThroughKernel { inner }) as Arc<dyn ImageKernel>))
    }
}

struct StraightThroughKernel {
    inner: Arc<dyn ImageKernel>,
}

impl ImageKernel for StraightThroughKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        self.inner.forward(index, magnitude, src, dims, dst)
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
        // the image gradient is the op's own; its magnitude gradient is discarded
        self.inner
            .backward(index, magnitude, src, dims, grad_out, scale, grad_src);
        grad_out.iter().map(|&g| g as f64).sum::<f64>() as f32
    }

    fn recompute_output(&self) -> bool {
        self.inner.recompute_output()
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
        self.inner
            .output_dot(index, magnitude, src, dims, grad_out, tmp)
    }
}

impl OpSet {
    /// The same set with every op that has a magnitude wrapped in [`StraightThrough`] (DADA's
    /// official estimator for every op); magnitude-free ops are kept as they are.
    pub fn straight_through(&self) -> OpSet {
        OpSet::new(
            self.iter()
                .map(|op| {
                    if op.range().is_some() && op.magnitude_grad() != MagnitudeGrad::StraightThrough
                    {
                        Arc::new(StraightThrough::new(op.clone())) as Arc<dyn AugOp>
                    } else {
                        op.clone()
                    }
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{weighted_mixture, weighted_mixture_reference};
    use rand::SeedableRng;

    fn images(b: usize) -> Tensor {
        let n = b * 3 * 8 * 8;
        let v: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32) / 100.0).collect();
        Tensor::from_vec(v, (b, 3, 8, 8), &Device::Cpu).unwrap()
    }

    #[test]
    fn keeps_values_and_image_gradient_and_sums_the_upstream_gradient() {
        let dev = Device::Cpu;
        let x = candle::Var::from_tensor(&images(2)).unwrap();
        let m = candle::Var::new(&[0.3f32, 0.8], &dev).unwrap();
        let upstream = Tensor::from_vec(
            (0..2 * 3 * 64)
                .map(|i| ((i % 7) as f32 - 3.0) / 10.0)
                .collect::<Vec<_>>(),
            (2, 3, 8, 8),
            &dev,
        )
        .unwrap();
        for name in ["shear_x", "brightness", "posterize", "cutout"] {
            let op = OpSet::by_name(name).unwrap();
            let st = StraightThrough::new(op.clone());
            let params = op.sample(2, &mut StdRng::seed_from_u64(1), &dev).unwrap();
            let plain = op.apply(&x, &m, &params).unwrap();
            let wrapped = st.apply(&x, &m, &params).unwrap();
            let diff = (&plain - &wrapped)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-6, "{name}: values differ by {diff}");
            let g_plain = (plain * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_wrapped = (wrapped * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gx = (g_plain.get(&x).unwrap() - g_wrapped.get(&x).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(gx < 1e-5, "{name}: image gradients differ by {gx}");
            let gm = g_wrapped.get(&m).unwrap().to_vec1::<f32>().unwrap();
            let per_image = upstream.sum((1, 2, 3)).unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in gm.iter().zip(&per_image) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{name}: magnitude gradient {a} != upstream sum {b}"
                );
            }
            assert_eq!(st.magnitude_grad(), MagnitudeGrad::StraightThrough);
            assert_eq!(st.name(), name);
        }
    }

    #[test]
    fn fused_mixture_matches_the_reference() {
        let dev = Device::Cpu;
        let ops = OpSet::paper().straight_through();
        assert_eq!(ops.names(), OpSet::paper().names());
        assert_eq!(
            ops.get(5).magnitude_grad(),
            MagnitudeGrad::None,
            "auto_contrast stays unwrapped"
        );
        let b = 3;
        let x = candle::Var::from_tensor(&images(b)).unwrap();
        let m = candle::Var::from_tensor(
            &Tensor::from_vec(
                (0..b * 15)
                    .map(|i| (i % 10) as f32 / 10.0 + 0.05)
                    .collect::<Vec<_>>(),
                (b, 15),
                &dev,
            )
            .unwrap(),
        )
        .unwrap();
        let w = Tensor::from_vec(
            (0..b * 15)
                .map(|i| (i % 4) as f32 / 10.0)
                .collect::<Vec<_>>(),
            (b, 15),
            &dev,
        )
        .unwrap();
        let params = ops
            .sample_all(b, &mut StdRng::seed_from_u64(3), &dev)
            .unwrap();
        let fused = weighted_mixture(&ops, &x, &m, &w, &params).unwrap();
        let reference = weighted_mixture_reference(&ops, &x, &m, &w, &params).unwrap();
        let d = (&fused - &reference)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "values differ by {d}");
        let gf = fused.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gr = reference
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let a = gf
            .get(&m)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let r = gr
            .get(&m)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, (a, r)) in a.iter().zip(&r).enumerate() {
            assert!(
                (a - r).abs() <= 1e-3 * (1.0 + r.abs()),
                "magnitude gradient {i}: fused {a} vs reference {r}"
            );
        }
    }
}
