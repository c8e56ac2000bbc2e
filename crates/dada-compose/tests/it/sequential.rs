//! Sequential, ConditionalSequential and DynamicSequential: values and gradients.
use candle::{DType, Tensor};
use dada_compose::{
    ComposeError, Condition, ConditionalSequential, DynamicSequential, Operator, Sequential,
};

use crate::common::*;

#[test]
fn sequential_composes_in_order_with_gradients() {
    let (images, magnitudes) = inputs(10);
    let op = Sequential::new([shift(), square(), sin()]);
    let loss = || {
        let out = op.apply_batch(&batch_of(&images, &magnitudes))?;
        project(out.require("image")?, 11)
    };
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    // sin((x + m)^2)
    let expected = images
        .as_tensor()
        .broadcast_add(&per_image(magnitudes.as_tensor()).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .sin()
        .unwrap();
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-14);
    assert_eq!(
        out.require("magnitude").unwrap().id(),
        magnitudes.as_tensor().id()
    );
    assert!(check_grads(&[&images, &magnitudes], loss) < GRAD_TOL);

    let empty = Sequential::new([]);
    let same = empty.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    assert_eq!(same.require("image").unwrap().id(), images.as_tensor().id());
}

/// Elements with magnitude > 0.5 (elements 1 and 3).
fn high_magnitude() -> Condition {
    Condition::per_element(|batch| Ok(batch.require("magnitude")?.gt(0.5)?))
}

#[test]
fn conditional_sequential_applies_each_step_where_its_condition_holds() {
    let (images, magnitudes) = inputs(12);
    let op = ConditionalSequential::new([
        (shift(), Condition::always()),
        (square(), high_magnitude()),
        (scale(3.0), Condition::never()),
        (sin(), Condition::batch(|batch| Ok(batch.batch_size() == 4))),
    ]);
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    // sin(y^2) where m > 0.5, sin(y) elsewhere, with y = x + m; the scale step never runs.
    let y = images
        .as_tensor()
        .broadcast_add(&per_image(magnitudes.as_tensor()).unwrap())
        .unwrap();
    for (i, m) in magnitudes
        .as_tensor()
        .to_vec1::<f64>()
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let yi = y.get(i).unwrap();
        let expected = if m > 0.5 {
            yi.sqr().unwrap().sin().unwrap()
        } else {
            yi.sin().unwrap()
        };
        assert!(max_diff(&out.require("image").unwrap().get(i).unwrap(), &expected) < 1e-14);
    }
    let loss = || {
        project(
            op.apply_batch(&batch_of(&images, &magnitudes))?
                .require("image")?,
            13,
        )
    };
    assert!(check_grads(&[&images, &magnitudes], loss) < GRAD_TOL);
}

#[test]
fn conditional_sequential_rejects_a_bad_mask() {
    let (images, magnitudes) = inputs(14);
    let bad = Condition::per_element(|_| Ok(Tensor::ones(3, DType::U8, &candle::Device::Cpu)?));
    let op = ConditionalSequential::new([(sin(), bad)]);
    let err = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap_err();
    assert!(matches!(err, ComposeError::PerElementShape { b_sz: 4, ref dims, .. } if dims == &[3]));
}

#[test]
fn dynamic_sequential_changes_between_calls() {
    let (images, magnitudes) = inputs(15);
    let batch = batch_of(&images, &magnitudes);
    let x = images.as_tensor();
    let op = DynamicSequential::new([square()]);
    op.add(sin());
    op.insert(0, scale(2.0)).unwrap();
    assert_eq!(op.names(), ["scale_2", "square", "sin"]);
    let run = |op: &DynamicSequential| {
        op.apply_batch(&batch)
            .unwrap()
            .require("image")
            .unwrap()
            .clone()
    };
    // sin((2x)^2)
    assert!(max_diff(&run(&op), &(x * 2.0).unwrap().sqr().unwrap().sin().unwrap()) < 1e-14);
    op.reorder(&[2, 0, 1]).unwrap();
    assert_eq!(op.names(), ["sin", "scale_2", "square"]);
    // (2 sin x)^2
    assert!(max_diff(&run(&op), &(x.sin().unwrap() * 2.0).unwrap().sqr().unwrap()) < 1e-14);
    let removed = op.remove(1).unwrap();
    assert_eq!(removed.name(), "scale_2");
    assert!(max_diff(&run(&op), &x.sin().unwrap().sqr().unwrap()) < 1e-14);

    let loss = || {
        project(
            op.apply_batch(&batch_of(&images, &magnitudes))?
                .require("image")?,
            16,
        )
    };
    assert!(check_grads(&[&images], loss) < GRAD_TOL);

    assert!(matches!(
        op.remove(2),
        Err(ComposeError::IndexOutOfRange {
            index: 2,
            len: 2,
            ..
        })
    ));
    assert!(matches!(
        op.insert(3, sin()),
        Err(ComposeError::IndexOutOfRange {
            index: 3,
            len: 2,
            ..
        })
    ));
    assert!(matches!(
        op.reorder(&[0, 0]),
        Err(ComposeError::NotAPermutation { .. })
    ));
    assert!(matches!(
        op.reorder(&[1]),
        Err(ComposeError::NotAPermutation { .. })
    ));
    assert_eq!(op.len(), 2);
}
