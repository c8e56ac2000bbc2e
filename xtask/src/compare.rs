//! `cargo xtask compare`: ours (measured in this process) against the PyTorch anchors of
//! `benches/anchors/` (run as subprocesses), alternating in one run, with the ratios.
//!
//! Each round runs, for every measure, ours and theirs back to back (ours first in odd rounds,
//! theirs first in even ones, so a drift of the machine does not favour one side), each with
//! its warm-up and `reps` timed repeats; a round's figure is the median over its repeats. The
//! summary is the median over rounds of those medians, with the lowest and highest round, and
//! the ratio of the two medians. What is measured mirrors the criterion benches:
//! - `wrn-step`: WRN-40-2 training step at batch 128 (forward, cross-entropy, backward,
//!   SGD-Nesterov), as `benches/benchmarks/models.rs`; theirs `benches/anchors/wrn.py`.
//! - `wrn-eval`: WRN-40-2 eval forward at batch 512; theirs `wrn.py --measure eval`.
//! - `mixture`: the 15-op `weighted_mixture` of `OpSet::paper()` at batch 128, forward and the
//!   gradients w.r.t. images, magnitudes and weights of a linear readout, as the
//!   `cpu_mixture/fused_fwd_bwd/paper` row of `benches/benchmarks/ops.rs`; theirs
//!   `benches/anchors/mixture.py` (kornia).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use candle::{DType, Device, Tensor, Var};
use dada_train::models::{build_model, Classifier, ModelKind, ModelParams, SgdConfig, SgdMomentum};
use dada_train::ops::testing::test_images;
use dada_train::ops::{weighted_mixture, OpParams, OpSet};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::flags::CompareCmd;

/// The one command that sets up the PyTorch side.
pub const SETUP: &str = "pip install -r benches/anchors/requirements.txt";

/// What can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Measure {
    WrnStep,
    WrnEval,
    Mixture,
}

impl Measure {
    const ALL: [Measure; 3] = [Measure::WrnStep, Measure::WrnEval, Measure::Mixture];

    fn key(self) -> &'static str {
        match self {
            Measure::WrnStep => "wrn-step",
            Measure::WrnEval => "wrn-eval",
            Measure::Mixture => "mixture",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Measure::WrnStep => "WRN-40-2 training step (fwd, cross-entropy, bwd, SGD)",
            Measure::WrnEval => "WRN-40-2 eval forward",
            Measure::Mixture => "15-op mixture of OpSet::paper(), fwd + bwd",
        }
    }

    fn batch(self) -> usize {
        match self {
            Measure::WrnStep | Measure::Mixture => 128,
            Measure::WrnEval => 512,
        }
    }

    /// Untimed repeats before the timed ones, each side, each round.
    fn warmup(self) -> usize {
        match self {
            Measure::WrnStep => 2,
            Measure::WrnEval => 1,
            Measure::Mixture => 3,
        }
    }

    /// Timed repeats unless `--reps` is given.
    fn default_reps(self) -> usize {
        match self {
            Measure::WrnStep => 5,
            Measure::WrnEval => 3,
            Measure::Mixture => 20,
        }
    }

    /// Theirs: the anchor's name, its script and the `measure` of the JSON line it prints.
    fn anchor(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Measure::WrnStep => ("PyTorch eager", "wrn.py", "wrn40_2_train_step"),
            Measure::WrnEval => ("PyTorch eager", "wrn.py", "wrn40_2_eval"),
            Measure::Mixture => ("kornia", "mixture.py", "mixture_paper_fwd_bwd"),
        }
    }

    /// The anchor script's arguments besides `--device`, `--threads`, `--reps`, `--warmup`.
    fn anchor_args(self) -> Vec<String> {
        let b = self.batch().to_string();
        match self {
            Measure::WrnStep => vec!["--batch".into(), b, "--measure".into(), "step".into()],
            Measure::WrnEval => vec!["--eval-batch".into(), b, "--measure".into(), "eval".into()],
            Measure::Mixture => vec!["--batch".into(), b],
        }
    }
}

