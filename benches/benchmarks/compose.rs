//! Criterion benchmarks for dada-compose: `WeightedParallel` over the 15 paper ops with dynamic
//! weights, fused (`dada_ops::weighted_mixture`) vs the generic sum of 15 outputs, forward +
//! backward, B=128 3x32x32 f32 on the CPU, in one run.
//!
//! `cargo bench -p dada-benches --bench compose`
use std::time::Duration;

use candle::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use dada_compose::{aug_operators, Batch, Operator, WeightedParallel, WeightedParallelConfig};
use dada_ops::OpSet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const B: usize = 128;

fn uniform(rng: &mut StdRng, dims: &[usize], low: f32, high: f32) -> Tensor {
    let n = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(low..high)).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

fn weighted_parallel_15_ops(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let images = Var::from_tensor(&uniform(&mut rng, &[B, 3, 32, 32], 0.0, 1.0)).unwrap();
    let magnitudes = Var::from_tensor(&uniform(&mut rng, &[B], 0.0, 1.0)).unwrap();
    let logits = uniform(&mut rng, &[B, 15], -2.0, 2.0);
    let weights = Var::from_tensor(&candle_nn::ops::softmax(&logits, 1).unwrap()).unwrap();
    let grad_out = uniform(&mut rng, &[B, 3, 32, 32], -1.0, 1.0);
    let set = OpSet::paper();

    let mut group = c.benchmark_group("cpu_compose_weighted_parallel_15_ops_b128_3x32x32_fwd_bwd");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for (label, fused) in [("fused", true), ("generic_sum", false)] {
        let config = WeightedParallelConfig::dynamic("op_weights").with_fused(fused);
        let op = WeightedParallel::new(aug_operators(&set, 1), config).unwrap();
        assert_eq!(op.uses_fused_mixture(), fused);
        group.bench_function(label, |b| {
            b.iter(|| {
                let batch = Batch::new([
                    ("image", images.as_tensor().clone()),
                    ("magnitude", magnitudes.as_tensor().clone()),
                    ("op_weights", weights.as_tensor().clone()),
                ])
                .unwrap();
                let out = op.apply_batch(&batch).unwrap();
                let loss = (out.require("image").unwrap() * &grad_out)
                    .unwrap()
                    .sum_all()
                    .unwrap();
                let grads = loss.backward().unwrap();
                std::hint::black_box(grads.get(weights.as_tensor()).unwrap().dims().len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, weighted_parallel_15_ops);
criterion_main!(benches);
