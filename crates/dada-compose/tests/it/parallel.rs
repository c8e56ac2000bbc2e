//! Parallel with every merge mode, and EnsembleMean / Sum / Max / Min: values and gradients.
use candle::Tensor;
use dada_compose::{
    ComposeError, ElementOperator, EnsembleMax, EnsembleMean, EnsembleMin, EnsembleSum, MergeMode,
    Operator, Parallel,
};

use crate::common::*;

/// The outputs of `[shift, square, decay]` on the test batch, computed directly.
fn branch_outputs(x: &Tensor, m: &Tensor) -> [Tensor; 3] {
    let m = per_image(m).unwrap();
    [
        x.broadcast_add(&m).unwrap(),
        x.sqr().unwrap(),
        x.neg().unwrap().exp().unwrap().broadcast_mul(&m).unwrap(),
    ]
}

#[test]
fn parallel_merge_modes_values_and_gradients() {
    let (images, magnitudes) = inputs(20);
    let [a, b, c] = branch_outputs(images.as_tensor(), magnitudes.as_tensor());
    let modes = [
        (MergeMode::Stack, Tensor::stack(&[&a, &b, &c], 1).unwrap()),
        (
            MergeMode::Concat { axis: 1 },
            Tensor::cat(&[&a, &b, &c], 1).unwrap(),
        ),
        (
            MergeMode::Concat { axis: 3 },
            Tensor::cat(&[&a, &b, &c], 3).unwrap(),
        ),
        (MergeMode::Sum, ((&a + &b).unwrap() + &c).unwrap()),
        (
            MergeMode::Mean,
            (((&a + &b).unwrap() + &c).unwrap() / 3.0).unwrap(),
        ),
        (MergeMode::Max, a.maximum(&b).unwrap().maximum(&c).unwrap()),
        (MergeMode::Min, a.minimum(&b).unwrap().minimum(&c).unwrap()),
    ];
    for (seed, (mode, expected)) in modes.into_iter().enumerate() {
        let op = Parallel::new([shift(), square(), decay()], mode.clone()).unwrap();
        let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
        assert!(
            max_diff(out.require("image").unwrap(), &expected) < 1e-14,
            "{mode:?}"
        );
        // No child changed the magnitudes: carried over, not merged.
        assert_eq!(
            out.require("magnitude").unwrap().id(),
            magnitudes.as_tensor().id(),
            "{mode:?}"
        );
        let loss = || {
            project(
                op.apply_batch(&batch_of(&images, &magnitudes))?
                    .require("image")?,
                seed as u64,
            )
        };
        let err = check_grads(&[&images, &magnitudes], loss);
        assert!(err < GRAD_TOL, "{mode:?}: gradient error {err}");
    }
}

#[test]
fn parallel_named_keeps_every_output() {
    let (images, magnitudes) = inputs(21);
    let [a, b, _] = branch_outputs(images.as_tensor(), magnitudes.as_tensor());
    let op = Parallel::new([shift(), square()], MergeMode::Named).unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    assert_eq!(
        out.keys().collect::<Vec<_>>(),
        ["magnitude", "shift/image", "square/image"]
    );
    assert!(max_diff(out.require("shift/image").unwrap(), &a) < 1e-15);
    assert!(max_diff(out.require("square/image").unwrap(), &b) < 1e-15);
    let loss = || {
        let out = op.apply_batch(&batch_of(&images, &magnitudes))?;
        Ok((project(out.require("shift/image")?, 1)? + project(out.require("square/image")?, 2)?)?)
    };
    assert!(check_grads(&[&images, &magnitudes], loss) < GRAD_TOL);
    assert!(matches!(
        Parallel::new([sin(), sin()], MergeMode::Named),
        Err(ComposeError::DuplicateName { ref name, .. }) if name == "sin"
    ));
}

#[test]
fn parallel_reports_mismatched_children() {
    let (images, magnitudes) = inputs(22);
    let batch = batch_of(&images, &magnitudes);
    let crop = ElementOperator::map("crop", "image", |x| x.narrow(3, 0, 2)).arc();
    let op = Parallel::new([sin(), crop.clone()], MergeMode::Sum).unwrap();
    let err = op.apply_batch(&batch).unwrap_err();
    assert!(
        matches!(err, ComposeError::ShapeMismatch { child: 1, ref got, .. } if got == &[4, 2, 3, 2])
    );
    // Concatenation along the cropped axis is fine; along another it is not.
    let concat = Parallel::new([sin(), crop.clone()], MergeMode::Concat { axis: 3 }).unwrap();
    assert_eq!(
        concat
            .apply_batch(&batch)
            .unwrap()
            .require("image")
            .unwrap()
            .dims(),
        [4, 2, 3, 5]
    );
    let concat = Parallel::new([sin(), crop], MergeMode::Concat { axis: 1 }).unwrap();
    assert!(matches!(
        concat.apply_batch(&batch),
        Err(ComposeError::ShapeMismatch { .. })
    ));
    let concat = Parallel::new([sin()], MergeMode::Concat { axis: 4 }).unwrap();
    assert!(matches!(
        concat.apply_batch(&batch),
        Err(ComposeError::InvalidAxis { axis: 4, .. })
    ));

    let extra = ElementOperator::batched("extra", |b| {
        b.with("label", b.require("magnitude")?.clone())
    })
    .arc();
    let op = Parallel::new([sin(), extra], MergeMode::Mean).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::KeyMismatch { child: 1, .. })
    ));
    assert!(matches!(
        Parallel::new([], MergeMode::Sum),
        Err(ComposeError::NoOperators { .. })
    ));
}

#[test]
fn ensembles_values_and_gradients() {
    let (images, magnitudes) = inputs(23);
    let [a, b, c] = branch_outputs(images.as_tensor(), magnitudes.as_tensor());
    let ensembles: [(Box<dyn Operator>, Tensor); 4] = [
        (
            Box::new(EnsembleMean::new([shift(), square(), decay()]).unwrap()),
            (((&a + &b).unwrap() + &c).unwrap() / 3.0).unwrap(),
        ),
        (
            Box::new(EnsembleSum::new([shift(), square(), decay()]).unwrap()),
            ((&a + &b).unwrap() + &c).unwrap(),
        ),
        (
            Box::new(EnsembleMax::new([shift(), square(), decay()]).unwrap()),
            a.maximum(&b).unwrap().maximum(&c).unwrap(),
        ),
        (
            Box::new(EnsembleMin::new([shift(), square(), decay()]).unwrap()),
            a.minimum(&b).unwrap().minimum(&c).unwrap(),
        ),
    ];
    for (seed, (op, expected)) in ensembles.iter().enumerate() {
        let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
        assert!(
            max_diff(out.require("image").unwrap(), expected) < 1e-14,
            "{}",
            op.name()
        );
        let loss = || {
            project(
                op.apply_batch(&batch_of(&images, &magnitudes))?
                    .require("image")?,
                seed as u64,
            )
        };
        let err = check_grads(&[&images, &magnitudes], loss);
        assert!(err < GRAD_TOL, "{}: gradient error {err}", op.name());
    }
    assert_eq!(ensembles[2].0.name(), "ensemble_max");
    assert!(matches!(
        EnsembleMin::new([]),
        Err(ComposeError::NoOperators { .. })
    ));
}
