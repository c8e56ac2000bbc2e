//! `cargo xtask gpu-check`: one command that checks a device against the CPU (see
//! `dada_train::devcheck`) and runs a search and a training run end to end on it.
use anyhow::{bail, Result};
use dada_train::devcheck::{self, Check};
use dada_train::models::ModelKind;
use dada_train::train::{TrainConfig, TrainPolicy, Trainer};

use crate::flags::GpuCheckCmd;

fn print(checks: &[Check]) {
    for c in checks {
        let mark = if c.passed() { "ok  " } else { "FAIL" };
        println!("{mark} {:<52} error {:>10.3e}  tolerance {:.0e}", c.what, c.error, c.tolerance);
    }
}

impl GpuCheckCmd {
    /// Runs every check; exits non-zero if one fails.
    pub fn run(self) -> Result<()> {
        crate::check::count("batch-size", Some(self.batch_size), 1, 1024)?;
        let device = self.run.select()?;
        if device.is_cpu() {
            eprintln!("no CUDA device in use: the CPU kernels are compared with the plain-candle reference path on the CPU");
        }
        let start = std::time::Instant::now();
        let mut checks = devcheck::check_ops(&device, self.batch_size)?;
        let models: &[ModelKind] = if self.quick { &[ModelKind::TinyCnn] } else { &[ModelKind::TinyCnn, ModelKind::Wrn40_2] };
        checks.extend(devcheck::check_models(&device, models, self.batch_size)?);
        print(&checks);
        println!("op and model checks: {:.1} s", start.elapsed().as_secs_f64());

        // End to end: a search twice with one seed, then a short training run.
        let model = if self.quick { ModelKind::TinyCnn } else { ModelKind::Wrn40_2 };
        let ds = devcheck::synthetic_dataset(512, 128, 0);
        let mut cfg = devcheck::small_search(model);
        if self.quick {
            cfg.split.n_train = 64;
            cfg.batch_size = 32;
        }
        let dir = tempfile::tempdir()?;
        let a = devcheck::run_search(&cfg, &ds, &device, dir.path())?;
        let b = devcheck::run_search(&cfg, &ds, &device, dir.path())?;
        let same = devcheck::policy_distance(&a.policy, &b.policy);
        println!(
            "search ({model}, {} unrolled RELAX steps of batch {}): {:.1} s, final validation loss {:.4}; the same seed twice: policies differ by at most {same:.2e}",
            a.steps, cfg.batch_size, a.secs, a.val_loss
        );
        let seed_check = Check { what: "search: the same seed twice (max |policy difference|)".into(), error: same, tolerance: devcheck::SAME_SEED_TOL };
        let tcfg = TrainConfig { model, n_train: Some(256), epochs: 1, batch_size: 64, warmup_epochs: 0, eval_every: 1, ..TrainConfig::wrn40x2_cifar10(TrainPolicy::Cutout) };
        let t0 = std::time::Instant::now();
        let mut trainer = Trainer::new(tcfg, &ds, &device)?;
        let never = std::sync::atomic::AtomicBool::new(false);
        trainer.run(&dir.path().join("train.safetensors"), &never, &mut |_, _, _| {})?;
        let eval = trainer.evaluate_test()?;
        println!("training ({model}, {} steps of batch 64): {:.1} s, test loss {:.4}", trainer.step_index(), t0.elapsed().as_secs_f64(), eval.loss);
        let train_check = Check { what: "training: finite test loss".into(), error: if eval.loss.is_finite() { 0.0 } else { f32::INFINITY }, tolerance: 0.0 };
        print(&[seed_check.clone(), train_check.clone()]);
        checks.push(seed_check);
        checks.push(train_check);
        if let Some(path) = &self.report {
            let rows: Vec<serde_json::Value> = checks
                .iter()
                .map(|c| serde_json::json!({"what": c.what, "error": c.error, "tolerance": c.tolerance, "passed": c.passed()}))
                .collect();
            let json = serde_json::json!({"device": dada_train::device::describe(&device), "checks": rows, "search_secs": a.secs, "search_steps": a.steps});
            std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        }
        let failed = checks.iter().filter(|c| !c.passed()).count();
        if failed > 0 {
            bail!("{failed} of {} checks failed on {}", checks.len(), dada_train::device::describe(&device));
        }
        println!("all {} checks passed on {} in {:.1} s", checks.len(), dada_train::device::describe(&device), start.elapsed().as_secs_f64());
        Ok(())
    }
}