/// Parses `--measure`: a comma-separated list of known measures, each once, in a fixed order.
fn parse_measures(text: &str) -> Result<Vec<Measure>> {
    let expected = Measure::ALL.map(Measure::key).join(", ");
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        match Measure::ALL.into_iter().find(|m| m.key() == part) {
            Some(m) => out.push(m),
            None if part.is_empty() => bail!("--measure '{}': empty entry; expected a comma-separated list of {expected}", dada_train::error::clip(text)),
            None => bail!("--measure '{}': unknown measure '{}'; expected a comma-separated list of {expected}", dada_train::error::clip(text), dada_train::error::clip(part)),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One side's figures in one round: images/s over the timed repeats.
#[derive(Debug, Clone, Copy)]
struct Figures {
    min: f64,
    median: f64,
    max: f64,
}

impl Figures {
    fn from_rates(mut rates: Vec<f64>) -> Self {
        rates.sort_by(f64::total_cmp);
        Figures { min: rates[0], median: median(&rates), max: rates[rates.len() - 1] }
    }

    fn json(&self) -> Value {
        json!({"min": self.min, "median": self.median, "max": self.max})
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Median over rounds of the per-round medians, and the lowest and highest round.
fn summary(rounds: &[Figures]) -> Figures {
    Figures::from_rates(rounds.iter().map(|f| f.median).collect())
}

/// The Python interpreter with the anchors' packages, and their versions.
struct Python {
    path: PathBuf,
    versions: BTreeMap<String, String>,
}

impl Python {
    /// Checks that `path` runs and imports torch (and kornia when `kornia`), with an error that
    /// names the setup command otherwise.
    fn probe(path: &Path, kornia: bool) -> Result<Self> {
        let mut code = String::from("import json, sys\nv = {'python': sys.version.split()[0]}\nimport torch\nv['torch'] = torch.__version__\n");
        if kornia {
            code.push_str("import kornia\nv['kornia'] = kornia.__version__\n");
        }
        code.push_str("print(json.dumps(v))\n");
        let needs = if kornia { "torch and kornia" } else { "torch" };
        let out = Command::new(path).args(["-c", &code]).output().map_err(|e| {
            anyhow!(
                "--python {}: cannot run it ({e}); the PyTorch side of compare needs Python 3 with {needs}: install Python 3, then `{SETUP}` (or point --python at an interpreter that has them)",
                path.display()
            )
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if let Some(module) = missing_module(&stderr) {
                bail!("{} has no module '{module}': the PyTorch side of compare needs {needs}; set it up with `{SETUP}` (or point --python at an interpreter that has them)", path.display());
            }
            bail!("{} failed to import {needs} ({}): set it up with `{SETUP}`; its last words: {}", path.display(), out.status, last_lines(&stderr, 5));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let versions: BTreeMap<String, String> = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| anyhow!("{} printed no versions (is it Python 3?): set it up with `{SETUP}`", path.display()))?;
        Ok(Python { path: path.to_path_buf(), versions })
    }

    fn version(&self, package: &str) -> &str {
        self.versions.get(package).map(String::as_str).unwrap_or("-")
    }

    /// Runs the anchor of `measure` once and returns its images/s figures.
    fn run(&self, measure: Measure, threads: usize, reps: usize) -> Result<Figures> {
        let (_, script, key) = measure.anchor();
        let script = crate::project_root().join("benches/anchors").join(script);
        let mut cmd = Command::new(&self.path);
        cmd.arg(&script)
            .args(["--device", "cpu", "--threads", &threads.to_string(), "--reps", &reps.to_string(), "--warmup", &measure.warmup().to_string()])
            .args(measure.anchor_args())
            .current_dir(crate::project_root())
            // torch's OpenMP pool takes its size from --threads; keep stray libraries in line.
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("MKL_NUM_THREADS", threads.to_string());
        let shown = format!("{} {}", self.path.display(), script.display());
        let out = cmd.output().with_context(|| format!("running {shown}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let hint = match missing_module(&stderr) {
                Some(module) => format!("no module '{module}': set it up with `{SETUP}`"),
                None => last_lines(&stderr, 8),
            };
            bail!("{shown} failed ({}): {hint}", out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let row = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["measure"] == key)
            .ok_or_else(|| anyhow!("{shown} printed no '{key}' line; its output: {}", last_lines(&stdout, 5)))?;
        let ips = &row["images_per_s"];
        let get = |k: &str| ips[k].as_f64().filter(|v| v.is_finite() && *v > 0.0);
        match (get("min"), get("median"), get("max")) {
            (Some(min), Some(median), Some(max)) => Ok(Figures { min, median, max }),
            _ => bail!("{shown}: no positive images_per_s in its '{key}' line: {row}"),
        }
    }
}

/// The module of a Python `ModuleNotFoundError` in `stderr`.
fn missing_module(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("No module named ")? + "No module named ".len()..];
    let name: String = rest.trim_start_matches(['\'', '"']).chars().take_while(|c| !matches!(c, '\'' | '"' | '\n')).collect();
    Some(name.split('.').next().unwrap_or(&name).to_string())
}

/// The last `n` non-empty lines of `text`, on one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() {
        "(nothing on stderr)".into()
    } else {
        dada_train::error::clip(&tail).to_string()
    }
}

/// Our side: the models and inputs, built once and reused by every round.
struct Ours {
    wrn: Option<Wrn>,
    mixture: Option<Mixture>,
}

struct Wrn {
    model: Box<dyn Classifier>,
    opt: SgdMomentum,
    images: Tensor,
    labels: Tensor,
    eval_images: Tensor,
}

struct Mixture {
    ops: OpSet,
    params: Vec<OpParams>,
    images: Var,
    magnitudes: Var,
    weights: Var,
    readout: Tensor,
}

/// Random labels `i % 10` and normal images, as `benches/benchmarks/models.rs`.
fn wrn_inputs(b: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let images = Tensor::randn(0f32, 1.0, (b, 3, 32, 32), dev)?;
    let labels = Tensor::from_vec((0..b as u32).map(|i| i % 10).collect::<Vec<_>>(), b, dev)?;
    Ok((images, labels))
}

impl Ours {
    fn new(measures: &[Measure]) -> Result<Self> {
        let dev = Device::Cpu;
        let wrn = if measures.iter().any(|m| matches!(m, Measure::WrnStep | Measure::WrnEval)) {
            let params = ModelParams::new(0, &dev);
            let model = build_model(ModelKind::Wrn40_2, 10, &params)?;
            let opt = SgdMomentum::new(params.trainable_vars(), SgdConfig::wrn_cifar())?;
            let (images, labels) = wrn_inputs(Measure::WrnStep.batch(), &dev)?;
            let (eval_images, _) = wrn_inputs(Measure::WrnEval.batch(), &dev)?;
            Some(Wrn { model, opt, images, labels, eval_images })
        } else {
            None
        };
        let mixture = if measures.contains(&Measure::Mixture) {
            // As `benches/benchmarks/ops.rs`: its inputs, seeds and readout.
            dada_train::models::retain_freed_memory();
            let b = Measure::Mixture.batch();
            let shape = (b, 3, 32, 32);
            let n = 3 * 32 * 32;
            let ops = OpSet::paper();
            let params = ops.sample_all(b, &mut StdRng::seed_from_u64(4), &dev)?;
            let logits = Tensor::randn(0f32, 1.0, (b, ops.len()), &dev)?;
            let e = logits.exp()?;
            let weights = Var::from_tensor(&e.broadcast_div(&e.sum_keepdim(1)?)?)?;
            Some(Mixture {
                params,
                images: Var::from_tensor(&test_images(shape, 1, DType::F32, &dev)?)?,
                magnitudes: Var::from_tensor(&Tensor::rand(0.05f32, 0.95, b, &dev)?)?,
                weights,
                readout: test_images((1, 1, n, 1), 5, DType::F32, &dev)?.reshape((n, 1))?.affine(2.0, -1.0)?,
                ops,
            })
        } else {
            None
        };
        Ok(Ours { wrn, mixture })
    }

    /// One repeat of `measure`.
    fn once(&mut self, measure: Measure) -> Result<()> {
        match measure {
            Measure::WrnStep => {
                let w = self.wrn.as_mut().expect("built for wrn-step");
                let logits = w.model.forward_t(&w.images, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &w.labels)?;
                let grads = loss.backward()?;
                w.opt.step(&grads)?;
            }
            Measure::WrnEval => {
                let w = self.wrn.as_ref().expect("built for wrn-eval");
                w.model.forward_t(&w.eval_images, false)?.argmax(1)?;
            }
            Measure::Mixture => {
                let m = self.mixture.as_ref().expect("built for mixture");
                let b = Measure::Mixture.batch();
                weighted_mixture(&m.ops, m.images.as_tensor(), m.magnitudes.as_tensor(), m.weights.as_tensor(), &m.params)?
                    .reshape((b, m.readout.dim(0)?))?
                    .matmul(&m.readout)?
                    .sum_all()?
                    .backward()?;
            }
        }
        Ok(())
    }

    /// Warm-up, then `reps` timed repeats of `measure`.
    fn run(&mut self, measure: Measure, reps: usize) -> Result<Figures> {
        for _ in 0..measure.warmup() {
            self.once(measure)?;
        }
        let mut rates = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            self.once(measure)?;
            rates.push(measure.batch() as f64 / t.elapsed().as_secs_f64().max(1e-9));
        }
        Ok(Figures::from_rates(rates))
    }
}

/// The CPU as /proc/cpuinfo names it: (model name, family, model).
fn cpu_info() -> (String, Option<u32>, Option<u32>) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let name = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    (name, field("cpu family").and_then(|v| v.parse().ok()), field("model").and_then(|v| v.parse().ok()))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Images/s with three significant figures (at least), as `1.23k` past ten thousand.
fn rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl CompareCmd {
    /// Validates the flags, checks the Python side, then runs the rounds and prints the table.
    pub fn run(self) -> Result<()> {
        crate::check::count("rounds", Some(self.rounds), 1, 1000)?;
        crate::check::count("threads", Some(self.threads), 1, 1024)?;
        crate::check::count("reps", self.reps, 1, 100_000)?;
        let measures = parse_measures(&self.measure)?;
        if let Some(path) = &self.json {
            if path.exists() {
                bail!("--json {}: the file exists; nothing was run (choose another path or remove it)", path.display());
            }
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!("--json {}: no folder {}; nothing was run", path.display(), parent.display());
            }
        }
        let python = Python::probe(&self.python, measures.contains(&Measure::Mixture))?;

        // Ours on `threads` threads: rayon's pool, and candle's gemm (which reads the variable).
        std::env::set_var("RAYON_NUM_THREADS", self.threads.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build_global()
            .context("setting up the thread pool of ours")?;

        let (cpu, family, model) = cpu_info();
        let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let date = utc_now();
        let machine = format!(
            "{cpu} (family {}, model {}), {logical} logical CPUs; threads: {} each side",
            family.map_or("-".into(), |v| v.to_string()),
            model.map_or("-".into(), |v| v.to_string()),
            self.threads
        );
        let versions = format!(
            "python {}, torch {}, kornia {}",
            python.version("python"),
            python.version("torch"),
            python.version("kornia")
        );
        eprintln!("compare: {} round(s) of {}; ours in this process, theirs via {}", self.rounds, measures.iter().map(|m| m.key()).collect::<Vec<_>>().join(", "), python.path.display());

        let mut ours = Ours::new(&measures)?;
        let mut figures: BTreeMap<Measure, (Vec<Figures>, Vec<Figures>)> = BTreeMap::new();
        let bar = crate::progress::step_bar(self.rounds * measures.len() * 2, 0);
        bar.enable_steady_tick(Duration::from_millis(250));
        for round in 0..self.rounds {
            for &measure in &measures {
                let reps = self.reps.unwrap_or(measure.default_reps());
                let ours_first = round % 2 == 0;
                for side_is_ours in [ours_first, !ours_first] {
                    let side = if side_is_ours { "ours" } else { measure.anchor().0 };
                    bar.set_message(format!("round {}/{}: {} {side}", round + 1, self.rounds, measure.key()));
                    let f = if side_is_ours {
                        ours.run(measure, reps).with_context(|| format!("ours, {}", measure.key()))?
                    } else {
                        python.run(measure, self.threads, reps)?
                    };
                    bar.suspend(|| {
                        eprintln!("round {}/{} {:<9} {side:<14} {:>8} images/s (median of {reps}; {} - {})", round + 1, self.rounds, measure.key(), rate(f.median), rate(f.min), rate(f.max))
                    });
                    let entry = figures.entry(measure).or_default();
                    if side_is_ours { entry.0.push(f) } else { entry.1.push(f) }
                    bar.inc(1);
                }
            }
        }
        bar.finish_and_clear();

        println!("machine: {machine}");
        println!("date: {date}; {versions}");
        println!("images/s: median over {} round(s) of each round's median [lowest - highest round]", self.rounds);
        println!("{:<10} {:>6} {:>22} {:>22}  {:>11}  theirs is", "measure", "batch", "ours", "theirs", "ours/theirs");
        let mut rows = Vec::new();
        for (&measure, (ours_rounds, theirs_rounds)) in &figures {
            let (o, t) = (summary(ours_rounds), summary(theirs_rounds));
            let ratio = o.median / t.median;
            let span = |f: &Figures| format!("{} [{} - {}]", rate(f.median), rate(f.min), rate(f.max));
            println!("{:<10} {:>6} {:>22} {:>22}  {:>10.2}x  {}", measure.key(), measure.batch(), span(&o), span(&t), ratio, measure.anchor().0);
            let per_round = |v: &[Figures]| v.iter().map(Figures::json).collect::<Vec<_>>();
            rows.push(json!({
                "measure": measure.key(),
                "what": measure.what(),
                "batch": measure.batch(),
                "reps": self.reps.unwrap_or(measure.default_reps()),
                "warmup": measure.warmup(),
                "ours": {"images_per_s": o.json(), "rounds": per_round(ours_rounds)},
                "theirs": {"anchor": measure.anchor().0, "script": format!("benches/anchors/{}", measure.anchor().1), "images_per_s": t.json(), "rounds": per_round(theirs_rounds)},
                "ratio_ours_over_theirs": ratio,
            }));
        }
        if let Some(path) = &self.json {
            let report = json!({
                "date": date,
                "machine": {"cpu": cpu, "family": family, "model": model, "logical_cpus": logical},
                "threads": self.threads,
                "rounds": self.rounds,
                "versions": python.versions,
                "summary": "images/s: median over rounds of each round's median, min and max over the rounds' medians",
                "measures": rows,
            });
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("--json {}: cannot create it (it must not exist yet)", path.display()))?;
            std::io::Write::write_all(&mut file, serde_json::to_string_pretty(&report)?.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_parse_in_order_once_and_reject_unknown_names() {
        assert_eq!(parse_measures("mixture,wrn-step,mixture").unwrap(), vec![Measure::WrnStep, Measure::Mixture]);
        assert_eq!(parse_measures(" wrn-eval ").unwrap(), vec![Measure::WrnEval]);
        let e = parse_measures("wrn-step,resnet").unwrap_err().to_string();
        assert!(e.contains("unknown measure 'resnet'") && e.contains("wrn-step, wrn-eval, mixture"), "{e}");
        assert!(parse_measures("").unwrap_err().to_string().contains("empty entry"));
    }

    #[test]
    fn dates_and_medians() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
        let s = summary(&[Figures { min: 0.0, median: 3.0, max: 9.0 }, Figures { min: 0.0, median: 1.0, max: 9.0 }]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
    }

    #[test]
    fn a_missing_module_is_named() {
        let stderr = "Traceback (most recent call last):\n  File \"<string>\", line 4, in <module>\nModuleNotFoundError: No module named 'kornia'\n";
        assert_eq!(missing_module(stderr).as_deref(), Some("kornia"));
        assert_eq!(missing_module("No module named 'torch.nn'").as_deref(), Some("torch"));
        assert_eq!(missing_module("Segmentation fault"), None);
    }
}
