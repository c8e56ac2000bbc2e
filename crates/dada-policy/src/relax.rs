//! RELAX (Grathwohl et al. 2018) with the official DADA control variate (an MLP on the relaxed
//! samples), trained in the loop to minimise the estimator's variance; and plain REINFORCE.
//!
//! For a draw `b = H(z)`, `z ~ p(z | theta)` and `z~ ~ p(z | b, theta)`:
//! `g = [f(b) - c(z~)] d/dtheta log p(b) + d/dtheta c(z) - d/dtheta c(z~)`.
//! The derivatives of `c(z(theta))` are written in closed form: `dc/dx` of the MLP as a candle
//! expression in its parameters, and the vector-Jacobian products of the relaxed samples
//! `x = softmax(z / tau)`, `sigmoid(z / tau)` (and of the conditional samples) w.r.t. theta. The
//! variance `sum g^2` is then an ordinary candle graph in the control variate's parameters, and
//! one backward pass trains it: no double backprop.
use candle::{bail, DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::policy::{BerData, CatData};
use crate::{Policy, PolicyAdam, PolicySample};

/// The control variate `c(x) = w2 . tanh(W1 (2x - 1) + b1) + b2` (the official `QFunc`:
/// `Linear(D, hidden) -> tanh -> Linear(hidden, 1)` on `2x - 1`).
#[derive(Debug)]
pub struct ControlVariate {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl ControlVariate {
    /// An MLP `input_dim -> hidden -> 1` with PyTorch's `Linear` initialisation
    /// (uniform in `±1/sqrt(fan_in)`), seeded.
    pub fn new(input_dim: usize, hidden: usize, seed: u64, dev: &Device) -> Result<Self> {
        if input_dim == 0 || hidden == 0 {
            bail!("control variate: input_dim and hidden must be > 0, got {input_dim}, {hidden}")
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let a = 1.0 / (fan_in as f64).sqrt();
            (0..n).map(|_| (rng.random::<f64>() * 2.0 * a - a) as f32).collect()
        };
        let w1 = Var::from_tensor(&Tensor::from_vec(uniform(hidden * input_dim, input_dim), (hidden, input_dim), dev)?)?;
        let b1 = Var::from_tensor(&Tensor::from_vec(uniform(hidden, input_dim), hidden, dev)?)?;
        let w2 = Var::from_tensor(&Tensor::from_vec(uniform(hidden, hidden), hidden, dev)?)?;
        let b2 = Var::from_tensor(&Tensor::from_vec(uniform(1, hidden), 1, dev)?)?;
        Ok(Self { w1, b1, w2, b2 })
    }

    /// A control variate with given parameters: `w1 (hidden, D)`, `b1 (hidden,)`,
    /// `w2 (hidden,)`, `b2 (1,)`.
    pub fn from_tensors(w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor) -> Result<Self> {
        let (h, _) = w1.dims2()?;
        if b1.dims() != [h] || w2.dims() != [h] || b2.dims() != [1] {
            bail!(
                "control variate: shapes w1 {:?}, b1 {:?}, w2 {:?}, b2 {:?} do not fit",
                w1.dims(),
                b1.dims(),
                w2.dims(),
                b2.dims()
            )
        }
        Ok(Self {
            w1: Var::from_tensor(w1)?,
            b1: Var::from_tensor(b1)?,
            w2: Var::from_tensor(w2)?,
            b2: Var::from_tensor(b2)?,
        })
    }

    /// Input size.
    pub fn input_dim(&self) -> usize {
        self.w1.dims()[1]
    }

    /// The parameters, named (`w1`, `b1`, `w2`, `b2`).
    pub fn vars(&self) -> Vec<(String, Var)> {
        vec![
            ("w1".into(), self.w1.clone()),
            ("b1".into(), self.b1.clone()),
            ("w2".into(), self.w2.clone()),
            ("b2".into(), self.b2.clone()),
        ]
    }

    fn hidden(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.affine(2.0, -1.0)?;
        s.matmul(&self.w1.as_tensor().t()?)?.broadcast_add(self.b1.as_tensor())?.tanh()
    }

    /// `c(x)` for `x (N, D)`: `(N,)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.hidden(x)?;
        h.matmul(&self.w2.as_tensor().unsqueeze(1)?)?.squeeze(1)?.broadcast_add(self.b2.as_tensor())
    }

    /// `dc/dx (N, D)` in closed form: `2 W1^T (w2 ⊙ (1 - h^2))` per row, a candle expression in
    /// the parameters (so a loss on it trains them by ordinary backprop).
    pub fn input_grad(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.hidden(x)?;
        let dh = h.sqr()?.affine(-1.0, 1.0)?.broadcast_mul(self.w2.as_tensor())?;
        dh.matmul(self.w1.as_tensor())? * 2.0
    }
}

/// Settings of [`Relax`].
#[derive(Debug, Clone, Copy)]
pub struct RelaxConfig {
    /// Hidden units of the control variate (official: 100).
    pub hidden: usize,
    /// Adam learning rate of the control variate (official: the policy's, 0.005).
    pub lr: f64,
    /// Adam betas (official: the policy's, (0.5, 0.999)).
    pub betas: (f64, f64),
    /// Seed of the control variate's initialisation.
    pub seed: u64,
}

impl Default for RelaxConfig {
    fn default() -> Self {
        Self { hidden: 100, lr: 0.005, betas: (0.5, 0.999), seed: 0 }
    }
}

/// One RELAX estimate: the gradients for the logit / probability Vars, and the variance
/// objective `sum g^2` as a graph in the control variate's parameters.
#[derive(Debug)]
pub struct RelaxEstimate {
    /// `(Var, gradient)` for the categorical logits and the Bernoulli parameters (detached).
    pub grads: Vec<(Var, Tensor)>,
    /// `sum g^2` over both groups (scalar, graph in the control variate's parameters).
    pub variance_loss: Tensor,
}

/// The RELAX estimator with a learned control variate.
#[derive(Debug)]
pub struct Relax {
    cv: ControlVariate,
    adam: PolicyAdam,
    last_variance: Option<f64>,
}

impl Relax {
    /// RELAX for `policy` with a `hidden`-unit control variate trained by Adam at `lr`
    /// (betas (0.5, 0.999)).
    pub fn new(policy: &dyn Policy, hidden: usize, lr: f64, dev: &Device) -> Result<Self> {
        Self::with_config(policy, RelaxConfig { hidden, lr, ..RelaxConfig::default() }, dev)
    }

    /// RELAX with explicit settings.
    pub fn with_config(policy: &dyn Policy, cfg: RelaxConfig, dev: &Device) -> Result<Self> {
        let cv = ControlVariate::new(policy.control_variate_dim(), cfg.hidden, cfg.seed, dev)?;
        let adam = PolicyAdam::new(cv.vars().into_iter().map(|(_, v)| v).collect(), cfg.lr, cfg.betas, 0.0)?;
        Ok(Self { cv, adam, last_variance: None })
    }

    /// The control variate.
    pub fn control_variate(&self) -> &ControlVariate {
        &self.cv
    }

    /// `sum g^2` of the last [`Relax::grads`] call (before its control-variate update).
    pub fn last_variance(&self) -> Option<f64> {
        self.last_variance
    }

    /// The estimate for `sample` with loss values `f_value (N,)`, one per independent draw
    /// (`N = 1` for a batch-shared draw, `B` for per-image draws). The gradients are those of
    /// `mean(f_value)`'s expectation. Does not update the control variate.
    pub fn estimate(&self, sample: &PolicySample, f_value: &Tensor) -> Result<RelaxEstimate> {
        let n = sample.n_draws();
        let f = check_f(f_value, n, "relax")?;
        let data = &sample.relax;
        let tau = sample.temperature;
        let x = cv_input(sample, false)?;
        let xt = cv_input(sample, true)?;
        if x.dim(1)? != self.cv.input_dim() {
            bail!("relax: control variate expects {} inputs, sample gives {}", self.cv.input_dim(), x.dim(1)?)
        }
        let c_tilde = self.cv.forward(&xt)?;
        let gx = self.cv.input_grad(&x)?;
        let gxt = self.cv.input_grad(&xt)?;
        let adv = (f - &c_tilde)?; // (N,)
        let (cat_n, ber_n) = split_sizes(sample);
        let off = data.context.as_ref().map_or(Ok(0), |c| c.dim(1))?;
        let cat = &data.cat;
        let (_, gc, k) = cat.x.dims3()?;
        let gx_cat = gx.narrow(1, off, cat_n)?.reshape((n, gc, k))?;
        let gxt_cat = gxt.narrow(1, off, cat_n)?.reshape((n, gc, k))?;
        let g_cat = categorical_vjp(&cat.x, &cat.p, None, &gx_cat, tau)?
            .sub(&categorical_vjp(&cat.x_tilde, &cat.p, Some(&cat.dzt_dl), &gxt_cat, tau)?)?
            .add(&(&cat.onehot - &cat.p)?.broadcast_mul(&adv.reshape((n, 1, 1))?)?)?;
        let g_cat = (cat.target.scatter(&g_cat.reshape((n, gc * k))?)? / n as f64)?;
        let ber = &data.ber;
        let gx_ber = gx.narrow(1, off + cat_n, ber_n)?;
        let gxt_ber = gxt.narrow(1, off + cat_n, ber_n)?;
        let g_ber = bernoulli_vjp(&ber.x, None, &gx_ber, tau)?
            .sub(&bernoulli_vjp(&ber.x_tilde, Some(&ber.dzt_dlam), &gxt_ber, tau)?)?
            .add(&(&ber.b - &ber.theta)?.broadcast_mul(&adv.reshape((n, 1))?)?)?
            .mul(&ber.dlam_dparam)?;
        let g_ber = (ber.target.scatter(&g_ber)? / n as f64)?;
        let variance_loss = (g_cat.sqr()?.sum_all()? + g_ber.sqr()?.sum_all()?)?;
        Ok(RelaxEstimate {
            grads: vec![(cat.target.var.clone(), g_cat.detach()), (ber.target.var.clone(), g_ber.detach())],
            variance_loss,
        })
    }

    /// The estimate (as [`Relax::estimate`]), then one Adam step of the control variate on
    /// `sum g^2`. Returns the gradients for the policy's logit / probability Vars.
    pub fn grads(&mut self, policy: &dyn Policy, sample: &PolicySample, f_value: &Tensor) -> Result<Vec<(Var, Tensor)>> {
        if policy.control_variate_dim() != self.cv.input_dim() {
            bail!("relax: built for a policy with {} control-variate inputs, got {}", self.cv.input_dim(), policy.control_variate_dim())
        }
        let est = self.estimate(sample, f_value)?;
        self.last_variance = Some(est.variance_loss.to_dtype(DType::F64)?.to_scalar::<f64>()?);
        let store = est.variance_loss.backward()?;
        let cv_grads: Vec<(Var, Tensor)> = self
            .cv
            .vars()
            .into_iter()
            .filter_map(|(_, v)| store.get(v.as_tensor()).map(|g| (v.clone(), g.clone())))
            .collect();
        self.adam.step(&cv_grads)?;
        Ok(est.grads)
    }

    /// Control variate parameters and Adam state, for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            self.cv.vars().into_iter().map(|(n, v)| (format!("cv.{n}"), v.as_tensor().clone())).collect();
        out.extend(self.adam.state_tensors().into_iter().map(|(n, t)| (format!("adam.{n}"), t)));
        out
    }

    /// Restores [`Relax::state_tensors`].
    pub fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        for (name, var) in self.cv.vars() {
            let key = format!("cv.{name}");
            let Some((_, t)) = state.iter().find(|(n, _)| *n == key) else {
                bail!("relax: state has no tensor {key:?}")
            };
            if t.dims() != var.dims() {
                bail!("relax: state {key} has shape {:?}, expected {:?}", t.dims(), var.dims())
            }
            var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
        }
        let adam: Vec<(String, Tensor)> = state
            .iter()
            .filter_map(|(n, t)| n.strip_prefix("adam.").map(|n| (n.to_string(), t.clone())))
            .collect();
        self.adam.load_state_tensors(&adam)
    }
}

