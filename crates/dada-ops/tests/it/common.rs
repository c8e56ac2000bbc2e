//! Helpers shared by the integration tests.
use std::sync::Arc;

use candle::{DType, Device, Result, Tensor, Var};
use dada_ops::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Every built-in op in every configuration worth testing.
pub fn all_variants() -> Vec<Arc<dyn AugOp>> {
    let mut v: Vec<Arc<dyn AugOp>> = Vec::new();
    for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
        v.push(Arc::new(ShearX::new(interp)));
        v.push(Arc::new(ShearY::new(interp)));
        v.push(Arc::new(TranslateX::new(interp)));
        v.push(Arc::new(TranslateY::new(interp)));
        v.push(Arc::new(Rotate::new(interp)));
    }
    v.push(Arc::new(
        ShearX::new(Interpolation::Nearest).with_estimator(Estimator::StraightThrough),
    ));
    v.push(Arc::new(
        Rotate::new(Interpolation::Nearest).with_estimator(Estimator::StraightThrough),
    ));
    for e in [Estimator::Surrogate, Estimator::StraightThrough] {
        v.push(Arc::new(Solarize::new(e)));
        v.push(Arc::new(Posterize::new(e)));
        v.push(Arc::new(Cutout::new(CutoutEdge::Hard).with_estimator(e)));
    }
    v.push(Arc::new(Cutout::new(CutoutEdge::Soft)));
    v.push(Arc::new(AutoContrast));
    v.push(Arc::new(Invert));
    v.push(Arc::new(Equalize));
    v.push(Arc::new(Contrast));
    v.push(Arc::new(Color));
    v.push(Arc::new(Brightness));
    v.push(Arc::new(Sharpness));
    v.push(Arc::new(Identity));
    v.push(Arc::new(FlipLR));
    v.push(Arc::new(Noise));
    v
}

/// A short label for an op variant in failure messages.
pub fn label(op: &dyn AugOp) -> String {
    format!("{} ({:?})", op.name(), op.magnitude_grad())
}

/// Params for `op` with the signs replaced by an alternating `+1, -1, ...` pattern, so a
/// batch covers both signs.
pub fn params_for(op: &dyn AugOp, b: usize, seed: u64, dev: &Device) -> Result<OpParams> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut p = op.sample(b, &mut rng, dev)?;
    if p.signs.is_some() {
        let s: Vec<f32> = (0..b)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        p.signs = Some(Tensor::new(s.as_slice(), dev)?);
    }
    Ok(p)
}

/// `(output, d L / d images, d L / d magnitudes)` for `L = sum(out * r)` (`r` fixed).
pub fn value_and_grads(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    images: &Tensor,
    magnitudes: &Tensor,
    r: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let x = Var::from_tensor(images)?;
    let m = Var::from_tensor(magnitudes)?;
    let out = f(x.as_tensor(), m.as_tensor())?;
    let grads = (&out * r)?.sum_all()?.backward()?;
    let gx = grads
        .get(x.as_tensor())
        .cloned()
        .unwrap_or(images.zeros_like()?);
    let gm = grads
        .get(m.as_tensor())
        .cloned()
        .unwrap_or(magnitudes.zeros_like()?);
    Ok((out, gx, gm))
}

/// Largest absolute difference between two tensors.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a.to_dtype(DType::F32)? - b.to_dtype(DType::F32)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()
}

/// Largest absolute value of a tensor.
pub fn max_abs(a: &Tensor) -> Result<f32> {
    a.to_dtype(DType::F32)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()
}

/// A fixed random upstream gradient of the given shape.
pub fn upstream(
    shape: (usize, usize, usize, usize),
    seed: u64,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    (testing::test_images(shape, seed, DType::F32, dev)?.affine(2.0, -1.0)?).to_dtype(dtype)
}
