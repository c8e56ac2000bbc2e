//! Flag checks, one place per command: every number finite and in its range, every count
//! positive where zero means nothing, before any data is read or work starts. Each error names
//! the flag, the value and the accepted range.
use anyhow::{bail, Result};
use dada_train::error::clip;

/// A count in `min..=max`.
pub fn count(flag: &str, value: Option<usize>, min: usize, max: usize) -> Result<()> {
    if let Some(v) = value {
        if v < min || v > max {
            bail!("--{flag} {v}: expected a whole number in {min}..={max}");
        }
    }
    Ok(())
}

/// A finite number in `[lo, hi]` (or `(lo, hi]` with `open_low`).
pub fn number(flag: &str, value: Option<f64>, lo: f64, hi: f64, open_low: bool) -> Result<()> {
    if let Some(v) = value {
        let low_ok = if open_low { v > lo } else { v >= lo };
        if !(v.is_finite() && low_ok && v <= hi) {
            let range = if open_low { format!("({lo}, {hi}]") } else { format!("[{lo}, {hi}]") };
            bail!("--{flag} {v}: expected a finite number in {range}");
        }
    }
    Ok(())
}


/// Refuses the flags of `given` that a resumed run cannot change (all but `allowed`).
pub fn resume_flags(command: &str, given: &[String], allowed: &[&str]) -> Result<()> {
    let refused: Vec<String> = given.iter().filter(|f| !allowed.contains(&f.as_str())).map(|f| format!("--{f}")).collect();
    if !refused.is_empty() {
        bail!(
            "--resume continues a run with the settings it was started with, so {} cannot be given with it (only {} may); nothing was changed. To change them, start a new run: `cargo xtask {command} ...`",
            refused.join(", "),
            allowed.iter().map(|a| format!("--{a}")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// A memory size: `8G`, `512M`, `1.5GiB`, or bytes.
pub fn memory_size(flag: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => bail!("--{flag} '{}': expected a size such as 8G, 512M or 1.5GiB", clip(text)),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e18 => Ok((v * scale) as u64),
        _ => bail!("--{flag} '{}': expected a positive size such as 8G, 512M or 1.5GiB", clip(text)),
    }
}

/// Refuses a run whose estimated peak memory exceeds the memory available (or `--max-memory`),
/// naming the estimate and the largest batch that fits.
pub fn memory(
    model: dada_train::models::ModelKind,
    meta: &dada_train::data::DatasetMeta,
    batch: usize,
    run: dada_train::memory::RunKind,
    max_memory: Option<&str>,
) -> Result<()> {
    use dada_train::memory::{available, estimate, gib, largest_batch, resident};
    let shape = (meta.channels, meta.height, meta.width);
    let est = |b: usize| estimate(model, meta.classes.len(), shape, b, run).bytes;
    let (limit, source) = match max_memory {
        Some(text) => {
            let cap = memory_size("max-memory", text)?;
            (cap.saturating_sub(resident().unwrap_or(0)), format!("--max-memory {text} less the {} already in use", gib(resident().unwrap_or(0))))
        }
        None => match available() {
            Some((bytes, what)) => (bytes, what),
            None => return Ok(()),
        },
    };
    let need = est(batch);
    if need > limit {
        let fits = largest_batch(limit, batch, est);
        let advice = if fits == 0 {
            "no batch fits: choose a smaller model or free memory".to_string()
        } else {
            format!("the largest batch that fits is --batch-size {fits}")
        };
        bail!(
            "this run needs about {} at its peak (model {model}, batch {batch}, images {}), but {} is available ({source}); {advice}. Nothing was started.",
            gib(need),
            meta.shape_text(),
            gib(limit)
        );
    }
    Ok(())
}
