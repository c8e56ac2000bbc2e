//! Branching: a router sends each element to one branch.
use candle::{DType, Tensor};
use dada_compose::{Branching, ComposeError, ElementOperator, Operator};

use crate::common::*;

#[test]
fn branching_routes_each_element_with_gradients() {
    let (images, magnitudes) = inputs(50);
    let routes = Tensor::new(&[2u32, 0, 2, 1], &candle::Device::Cpu).unwrap();
    let op = Branching::new([sin(), square(), shift()], {
        let routes = routes.clone();
        move |batch| {
            batch.require("image")?;
            Ok(routes.clone())
        }
    })
    .unwrap();
    assert_eq!(
        op.route(&batch_of(&images, &magnitudes)).unwrap(),
        [2, 0, 2, 1]
    );
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    let x = images.as_tensor();
    let shifted = x
        .broadcast_add(&per_image(magnitudes.as_tensor()).unwrap())
        .unwrap();
    let expected = [
        shifted.get(0),
        x.sin().unwrap().get(1),
        shifted.get(2),
        x.sqr().unwrap().get(3),
    ];
    for (i, e) in expected.into_iter().enumerate() {
        assert!(
            max_diff(&out.require("image").unwrap().get(i).unwrap(), &e.unwrap()) < 1e-15,
            "element {i}"
        );
    }
    // Magnitudes pass through every branch and come back in order.
    assert!(max_diff(out.require("magnitude").unwrap(), magnitudes.as_tensor()) == 0.0);
    let loss = || {
        project(
            op.apply_batch(&batch_of(&images, &magnitudes))?
                .require("image")?,
            51,
        )
    };
    assert!(check_grads(&[&images, &magnitudes], loss) < GRAD_TOL);
}

#[test]
fn branching_router_from_the_data() {
    let (images, magnitudes) = inputs(52);
    // Magnitude > 0.5 -> branch 1 (square), else branch 0 (sin); all to one branch also works.
    let op = Branching::new([sin(), square()], |b| {
        Ok(b.require("magnitude")?.gt(0.5)?)
    })
    .unwrap();
    let out = op.apply_batch(&batch_of(&images, &magnitudes)).unwrap();
    let x = images.as_tensor();
    for (i, m) in magnitudes
        .as_tensor()
        .to_vec1::<f64>()
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let xi = x.get(i).unwrap();
        let e = if m > 0.5 {
            xi.sqr().unwrap()
        } else {
            xi.sin().unwrap()
        };
        assert!(max_diff(&out.require("image").unwrap().get(i).unwrap(), &e) < 1e-15);
    }
    let all_one = Branching::new([sin(), square()], |b| {
        Ok(Tensor::ones(b.batch_size(), DType::I64, b.device())?)
    })
    .unwrap();
    let out = all_one
        .apply_batch(&batch_of(&images, &magnitudes))
        .unwrap();
    assert!(max_diff(out.require("image").unwrap(), &x.sqr().unwrap()) < 1e-15);
}

#[test]
fn branching_errors() {
    let (images, magnitudes) = inputs(53);
    let batch = batch_of(&images, &magnitudes);
    let fixed = |v: &'static [i64]| move |b: &dada_compose::Batch| Ok(Tensor::new(v, b.device())?);
    let op = Branching::new([sin(), square()], fixed(&[0, 1, 2, 0])).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::RouterIndexOutOfRange {
            element: 2,
            index: 2,
            n_branches: 2,
            ..
        })
    ));
    let op = Branching::new([sin(), square()], fixed(&[0, -1, 1, 0])).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::RouterIndexOutOfRange { index: -1, .. })
    ));
    let op = Branching::new([sin(), square()], fixed(&[0, 1])).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::PerElementShape { .. })
    ));
    let crop = ElementOperator::map("crop", "image", |x| x.narrow(3, 0, 1)).arc();
    let op = Branching::new([sin(), crop], fixed(&[0, 1, 0, 1])).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::ShapeMismatch { child: 1, .. })
    ));
    let extra = ElementOperator::batched("extra", |b| {
        b.with("label", b.require("magnitude")?.clone())
    })
    .arc();
    let op = Branching::new([sin(), extra], fixed(&[0, 1, 0, 1])).unwrap();
    assert!(matches!(
        op.apply_batch(&batch),
        Err(ComposeError::KeyMismatch { child: 1, .. })
    ));
    assert!(matches!(
        Branching::new([], fixed(&[])),
        Err(ComposeError::NoOperators { .. })
    ));
}
