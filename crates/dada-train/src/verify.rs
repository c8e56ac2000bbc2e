//! Gradient verification of the whole pipeline (augment -> model -> loss) w.r.t. the policy:
//! what the datarax guide prints (loss, each parameter group's shape and |grad|), plus central
//! finite differences against the analytic gradient, coordinate by coordinate.
use std::sync::Arc;

use candle::{DType, Device, Tensor, Var};
use candle_nn::loss::cross_entropy;
use dada_models::{build_model_with_kernels, Kernels, ModelKind, ModelParams};
use dada_ops::{
    AugOp, Brightness, Color, Contrast, Cutout, CutoutEdge, Identity, Interpolation, Noise, OpSet, Rotate, Sharpness,
    ShearX, ShearY, TranslateX, TranslateY,
};
use dada_policy::{Estimator, Gate, Policy, TutorialConfig, TutorialPolicy};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;

use crate::data::ImageSet;
use crate::pipeline::normalize;

/// One parameter group: name, shape and |grad| (sum of absolute values).
#[derive(Debug, Clone)]
pub struct GroupGrad {
    /// Group name (`op_logits`, `magnitudes`, `prob_logits`).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Sum of |grad|.
    pub abs_grad: f64,
}

/// One finite-difference comparison.
#[derive(Debug, Clone)]
pub struct FdCheck {
    /// Group name.
    pub group: String,
    /// Flat index within the group.
    pub index: usize,
    /// Analytic (backprop) derivative.
    pub analytic: f64,
    /// Central finite difference (at `step`).
    pub numeric: f64,
    /// The finite-difference step finally used (see [`VerifyConfig::refinements`]).
    pub step: f64,
    /// |analytic - numeric| / max(|analytic|, |numeric|, floor).
    pub rel_error: f64,
    /// Whether the finite difference is trustworthy here: at `step` the one-sided slopes on
    /// `[-step, 0]` and `[0, step]` agree within the kink tolerance, and so do the central
    /// differences at twice and four times the step. Where they do not at any step tried, ReLU or
    /// bilinear-sampling kinks lie inside the interval and the function is not smooth enough
    /// to check there.
    pub trusted: bool,
}

/// The result of a verification.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The loss at the current parameters.
    pub loss: f32,
    /// Per-group gradient magnitudes (the guide's printout).
    pub groups: Vec<GroupGrad>,
    /// Finite-difference comparisons.
    pub checks: Vec<FdCheck>,
    /// Tolerance on the relative error.
    pub tolerance: f64,
}

impl VerifyReport {
    /// Fraction of the checks whose finite difference is trusted.
    pub fn fraction_trusted(&self) -> f64 {
        self.checks.iter().filter(|c| c.trusted).count() as f64 / self.checks.len().max(1) as f64
    }

    /// Trusted checks of one parameter group.
    pub fn trusted_in(&self, group: &str) -> usize {
        self.checks.iter().filter(|c| c.group == group && c.trusted).count()
    }

    /// Whether every group got a gradient, every group has at least
    /// [`MIN_TRUSTED_PER_GROUP`] trusted checks (smooth over the finite-difference interval), and
    /// every trusted check is within `tolerance`.
    pub fn passed(&self) -> bool {
        self.groups.iter().all(|g| g.abs_grad > 0.0 && g.abs_grad.is_finite() && self.trusted_in(&g.name) >= MIN_TRUSTED_PER_GROUP)
            && self.checks.iter().all(|c| !c.trusted || c.rel_error <= self.tolerance)
    }
}

/// Trusted finite-difference checks each parameter group needs for a verification to pass.
pub const MIN_TRUSTED_PER_GROUP: usize = 2;

