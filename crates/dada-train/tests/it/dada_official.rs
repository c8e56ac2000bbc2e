//! The DADA policies the authors published (VDIGPKU/DADA `genotype.py`): each loads on our op
//! names and magnitude scale, agrees with the same genotype read as a `file:` policy, matches
//! the published numbers, and trains the tiny CNN.
use std::sync::atomic::AtomicBool;

use candle::Device;
use dada_ops::OpSet;
use dada_train::known_policies::{
    dada_official, dada_official_fast_autoaugment, dada_official_table, DADA_CIFAR10, DADA_CIFAR100, DADA_IMAGENET,
    DADA_OFFICIAL_NAMES, DADA_SVHN,
};
use dada_train::models::ModelKind;
use dada_train::policy::{canonical_op_name, PolicyFile};
use dada_train::train::{TrainConfig, TrainPolicy, Trainer};

use super::search::toy_dataset;

#[test]
fn every_official_policy_loads_on_the_paper_ops() {
    let paper = OpSet::paper();
    for name in DADA_OFFICIAL_NAMES {
        let p = dada_official(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(p.space, format!("dada-official-{name}"));
        // Every published genotype has 25 sub-policies of 2 ops, sampled uniformly.
        assert_eq!(p.sub_policies.len(), 25, "{name}");
        let total: f64 = p.sub_policies.iter().map(|s| s.weight).sum();
        assert!((total - 1.0).abs() < 1e-12, "{name}: weights sum to {total}");
        let table = dada_official_table(name).unwrap();
        for (i, (sub, published)) in p.sub_policies.iter().zip(table).enumerate() {
            assert_eq!(sub.weight, 1.0 / 25.0);
            assert_eq!(sub.ops.len(), 2, "{name} sub-policy {i}");
            for (e, &(op, probability, magnitude)) in sub.ops.iter().zip(published) {
                assert!(paper.index_of(&e.op).is_some(), "{name}: {} is not a paper op", e.op);
                assert_eq!(Some(e.op.as_str()), canonical_op_name(op));
                assert!((0.0..=1.0).contains(&e.probability), "{name} sub-policy {i}: {e:?}");
                assert!((0.0..=1.0).contains(&e.magnitude), "{name} sub-policy {i}: {e:?}");
                // Our magnitude scale is fast-autoaugment's: the numbers carry over unchanged.
                assert_eq!((e.probability, e.magnitude), (probability, magnitude));
            }
        }
        assert!(p.ops.iter().all(|op| paper.index_of(op).is_some()));
        assert!(p.op_set().is_ok());
    }
}

#[test]
fn names_are_case_insensitive_and_unknown_ones_are_none() {
    assert_eq!(dada_official("ImageNet"), dada_official("imagenet"));
    assert_eq!(dada_official("CIFAR10").unwrap().space, "dada-official-cifar10");
    assert!(dada_official("cifar").is_none());
    assert!(dada_official("dada-official-cifar10").is_none());
    assert!(dada_official_fast_autoaugment("mnist").is_none());
}

#[test]
fn built_in_policies_equal_the_same_genotype_read_as_a_file() {
    for name in DADA_OFFICIAL_NAMES {
        let json = serde_json::to_vec(&dada_official_fast_autoaugment(name).unwrap()).unwrap();
        let from_file = PolicyFile::read_fast_autoaugment(json.as_slice()).unwrap();
        let built_in = dada_official(name).unwrap();
        assert_eq!(built_in.ops, from_file.ops, "{name}");
        assert_same(&built_in, &from_file, name);
        // The in-memory list goes through the very same conversion, bit for bit.
        let in_memory = PolicyFile::from_fast_autoaugment(&dada_official_fast_autoaugment(name).unwrap()).unwrap();
        assert_eq!(in_memory.sub_policies, built_in.sub_policies, "{name}");
        // And writing it back as a file gives the published list.
        let mut out = Vec::new();
        built_in.write_fast_autoaugment(&mut out).unwrap();
        let again = PolicyFile::read_fast_autoaugment(out.as_slice()).unwrap();
        assert_same(&built_in, &again, name);
    }
}

/// Same sub-policies, ops and weights; numbers equal up to serde_json's text parsing, which
/// without its `float_roundtrip` feature may land 1 ulp off (0.39651215076446533 reads as
/// 0.3965121507644654).
fn assert_same(a: &PolicyFile, b: &PolicyFile, name: &str) {
    assert_eq!(a.sub_policies.len(), b.sub_policies.len(), "{name}");
    for (x, y) in a.sub_policies.iter().zip(&b.sub_policies) {
        assert_eq!(x.weight, y.weight, "{name}");
        assert_eq!(x.ops.len(), y.ops.len(), "{name}");
        for (e, f) in x.ops.iter().zip(&y.ops) {
            assert_eq!(e.op, f.op, "{name}");
            assert!((e.probability - f.probability).abs() <= 2.0 * f64::EPSILON, "{name}: {e:?} vs {f:?}");
            assert!((e.magnitude - f.magnitude).abs() <= 2.0 * f64::EPSILON, "{name}: {e:?} vs {f:?}");
        }
    }
}

/// `(op, probability, magnitude)` of an entry of a built-in policy.
fn entry(name: &str, sub: usize, slot: usize) -> (String, f64, f64) {
    let e = &dada_official(name).unwrap().sub_policies[sub].ops[slot];
    (e.op.clone(), e.probability, e.magnitude)
}

#[test]
fn first_and_last_entries_match_the_published_genotypes() {
    // Typed in from genotype.py by hand, independently of the tables.
    assert_eq!(entry("cifar10", 0, 0), ("translate_x".into(), 0.5183464288711548, 0.5752825736999512));
    assert_eq!(entry("cifar10", 24, 1), ("translate_x".into(), 0.4761257469654083, 0.49035176634788513));
    assert_eq!(entry("cifar100", 0, 0), ("shear_y".into(), 0.5558360815048218, 0.2755777835845947));
    assert_eq!(entry("cifar100", 21, 0), ("rotate".into(), 1.0, 0.0));
    assert_eq!(entry("svhn", 0, 0), ("solarize".into(), 0.6144442558288574, 0.5266356468200684));
    assert_eq!(entry("svhn", 24, 1), ("equalize".into(), 0.5241876244544983, 0.5));
    assert_eq!(entry("imagenet", 0, 0), ("translate_y".into(), 0.8485236167907715, 0.6384843587875366));
    assert_eq!(entry("imagenet", 24, 1), ("color".into(), 0.49619558453559875, 0.5923987030982971));
    // The tables are what the lookups return.
    assert_eq!(DADA_CIFAR10[0][1], ("Rotate", 0.5693835616111755, 0.5274667739868164));
    assert_eq!(DADA_CIFAR100[13][1], ("Contrast", 1.0, 0.0762958824634552));
    assert_eq!(DADA_SVHN[6][0], ("Rotate", 0.42828381061553955, 0.5006870627403259));
    assert_eq!(DADA_IMAGENET[12][1], ("AutoContrast", 0.40107735991477966, 0.0));
}

#[test]
fn every_official_policy_trains_the_tiny_cnn() {
    let ds = toy_dataset(32, 16, 11);
    for name in DADA_OFFICIAL_NAMES {
        let policy = TrainPolicy::Policy { name: format!("dada-official:{name}"), policy: dada_official(name).unwrap() };
        let cfg = TrainConfig {
            model: ModelKind::TinyCnn,
            n_train: Some(32),
            epochs: 2,
            batch_size: 16,
            warmup_epochs: 1,
            eval_every: 1,
            ..TrainConfig::wrn40x2_cifar10(policy)
        };
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = Trainer::new(cfg, &ds, &Device::Cpu).unwrap();
        let mut losses = Vec::new();
        let done = trainer
            .run(&dir.path().join("ck.safetensors"), &AtomicBool::new(false), &mut |_, l, _| losses.push(l))
            .unwrap();
        assert!(done, "{name}");
        assert_eq!(losses.len(), trainer.total_steps(), "{name}");
        assert!(!losses.is_empty() && losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
        assert!(trainer.history.last().unwrap().train_loss.is_finite(), "{name}");
    }
}
