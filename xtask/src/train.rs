//! `cargo xtask train`: train a classifier from scratch with a fixed policy and report test
//! accuracy, with progress, checkpoints, resume and curves.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle::Device;
use dada_train::known_policies::{autoaugment_cifar10, randaugment};
use dada_train::policy::PolicyFile;
use dada_train::train::{TrainConfig, TrainPolicy, TrainRow, Trainer};
use plotters::prelude::*;

use crate::datasets::{auto_source, default_data_dir, ensure_cifar10};
use crate::progress::{interrupt_flag, step_bar};
use crate::flags::TrainCmd;
use crate::project_root;

/// Parses `none | baseline | cutout | dada:<policy.json> | autoaugment | randaugment:N,M |
/// file:<fast-autoaugment json>`.
pub fn parse_policy(spec: &str) -> Result<TrainPolicy> {
    let open = |path: &str| std::fs::File::open(path).with_context(|| format!("opening policy file {path}"));
    Ok(match spec.split_once(':') {
        None => match spec {
            "none" => TrainPolicy::None,
            "baseline" => TrainPolicy::Baseline,
            "cutout" => TrainPolicy::Cutout,
            "autoaugment" => TrainPolicy::Policy { name: spec.into(), policy: autoaugment_cifar10(32) },
            other => bail!("unknown policy '{other}': expected none, baseline, cutout, dada:<policy.json>, autoaugment, randaugment:N,M or file:<fast-autoaugment.json>"),
        },
        Some(("dada", path)) => {
            let policy = PolicyFile::read_json(open(path)?).with_context(|| format!("reading the DADA policy {path}"))?;
            TrainPolicy::Policy { name: spec.into(), policy }
        }
        Some(("file", path)) => {
            let policy = PolicyFile::read_fast_autoaugment(open(path)?).with_context(|| format!("reading the fast-autoaugment policy {path}"))?;
            TrainPolicy::Policy { name: spec.into(), policy }
        }
        Some(("randaugment", nm)) => {
            let (n, m) = nm.split_once(',').context("randaugment needs N,M, e.g. randaugment:2,9")?;
            let n: usize = n.trim().parse().context("randaugment N must be an integer")?;
            let m: f64 = m.trim().parse().context("randaugment M must be a number")?;
            if !(1..=3).contains(&n) || !(0.0..=30.0).contains(&m) {
                bail!("randaugment:N,M needs N in 1..=3 and M in 0..=30, got {n},{m}");
            }
            TrainPolicy::Policy { name: spec.into(), policy: randaugment(n, m) }
        }
        Some((kind, _)) => bail!("unknown policy kind '{kind}:'"),
    })
}

impl TrainCmd {
    /// Flags to a validated config.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::wrn40x2_cifar10(parse_policy(&self.policy)?);
        cfg.model = self.model.replace('-', "_").parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.n_train = match self.data.as_str() {
            "reduced" => Some(4000),
            "full" => None,
            other => bail!("unknown --data '{other}': expected reduced (4,000 training images) or full"),
        };
        if let Some(n) = self.n_train {
            cfg.n_train = Some(n);
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => { $(if let Some(v) = self.$flag { cfg.$field = v; })* };
        }
        set!(epochs => epochs, batch_size => batch_size, lr => lr, warmup_epochs => warmup_epochs,
             weight_decay => weight_decay, grad_clip => grad_clip, eval_every => eval_every);
        cfg.seed = self.seed;
        cfg.validate().map_err(|e| anyhow::anyhow!("invalid flags: {e}"))?;
        Ok(cfg)
    }

    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let device = Device::Cpu;
        let (cfg, out) = match &self.resume {
            Some(dir) => {
                let ck = dada_train::checkpoint::Checkpoint::load(&dir.join("checkpoint.safetensors"), &device)?;
                let cfg: TrainConfig = serde_json::from_value(ck.state["config"].clone()).context("no training configuration in the checkpoint")?;
                (cfg, dir.clone())
            }
            None => {
                let cfg = self.config()?;
                let tag = self.policy.replace([':', '/', ','], "_");
                let name = format!("train-{}-{}-{}-seed{}", cfg.model, tag, self.data, cfg.seed);
                (cfg, self.out.clone().unwrap_or_else(|| project_root().join("runs").join(name)))
            }
        };
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let dir = ensure_cifar10(&self.data_dir.clone().unwrap_or_else(default_data_dir), &auto_source(), 0, false)?;
        let dataset = dada_train::data::load_dir(&dir)?;
        let mut trainer = Trainer::new(cfg.clone(), &dataset, &device)?;
        let ck = out.join("checkpoint.safetensors");
        if self.resume.is_some() {
            trainer.load_checkpoint(&ck)?;
        }
        eprintln!(
            "training {} with policy {} on {} images, {} epochs of {} steps (batch {}), seed {}",
            cfg.model, cfg.policy.name(), trainer.train.len(), cfg.epochs, cfg.steps_per_epoch(trainer.train.len()), cfg.batch_size, cfg.seed
        );
        let stop = interrupt_flag();
        let bar = step_bar(trainer.total_steps(), trainer.step_index());
        let (mut ema_l, mut ema_a, mut w) = (0f64, 0f64, 0f64);
        let start = std::time::Instant::now();
        let done = trainer.run(&ck, &stop, &mut |_, loss, acc| {
            ema_l = 0.95 * ema_l + loss as f64;
            ema_a = 0.95 * ema_a + acc as f64;
            w = 0.95 * w + 1.0;
            bar.set_message(format!("loss {:.3} acc {:.1}%", ema_l / w, 100.0 * ema_a / w));
            bar.inc(1);
        });
        bar.finish_and_clear();
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
