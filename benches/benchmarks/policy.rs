//! Criterion benchmarks for dada-policy at B=128, 3x32x32 (the search's batch): sampling,
//! augmenting (forward + backward to the policy) under each estimator and search space (the
//! paper space with one draw per batch and, `paper_per_image`, one per image), the RELAX
//! estimate with its control-variate update, and discrete sampling of an exported policy.
//!
//! Run: `cargo bench -p dada-benches --bench policy` (filter with e.g. `-- tutorial`).
use std::time::Duration;

use candle::{DType, Device, Result, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dada_ops::testing::test_images;
use dada_policy::{
    sample_discrete, Draw, Estimator, PaperConfig, PaperPolicy, Policy, Relax, TutorialConfig, TutorialPolicy,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const B: usize = 128;
const SHAPE: (usize, usize, usize, usize) = (B, 3, 32, 32);

fn configure<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(B as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g
}

/// Augment + `sum(aug * r)` + backward to the policy Vars.
fn augment_backward(policy: &dyn Policy, x: &Tensor, r: &Tensor, est: Estimator, rng: &mut StdRng) -> Result<()> {
    let s = policy.sample(B, 0.5, rng)?;
    let aug = policy.augment(x, &s, est, rng)?;
    let _ = (aug * r)?.sum_all()?.backward()?;
    Ok(())
}

fn bench_space(c: &mut Criterion, name: &str, policy: &dyn Policy) {
    let dev = Device::Cpu;
    let x = test_images(SHAPE, 1, DType::F32, &dev).unwrap();
    let r = test_images(SHAPE, 2, DType::F32, &dev).unwrap();
    let mut g = configure(c, &format!("cpu_policy_{name}"));
    let mut rng = StdRng::seed_from_u64(0);
    g.bench_function("sample", |b| b.iter(|| policy.sample(B, 0.5, &mut rng).unwrap()));
    for est in [Estimator::Relax, Estimator::Gumbel] {
        g.bench_function(format!("augment_fwd_bwd_{est:?}").to_lowercase(), |b| {
            b.iter(|| augment_backward(policy, &x, &r, est, &mut rng).unwrap())
        });
    }
    let mut relax = Relax::new(policy, 100, 0.005, &dev).unwrap();
    let sample = policy.sample(B, 0.5, &mut rng).unwrap();
    let f = Tensor::rand(0f32, 1f32, sample.n_draws(), &dev).unwrap();
    g.bench_function("relax_grads_and_cv_update", |b| b.iter(|| relax.grads(policy, &sample, &f).unwrap()));
    g.finish();
}

fn policy_benches(c: &mut Criterion) {
    let dev = Device::Cpu;
    let paper = PaperPolicy::new(PaperConfig::default(), &dev).unwrap();
    bench_space(c, "paper", &paper);
    let per_image = PaperPolicy::new(PaperConfig { draw: Draw::PerImage, ..PaperConfig::default() }, &dev).unwrap();
    bench_space(c, "paper_per_image", &per_image);
    let tutorial = TutorialPolicy::new(TutorialConfig::default(), &dev).unwrap();
    bench_space(c, "tutorial", &tutorial);
    let file = paper.export();
    let x = test_images(SHAPE, 1, DType::F32, &dev).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut g = configure(c, "cpu_policy_file");
    g.bench_function("sample_discrete_top25", |b| b.iter(|| sample_discrete(&file, &x, &mut rng).unwrap()));
    g.finish();
}

criterion_group!(benches, policy_benches);
criterion_main!(benches);
