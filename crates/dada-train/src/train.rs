//! Training a classifier from scratch with a fixed augmentation policy, and evaluation.
//!
//! Defaults follow the official final-training protocol for WRN-40-2 on CIFAR-10
//! (fast-autoaugment `confs/wresnet40x2_cifar10_b512_test.yaml`): 200 epochs, batch 512, SGD
//! Nesterov, lr 0.1 warmed up x4 over 5 epochs then cosine to 0, weight decay 2e-4, clip 5;
//! pipeline crop (pad 4) -> flip -> policy -> normalise -> Cutout 16. Augmentation runs on the
//! discrete fast path in a background thread, overlapping the model's compute.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use candle::{Device, Tensor};
use candle_nn::loss::cross_entropy;
use dada_models::{build_model, clip_grad_norm, Classifier, ModelKind, ModelParams, SgdConfig, SgdMomentum};
use dada_policy::{sample_discrete, PolicyFile};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::data::{BinaryDataset, ImageSet};
use crate::pipeline::{crop_flip_batch, finish, PipelineConfig};
use crate::search::{evaluate, step_rng, EvalResult, SearchError, SearchResult};

/// The augmentation of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainPolicy {
    /// Normalisation only.
    None,
    /// Random crop (pad 4) + horizontal flip.
    Baseline,
    /// Baseline + Cutout 16.
    Cutout,
    /// Baseline + a policy + Cutout 16 (the DADA / AutoAugment protocol). `name` says where the
    /// policy came from (`dada:<file>`, `autoaugment`, `randaugment:N,M`, `file:<file>`).
    Policy {
        /// Display name.
        name: String,
        /// The policy.
        policy: PolicyFile,
    },
}

impl TrainPolicy {
    /// The fixed pipeline around the policy.
    pub fn pipeline(&self) -> PipelineConfig {
        match self {
            TrainPolicy::None => PipelineConfig::none(),
            TrainPolicy::Baseline => PipelineConfig { cutout: 0, ..PipelineConfig::standard() },
            TrainPolicy::Cutout | TrainPolicy::Policy { .. } => PipelineConfig::standard(),
        }
    }

    /// Display name.
    pub fn name(&self) -> String {
        match self {
            TrainPolicy::None => "none".into(),
            TrainPolicy::Baseline => "baseline".into(),
            TrainPolicy::Cutout => "cutout".into(),
            TrainPolicy::Policy { name, .. } => name.clone(),
        }
    }
}

/// Every setting of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Classifier.
    #[serde(with = "crate::config::model_kind")]
    pub model: ModelKind,
    /// Augmentation.
    pub policy: TrainPolicy,
    /// Training images (`None`: all of the training files).
    pub n_train: Option<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Warm-up: the learning rate rises linearly from `lr` to `lr * warmup_multiplier` over
    /// `warmup_epochs`, then follows a cosine to 0.
    pub warmup_multiplier: f64,
    /// Warm-up epochs.
    pub warmup_epochs: usize,
    /// Momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clip.
    pub grad_clip: f64,
    /// Evaluate on the test set every this many epochs (and at the end).
    pub eval_every: usize,
    /// Seed.
    pub seed: u64,
}

impl TrainConfig {
    /// The official WRN-40-2 / CIFAR-10 final-training protocol.
    pub fn wrn40x2_cifar10(policy: TrainPolicy) -> Self {
        Self {
            model: ModelKind::Wrn40_2,
            policy,
            n_train: None,
            epochs: 200,
            batch_size: 512,
            lr: 0.1,
            warmup_multiplier: 4.0,
            warmup_epochs: 5,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 2e-4,
            grad_clip: 5.0,
            eval_every: 10,
            seed: 0,
        }
    }

    /// Steps per epoch for `n` training images (partial batches dropped, at least one).
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        (n / self.batch_size).max(1)
    }

    /// The learning rate at fractional epoch `e`.
    pub fn lr_at(&self, e: f64) -> f64 {
        let peak = self.lr * self.warmup_multiplier;
        if e < self.warmup_epochs as f64 {
            self.lr + (peak - self.lr) * e / self.warmup_epochs as f64
        } else {
            let span = (self.epochs - self.warmup_epochs.min(self.epochs)).max(1) as f64;
            let t = ((e - self.warmup_epochs as f64) / span).clamp(0.0, 1.0);
            0.5 * peak * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 || self.epochs == 0 {
            return Err("batch size and epochs must be positive".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("learning rate must be positive, got {}", self.lr));
        }
        if !(self.grad_clip > 0.0 && self.grad_clip.is_finite()) {
            return Err(format!("gradient clip must be a positive number, got {}", self.grad_clip));
        }
        for (name, v) in [("weight decay", self.weight_decay), ("momentum", self.momentum), ("warm-up multiplier", self.warmup_multiplier)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if self.n_train == Some(0) || self.eval_every == 0 {
            return Err("n_train and eval_every must be positive".into());
        }
        let steps = self.steps_per_epoch(self.n_train.unwrap_or(1));
        if steps.checked_mul(self.epochs).is_none_or(|n| n > 1 << 40) {
            return Err(format!("{} epochs of {steps} steps is more steps than a run can count", self.epochs));
        }
        Ok(())
    }
}

/// One row of a training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRow {
    /// Epoch (1-based, finished).
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f32,
    /// Training accuracy over the epoch.
    pub train_acc: f32,
    /// Test accuracy, where evaluated.
    pub test_acc: Option<f32>,
    /// Learning rate at the epoch's end.
    pub lr: f64,
    /// Wall seconds of the epoch.
    pub secs: f64,
}

