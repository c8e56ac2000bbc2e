//! `SearchConfig`: every hyperparameter of the search, with the paper and tutorial presets.
use dada_models::ModelKind;
use serde::{Deserialize, Serialize};

pub use dada_policy::Draw;

use crate::data::SplitConfig;
use crate::pipeline::PipelineConfig;

/// Which policy parameterisation to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpaceKind {
    /// Official DADA: 105 sub-policies (pairs of distinct ops), one drawn per batch.
    Paper,
    /// The datarax guide: 25 sub-policies x 2 slots x 15 ops, drawn per image.
    Tutorial,
}

/// Gradient estimator of the discrete choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EstimatorKind {
    /// RELAX with a learned control variate (the paper's).
    Relax,
    /// Plain Gumbel-Softmax (pathwise through the relaxed samples).
    Gumbel,
}

/// How the policy gradient sees the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HypergradKind {
    /// One-step unrolled model and the DARTS finite-difference Hessian-vector product.
    Unrolled,
    /// The tutorial's shortcut: the gradient of the validation loss on policy-augmented
    /// validation images at the current weights.
    FirstOrder,
}

/// Which magnitude gradient the ops give the policy during the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OpGradKind {
    /// Each op's own: exact where the op is smooth in its magnitude, a documented surrogate
    /// where it is not (the `dada-ops` table).
    #[default]
    Exact,
    /// The official DADA code's: `out + m - m.detach()` for every op with a magnitude
    /// (`dada_ops::StraightThrough`).
    StraightThrough,
}

/// Temperature schedule of the relaxations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TemperatureSchedule {
    /// The same temperature throughout.
    Constant(f64),
    /// Cosine from `start` to `end` over the search.
    Cosine {
        /// At step 0.
        start: f64,
        /// At the last step.
        end: f64,
    },
    /// Linear from `start` to `end`.
    Linear {
        /// At step 0.
        start: f64,
        /// At the last step.
        end: f64,
    },
    /// Exponential from `start` to `end`.
    Exponential {
        /// At step 0.
        start: f64,
        /// At the last step.
        end: f64,
    },
}

impl TemperatureSchedule {
    /// The temperature at `step` of `total` steps.
    pub fn value(&self, step: usize, total: usize) -> f64 {
        let t = if total <= 1 { 0.0 } else { (step as f64 / (total - 1) as f64).clamp(0.0, 1.0) };
        match *self {
            TemperatureSchedule::Constant(v) => v,
            TemperatureSchedule::Linear { start, end } => start + (end - start) * t,
            TemperatureSchedule::Cosine { start, end } => end + 0.5 * (start - end) * (1.0 + (std::f64::consts::PI * t).cos()),
            TemperatureSchedule::Exponential { start, end } => start * (end / start).powf(t),
        }
    }
}

/// Every hyperparameter of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Name of the preset this config started from.
    pub preset: String,
    /// Policy parameterisation.
    pub space: SpaceKind,
    /// Estimator of the discrete choices.
    pub estimator: EstimatorKind,
    /// Hypergradient.
    pub hypergrad: HypergradKind,
    /// Magnitude gradient of the ops (absent in checkpoints written before it existed: exact).
    #[serde(default)]
    pub op_grad: OpGradKind,
    /// Paper space: one sub-policy per batch (`PerBatch`, the paper's and every preset's) or
    /// one per image (`PerImage`, this project's extension: more gradient signal per step,
    /// see [`Draw::PerImage`]). The tutorial space always draws per image. Absent in
    /// checkpoints written before it existed: per batch.
    #[serde(default)]
    pub draw: Draw,
    /// Classifier.
    #[serde(with = "model_kind")]
    pub model: ModelKind,
    /// Data split.
    pub split: SplitConfig,
    /// Epochs over the training split.
    pub epochs: usize,
    /// Batch size (training and validation).
    pub batch_size: usize,
    /// Model SGD: initial learning rate (cosine schedule to `lr_min`).
    pub lr: f64,
    /// Model SGD: final learning rate.
    pub lr_min: f64,
    /// Model SGD: momentum.
    pub momentum: f64,
    /// Model SGD: weight decay.
    pub weight_decay: f64,
    /// Model SGD: Nesterov momentum.
    pub nesterov: bool,
    /// Gradient-norm clip of the model's gradient.
    pub grad_clip: f64,
    /// Policy Adam: learning rate.
    pub policy_lr: f64,
    /// Policy Adam: beta1.
    pub policy_beta1: f64,
    /// Policy Adam: beta2.
    pub policy_beta2: f64,
    /// Policy Adam: weight decay.
    pub policy_weight_decay: f64,
    /// Temperature schedule of the relaxations.
    pub temperature: TemperatureSchedule,
    /// Crop / flip / Cutout around the policy during the search.
    pub pipeline: PipelineConfig,
    /// Finite-difference step numerator: r = fd_r / |v| (DARTS).
    pub fd_r: f64,
    /// Hidden width of RELAX's control variate.
    pub relax_hidden: usize,
    /// Learning rate of RELAX's control variate (Adam).
    pub relax_lr: f64,
    /// Sub-policies kept in the exported paper policy.
    pub top_k: usize,
    /// Write a checkpoint every this many steps (and at each epoch's end).
    pub checkpoint_every: usize,
    /// Seed of everything.
    pub seed: u64,
}

