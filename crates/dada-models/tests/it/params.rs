//! Checkpoints: round-trip, and clear errors for missing, mismatched or unexpected tensors.

use candle::Device;
use dada_models::{build_model, CheckpointError, ModelKind, ModelParams};

use crate::common::{rand_tensor, rel_err};

#[test]
fn checkpoint_round_trip_restores_outputs_and_running_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    let x = rand_tensor(&[4, 3, 16, 16], 1);
    let saved = ModelParams::new(1, &Device::Cpu);
    let model = build_model(ModelKind::TinyCnn, 10, &saved).unwrap();
    // a training-mode forward moves the running statistics away from their initial values
    model.forward_t(&x, true).unwrap();
    let expected = model.forward_t(&x, false).unwrap();
    saved.save(&path).unwrap();

    let loaded = ModelParams::new(2, &Device::Cpu);
    let other = build_model(ModelKind::TinyCnn, 10, &loaded).unwrap();
    assert!(rel_err(&other.forward_t(&x, false).unwrap(), &expected) > 1e-3);
    loaded.load(&path).unwrap();
    assert_eq!(rel_err(&other.forward_t(&x, false).unwrap(), &expected), 0.0);
}

#[test]
fn checkpoint_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny10.safetensors");
    let tiny = ModelParams::new(0, &Device::Cpu);
    build_model(ModelKind::TinyCnn, 10, &tiny).unwrap();
    tiny.save(&path).unwrap();

    let seven = ModelParams::new(0, &Device::Cpu);
    build_model(ModelKind::TinyCnn, 7, &seven).unwrap();
    match seven.load(&path) {
        Err(CheckpointError::ShapeMismatch { name, expected, found, .. }) => {
            assert!(name.starts_with("fc."), "{name}");
            assert_eq!(expected[0], 7);
            assert_eq!(found[0], 10);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }

    let wrn = ModelParams::new(0, &Device::Cpu);
    build_model(ModelKind::Wrn40_2, 10, &wrn).unwrap();
    let err = wrn.load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::MissingTensor { .. }), "{err:?}");
    assert!(err.to_string().contains("tiny10.safetensors"), "{err}");

    let empty = ModelParams::new(0, &Device::Cpu);
    let err = empty.load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::UnexpectedTensor { .. }), "{err:?}");

    let err = tiny.load(dir.path().join("absent.safetensors")).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err:?}");
}
