//! Finite-difference checks of every op's image and magnitude gradients, and checks of the
//! documented estimators (straight-through, surrogates).
use std::sync::Arc;

use candle::{DType, Device, Result, Tensor};
use dada_ops::testing::{check_grad, smooth_images, test_images};
use dada_ops::*;

use crate::common::*;

/// Ops whose image gradient is straight-through (identity) rather than exact.
fn image_grad_is_straight_through(op: &dyn AugOp) -> bool {
    matches!(op.name(), "posterize" | "equalize")
}

/// Tolerance on the largest relative error of f64 central differences (eps 1e-6).
const F64_TOL: f64 = 1e-4;

#[test]
fn exact_gradients_match_finite_differences_f64() -> Result<()> {
    let dev = Device::Cpu;
    // Four images: magnitudes 0.2 .. 0.9, signs +, -, +, - (see `params_for`).
    let images = test_images((4, 3, 5, 6), 7, DType::F64, &dev)?;
    let magnitudes = Tensor::new(&[0.2f64, 0.45, 0.7, 0.9], &dev)?;
    for (i, op) in all_variants().iter().enumerate() {
        let params = params_for(op.as_ref(), 4, 100 + i as u64, &dev)?;
        let report = check_grad(
            |t| op.apply_reference(&t[0], &t[1], &params),
            &[images.clone(), magnitudes.clone()],
            1e-6,
        )?;
        let name = label(op.as_ref());
        if !image_grad_is_straight_through(op.as_ref()) {
            assert!(
                report.max_rel_err[0] < F64_TOL,
                "{name}: image grad rel err {}",
                report.max_rel_err[0]
            );
        }
        match op.magnitude_grad() {
            MagnitudeGrad::Exact => {
                assert!(
                    report.max_rel_err[1] < F64_TOL,
                    "{name}: magnitude grad rel err {}",
                    report.max_rel_err[1]
                );
                assert!(
                    report.analytic[1].iter().any(|g| g.abs() > 1e-6),
                    "{name}: magnitude grad all zero"
                );
            }
            MagnitudeGrad::None => {
                assert!(
                    report.analytic[1].iter().all(|&g| g == 0.0),
                    "{name}: magnitude-free op has a gradient"
                );
                assert!(
                    report.numeric[1].iter().all(|&g| g == 0.0),
                    "{name}: output depends on magnitude"
                );
            }
            MagnitudeGrad::StraightThrough | MagnitudeGrad::Surrogate => {}
        }
    }
    Ok(())
}

#[test]
fn fused_exact_magnitude_gradients_match_finite_differences_f32() -> Result<()> {
    let dev = Device::Cpu;
    let images = smooth_images((4, 3, 8, 8), 8, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.2f32, 0.45, 0.7, 0.9], &dev)?;
    for (i, op) in all_variants().iter().enumerate() {
        if op.magnitude_grad() != MagnitudeGrad::Exact {
            continue;
        }
        let params = params_for(op.as_ref(), 4, 200 + i as u64, &dev)?;
        let report = check_grad(
            |t| op.apply(&images, &t[0], &params),
            std::slice::from_ref(&magnitudes),
            5e-4,
        )?;
        // f32 evaluation with eps 5e-4: about a percent of rounding noise and clip crossings.
        assert!(
            report.max_rel_err[0] < 3e-2,
            "{}: rel err {}",
            label(op.as_ref()),
            report.max_rel_err[0]
        );
    }
    Ok(())
}

#[test]
fn straight_through_image_and_magnitude_gradients_pass_upstream() -> Result<()> {
    let dev = Device::Cpu;
    let shape = (3, 3, 6, 6);
    let images = test_images(shape, 9, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.1f32, 0.5, 0.8], &dev)?;
    let r = upstream(shape, 10, DType::F32, &dev)?;
    let r_sum = r.sum((1, 2, 3))?;
    for op in all_variants() {
        let params = params_for(op.as_ref(), 3, 11, &dev)?;
        let (_, gx, gm) =
            value_and_grads(|x, m| op.apply(x, m, &params), &images, &magnitudes, &r)?;
        if image_grad_is_straight_through(op.as_ref()) {
            assert!(
                max_abs_diff(&gx, &r)? < 1e-6,
                "{}: image grad is not identity",
                op.name()
            );
        }
        if op.magnitude_grad() == MagnitudeGrad::StraightThrough {
            // d out / d m = 1 per element: d L / d m = sum(r) per image.
            assert!(
                max_abs_diff(&gm, &r_sum)? < 1e-4,
                "{}: {gm} vs {r_sum}",
                op.name()
            );
        }
    }
    Ok(())
}

