//! Gumbel-Softmax (soft and straight-through), relaxed Bernoulli, and the RELAX draws
//! (reparameterised relaxed sample `z` and conditional relaxed sample `z~` given the hard `b`).
use candle::{bail, DType, Device, Result, Shape, Tensor, D};
use rand::rngs::StdRng;
use rand::Rng;

/// Uniform draws are clamped to `[EPS, 1 - EPS]` (as the official DADA code) so that the
/// Gumbel and logistic transforms stay finite.
pub const EPS: f64 = 1e-6;

/// Uniform noise in `[EPS, 1 - EPS]`, f32.
pub fn uniform(shape: impl Into<Shape>, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count()).map(|_| clamp_unit(rng.random::<f64>()) as f32).collect();
    Tensor::from_vec(v, shape, dev)
}

/// Standard Gumbel noise `-log(-log u)`, f32.
pub fn sample_gumbel(shape: impl Into<Shape>, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count()).map(|_| gumbel(clamp_unit(rng.random::<f64>())) as f32).collect();
    Tensor::from_vec(v, shape, dev)
}

/// Standard logistic noise `log u - log(1 - u)`, f32.
pub fn sample_logistic(shape: impl Into<Shape>, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count()).map(|_| logit(clamp_unit(rng.random::<f64>())) as f32).collect();
    Tensor::from_vec(v, shape, dev)
}

/// Gumbel-Softmax over the last dimension: `softmax((logits + g) / temperature)` with fresh
/// Gumbel noise `g`; with `hard`, the straight-through one-hot of its argmax (value one-hot,
/// gradient of the soft sample). Differentiable w.r.t. `logits`.
pub fn gumbel_softmax(logits: &Tensor, temperature: f64, hard: bool, rng: &mut StdRng) -> Result<Tensor> {
    let noise = sample_gumbel(logits.shape(), rng, logits.device())?.to_dtype(logits.dtype())?;
    gumbel_softmax_with_noise(logits, &noise, temperature, hard)
}

/// [`gumbel_softmax`] with given Gumbel noise (same shape as `logits`).
pub fn gumbel_softmax_with_noise(logits: &Tensor, noise: &Tensor, temperature: f64, hard: bool) -> Result<Tensor> {
    if temperature <= 0.0 {
        bail!("gumbel_softmax: temperature must be > 0, got {temperature}")
    }
    if logits.shape() != noise.shape() {
        bail!("gumbel_softmax: noise shape {:?} != logits shape {:?}", noise.dims(), logits.dims())
    }
    let soft = candle_nn::ops::softmax(&((logits + noise)? / temperature)?, D::Minus1)?;
    if hard {
        straight_through(&one_hot_argmax(&soft)?, &soft)
    } else {
        Ok(soft)
    }
}

/// Relaxed Bernoulli (binary Concrete): `sigmoid((logits + l) / temperature)` with fresh
/// logistic noise `l`; with `hard`, straight-through `1[sample > 0.5]`. Differentiable w.r.t.
/// `logits`.
pub fn relaxed_bernoulli(logits: &Tensor, temperature: f64, hard: bool, rng: &mut StdRng) -> Result<Tensor> {
    let noise = sample_logistic(logits.shape(), rng, logits.device())?.to_dtype(logits.dtype())?;
    relaxed_bernoulli_with_noise(logits, &noise, temperature, hard)
}

/// [`relaxed_bernoulli`] with given logistic noise (same shape as `logits`).
pub fn relaxed_bernoulli_with_noise(logits: &Tensor, noise: &Tensor, temperature: f64, hard: bool) -> Result<Tensor> {
    if temperature <= 0.0 {
        bail!("relaxed_bernoulli: temperature must be > 0, got {temperature}")
    }
    if logits.shape() != noise.shape() {
        bail!("relaxed_bernoulli: noise shape {:?} != logits shape {:?}", noise.dims(), logits.dims())
    }
    let soft = candle_nn::ops::sigmoid(&((logits + noise)? / temperature)?)?;
    if hard {
        straight_through(&soft.ge(0.5)?.to_dtype(soft.dtype())?, &soft)
    } else {
        Ok(soft)
    }
}

/// The straight-through estimator: the value of `hard`, the gradient of `soft`
/// (`hard + soft - soft.detach()`; the value is exactly `hard`).
pub fn straight_through(hard: &Tensor, soft: &Tensor) -> Result<Tensor> {
    (soft - soft.detach())? + hard.detach()
}

/// One-hot of the argmax over the last dimension, same shape and dtype as `x`.
pub fn one_hot_argmax(x: &Tensor) -> Result<Tensor> {
    let k = x.dim(D::Minus1)?;
    let idx = x.argmax_keepdim(D::Minus1)?;
    let range = Tensor::arange(0u32, k as u32, x.device())?;
    idx.broadcast_eq(&range)?.to_dtype(x.dtype())
}

