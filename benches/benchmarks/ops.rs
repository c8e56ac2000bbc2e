//! Criterion benchmarks for dada-ops: every op and the 15-op weighted mixture, forward and
//! forward+backward, at B=128, 3x32x32: fused CPU kernels vs the plain-candle reference path.
//!
//! Run: `cargo bench -p dada-benches --bench ops` (throughput is images/s, printed as
//! "elem/s"; filter with e.g. `-- cpu_mixture`). Rows:
//! - `fused_fwd`: `apply` / `weighted_mixture` forward.
//! - `fused_fwd_bwd`: forward and backward through candle autograd of a linear readout of the
//!   output, `sum_i <out_i, r>` (`out.reshape((B, n)).matmul(r)`, a fixed random `r`), gradients
//!   w.r.t. images and magnitudes (and weights for the mixture). The op receives a dense,
//!   contiguous upstream gradient, as it does under a model. The readout is not
//!   `out.sum_all()`: candle materialises a sum's broadcast gradient in a scalar strided loop
//!   (`binary_map`'s broadcast path, 0.4-0.5 ms for one batch of 128 x 3 x 32 x 32, 25-29% of the
//!   shear_x and rotate rows' profiles), which would charge every row for the loss rather than
//!   the op; `candle_affine_fwd_bwd_sum_all` and the mixture's `fused_fwd_bwd_sum_all` measure
//!   that harness.
//! - `kernel_fwd_bwd`: the same op forward plus `kernel_backward` with a dense upstream
//!   gradient, without candle's autograd bookkeeping (what the kernels themselves cost).
//! - `reference_fwd_bwd`: `fused_fwd_bwd` on the plain-candle path, for the fused/reference ratio.
//! - `candle_affine_fwd_bwd`: a one-op plain candle graph (`x * 2`) through the same autograd
//!   harness: the floor every `fused_fwd_bwd` row pays (`..._sum_all`: with `out.sum_all()` as
//!   the loss).
//!
//! The process keeps freed memory (`dada_models::retain_freed_memory`, which every search and
//! training process applies when it builds a model): otherwise glibc unmaps the 1.5 MB
//! image-sized buffers of every iteration and faults them in again. Set
//! `DADA_BENCH_DEFAULT_ALLOC=1` to measure with glibc's defaults.
use std::time::Duration;

