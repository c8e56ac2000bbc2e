//! Criterion benchmarks for dada-ops: every op and the 15-op weighted mixture, forward and
//! forward+backward, at B=128, 3x32x32, fused CPU kernels vs the plain-candle reference path.
//!
//! Run: `cargo bench -p dada-benches --bench ops` (throughput is reported in images/s as
//! "elem/s"; filter with e.g. `-- mixture`).
use std::time::Duration;

use candle::{DType, Device, Result, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dada_ops::testing::test_images;
use dada_ops::{weighted_mixture, weighted_mixture_reference, AugOp, OpParams, OpSet, BUILTIN_NAMES};
use rand::rngs::StdRng;
use rand::SeedableRng;

const B: usize = 128;
const SHAPE: (usize, usize, usize, usize) = (B, 3, 32, 32);

struct Inputs {
    images: Tensor,
    magnitudes: Tensor,
    upstream: Tensor,
}

fn inputs(dev: &Device) -> Result<Inputs> {
    Ok(Inputs {
        images: test_images(SHAPE, 1, DType::F32, dev)?,
        magnitudes: Tensor::rand(0.05f32, 0.95, B, dev)?,
        upstream: test_images(SHAPE, 2, DType::F32, dev)?,
    })
}

/// One forward+backward: gradients w.r.t. images and magnitudes of `sum(op(x, m) * r)`.
fn forward_backward(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    inp: &Inputs,
) -> Result<candle::backprop::GradStore> {
    let x = Var::from_tensor(&inp.images)?;
    let m = Var::from_tensor(&inp.magnitudes)?;
    let out = f(x.as_tensor(), m.as_tensor())?;
    (out * &inp.upstream)?.sum_all()?.backward()
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(B as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g
}

fn single_ops(c: &mut Criterion) {
    let dev = Device::Cpu;
    let inp = inputs(&dev).unwrap();
    let mut g = configure(c, "cpu_ops");
    for name in BUILTIN_NAMES {
        let op = OpSet::by_name(name).unwrap();
        let params: OpParams = op.sample(B, &mut StdRng::seed_from_u64(3), &dev).unwrap();
        g.bench_function(BenchmarkId::new("fused_fwd", name), |b| {
            b.iter(|| op.apply(&inp.images, &inp.magnitudes, &params).unwrap())
        });
        g.bench_function(BenchmarkId::new("fused_fwd_bwd", name), |b| {
            b.iter(|| forward_backward(|x, m| op.apply(x, m, &params), &inp).unwrap())
        });
        g.bench_function(BenchmarkId::new("reference_fwd_bwd", name), |b| {
            b.iter(|| forward_backward(|x, m| op.apply_reference(x, m, &params), &inp).unwrap())
        });
    }
    g.finish();
}

fn mixture(c: &mut Criterion) {
    let dev = Device::Cpu;
    let inp = inputs(&dev).unwrap();
    let mut g = configure(c, "cpu_mixture");
    for (set_name, ops) in [("paper", OpSet::paper()), ("tutorial", OpSet::tutorial())] {
        let params = ops.sample_all(B, &mut StdRng::seed_from_u64(4), &dev).unwrap();
        let logits = Tensor::randn(0f32, 1.0, (B, ops.len()), &dev).unwrap();
        let weights = (logits.exp().unwrap().broadcast_div(&logits.exp().unwrap().sum_keepdim(1).unwrap())).unwrap();
        let w = Var::from_tensor(&weights).unwrap();
        g.bench_function(BenchmarkId::new("fused_fwd", set_name), |b| {
            b.iter(|| weighted_mixture(&ops, &inp.images, &inp.magnitudes, &weights, &params).unwrap())
        });
        g.bench_function(BenchmarkId::new("fused_fwd_bwd", set_name), |b| {
            b.iter(|| {
                forward_backward(|x, m| weighted_mixture(&ops, x, m, w.as_tensor(), &params), &inp).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("reference_fwd_bwd", set_name), |b| {
            b.iter(|| {
                forward_backward(|x, m| weighted_mixture_reference(&ops, x, m, w.as_tensor(), &params), &inp)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, mixture, single_ops);
criterion_main!(benches);
