//! The DADA bi-level search: model weights by SGD on augmented training batches, the policy by
//! Adam on the validation loss of the model after that step (one-step unrolled, DARTS-style, or
//! first-order), with RELAX or plain Gumbel-Softmax gradients for the discrete choices.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle::{DType, Device, Tensor, Var};
use candle_nn::loss::cross_entropy;
use dada_models::{build_model, clip_grad_norm, without_parameter_grads, Classifier, ModelParams, SgdConfig, SgdMomentum};
use dada_ops::OpSet;
use dada_policy::{Estimator, Policy, PolicyAdam, PolicyFile, PolicySample, Relax};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::config::{EstimatorKind, HypergradKind, OpGradKind, SearchConfig, SpaceKind};
use crate::data::{make_splits, BinaryDataset, ImageSet, Splits};
use crate::pipeline::{crop_flip_batch, finish, normalize};

/// Why a search stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The configuration is not valid.
    #[error("invalid search configuration: {0}")]
    Config(String),
    /// A loss became NaN or infinite; the last good checkpoint is kept.
    #[error("the {what} loss is {value} at step {step}; stopped (the last good checkpoint is kept: lower the learning rates or resume with --resume)")]
    NonFinite {
        /// Which loss.
        what: &'static str,
        /// Its value.
        value: f32,
        /// The step.
        step: usize,
    },
    /// A dataset problem.
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// A checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A policy problem.
    #[error(transparent)]
    Policy(#[from] dada_policy::PolicyError),
    /// A tensor error.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

/// Result alias of the search.
pub type SearchResult<T> = Result<T, SearchError>;

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Step (0-based).
    pub step: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// Training loss on the augmented batch.
    pub train_loss: f32,
    /// Training accuracy on the augmented batch.
    pub train_acc: f32,
    /// Validation loss (after the unrolled step, or at the current weights).
    pub val_loss: f32,
    /// Temperature of the relaxations.
    pub temperature: f64,
    /// Model learning rate.
    pub lr: f64,
    /// Seconds spent augmenting, in the model (forward + backward), and in the policy update.
    pub secs_augment: f64,
    /// See `secs_augment`.
    pub secs_model: f64,
    /// See `secs_augment`.
    pub secs_policy: f64,
}

impl HistoryRow {
    /// The CSV header.
    pub const CSV_HEADER: &'static str = "step,epoch,train_loss,train_acc,val_loss,temperature,lr,secs_augment,secs_model,secs_policy";

    /// One CSV line.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{:.6},{:.4},{:.6},{:.6},{:.6},{:.4},{:.4},{:.4}",
            self.step,
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.val_loss,
            self.temperature,
            self.lr,
            self.secs_augment,
            self.secs_model,
            self.secs_policy
        )
    }
}

/// A seeded generator for one purpose at one step: independent of how many numbers earlier
/// steps drew, so a resumed run draws exactly what an uninterrupted one would.
pub fn step_rng(seed: u64, stream: u64, step: u64) -> StdRng {
    // splitmix64 of the three words.
    let mut z = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

const STREAM_ORDER: u64 = 1;
const STREAM_BATCH: u64 = 2;
const STREAM_POLICY: u64 = 3;
const STREAM_VAL: u64 = 4;
const STREAM_INIT: u64 = 5;

/// Mean cross-entropy and accuracy of `logits` against `labels`.
fn loss_and_acc(logits: &Tensor, labels: &Tensor) -> candle::Result<(Tensor, f32)> {
    let loss = cross_entropy(logits, labels)?;
    let pred = logits.argmax(1)?;
    let acc = pred.eq(labels)?.to_dtype(DType::F32)?.mean_all()?.to_scalar::<f32>()?;
    Ok((loss, acc))
}

/// Per-image cross-entropy `(B,)`.
fn per_image_loss(logits: &Tensor, labels: &Tensor) -> candle::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    logp.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
}

fn check_finite(what: &'static str, value: f32, step: usize) -> SearchResult<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(SearchError::NonFinite { what, value, step })
    }
}

/// Evaluation result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Top-1 accuracy.
    pub accuracy: f32,
}

/// Loss and accuracy of `model` on `set` (no augmentation, eval mode), in batches.
pub fn evaluate(model: &dyn Classifier, set: &ImageSet, batch_size: usize, device: &Device) -> candle::Result<EvalResult> {
    let (mut loss_sum, mut correct, mut n) = (0f64, 0f64, 0usize);
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let (x, y) = set.to_tensors(chunk, device)?;
        let logits = model.forward_t(&normalize(&x)?, false)?;
        let (loss, acc) = loss_and_acc(&logits, &y)?;
        loss_sum += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        correct += acc as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    Ok(EvalResult { loss: (loss_sum / n.max(1) as f64) as f32, accuracy: (correct / n.max(1) as f64) as f32 })
}