/// A training run in progress.
pub struct Trainer {
    /// Settings.
    pub cfg: TrainConfig,
    /// Training images.
    pub train: ImageSet,
    /// Test images.
    pub test: ImageSet,
    params: ModelParams,
    model: Box<dyn Classifier>,
    sgd: SgdMomentum,
    step: usize,
    /// One row per finished epoch.
    pub history: Vec<TrainRow>,
    device: Device,
    epoch_loss: (f64, f64, usize),
}

const STREAM_TRAIN_ORDER: u64 = 11;
const STREAM_TRAIN_AUG: u64 = 12;

/// Builds the augmented model input of `step`: crop + flip, the policy, normalise + Cutout.
/// Deterministic from (seed, step), so it can run ahead in another thread.
pub fn train_batch(cfg: &TrainConfig, train: &ImageSet, step: usize, device: &Device) -> SearchResult<(Tensor, Tensor)> {
    let spe = cfg.steps_per_epoch(train.len());
    let (epoch, k) = (step / spe, step % spe);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut step_rng(cfg.seed, STREAM_TRAIN_ORDER, epoch as u64));
    let b = cfg.batch_size.min(train.len());
    let idx = &order[k * b..(k + 1) * b];
    let mut rng = step_rng(cfg.seed, STREAM_TRAIN_AUG, step as u64);
    let pipeline = cfg.policy.pipeline();
    let (x, y) = crop_flip_batch(train, idx, &pipeline, &mut rng, device)?;
    let x = match &cfg.policy {
        TrainPolicy::Policy { policy, .. } => sample_discrete(policy, &x, &mut rng)?,
        _ => x,
    };
    Ok((finish(&x, pipeline.cutout, &mut rng)?, y))
}

impl Trainer {
    /// A new run on `dataset`: `n_train` images drawn (stratified, seeded) from the training
    /// files, the full test file.
    pub fn new(cfg: TrainConfig, dataset: &BinaryDataset, device: &Device) -> SearchResult<Self> {
        cfg.validate().map_err(SearchError::Config)?;
        let n = cfg.n_train.unwrap_or(dataset.train.len());
        let split = crate::data::SplitConfig { n_train: n, n_val: 0, n_test: None, stratified: true, seed: cfg.seed };
        let splits = crate::data::make_splits(dataset, &split)?;
        let params = ModelParams::new(step_rng(cfg.seed, 13, 0).random::<u64>(), device);
        let model = build_model(cfg.model, dataset.meta.classes.len(), &params)?;
        let sgd = SgdMomentum::new(
            params.trainable_vars(),
            SgdConfig { lr: cfg.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay, nesterov: cfg.nesterov },
        )?;
        Ok(Self {
            cfg,
            train: splits.train,
            test: splits.test,
            params,
            model,
            sgd,
            step: 0,
            history: Vec::new(),
            device: device.clone(),
            epoch_loss: (0.0, 0.0, 0),
        })
    }

    /// Total steps.
    pub fn total_steps(&self) -> usize {
        self.cfg.steps_per_epoch(self.train.len()) * self.cfg.epochs
    }

    /// Steps done.
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// The classifier.
    pub fn model(&self) -> &dyn Classifier {
        self.model.as_ref()
    }