/// REINFORCE (the score-function estimator) for comparison: `g = (f(b) - baseline) d/dtheta
/// log p(b)`, with an optional exponential-moving-average baseline.
#[derive(Debug, Clone, Default)]
pub struct Reinforce {
    decay: Option<f64>,
    baseline: Option<f64>,
}

impl Reinforce {
    /// Plain REINFORCE, no baseline.
    pub fn new() -> Self {
        Self::default()
    }

    /// REINFORCE with a moving-average baseline `b <- decay b + (1 - decay) mean(f)`.
    pub fn with_baseline(decay: f64) -> Self {
        Self { decay: Some(decay), baseline: None }
    }

    /// The estimate for `sample` and `f_value (N,)` (gradients of `mean(f)`'s expectation).
    pub fn grads(&mut self, sample: &PolicySample, f_value: &Tensor) -> Result<Vec<(Var, Tensor)>> {
        let n = sample.n_draws();
        let f = check_f(f_value, n, "reinforce")?;
        let base = self.baseline.unwrap_or(0.0);
        let adv = (&f - base)?;
        if let Some(decay) = self.decay {
            let mean = f.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            self.baseline = Some(match self.baseline {
                None => mean,
                Some(b) => decay * b + (1.0 - decay) * mean,
            });
        }
        let (cat, ber): (&CatData, &BerData) = (&sample.relax.cat, &sample.relax.ber);
        let (_, gc, k) = cat.x.dims3()?;
        let g_cat = (&cat.onehot - &cat.p)?.broadcast_mul(&adv.reshape((n, 1, 1))?)?;
        let g_cat = (cat.target.scatter(&g_cat.reshape((n, gc * k))?)? / n as f64)?;
        let g_ber = (&ber.b - &ber.theta)?.broadcast_mul(&adv.reshape((n, 1))?)?.mul(&ber.dlam_dparam)?;
        let g_ber = (ber.target.scatter(&g_ber)? / n as f64)?;
        Ok(vec![(cat.target.var.clone(), g_cat), (ber.target.var.clone(), g_ber)])
    }
}