/// A search in progress: data, model, optimisers, policy, estimator and history.
pub struct Search {
    /// The configuration.
    pub cfg: SearchConfig,
    /// The data split.
    pub splits: Splits,
    params: ModelParams,
    model: Box<dyn Classifier>,
    sgd: SgdMomentum,
    policy: Box<dyn Policy>,
    relax: Option<Relax>,
    adam: PolicyAdam,
    step: usize,
    /// One row per finished step.
    pub history: Vec<HistoryRow>,
    device: Device,
    /// Images processed by the model (forward + backward), for the cost summary.
    pub images_processed: u64,
}

impl Search {
    /// A new search on `dataset` (split as the config says).
    pub fn new(cfg: SearchConfig, dataset: &BinaryDataset, device: &Device) -> SearchResult<Self> {
        let kind = cfg.model;
        Self::with_model(cfg, dataset, device, |params, n_classes| build_model(kind, n_classes, params))
    }

    /// A search with the caller's own classifier: `build(params, n_classes)` makes it, with its
    /// variables created through `params.var_builder()` (so the search's SGD, its unrolled step
    /// and its checkpoints see them) and `n_classes` outputs. `cfg.model` is then only a label.
    /// A checkpoint of such a search resumes with the same `build`.
    pub fn with_model(
        cfg: SearchConfig,
        dataset: &BinaryDataset,
        device: &Device,
        build: impl FnOnce(&ModelParams, usize) -> candle::Result<Box<dyn Classifier>>,
    ) -> SearchResult<Self> {
        cfg.validate().map_err(SearchError::Config)?;
        let splits = make_splits(dataset, &cfg.split)?;
        let n_classes = dataset.meta.classes.len();
        let init_seed = step_rng(cfg.seed, STREAM_INIT, 0).random::<u64>();
        let params = ModelParams::new(init_seed, device);
        let model = build(&params, n_classes)?;
        if params.trainable_vars().is_empty() {
            return Err(SearchError::Config("the model has no trainable variables: create them through params.var_builder()".into()));
        }
        let sgd = SgdMomentum::new(
            params.trainable_vars(),
            SgdConfig { lr: cfg.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay, nesterov: cfg.nesterov },
        )?;
        let ops = |set: OpSet| match cfg.op_grad {
            OpGradKind::Exact => set,
            OpGradKind::StraightThrough => set.straight_through(),
        };
        let policy: Box<dyn Policy> = match cfg.space {
            SpaceKind::Paper => Box::new(dada_policy::PaperPolicy::new(
                dada_policy::PaperConfig {
                    top_k: cfg.top_k,
                    ops: ops(OpSet::paper()),
                    draw: cfg.draw,
                    ..dada_policy::PaperConfig::default()
                },
                device,
            )?),
            SpaceKind::Tutorial => Box::new(dada_policy::TutorialPolicy::new(
                dada_policy::TutorialConfig { ops: ops(OpSet::tutorial()), ..dada_policy::TutorialConfig::default() },
                device,
            )?),
        };
        let relax = match cfg.estimator {
            EstimatorKind::Relax => Some(Relax::new(policy.as_ref(), cfg.relax_hidden, cfg.relax_lr, device)?),
            EstimatorKind::Gumbel => None,
        };
        let adam = PolicyAdam::new(
            policy.vars().into_iter().map(|(_, v)| v).collect(),
            cfg.policy_lr,
            (cfg.policy_beta1, cfg.policy_beta2),
            cfg.policy_weight_decay,
        )?;
        Ok(Self {
            cfg,
            splits,
            params,
            model,
            sgd,
            policy,
            relax,
            adam,
            step: 0,
            history: Vec::new(),
            device: device.clone(),
            images_processed: 0,
        })
    }

    /// Steps done so far.
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// Whether every step is done.
    pub fn finished(&self) -> bool {
        self.step >= self.cfg.total_steps()
    }

    /// The policy.
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// The classifier.
    pub fn model(&self) -> &dyn Classifier {
        self.model.as_ref()
    }

    /// The training indices of step `step` (an epoch-wise seeded permutation).
    fn batch_indices(&self, step: usize) -> Vec<usize> {
        let spe = self.cfg.steps_per_epoch();
        let (epoch, k) = (step / spe, step % spe);
        let mut order: Vec<usize> = (0..self.splits.train.len()).collect();
        order.shuffle(&mut step_rng(self.cfg.seed, STREAM_ORDER, epoch as u64));
        order[k * self.cfg.batch_size..(k + 1) * self.cfg.batch_size].to_vec()
    }