    /// One SGD step on a prepared batch; returns (loss, accuracy).
    fn train_step(&mut self, x: &Tensor, y: &Tensor) -> SearchResult<(f32, f32)> {
        let spe = self.cfg.steps_per_epoch(self.train.len());
        let lr = self.cfg.lr_at(self.step as f64 / spe as f64);
        let logits = self.model.forward_t(x, true)?;
        let loss = cross_entropy(&logits, y)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(SearchError::NonFinite { what: "training", value, step: self.step });
        }
        let acc = logits.argmax(1)?.eq(y)?.to_dtype(candle::DType::F32)?.mean_all()?.to_scalar::<f32>()?;
        let mut grads = loss.backward()?;
        clip_grad_norm(self.sgd.vars(), &mut grads, self.cfg.grad_clip)?;
        self.sgd.set_lr(lr);
        self.sgd.step(&grads)?;
        self.step += 1;
        Ok((value, acc))
    }

    /// Test-set evaluation.
    pub fn evaluate_test(&self) -> candle::Result<EvalResult> {
        evaluate(self.model.as_ref(), &self.test, 500, &self.device)
    }

    /// Runs the remaining steps with augmentation prepared in a background thread;
    /// checkpoints at each epoch's end (atomically) and when `stop` is set.
    pub fn run(&mut self, checkpoint: &Path, stop: &AtomicBool, on_step: &mut dyn FnMut(usize, f32, f32)) -> SearchResult<bool> {
        let total = self.total_steps();
        let spe = self.cfg.steps_per_epoch(self.train.len());
        let start = self.step;
        let (cfg, train, device) = (self.cfg.clone(), self.train.clone(), self.device.clone());
        let mut epoch_start = std::time::Instant::now();
        std::thread::scope(|scope| -> SearchResult<bool> {
            let (tx, rx) = sync_channel::<SearchResult<(Tensor, Tensor)>>(2);
            scope.spawn(move || {
                for step in start..total {
                    if tx.send(train_batch(&cfg, &train, step, &device)).is_err() {
                        break;
                    }
                }
            });
            while self.step < total {
                if stop.load(Ordering::SeqCst) {
                    self.save_checkpoint(checkpoint)?;
                    return Ok(false);
                }
                let (x, y) = rx.recv().map_err(|_| SearchError::Config("augmentation thread stopped".into()))??;
                let (loss, acc) = self.train_step(&x, &y)?;
                let (l, a, n) = self.epoch_loss;
                self.epoch_loss = (l + loss as f64, a + acc as f64, n + 1);
                on_step(self.step, loss, acc);
                if self.step.is_multiple_of(spe) {
                    let epoch = self.step / spe;
                    let test_acc = if epoch.is_multiple_of(self.cfg.eval_every.max(1)) || self.step == total {
                        Some(self.evaluate_test()?.accuracy)
                    } else {
                        None
                    };
                    let (l, a, n) = self.epoch_loss;
                    self.history.push(TrainRow {
                        epoch,
                        train_loss: (l / n.max(1) as f64) as f32,
                        train_acc: (a / n.max(1) as f64) as f32,
                        test_acc,
                        lr: self.cfg.lr_at(epoch as f64),
                        secs: epoch_start.elapsed().as_secs_f64(),
                    });
                    self.epoch_loss = (0.0, 0.0, 0);
                    epoch_start = std::time::Instant::now();
                    self.save_checkpoint(checkpoint)?;
                }
            }
            Ok(true)
        })
    }

    /// Writes model, momentum, step and history atomically.
    pub fn save_checkpoint(&self, path: &Path) -> SearchResult<()> {
        let mut ck = Checkpoint::default();
        ck.put_model(&self.params, &self.sgd);
        ck.state = serde_json::json!({
            "step": self.step, "config": self.cfg, "history": self.history,
            "epoch_loss": [self.epoch_loss.0, self.epoch_loss.1, self.epoch_loss.2],
        });
        Ok(ck.save(path)?)
    }

    /// Restores a checkpoint written with the same config.
    pub fn load_checkpoint(&mut self, path: &Path) -> SearchResult<()> {
        let ck = Checkpoint::load(path, &self.device)?;
        ck.check_config(path, &self.cfg)?;
        ck.get_model(path, &self.params, &mut self.sgd)?;
        self.step = ck.state["step"].as_u64().unwrap_or(0) as usize;
        self.history = serde_json::from_value(ck.state["history"].clone())
            .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: format!("history: {e}") })?;
        let el = &ck.state["epoch_loss"];
        self.epoch_loss = (el[0].as_f64().unwrap_or(0.0), el[1].as_f64().unwrap_or(0.0), el[2].as_u64().unwrap_or(0) as usize);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let cfg = TrainConfig::wrn40x2_cifar10(TrainPolicy::None);
        assert!((cfg.lr_at(0.0) - 0.1).abs() < 1e-12);
        assert!((cfg.lr_at(5.0) - 0.4).abs() < 1e-12);
        assert!((cfg.lr_at(2.5) - 0.25).abs() < 1e-12);
        assert!(cfg.lr_at(200.0).abs() < 1e-12);
        assert!((cfg.lr_at(102.5) - 0.2).abs() < 1e-9);
    }
}
