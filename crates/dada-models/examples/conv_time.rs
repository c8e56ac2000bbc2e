//! Times one 3x3 stride-1 convolution (forward, input gradient, weight gradient) at each
//! WRN-40-2 layer shape with each CPU algorithm (best of `reps`): `cargo run --release -p
//! dada-models --example conv_time -- [batch] [reps]`.
use std::time::Instant;

use candle::{Device, Tensor};
use dada_models::{conv2d_fast, conv2d_fast_backward, set_conv_algorithm, ConvAlgorithm};

/// CPU time of all the process's threads in seconds (Linux `schedstat`), which, unlike wall
/// time, does not count time other processes hold the cores; `None` elsewhere.
fn cpu_secs() -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1e-9)
}

/// The best of `reps` runs of `f` in milliseconds: CPU time where available, else wall time.
fn best_of(reps: usize, mut f: impl FnMut() -> candle::Result<()>) -> candle::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let (t0, c0) = (Instant::now(), cpu_secs());
        f()?;
        let secs = match (c0, cpu_secs()) {
            (Some(a), Some(b)) => b - a,
            _ => t0.elapsed().as_secs_f64(),
        };
        best = best.min(secs);
    }
    Ok(best * 1e3)
}

fn main() -> candle::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    // optional filters: an algorithm (gemm, winogradf2, winogradf4) and a pass (forward, backward), so that a
    // profiler or `perf stat` sees one kernel alone
    let only_algorithm = args.get(3).cloned();
    let only_pass = args.get(4).cloned();
    let dev = Device::Cpu;
    println!("batch {batch}, best of {reps}, CPU ms (all threads)");
    for &(c, hw) in &[(32usize, 32usize), (64, 16), (128, 8)] {
        let x = Tensor::randn(0f32, 1.0, (batch, c, hw, hw), &dev)?;
        let w = (Tensor::randn(0f32, 1.0, (c, c, 3, 3), &dev)? * 0.05)?;
        let dy = Tensor::randn(0f32, 1.0, (batch, c, hw, hw), &dev)?;
        let mut line = format!("c {c:3} {hw:2}x{hw:<2}");
        for algorithm in [ConvAlgorithm::Gemm, ConvAlgorithm::WinogradF2, ConvAlgorithm::WinogradF4] {
            if only_algorithm.as_ref().is_some_and(|a| !format!("{algorithm:?}").eq_ignore_ascii_case(a)) {
                continue;
            }
            set_conv_algorithm(algorithm);
            let run = |pass: &str| only_pass.as_ref().is_none_or(|p| p == pass);
            let fwd = if run("forward") { best_of(reps, || conv2d_fast(&x, &w, 1, 1).map(drop))? } else { f64::NAN };
            let bwd = if run("backward") { best_of(reps, || conv2d_fast_backward(&x, &w, &dy, 1, 1).map(drop))? } else { f64::NAN };
            line += &format!("  {algorithm:?}: forward {fwd:6.1} backward {bwd:6.1}");
        }
        println!("{line}");
    }
    Ok(())
}