    fn estimator(&self) -> Estimator {
        match self.cfg.estimator {
            EstimatorKind::Relax => Estimator::Relax,
            EstimatorKind::Gumbel => Estimator::Gumbel,
        }
    }

    /// Model input for the policy-augmented `images`: augment, normalise, Cutout.
    fn model_input(&self, images: &Tensor, sample: &PolicySample, rng: &mut StdRng) -> SearchResult<Tensor> {
        let aug = self.policy.augment(images, sample, self.estimator(), rng)?;
        Ok(finish(&aug, self.cfg.pipeline.cutout, rng)?)
    }

    /// Whether some op applied under `sample` has a magnitude (so the augmented batch depends on
    /// the policy's magnitudes).
    fn augmentation_has_magnitude(&self, sample: &PolicySample) -> bool {
        let ops = self.policy.ops();
        sample.gates().iter().zip(sample.op_indices()).any(|(gates, ops_of_draw)| {
            gates.iter().zip(ops_of_draw).any(|(&applied, &op)| applied && ops.get(op).range().is_some())
        })
    }

    /// Sets every trainable var to `w + alpha * d` (d given per var; `None`: w).
    fn set_weights(&self, base: &[Tensor], dir: Option<(&[Tensor], f64)>) -> candle::Result<()> {
        for (k, var) in self.sgd.vars().iter().enumerate() {
            match dir {
                Some((d, alpha)) => var.set(&(&base[k] + (&d[k] * alpha)?)?)?,
                None => var.set(&base[k])?,
            }
        }
        Ok(())
    }

    /// What step `step` draws before any update: its training batch (crop + flip), a random
    /// validation batch, and the policy sample, each from its own seeded stream.
    fn draw_step(&self, step: usize, temperature: f64) -> SearchResult<StepDraw> {
        let cfg = &self.cfg;
        let mut brng = step_rng(cfg.seed, STREAM_BATCH, step as u64);
        let idx = self.batch_indices(step);
        let (x, y) = crop_flip_batch(&self.splits.train, &idx, &cfg.pipeline, &mut brng, &self.device)?;
        let mut vrng = step_rng(cfg.seed, STREAM_VAL, step as u64);
        let n_val = self.splits.val.len();
        let vidx: Vec<usize> = (0..cfg.batch_size.min(n_val)).map(|_| vrng.random_range(0..n_val)).collect();
        let (xv, yv) = self.splits.val.to_tensors(&vidx, &self.device)?;
        let mut aug_rng = step_rng(cfg.seed, STREAM_POLICY, step as u64);
        let sample = self.policy.sample(cfg.batch_size, temperature, &mut aug_rng)?;
        Ok(StepDraw { x, y, xv, yv, sample, aug_rng })
    }

