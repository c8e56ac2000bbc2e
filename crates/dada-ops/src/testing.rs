//! Test support (public, for this and other crates' tests): a finite-difference gradient
//! checker and seeded test images.
use candle::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The outcome of [`check_grad`].
#[derive(Debug, Clone)]
pub struct GradCheck {
    /// Per input: the largest relative error between the analytic and numeric gradient.
    pub max_rel_err: Vec<f64>,
    /// Per input: the flattened analytic gradient (zeros where autograd gave none).
    pub analytic: Vec<Vec<f64>>,
    /// Per input: the flattened central-difference gradient.
    pub numeric: Vec<Vec<f64>>,
}

impl GradCheck {
    /// Whether every input's largest relative error is at most `tol`.
    pub fn within(&self, tol: f64) -> bool {
        self.max_rel_err.iter().all(|&e| e <= tol)
    }
}

/// Checks the autograd gradient of `f` at `inputs` against f64 central finite differences.
///
/// The scalar checked is `L = sum(f(inputs) * r)` with a fixed seeded random `r` in
/// `[-1, 1]`, so every output element matters. For every element of every input, the numeric
/// gradient is `(L(x + eps) - L(x - eps)) / (2 eps)`, with `L` accumulated in f64 (inputs are
/// perturbed in f64 and cast to their own dtype, so use f64 inputs for tight checks). The
/// relative error of an element is `|a - n| / max(|a|, |n|, 1e-2 * max_j |n_j|, 1e-9)`: the
/// floor keeps elements whose true gradient is ~0 from dominating. Returns per-input maxima
/// and both gradients.
pub fn check_grad<F>(f: F, inputs: &[Tensor], eps: f64) -> Result<GradCheck>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<Result<_>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&tensors)?;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let r: Vec<f64> = (0..out.elem_count())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let r = Tensor::from_vec(r, out.shape(), out.device())?;
    let loss = |out: &Tensor| -> Result<f64> {
        (out.to_dtype(DType::F64)? * &r)?
            .sum_all()?
            .to_scalar::<f64>()
    };
    let grads = (out.to_dtype(DType::F64)? * &r)?.sum_all()?.backward()?;
    let mut report = GradCheck {
        max_rel_err: vec![],
        analytic: vec![],
        numeric: vec![],
    };
    for (i, (input, var)) in inputs.iter().zip(&vars).enumerate() {
        let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
            Some(g) => g.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?,
            None => vec![0.0; input.elem_count()],
        };
        let base: Vec<f64> = input.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let mut numeric = Vec::with_capacity(base.len());
        for j in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[j] += delta;
                let t =
                    Tensor::from_vec(v, input.shape(), input.device())?.to_dtype(input.dtype())?;
                let mut args = inputs.to_vec();
                args[i] = t;
                loss(&f(&args)?)
            };
            numeric.push((eval(eps)? - eval(-eps)?) / (2.0 * eps));
        }
        let scale = numeric.iter().fold(0f64, |m, n| m.max(n.abs()));
        let floor = (1e-2 * scale).max(1e-9);
        let max_rel = analytic
            .iter()
            .zip(&numeric)
            .map(|(a, n)| (a - n).abs() / a.abs().max(n.abs()).max(floor))
            .fold(0f64, f64::max);
        report.max_rel_err.push(max_rel);
        report.analytic.push(analytic);
        report.numeric.push(numeric);
    }
    Ok(report)
}

/// Seeded uniform test images `(b, c, h, w)` with values in `[0.05, 0.95]` (no exact ties,
/// away from the clip bounds).
pub fn test_images(
    shape: (usize, usize, usize, usize),
    seed: u64,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let (b, c, h, w) = shape;
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..b * c * h * w)
        .map(|_| rng.random_range(0.05f32..0.95))
        .collect();
    Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)
}

/// A seeded smooth test image `(b, c, h, w)`: low-frequency patterns, so bilinear
/// derivatives are well behaved, with values in about `[0.1, 0.9]`.
pub fn smooth_images(
    shape: (usize, usize, usize, usize),
    seed: u64,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let (b, c, h, w) = shape;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(b * c * h * w);
    for _ in 0..b * c {
        let (fx, fy, px): (f32, f32, f32) = (
            rng.random_range(0.2..0.9),
            rng.random_range(0.2..0.9),
            rng.random_range(0.0..6.0),
        );
        for y in 0..h {
            for x in 0..w {
                v.push(0.5 + 0.4 * ((x as f32 * fx + px).sin() * (y as f32 * fy + 0.5 * px).cos()));
            }
        }
    }
    Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)
}
