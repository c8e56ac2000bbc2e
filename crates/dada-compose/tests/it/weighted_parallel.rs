//! WeightedParallel: static, learnable and dynamic weights; values, gradients, errors.
use candle::{DType, Device, Tensor, Var};
use dada_compose::{
    ComposeError, ElementOperator, Operator, WeightMode, WeightedParallel, WeightedParallelConfig,
};

use crate::common::*;

/// `[shift, square, decay]` outputs computed directly.
fn outputs(x: &Tensor, m: &Tensor) -> [Tensor; 3] {
    let m = per_image(m).unwrap();
    [
        x.broadcast_add(&m).unwrap(),
        x.sqr().unwrap(),
        x.neg().unwrap().exp().unwrap().broadcast_mul(&m).unwrap(),
    ]
}

/// `sum_i w[:, i] * outs[i]` for `(B, 3)` weights.
fn mix(outs: &[Tensor; 3], w: &Tensor) -> Tensor {
    let mut acc = outs[0].zeros_like().unwrap();
    for (i, o) in outs.iter().enumerate() {
        let wi = w.narrow(1, i, 1).unwrap().reshape((4, 1, 1, 1)).unwrap();
        acc = (acc + o.broadcast_mul(&wi).unwrap()).unwrap();
    }
    acc
}

#[test]
fn static_weights() {
    let (images, magnitudes) = inputs(30);
    let weights = [0.5, -0.25, 2.0];
    let op = WeightedParallel::new(
        [shift(), square(), decay()],
        WeightedParallelConfig::static_weights(weights),
    )
    .unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    let w = Tensor::new(&weights, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
        .repeat((4, 1))
        .unwrap();
    let expected = mix(&outputs(images.as_tensor(), magnitudes.as_tensor()), &w);
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-14);
    assert_eq!(
        out.require("magnitude").unwrap().id(),
        magnitudes.as_tensor().id()
    );
    assert!(op.weights_var().is_none());
    let loss = || {
        project(
            op.apply_batch(&batch_of(&images, &magnitudes))?
                .require("image")?,
            31,
        )
    };
    assert!(check_grads(&[&images, &magnitudes], loss) < GRAD_TOL);
}

#[test]
fn learnable_weights_receive_gradients() {
    let (images, magnitudes) = inputs(32);
    let config = WeightedParallelConfig::learnable_uniform(3, DType::F64, &Device::Cpu).unwrap();
    let op = WeightedParallel::new([shift(), square(), decay()], config).unwrap();
    let var = op.weights_var().unwrap().clone();
    assert_eq!(var.to_vec1::<f64>().unwrap(), [1.0 / 3.0; 3]);
    var.set(&Tensor::new(&[0.3f64, 1.2, -0.7], &Device::Cpu).unwrap())
        .unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    let w = var
        .as_tensor()
        .unsqueeze(0)
        .unwrap()
        .repeat((4, 1))
        .unwrap();
    let expected = mix(&outputs(images.as_tensor(), magnitudes.as_tensor()), &w);
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-14);
    let loss = || {
        project(
            op.apply_batch(&batch_of(&images, &magnitudes))?
                .require("image")?,
            33,
        )
    };
    assert!(check_grads(&[&var, &images, &magnitudes], loss) < GRAD_TOL);
    // d loss / d w_i = sum(R * out_i): the weight gradient alone is non-zero and checked above.
    let grads = loss().unwrap().backward().unwrap();
    assert!(grads.get(var.as_tensor()).is_some());
}

/// A child that fails if it is handed the weight key: the key must be stripped.
fn no_weights_seen() -> std::sync::Arc<dyn Operator> {
    ElementOperator::batched("no_weights_seen", |batch| {
        if batch.get("op_weights").is_some() {
            return Err(candle::Error::msg("child saw op_weights").into());
        }
        let x = batch.require("image")?;
        batch.with("image", x.sin()?)
    })
    .arc()
}

