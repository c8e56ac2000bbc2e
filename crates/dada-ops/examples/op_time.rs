//! Wall time of one op's fused forward plus `kernel_backward` at B=128, 3x32x32, as the
//! **minimum** over many short repetitions: on a shared, noisy host the minimum moves far less
//! than criterion's mean, so two builds can be compared by alternating runs of this example
//! (the figures of record still come from `cargo bench -p dada-benches --bench ops`):
//! `RAYON_NUM_THREADS=1 target/release/examples/op_time rotate [reps]`. With `paper` or
//! `tutorial` instead of an op name, it times the 15-op weighted mixture's forward and its
//! backward through candle's autograd (gradients w.r.t. images, magnitudes and weights).
use std::time::Instant;

use candle::{DType, Device, Tensor, Var};
use dada_ops::testing::test_images;
use dada_ops::{apply_kernel, kernel_backward, weighted_mixture, OpSet, BUILTIN_NAMES};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> candle::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = args.get(1).map_or("rotate", String::as_str);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    if let Some(ops) = match arg {
        "paper" => Some(OpSet::paper()),
        "tutorial" => Some(OpSet::tutorial()),
        _ => None,
    } {
        return time_mixture(arg, &ops, reps);
    }
    let name: &'static str = BUILTIN_NAMES
        .iter()
        .copied()
        .find(|n| *n == arg)
        .unwrap_or_else(|| panic!("no op {arg}"));
    let (b, dev) = (128, Device::Cpu);
    let op = OpSet::by_name(name).expect("a built-in op");
    let x = test_images((b, 3, 32, 32), 1, DType::F32, &dev)?;
    let mags: Vec<f32> = (0..b)
        .map(|i| 0.05 + 0.9 * i as f32 / (b - 1) as f32)
        .collect();
    let m = Tensor::from_vec(mags, b, &dev)?;
    let g = test_images((b, 3, 32, 32), 2, DType::F32, &dev)?;
    let params = op.sample(b, &mut StdRng::seed_from_u64(3), &dev)?;
    let kernel = op
        .kernel(&params, (b, 3, 32, 32))?
        .expect("built-in ops have kernels");
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let out = apply_kernel(name, kernel.clone(), &x, &m)?;
        let grads = kernel_backward(kernel.as_ref(), &x, &m, &g)?;
        std::hint::black_box((out, grads));
        times.push(t.elapsed().as_secs_f64());
    }
    report(&format!("{name}: fwd + kernel bwd"), times, b);
    Ok(())
}

fn time_mixture(name: &str, ops: &OpSet, reps: usize) -> candle::Result<()> {
    let (b, dev) = (128, Device::Cpu);
    let x = Var::from_tensor(&test_images((b, 3, 32, 32), 1, DType::F32, &dev)?)?;
    let mags: Vec<f32> = (0..b)
        .map(|i| 0.05 + 0.9 * i as f32 / (b - 1) as f32)
        .collect();
    let m = Var::from_tensor(&Tensor::from_vec(mags, b, &dev)?)?;
    let w =
        Var::from_tensor(&(Tensor::ones((b, ops.len()), DType::F32, &dev)? / ops.len() as f64)?)?;
    let params = ops.sample_all(b, &mut StdRng::seed_from_u64(4), &dev)?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let out = weighted_mixture(ops, x.as_tensor(), m.as_tensor(), w.as_tensor(), &params)?;
        std::hint::black_box(out.sum_all()?.backward()?);
        times.push(t.elapsed().as_secs_f64());
    }
    report(&format!("{name} mixture: fwd + bwd"), times, b);
    Ok(())
}

/// Prints the minimum and median time per image of `times` (one entry per batch of `b`).
fn report(what: &str, mut times: Vec<f64>, b: usize) {
    times.sort_by(f64::total_cmp);
    let per_image = |t: f64| t / b as f64 * 1e9;
    println!(
        "{what} per image: min {:.0} ns, median {:.0} ns ({} reps)",
        per_image(times[0]),
        per_image(times[times.len() / 2]),
        times.len()
    );
}
