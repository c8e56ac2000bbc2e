//! `cargo xtask verify-grads`: the datarax guide's gradient check, plus finite differences.
use anyhow::{bail, Result};
use dada_train::verify::{verify_grads, VerifyConfig};

use crate::datasets::open;
use crate::flags::VerifyGradsCmd;

impl VerifyGradsCmd {
    /// Runs the command; fails (non-zero exit) when a check fails.
    pub fn run(self) -> Result<()> {
        crate::check::count("batch-size", Some(self.batch_size), 1, 4096)?;
        crate::check::count("coords", Some(self.coords), 1, 100_000)?;
        let model = crate::search::parse_model(&self.model)?;
        let kernels = match self.kernels.as_str() {
            "fast" => dada_train::models::Kernels::Fast,
            "stock" => dada_train::models::Kernels::Stock,
            other => bail!("--kernels '{}': expected fast or stock", dada_train::error::clip(other)),
        };
        if !(self.eps > 0.0 && self.eps < 0.1) {
            bail!("--eps must be in (0, 0.1), got {}", self.eps);
        }
        // (NaN fails this test too)
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            bail!("--tolerance must be positive, got {}", self.tolerance);
        }
        let needed = dada_train::verify::MIN_TRUSTED_PER_GROUP;
        let ds = open(&self.data)?;
        if self.coords < needed {
            bail!("--coords must be at least {needed}: a group passes with {needed} trusted checks, got {}", self.coords);
        }
        let cfg = VerifyConfig {
            model,
            kernels,
            batch_size: self.batch_size,
            coords_per_group: self.coords,
            eps: self.eps,
            tolerance: self.tolerance,
            seed: self.seed,
            ..VerifyConfig::default()
        };
        let report = verify_grads(&ds.test, &cfg, &self.run.select()?)?;
        println!("Loss: {:.4}", report.loss);
        let flowing = report.groups.iter().filter(|g| g.abs_grad > 0.0).count();
        println!("Gradient flow verified: {flowing} parameter groups receive gradients");
        for (k, g) in report.groups.iter().enumerate() {
            let shape = g.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
            println!("Param group {k} ({}): shape=({shape}), |grad|={:.6}", g.name, g.abs_grad);
        }
        println!();
        println!(
            "finite differences (central; step {} for magnitudes, 5x for logits, halved up to {} times \
             until the interval has no kink), tolerance {:.0e} relative:",
            cfg.eps, cfg.refinements, report.tolerance
        );
        println!("{:<12} {:>6} {:>14} {:>14} {:>9} {:>10}", "group", "index", "analytic", "numeric", "step", "rel.error");
        for c in &report.checks {
            let mark = match (c.trusted, c.rel_error <= report.tolerance) {
                (true, true) => "",
                (true, false) => "  FAIL",
                (false, _) => "  (kinks at every step tried: not checked)",
            };
            println!("{:<12} {:>6} {:>14.6e} {:>14.6e} {:>9.1e} {:>10.2e}{mark}", c.group, c.index, c.analytic, c.numeric, c.step, c.rel_error);
        }
        let worst = report.checks.iter().filter(|c| c.trusted).map(|c| c.rel_error).fold(0.0, f64::max);
        let per_group = report
            .groups
            .iter()
            .map(|g| format!("{} {}", g.name, report.trusted_in(&g.name)))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "largest relative error of the trusted checks: {worst:.2e}; trusted checks per group (no kink in \
             the interval; {} needed): {per_group}",
            dada_train::verify::MIN_TRUSTED_PER_GROUP
        );
        if !report.passed() {
            bail!("gradient verification FAILED");
        }
        println!("SUCCESS: Augmentation pipeline is fully differentiable!");
        Ok(())
    }
}