    /// The unrolled (DARTS one-step) hypergradient of step `step`, given the model gradient
    /// `grads_w` at the current weights `w` (the weights are restored before it returns).
    ///
    /// With `w' = w - lr (mu buf + g + wd w)`, `g = grad_w L_train(w, theta)`, the policy's
    /// objective is `H(theta) = L_val(w'(theta))`, and
    /// `dH/dtheta = -lr grad^2_{theta,w} L_train . v`, `v = grad L_val(w')` (momentum and weight
    /// decay do not depend on `theta`). The Hessian-vector product is the finite difference
    /// `[grad_theta L_train(w + eps v) - grad_theta L_train(w - eps v)] / (2 eps)`,
    /// `eps = fd_r / |v|`. So, `v` held fixed, `H`'s gradient is that of the expectation of
    /// `h(b) = -lr / (2 eps) [L_train(w + eps v; b) - L_train(w - eps v; b)]` over the draws
    /// `b`: the pathwise part differentiates `h` through the augmentation (`pathwise`), and
    /// the discrete choices get RELAX on its value. `L_train` is the batch mean, so
    /// `h = sum_i h_i` with `h_i` image `i`'s term (`f_value`, `(B,)`).
    ///
    /// Per-image draws ([`dada_policy::Draw::PerImage`]): image `i` is augmented by its own
    /// draw `b_i` only, and both passes at `w +- eps v` replay the same draws and op
    /// parameters, so the pathwise part is `sum_i dh_i/dtheta` through image `i`'s ops (its
    /// sub-policy's magnitudes), and RELAX gets one value per draw, `B h_i` ([`per_draw`]),
    /// whose mean over draws is `h` (the derivation of the per-draw estimator is at
    /// [`dada_policy::Draw::PerImage`]).
    fn unrolled(&mut self, draw: &StepDraw, grads_w: &candle::backprop::GradStore, lr: f64, step: usize) -> SearchResult<Unrolled> {
        let cfg = self.cfg.clone();
        let b_sz = draw.x.dim(0)?;
        let vars: Vec<Var> = self.sgd.vars().to_vec();
        let policy_vars: Vec<Var> = self.policy.vars().into_iter().map(|(_, v)| v).collect();
        let snapshot = self.params.snapshot()?;
        // A copy: `detach` would share the Vars' storage, which `set_weights` overwrites in
        // place, and the passes below would run at w' + eps v and w' instead of w +- eps v.
        let w: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle::Result<_>>()?;
        // w' = w - lr (momentum buf + grad + wd w): one SGD step, not applied.
        let mut step_dir = Vec::with_capacity(vars.len());
        for (k, var) in vars.iter().enumerate() {
            let g = match grads_w.get(var) {
                Some(g) => (g + (&w[k] * cfg.weight_decay)?)?,
                None => w[k].zeros_like()?,
            };
            let d = match self.sgd.momentum_buffer(var) {
                Some(buf) => ((buf * cfg.momentum)? + g)?,
                None => g,
            };
            step_dir.push(d);
        }
        self.set_weights(&w, Some((&step_dir, -lr)))?;
        let vlogits = self.model.forward_t(&normalize(&draw.xv)?, true)?;
        let (vloss, _) = loss_and_acc(&vlogits, &draw.yv)?;
        let val_loss = vloss.to_scalar::<f32>()?;
        check_finite("validation", val_loss, step)?;
        let vgrads = vloss.backward()?;
        let v: Vec<Tensor> = vars.iter().map(|var| vgrads.get(var).cloned().map_or_else(|| var.zeros_like(), Ok)).collect::<candle::Result<_>>()?;
        let norm = v.iter().map(|t| t.sqr()?.sum_all()?.to_scalar::<f32>()).collect::<candle::Result<Vec<f32>>>()?.iter().map(|&s| s as f64).sum::<f64>().sqrt();
        let eps = cfg.fd_r / norm.max(1e-12);
        // f(w ± eps v) on the same augmented batch; gradients w.r.t. the policy.
        let mut f_pm = Vec::new();
        let mut g_pm: Vec<Vec<Option<Tensor>>> = Vec::new();
        // Under RELAX, when no applied op has a magnitude, nothing in the augmented batch
        // depends on the policy's Vars: f(w ± eps v) is needed as a value only, and the
        // model's backward is skipped.
        let pathwise = cfg.estimator == EstimatorKind::Gumbel || self.augmentation_has_magnitude(&draw.sample);
        for sign in [1.0, -1.0] {
            self.set_weights(&w, Some((&v, sign * eps)))?;
            let input = self.model_input(&draw.x, &draw.sample, &mut draw.aug_rng.clone())?;
            let input = if pathwise { input } else { input.detach() };
            let logits = self.model.forward_t(&input, true)?;
            let per = per_image_loss(&logits, &draw.y)?;
            if pathwise {
                let f = (per.sum_all()? / b_sz as f64)?;
                // only the policy's gradients are used: skip the model's own
                let g = without_parameter_grads(|| f.backward())?;
                g_pm.push(policy_vars.iter().map(|pv| g.get(pv).cloned()).collect());
            } else {
                g_pm.push(vec![None; policy_vars.len()]);
            }
            f_pm.push((per / b_sz as f64)?.detach());
        }
        self.params.restore(&snapshot)?;
        self.images_processed += 3 * b_sz as u64;
        // Hypergradient: -lr (g+ - g-) / (2 eps).
        let scale = -lr / (2.0 * eps);
        let pathwise = (0..policy_vars.len())
            .map(|k| match (&g_pm[0][k], &g_pm[1][k]) {
                (Some(a), Some(b)) => Ok(Some(((a - b)? * scale)?)),
                _ => Ok(None),
            })
            .collect::<candle::Result<Vec<_>>>()?;
        let f_value = ((&f_pm[0] - &f_pm[1])? * scale)?;
        Ok(Unrolled { pathwise, f_value, val_loss })
    }

