//! The device check behind `cargo xtask gpu-check`: every op, the mixture and the models on a
//! device against the CPU kernels, within stated tolerances; then a search and a training run
//! end to end on the device, and the same seed twice.
//!
//! On a CUDA device the ops run their plain-candle reference path and the models candle's own
//! convolution and BatchNorm; the CPU side runs the fused CPU kernels. With `--device cpu` the
//! same comparison pits the CPU kernels against the reference path on the CPU, which is how
//! this module is tested on machines without a GPU.
use std::sync::atomic::AtomicBool;

use candle::{DType, Device, Tensor, Var};
use candle_nn::loss::cross_entropy;
use rand::{Rng, SeedableRng};

use crate::config::SearchConfig;
use crate::data::{BinaryDataset, DatasetMeta, ImageSet, SplitConfig};
use crate::ops::{weighted_mixture, weighted_mixture_reference, OpParams, OpSet};
use crate::models::{build_model, ModelKind, ModelParams};
use crate::search::Search;

/// Tolerances of the op comparison, as in dada-ops' agreement tests: values absolute;
/// gradients relative to `1 + max |reference|`.
pub const OP_VALUE_TOL: f32 = 1e-5;
/// Image-gradient tolerance (relative to `1 + max |reference|`).
pub const OP_IMAGE_GRAD_TOL: f32 = 1e-4;
/// Magnitude-gradient tolerance (relative to `1 + max |reference|`).
pub const OP_MAGNITUDE_GRAD_TOL: f32 = 1e-3;
/// Model loss tolerance (relative).
pub const MODEL_LOSS_TOL: f32 = 1e-4;
/// Largest policy difference allowed between two runs of one seed on one device: exact on the
/// CPU; on CUDA, cuBLAS may pick other reduction orders between runs.
pub const SAME_SEED_TOL: f32 = 1e-4;
/// Model gradient tolerance: global relative L2 over all parameters (ReLU kinks move a few
/// entries between implementations, more where the CPU runs Winograd F(4x4, 3x3); see
/// dada-models' `fast_kernels_match_stock` test: 0.012 for WRN-40-2 there).
pub const MODEL_GRAD_TOL: f32 = 2.5e-2;

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was compared (`op rotate: image gradient`).
    pub what: String,
    /// The error measured.
    pub error: f32,
    /// The tolerance it must stay under.
    pub tolerance: f32,
}

