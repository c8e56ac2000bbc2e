//! Every flag of every subcommand, declared in one place.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DADA: Differentiable Automatic Data Augmentation, in Rust on candle.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a dataset in the CIFAR-10 binary layout.
    Datasets(DatasetsCmd),
    /// Search an augmentation policy (the main job).
    Search(Box<SearchCmd>),
    /// Apply one op to an image file (any size).
    Augment(AugmentCmd),
    /// Write a PNG grid of every op at one magnitude on a real test image of the dataset.
    Showcase(ShowcaseCmd),
    /// Train a classifier from scratch with a fixed policy and report test accuracy.
    Train(TrainCmd),
    /// Check the gradients of augment -> model -> loss w.r.t. the policy (finite differences).
    VerifyGrads(VerifyGradsCmd),
    /// Check a device against the CPU: every op, the mixture, the models, then a search and a
    /// training run end to end, and the same seed twice (run it on a GPU machine).
    GpuCheck(GpuCheckCmd),
    /// Measure ours against PyTorch eager and kornia (`benches/anchors/`, set up with `pip
    /// install -r benches/anchors/requirements.txt`), alternating in one run, and print the ratios.
    Compare(CompareCmd),
    /// Check the repository's layering and file headers.
    Tidy,
}

/// `cargo xtask verify-grads [--model M] [--batch-size N]`.
#[derive(Debug, Args)]
pub struct VerifyGradsCmd {
    /// Model: tiny-cnn (default: f32 finite differences through 40 ReLU + BatchNorm layers of
    /// WRN-40-2 are dominated by kinks, even with candle's stock ops), wrn-40-2, resnet18.
    #[arg(long, default_value = "tiny-cnn")]
    pub model: String,
    /// Images in the batch (real test images of the dataset).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Model kernels: `fast` (our CPU convolution and BatchNorm) or `stock` (candle's ops).
    #[arg(long, default_value = "fast")]
    pub kernels: String,
    /// Finite-difference step for magnitudes (logits use 5x this).
    #[arg(long, default_value_t = 2e-3)]
    pub eps: f64,
    /// Relative-error tolerance of a trusted check.
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// Coordinates checked per parameter group.
    #[arg(long, default_value_t = 6)]
    pub coords: usize,
    /// Dataset flags.
    #[command(flatten)]
    pub data: DataFlags,
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `--data-dir` and `--dataset`: where the data lives and which dataset, for every command
/// that reads one.
#[derive(Debug, Args, Clone)]
pub struct DataFlags {
    /// The dataset: `cifar10` (default), `cifar100`, `cifar100-coarse`, `svhn`, or a name given
    /// to `cargo xtask datasets import` [default: cifar10].
    #[arg(long)]
    pub dataset: Option<String>,
    /// The data root that holds the datasets (default: `<project>/data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `--out`, `--resume`, `--max-memory` and `--seed`: the flags of every command that writes a
/// run folder (`search`, `train`).
#[derive(Debug, Args, Clone)]
pub struct RunFlags {
    /// Output folder (default: a new folder under `<project>/runs/` named after the run; an
    /// earlier run's folder is never reused).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the interrupted run in this output folder (with the settings it was started
    /// with; only --data-dir, --max-memory and --device may be given beside it).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Refuse to start when the run's estimated peak memory exceeds this (e.g. 8G, 512M);
    /// default: the memory available (cgroup limit or MemAvailable).
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Seed of everything: model initialisation, splits, batches, augmentation and policy draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `--device auto|cpu|cuda[:N]`.
#[derive(Debug, Args, Clone)]
pub struct DeviceFlags {
    /// Where to run: `auto` (CUDA when built with the `cuda` feature and a device answers,
    /// else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl DeviceFlags {
    /// The device asked for, announced on stderr.
    pub fn select(&self) -> anyhow::Result<candle::Device> {
        let spec: dada_train::device::DeviceSpec = self.device.parse()?;
        let device = dada_train::device::select(spec)?;
        eprintln!("device: {}", dada_train::device::describe(&device));
        Ok(device)
    }
}

/// `cargo xtask gpu-check [--device cuda] [--quick]`.
#[derive(Debug, Args)]
pub struct GpuCheckCmd {
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
    /// Images per op and model comparison.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Only the tiny CNN and a two-step search (seconds, for CI); otherwise WRN-40-2 too, and
    /// the search on WRN-40-2.
    #[arg(long)]
    pub quick: bool,
    /// Write the report (JSON) here as well.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `cargo xtask compare [--rounds 3] [--threads 2] [--measure wrn-step,wrn-eval,mixture]
/// [--python python3] [--json PATH]`.
#[derive(Debug, Args)]
#[command(after_help = "Setup (once): pip install -r benches/anchors/requirements.txt
Measures: wrn-step (WRN-40-2 training step, batch 128), wrn-eval (WRN-40-2 eval forward, batch
512), mixture (the 15-op mixture of OpSet::paper(), forward + backward, batch 128; kornia).
Examples:
  cargo xtask compare                                 every measure, 3 rounds, 2 threads
  cargo xtask compare --rounds 1 --measure mixture    about half a minute")]
pub struct CompareCmd {
    /// Rounds; each runs ours and theirs once per measure, alternating which goes first.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Threads of each side (ours: rayon; theirs: `torch.set_num_threads`).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Comma-separated: wrn-step, wrn-eval, mixture.
    #[arg(long, default_value = "wrn-step,wrn-eval,mixture")]
    pub measure: String,
    /// Timed repeats per side and round (default: 5 for wrn-step, 3 for wrn-eval, 20 for mixture).
    #[arg(long)]
    pub reps: Option<usize>,
    /// The Python interpreter that has torch and kornia.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Write the figures (JSON) here as well; an existing file is never replaced.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl DataFlags {
    /// The dataset's name (`cifar10` when none is given).
    pub fn name(&self) -> &str {
        self.dataset.as_deref().unwrap_or("cifar10")
    }
}

/// `cargo xtask datasets cifar10|cifar100|cifar100-coarse|svhn [--from PATH | --download]`,
/// `cargo xtask datasets import PATH --name NAME`, `cargo xtask datasets list`.
///
/// Nothing already there is replaced without `--force`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cargo xtask datasets cifar10                        the bundled ImageFolder copy, else the official download
  cargo xtask datasets cifar100 --from cifar-100-binary.tar.gz
  cargo xtask datasets svhn --from svhn/              the folder with train_32x32.mat and test_32x32.mat
  cargo xtask datasets import my-images/ --name pets  any ImageFolder: train/<class>/*.jpg, test/<class>/*.jpg
  cargo xtask datasets list")]
pub struct DatasetsCmd {
    /// `cifar10`, `cifar100` (fine labels), `cifar100-coarse`, `svhn`, `import` or `list`.
    pub what: String,
    /// With `import`: the ImageFolder directory or archive (.tar.gz, .tgz, .tar).
    pub path: Option<PathBuf>,
    /// With `import`: the dataset's name (letters, digits, '-', '_'); it is written to
    /// `<data-dir>/<name>/`.
    #[arg(long)]
    pub name: Option<String>,
    /// The data root (default: `<project>/data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Build from this official file or folder: `cifar-10-binary.tar.gz`,
    /// `cifar-100-binary.tar.gz` (or their extracted folders), SVHN's folder with
    /// `train_32x32.mat` and `test_32x32.mat`; for `cifar10`, also an ImageFolder tree or archive.
    #[arg(long, conflicts_with = "download")]
    pub from: Option<PathBuf>,
    /// Download the official release (md5-checked).
    #[arg(long)]
    pub download: bool,
    /// Replace the dataset if it is already there (a folder holding anything else is never
    /// replaced).
    #[arg(long)]
    pub force: bool,
    /// Seed of the record order of imported images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `cargo xtask search [--quick] [--preset paper|tutorial] ...`: every hyperparameter a flag;
/// unset flags keep the preset's value.
#[derive(Debug, Args)]
pub struct SearchCmd {
    /// Shrink the preset to 1,024 / 256 / 256 images and one epoch.
    #[arg(long, conflicts_with = "resume")]
    pub quick: bool,
    /// `paper` (official DADA CIFAR-10 settings) or `tutorial` (the datarax guide).
    #[arg(long, default_value = "paper")]
    pub preset: String,
    /// Search space: `paper` (105 sub-policies) or `tutorial` (25x2x15).
    #[arg(long)]
    pub space: Option<String>,
    /// Estimator: `relax` or `gumbel`.
    #[arg(long)]
    pub estimator: Option<String>,
    /// Hypergradient: `unrolled` or `first-order`.
    #[arg(long)]
    pub hypergrad: Option<String>,
    /// Magnitude gradient of the ops: `exact` (each op's own; surrogates where an op is not
    /// smooth) or `straight-through` (the official DADA code's, for every op).
    #[arg(long)]
    pub op_grad: Option<String>,
    /// Sub-policy draws of the paper space: `per-batch` (the paper's, every preset's: one for the
    /// whole batch) or `per-image` (this project's extension: one per image, more gradient
    /// signal per step). The tutorial space always draws per image.
    #[arg(long)]
    pub draw: Option<String>,
    /// Model: wrn-40-2, wrn-16-2, wrn-28-10, resnet18, tiny-cnn.
    #[arg(long)]
    pub model: Option<String>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Training images.
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Validation images.
    #[arg(long)]
    pub n_val: Option<usize>,
    /// Model SGD learning rate (cosine to --lr-min).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final model learning rate.
    #[arg(long)]
    pub lr_min: Option<f64>,
    /// Model SGD momentum.
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Model weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Gradient-norm clip.
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Policy Adam learning rate.
    #[arg(long)]
    pub policy_lr: Option<f64>,
    /// Temperature: V, constant:V, cosine:A:B, linear:A:B or exp:A:B.
    #[arg(long)]
    pub temperature: Option<String>,
    /// DARTS finite-difference step numerator (r = fd_r / |v|).
    #[arg(long)]
    pub fd_r: Option<f64>,
    /// Hidden width of RELAX's control variate.
    #[arg(long)]
    pub relax_hidden: Option<usize>,
    /// Learning rate of RELAX's control variate.
    #[arg(long)]
    pub relax_lr: Option<f64>,
    /// Sub-policies kept in the exported paper policy.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Run-folder, memory and seed flags (default folder:
    /// `<project>/runs/search-<preset>[-quick]-seed<N>`).
    #[command(flatten)]
    pub runf: RunFlags,
    /// Dataset flags.
    #[command(flatten)]
    pub data: DataFlags,
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
}

/// `cargo xtask train --policy P [--model M] [--epochs N] [--data reduced|full] ...`; defaults
/// follow fast-autoaugment's `wresnet40x2_cifar10_b512_test.yaml`.
#[derive(Debug, Args)]
pub struct TrainCmd {
    /// none | baseline | cutout | random (the paper policy the search starts from: 105
    /// sub-policies, p = m = 0.5) | autoaugment | randaugment:N,M | dada:<policy.json> |
    /// file:<fast-autoaugment.json> | dada-official:cifar10|cifar100|svhn|imagenet (the
    /// policies the DADA authors published).
    #[arg(long, default_value = "cutout")]
    pub policy: String,
    /// Model: wrn-40-2, wrn-16-2, wrn-28-10, resnet18, tiny-cnn.
    #[arg(long, default_value = "wrn-40-2")]
    pub model: String,
    /// Training data: `reduced` (4,000 images, stratified) or `full` (all of the training files).
    #[arg(long = "data", default_value = "full")]
    pub data_kind: String,
    /// Training images (overrides --data's count).
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Epochs (default 200).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (default 512).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate (default 0.1, warmed up x4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warm-up epochs (default 5).
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Weight decay (default 2e-4).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Gradient-norm clip (default 5).
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Evaluate on the test set every N epochs (default 10).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Run-folder, memory and seed flags (default folder:
    /// `<project>/runs/train-<model>-<policy>-<data>-seed<N>`).
    #[command(flatten)]
    pub runf: RunFlags,
    /// Dataset flags.
    #[command(flatten)]
    pub data: DataFlags,
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
}

/// `cargo xtask augment --op NAME --magnitude M [--sign plus|minus] [--interp nearest|bilinear] IN OUT`.
#[derive(Debug, Args)]
pub struct AugmentCmd {
    /// The op's name, e.g. shear_x, solarize, cutout.
    #[arg(long)]
    pub op: String,
    /// Magnitude in [0, 1].
    #[arg(long)]
    pub magnitude: f32,
    /// Sign of symmetric ops (default: random from --seed).
    #[arg(long)]
    pub sign: Option<String>,
    /// Sampling of geometric ops (bilinear also gives a soft-edged cutout).
    #[arg(long, default_value = "nearest")]
    pub interp: String,
    /// Seed of the random parts (sign, cutout centre, noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
    /// Input image (PNG or JPEG).
    pub input: PathBuf,
    /// Output image.
    pub output: PathBuf,
}

/// `cargo xtask showcase [--magnitude 0.7] [--out PNG]`.
#[derive(Debug, Args)]
pub struct ShowcaseCmd {
    /// Magnitude of every op.
    #[arg(long, default_value_t = 0.7)]
    pub magnitude: f32,
    /// Which test image of the dataset.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Output PNG (default: `<project>/docs/showcase.png`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the random parts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dataset flags.
    #[command(flatten)]
    pub data: DataFlags,
    /// Device flags.
    #[command(flatten)]
    pub run: DeviceFlags,
}