impl SearchConfig {
    /// The official DADA CIFAR-10 search (`search_relax`, `train_search.py` defaults): WRN-40-2 on
    /// reduced CIFAR-10 split 2,000 / 2,000, 20 epochs, batch 128; SGD lr 0.1 cosine to 0.001,
    /// momentum 0.9, weight decay 2e-4, clip 5; Adam 0.005 (0.5, 0.999); temperature 0.5;
    /// crop + flip + Cutout 16; unrolled hypergradient with RELAX.
    pub fn paper() -> Self {
        Self {
            preset: "paper".into(),
            space: SpaceKind::Paper,
            estimator: EstimatorKind::Relax,
            hypergrad: HypergradKind::Unrolled,
            op_grad: OpGradKind::Exact,
            draw: Draw::PerBatch,
            model: ModelKind::Wrn40_2,
            split: SplitConfig::reduced_search(),
            epochs: 20,
            batch_size: 128,
            lr: 0.1,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 2e-4,
            nesterov: false,
            grad_clip: 5.0,
            policy_lr: 0.005,
            policy_beta1: 0.5,
            policy_beta2: 0.999,
            policy_weight_decay: 0.0,
            temperature: TemperatureSchedule::Constant(0.5),
            pipeline: PipelineConfig::standard(),
            fd_r: 0.01,
            relax_hidden: 100,
            relax_lr: 0.005,
            top_k: 25,
            checkpoint_every: 10,
            seed: 0,
        }
    }

    /// The datarax guide: 40,000 / 10,000 / 10,000, 20 epochs, batch 128, per-image sub-policies
    /// in the 25x2x15 space, Gumbel-Softmax 1.0 -> 0.1 (cosine), policy Adam 3e-3, first-order.
    pub fn tutorial() -> Self {
        Self {
            preset: "tutorial".into(),
            space: SpaceKind::Tutorial,
            estimator: EstimatorKind::Gumbel,
            hypergrad: HypergradKind::FirstOrder,
            split: SplitConfig::full(),
            policy_lr: 3e-3,
            policy_beta1: 0.9,
            temperature: TemperatureSchedule::Cosine { start: 1.0, end: 0.1 },
            ..Self::paper()
        }
    }

    /// Quick mode: 1,024 / 256 / 256 images and one epoch.
    pub fn quick(mut self) -> Self {
        self.split = SplitConfig { seed: self.split.seed, ..SplitConfig::quick() };
        self.epochs = 1;
        self.checkpoint_every = 4;
        self
    }

    /// Training steps per epoch (partial batches dropped).
    pub fn steps_per_epoch(&self) -> usize {
        (self.split.n_train / self.batch_size).max(1)
    }

