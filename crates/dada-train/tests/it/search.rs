//! The search on a tiny CNN: resume after interruption gives the same policy (per-batch and
//! per-image draws); a NaN loss stops the run with a clear error and keeps the last good
//! checkpoint; every estimator / space / draw / hypergradient combination runs and moves the
//! policy; checkpoints written before the draw setting existed resume as per-batch draws.
use std::sync::atomic::{AtomicBool, Ordering};

use candle::{Device, Tensor};
use dada_train::config::TemperatureSchedule;
use dada_train::data::{BinaryDataset, SplitConfig};
use dada_train::models::ModelKind;
use dada_train::checkpoint::Checkpoint;
use dada_train::{Draw, EstimatorKind, HypergradKind, Search, SearchConfig, SearchError, SpaceKind};

/// A small learnable dataset: class k has a bright band at rows 3k..3k+3, plus noise.
pub fn toy_dataset(n_train: usize, n_test: usize, seed: u64) -> BinaryDataset {
    dada_train::devcheck::synthetic_dataset(n_train, n_test, seed)
}

fn tiny_config(space: SpaceKind, estimator: EstimatorKind, hypergrad: HypergradKind) -> SearchConfig {
    let mut cfg = SearchConfig::paper();
    cfg.space = space;
    cfg.estimator = estimator;
    cfg.hypergrad = hypergrad;
    cfg.model = ModelKind::TinyCnn;
    cfg.split = SplitConfig { n_train: 64, n_val: 32, n_test: Some(32), stratified: true, seed: 3 };
    cfg.batch_size = 16;
    cfg.epochs = 2;
    cfg.lr = 0.05;
    cfg.policy_lr = 0.05;
    cfg.checkpoint_every = 1;
    cfg.seed = 11;
    cfg
}

