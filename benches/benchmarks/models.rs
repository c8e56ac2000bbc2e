//! Criterion benchmarks for dada-models: WRN-40-2 at batch 128 on 3x32x32, training step
//! (forward, cross-entropy, backward, SGD update) and eval forward, fast kernels vs candle's
//! stock ops in the same run; plus single-convolution forward+backward at the WRN shapes.
//!
//! `cargo bench -p dada-benches --bench models` (about 4 minutes: a stock training step takes
//! over 10 s, and criterion takes at least 10 samples). Throughput is reported in images/s.
use std::time::Duration;

use candle::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dada_models::{build_model_with_kernels, conv2d_fast, conv2d_reference, Kernels, ModelKind, ModelParams, SgdConfig, SgdMomentum};

const BATCH: usize = 128;

fn batch() -> (Tensor, Tensor) {
    let dev = Device::Cpu;
    let images = Tensor::randn(0f32, 1.0, (BATCH, 3, 32, 32), &dev).unwrap();
    let labels = Tensor::from_vec((0..BATCH as u32).map(|i| i % 10).collect::<Vec<_>>(), BATCH, &dev).unwrap();
    (images, labels)
}

fn kernels_name(kernels: Kernels) -> &'static str {
    match kernels {
        Kernels::Fast => "fast",
        Kernels::Stock => "candle_stock",
    }
}

fn wrn_40_2(c: &mut Criterion) {
    let (images, labels) = batch();
    let mut group = c.benchmark_group("cpu_wrn_40_2_b128");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BATCH as u64));
    for kernels in [Kernels::Fast, Kernels::Stock] {
        let params = ModelParams::new(0, &Device::Cpu);
        let model = build_model_with_kernels(ModelKind::Wrn40_2, 10, kernels, &params).unwrap();
        let mut opt = SgdMomentum::new(params.trainable_vars(), SgdConfig::wrn_cifar()).unwrap();
        group.bench_function(BenchmarkId::new("train_step", kernels_name(kernels)), |b| {
            b.iter(|| {
                let logits = model.forward_t(&images, true).unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
                let grads = loss.backward().unwrap();
                opt.step(&grads).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("eval", kernels_name(kernels)), |b| {
            b.iter(|| model.forward_t(&images, false).unwrap())
        });
    }
    group.finish();
}

/// One convolution, forward + backward for input and weight, at batch 128.
fn conv_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu_conv_fwd_bwd_b128");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(BATCH as u64));
    // (c_in, h, c_out, k, stride, padding)
    let shapes = [(32, 32, 32, 3, 1, 1), (32, 32, 64, 3, 2, 1), (64, 16, 64, 3, 1, 1), (128, 8, 128, 3, 1, 1), (32, 32, 64, 1, 2, 0)];
    for (c_in, h, c_out, k, stride, padding) in shapes {
        let name = format!("{c_in}x{h}x{h}_to_{c_out}_k{k}_s{stride}");
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (BATCH, c_in, h, h), &Device::Cpu).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c_out, c_in, k, k), &Device::Cpu).unwrap()).unwrap();
        for (label, fast) in [("fast", true), ("candle_stock", false)] {
            group.bench_function(BenchmarkId::new(label, &name), |b| {
                b.iter(|| {
                    let y = if fast {
                        conv2d_fast(x.as_tensor(), w.as_tensor(), stride, padding).unwrap()
                    } else {
                        conv2d_reference(x.as_tensor(), w.as_tensor(), stride, padding).unwrap()
                    };
                    y.to_dtype(DType::F32).unwrap().sum_all().unwrap().backward().unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, wrn_40_2, conv_layers);
criterion_main!(benches);