/// The control variate's input for a sample: `[context, x_cat, x_ber]` per draw, `(N, D)`.
pub(crate) fn cv_input(sample: &PolicySample, tilde: bool) -> Result<Tensor> {
    let d = &sample.relax;
    let n = sample.n_draws();
    let (cat, ber) = if tilde { (&d.cat.x_tilde, &d.ber.x_tilde) } else { (&d.cat.x, &d.ber.x) };
    let mut parts = Vec::with_capacity(3);
    if let Some(c) = &d.context {
        parts.push(c.clone());
    }
    parts.push(cat.reshape((n, ()))?);
    parts.push(ber.clone());
    Tensor::cat(&parts, 1)
}

fn split_sizes(sample: &PolicySample) -> (usize, usize) {
    let d = &sample.relax;
    (d.cat.x.elem_count() / sample.n_draws(), d.ber.x.elem_count() / sample.n_draws())
}

fn check_f(f_value: &Tensor, n: usize, who: &str) -> Result<Tensor> {
    let f = f_value.detach().to_dtype(DType::F32)?.flatten_all()?;
    if f.elem_count() != n {
        bail!("{who}: f_value must have one loss per draw ({n}), got shape {:?}", f_value.dims())
    }
    Ok(f)
}

/// VJP of the relaxed categorical sample `x = softmax(z / tau)` w.r.t. the raw logits `w`
/// (`z = log_softmax(w) + noise`), for `v (N, G, K)`; with `dzt_dl`, that of the conditional
/// sample `z~` (whose `k`-th entry moves with `log p_k` at rate `dzt_dl_k`).
///
/// `v_z = x ⊙ (v - <v, x>) / tau`, `v_l = v_z ⊙ dzt_dl`, `v_w = v_l - p <v_l, 1>`.
pub(crate) fn categorical_vjp(x: &Tensor, p: &Tensor, dzt_dl: Option<&Tensor>, v: &Tensor, tau: f64) -> Result<Tensor> {
    let dot = (v * x)?.sum_keepdim(2)?;
    let vz = (x * v.broadcast_sub(&dot)?)?.affine(1.0 / tau, 0.0)?;
    let vl = match dzt_dl {
        Some(d) => (vz * d)?,
        None => vz,
    };
    let s = vl.sum_keepdim(2)?;
    vl - p.broadcast_mul(&s)?
}

