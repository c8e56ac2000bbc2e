//! Rough per-phase timing of a WRN-40-2 training step for profiling (figures of record come
//! from `cargo bench -p dada-benches --bench models`): `cargo run --release -p dada-models
//! --example wrn_step -- [batch] [steps] [fast|fast-avx2|stock|gemm|winograd2|winograd4]`: `fast` (default) is
//! the fast kernels with the automatic choice of convolution algorithm, `fast-avx2` the same without their
//! AVX-512 copies (`set_avx512(false)`), `gemm`, `winograd2` and `winograd4` force one algorithm.
use std::time::Instant;

use candle::{Device, Tensor};
use dada_models::{build_model_with_kernels, set_conv_algorithm, ConvAlgorithm, Kernels, ModelKind, ModelParams, SgdConfig, SgdMomentum};

fn main() -> candle::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let mode = args.get(3).map(String::as_str).unwrap_or("fast");
    let kernels = if mode == "stock" { Kernels::Stock } else { Kernels::Fast };
    match mode {
        "gemm" => set_conv_algorithm(ConvAlgorithm::Gemm),
        "winograd2" => set_conv_algorithm(ConvAlgorithm::WinogradF2),
        "winograd4" => set_conv_algorithm(ConvAlgorithm::WinogradF4),
        "fast-avx2" => dada_models::set_avx512(false),
        "fast" | "stock" => {}
        other => candle::bail!("unknown mode {other:?}: expected fast, fast-avx2, stock, gemm, winograd2 or winograd4"),
    }
    let dev = Device::Cpu;
    let params = ModelParams::new(0, &dev);
    let model = build_model_with_kernels(ModelKind::Wrn40_2, 10, kernels, &params)?;
    let mut opt = SgdMomentum::new(params.trainable_vars(), SgdConfig::wrn_cifar())?;
    let images = Tensor::randn(0f32, 1.0, (batch, 3, 32, 32), &dev)?;
    let labels = Tensor::from_vec((0..batch as u32).map(|i| i % 10).collect::<Vec<_>>(), batch, &dev)?;
    for step in 0..steps {
        let t0 = Instant::now();
        let logits = model.forward_t(&images, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        drop(grads);
        let t3 = Instant::now();
        let _ = model.forward_t(&images, false)?;
        let t4 = Instant::now();
        let total = (t3 - t0).as_secs_f64();
        println!(
            "step {step}: fwd {:.3}s bwd {:.3}s sgd {:.3}s = {:.1} img/s train; eval {:.3}s = {:.1} img/s",
            (t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64(), batch as f64 / total,
            (t4 - t3).as_secs_f64(), batch as f64 / (t4 - t3).as_secs_f64()
        );
    }
    Ok(())
}