/// The RELAX draw of one categorical variable: hard sample `b`, relaxed `x = softmax(z / tau)`,
/// conditional relaxed `x~ = softmax(z~ / tau)`, and what the closed-form VJPs need (f64).
#[derive(Debug, Clone)]
pub(crate) struct CategoricalDraw {
    pub b: usize,
    /// Gumbel noise `-log(-log u)`: `z = log_softmax(logits) + gumbel`.
    pub gumbel: Vec<f64>,
    pub x: Vec<f64>,
    pub x_tilde: Vec<f64>,
    /// `softmax(logits)`.
    pub p: Vec<f64>,
    /// `d z~_k / d log p_k` (0 at `k = b`, where `z~_b` does not depend on the logits).
    pub dzt_dl: Vec<f64>,
}

/// Draws `u, v` and returns the categorical RELAX draw for raw `logits`.
pub(crate) fn draw_categorical(logits: &[f32], tau: f64, rng: &mut StdRng) -> CategoricalDraw {
    let u: Vec<f64> = logits.iter().map(|_| clamp_unit(rng.random::<f64>())).collect();
    let v: Vec<f64> = logits.iter().map(|_| clamp_unit(rng.random::<f64>())).collect();
    let logits: Vec<f64> = logits.iter().map(|&l| l as f64).collect();
    categorical_from_noise(&logits, &u, &v, tau)
}

/// The categorical RELAX draw for given uniforms (`u` for `z`, `v` for `z~`).
///
/// `z_k = log p_k - log(-log u_k)`, `b = argmax z`; `z~_b = -log(-log v_b)`,
/// `z~_k = -log(-log(v_k) / p_k - log v_b)` for `k != b` (Grathwohl et al. 2018, App. B).
pub(crate) fn categorical_from_noise(logits: &[f64], u: &[f64], v: &[f64], tau: f64) -> CategoricalDraw {
    let log_p = log_softmax64(logits);
    let gumbel: Vec<f64> = u.iter().map(|&u| gumbel(u)).collect();
    let z: Vec<f64> = log_p.iter().zip(&gumbel).map(|(l, g)| l + g).collect();
    let b = argmax(&z);
    let a: Vec<f64> = v.iter().map(|&v| -v.ln()).collect();
    let mut z_tilde = vec![0f64; z.len()];
    let mut dzt_dl = vec![0f64; z.len()];
    for k in 0..z.len() {
        if k == b {
            z_tilde[k] = -a[b].ln();
        } else {
            let r = a[k] / log_p[k].exp();
            z_tilde[k] = -(r + a[b]).ln();
            // d/dl [-log(a_k e^{-l} + a_b)] = a_k e^{-l} / (a_k e^{-l} + a_b)
            dzt_dl[k] = r / (r + a[b]);
        }
    }
    CategoricalDraw {
        b,
        gumbel,
        x: softmax_scaled(&z, tau),
        x_tilde: softmax_scaled(&z_tilde, tau),
        p: log_p.iter().map(|l| l.exp()).collect(),
        dzt_dl,
    }
}

/// The RELAX draw of one Bernoulli variable with logit `lambda`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BernoulliDraw {
    pub b: bool,
    /// Logistic noise `log u - log(1 - u)`: `z = lambda + logistic`.
    pub logistic: f64,
    pub x: f64,
    pub x_tilde: f64,
    /// `sigmoid(lambda)`.
    pub theta: f64,
    /// `d z~ / d lambda`.
    pub dzt_dlam: f64,
}

/// Draws `u, v` and returns the Bernoulli RELAX draw for logit `lambda`.
pub(crate) fn draw_bernoulli(lambda: f64, tau: f64, rng: &mut StdRng) -> BernoulliDraw {
    let u = clamp_unit(rng.random::<f64>());
    let v = clamp_unit(rng.random::<f64>());
    bernoulli_from_noise(lambda, u, v, tau)
}

/// The Bernoulli RELAX draw for given uniforms: `z = lambda + logit(u)`, `b = 1[z > 0]`,
/// `z~ = lambda + logit(v')` with `v' = 1 - theta + v theta` if `b` else `v (1 - theta)`
/// (the official DADA `_get_probabilities_z_tilde`).
pub(crate) fn bernoulli_from_noise(lambda: f64, u: f64, v: f64, tau: f64) -> BernoulliDraw {
    let theta = sigmoid(lambda);
    let logistic = logit(u);
    let z = lambda + logistic;
    let b = z > 0.0;
    let (vp, dvp_dtheta) = if b { (1.0 - theta + v * theta, v - 1.0) } else { (v * (1.0 - theta), -v) };
    let vp = vp.clamp(1e-12, 1.0 - 1e-12);
    let z_tilde = lambda + logit(vp);
    // d/dlambda [lambda + logit(v'(theta(lambda)))] = 1 + v'_theta theta (1 - theta) / (v' (1 - v'))
    let dzt_dlam = 1.0 + dvp_dtheta * theta * (1.0 - theta) / (vp * (1.0 - vp));
    BernoulliDraw {
        b,
        logistic,
        x: sigmoid(z / tau),
        x_tilde: sigmoid(z_tilde / tau),
        theta,
        dzt_dlam,
    }
}

