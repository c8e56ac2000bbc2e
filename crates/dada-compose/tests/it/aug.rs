//! dada-ops augmentations as operators, and WeightedParallel's fused mixture path.
use candle::{DType, Device, Tensor, Var};
use dada_compose::{
    aug_operators, AugOperator, Batch, ComposeError, ElementOperator, Operator, ParamSource,
    WeightedParallel, WeightedParallelConfig,
};
use dada_ops::testing::check_grad;
use dada_ops::OpSet;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::{max_diff, uniform};

const B: usize = 4;

fn images(seed: u64, dtype: DType) -> Tensor {
    uniform(seed, &[B, 3, 8, 8], 0.0, 1.0)
        .to_dtype(dtype)
        .unwrap()
}

fn magnitudes(dtype: DType) -> Tensor {
    Tensor::new(&[0.2f64, 0.8, 0.35, 0.9], &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Softmax rows of seeded logits: `(B, n)` weights like a Gumbel-Softmax sample.
fn soft_weights(seed: u64, n: usize, dtype: DType) -> Tensor {
    let logits = uniform(seed, &[B, n], -2.0, 2.0);
    let e = logits.exp().unwrap();
    e.broadcast_div(&e.sum_keepdim(1).unwrap())
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn aug_operator_applies_the_op_with_its_params() {
    let set = OpSet::paper();
    let rotate = set.get(set.index_of("rotate").unwrap()).clone();
    let x = images(60, DType::F32);
    let m = magnitudes(DType::F32);
    let params = rotate
        .sample(B, &mut StdRng::seed_from_u64(1), &Device::Cpu)
        .unwrap();
    let op = ElementOperator::from_aug_op(rotate.clone(), ParamSource::Fixed(params.clone()));
    assert_eq!(op.name(), "rotate");
    assert!(op.as_aug_operator().is_some());
    let batch = Batch::new([("image", x.clone()), ("magnitude", m.clone())]).unwrap();
    let out = op.apply_batch(&batch).unwrap();
    let expected = rotate.apply(&x, &m, &params).unwrap();
    assert_eq!(max_diff(out.require("image").unwrap(), &expected), 0.0);
    assert_eq!(out.require("magnitude").unwrap().id(), m.id());

    // (B, n) magnitudes with a column; custom keys.
    let table = Tensor::stack(&[&m.zeros_like().unwrap(), &m], 1).unwrap();
    let op = AugOperator::new(rotate.clone(), ParamSource::Fixed(params.clone()))
        .with_keys("x", "mags")
        .with_magnitude_column(1);
    let out = op
        .apply_batch(&Batch::new([("x", x.clone()), ("mags", table.clone())]).unwrap())
        .unwrap();
    assert_eq!(max_diff(out.require("x").unwrap(), &expected), 0.0);

    let no_column = AugOperator::new(rotate.clone(), ParamSource::seeded(0)).with_keys("x", "mags");
    let err = no_column
        .apply_batch(&Batch::new([("x", x.clone()), ("mags", table)]).unwrap())
        .unwrap_err();
    assert!(matches!(err, ComposeError::MagnitudeShape { .. }), "{err}");
    let err = no_column
        .apply_batch(&Batch::new([("x", x.clone())]).unwrap())
        .unwrap_err();
    assert!(matches!(err, ComposeError::MissingKey { ref key, .. } if key == "mags"));
    // A magnitude-free op needs no magnitudes.
    let invert = AugOperator::new(OpSet::by_name("invert").unwrap(), ParamSource::seeded(0));
    let out = invert
        .apply_batch(&Batch::new([("image", x.clone())]).unwrap())
        .unwrap();
    assert!(max_diff(out.require("image").unwrap(), &(1.0 - &x).unwrap()) < 1e-6);
}

#[test]
fn seeded_params_are_reproducible() {
    let set = OpSet::paper();
    let batch = Batch::new([
        ("image", images(61, DType::F32)),
        ("magnitude", magnitudes(DType::F32)),
    ])
    .unwrap();
    let cutout = set.get(set.index_of("cutout").unwrap()).clone();
    let a = AugOperator::new(cutout.clone(), ParamSource::seeded(7));
    let b = AugOperator::new(cutout, ParamSource::seeded(7));
    let first = a.apply_batch(&batch).unwrap();
    assert_eq!(
        max_diff(
            first.require("image").unwrap(),
            b.apply_batch(&batch).unwrap().require("image").unwrap()
        ),
        0.0
    );
    // The next call draws new centres.
    assert!(
        max_diff(
            first.require("image").unwrap(),
            a.apply_batch(&batch).unwrap().require("image").unwrap()
        ) > 0.0
    );
}

/// The 15 paper ops with dynamic weights: the fused kernel and the generic sum of 15 outputs
/// agree in value and in every gradient (images, magnitudes, weights).
#[test]
fn fused_mixture_matches_the_generic_weighted_sum() {
    let set = OpSet::paper();
    let x = Var::from_tensor(&images(62, DType::F32)).unwrap();
    let m = Var::from_tensor(&magnitudes(DType::F32)).unwrap();
    let w = Var::from_tensor(&soft_weights(63, 15, DType::F32)).unwrap();
    let run = |fused: bool| {
        let config = WeightedParallelConfig::dynamic("op_weights").with_fused(fused);
        let op = WeightedParallel::new(aug_operators(&set, 5), config).unwrap();
        assert_eq!(op.uses_fused_mixture(), fused);
        let batch = Batch::new([
            ("image", x.as_tensor().clone()),
            ("magnitude", m.as_tensor().clone()),
            ("op_weights", w.as_tensor().clone()),
        ])
        .unwrap();
        let out = op.apply_batch(&batch).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["image", "magnitude"]);
        let image = out.require("image").unwrap().clone();
        let r = uniform(64, image.dims(), -1.0, 1.0)
            .to_dtype(DType::F32)
            .unwrap();
        let grads = (&image * r).unwrap().sum_all().unwrap().backward().unwrap();
        let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        (image, g(&x), g(&m), g(&w))
    };
    let fused = run(true);
    let generic = run(false);
    assert!(max_diff(&fused.0, &generic.0) < 1e-5, "values");
    assert!(max_diff(&fused.1, &generic.1) < 1e-4, "image gradient");
    assert!(max_diff(&fused.2, &generic.2) < 1e-3, "magnitude gradient");
    assert!(max_diff(&fused.3, &generic.3) < 1e-3, "weight gradient");
}

/// Smooth ops in f64 (reference path): the mixture's gradients w.r.t. images, magnitudes and
/// dynamic weights match central differences, fused and generic.
#[test]
fn mixture_gradients_match_finite_differences() {
    let names = ["brightness", "contrast", "color", "invert", "identity"];
    let set = OpSet::new(names.iter().map(|n| OpSet::by_name(n).unwrap()).collect());
    for fused in [true, false] {
        let config = WeightedParallelConfig::dynamic("op_weights").with_fused(fused);
        let op = WeightedParallel::new(aug_operators(&set, 9), config).unwrap();
        let f = |inputs: &[Tensor]| -> candle::Result<Tensor> {
            let batch = Batch::new([
                ("image", inputs[0].clone()),
                ("magnitude", inputs[1].clone()),
                ("op_weights", inputs[2].clone()),
            ])?;
            Ok(op.apply_batch(&batch)?.require("image")?.clone())
        };
        let inputs = [
            images(65, DType::F64),
            magnitudes(DType::F64),
            soft_weights(66, 5, DType::F64),
        ];
        let report = check_grad(f, &inputs, 1e-6).unwrap();
        assert!(
            report.within(1e-5),
            "fused={fused}: {:?}",
            report.max_rel_err
        );
        assert!(
            report
                .analytic
                .iter()
                .all(|g| g.iter().any(|v| v.abs() > 1e-3)),
            "vacuous check"
        );
    }
}

/// Learnable and static weights also take the fused path, with the same values and the same
/// gradient for the learnable `Var` as the generic sum.
#[test]
fn fused_mixture_with_learnable_and_static_weights() {
    let set = OpSet::paper();
    let x = images(67, DType::F32);
    let m = magnitudes(DType::F32);
    let batch = Batch::new([("image", x.clone()), ("magnitude", m)]).unwrap();
    let r = uniform(68, x.dims(), -1.0, 1.0)
        .to_dtype(DType::F32)
        .unwrap();
    let init = soft_weights(69, 15, DType::F32).get(0).unwrap();
    let run = |fused: bool| {
        let var = Var::from_tensor(&init).unwrap();
        let config = WeightedParallelConfig::learnable(var.clone()).with_fused(fused);
        let op = WeightedParallel::new(aug_operators(&set, 3), config).unwrap();
        assert_eq!(op.uses_fused_mixture(), fused);
        let out = op
            .apply_batch(&batch)
            .unwrap()
            .require("image")
            .unwrap()
            .clone();
        let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
        (out, grads.get(var.as_tensor()).unwrap().clone())
    };
    let (fused, generic) = (run(true), run(false));
    assert!(max_diff(&fused.0, &generic.0) < 1e-5);
    assert!(
        max_diff(&fused.1, &generic.1)
            < 1e-2
                * generic
                    .1
                    .abs()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64
    );

    let weights: Vec<f64> = init.to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let run_static = |fused: bool| {
        let config = WeightedParallelConfig::static_weights(weights.clone()).with_fused(fused);
        let op = WeightedParallel::new(aug_operators(&set, 3), config).unwrap();
        op.apply_batch(&batch)
            .unwrap()
            .require("image")
            .unwrap()
            .clone()
    };
    assert!(max_diff(&run_static(true), &run_static(false)) < 1e-5);
    assert!(max_diff(&run_static(true), &fused.0) < 1e-5);
}
