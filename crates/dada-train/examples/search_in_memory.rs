//! A short DADA search from library code, on a dataset made in memory: no files, no command
//! line tool.
//!
//! ```text
//! cargo run --release -p dada-train --example search_in_memory -- [EPOCHS]
//! ```
//!
//! The dataset has three classes of 32 x 32 RGB images (horizontal, vertical and diagonal
//! stripes, with noise), built with `ImageSet::push` the way a user would wrap their own
//! images. The search is the paper's configuration (the 105 sub-policies, RELAX, the unrolled
//! hypergradient) shrunk to a few steps, on a classifier defined here (`StripeNet`, two
//! convolutions and a linear head): each step trains the model on a batch augmented by the
//! policy and updates the policy on the validation loss. At the end the learned policy is
//! exported and the model evaluated on the test images.
//!
//! Any type implementing `dada_models::Classifier` can be searched with: `Search::with_model`
//! hands the builder the search's `ModelParams`, whose `var_builder()` creates the variables
//! that the search's optimiser, its unrolled step and its checkpoints use. (`Search::new` does
//! the same for the built-in models named by `SearchConfig::model`.)
use std::path::PathBuf;

use candle::{Device, Module, Tensor};
use candle_nn::VarBuilder;
use dada_train::data::{BinaryDataset, DatasetMeta, ImageSet, SplitConfig};
use dada_train::models::{conv2d_no_bias, global_avg_pool, linear, Classifier, Conv2d, Kernels};
use dada_train::policy::{sub_policies_text, PolicyFile};
use dada_train::{EvalResult, HistoryRow, Search, SearchConfig, SearchResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The size of the run.
pub struct Options {
    /// Training images per class in the dataset (the search uses two thirds of all training
    /// images for the model and one third for the policy's validation loss).
    pub per_class: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Passes over the search's training images.
    pub epochs: usize,
}

/// What the search gave.
pub struct Report {
    /// One row per step (losses, temperature, time per phase).
    pub history: Vec<HistoryRow>,
    /// The learned policy (its heaviest sub-policies).
    pub policy: PolicyFile,
    /// The model on the test images after the search.
    pub test: EvalResult,
}

fn main() -> SearchResult<()> {
    let epochs = match std::env::args().nth(1) {
        Some(e) => e.parse().map_err(|_| {
            dada_train::SearchError::Config(format!("EPOCHS must be a count, got {e:?}"))
        })?,
        None => 2,
    };
    let options = Options { per_class: 48, batch_size: 16, epochs };
    let report = run(&options, &mut |row| {
        println!(
            "step {:>2}  train loss {:.3}  val loss {:.3}  temperature {:.2}",
            row.step, row.train_loss, row.val_loss, row.temperature
        );
    })?;
    println!("\nlearned policy, the heaviest sub-policies:\n{}", sub_policies_text(&report.policy, 5));
    println!("test loss {:.3}, accuracy {:.2}", report.test.loss, report.test.accuracy);
    Ok(())
}

/// Builds the dataset, runs the search step by step (`on_step` sees each row) and evaluates.
pub fn run(options: &Options, on_step: &mut dyn FnMut(&HistoryRow)) -> SearchResult<Report> {
    let classes = ["horizontal", "vertical", "diagonal"];
    let dataset = BinaryDataset {
        train: stripes(options.per_class, classes.len(), 0),
        test: stripes(options.per_class / 2, classes.len(), 1),
        meta: DatasetMeta::new(3, 32, 32, classes.map(String::from).to_vec()).named("stripes"),
        // Nothing is read from or written to it: the dataset lives in memory.
        dir: PathBuf::from("stripes"),
    };

    // The paper's search (estimator, hypergradient, search space, learning rates), shrunk.
    let n_train = dataset.train.len();
    let mut cfg = SearchConfig::paper();
    cfg.split = SplitConfig {
        n_train: n_train * 2 / 3,
        n_val: n_train / 3,
        n_test: None,
        stratified: true,
        seed: 0,
    };
    cfg.batch_size = options.batch_size;
    cfg.epochs = options.epochs;
    cfg.lr = 0.05;
    cfg.seed = 1;

    let mut search = Search::with_model(cfg, &dataset, &Device::Cpu, |params, n_classes| {
        Ok(Box::new(StripeNet::new(n_classes, params.var_builder())?) as Box<dyn Classifier>)
    })?;
    while !search.finished() {
        let row = search.step()?;
        on_step(&row);
    }
    Ok(Report {
        history: search.history.clone(),
        policy: search.export(),
        test: search.evaluate_test()?,
    })
}

/// The user's own classifier: conv 3x3 (3 -> 8), ReLU, conv 3x3 stride 2 (8 -> 16), ReLU,
/// global average pooling, linear. No BatchNorm, so `train` changes nothing here.
struct StripeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: candle_nn::Linear,
}

impl StripeNet {
    fn new(n_classes: usize, vb: VarBuilder) -> candle::Result<Self> {
        Ok(Self {
            conv1: conv2d_no_bias(3, 8, 3, 1, 1, Kernels::Fast, vb.pp("conv1"))?,
            conv2: conv2d_no_bias(8, 16, 3, 2, 1, Kernels::Fast, vb.pp("conv2"))?,
            fc: linear(16, n_classes, vb.pp("fc"))?,
        })
    }
}

impl Classifier for StripeNet {
    fn forward_t(&self, images: &Tensor, _train: bool) -> candle::Result<Tensor> {
        let x = self.conv1.forward(images)?.relu()?;
        let x = self.conv2.forward(&x)?.relu()?;
        self.fc.forward(&global_avg_pool(&x)?)
    }
}

/// `per_class` noisy stripe images of each of `n_classes` orientations (planar RGB bytes).
fn stripes(per_class: usize, n_classes: usize, seed: u64) -> ImageSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut set = ImageSet::empty(3, 32, 32);
    for i in 0..per_class * n_classes {
        let label = i % n_classes;
        let phase = rng.random_range(0..8);
        let mut image = vec![0u8; 3 * 32 * 32];
        for (p, value) in image.iter_mut().enumerate() {
            let (y, x) = ((p % 1024) / 32, p % 32);
            let along = match label {
                0 => y,
                1 => x,
                _ => x + y,
            };
            let bright = (along + phase) % 8 < 4;
            *value = if bright { 190 } else { 60 } + rng.random_range(0..50u8);
        }
        set.push(&image, label as u8);
    }
    set
}