#[test]
fn surrogates_are_the_documented_smooth_ops() -> Result<()> {
    let dev = Device::Cpu;
    let shape = (4, 3, 10, 12);
    let images = smooth_images(shape, 12, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.15f32, 0.35, 0.65, 0.85], &dev)?;
    let r = upstream(shape, 13, DType::F32, &dev)?;
    // Nearest sampling: the bilinear op's exact magnitude gradient at the same coordinates.
    let pairs: Vec<(Arc<dyn AugOp>, Arc<dyn AugOp>)> = vec![
        (
            Arc::new(ShearX::new(Interpolation::Nearest)),
            Arc::new(ShearX::new(Interpolation::Bilinear)),
        ),
        (
            Arc::new(ShearY::new(Interpolation::Nearest)),
            Arc::new(ShearY::new(Interpolation::Bilinear)),
        ),
        (
            Arc::new(TranslateX::new(Interpolation::Nearest)),
            Arc::new(TranslateX::new(Interpolation::Bilinear)),
        ),
        (
            Arc::new(TranslateY::new(Interpolation::Nearest)),
            Arc::new(TranslateY::new(Interpolation::Bilinear)),
        ),
        (
            Arc::new(Rotate::new(Interpolation::Nearest)),
            Arc::new(Rotate::new(Interpolation::Bilinear)),
        ),
        // Hard cutout: the soft (area-coverage) edge's exact gradient.
        (
            Arc::new(Cutout::new(CutoutEdge::Hard)),
            Arc::new(Cutout::new(CutoutEdge::Soft)),
        ),
    ];
    for (hard, smooth) in pairs {
        let params = params_for(hard.as_ref(), 4, 14, &dev)?;
        let (_, _, g_hard) =
            value_and_grads(|x, m| hard.apply(x, m, &params), &images, &magnitudes, &r)?;
        let (_, _, g_smooth) =
            value_and_grads(|x, m| smooth.apply(x, m, &params), &images, &magnitudes, &r)?;
        assert!(
            max_abs_diff(&g_hard, &g_smooth)? < 1e-4 * (1.0 + max_abs(&g_smooth)?),
            "{}",
            hard.name()
        );
    }

    // Solarize: x + sigmoid((255 x - 256 m) / 8) (1 - 2 x), differentiated numerically.
    let x64 = images.to_dtype(DType::F64)?;
    let r64 = r.to_dtype(DType::F64)?;
    let solarize_surrogate = |m: f64, b: usize| -> Result<f64> {
        let x = x64.get(b)?;
        let s = (x.affine(255.0 / 8.0, -256.0 * m / 8.0)?.neg()?.exp()? + 1.0)?.recip()?;
        ((&x + (s * x.affine(-2.0, 1.0)?)?)? * r64.get(b)?)?
            .sum_all()?
            .to_scalar::<f64>()
    };
    // Posterize: x - (2^(8 - b) - 1) / 510 with b = 4 + 4 m.
    let posterize_surrogate = |m: f64, b: usize| -> Result<f64> {
        let loss = (2f64.powf(4.0 - 4.0 * m) - 1.0) / 510.0;
        (x64.get(b)?.affine(1.0, -loss)? * r64.get(b)?)?
            .sum_all()?
            .to_scalar::<f64>()
    };
    let mags: Vec<f32> = magnitudes.to_vec1()?;
    for (op, surrogate) in [
        (
            Arc::new(Solarize::default()) as Arc<dyn AugOp>,
            &solarize_surrogate as &dyn Fn(f64, usize) -> Result<f64>,
        ),
        (Arc::new(Posterize::default()), &posterize_surrogate),
    ] {
        let (_, _, gm) = value_and_grads(
            |x, m| op.apply(x, m, &OpParams::none()),
            &images,
            &magnitudes,
            &r,
        )?;
        let gm: Vec<f32> = gm.to_vec1()?;
        for (b, &m) in mags.iter().enumerate() {
            let m = m as f64;
            let numeric = (surrogate(m + 1e-5, b)? - surrogate(m - 1e-5, b)?) / 2e-5;
            let err = (gm[b] as f64 - numeric).abs() / numeric.abs().max(1e-3);
            assert!(
                err < 1e-2,
                "{}: image {b}: {} vs {numeric}",
                op.name(),
                gm[b]
            );
        }
    }
    Ok(())
}

/// Cosine similarity of two vectors.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn estimators_point_the_way_the_real_op_moves() -> Result<()> {
    let dev = Device::Cpu;
    let b = 8;
    let shape = (b, 3, 16, 16);
    let images = smooth_images(shape, 15, DType::F32, &dev)?;
    let mags: Vec<f32> = (0..b).map(|i| 0.12 + 0.1 * i as f32).collect();
    let magnitudes = Tensor::new(mags.as_slice(), &dev)?;
    // Large-step differences of the real (piecewise constant) op vs the surrogate gradient.
    let cases: Vec<(Arc<dyn AugOp>, f32, Tensor)> = vec![
        (
            Arc::new(ShearX::default()),
            0.05,
            smooth_images(shape, 16, DType::F32, &dev)?,
        ),
        (
            Arc::new(Rotate::default()),
            0.05,
            smooth_images(shape, 17, DType::F32, &dev)?,
        ),
        (
            Arc::new(TranslateY::default()),
            0.05,
            smooth_images(shape, 18, DType::F32, &dev)?,
        ),
        (
            Arc::new(Solarize::default()),
            0.1,
            Tensor::ones(shape, DType::F32, &dev)?,
        ),
        (
            Arc::new(Posterize::default()),
            0.25,
            Tensor::ones(shape, DType::F32, &dev)?,
        ),
    ];
    for (op, step, r) in cases {
        let params = params_for(op.as_ref(), b, 19, &dev)?;
        let (_, _, gm) = value_and_grads(|x, m| op.apply(x, m, &params), &images, &magnitudes, &r)?;
        let loss = |delta: f32| -> Result<Vec<f32>> {
            let m = (&magnitudes + delta as f64)?;
            (op.apply(&images, &m, &params)? * &r)?
                .sum((1, 2, 3))?
                .to_vec1::<f32>()
        };
        let (up, down) = (loss(step)?, loss(-step)?);
        let numeric: Vec<f32> = up
            .iter()
            .zip(&down)
            .map(|(u, d)| (u - d) / (2.0 * step))
            .collect();
        let gm: Vec<f32> = gm.to_vec1()?;
        let cos = cosine(&gm, &numeric);
        assert!(
            cos > 0.8,
            "{}: cosine {cos}: {gm:?} vs {numeric:?}",
            op.name()
        );
        if op.name() == "posterize" {
            // More bits never darkens: both are positive for every image.
            assert!(
                gm.iter().zip(&numeric).all(|(g, n)| *g > 0.0 && *n > 0.0),
                "{gm:?} {numeric:?}"
            );
        }
    }
    Ok(())
}