fn policy_values(search: &Search) -> Vec<(String, Vec<f32>)> {
    search
        .policy()
        .vars()
        .into_iter()
        .map(|(name, v)| (name, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn interrupted_and_resumed_search_ends_with_the_same_policy() {
    interrupted_and_resumed(Draw::PerBatch);
}

#[test]
fn interrupted_and_resumed_per_image_search_ends_with_the_same_policy() {
    interrupted_and_resumed(Draw::PerImage);
}

fn interrupted_and_resumed(draw: Draw) {
    let ds = toy_dataset(128, 32, 0);
    let mut cfg = tiny_config(SpaceKind::Paper, EstimatorKind::Relax, HypergradKind::Unrolled);
    cfg.draw = draw;
    let dir = tempfile::tempdir().unwrap();
    let never = AtomicBool::new(false);

    let mut full = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    assert!(full.run(&dir.path().join("a.safetensors"), &never, &mut |_| {}).unwrap());
    assert_eq!(full.step_index(), cfg.total_steps());

    // Interrupt after 3 steps (as Ctrl-C does: the flag is seen before the next step).
    let ck = dir.path().join("b.safetensors");
    let stop = AtomicBool::new(false);
    let mut first = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    let finished = first
        .run(&ck, &stop, &mut |row| {
            if row.step == 2 {
                stop.store(true, Ordering::SeqCst);
            }
        })
        .unwrap();
    assert!(!finished);
    assert_eq!(first.step_index(), 3);
    drop(first);

    // The draw is stored with the configuration (what `--resume` reads back).
    let stored: SearchConfig = serde_json::from_value(Checkpoint::load(&ck, &Device::Cpu).unwrap().state["config"].clone()).unwrap();
    assert_eq!(stored.draw, draw);
    let mut resumed = Search::new(stored, &ds, &Device::Cpu).unwrap();
    resumed.load_checkpoint(&ck).unwrap();
    assert_eq!(resumed.step_index(), 3);
    assert!(resumed.run(&ck, &never, &mut |_| {}).unwrap());

    let (a, b) = (policy_values(&full), policy_values(&resumed));
    assert_eq!(a.len(), b.len());
    for ((na, va), (_, vb)) in a.iter().zip(&b) {
        let diff = va.iter().zip(vb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        println!("{draw:?} {na}: max |uninterrupted - resumed| = {diff:e}");
        assert!(diff <= 1e-6, "{na} differs by {diff}");
    }
    // The policy moved away from its initial values.
    let init = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    assert_ne!(policy_values(&init), a);
    assert_eq!(full.history.len(), resumed.history.len());
    assert_eq!(full.history.last().unwrap().train_loss, resumed.history.last().unwrap().train_loss);
}

#[test]
fn nan_loss_stops_with_the_step_and_keeps_the_checkpoint() {
    let ds = toy_dataset(128, 32, 1);
    let mut cfg = tiny_config(SpaceKind::Paper, EstimatorKind::Gumbel, HypergradKind::FirstOrder);
    cfg.lr = 1e30;
    cfg.lr_min = 1e30;
    cfg.grad_clip = 1e30;
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut search = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    let err = search.run(&ck, &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    match err {
        SearchError::NonFinite { step, .. } => {
            assert!(step >= 1, "{msg}");
            assert!(msg.contains(&format!("step {step}")), "{msg}");
            // The checkpoint on disk is the last good one: it loads and is at that step.
            let mut again = Search::new(cfg, &ds, &Device::Cpu).unwrap();
            again.load_checkpoint(&ck).unwrap();
            assert_eq!(again.step_index(), step);
        }
        other => panic!("expected a NonFinite error, got {other}"),
    }
}

#[test]
fn every_space_estimator_and_hypergradient_runs() {
    let ds = toy_dataset(64, 32, 2);
    let spaces = [(SpaceKind::Paper, Draw::PerBatch), (SpaceKind::Paper, Draw::PerImage), (SpaceKind::Tutorial, Draw::PerBatch)];
    for (space, draw) in spaces {
        for estimator in [EstimatorKind::Relax, EstimatorKind::Gumbel] {
            for hypergrad in [HypergradKind::Unrolled, HypergradKind::FirstOrder] {
                let mut cfg = tiny_config(space, estimator, hypergrad);
                cfg.draw = draw;
                cfg.split.n_train = 32;
                cfg.split.n_val = 16;
                cfg.epochs = 1;
                cfg.temperature = TemperatureSchedule::Cosine { start: 1.0, end: 0.1 };
                let mut search = Search::new(cfg, &ds, &Device::Cpu).unwrap();
                // Off the initial magnitude 0.5, where nine of the fifteen paper ops are the
                // identity (so a draw of them gives the selection an exact zero gradient).
                for (name, var) in search.policy().vars() {
                    if name == "magnitudes" {
                        var.set(&(var.as_tensor().ones_like().unwrap() * 0.3).unwrap()).unwrap();
                    }
                }
                let before = policy_values(&search);
                // Every parameter group moves within two steps (logits, magnitudes, probabilities).
                for _ in 0..2 {
                    let row = search.step().unwrap();
                    assert!(row.train_loss.is_finite() && row.val_loss.is_finite());
                }
                let after = policy_values(&search);
                for ((name, a), (_, b)) in before.iter().zip(&after) {
                    let moved = a.iter().zip(b).any(|(x, y)| x != y);
                    assert!(moved, "{space:?}/{draw:?}/{estimator:?}/{hypergrad:?}: {name} did not move");
                }
                let file = search.export();
                assert!(!file.sub_policies.is_empty());
            }
        }
    }
}

#[test]
fn checkpoints_written_before_the_draw_setting_resume_per_batch() {
    // A checkpoint whose configuration has no `draw` (as every one written before it existed):
    // it reads as per-batch, resumes a per-batch search, and is refused by a per-image one.
    let ds = toy_dataset(128, 32, 4);
    let cfg = tiny_config(SpaceKind::Paper, EstimatorKind::Relax, HypergradKind::Unrolled);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("old.safetensors");
    let mut search = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    search.step().unwrap();
    search.save_checkpoint(&ck).unwrap();
    let mut old = Checkpoint::load(&ck, &Device::Cpu).unwrap();
    assert_eq!(old.state["config"]["draw"], "PerBatch");
    old.state["config"].as_object_mut().unwrap().remove("draw");
    old.save(&ck).unwrap();

    let stored: SearchConfig = serde_json::from_value(Checkpoint::load(&ck, &Device::Cpu).unwrap().state["config"].clone()).unwrap();
    assert_eq!(stored.draw, Draw::PerBatch);
    assert_eq!(stored, cfg);
    let mut resumed = Search::new(stored, &ds, &Device::Cpu).unwrap();
    resumed.load_checkpoint(&ck).unwrap();
    assert_eq!(resumed.step_index(), 1);
    assert_eq!(policy_values(&resumed), policy_values(&search));

    let mut per_image = cfg.clone();
    per_image.draw = Draw::PerImage;
    let err = Search::new(per_image, &ds, &Device::Cpu).unwrap().load_checkpoint(&ck).unwrap_err();
    assert!(err.to_string().contains("another configuration"), "{err}");
}

#[test]
fn config_mismatch_on_resume_is_an_error() {
    let ds = toy_dataset(128, 32, 3);
    let cfg = tiny_config(SpaceKind::Paper, EstimatorKind::Gumbel, HypergradKind::FirstOrder);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let search = Search::new(cfg.clone(), &ds, &Device::Cpu).unwrap();
    search.save_checkpoint(&ck).unwrap();
    let mut other = cfg.clone();
    other.policy_lr = 0.123;
    let mut s2 = Search::new(other, &ds, &Device::Cpu).unwrap();
    let err = s2.load_checkpoint(&ck).unwrap_err();
    assert!(err.to_string().contains("another configuration"), "{err}");
    let _ = Tensor::zeros(1, candle::DType::F32, &Device::Cpu);
}

#[test]
fn verify_grads_passes_on_the_tiny_cnn() {
    use dada_train::verify::{verify_grads, VerifyConfig};
    let ds = toy_dataset(16, 16, 9);
    let cfg = VerifyConfig { model: ModelKind::TinyCnn, batch_size: 8, ..VerifyConfig::default() };
    let report = verify_grads(&ds.test, &cfg, &Device::Cpu).unwrap();
    report.checks.iter().for_each(|c| {
        println!("{} {}: analytic {:e} numeric {:e} step {:.1e} rel {:.2e} trusted {}", c.group, c.index, c.analytic, c.numeric, c.step, c.rel_error, c.trusted)
    });
    assert_eq!(report.groups.len(), 3);
    assert!(report.groups.iter().all(|g| g.abs_grad > 0.0));
    for g in &report.groups {
        assert!(report.trusted_in(&g.name) >= 2, "{}: {} trusted checks", g.name, report.trusted_in(&g.name));
    }
    assert!(report.passed());
}

