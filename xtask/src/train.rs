//! `cargo xtask train`: train a classifier from scratch with a fixed policy and report test
//! accuracy, with progress, checkpoints, resume and curves.
use std::path::Path;

use anyhow::{bail, Context, Result};
use dada_train::known_policies::{autoaugment_cifar10, dada_official, randaugment, uniform_paper, DADA_OFFICIAL_NAMES};
use dada_train::policy::PolicyFile;
use dada_train::train::{TrainConfig, TrainPolicy, TrainRow, Trainer};
use plotters::prelude::*;

use crate::datasets::open;
use crate::flags::DataFlags;
use crate::runs;
use crate::check;
use dada_train::error::clip;
use crate::progress::{interrupt_flag, StepProgress};
use crate::flags::TrainCmd;
use crate::project_root;

/// What `--policy` accepts, for messages.
const POLICIES: &str = "none, baseline, cutout, random, autoaugment, randaugment:N,M, dada:<policy.json>, file:<fast-autoaugment.json> or dada-official:cifar10|cifar100|svhn|imagenet";

/// Parses `--policy` (see [`POLICIES`]).
pub fn parse_policy(spec: &str) -> Result<TrainPolicy> {
    let open = |path: &str| std::fs::File::open(path).with_context(|| format!("opening policy file {}", clip(path)));
    Ok(match spec.split_once(':') {
        None => match spec {
            "none" => TrainPolicy::None,
            "baseline" => TrainPolicy::Baseline,
            "cutout" => TrainPolicy::Cutout,
            "random" => TrainPolicy::Policy { name: spec.into(), policy: uniform_paper() },
            "autoaugment" => TrainPolicy::Policy { name: spec.into(), policy: autoaugment_cifar10(32) },
            other => bail!("unknown policy '{}': expected {POLICIES}", clip(other)),
        },
        Some(("dada", path)) => {
            let policy = PolicyFile::read_json(open(path)?).with_context(|| format!("reading the DADA policy {}", clip(path)))?;
            TrainPolicy::Policy { name: spec.into(), policy }
        }
        Some(("file", path)) => {
            let policy = PolicyFile::read_fast_autoaugment(open(path)?)
                .with_context(|| format!("reading the fast-autoaugment policy {}", clip(path)))?;
            TrainPolicy::Policy { name: spec.into(), policy }
        }
        Some(("dada-official", name)) => match dada_official(name) {
            Some(policy) => TrainPolicy::Policy { name: spec.into(), policy },
            None => bail!("dada-official:{}: expected one of {}", clip(name), DADA_OFFICIAL_NAMES.join(", ")),
        },
        Some(("randaugment", nm)) => {
            let (n, m) = nm.split_once(',').context("randaugment needs N,M, e.g. randaugment:2,9")?;
            let n: usize = n.trim().parse().with_context(|| format!("randaugment N '{}' must be an integer in 1..=3", clip(n)))?;
            let m: f64 = m.trim().parse().with_context(|| format!("randaugment M '{}' must be a number in 0..=30", clip(m)))?;
            if !(1..=3).contains(&n) || !(0.0..=30.0).contains(&m) {
                bail!("randaugment:N,M needs N in 1..=3 and M in 0..=30, got {n},{m}");
            }
            TrainPolicy::Policy { name: spec.into(), policy: randaugment(n, m) }
        }
        Some((kind, _)) => bail!("unknown policy kind '{}:': expected {POLICIES}", clip(kind)),
    })
}

impl TrainCmd {
    /// Flags to a validated config.
    pub fn config(&self) -> Result<TrainConfig> {
        check::count("epochs", self.epochs, 1, 100_000)?;
        check::count("batch-size", self.batch_size, 1, 1_000_000)?;
        check::count("n-train", self.n_train, 1, 100_000_000)?;
        check::count("warmup-epochs", self.warmup_epochs, 0, 100_000)?;
        check::count("eval-every", self.eval_every, 1, 100_000)?;
        check::number("lr", self.lr, 0.0, 10.0, true)?;
        check::number("weight-decay", self.weight_decay, 0.0, 1.0, false)?;
        check::number("grad-clip", self.grad_clip, 0.0, 1e9, true)?;
        if let Some(m) = &self.runf.max_memory {
            check::memory_size("max-memory", m)?;
        }
        let mut cfg = TrainConfig::wrn40x2_cifar10(parse_policy(&self.policy).context("--policy")?);
        cfg.model = crate::search::parse_model(&self.model)?;
        cfg.n_train = match self.data_kind.as_str() {
            "reduced" => Some(4000),
            "full" => None,
            other => bail!("--data '{}': expected reduced (4,000 training images) or full", clip(other)),
        };
        if let Some(n) = self.n_train {
            cfg.n_train = Some(n);
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => { $(if let Some(v) = self.$flag { cfg.$field = v; })* };
        }
        set!(epochs => epochs, batch_size => batch_size, lr => lr, warmup_epochs => warmup_epochs,
             weight_decay => weight_decay, grad_clip => grad_clip, eval_every => eval_every);
        cfg.seed = self.runf.seed;
        cfg.validate().map_err(|e| anyhow::anyhow!("invalid flags: {e}"))?;
        Ok(cfg)
    }

