//! `weighted_mixture`: the fused kernel agrees with the reference path; the reference agrees
//! with finite differences.
use std::sync::Arc;

use candle::{DType, Device, Result, Tensor, Var};
use dada_ops::testing::{check_grad, test_images};
use dada_ops::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::*;

/// `(out, grad images, grad magnitudes, grad weights)` of `sum(mixture * r)`.
fn mixture_grads(
    fused: bool,
    ops: &OpSet,
    images: &Tensor,
    magnitudes: &Tensor,
    weights: &Tensor,
    params: &[OpParams],
    r: &Tensor,
) -> Result<[Tensor; 4]> {
    let (x, m, w) = (
        Var::from_tensor(images)?,
        Var::from_tensor(magnitudes)?,
        Var::from_tensor(weights)?,
    );
    let f = if fused {
        weighted_mixture
    } else {
        weighted_mixture_reference
    };
    let out = f(ops, x.as_tensor(), m.as_tensor(), w.as_tensor(), params)?;
    let grads = (&out * r)?.sum_all()?.backward()?;
    let get = |v: &Var| {
        grads
            .get(v.as_tensor())
            .cloned()
            .unwrap_or_else(|| v.as_tensor().zeros_like().unwrap())
    };
    Ok([out.clone(), get(&x), get(&m), get(&w)])
}

#[test]
fn fused_mixture_matches_reference() -> Result<()> {
    let dev = Device::Cpu;
    let b = 5;
    let shape = (b, 3, 8, 9);
    let images = test_images(shape, 21, DType::F32, &dev)?;
    let r = upstream(shape, 22, DType::F32, &dev)?;
    for ops in [OpSet::paper(), OpSet::tutorial()] {
        let k = ops.len();
        let mut rng = StdRng::seed_from_u64(23);
        let params = ops.sample_all(b, &mut rng, &dev)?;
        let weights = candle_nn_free_softmax(&Tensor::randn(0f32, 1.0, (b, k), &dev)?)?;
        for magnitudes in [
            Tensor::rand(0.05f32, 0.95, b, &dev)?,
            Tensor::rand(0.05f32, 0.95, (b, k), &dev)?,
        ] {
            let fused = mixture_grads(true, &ops, &images, &magnitudes, &weights, &params, &r)?;
            let refr = mixture_grads(false, &ops, &images, &magnitudes, &weights, &params, &r)?;
            for (what, (a, e)) in ["out", "images", "magnitudes", "weights"]
                .iter()
                .zip(fused.iter().zip(&refr))
            {
                assert_eq!(a.dims(), e.dims(), "{what}");
                let d = max_abs_diff(a, e)?;
                assert!(
                    d <= 1e-4 * (1.0 + max_abs(e)?),
                    "{:?} {what}: differ by {d}",
                    ops.names()
                );
            }
        }
    }
    Ok(())
}

/// Row softmax with plain candle ops (dada-ops does not depend on candle-nn).
fn candle_nn_free_softmax(t: &Tensor) -> Result<Tensor> {
    let e = t.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

#[test]
fn mixture_of_one_op_is_that_op() -> Result<()> {
    let dev = Device::Cpu;
    let images = test_images((3, 3, 7, 7), 24, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.2f32, 0.6, 0.9], &dev)?;
    let ops = OpSet::new(vec![Arc::new(Rotate::default())]);
    let params = ops.sample_all(3, &mut StdRng::seed_from_u64(25), &dev)?;
    let weights = Tensor::ones((3, 1), DType::F32, &dev)?;
    let mixed = weighted_mixture(&ops, &images, &magnitudes, &weights, &params)?;
    let single = ops.get(0).apply(&images, &magnitudes, &params[0])?;
    assert!(max_abs_diff(&mixed, &single)? < 1e-6);
    let err =
        weighted_mixture(&ops, &images, &magnitudes, &weights.squeeze(1)?, &params).unwrap_err();
    assert!(err.to_string().contains("weights must be (3, 1)"), "{err}");
    Ok(())
}

#[test]
fn reference_mixture_gradients_match_finite_differences() -> Result<()> {
    let dev = Device::Cpu;
    // Ops whose image and magnitude gradients are both exact.
    let ops = OpSet::new(vec![
        Arc::new(ShearX::new(Interpolation::Bilinear)),
        Arc::new(Rotate::new(Interpolation::Bilinear)),
        Arc::new(Contrast),
        Arc::new(Sharpness),
        Arc::new(Cutout::new(CutoutEdge::Soft)),
        Arc::new(AutoContrast),
        Arc::new(Noise),
    ]);
    let (b, k) = (2, ops.len());
    let images = test_images((b, 3, 5, 5), 26, DType::F64, &dev)?;
    let magnitudes = Tensor::rand(0.1f64, 0.9, (b, k), &dev)?;
    let weights = Tensor::rand(0.1f64, 1.0, (b, k), &dev)?;
    let params = ops.sample_all(b, &mut StdRng::seed_from_u64(27), &dev)?;
    let report = check_grad(
        |t| weighted_mixture_reference(&ops, &t[0], &t[1], &t[2], &params),
        &[images, magnitudes, weights],
        1e-6,
    )?;
    assert!(report.within(1e-4), "{:?}", report.max_rel_err);
    Ok(())
}