    /// One search step: a policy update and a model update. Returns its history row.
    pub fn step(&mut self) -> SearchResult<HistoryRow> {
        let step = self.step;
        let cfg = self.cfg.clone();
        let b_sz = cfg.batch_size;
        let temperature = cfg.temperature.value(step, cfg.total_steps());
        let lr = cfg.lr_at(step);
        let (mut t_aug, mut t_model, mut t_policy) = (0f64, 0f64, 0f64);

        // Data (a training batch, crop + flip, and a random validation batch) and the policy
        // sample; then the augmented training batch.
        let t0 = Instant::now();
        let draw = self.draw_step(step, temperature)?;
        let (x, y, xv, yv, sample) = (&draw.x, &draw.y, &draw.xv, &draw.yv, &draw.sample);
        let input = self.model_input(x, sample, &mut draw.aug_rng.clone())?;
        t_aug += t0.elapsed().as_secs_f64();

        // Model gradient at w on the augmented batch (the policy is fixed here).
        let t1 = Instant::now();
        let logits = self.model.forward_t(&input.detach(), true)?;
        let (loss, train_acc) = loss_and_acc(&logits, y)?;
        let train_loss = loss.to_scalar::<f32>()?;
        check_finite("training", train_loss, step)?;
        let mut grads_w = loss.backward()?;
        clip_grad_norm(self.sgd.vars(), &mut grads_w, cfg.grad_clip)?;
        self.images_processed += b_sz as u64;
        t_model += t1.elapsed().as_secs_f64();

        // Policy gradient.
        let t2 = Instant::now();
        let model_before = t_model;
        let policy_vars: Vec<Var> = self.policy.vars().into_iter().map(|(_, v)| v).collect();
        let val_loss;
        let mut pgrads: Vec<Option<Tensor>> = vec![None; policy_vars.len()];
        let f_value: Tensor;
        match cfg.hypergrad {
            HypergradKind::Unrolled => {
                let tm = Instant::now();
                let hyper = self.unrolled(&draw, &grads_w, lr, step)?;
                t_model += tm.elapsed().as_secs_f64();
                pgrads = hyper.pathwise;
                f_value = hyper.f_value;
                val_loss = hyper.val_loss;
            }
            HypergradKind::FirstOrder => {
                // The validation loss on policy-augmented validation images at w.
                let mut vprng = step_rng(cfg.seed, STREAM_POLICY, (step as u64) | (1 << 62));
                let vsample = self.policy.sample(xv.dim(0)?, temperature, &mut vprng)?;
                let vinput = self.model_input(xv, &vsample, &mut vprng)?;
                let tm = Instant::now();
                let logits = self.model.forward_t(&vinput, true)?;
                let per = per_image_loss(&logits, yv)?;
                let n = per.dim(0)? as f64;
                let f = (per.sum_all()? / n)?;
                val_loss = f.to_scalar::<f32>()?;
                check_finite("validation", val_loss, step)?;
                let g = without_parameter_grads(|| f.backward())?;
                for (k, pv) in policy_vars.iter().enumerate() {
                    pgrads[k] = g.get(pv).cloned();
                }
                self.images_processed += xv.dim(0)? as u64;
                t_model += tm.elapsed().as_secs_f64();
                f_value = (per / n)?.detach();
                // RELAX needs the sample the validation loss was computed with.
                if let Some(relax) = self.relax.as_mut() {
                    let f_value = per_draw(&f_value, vsample.n_draws())?;
                    for (var, g) in relax.grads(self.policy.as_ref(), &vsample, &f_value)? {
                        add_grad(&policy_vars, &mut pgrads, &var, g)?;
                    }
                }
            }
        }
        if cfg.hypergrad == HypergradKind::Unrolled {
            if let Some(relax) = self.relax.as_mut() {
                let f_value = per_draw(&f_value, sample.n_draws())?;
                for (var, g) in relax.grads(self.policy.as_ref(), sample, &f_value)? {
                    add_grad(&policy_vars, &mut pgrads, &var, g)?;
                }
            }
        }
        let pairs: Vec<(Var, Tensor)> =
            policy_vars.iter().zip(pgrads).filter_map(|(v, g)| g.map(|g| (v.clone(), g))).collect();
        for (_, g) in &pairs {
            let s = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            check_finite("policy gradient", s, step)?;
        }
        self.adam.step(&pairs)?;
        // Magnitudes and (paper) probabilities are used clamped to [0, 1]; a stored value
        // outside would get no gradient through the clamp and could never come back.
        for (name, var) in self.policy.vars() {
            if name == "magnitudes" || name == "probabilities" {
                var.set(&var.as_tensor().clamp(0f32, 1f32)?)?;
            }
        }
        // Policy time: the update's own work (sampling is in augmentation), not its model passes.
        t_policy += t2.elapsed().as_secs_f64() - (t_model - model_before);

        // Model update with the gradient at w.
        let t3 = Instant::now();
        self.sgd.set_lr(lr);
        self.sgd.step(&grads_w)?;
        t_model += t3.elapsed().as_secs_f64();

        let row = HistoryRow {
            step,
            epoch: step / cfg.steps_per_epoch(),
            train_loss,
            train_acc,
            val_loss,
            temperature,
            lr,
            secs_augment: t_aug,
            secs_model: t_model,
            secs_policy: t_policy.max(0.0),
        };
        self.history.push(row.clone());
        self.step += 1;
        Ok(row)
    }

