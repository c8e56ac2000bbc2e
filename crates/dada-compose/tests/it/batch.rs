//! Batch and Element: construction, validation, element views, selection.
use std::collections::BTreeMap;

use candle::{Device, Tensor};
use dada_compose::{Batch, ComposeError, Element};

use crate::common::{inputs, max_diff, square, uniform};

#[test]
fn from_parts_keeps_tensors_and_batch_size() {
    let (images, magnitudes) = inputs(1);
    let weights = uniform(2, &[4, 15], 0.0, 1.0);
    let data = BTreeMap::from([
        ("image".to_string(), images.as_tensor().clone()),
        ("magnitude".to_string(), magnitudes.as_tensor().clone()),
        ("op_weights".to_string(), weights.clone()),
    ]);
    let states = BTreeMap::from([("step".to_string(), uniform(3, &[4, 1], 0.0, 1.0))]);
    let batch = Batch::from_parts(data, states).unwrap();
    assert_eq!(batch.batch_size(), 4);
    assert_eq!(
        batch.keys().collect::<Vec<_>>(),
        ["image", "magnitude", "op_weights"]
    );
    assert_eq!(batch.get_data()["op_weights"].id(), weights.id());
    assert_eq!(batch.get_states()["step"].dims(), [4, 1]);
    assert!(batch.get("label").is_none());
}

#[test]
fn from_parts_rejects_inconsistent_batches() {
    let empty = Batch::from_parts(BTreeMap::new(), BTreeMap::new());
    assert!(matches!(empty, Err(ComposeError::EmptyBatch)));
    let mismatch = Batch::new([
        ("a", uniform(1, &[4, 2], 0.0, 1.0)),
        ("b", uniform(1, &[3], 0.0, 1.0)),
    ]);
    assert!(
        matches!(mismatch, Err(ComposeError::BatchSizeMismatch { ref key, expected: 4, .. }) if key == "b")
    );
    let scalar = Batch::new([("a", Tensor::new(1.0f64, &Device::Cpu).unwrap())]);
    assert!(matches!(
        scalar,
        Err(ComposeError::BatchSizeMismatch { .. })
    ));
    let batch = Batch::new([("a", uniform(1, &[4, 2], 0.0, 1.0))]).unwrap();
    assert!(matches!(
        batch.with("b", uniform(1, &[5], 0.0, 1.0)),
        Err(ComposeError::BatchSizeMismatch { .. })
    ));
    let missing = batch.require("image").unwrap_err();
    assert!(matches!(missing, ComposeError::MissingKey { ref key, .. } if key == "image"));
    assert!(missing.to_string().contains("\"image\""), "{missing}");
    assert!(matches!(
        batch.element(4),
        Err(ComposeError::IndexOutOfRange {
            index: 4,
            len: 4,
            ..
        })
    ));
}

#[test]
fn elements_round_trip_and_index_select() {
    let (images, magnitudes) = inputs(2);
    let batch = crate::common::batch_of(&images, &magnitudes);
    let elements = batch.elements().unwrap();
    assert_eq!(elements.len(), 4);
    assert_eq!(elements[1].require("image").unwrap().dims(), [2, 3, 3]);
    let restacked = Batch::from_elements(&elements).unwrap();
    assert_eq!(
        max_diff(restacked.require("image").unwrap(), images.as_tensor()),
        0.0
    );

    let indices = Tensor::new(&[3u32, 1], &Device::Cpu).unwrap();
    let picked = batch.index_select(&indices).unwrap();
    assert_eq!(picked.batch_size(), 2);
    let expected = images.as_tensor().get(3).unwrap();
    assert_eq!(
        max_diff(&picked.require("image").unwrap().get(0).unwrap(), &expected),
        0.0
    );

    let mixed = [
        elements[0].clone(),
        Element::new([("image", elements[1].require("image").unwrap().clone())]),
    ];
    assert!(matches!(
        Batch::from_elements(&mixed),
        Err(ComposeError::KeyMismatch { child: 1, .. })
    ));
}

#[test]
fn apply_element_runs_an_operator_on_one_sample() {
    let (images, magnitudes) = inputs(3);
    let element = crate::common::batch_of(&images, &magnitudes)
        .element(2)
        .unwrap();
    let out = square().apply_element(&element).unwrap();
    let expected = images.as_tensor().get(2).unwrap().sqr().unwrap();
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-15);
}