#[test]
fn dynamic_weights_are_read_per_call_and_stripped() {
    let (images, magnitudes) = inputs(34);
    let weights = Var::from_tensor(&uniform(35, &[4, 3], -1.0, 1.0)).unwrap();
    let op = WeightedParallel::new(
        [shift(), no_weights_seen(), decay()],
        WeightedParallelConfig::dynamic("op_weights"),
    )
    .unwrap();
    assert!(matches!(op.mode(), WeightMode::Dynamic(key) if key == "op_weights"));
    let batch = |w: &Var| {
        batch_of(&images, &magnitudes)
            .with("op_weights", w.as_tensor().clone())
            .unwrap()
    };
    let out = op.apply_batch(&batch(&weights)).unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), ["image", "magnitude"]);
    let [a, _, c] = outputs(images.as_tensor(), magnitudes.as_tensor());
    let expected = mix(
        &[a, images.as_tensor().sin().unwrap(), c],
        weights.as_tensor(),
    );
    assert!(max_diff(out.require("image").unwrap(), &expected) < 1e-14);
    let loss = || project(op.apply_batch(&batch(&weights))?.require("image")?, 36);
    assert!(check_grads(&[&weights, &images, &magnitudes], loss) < GRAD_TOL);
}

#[test]
fn weight_mode_errors() {
    let ops = || [shift(), square(), decay()];
    let var = Var::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let both = WeightedParallelConfig {
        weight_key: Some("op_weights".into()),
        ..WeightedParallelConfig::learnable(var)
    };
    assert!(matches!(
        WeightedParallel::new(ops(), both),
        Err(ComposeError::ConflictingWeightModes { ref modes, .. }) if modes == &["learnable_weights", "weight_key"]
    ));
    let all = WeightedParallelConfig {
        weights: Some(vec![1.0; 3]),
        ..WeightedParallelConfig::dynamic("op_weights")
    };
    assert!(matches!(
        WeightedParallel::new(ops(), all),
        Err(ComposeError::ConflictingWeightModes { .. })
    ));
    assert!(matches!(
        WeightedParallel::new(ops(), WeightedParallelConfig::default()),
        Err(ComposeError::NoWeightMode { .. })
    ));
    assert!(matches!(
        WeightedParallel::new(ops(), WeightedParallelConfig::static_weights([0.5, 0.5])),
        Err(ComposeError::WrongNumberOfWeights {
            expected: 3,
            got: 2,
            ..
        })
    ));
    let var = Var::zeros(4, DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        WeightedParallel::new(ops(), WeightedParallelConfig::learnable(var)),
        Err(ComposeError::WrongNumberOfWeights {
            expected: 3,
            got: 4,
            ..
        })
    ));
    assert!(matches!(
        WeightedParallel::new([], WeightedParallelConfig::static_weights([])),
        Err(ComposeError::NoOperators { .. })
    ));

    let op = WeightedParallel::new(ops(), WeightedParallelConfig::dynamic("op_weights")).unwrap();
    let (images, magnitudes) = inputs(37);
    let err = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap_err();
    assert!(matches!(err, ComposeError::MissingKey { ref key, .. } if key == "op_weights"));
    assert!(err.to_string().contains("weighted_parallel"), "{err}");
    let wrong = batch_of(&images, &magnitudes)
        .with("op_weights", uniform(1, &[4, 2], 0.0, 1.0))
        .unwrap();
    assert!(matches!(
        op.apply_batch(&wrong),
        Err(ComposeError::WeightShape { b_sz: 4, n_ops: 3, ref dims, .. }) if dims == &[4, 2]
    ));
    // Children whose outputs cannot be summed.
    let crop = ElementOperator::map("crop", "image", |x| x.narrow(2, 0, 1)).arc();
    let op = WeightedParallel::new(
        [sin(), crop],
        WeightedParallelConfig::static_weights([0.5, 0.5]),
    )
    .unwrap();
    assert!(matches!(
        op.apply_batch(&batch_of(&images, &magnitudes)),
        Err(ComposeError::ShapeMismatch { child: 1, .. })
    ));
    // A call-time error converts into a candle error with the same message.
    let candle_err: candle::Error = op
        .apply_batch(&batch_of(&images, &magnitudes))
        .unwrap_err()
        .into();
    assert!(candle_err.to_string().contains("shape"), "{candle_err}");
}