    /// Test-set evaluation of the current model.
    pub fn evaluate_test(&self) -> candle::Result<EvalResult> {
        evaluate(self.model.as_ref(), &self.splits.test, 256, &self.device)
    }

    /// The learned policy as a file.
    pub fn export(&self) -> PolicyFile {
        self.policy.export()
    }

    /// Writes the full state (model, momentum, policy, Adam, RELAX, step, history) to `path`,
    /// atomically.
    pub fn save_checkpoint(&self, path: &Path) -> SearchResult<()> {
        let mut ck = Checkpoint::default();
        ck.put_model(&self.params, &self.sgd);
        for (name, var) in self.policy.vars() {
            ck.tensors.insert(format!("policy.{name}"), var.as_tensor().clone());
        }
        for (name, t) in self.adam.state_tensors() {
            ck.tensors.insert(format!("adam.{name}"), t);
        }
        if let Some(relax) = &self.relax {
            for (name, t) in relax.state_tensors() {
                ck.tensors.insert(format!("relax.{name}"), t);
            }
        }
        ck.state = serde_json::json!({
            "step": self.step,
            "images_processed": self.images_processed,
            "config": self.cfg,
            "history": self.history,
        });
        Ok(ck.save(path)?)
    }

    /// Restores the state saved by `save_checkpoint` (the config must match).
    pub fn load_checkpoint(&mut self, path: &Path) -> SearchResult<()> {
        let ck = Checkpoint::load(path, &self.device)?;
        ck.check_config(path, &self.cfg)?;
        ck.get_model(path, &self.params, &mut self.sgd)?;
        for (name, var) in self.policy.vars() {
            var.set(ck.get(path, &format!("policy.{name}"), var.dims())?)?;
        }
        let adam: Vec<(String, Tensor)> = ck
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("adam.").map(|n| (n.to_string(), t.clone())))
            .collect();
        self.adam.load_state_tensors(&adam)?;
        if let Some(relax) = self.relax.as_mut() {
            let st: Vec<(String, Tensor)> = ck
                .tensors
                .iter()
                .filter_map(|(k, t)| k.strip_prefix("relax.").map(|n| (n.to_string(), t.clone())))
                .collect();
            relax.load_state_tensors(&st)?;
        }
        self.step = ck.state["step"].as_u64().unwrap_or(0) as usize;
        self.images_processed = ck.state["images_processed"].as_u64().unwrap_or(0);
        self.history = serde_json::from_value(ck.state["history"].clone())
            .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: format!("history: {e}") })?;
        Ok(())
    }

    /// Runs the remaining steps, writing a checkpoint to `checkpoint` every
    /// `checkpoint_every` steps and at the end; `on_step` sees each row; stops early (after a
    /// checkpoint) when `stop` is set.
    pub fn run(
        &mut self,
        checkpoint: &Path,
        stop: &AtomicBool,
        on_step: &mut dyn FnMut(&HistoryRow),
    ) -> SearchResult<bool> {
        while !self.finished() {
            if stop.load(Ordering::SeqCst) {
                self.save_checkpoint(checkpoint)?;
                return Ok(false);
            }
            let row = self.step()?;
            on_step(&row);
            let end_of_epoch = self.step.is_multiple_of(self.cfg.steps_per_epoch());
            if self.step.is_multiple_of(self.cfg.checkpoint_every.max(1)) || end_of_epoch || self.finished() {
                self.save_checkpoint(checkpoint)?;
            }
        }
        Ok(true)
    }
}

/// What one step draws before any update (see `Search::draw_step`).
struct StepDraw {
    x: Tensor,
    y: Tensor,
    xv: Tensor,
    yv: Tensor,
    sample: PolicySample,
    /// The policy stream right after the sample: a clone replays the augmentation (the ops'
    /// own parameters and Cutout) exactly.
    aug_rng: StdRng,
}

/// The unrolled hypergradient of one step (see `Search::unrolled`).
struct Unrolled {
    /// The pathwise part per policy Var, in `Policy::vars` order (`None`: no path).
    pathwise: Vec<Option<Tensor>>,
    /// Each image's term `h_i` of the finite-difference objective `h`, `(B,)`.
    f_value: Tensor,
    /// The validation loss after the unrolled step.
    val_loss: f32,
}

/// Per-image terms `(B,)` of the objective (they sum to it) as one value per independent
/// draw, for [`Relax::grads`], which estimates the gradient of the expected *mean* over
/// draws: `(1,)`, their sum, for a draw shared by the whole batch; `B` times each term for
/// per-image draws (image `i`'s own loss term on the scale of the batch mean), so that the
/// mean over draws is the objective again.
fn per_draw(f: &Tensor, n_draws: usize) -> candle::Result<Tensor> {
    let b = f.dim(0)?;
    if n_draws == 1 {
        f.sum_keepdim(0)
    } else if n_draws == b {
        f * b as f64
    } else {
        candle::bail!("search: {b} per-image losses for {n_draws} draws")
    }
}

