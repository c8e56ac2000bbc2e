//! Training with a fixed policy: every policy kind trains the tiny CNN for a few steps; an
//! interrupted run resumes to the same weights.
use std::sync::atomic::{AtomicBool, Ordering};

use candle::Device;
use dada_train::known_policies::{autoaugment_cifar10, randaugment};
use dada_train::models::ModelKind;
use dada_train::train::{train_batch, TrainConfig, TrainPolicy, Trainer};

use super::search::toy_dataset;

fn tiny(policy: TrainPolicy) -> TrainConfig {
    TrainConfig {
        model: ModelKind::TinyCnn,
        n_train: Some(64),
        epochs: 2,
        batch_size: 16,
        warmup_epochs: 1,
        eval_every: 1,
        ..TrainConfig::wrn40x2_cifar10(policy)
    }
}

fn kinds() -> Vec<TrainPolicy> {
    let mut dada = autoaugment_cifar10(32);
    dada.space = "paper".into();
    let json = {
        let mut buf = Vec::new();
        dada.write_fast_autoaugment(&mut buf).unwrap();
        buf
    };
    let from_file = dada_train::policy::PolicyFile::read_fast_autoaugment(json.as_slice()).unwrap();
    vec![
        TrainPolicy::None,
        TrainPolicy::Baseline,
        TrainPolicy::Cutout,
        TrainPolicy::Policy { name: "dada:policy.json".into(), policy: dada },
        TrainPolicy::Policy { name: "autoaugment".into(), policy: autoaugment_cifar10(32) },
        TrainPolicy::Policy { name: "randaugment:2,9".into(), policy: randaugment(2, 9.0) },
        TrainPolicy::Policy { name: "file:policy-fast-autoaugment.json".into(), policy: from_file },
    ]
}

#[test]
fn every_policy_kind_trains_the_tiny_cnn() {
    let ds = toy_dataset(96, 32, 7);
    for policy in kinds() {
        let name = policy.name();
        let cfg = tiny(policy);
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = Trainer::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
        let mut losses = Vec::new();
        assert!(trainer.run(&dir.path().join("ck.safetensors"), &AtomicBool::new(false), &mut |_, l, _| losses.push(l)).unwrap());
        assert_eq!(losses.len(), trainer.total_steps());
        assert!(losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
        assert_eq!(trainer.history.len(), 2);
        let acc = trainer.history.last().unwrap().test_acc.unwrap();
        assert!((0.0..=1.0).contains(&acc), "{name}");
        // The augmented batches differ from the plain ones exactly when the kind augments.
        let (x, _) = train_batch(&cfg, &trainer.train, 0, &Device::Cpu).unwrap();
        let plain = TrainConfig { policy: TrainPolicy::None, ..cfg.clone() };
        let (p, _) = train_batch(&plain, &trainer.train, 0, &Device::Cpu).unwrap();
        let diff = (x - p).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        if name == "none" {
            assert_eq!(diff, 0.0);
        } else {
            assert!(diff > 0.0, "{name}: no augmentation");
        }
    }
}

#[test]
fn training_learns_the_toy_task_and_resumes_exactly() {
    let ds = toy_dataset(256, 64, 8);
    let cfg = TrainConfig { n_train: Some(256), epochs: 4, batch_size: 32, lr: 0.05, ..tiny(TrainPolicy::Baseline) };
    let dir = tempfile::tempdir().unwrap();
    let mut full = Trainer::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    full.run(&dir.path().join("a.safetensors"), &AtomicBool::new(false), &mut |_, _, _| {}).unwrap();
    let first = full.history.first().unwrap().train_loss;
    let last = full.history.last().unwrap().train_loss;
    println!("train loss {first} -> {last}, test acc {:?}", full.history.last().unwrap().test_acc);
    assert!(last < first, "loss did not fall: {first} -> {last}");

    let ck = dir.path().join("b.safetensors");
    let stop = AtomicBool::new(false);
    let mut part = Trainer::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    let done = part.run(&ck, &stop, &mut |step, _, _| if step == 11 { stop.store(true, Ordering::SeqCst) }).unwrap();
    assert!(!done);
    let mut resumed = Trainer::new(cfg, &ds, &Device::Cpu).unwrap();
    resumed.load_checkpoint(&ck).unwrap();
    assert_eq!(resumed.step_index(), 11);
    resumed.run(&ck, &AtomicBool::new(false), &mut |_, _, _| {}).unwrap();
    assert_eq!(full.history.last().unwrap().train_loss, resumed.history.last().unwrap().train_loss);
    assert_eq!(full.history.last().unwrap().test_acc, resumed.history.last().unwrap().test_acc);
}
