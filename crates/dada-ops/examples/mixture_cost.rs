//! One forward+backward of the 15-op weighted mixture, for instruction-count profiling
//! (`valgrind --tool=callgrind`, whose counts repeat exactly on this noisy machine; the
//! figures of record come from `cargo bench -p dada-benches --bench ops`):
//! `RAYON_NUM_THREADS=1 valgrind --tool=callgrind target/release/examples/mixture_cost [paper|tutorial|OP] [batch]`
//! (an op name, e.g. `shear_x`, runs that op alone).
use candle::{DType, Device, Tensor, Var};
use dada_ops::testing::test_images;
use dada_ops::{weighted_mixture, OpSet};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> candle::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let ops = match args.get(1).map(String::as_str) {
        Some("tutorial") => OpSet::tutorial(),
        Some("paper") | None => OpSet::paper(),
        Some(name) => OpSet::new(vec![
            OpSet::by_name(name).unwrap_or_else(|| panic!("no op {name}"))
        ]),
    };
    let b: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dev = Device::Cpu;
    let images = Var::from_tensor(&test_images((b, 3, 32, 32), 1, DType::F32, &dev)?)?;
    let mags: Vec<f32> = (0..b)
        .map(|i| 0.05 + 0.9 * i as f32 / (b.max(2) - 1) as f32)
        .collect();
    let magnitudes = Var::from_tensor(&Tensor::from_vec(mags, b, &dev)?)?;
    let weights =
        Var::from_tensor(&(Tensor::ones((b, ops.len()), DType::F32, &dev)? / ops.len() as f64)?)?;
    let params = ops.sample_all(b, &mut StdRng::seed_from_u64(4), &dev)?;
    let out = weighted_mixture(
        &ops,
        images.as_tensor(),
        magnitudes.as_tensor(),
        weights.as_tensor(),
        &params,
    )?;
    let grads = out.sum_all()?.backward()?;
    let gm = grads
        .get(magnitudes.as_tensor())
        .expect("magnitude gradient");
    println!(
        "magnitude gradient sum {}",
        gm.sum_all()?.to_scalar::<f32>()?
    );
    Ok(())
}