fn add_grad(vars: &[Var], grads: &mut [Option<Tensor>], var: &Var, g: Tensor) -> candle::Result<()> {
    if let Some(k) = vars.iter().position(|v| v.id() == var.id()) {
        grads[k] = Some(match grads[k].take() {
            Some(prev) => (prev + g)?,
            None => g,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Draw;
    use crate::data::SplitConfig;
    use candle::backprop::GradStore;
    use dada_models::ModelKind;
    use dada_ops::MagnitudeGrad;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap()
    }

    /// `linear -> tanh -> linear` on the flattened image: smooth in its weights and input, so
    /// that second derivatives can be checked by finite differences (a ReLU network's weight
    /// gradient jumps wherever a unit's sign flips, and those jumps swamp them).
    struct Smooth {
        hidden: candle_nn::Linear,
        out: candle_nn::Linear,
    }

    impl Classifier for Smooth {
        fn forward_t(&self, images: &Tensor, _train: bool) -> candle::Result<Tensor> {
            use candle::Module;
            self.out.forward(&self.hidden.forward(&images.flatten_from(1)?)?.tanh()?)
        }
    }

    /// Replaces the search's classifier (and its optimiser) with a [`Smooth`] one.
    fn install_smooth(search: &mut Search, n_classes: usize) -> candle::Result<()> {
        let vb = search.params.var_builder();
        let hidden = candle_nn::linear(3 * 32 * 32, 8, vb.pp("smooth_hidden"))?;
        let out = candle_nn::linear(8, n_classes, vb.pp("smooth_out"))?;
        search.model = Box::new(Smooth { hidden, out });
        let vars: Vec<Var> =
            search.params.named_trainable_vars().into_iter().filter(|(n, _)| n.starts_with("smooth")).map(|(_, v)| v).collect();
        assert_eq!(vars.len(), 4);
        let cfg = &search.cfg;
        let sgd = SgdConfig { lr: cfg.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay, nesterov: cfg.nesterov };
        search.sgd = SgdMomentum::new(vars, sgd)?;
        Ok(())
    }

    /// The magnitudes' pathwise hypergradient of one unrolled step (the DARTS finite
    /// difference over `w +- eps v`, differentiated through each image's ops) against the same
    /// derivative taken in the other order: with `v = grad L_val(w')` fixed,
    /// `dH/dm = -lr d/dm <v, grad_w L_train(w; m)>`, by central differences (step 1e-2) in each
    /// magnitude that an image applied with an op smooth in its magnitude (the enhance ops,
    /// unclipped at 0.3 on these images), with a classifier smooth in its weights ([`Smooth`]).
    /// Clipping of the model gradient is off (the formula leaves it out). Asserts
    /// `max |error| <= 1e-2 max |gradient|` over the checked magnitudes and exact zeros where no
    /// image applied the slot; returns how many were checked.
    fn check_unrolled_hypergradient(kind: Draw, batch_size: usize, seed: u64) -> SearchResult<usize> {
        let ds = crate::devcheck::synthetic_dataset(96, 16, 4);
        let mut cfg = SearchConfig::paper();
        cfg.draw = kind;
        cfg.model = ModelKind::TinyCnn;
        cfg.split = SplitConfig { n_train: 64, n_val: 32, n_test: Some(16), stratified: true, seed: 3 };
        cfg.batch_size = batch_size;
        cfg.grad_clip = 1e9;
        cfg.seed = seed;
        let mut search = Search::new(cfg.clone(), &ds, &Device::Cpu)?;
        install_smooth(&mut search, 10)?;
        let (names, policy_vars): (Vec<String>, Vec<Var>) = search.policy().vars().into_iter().unzip();
        let k_m = names.iter().position(|n| n == "magnitudes").unwrap();
        let mags = policy_vars[k_m].clone();
        // Off the identity 0.5, and inside the enhance ops' unclipped range.
        mags.set(&(mags.as_tensor().ones_like()? * 0.3)?)?;
        search.step()?; // a momentum buffer for w'
        mags.set(&(mags.as_tensor().ones_like()? * 0.3)?)?;
        let step = search.step_index();
        let (temperature, lr) = (cfg.temperature.value(step, cfg.total_steps()), cfg.lr_at(step));
        let draw = search.draw_step(step, temperature)?;
        assert_eq!(draw.sample.n_draws(), if kind == Draw::PerImage { batch_size } else { 1 });
        let train_grads = |search: &Search| -> SearchResult<GradStore> {
            let input = search.model_input(&draw.x, &draw.sample, &mut draw.aug_rng.clone())?;
            let logits = search.model.forward_t(&input.detach(), true)?;
            Ok(loss_and_acc(&logits, &draw.y)?.0.backward()?)
        };
        let grads_w = train_grads(&search)?;
        // None: no applied op has a magnitude, and the search skipped the pathwise pass.
        let got = search.unrolled(&draw, &grads_w, lr, step)?.pathwise[k_m].as_ref().map_or(vec![0.0; mags.elem_count()], values);

        // v at w' = w - lr (mu buf + g + wd w), computed here afresh; then w again.
        let vars = search.sgd.vars().to_vec();
        let w: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle::Result<_>>()?;
        for (var, w) in vars.iter().zip(&w) {
            let mut d = (grads_w.get(var).unwrap() + (w * cfg.weight_decay)?)?;
            if let Some(buf) = search.sgd.momentum_buffer(var) {
                d = (d + (buf * cfg.momentum)?)?;
            }
            var.set(&(w - (d * lr)?)?)?;
        }
        let vlogits = search.model.forward_t(&normalize(&draw.xv)?, true)?;
        let vgrads = loss_and_acc(&vlogits, &draw.yv)?.0.backward()?;
        let v: Vec<Tensor> = vars.iter().map(|var| vgrads.get(var).unwrap().clone()).collect();
        for (var, w) in vars.iter().zip(&w) {
            var.set(w)?;
        }
        let phi = |search: &Search| -> SearchResult<f64> {
            let g = train_grads(search)?;
            let mut total = 0f64;
            for (var, v) in vars.iter().zip(&v) {
                total += (g.get(var).unwrap() * v)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
            }
            Ok(total)
        };

        // The magnitudes some image applied (slot j of sub-policy c: m[c, j] = flat c k + j).
        let (ops, k) = (search.policy().ops().clone(), 2);
        let sub_policies = draw.sample.sub_policies();
        let applied = |q: usize| (0..sub_policies.len()).any(|i| sub_policies[i] == q / k && draw.sample.gates()[i][q % k]);
        let op_of = |q: usize| {
            let i = sub_policies.iter().position(|&c| c == q / k).expect("an applied sub-policy was drawn");
            ops.get(draw.sample.op_indices()[i][q % k]).clone()
        };
        let base = values(mags.as_tensor());
        let h = 1e-2f32;
        let (mut checked, mut worst, mut scale) = (Vec::new(), 0f64, 0f64);
        for (q, &g) in got.iter().enumerate() {
            if !applied(q) {
                assert_eq!(g, 0.0, "m[{}, {}]: no image applied it", q / k, q % k);
                continue;
            }
            let op = op_of(q);
            if op.magnitude_grad() != MagnitudeGrad::Exact {
                continue;
            }
            let at = |delta: f32| -> SearchResult<f64> {
                let mut m = base.clone();
                m[q] += delta;
                mags.set(&Tensor::from_vec(m, mags.shape(), &Device::Cpu)?)?;
                phi(&search)
            };
            let want = -lr * (at(h)? - at(-h)?) / (2.0 * h as f64);
            mags.set(&Tensor::from_vec(base.clone(), mags.shape(), &Device::Cpu)?)?;
            println!("m[{}, {}] ({}): hypergradient {g:.4e}, finite differences {want:.4e}", q / k, q % k, op.name());
            worst = f64::max(worst, (g as f64 - want).abs());
            scale = f64::max(scale, want.abs());
            checked.push(q);
        }
        println!("{} magnitudes checked: max |error| {worst:.3e}, max |gradient| {scale:.3e}", checked.len());
        assert!(worst <= 1e-2 * scale, "max error {worst:.3e} vs max gradient {scale:.3e}");
        Ok(checked.len())
    }

    #[test]
    fn per_image_unrolled_hypergradient_matches_finite_differences() -> SearchResult<()> {
        let checked = check_unrolled_hypergradient(Draw::PerImage, 32, 5)?;
        assert!(checked >= 3, "32 images apply a few smooth ops: {checked}");
        Ok(())
    }

    #[test]
    fn per_batch_unrolled_hypergradient_matches_finite_differences() -> SearchResult<()> {
        // The first seed whose batch draw applies an enhance op.
        let checked = (0..40).map(|seed| check_unrolled_hypergradient(Draw::PerBatch, 16, seed)).find(|n| !matches!(n, Ok(0)));
        assert!(matches!(checked, Some(Ok(n)) if n > 0), "{checked:?}");
        Ok(())
    }
}