/// Options of [`verify_grads`].
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// The classifier.
    pub model: ModelKind,
    /// Fast CPU kernels or candle's stock ops.
    pub kernels: Kernels,
    /// Images in the batch.
    pub batch_size: usize,
    /// Coordinates checked per parameter group.
    pub coords_per_group: usize,
    /// Gumbel-Softmax temperature.
    pub temperature: f64,
    /// Finite-difference step.
    pub eps: f64,
    /// Relative-error tolerance of a trusted check (the model runs in f32, so single
    /// coordinates carry rounding noise of a few percent at these step sizes).
    pub tolerance: f64,
    /// Largest relative disagreement of the one-sided slopes (and of the central differences
    /// at successive steps) for a check to be trusted.
    pub kink_tolerance: f64,
    /// How many times the step may be halved while looking for an interval without kinks:
    /// bilinear sampling is piecewise linear in the magnitude with kinks every fraction of a
    /// pixel, so a wide interval averages slopes across them.
    pub refinements: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::TinyCnn,
            kernels: Kernels::Fast,
            batch_size: 16,
            coords_per_group: 6,
            temperature: 0.5,
            eps: 2e-3,
            tolerance: 1e-1,
            kink_tolerance: 5e-2,
            refinements: 4,
            seed: 0,
        }
    }
}

/// The tutorial's 15 ops in their smooth variants (bilinear warps, soft-edged Cutout), whose
/// magnitude gradients are exact: the ops a finite-difference check of magnitudes can use.
pub fn smooth_op_set() -> OpSet {
    let ops: Vec<Arc<dyn AugOp>> = vec![
        Arc::new(TranslateX::new(Interpolation::Bilinear)),
        Arc::new(TranslateY::new(Interpolation::Bilinear)),
        Arc::new(ShearX::new(Interpolation::Bilinear)),
        Arc::new(ShearY::new(Interpolation::Bilinear)),
        Arc::new(Rotate::new(Interpolation::Bilinear)),
        Arc::new(Brightness),
        Arc::new(Contrast),
        Arc::new(Color),
        Arc::new(Sharpness),
        Arc::new(Noise),
        Arc::new(Cutout::new(CutoutEdge::Soft)),
        Arc::new(Identity),
    ];
    OpSet::new(ops)
}