    /// Runs the command; `given` are the flags given on the command line.
    pub fn run(self, given: &[String]) -> Result<()> {
        let device = self.run.select()?;
        let (cfg, out, data, resume_from) = match &self.runf.resume {
            Some(dir) => {
                check::resume_flags("train", given, crate::search::RESUME_FLAGS)?;
                let (ck, from) = crate::search::resume_checkpoint(dir, &device)?;
                let cfg: TrainConfig = serde_json::from_value(ck.state["config"].clone()).context("no training configuration in the checkpoint")?;
                let info = runs::info(dir, "train")?;
                if let Some(d) = &self.data.dataset {
                    if d != &info.dataset {
                        bail!("--resume {}: the run trained on dataset '{}', not '{}'; drop --dataset to continue it", dir.display(), info.dataset, clip(d));
                    }
                }
                let data = DataFlags { dataset: Some(info.dataset), data_dir: self.data.data_dir.clone().or(info.data_dir) };
                (cfg, dir.clone(), data, Some(from))
            }
            None => {
                let cfg = self.config()?;
                let tag = self.policy.replace([':', '/', ','], "_");
                let dataset = self.data.name();
                let ds_tag = if dataset == "cifar10" { String::new() } else { format!("-{dataset}") };
                let name = format!("train-{}-{}-{}{ds_tag}-seed{}", cfg.model, tag, self.data_kind, cfg.seed);
                let out = runs::fresh(project_root().join("runs").join(name), self.runf.out.as_deref(), "train")?;
                (cfg, out, self.data.clone(), None)
            }
        };
        let dataset = open(&data)?;
        let mut cfg = cfg;
        if self.runf.resume.is_none() {
            if let Some(n) = cfg.n_train {
                if n > dataset.train.len() {
                    if self.n_train.is_some() {
                        bail!("--n-train {n} is more than the {} training images of {}", dataset.train.len(), data.name());
                    }
                    eprintln!("{}: --data {} asks for {n} training images, the dataset has {}: using all of them", data.name(), self.data_kind, dataset.train.len());
                    cfg.n_train = None;
                }
            }
            let n = cfg.n_train.unwrap_or(dataset.train.len());
            if cfg.batch_size > n {
                eprintln!("batch size {} is more than the {n} training images: each step uses all {n}", cfg.batch_size);
            }
            check::memory(cfg.model, &dataset.meta, cfg.batch_size.min(n), dada_train::memory::RunKind::Train, self.runf.max_memory.as_deref())?;
            runs::start(&out, &runs::RunInfo { command: "train".into(), dataset: data.name().to_string(), data_dir: data.data_dir.clone() })?;
        }
        let mut trainer = Trainer::new(cfg.clone(), &dataset, &device)?;
        let ck = out.join("checkpoint.safetensors");
        if let Some(from) = &resume_from {
            trainer.load_checkpoint(from)?;
        }
        eprintln!(
            "training {} with policy {} on {} images, {} epochs of {} steps (batch {}), seed {}",
            cfg.model, cfg.policy.name(), trainer.train.len(), cfg.epochs, cfg.steps_per_epoch(trainer.train.len()), cfg.batch_size, cfg.seed
        );
        let stop = interrupt_flag();
        let mut progress = StepProgress::new(trainer.total_steps(), trainer.step_index());
        let (mut ema_l, mut ema_a, mut w) = (0f64, 0f64, 0f64);
        let start = std::time::Instant::now();
        let done = trainer.run(&ck, &stop, &mut |_, loss, acc| {
            ema_l = 0.95 * ema_l + loss as f64;
            ema_a = 0.95 * ema_a + acc as f64;
            w = 0.95 * w + 1.0;
            progress.step(format!("loss {:.3} acc {:.1}%", ema_l / w, 100.0 * ema_a / w));
        });
        progress.finish();
        let done = done.with_context(|| format!("training stopped; the last checkpoint is in {}", ck.display()))?;
        write_history(&out.join("history.csv"), &trainer.history)?;
        curves(&out.join("curves.png"), &trainer.history, &cfg.policy.name())?;
        if !done {
            eprintln!("stopped at step {}; continue with `cargo xtask train --resume {}`", trainer.step_index(), out.display());
            return Ok(());
        }
        let test = trainer.evaluate_test()?;
        let result = serde_json::json!({
            "policy": cfg.policy.name(), "model": cfg.model.name(), "seed": cfg.seed, "epochs": cfg.epochs,
            "n_train": trainer.train.len(), "n_test": trainer.test.len(),
            "test_accuracy": test.accuracy, "test_loss": test.loss, "wall_secs": start.elapsed().as_secs_f64(),
        });
        std::fs::write(out.join("result.json"), serde_json::to_string_pretty(&result)?)?;
        println!("test accuracy {:.2}% (loss {:.4}) on {} images; artefacts in {}", 100.0 * test.accuracy, test.loss, trainer.test.len(), out.display());
        Ok(())
    }
}

fn write_history(path: &Path, rows: &[TrainRow]) -> Result<()> {
    let mut text = String::from("epoch,train_loss,train_acc,test_acc,lr,secs\n");
    for r in rows {
        let test = r.test_acc.map(|a| format!("{a:.4}")).unwrap_or_default();
        text.push_str(&format!("{},{:.6},{:.4},{},{:.6},{:.2}\n", r.epoch, r.train_loss, r.train_acc, test, r.lr, r.secs));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Training loss, training and test accuracy by epoch.
fn curves(path: &Path, rows: &[TrainRow], title: &str) -> Result<()> {
    crate::plot::curves_generic(
        path,
        &format!("training with policy {title}"),
        &[
            ("training loss", vec![("train", rows.iter().map(|r| (r.epoch as f64, r.train_loss as f64)).collect(), BLUE)]),
            (
                "accuracy",
                vec![
                    ("train (augmented)", rows.iter().map(|r| (r.epoch as f64, r.train_acc as f64)).collect(), BLUE),
                    ("test", rows.iter().filter_map(|r| r.test_acc.map(|a| (r.epoch as f64, a as f64))).collect(), RED),
                ],
            ),
        ],
    )
}
