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
    /// Central finite difference.
    pub numeric: f64,
    /// |analytic - numeric| / max(|analytic|, |numeric|, floor).
    pub rel_error: f64,
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
    /// Fraction of checks within `tolerance`.
    pub fn fraction_within(&self) -> f64 {
        let ok = self.checks.iter().filter(|c| c.rel_error <= self.tolerance).count();
        ok as f64 / self.checks.len().max(1) as f64
    }

    /// Whether every group got a gradient, at least 80% of the checks are within `tolerance`,
    /// and none is off by more than 50% or has the wrong sign. (Single coordinates can miss
    /// the tolerance without a bug: ReLU and bilinear-sampling kinks inside the finite-difference
    /// interval, and f32 rounding; the per-op gradients are checked exactly in dada-ops' tests.)
    pub fn passed(&self) -> bool {
        self.groups.iter().all(|g| g.abs_grad > 0.0 && g.abs_grad.is_finite())
            && !self.checks.is_empty()
            && self.fraction_within() >= 0.8
            && self.checks.iter().all(|c| c.rel_error <= 0.5 && (c.analytic * c.numeric >= 0.0 || c.rel_error <= self.tolerance))
    }
}

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
    /// Relative-error tolerance.
    pub tolerance: f64,
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
            tolerance: 5e-2,
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
        Arc::new(Brightness::default()),
        Arc::new(Contrast::default()),
        Arc::new(Color::default()),
        Arc::new(Sharpness::default()),
        Arc::new(Noise::default()),
        Arc::new(Cutout::new(CutoutEdge::Soft)),
        Arc::new(Identity::default()),
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
    spread_parameters(&policy, device)?;
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
            let numeric = central_difference(&var, i, fd_step(&name, cfg.eps), || {
                let s2 = policy.sample(n, cfg.temperature, &mut sample_rng.clone())?;
                let mut r = aug_rng.clone();
                let aug = policy.augment(&x, &s2, Estimator::Gumbel, &mut r)?;
                let logits = model.forward_t(&normalize(&aug)?, true)?;
                cross_entropy(&logits, &y)?.to_dtype(DType::F64)?.to_scalar::<f64>()
            })?;
            let analytic = gv[i] as f64;
            // Relative to the coordinate, floored at 1% of the group's largest gradient.
            let rel_error = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(0.01 * group_max).max(1e-6);
            checks.push(FdCheck { group: name.clone(), index: i, analytic, numeric, rel_error });
        }
    }
    Ok(VerifyReport { loss: loss.to_scalar::<f32>()?, groups, checks, tolerance: cfg.tolerance })
}

/// Moves the policy off its symmetric initial values so every coordinate matters: logits get
/// N(0, 0.3) noise, magnitudes are drawn from [0.15, 0.4] or [0.6, 0.85] (away from the clamp
/// at 0 and 1, and from 0.5, where the symmetric geometric ops are the identity and bilinear
/// sampling has a kink in the magnitude).
pub fn spread_parameters(policy: &TutorialPolicy, device: &Device) -> candle::Result<()> {
    for (name, var) in policy.vars() {
        let value = if name == "magnitudes" {
            let u = Tensor::rand(0f32, 1f32, var.shape(), device)?;
            let low = u.lt(0.5)?;
            let a = u.affine(0.5, 0.15)?; // [0.15, 0.4)
            let b = u.affine(0.5, 0.35)?; // [0.6, 0.85)
            low.where_cond(&a, &b)?
        } else {
            (var.as_tensor() + Tensor::randn(0f32, 0.3, var.shape(), device)?)?
        };
        var.set(&value)?;
    }
    Ok(())
}

/// The finite-difference step for a parameter group: small for magnitudes (bilinear sampling
/// is piecewise linear in them), larger for logits (smooth).
pub fn fd_step(group: &str, base: f64) -> f64 {
    if group == "magnitudes" {
        base / 4.0
    } else {
        base * 5.0
    }
}

fn central_difference(var: &Var, index: usize, eps: f64, mut f: impl FnMut() -> candle::Result<f64>) -> candle::Result<f64> {
    let base = var.as_tensor().copy()?;
    let shape = base.shape().clone();
    let flat: Vec<f32> = base.flatten_all()?.to_vec1()?;
    let mut eval = |delta: f64| -> candle::Result<f64> {
        let mut v = flat.clone();
        v[index] = (v[index] as f64 + delta) as f32;
        var.set(&Tensor::from_vec(v, shape.clone(), base.device())?)?;
        f()
    };
    let plus = eval(eps)?;
    let minus = eval(-eps)?;
    var.set(&base)?;
    Ok((plus - minus) / (2.0 * eps))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The augmentation alone (loss = <aug, W>): isolates the policy + ops gradients.
    #[test]
    fn augmentation_gradient_matches_finite_differences() {
        let device = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(5);
        let x = Tensor::rand(0f32, 1f32, (6, 3, 12, 12), &device).unwrap();
        let w = Tensor::randn(0f32, 1f32, (6, 3, 12, 12), &device).unwrap();
        let pcfg = TutorialConfig { ops: smooth_op_set(), gate: Gate::Relaxed, ..TutorialConfig::default() };
        let policy = TutorialPolicy::new(pcfg, &device).unwrap();
        spread_parameters(&policy, &device).unwrap();
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
                let numeric = central_difference(&var, i, fd_step(&name, 2e-3), || {
                    let s2 = policy.sample(6, 0.5, &mut sample_rng.clone())?;
                    f(&s2).to_dtype(DType::F64)?.to_scalar::<f64>()
                })
                .unwrap();
                let rel = (g[i] as f64 - numeric).abs() / numeric.abs().max(1e-3);
                println!("{name}[{i}]: analytic {} numeric {numeric} rel {rel:.2e}", g[i]);
                assert!(rel < 2e-2, "{name}[{i}]: analytic {} vs numeric {numeric}", g[i]);
            }
        }
    }
}
