//! Test support shared by the unit tests: seeded data, finite differences, tolerant comparison.
use candle::{Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The values of an f32 tensor, flattened.
pub(crate) fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("f32 tensor")
}

/// `max |v_i|`.
pub(crate) fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Seeded images `(b,3,16,16)` in [0.05, 0.95] and a seeded loss weight in [-1, 1] of the
/// same shape (16 x 16: PIL's equalize leaves images of fewer than 256 pixels unchanged).
pub(crate) fn images_and_weight(b: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = b * 3 * 16 * 16;
    let x: Vec<f32> = (0..n).map(|_| 0.05 + 0.9 * rng.random::<f32>()).collect();
    let w: Vec<f32> = (0..n).map(|_| 2.0 * rng.random::<f32>() - 1.0).collect();
    let shape = (b, 3, 16, 16);
    Ok((Tensor::from_vec(x, shape, &Device::Cpu)?, Tensor::from_vec(w, shape, &Device::Cpu)?))
}

/// `(f(v_i + h) - f(v_i - h)) / (2h)` with element `i` of `var` moved, then restored.
pub(crate) fn central_diff(var: &Var, i: usize, h: f32, mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let orig = var.as_tensor().copy()?;
    let v = values(&orig);
    let (mut plus, mut minus) = (v.clone(), v);
    plus[i] += h;
    minus[i] -= h;
    var.set(&Tensor::from_vec(plus.clone(), var.shape(), var.device())?)?;
    let fp = f();
    var.set(&Tensor::from_vec(minus.clone(), var.shape(), var.device())?)?;
    let fm = f();
    var.set(&orig)?;
    Ok((fp? - fm?) / (plus[i] as f64 - minus[i] as f64))
}

/// Asserts `max |got - want| <= rel * max |want| + abs`.
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f64], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()));
    assert!(err <= rel * scale + abs, "{what}: autograd vs expected: max err {err:.3e}, scale {scale:.3e}");
}

/// `f32` values as `f64`.
pub(crate) fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
