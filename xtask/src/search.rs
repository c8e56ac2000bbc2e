//! `cargo xtask search`: the DADA policy search, with progress, artefacts and resume.
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle::Device;
use dada_train::config::TemperatureSchedule;
use dada_train::{EstimatorKind, HypergradKind, OpGradKind, Search, SearchConfig, SpaceKind};

use crate::datasets::{auto_source, default_data_dir, ensure_cifar10};
use crate::progress::{interrupt_flag, step_bar};
use crate::flags::SearchCmd;
use crate::{figures, project_root};

impl SearchCmd {
    /// Raw flags to a validated config.
    pub fn config(&self) -> Result<SearchConfig> {
        let mut cfg = match self.preset.as_str() {
            "paper" => SearchConfig::paper(),
            "tutorial" => SearchConfig::tutorial(),
            other => bail!("unknown preset '{other}': expected 'paper' or 'tutorial'"),
        };
        if self.quick {
            cfg = cfg.quick();
        }
        if let Some(s) = &self.space {
            cfg.space = match s.as_str() {
                "paper" => SpaceKind::Paper,
                "tutorial" => SpaceKind::Tutorial,
                other => bail!("unknown search space '{other}': expected 'paper' or 'tutorial'"),
            };
        }
        if let Some(e) = &self.estimator {
            cfg.estimator = match e.as_str() {
                "relax" => EstimatorKind::Relax,
                "gumbel" => EstimatorKind::Gumbel,
                other => bail!("unknown estimator '{other}': expected 'relax' or 'gumbel'"),
            };
        }
        if let Some(h) = &self.hypergrad {
            cfg.hypergrad = match h.as_str() {
                "unrolled" => HypergradKind::Unrolled,
                "first-order" => HypergradKind::FirstOrder,
                other => bail!("unknown hypergradient '{other}': expected 'unrolled' or 'first-order'"),
            };
        }
        if let Some(g) = &self.op_grad {
            cfg.op_grad = match g.as_str() {
                "exact" => OpGradKind::Exact,
                "straight-through" => OpGradKind::StraightThrough,
                other => bail!("unknown op gradient '{other}': expected 'exact' or 'straight-through'"),
            };
        }
        if let Some(m) = &self.model {
            cfg.model = m.replace('-', "_").parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => { $(if let Some(v) = self.$flag { cfg.$field = v; })* };
        }
        set!(epochs => epochs, batch_size => batch_size, lr => lr, lr_min => lr_min, momentum => momentum,
             weight_decay => weight_decay, grad_clip => grad_clip, policy_lr => policy_lr, fd_r => fd_r,
             relax_hidden => relax_hidden, relax_lr => relax_lr, top_k => top_k);
        if let Some(n) = self.n_train {
            cfg.split.n_train = n;
        }
        if let Some(n) = self.n_val {
            cfg.split.n_val = n;
        }
        if let Some(t) = &self.temperature {
            cfg.temperature = parse_schedule(t)?;
        }
        cfg.seed = self.seed;
        cfg.split.seed = self.seed;
        cfg.validate().map_err(|e| anyhow::anyhow!("invalid flags: {e}"))?;
        Ok(cfg)
    }

    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let device = Device::Cpu;
        let (cfg, out) = match &self.resume {
            Some(dir) => {
                let ck = dir.join("checkpoint.safetensors");
                let state = dada_train::checkpoint::Checkpoint::load(&ck, &device)
                    .with_context(|| format!("resuming from {}", dir.display()))?;
                let cfg: SearchConfig = serde_json::from_value(state.state["config"].clone())
                    .with_context(|| format!("{}: no search configuration in the checkpoint", ck.display()))?;
                (cfg, dir.clone())
            }
            None => {
                let cfg = self.config()?;
                let name = format!("search-{}{}-seed{}", cfg.preset, if self.quick { "-quick" } else { "" }, cfg.seed);
                (cfg, self.out.clone().unwrap_or_else(|| project_root().join("runs").join(name)))
            }
        };
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let dir = ensure_cifar10(&data_dir, &auto_source(), 0, false)?;
        let dataset = dada_train::data::load_dir(&dir)?;
        let start = Instant::now();
        let mut search = Search::new(cfg.clone(), &dataset, &device)?;
        let ck = out.join("checkpoint.safetensors");
        if self.resume.is_some() {
            search.load_checkpoint(&ck)?;
            eprintln!("resumed {} at step {} of {}", out.display(), search.step_index(), cfg.total_steps());
        }
        eprintln!(
            "searching: preset {}, space {:?}, estimator {:?}, hypergradient {:?}, op gradient {:?}, model {}, {} / {} / {} images, {} epoch(s) of {} steps, seed {}",
            cfg.preset, cfg.space, cfg.estimator, cfg.hypergrad, cfg.op_grad, cfg.model, search.splits.train.len(),
            search.splits.val.len(), search.splits.test.len(), cfg.epochs, cfg.steps_per_epoch(), cfg.seed
        );
        let stop = interrupt_flag();
        let bar = step_bar(cfg.total_steps(), search.step_index());
        let (mut sum_loss, mut sum_acc, mut n) = (0f64, 0f64, 0f64);
        let done = search.run(&ck, &stop, &mut |row| {
            sum_loss = 0.9 * sum_loss + row.train_loss as f64;
            sum_acc = 0.9 * sum_acc + row.train_acc as f64;
            n = 0.9 * n + 1.0;
            bar.set_message(format!(
                "loss {:.3} acc {:.1}% val {:.3} T {:.2}",
                sum_loss / n,
                100.0 * sum_acc / n,
                row.val_loss,
                row.temperature
            ));
            bar.inc(1);
        });
        bar.finish_and_clear();
        let done = done.with_context(|| format!("search stopped; the last checkpoint is in {}", ck.display()))?;
        write_history(&out.join("history.csv"), &search.history)?;
        if !done {
            eprintln!("stopped at step {}; continue with `cargo xtask search --resume {}`", search.step_index(), out.display());
            return Ok(());
        }
        let wall = start.elapsed().as_secs_f64();
        let test = search.evaluate_test()?;
        let policy = search.export();
        let mut f = std::fs::File::create(out.join("policy.json")).context("writing policy.json")?;
        policy.write_json(&mut f)?;
        let mut f = std::fs::File::create(out.join("policy-fast-autoaugment.json")).context("writing the fast-autoaugment policy")?;
        policy.write_fast_autoaugment(&mut f)?;
        figures::search_figures(&out, &search, &dataset)?;
        let secs: [f64; 3] = search.history.iter().fold([0.0; 3], |a, r| [a[0] + r.secs_augment, a[1] + r.secs_model, a[2] + r.secs_policy]);
        println!("search done in {wall:.1} s ({} images through the model; augmentation {:.1} s, model {:.1} s, policy {:.1} s)", search.images_processed, secs[0], secs[1], secs[2]);
        println!("test accuracy after the search: {:.2}% ({} images)", 100.0 * test.accuracy, search.splits.test.len());
        println!("{}", dada_train::policy::preferences_text(&search.policy().op_preferences()));
        println!("{}", dada_train::policy::sub_policies_text(&policy, 10));
        println!("artefacts in {}", out.display());
        Ok(())
    }
}

fn parse_schedule(s: &str) -> Result<TemperatureSchedule> {
    // "0.5", "cosine:1.0:0.1", "linear:1:0.1", "exp:1:0.1"
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str| p.parse::<f64>().with_context(|| format!("temperature schedule '{s}': '{p}' is not a number"));
    Ok(match parts.as_slice() {
        [v] => TemperatureSchedule::Constant(num(v)?),
        ["constant", v] => TemperatureSchedule::Constant(num(v)?),
        ["cosine", a, b] => TemperatureSchedule::Cosine { start: num(a)?, end: num(b)? },
        ["linear", a, b] => TemperatureSchedule::Linear { start: num(a)?, end: num(b)? },
        ["exp" | "exponential", a, b] => TemperatureSchedule::Exponential { start: num(a)?, end: num(b)? },
        _ => bail!("temperature schedule '{s}': expected V, constant:V, cosine:A:B, linear:A:B or exp:A:B"),
    })
}

fn write_history(path: &Path, rows: &[dada_train::HistoryRow]) -> Result<()> {
    let mut text = String::from(dada_train::HistoryRow::CSV_HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(&r.csv());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
