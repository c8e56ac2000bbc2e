//! Criterion benchmarks of one DADA search step (policy update + model update) at batch 128 on
//! 3x32x32 images: the paper preset (unrolled hypergradient, RELAX, 105 sub-policies), the same
//! with one sub-policy per image (`--draw per-image`), and the tutorial preset (first-order,
//! Gumbel-Softmax, 25x2x15), with WRN-40-2 and, for scale, the tiny CNN. Data: a synthetic
//! dataset of the CIFAR-10 shape (the step's cost does not depend on pixel values).
use std::time::Duration;

use candle::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use dada_train::data::{BinaryDataset, DatasetMeta, ImageSet};
use dada_train::models::ModelKind;
use dada_train::{Draw, Search, SearchConfig};
use rand::{Rng, SeedableRng};

fn dataset(n: usize) -> BinaryDataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut set = ImageSet::empty(3, 32, 32);
    for i in 0..n {
        let img: Vec<u8> = (0..3072).map(|_| rng.random()).collect();
        set.push(&img, (i % 10) as u8);
    }
    BinaryDataset { train: set.clone(), test: set, meta: DatasetMeta::cifar10(), dir: "synthetic".into() }
}

fn search_step(c: &mut Criterion) {
    let ds = dataset(1536);
    let mut group = c.benchmark_group("cpu_search_step_b128");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    let per_image = SearchConfig { draw: Draw::PerImage, ..SearchConfig::paper() };
    let presets = [
        ("paper_unrolled_relax", SearchConfig::paper()),
        ("paper_unrolled_relax_per_image", per_image),
        ("tutorial_first_order_gumbel", SearchConfig::tutorial()),
    ];
    for (name, base) in presets {
        for model in [ModelKind::Wrn40_2, ModelKind::TinyCnn] {
            let mut cfg = base.clone().quick();
            cfg.model = model;
            cfg.epochs = 1000; // never finishes inside the bench
            let mut search = Search::new(cfg, &ds, &Device::Cpu).unwrap();
            group.bench_function(format!("{name}_{model}"), |b| b.iter(|| search.step().unwrap()));
        }
    }
    group.finish();
}

criterion_group!(benches, search_step);
criterion_main!(benches);