    /// Total steps of the search.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.epochs
    }

    /// The model learning rate at `step` (cosine from `lr` to `lr_min`).
    pub fn lr_at(&self, step: usize) -> f64 {
        let t = step as f64 / self.total_steps().max(1) as f64;
        self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + (std::f64::consts::PI * t).cos())
    }

    /// Checks the values; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("batch size must be positive".into());
        }
        if self.split.n_train < self.batch_size {
            return Err(format!("{} training images is less than one batch of {}", self.split.n_train, self.batch_size));
        }
        if self.split.n_val == 0 {
            return Err("the search needs validation images (n_val > 0)".into());
        }
        if self.epochs == 0 {
            return Err("epochs must be positive".into());
        }
        for (name, v) in [("lr", self.lr), ("policy lr", self.policy_lr), ("fd_r", self.fd_r), ("grad clip", self.grad_clip)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number, got {v}"));
            }
        }
        for (name, v) in [("lr_min", self.lr_min), ("momentum", self.momentum), ("weight decay", self.weight_decay), ("relax lr", self.relax_lr)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if self.momentum >= 1.0 {
            return Err(format!("momentum must be below 1, got {}", self.momentum));
        }
        if self.relax_hidden == 0 || self.top_k == 0 {
            return Err("relax hidden width and top_k must be positive".into());
        }
        if self.steps_per_epoch().checked_mul(self.epochs).is_none_or(|n| n > 1 << 40) {
            return Err(format!("{} epochs of {} steps is more steps than a run can count", self.epochs, self.steps_per_epoch()));
        }
        let t = [self.temperature.value(0, 2), self.temperature.value(1, 2)];
        if t.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(format!("temperatures must be positive, got {:?}", self.temperature));
        }
        Ok(())
    }
}

/// `ModelKind` as its stable name in JSON.
pub(crate) mod model_kind {
    use dada_models::ModelKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &ModelKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ModelKind, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_hit_their_ends() {
        for s in [
            TemperatureSchedule::Cosine { start: 1.0, end: 0.1 },
            TemperatureSchedule::Linear { start: 1.0, end: 0.1 },
            TemperatureSchedule::Exponential { start: 1.0, end: 0.1 },
        ] {
            assert!((s.value(0, 11) - 1.0).abs() < 1e-12);
            assert!((s.value(10, 11) - 0.1).abs() < 1e-12);
            let mid = s.value(5, 11);
            assert!(mid < 1.0 && mid > 0.1);
        }
        assert_eq!(TemperatureSchedule::Constant(0.5).value(3, 10), 0.5);
    }

    #[test]
    fn presets_are_valid_and_quick_shrinks() {
        let p = SearchConfig::paper();
        assert!(p.validate().is_ok());
        assert_eq!(p.total_steps(), 20 * (2000 / 128));
        let q = SearchConfig::paper().quick();
        assert_eq!((q.split.n_train, q.split.n_val, q.epochs), (1024, 256, 1));
        assert!((p.lr_at(0) - 0.1).abs() < 1e-12 && (p.lr_at(p.total_steps()) - 0.001).abs() < 1e-12);
        let mut bad = SearchConfig::tutorial();
        bad.policy_lr = -1.0;
        assert!(bad.validate().unwrap_err().contains("policy lr"));
    }

    #[test]
    fn configs_written_before_draw_existed_read_as_per_batch() {
        let mut cfg = SearchConfig::paper();
        assert_eq!(cfg.draw, Draw::PerBatch, "the paper preset draws per batch");
        assert_eq!(SearchConfig::tutorial().draw, Draw::PerBatch);
        cfg.draw = Draw::PerImage;
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["draw"], "PerImage");
        assert_eq!(serde_json::from_value::<SearchConfig>(json.clone()).unwrap(), cfg);
        let mut old = json;
        old.as_object_mut().unwrap().remove("draw");
        assert_eq!(serde_json::from_value::<SearchConfig>(old).unwrap().draw, Draw::PerBatch);
    }

    #[test]
    fn configs_written_before_op_grad_existed_read_as_exact() {
        let mut cfg = SearchConfig::paper();
        cfg.op_grad = OpGradKind::StraightThrough;
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(serde_json::from_value::<SearchConfig>(json.clone()).unwrap(), cfg);
        let mut old = json;
        old.as_object_mut().unwrap().remove("op_grad");
        assert_eq!(serde_json::from_value::<SearchConfig>(old).unwrap().op_grad, OpGradKind::Exact);
    }
}
