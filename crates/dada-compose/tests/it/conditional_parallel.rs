//! ConditionalParallel: per-element and batch conditions, sum and mean merges.
use candle::Tensor;
use dada_compose::{ComposeError, Condition, ConditionalMerge, ConditionalParallel, Operator};

use crate::common::*;

/// Elements with magnitude > 0.5 (elements 1 and 3 of `inputs`).
fn high() -> Condition {
    Condition::per_element(|b| Ok(b.require("magnitude")?.gt(0.5)?))
}

/// Element 1 only.
fn second() -> Condition {
    Condition::per_element(|b| Ok(Tensor::new(&[0u8, 1, 0, 0], b.device())?))
}

#[test]
fn conditional_parallel_sum_and_mean() {
    let (images, magnitudes) = inputs(40);
    let x = images.as_tensor();
    let m = per_image(magnitudes.as_tensor()).unwrap();
    let shifted = x.broadcast_add(&m).unwrap();
    let squared = x.sqr().unwrap();
    for merge in [ConditionalMerge::Sum, ConditionalMerge::Mean] {
        let op = ConditionalParallel::new(
            [
                (shift(), high()),
                (square(), second()),
                (sin(), Condition::never()),
                (decay(), Condition::batch(|_| Ok(false))),
            ],
            merge,
        )
        .unwrap();
        let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
        let out = out.require("image").unwrap();
        // Element 0, 2: no condition holds -> input. Element 3: shift only.
        // Element 1: shift and square, summed or averaged.
        let row = |t: &Tensor, i| t.get(i).unwrap();
        assert!(max_diff(&row(out, 0), &row(x, 0)) < 1e-15);
        assert!(max_diff(&row(out, 2), &row(x, 2)) < 1e-15);
        assert!(max_diff(&row(out, 3), &row(&shifted, 3)) < 1e-14);
        let both = (row(&shifted, 1) + row(&squared, 1)).unwrap();
        let expected = match merge {
            ConditionalMerge::Sum => both,
            ConditionalMerge::Mean => (both / 2.0).unwrap(),
        };
        assert!(max_diff(&row(out, 1), &expected) < 1e-14, "{merge:?}");
        let loss = || {
            project(
                op.apply_batch(&batch_of(&images, &magnitudes))?
                    .require("image")?,
                41,
            )
        };
        assert!(
            check_grads(&[&images, &magnitudes], loss) < GRAD_TOL,
            "{merge:?}"
        );
    }
}

#[test]
fn conditional_parallel_all_true_is_a_plain_merge_and_none_true_is_the_identity() {
    let (images, magnitudes) = inputs(42);
    let x = images.as_tensor();
    let op = ConditionalParallel::new(
        [
            (sin(), Condition::always()),
            (square(), Condition::always()),
        ],
        ConditionalMerge::Mean,
    )
    .unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    let expected = ((x.sin().unwrap() + x.sqr().unwrap()).unwrap() / 2.0).unwrap();
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-15);
    let op =
        ConditionalParallel::new([(sin(), Condition::never())], ConditionalMerge::Sum).unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    assert_eq!(out.require("image").unwrap().id(), x.id());
    assert!(matches!(
        ConditionalParallel::new([], ConditionalMerge::Sum),
        Err(ComposeError::NoOperators { .. })
    ));
}