/// Tensor of `f32` values on `dev` (helper for building sample tensors).
pub(crate) fn tensor(v: Vec<f32>, shape: impl Into<Shape>, dev: &Device) -> Result<Tensor> {
    Tensor::from_vec(v, shape, dev)?.to_dtype(DType::F32)
}

pub(crate) fn clamp_unit(u: f64) -> f64 {
    u.clamp(EPS, 1.0 - EPS)
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn gumbel(u: f64) -> f64 {
    -(-u.ln()).ln()
}

fn logit(u: f64) -> f64 {
    u.ln() - (-u).ln_1p()
}

fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (k, &zk) in z.iter().enumerate() {
        if zk > z[best] {
            best = k;
        }
    }
    best
}

pub(crate) fn log_softmax(logits: &[f32]) -> Vec<f64> {
    log_softmax64(&logits.iter().map(|&l| l as f64).collect::<Vec<_>>())
}

pub(crate) fn log_softmax64(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l));
    let lse = m + logits.iter().map(|&l| (l - m).exp()).sum::<f64>().ln();
    logits.iter().map(|&l| l - lse).collect()
}

fn softmax_scaled(z: &[f64], tau: f64) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f64> = z.iter().map(|&x| ((x - m) / tau).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&x| x / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn gumbel_max_frequencies_match_softmax() {
        let logits = [0.5f32, -1.0, 1.5, 0.0];
        let p: Vec<f64> = log_softmax(&logits).iter().map(|l| l.exp()).collect();
        let mut rng = StdRng::seed_from_u64(0);
        let n = 20_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[draw_categorical(&logits, 0.5, &mut rng).b] += 1;
        }
        for k in 0..4 {
            let f = counts[k] as f64 / n as f64;
            // binomial standard error sqrt(p(1-p)/n) <= 0.0036; allow 4 sigma
            assert!((f - p[k]).abs() < 0.015, "k={k} freq {f} vs p {}", p[k]);
        }
    }

    #[test]
    fn conditional_samples_are_consistent_with_b() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let d = draw_categorical(&[0.3, -0.2, 1.0], 1.0, &mut rng);
            // z~ is drawn conditionally on b: its argmax (= argmax of x~) is b
            let am = (0..3).max_by(|&i, &j| d.x_tilde[i].total_cmp(&d.x_tilde[j])).unwrap();
            assert_eq!(am, d.b);
            let e = draw_bernoulli(0.4, 1.0, &mut rng);
            assert_eq!(e.x_tilde > 0.5, e.b);
            assert_eq!(e.x > 0.5, e.b);
        }
    }

    #[test]
    fn conditional_bernoulli_has_the_right_marginal() {
        // z~ given b, with b ~ Bernoulli(theta), is distributed as z: E[sigmoid(z~)] = E[sigmoid(z)]
        let mut rng = StdRng::seed_from_u64(2);
        let n = 40_000;
        let (mut sx, mut sxt) = (0.0, 0.0);
        for _ in 0..n {
            let d = draw_bernoulli(0.7, 1.0, &mut rng);
            sx += d.x;
            sxt += d.x_tilde;
        }
        let (mx, mxt) = (sx / n as f64, sxt / n as f64);
        assert!((mx - mxt).abs() < 0.01, "{mx} vs {mxt}");
    }

    #[test]
    fn straight_through_has_hard_value_and_soft_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let logits = candle::Var::new(&[[0.1f32, 0.7, -0.3]], &dev)?;
        let mut rng = StdRng::seed_from_u64(3);
        let y = gumbel_softmax(logits.as_tensor(), 0.5, true, &mut rng)?;
        let vals = y.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(vals.iter().filter(|&&v| v == 1.0).count(), 1);
        assert_eq!(vals.iter().filter(|&&v| v == 0.0).count(), 2);
        let w = Tensor::new(&[[1f32, 2.0, 3.0]], &dev)?;
        let g = (y * w)?.sum_all()?.backward()?;
        let gl = g.get(&logits).expect("gradient reaches the logits");
        assert!(gl.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        let rb = relaxed_bernoulli(&Tensor::new(&[0.2f32, -0.4], &dev)?, 0.5, true, &mut rng)?;
        for v in rb.to_vec1::<f32>()? {
            assert!(v == 0.0 || v == 1.0);
        }
        Ok(())
    }
}