/// VJP of the relaxed Bernoulli sample `x = sigmoid(z / tau)` w.r.t. the logit `lambda`
/// (`z = lambda + noise`, or the conditional `z~` with `d z~ / d lambda = dzt_dlam`).
pub(crate) fn bernoulli_vjp(x: &Tensor, dzt_dlam: Option<&Tensor>, v: &Tensor, tau: f64) -> Result<Tensor> {
    let d = (x * x.affine(-1.0, 1.0)?)?.affine(1.0 / tau, 0.0)?;
    let out = (v * d)?;
    match dzt_dlam {
        Some(dz) => out * dz,
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gumbel::{bernoulli_from_noise, categorical_from_noise};
    use crate::{PaperConfig, PaperPolicy, TutorialConfig, TutorialPolicy};
    use dada_ops::OpSet;

    fn randn(n: usize, rng: &mut StdRng) -> Vec<f64> {
        (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    }

    fn t64(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Largest |a - b| / max(1, |b|).
    fn max_rel(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f64::max)
    }

    #[test]
    fn mlp_input_grad_matches_finite_differences() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(10);
        let (h, d, n) = (6, 7, 3);
        let cv = ControlVariate::from_tensors(
            &t64(randn(h * d, &mut rng), &[h, d]),
            &t64(randn(h, &mut rng), &[h]),
            &t64(randn(h, &mut rng), &[h]),
            &t64(randn(1, &mut rng), &[1]),
        )?;
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
        let analytic = cv.input_grad(&t64(x.clone(), &[n, d]))?.flatten_all()?.to_vec1::<f64>()?;
        let eps = 1e-6;
        let mut numeric = vec![0f64; n * d];
        for i in 0..n * d {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += eps;
            xm[i] -= eps;
            let row = i / d;
            let cp = cv.forward(&t64(xp, &[n, d]))?.to_vec1::<f64>()?[row];
            let cm = cv.forward(&t64(xm, &[n, d]))?.to_vec1::<f64>()?[row];
            numeric[i] = (cp - cm) / (2.0 * eps);
        }
        let err = max_rel(&analytic, &numeric);
        println!("control variate dc/dx: max relative error {err:.2e}");
        assert!(err < 1e-7, "dc/dx closed form vs finite differences: {err}");
        Ok(())
    }

    #[test]
    fn categorical_vjps_match_finite_differences() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(11);
        let k = 6;
        for (trial, tau) in [0.3, 0.7, 1.5].into_iter().enumerate() {
            let w: Vec<f64> = randn(k, &mut rng);
            let u: Vec<f64> = (0..k).map(|_| crate::gumbel::clamp_unit(rng.random())).collect();
            let v: Vec<f64> = (0..k).map(|_| crate::gumbel::clamp_unit(rng.random())).collect();
            let r = randn(k, &mut rng);
            let d = categorical_from_noise(&w, &u, &v, tau);
            let shape = [1, 1, k];
            let vjp = |x: &[f64], dz: Option<&[f64]>| -> Result<Vec<f64>> {
                let dz = dz.map(|d| t64(d.to_vec(), &shape));
                categorical_vjp(&t64(x.to_vec(), &shape), &t64(d.p.clone(), &shape), dz.as_ref(), &t64(r.clone(), &shape), tau)?
                    .flatten_all()?
                    .to_vec1::<f64>()
            };
            let a_z = vjp(&d.x, None)?;
            let a_zt = vjp(&d.x_tilde, Some(&d.dzt_dl))?;
            let eps = 1e-6;
            let (mut n_z, mut n_zt) = (vec![0f64; k], vec![0f64; k]);
            for i in 0..k {
                let (mut wp, mut wm) = (w.clone(), w.clone());
                wp[i] += eps;
                wm[i] -= eps;
                let (dp, dm) = (categorical_from_noise(&wp, &u, &v, tau), categorical_from_noise(&wm, &u, &v, tau));
                assert_eq!((dp.b, dm.b), (d.b, d.b), "perturbation changed the hard sample");
                let dot = |x: &[f64]| x.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
                n_z[i] = (dot(&dp.x) - dot(&dm.x)) / (2.0 * eps);
                n_zt[i] = (dot(&dp.x_tilde) - dot(&dm.x_tilde)) / (2.0 * eps);
            }
            let (e_z, e_zt) = (max_rel(&a_z, &n_z), max_rel(&a_zt, &n_zt));
            println!("categorical tau={tau}: VJP of z rel err {e_z:.2e}, of z~ {e_zt:.2e}");
            assert!(e_z < 1e-6 && e_zt < 1e-6, "trial {trial}: {e_z} {e_zt}");
            // z~ really depends on the logits (the test is not vacuous)
            assert!(n_zt.iter().any(|g| g.abs() > 1e-4));
        }
        Ok(())
    }

    #[test]
    fn bernoulli_vjps_match_finite_differences() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(12);
        let mut seen = [false; 2];
        for _ in 0..40 {
            let lambda = rng.random::<f64>() * 4.0 - 2.0;
            let (u, v) = (crate::gumbel::clamp_unit(rng.random()), crate::gumbel::clamp_unit(rng.random()));
            let tau = 0.5 + rng.random::<f64>();
            let r = rng.random::<f64>() * 2.0 - 1.0;
            let d = bernoulli_from_noise(lambda, u, v, tau);
            seen[d.b as usize] = true;
            let vjp = |x: f64, dz: Option<f64>| -> Result<f64> {
                let dz = dz.map(|d| t64(vec![d], &[1, 1]));
                Ok(bernoulli_vjp(&t64(vec![x], &[1, 1]), dz.as_ref(), &t64(vec![r], &[1, 1]), tau)?
                    .flatten_all()?
                    .to_vec1::<f64>()?[0])
            };
            let eps = 1e-6;
            let (dp, dm) = (bernoulli_from_noise(lambda + eps, u, v, tau), bernoulli_from_noise(lambda - eps, u, v, tau));
            if dp.b != d.b || dm.b != d.b {
                continue; // on the decision boundary
            }
            let n_z = r * (dp.x - dm.x) / (2.0 * eps);
            let n_zt = r * (dp.x_tilde - dm.x_tilde) / (2.0 * eps);
            let (a_z, a_zt) = (vjp(d.x, None)?, vjp(d.x_tilde, Some(d.dzt_dlam))?);
            assert!((a_z - n_z).abs() < 1e-6 * n_z.abs().max(1.0), "z: {a_z} vs {n_z}");
            assert!((a_zt - n_zt).abs() < 1e-6 * n_zt.abs().max(1.0), "z~: {a_zt} vs {n_zt} (b={})", d.b);
        }
        assert!(seen[0] && seen[1], "both outcomes were checked");
        Ok(())
    }

    /// `d c(z(theta)) / d theta` by the closed form (MLP input gradient, VJPs, chain to the
    /// stored parameters, scatter to rows) equals candle's backprop through the relaxed
    /// samples, which are graphs in the policy Vars with the same noise.
    fn closed_form_matches_autograd(policy: &dyn Policy, b_sz: usize) -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(13);
        let relax = Relax::new(policy, 16, 0.01, &dev)?;
        let sample = policy.sample(b_sz, 0.7, &mut rng)?;
        let n = sample.n_draws();
        // autograd: c([context, soft_cat, soft_ber]) summed over draws
        let mut parts = Vec::new();
        if let Some(c) = &sample.relax.context {
            parts.push(c.clone());
        }
        parts.push(sample.soft.cat.reshape((n, ()))?);
        parts.push(sample.soft.ber.clone());
        let soft_in = Tensor::cat(&parts, 1)?;
        let x = cv_input(&sample, false)?;
        let gap = (&soft_in - &x)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(gap < 1e-5, "relaxed sample tensors agree with the stored draws: {gap}");
        let store = relax.cv.forward(&soft_in)?.sum_all()?.backward()?;
        // closed form
        let gx = relax.cv.input_grad(&x)?;
        let (cat_n, ber_n) = split_sizes(&sample);
        let off = sample.relax.context.as_ref().map_or(0, |c| c.dim(1).unwrap());
        let cat = &sample.relax.cat;
        let (_, gc, k) = cat.x.dims3()?;
        let g_cat = categorical_vjp(&cat.x, &cat.p, None, &gx.narrow(1, off, cat_n)?.reshape((n, gc, k))?, sample.temperature)?;
        let g_cat = cat.target.scatter(&g_cat.reshape((n, gc * k))?)?;
        let ber = &sample.relax.ber;
        let g_ber = (bernoulli_vjp(&ber.x, None, &gx.narrow(1, off + cat_n, ber_n)?, sample.temperature)? * &ber.dlam_dparam)?;
        let g_ber = ber.target.scatter(&g_ber)?;
        for (closed, var) in [(g_cat, &cat.target.var), (g_ber, &ber.target.var)] {
            let auto = store.get(var.as_tensor()).expect("autograd reaches the Var");
            let scale = auto.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-6);
            let err = (closed - auto)?.abs()?.max_all()?.to_scalar::<f32>()? / scale;
            println!("{}: closed form vs autograd, shape {:?}: max rel err {err:.2e}", policy.space(), var.dims());
            assert!(err < 1e-3, "closed-form J^T dc/dx vs autograd: {err}");
        }
        Ok(())
    }

    #[test]
    fn closed_form_chain_matches_autograd_paper() -> Result<()> {
        let cfg = PaperConfig {
            ops: OpSet::new((0..5).map(|i| OpSet::paper().get(i).clone()).collect()),
            ..PaperConfig::default()
        };
        let policy = PaperPolicy::new(cfg, &Device::Cpu).unwrap();
        // move off the initial values so the chain is exercised away from symmetry
        let mut rng = StdRng::seed_from_u64(14);
        let s = policy.num_sub_policies();
        policy.logits().set(&Tensor::from_vec(randn(s, &mut rng).iter().map(|&x| x as f32).collect::<Vec<_>>(), s, &Device::Cpu)?)?;
        let p: Vec<f32> = (0..2 * s).map(|_| 0.1 + 0.8 * rng.random::<f32>()).collect();
        policy.probabilities().set(&Tensor::from_vec(p, (s, 2), &Device::Cpu)?)?;
        closed_form_matches_autograd(&policy, 4)
    }

    #[test]
    fn closed_form_chain_matches_autograd_tutorial() -> Result<()> {
        let cfg = TutorialConfig {
            ops: OpSet::new((0..4).map(|i| OpSet::tutorial().get(i).clone()).collect()),
            n_sub_policies: 3,
            ..TutorialConfig::default()
        };
        let policy = TutorialPolicy::new(cfg, &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(15);
        let l: Vec<f32> = randn(3 * 2 * 4, &mut rng).iter().map(|&x| x as f32).collect();
        policy.op_logits().set(&Tensor::from_vec(l, (3, 2, 4), &Device::Cpu)?)?;
        closed_form_matches_autograd(&policy, 6)
    }
}