impl Check {
    /// Whether the error is within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_finite() && self.error <= self.tolerance
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle::Result<f32> {
    (a.to_device(&Device::Cpu)? - b.to_device(&Device::Cpu)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

fn max_abs(a: &Tensor) -> candle::Result<f32> {
    a.to_device(&Device::Cpu)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> candle::Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.random_range(lo..hi)).collect::<Vec<f32>>(), shape, &Device::Cpu)
}

fn params_to(p: &OpParams, device: &Device) -> candle::Result<OpParams> {
    let mv = |t: &Option<Tensor>| t.as_ref().map(|t| t.to_device(device)).transpose();
    Ok(OpParams { signs: mv(&p.signs)?, centers: mv(&p.centers)?, noise: mv(&p.noise)?, seeds: p.seeds.clone() })
}

/// `(value, d/d images, d/d magnitudes)` of `sum(f(x, m) * r)`, all on the CPU.
fn value_and_grads(
    f: impl Fn(&Tensor, &Tensor) -> candle::Result<Tensor>,
    x: &Tensor,
    m: &Tensor,
    r: &Tensor,
) -> candle::Result<[Tensor; 3]> {
    let (x, m) = (Var::from_tensor(x)?, Var::from_tensor(m)?);
    let y = f(x.as_tensor(), m.as_tensor())?;
    let grads = (&y * r.to_device(y.device())?)?.sum_all()?.backward()?;
    let get = |v: &Var| -> candle::Result<Tensor> {
        match grads.get(v.as_tensor()) {
            Some(g) => g.to_device(&Device::Cpu),
            None => v.as_tensor().zeros_like()?.to_device(&Device::Cpu),
        }
    };
    Ok([y.to_device(&Device::Cpu)?, get(&x)?, get(&m)?])
}

fn compare(what: &str, cpu: &[Tensor; 3], dev: &[Tensor; 3], out: &mut Vec<Check>) -> candle::Result<()> {
    out.push(Check { what: format!("{what}: values"), error: max_abs_diff(&cpu[0], &dev[0])?, tolerance: OP_VALUE_TOL });
    out.push(Check {
        what: format!("{what}: image gradient"),
        error: max_abs_diff(&cpu[1], &dev[1])? / (1.0 + max_abs(&cpu[1])?),
        tolerance: OP_IMAGE_GRAD_TOL,
    });
    out.push(Check {
        what: format!("{what}: magnitude gradient"),
        error: max_abs_diff(&cpu[2], &dev[2])? / (1.0 + max_abs(&cpu[2])?),
        tolerance: OP_MAGNITUDE_GRAD_TOL,
    });
    Ok(())
}

/// Every op of the paper and tutorial sets, and the 15-op mixture, on `device` against the CPU
/// kernels: values and both gradients, on `b` images of 3x32x32.
pub fn check_ops(device: &Device, b: usize) -> candle::Result<Vec<Check>> {
    let mut out = Vec::new();
    let shape = [b, 3, 32, 32];
    let x = uniform(&shape, 0.05, 0.95, 1)?;
    let r = uniform(&shape, -1.0, 1.0, 2)?;
    let m = uniform(&[b], 0.05, 0.95, 3)?;
    let mut seen = std::collections::BTreeSet::new();
    for (k, op) in OpSet::paper().iter().chain(OpSet::tutorial().iter()).enumerate() {
        if !seen.insert(op.name()) {
            continue;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(10 + k as u64);
        let params = op.sample(b, &mut rng, &Device::Cpu)?;
        let cpu = value_and_grads(|x, m| op.apply(x, m, &params), &x, &m, &r)?;
        let dp = params_to(&params, device)?;
        let on_dev = |x: &Tensor, m: &Tensor| -> candle::Result<Tensor> {
            if device.is_cpu() {
                op.apply_reference(x, m, &dp)
            } else {
                op.apply(x, m, &dp)
            }
        };
        let dev = value_and_grads(on_dev, &x.to_device(device)?, &m.to_device(device)?, &r)?;
        compare(&format!("op {}", op.name()), &cpu, &dev, &mut out)?;
    }
    let ops = OpSet::paper();
    let n = ops.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let params: Vec<OpParams> = ops.iter().map(|op| op.sample(b, &mut rng, &Device::Cpu)).collect::<candle::Result<_>>()?;
    let weights = candle_nn::ops::softmax_last_dim(&uniform(&[b, n], -1.0, 1.0, 5)?)?;
    let mags = uniform(&[b, n], 0.05, 0.95, 6)?;
    let cpu = value_and_grads(|x, m| weighted_mixture(&ops, x, m, &weights, &params), &x, &mags, &r)?;
    let dparams: Vec<OpParams> = params.iter().map(|p| params_to(p, device)).collect::<candle::Result<_>>()?;
    let dweights = weights.to_device(device)?;
    let on_dev = |x: &Tensor, m: &Tensor| -> candle::Result<Tensor> {
        if device.is_cpu() {
            weighted_mixture_reference(&ops, x, m, &dweights, &dparams)
        } else {
            weighted_mixture(&ops, x, m, &dweights, &dparams)
        }
    };
    let dev = value_and_grads(on_dev, &x.to_device(device)?, &mags.to_device(device)?, &r)?;
    compare("mixture of the 15 paper ops", &cpu, &dev, &mut out)?;
    Ok(out)
}

/// One training step's loss and parameter gradients of each model on `device` against the CPU
/// (same seeded weights, same batch of `b` 3x32x32 images).
pub fn check_models(device: &Device, models: &[ModelKind], b: usize) -> candle::Result<Vec<Check>> {
    let mut out = Vec::new();
    let x = uniform(&[b, 3, 32, 32], -1.0, 1.0, 7)?;
    let y = Tensor::from_vec((0..b as u32).map(|i| i % 10).collect::<Vec<u32>>(), b, &Device::Cpu)?;
    for &kind in models {
        let run = |dev: &Device| -> candle::Result<(f32, Tensor)> {
            let params = ModelParams::new(9, dev);
            let model = build_model(kind, 10, &params)?;
            let logits = model.forward_t(&x.to_device(dev)?, true)?;
            let loss = cross_entropy(&logits, &y.to_device(dev)?)?;
            let grads = loss.backward()?;
            let flat = params
                .trainable_vars()
                .iter()
                .map(|v| match grads.get(v.as_tensor()) {
                    Some(g) => g.flatten_all()?.to_device(&Device::Cpu),
                    None => v.as_tensor().zeros_like()?.flatten_all()?.to_device(&Device::Cpu),
                })
                .collect::<candle::Result<Vec<_>>>()?;
            Ok((loss.to_scalar::<f32>()?, Tensor::cat(&flat, 0)?))
        };
        let (l_cpu, g_cpu) = run(&Device::Cpu)?;
        let (l_dev, g_dev) = run(device)?;
        let norm = |t: &Tensor| -> candle::Result<f32> { t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>() };
        out.push(Check { what: format!("model {kind}: loss"), error: (l_cpu - l_dev).abs() / l_cpu.abs().max(1e-6), tolerance: MODEL_LOSS_TOL });
        out.push(Check {
            what: format!("model {kind}: parameter gradients"),
            error: norm(&(&g_cpu - &g_dev)?)? / norm(&g_cpu)?.max(1e-12),
            tolerance: MODEL_GRAD_TOL,
        });
    }
    Ok(out)
}

/// A learnable synthetic dataset of 3x32x32 images in ten classes (class k: a bright band).
pub fn synthetic_dataset(n_train: usize, n_test: usize, seed: u64) -> BinaryDataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut make = |n: usize| {
        let mut set = ImageSet::empty(3, 32, 32);
        for i in 0..n {
            let label = (i % 10) as u8;
            let img: Vec<u8> = (0..3 * 1024)
                .map(|p| if (p % 1024) / 32 / 3 == label as usize { 200 } else { 40 } + rng.random_range(0..40u8))
                .collect();
            set.push(&img, label);
        }
        set
    };
    let (train, test) = (make(n_train), make(n_test));
    BinaryDataset { train, test, meta: DatasetMeta::cifar10().named("synthetic"), dir: "synthetic".into() }
}

/// What one end-to-end search gave.
#[derive(Debug, Clone)]
pub struct SearchRun {
    /// Steps run.
    pub steps: usize,
    /// Wall seconds.
    pub secs: f64,
    /// Every policy parameter, flattened, in name order.
    pub policy: Vec<f32>,
    /// Final validation loss.
    pub val_loss: f32,
}

/// Runs `cfg` on `device` end to end (no checkpoint kept beyond `dir`).
pub fn run_search(cfg: &SearchConfig, dataset: &BinaryDataset, device: &Device, dir: &std::path::Path) -> crate::SearchResult<SearchRun> {
    let start = std::time::Instant::now();
    let mut search = Search::new(cfg.clone(), dataset, device)?;
    let never = AtomicBool::new(false);
    search.run(&dir.join("devcheck.safetensors"), &never, &mut |_| {})?;
    let mut policy = Vec::new();
    for (_, v) in search.policy().vars() {
        policy.extend(v.as_tensor().to_device(&Device::Cpu)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
    }
    let val_loss = search.history.last().map(|r| r.val_loss).unwrap_or(f32::NAN);
    Ok(SearchRun { steps: search.step_index(), secs: start.elapsed().as_secs_f64(), policy, val_loss })
}

/// The tiny end-to-end search configuration of the check: the paper preset on `model`, a few
/// unrolled RELAX steps.
pub fn small_search(model: ModelKind) -> SearchConfig {
    let mut cfg = SearchConfig::paper();
    cfg.model = model;
    cfg.split = SplitConfig { n_train: 256, n_val: 128, n_test: Some(128), stratified: true, seed: 0 };
    cfg.batch_size = 64;
    cfg.epochs = 1;
    cfg.checkpoint_every = 2;
    cfg
}

/// Largest absolute difference of two policies (infinite where their sizes differ).
pub fn policy_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_the_kernels_agree_with_the_reference_path() {
        let checks = check_ops(&Device::Cpu, 4).unwrap();
        assert!(checks.len() > 3 * 15);
        for c in &checks {
            assert!(c.passed(), "{c:?}");
        }
        for c in check_models(&Device::Cpu, &[ModelKind::TinyCnn], 4).unwrap() {
            assert!(c.passed() && c.error == 0.0, "the CPU against itself: {c:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_policy() {
        let ds = synthetic_dataset(128, 32, 0);
        let mut cfg = small_search(ModelKind::TinyCnn);
        cfg.split = SplitConfig { n_train: 32, n_val: 16, n_test: Some(16), stratified: true, seed: 0 };
        cfg.batch_size = 16;
        let dir = tempfile::tempdir().unwrap();
        let a = run_search(&cfg, &ds, &Device::Cpu, dir.path()).unwrap();
        let b = run_search(&cfg, &ds, &Device::Cpu, dir.path()).unwrap();
        assert_eq!(a.steps, 2);
        assert_eq!(policy_distance(&a.policy, &b.policy), 0.0);
    }
}
