//! Test support: seeded f64 inputs, small operators over candle ops, finite differences.
use std::sync::Arc;

use candle::{DType, Device, Tensor, Var};
use dada_compose::{Batch, ElementOperator, Operator, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Batch size, channels, height, width of the test images.
pub const SHAPE: (usize, usize, usize, usize) = (4, 2, 3, 3);

/// A seeded `(dims)` f64 tensor uniform in `[low, high)`.
pub fn uniform(seed: u64, dims: &[usize], low: f64, high: f64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(low..high)).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

/// Images `(B,C,H,W)` and magnitudes `(B,)` as variables, seeded.
pub fn inputs(seed: u64) -> (Var, Var) {
    let (b, c, h, w) = SHAPE;
    let images = Var::from_tensor(&uniform(seed, &[b, c, h, w], 0.0, 1.0)).unwrap();
    // Magnitudes away from 0.5, where the conditions of the tests switch.
    let magnitudes = Tensor::new(&[0.2f64, 0.8, 0.35, 0.9], &Device::Cpu).unwrap();
    (images, Var::from_tensor(&magnitudes).unwrap())
}

/// The `{image, magnitude}` batch of two variables.
pub fn batch_of(images: &Var, magnitudes: &Var) -> Batch {
    Batch::new([
        ("image", images.as_tensor().clone()),
        ("magnitude", magnitudes.as_tensor().clone()),
    ])
    .unwrap()
}

/// `image <- image * k` (batched).
pub fn scale(k: f64) -> Arc<dyn Operator> {
    ElementOperator::map(format!("scale_{k}"), "image", move |x| x * k).arc()
}

/// `image <- image^2`, written per element.
pub fn square() -> Arc<dyn Operator> {
    ElementOperator::per_element("square", |element| {
        let x = element.require("image")?;
        Ok(element.clone().with("image", x.sqr()?))
    })
    .arc()
}

/// `image <- sin(image)` (batched).
pub fn sin() -> Arc<dyn Operator> {
    ElementOperator::map("sin", "image", |x| x.sin()).arc()
}

/// `image <- image + magnitude` (batched, broadcast per element).
pub fn shift() -> Arc<dyn Operator> {
    ElementOperator::batched("shift", |batch| {
        let x = batch.require("image")?;
        let m = batch.require("magnitude")?;
        let out = x.broadcast_add(&per_image(m)?)?;
        batch.with("image", out)
    })
    .arc()
}

/// `image <- exp(-image) * magnitude` (batched).
pub fn decay() -> Arc<dyn Operator> {
    ElementOperator::batched("decay", |batch| {
        let x = batch.require("image")?;
        let m = batch.require("magnitude")?;
        let out = x.neg()?.exp()?.broadcast_mul(&per_image(m)?)?;
        batch.with("image", out)
    })
    .arc()
}

/// `(B,)` -> `(B,1,1,1)`.
pub fn per_image(m: &Tensor) -> candle::Result<Tensor> {
    m.reshape((m.dim(0)?, 1, 1, 1))
}

/// The largest absolute difference between two tensors.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let d = (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap();
    d.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// A fixed random projection of `out`, so that the loss has no symmetric, degenerate gradient.
pub fn project(out: &Tensor, seed: u64) -> Result<Tensor> {
    let r = uniform(seed, out.dims(), -1.0, 1.0).to_dtype(out.dtype())?;
    Ok((out * r)?.sum_all()?)
}

/// Checks the gradients of the scalar `loss()` w.r.t. `vars` against central differences
/// (f64, step 1e-6); returns the largest error `|analytic - numeric| / max(1, |numeric|)`.
/// Also fails if every gradient is zero (a check that would pass vacuously).
pub fn check_grads(vars: &[&Var], loss: impl Fn() -> Result<Tensor>) -> f64 {
    let grads = loss().unwrap().backward().unwrap();
    let eps = 1e-6;
    let mut worst = 0.0f64;
    let mut largest = 0.0f64;
    for var in vars {
        let original = var.as_tensor().copy().unwrap();
        let analytic = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            None => vec![0.0; original.elem_count()],
        };
        let flat = original.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (j, &a) in analytic.iter().enumerate() {
            let eval = |delta: f64| {
                let mut v = flat.clone();
                v[j] += delta;
                var.set(&Tensor::from_vec(v, original.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                loss().unwrap().to_scalar::<f64>().unwrap()
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            worst = worst.max((a - numeric).abs() / numeric.abs().max(1.0));
            largest = largest.max(a.abs());
        }
        var.set(&original).unwrap();
    }
    assert!(
        largest > 1e-3,
        "all gradients are ~0; the check would be vacuous"
    );
    worst
}

/// Tolerance for `check_grads` in f64.
pub const GRAD_TOL: f64 = 1e-6;
