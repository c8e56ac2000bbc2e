//! `cargo xtask search`: the DADA policy search, with progress, artefacts and resume.
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle::Device;
use dada_train::config::TemperatureSchedule;
use dada_train::{Draw, EstimatorKind, HypergradKind, OpGradKind, Search, SearchConfig, SpaceKind};

use crate::datasets::open;
use crate::flags::DataFlags;
use crate::runs;
use crate::check;
use dada_train::error::clip;
use crate::progress::{interrupt_flag, StepProgress};
use crate::flags::SearchCmd;
use crate::{figures, project_root};

impl SearchCmd {
    /// Raw flags to a validated config.
    pub fn config(&self) -> Result<SearchConfig> {
        check::count("epochs", self.epochs, 1, 100_000)?;
        check::count("batch-size", self.batch_size, 1, 1_000_000)?;
        check::count("n-train", self.n_train, 1, 100_000_000)?;
        check::count("n-val", self.n_val, 1, 100_000_000)?;
        check::count("relax-hidden", self.relax_hidden, 1, 65_536)?;
        check::count("top-k", self.top_k, 1, 105)?;
        check::number("lr", self.lr, 0.0, 10.0, true)?;
        check::number("lr-min", self.lr_min, 0.0, 10.0, false)?;
        check::number("momentum", self.momentum, 0.0, 0.9999, false)?;
        check::number("weight-decay", self.weight_decay, 0.0, 1.0, false)?;
        check::number("grad-clip", self.grad_clip, 0.0, 1e9, true)?;
        check::number("policy-lr", self.policy_lr, 0.0, 10.0, true)?;
        check::number("fd-r", self.fd_r, 0.0, 100.0, true)?;
        check::number("relax-lr", self.relax_lr, 0.0, 10.0, true)?;
        if let Some(m) = &self.runf.max_memory {
            check::memory_size("max-memory", m)?;
        }
        let mut cfg = match self.preset.as_str() {
            "paper" => SearchConfig::paper(),
            "tutorial" => SearchConfig::tutorial(),
            other => bail!("--preset '{}': expected paper or tutorial", clip(other)),
        };
        if self.quick {
            cfg = cfg.quick();
        }
        if let Some(s) = &self.space {
            cfg.space = match s.as_str() {
                "paper" => SpaceKind::Paper,
                "tutorial" => SpaceKind::Tutorial,
                other => bail!("--space '{}': expected paper or tutorial", clip(other)),
            };
        }
        if let Some(e) = &self.estimator {
            cfg.estimator = match e.as_str() {
                "relax" => EstimatorKind::Relax,
                "gumbel" => EstimatorKind::Gumbel,
                other => bail!("--estimator '{}': expected relax or gumbel", clip(other)),
            };
        }
        if let Some(h) = &self.hypergrad {
            cfg.hypergrad = match h.as_str() {
                "unrolled" => HypergradKind::Unrolled,
                "first-order" => HypergradKind::FirstOrder,
                other => bail!("--hypergrad '{}': expected unrolled or first-order", clip(other)),
            };
        }
        if let Some(g) = &self.op_grad {
            cfg.op_grad = match g.as_str() {
                "exact" => OpGradKind::Exact,
                "straight-through" => OpGradKind::StraightThrough,
                other => bail!("--op-grad '{}': expected exact or straight-through", clip(other)),
            };
        }
        if let Some(d) = &self.draw {
            cfg.draw = match d.as_str() {
                "per-batch" => Draw::PerBatch,
                "per-image" => Draw::PerImage,
                other => bail!("--draw '{}': expected per-batch or per-image", clip(other)),
            };
            if cfg.space != SpaceKind::Paper {
                bail!("--draw {d}: only the paper space has a choice (the tutorial space always draws one sub-policy per image)");
            }
        }
        if let Some(m) = &self.model {
            cfg.model = parse_model(m)?;
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
            cfg.temperature = parse_schedule(t).context("--temperature")?;
        }
        cfg.seed = self.runf.seed;
        cfg.split.seed = self.runf.seed;
        cfg.validate().map_err(|e| anyhow::anyhow!("invalid flags: {e}"))?;
        Ok(cfg)
    }