/// Checks the gradient of `loss(model(normalize(augment(images))))` w.r.t. the tutorial
/// policy's three parameter groups against central finite differences (Gumbel-Softmax with
/// fixed noise, relaxed gates, smooth ops; BatchNorm with batch statistics, as in training,
/// which makes the loss a fixed function of the parameters).
pub fn verify_grads(images: &ImageSet, cfg: &VerifyConfig, device: &Device) -> candle::Result<VerifyReport> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let n = cfg.batch_size.min(images.len());
    let idx: Vec<usize> = (0..n).collect();
    let (x, y) = images.to_tensors(&idx, device)?;
    let params = ModelParams::new(cfg.seed, device);
    let model = build_model_with_kernels(cfg.model, 10, cfg.kernels, &params)?;
    let pcfg = TutorialConfig { ops: smooth_op_set(), gate: Gate::Relaxed, ..TutorialConfig::default() };
    let policy = TutorialPolicy::new(pcfg, device).map_err(candle::Error::wrap)?;
    spread_parameters(&policy, &mut rng, device)?;
    // The relaxed samples are functions of the Vars with fixed noise: the finite differences
    // redraw them from the same generator state after each perturbation.
    let sample_rng = rng.clone();
    let sample = policy.sample(n, cfg.temperature, &mut rng)?;
    let aug_rng = rng.clone();
    let loss_fn = |policy: &TutorialPolicy| -> candle::Result<Tensor> {
        let mut r = aug_rng.clone();
        let aug = policy.augment(&x, &sample, Estimator::Gumbel, &mut r)?;
        let logits = model.forward_t(&normalize(&aug)?, true)?;
        cross_entropy(&logits, &y)
    };
    let loss = loss_fn(&policy)?;
    let loss_scalar = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let grads = loss.backward()?;
    let mut groups = Vec::new();
    let mut checks = Vec::new();
    for (name, var) in policy.vars() {
        let g = grads.get(&var).cloned().unwrap_or(var.zeros_like()?);
        let abs_grad = g.abs()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        groups.push(GroupGrad { name: name.clone(), shape: var.dims().to_vec(), abs_grad });
        let gv: Vec<f32> = g.flatten_all()?.to_vec1()?;
        // Check the coordinates with the largest gradients plus a few random ones.
        let mut order: Vec<usize> = (0..gv.len()).collect();
        order.sort_by(|&a, &b| gv[b].abs().total_cmp(&gv[a].abs()));
        // (random ones from the upper half: f32 finite differences cannot resolve the tiniest).
        let mut picked: Vec<usize> = order.iter().take(cfg.coords_per_group * 2 / 3).copied().collect();
        let upper: Vec<usize> = order.iter().copied().take(gv.len().div_ceil(4)).filter(|&i| gv[i] != 0.0).collect();
        let group_max = gv.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        for &i in upper.choose_multiple(&mut rng, cfg.coords_per_group) {
            if picked.len() >= cfg.coords_per_group {
                break;
            }
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        for i in picked {
            let loss_at = &|| -> candle::Result<f64> {
                let s2 = policy.sample(n, cfg.temperature, &mut sample_rng.clone())?;
                let mut r = aug_rng.clone();
                let aug = policy.augment(&x, &s2, Estimator::Gumbel, &mut r)?;
                let logits = model.forward_t(&normalize(&aug)?, true)?;
                cross_entropy(&logits, &y)?.to_dtype(DType::F64)?.to_scalar::<f64>()
            };
            // Central differences at eps, eps/2, ...: accept the first step whose one-sided
            // slopes agree and whose central difference agrees with those at twice and four
            // times the step (kinks of bilinear sampling lie at every scale, and a single pair of
            // steps can agree while both are still biased).
            let mut step = fd_step(&name, cfg.eps);
            let analytic = gv[i] as f64;
            let mut history: Vec<f64> = Vec::new();
            let (mut numeric, mut trusted, mut used) = (f64::NAN, false, step);
            // the loss at the coordinate itself, once (the refinements only move the step)
            let f_zero = loss_at()?;
            for _ in 0..=cfg.refinements {
                let (f_minus, f_plus) = differences(&var, i, step, loss_at)?;
                let central = (f_plus - f_minus) / (2.0 * step);
                let (forward, backward) = ((f_plus - f_zero) / step, (f_zero - f_minus) / step);
                // Relative to the coordinate, floored at 1% of the group's largest gradient and
                // at what f32 can resolve: 16 units in the last place of the loss over the step.
                let resolution = 16.0 * f_zero.abs().max(1e-3) * f32::EPSILON as f64 / (2.0 * step);
                let scale = |a: f64, b: f64| a.abs().max(b.abs()).max(0.01 * group_max).max(resolution);
                let smooth = (forward - backward).abs() / scale(forward, backward) <= cfg.kink_tolerance;
                let needed = cfg.refinements.min(2);
                let stable = history.len() >= needed
                    && history.iter().rev().take(needed).all(|&p| (central - p).abs() / scale(central, p) <= cfg.kink_tolerance);
                (numeric, used) = (central, step);
                if smooth && stable {
                    trusted = true;
                    break;
                }
                history.push(central);
                step /= 2.0;
            }
            let resolution_at = |step: f64| 16.0 * loss_scalar.abs().max(1e-3) * f32::EPSILON as f64 / (2.0 * step);
            let scale = |a: f64, b: f64| a.abs().max(b.abs()).max(0.01 * group_max).max(resolution_at(used));
            let rel_error = (analytic - numeric).abs() / scale(analytic, numeric);
            checks.push(FdCheck { group: name.clone(), index: i, analytic, numeric, step: used, rel_error, trusted });
        }
    }
    Ok(VerifyReport { loss: loss.to_scalar::<f32>()?, groups, checks, tolerance: cfg.tolerance })
}

/// Moves the policy off its symmetric initial values so every coordinate matters: logits get
/// N(0, 0.3) noise, magnitudes are drawn from [0.15, 0.4] or [0.6, 0.85] (away from the clamp
/// at 0 and 1, and from 0.5, where the symmetric geometric ops are the identity and bilinear
/// sampling has a kink in the magnitude).
pub fn spread_parameters(policy: &TutorialPolicy, rng: &mut StdRng, device: &Device) -> candle::Result<()> {
    use rand::Rng;
    use rand_distr::Distribution;
    let normal = rand_distr::Normal::new(0f32, 0.3).expect("valid normal");
    for (name, var) in policy.vars() {
        let current: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        let values: Vec<f32> = current
            .iter()
            .map(|&v| {
                if name == "magnitudes" {
                    let u: f32 = rng.random();
                    if u < 0.5 { 0.15 + 0.5 * u } else { 0.35 + 0.5 * u }
                } else {
                    v + normal.sample(rng)
                }
            })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), device)?)?;
    }
    Ok(())
}