use candle::{DType, Device, Result, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dada_ops::testing::test_images;
use dada_ops::{
    apply_kernel, kernel_backward, weighted_mixture, weighted_mixture_reference, OpSet,
    BUILTIN_NAMES,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const B: usize = 128;
const SHAPE: (usize, usize, usize, usize) = (B, 3, 32, 32);

struct Inputs {
    images: Var,
    magnitudes: Var,
    upstream: Tensor,
    /// The readout `r (C H W, 1)` of [`forward_backward`].
    readout: Tensor,
}

fn inputs(dev: &Device) -> Result<Inputs> {
    Ok(Inputs {
        images: Var::from_tensor(&test_images(SHAPE, 1, DType::F32, dev)?)?,
        magnitudes: Var::from_tensor(&Tensor::rand(0.05f32, 0.95, B, dev)?)?,
        upstream: (test_images(SHAPE, 2, DType::F32, dev)?.affine(2.0, -1.0))?,
        readout: (test_images((1, 1, N, 1), 5, DType::F32, dev)?
            .reshape((N, 1))?
            .affine(2.0, -1.0))?,
    })
}

/// Elements of one image.
const N: usize = SHAPE.1 * SHAPE.2 * SHAPE.3;

/// Forward, then gradients of the readout `sum_i <out_i, r>` w.r.t. every `Var` in the graph.
fn forward_backward(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    inp: &Inputs,
) -> Result<candle::backprop::GradStore> {
    f(inp.images.as_tensor(), inp.magnitudes.as_tensor())?
        .reshape((B, N))?
        .matmul(&inp.readout)?
        .sum_all()?
        .backward()
}

/// Forward, then gradients of `sum(out)`: the harness whose loss costs more than most ops.
fn forward_backward_sum_all(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    inp: &Inputs,
) -> Result<candle::backprop::GradStore> {
    f(inp.images.as_tensor(), inp.magnitudes.as_tensor())?
        .sum_all()?
        .backward()
}

/// Applies the allocator setting of training processes unless `DADA_BENCH_DEFAULT_ALLOC` is set.
fn allocator() {
    if std::env::var_os("DADA_BENCH_DEFAULT_ALLOC").is_none() {
        dada_models::retain_freed_memory();
    }
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(B as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g
}

fn single_ops(c: &mut Criterion) {
    allocator();
    let dev = Device::Cpu;
    let inp = inputs(&dev).unwrap();
    let mut g = configure(c, "cpu_ops");
    g.bench_function("candle_affine_fwd_bwd", |b| {
        b.iter(|| forward_backward(|x, _| x.affine(2.0, 0.0), &inp).unwrap())
    });
    g.bench_function("candle_affine_fwd_bwd_sum_all", |b| {
        b.iter(|| forward_backward_sum_all(|x, _| x.affine(2.0, 0.0), &inp).unwrap())
    });
    for name in BUILTIN_NAMES {
        let op = OpSet::by_name(name).unwrap();
        let params = op.sample(B, &mut StdRng::seed_from_u64(3), &dev).unwrap();
        let kernel = op
            .kernel(&params, SHAPE)
            .unwrap()
            .expect("built-in ops have kernels");
        let (x, m) = (inp.images.as_tensor(), inp.magnitudes.as_tensor());
        g.bench_function(BenchmarkId::new("fused_fwd", name), |b| {
            b.iter(|| op.apply(x, m, &params).unwrap())
        });
        g.bench_function(BenchmarkId::new("fused_fwd_bwd", name), |b| {
            b.iter(|| forward_backward(|x, m| op.apply(x, m, &params), &inp).unwrap())
        });
        g.bench_function(BenchmarkId::new("kernel_fwd_bwd", name), |b| {
            b.iter(|| {
                let x = x.detach();
                let out = apply_kernel(name, kernel.clone(), &x, &m.detach()).unwrap();
                (
                    out,
                    kernel_backward(kernel.as_ref(), &x, m, &inp.upstream).unwrap(),
                )
            })
        });
        g.bench_function(BenchmarkId::new("reference_fwd_bwd", name), |b| {
            b.iter(|| forward_backward(|x, m| op.apply_reference(x, m, &params), &inp).unwrap())
        });
    }
    g.finish();
}

fn mixture(c: &mut Criterion) {
    allocator();
    let dev = Device::Cpu;
    let inp = inputs(&dev).unwrap();
    let mut g = configure(c, "cpu_mixture");
    for (set_name, ops) in [("paper", OpSet::paper()), ("tutorial", OpSet::tutorial())] {
        let params = ops
            .sample_all(B, &mut StdRng::seed_from_u64(4), &dev)
            .unwrap();
        let logits = Tensor::randn(0f32, 1.0, (B, ops.len()), &dev).unwrap();
        let e = logits.exp().unwrap();
        let w = Var::from_tensor(&e.broadcast_div(&e.sum_keepdim(1).unwrap()).unwrap()).unwrap();
        let (x, m) = (inp.images.as_tensor(), inp.magnitudes.as_tensor());
        g.bench_function(BenchmarkId::new("fused_fwd", set_name), |b| {
            b.iter(|| weighted_mixture(&ops, x, m, w.as_tensor(), &params).unwrap())
        });
        g.bench_function(BenchmarkId::new("fused_fwd_bwd", set_name), |b| {
            b.iter(|| {
                forward_backward(
                    |x, m| weighted_mixture(&ops, x, m, w.as_tensor(), &params),
                    &inp,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("fused_fwd_bwd_sum_all", set_name), |b| {
            b.iter(|| {
                forward_backward_sum_all(
                    |x, m| weighted_mixture(&ops, x, m, w.as_tensor(), &params),
                    &inp,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("reference_fwd_bwd", set_name), |b| {
            b.iter(|| {
                forward_backward(
                    |x, m| weighted_mixture_reference(&ops, x, m, w.as_tensor(), &params),
                    &inp,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, mixture, single_ops);
criterion_main!(benches);