    /// Runs the command; `given` are the flags given on the command line.
    pub fn run(self, given: &[String]) -> Result<()> {
        let device = self.run.select()?;
        let (cfg, out, data, resume_from) = match &self.runf.resume {
            Some(dir) => {
                check::resume_flags("search", given, RESUME_FLAGS)?;
                let (state, ck) = resume_checkpoint(dir, &device)?;
                let cfg: SearchConfig = serde_json::from_value(state.state["config"].clone())
                    .with_context(|| format!("{}: no search configuration in the checkpoint", ck.display()))?;
                let info = runs::info(dir, "search")?;
                if let Some(d) = &self.data.dataset {
                    if d != &info.dataset {
                        bail!("--resume {}: the run searched on dataset '{}', not '{}'; drop --dataset to continue it", dir.display(), info.dataset, clip(d));
                    }
                }
                let data = DataFlags { dataset: Some(info.dataset), data_dir: self.data.data_dir.clone().or(info.data_dir) };
                (cfg, dir.clone(), data, Some(ck))
            }
            None => {
                let cfg = self.config()?;
                let dataset = self.data.name();
                let tag = if dataset == "cifar10" { String::new() } else { format!("-{dataset}") };
                let name = format!("search-{}{}{tag}-seed{}", cfg.preset, if self.quick { "-quick" } else { "" }, cfg.seed);
                let out = runs::fresh(project_root().join("runs").join(name), self.runf.out.as_deref(), "search")?;
                (cfg, out, self.data.clone(), None)
            }
        };
        let dataset = open(&data)?;
        let mut cfg = cfg;
        if self.runf.resume.is_none() {
            if self.n_train.is_none() && self.n_val.is_none() {
                for note in cfg.split.fit_to(dataset.train.len(), dataset.test.len()) {
                    eprintln!("{}: {note}", data.name());
                }
                if cfg.split.n_train < cfg.batch_size && self.batch_size.is_none() {
                    eprintln!("{}: batch size {} is more than the {} training images: using {}", data.name(), cfg.batch_size, cfg.split.n_train, cfg.split.n_train);
                    cfg.batch_size = cfg.split.n_train;
                }
                cfg.validate().map_err(|e| anyhow::anyhow!("invalid flags: {e}"))?;
            }
            check::memory(cfg.model, &dataset.meta, cfg.batch_size, dada_train::memory::RunKind::Search, self.runf.max_memory.as_deref())?;
            runs::start(&out, &runs::RunInfo { command: "search".into(), dataset: data.name().to_string(), data_dir: data.data_dir.clone() })?;
        }
        let start = Instant::now();
        let mut search = Search::new(cfg.clone(), &dataset, &device)?;
        let ck = out.join("checkpoint.safetensors");
        if let Some(from) = &resume_from {
            search.load_checkpoint(from)?;
            eprintln!("resumed {} at step {} of {}", out.display(), search.step_index(), cfg.total_steps());
        }
        eprintln!(
            "searching: preset {}, space {:?}{}, estimator {:?}, hypergradient {:?}, op gradient {:?}, model {}, {} / {} / {} images, {} epoch(s) of {} steps, seed {}",
            cfg.preset, cfg.space, if cfg.space == SpaceKind::Paper { format!(" (draw {:?})", cfg.draw) } else { String::new() },
            cfg.estimator, cfg.hypergrad, cfg.op_grad, cfg.model, search.splits.train.len(),
            search.splits.val.len(), search.splits.test.len(), cfg.epochs, cfg.steps_per_epoch(), cfg.seed
        );
        let stop = interrupt_flag();
        let mut progress = StepProgress::new(cfg.total_steps(), search.step_index());
        let (mut sum_loss, mut sum_acc, mut n) = (0f64, 0f64, 0f64);
        // history.csv follows the run at the checkpoint cadence, so a long search can be
        // watched (the rows before a resume come from the checkpoint)
        let (history_path, every) = (out.join("history.csv"), cfg.checkpoint_every.max(1));
        let mut rows = search.history.clone();
        let done = search.run(&ck, &stop, &mut |row| {
            rows.push(row.clone());
            if rows.len().is_multiple_of(every) {
                if let Err(e) = write_history(&history_path, &rows) {
                    progress.warn(&format!("{e:#}"));
                }
            }
            sum_loss = 0.9 * sum_loss + row.train_loss as f64;
            sum_acc = 0.9 * sum_acc + row.train_acc as f64;
            n = 0.9 * n + 1.0;
            progress.step(format!(
                "loss {:.3} acc {:.1}% val {:.3} T {:.2}",
                sum_loss / n,
                100.0 * sum_acc / n,
                row.val_loss,
                row.temperature
            ));
        });
        progress.finish();
        let done = done.with_context(|| format!("search stopped; the last checkpoint is in {}", ck.display()))?;
        write_history(&out.join("history.csv"), &search.history)?;
        if !done {
            eprintln!("stopped at step {}; continue with `cargo xtask search --resume {}`", search.step_index(), out.display());
            return Ok(());
        }
        let wall = start.elapsed().as_secs_f64();
        let test = search.evaluate_test()?;
        let policy = search.export();
        let mut json = Vec::new();
        policy.write_json(&mut json)?;
        dada_train::data::cifar::write_atomic(&out.join("policy.json"), &json)?;
        let mut json = Vec::new();
        policy.write_fast_autoaugment(&mut json)?;
        dada_train::data::cifar::write_atomic(&out.join("policy-fast-autoaugment.json"), &json)?;
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

/// The flags `--resume` accepts beside it.
pub const RESUME_FLAGS: &[&str] = &["resume", "data-dir", "dataset", "max-memory", "device"];

/// The checkpoint of run folder `dir`, or the previous one where it is damaged (said in one
/// line); returns it and the file it came from.
pub fn resume_checkpoint(dir: &Path, device: &Device) -> Result<(dada_train::checkpoint::Checkpoint, std::path::PathBuf)> {
    let ck = dir.join("checkpoint.safetensors");
    let (state, from, skipped) = dada_train::checkpoint::Checkpoint::load_or_previous(&ck, device)
        .with_context(|| format!("resuming from {}", dir.display()))?;
    if let Some(problem) = skipped {
        eprintln!("{problem}\nresuming from the previous checkpoint {} instead", from.display());
    }
    Ok((state, from))
}

fn parse_schedule(s: &str) -> Result<TemperatureSchedule> {
    // "0.5", "cosine:1.0:0.1", "linear:1:0.1", "exp:1:0.1"
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str| -> Result<f64> {
        match p.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => Ok(v),
            _ => bail!("temperature schedule '{}': '{}' is not a number in (0, 100]", clip(s), clip(p)),
        }
    };
    Ok(match parts.as_slice() {
        [v] => TemperatureSchedule::Constant(num(v)?),
        ["constant", v] => TemperatureSchedule::Constant(num(v)?),
        ["cosine", a, b] => TemperatureSchedule::Cosine { start: num(a)?, end: num(b)? },
        ["linear", a, b] => TemperatureSchedule::Linear { start: num(a)?, end: num(b)? },
        ["exp" | "exponential", a, b] => TemperatureSchedule::Exponential { start: num(a)?, end: num(b)? },
        _ => bail!("temperature schedule '{}': expected V, constant:V, cosine:A:B, linear:A:B or exp:A:B", clip(s)),
    })
}

fn write_history(path: &Path, rows: &[dada_train::HistoryRow]) -> Result<()> {
    let mut text = String::from(dada_train::HistoryRow::CSV_HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(&r.csv());
        text.push('\n');
    }
    dada_train::data::cifar::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// `--model`: wrn-40-2, wrn-16-2, wrn-28-10, resnet18 or tiny-cnn.
pub fn parse_model(m: &str) -> Result<dada_train::models::ModelKind> {
    m.replace('-', "_").parse().map_err(|_| anyhow::anyhow!("--model '{}': expected wrn-40-2, wrn-16-2, wrn-28-10, resnet18 or tiny-cnn", clip(m)))
}