/// The finite-difference step for a parameter group: small for magnitudes (bilinear sampling
/// is piecewise linear in them), larger for logits (smooth).
pub fn fd_step(group: &str, base: f64) -> f64 {
    if group == "magnitudes" {
        base
    } else {
        base * 5.0
    }
}

/// The loss at `var[index] - eps` and at `var[index] + eps` (`var` is restored afterwards).
fn differences(var: &Var, index: usize, eps: f64, f: impl Fn() -> candle::Result<f64>) -> candle::Result<(f64, f64)> {
    let base = var.as_tensor().copy()?;
    let shape = base.shape().clone();
    let flat: Vec<f32> = base.flatten_all()?.to_vec1()?;
    let eval = |delta: f64| -> candle::Result<f64> {
        let mut v = flat.clone();
        v[index] = (v[index] as f64 + delta) as f32;
        var.set(&Tensor::from_vec(v, shape.clone(), base.device())?)?;
        f()
    };
    let out = (eval(-eps)?, eval(eps)?);
    var.set(&base)?;
    Ok(out)
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The augmentation alone (loss = <aug, W>): isolates the policy + ops gradients.
    #[test]
    fn augmentation_gradient_matches_finite_differences() {
        let device = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(5);
        // Seeded data (candle's `Tensor::rand` is not seeded).
        let seeded = |seed: u64, lo: f32, hi: f32| {
            use rand::Rng;
            let mut r = StdRng::seed_from_u64(seed);
            let v: Vec<f32> = (0..6 * 3 * 12 * 12).map(|_| r.random_range(lo..hi)).collect();
            Tensor::from_vec(v, (6, 3, 12, 12), &device).unwrap()
        };
        let x = seeded(1, 0.0, 1.0);
        let w = seeded(2, -1.0, 1.0);
        let pcfg = TutorialConfig { ops: smooth_op_set(), gate: Gate::Relaxed, ..TutorialConfig::default() };
        let policy = TutorialPolicy::new(pcfg, &device).unwrap();
        spread_parameters(&policy, &mut rng, &device).unwrap();
        let sample_rng = rng.clone();
        let sample = policy.sample(6, 0.5, &mut rng).unwrap();
        let aug_rng = rng.clone();
        let f = |s: &dada_policy::PolicySample| -> Tensor {
            let aug = policy.augment(&x, s, Estimator::Gumbel, &mut aug_rng.clone()).unwrap();
            (aug * &w).unwrap().sum_all().unwrap()
        };
        let grads = f(&sample).backward().unwrap();
        for (name, var) in policy.vars() {
            let g: Vec<f32> = grads.get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let mut order: Vec<usize> = (0..g.len()).collect();
            order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
            for &i in order.iter().take(4) {
                let (minus, plus) = differences(&var, i, fd_step(&name, 2e-3), || {
                    let s2 = policy.sample(6, 0.5, &mut sample_rng.clone())?;
                    f(&s2).to_dtype(DType::F64)?.to_scalar::<f64>()
                })
                .unwrap();
                let numeric = (plus - minus) / (2.0 * fd_step(&name, 2e-3));
                // Relative to the coordinate, floored at 5% of the group's largest gradient
                // (f32 central differences resolve small coordinates less well).
                let floor = 0.05 * g.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                let rel = (g[i] as f64 - numeric).abs() / numeric.abs().max(floor).max(1e-3);
                println!("{name}[{i}]: analytic {} numeric {numeric} rel {rel:.2e}", g[i]);
                assert!(rel < 2e-2, "{name}[{i}]: analytic {} vs numeric {numeric}", g[i]);
            }
        }
    }
}
