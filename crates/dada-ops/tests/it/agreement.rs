//! Fused CPU kernels vs the plain-candle reference path: values and gradients agree.
use candle::{DType, Device, Result, Tensor};
use dada_ops::testing::test_images;

use crate::common::*;

#[test]
fn fused_matches_reference_for_every_op() -> Result<()> {
    let dev = Device::Cpu;
    let shape = (4, 3, 9, 11);
    let images = test_images(shape, 1, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.15f32, 0.4, 0.72, 0.93], &dev)?;
    let r = upstream(shape, 2, DType::F32, &dev)?;
    for (i, op) in all_variants().iter().enumerate() {
        let params = params_for(op.as_ref(), 4, 10 + i as u64, &dev)?;
        let (fused, fgx, fgm) =
            value_and_grads(|x, m| op.apply(x, m, &params), &images, &magnitudes, &r)?;
        let (refr, rgx, rgm) = value_and_grads(
            |x, m| op.apply_reference(x, m, &params),
            &images,
            &magnitudes,
            &r,
        )?;
        let name = label(op.as_ref());
        assert_eq!(fused.dims(), [4, 3, 9, 11], "{name}");
        let dv = max_abs_diff(&fused, &refr)?;
        assert!(dv < 1e-5, "{name}: forward differs by {dv}");
        let dx = max_abs_diff(&fgx, &rgx)?;
        assert!(
            dx <= 1e-4 * (1.0 + max_abs(&rgx)?),
            "{name}: image grads differ by {dx}"
        );
        let dm = max_abs_diff(&fgm, &rgm)?;
        assert!(
            dm <= 1e-3 * (1.0 + max_abs(&rgm)?),
            "{name}: magnitude grads differ by {dm}: {fgm} vs {rgm}"
        );
    }
    Ok(())
}

#[test]
fn reference_runs_in_f64_and_matches_f32() -> Result<()> {
    let dev = Device::Cpu;
    let shape = (2, 3, 6, 7);
    let images = test_images(shape, 3, DType::F32, &dev)?;
    let magnitudes = Tensor::new(&[0.3f32, 0.8], &dev)?;
    for (i, op) in all_variants().iter().enumerate() {
        let params = params_for(op.as_ref(), 2, 40 + i as u64, &dev)?;
        let a = op.apply(&images, &magnitudes, &params)?;
        let b = op.apply_reference(
            &images.to_dtype(DType::F64)?,
            &magnitudes.to_dtype(DType::F64)?,
            &params,
        )?;
        assert_eq!(b.dtype(), DType::F64);
        let d = max_abs_diff(&a, &b)?;
        assert!(
            d < 1e-5,
            "{}: f32 fused vs f64 reference differ by {d}",
            label(op.as_ref())
        );
    }
    Ok(())
}

#[test]
fn single_image_and_bad_shapes() -> Result<()> {
    let dev = Device::Cpu;
    let image = test_images((1, 3, 5, 5), 4, DType::F32, &dev)?;
    let m = Tensor::new(&[0.7f32], &dev)?;
    for op in all_variants() {
        let params = params_for(op.as_ref(), 1, 5, &dev)?;
        assert_eq!(op.apply(&image, &m, &params)?.dims(), [1, 3, 5, 5]);
        let err = op
            .apply(&image.squeeze(0)?, &m, &params)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(op.name()) && err.contains("(B,C,H,W)"),
            "{err}"
        );
        let err = op
            .apply(&image, &Tensor::new(&[0.1f32, 0.2], &dev)?, &params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("magnitudes"), "{err}");
    }
    Ok(())
}

#[test]
fn a_kernel_reused_across_shapes_recomputes_its_tables() -> Result<()> {
    // The nearest table a forward pass keeps for its backward pass must not be reused for
    // another image shape with the same pixel count (32 x 2 and 8 x 8).
    use dada_ops::{ImageDims, OpSet};
    use rand::SeedableRng;
    let dev = Device::Cpu;
    let op = OpSet::by_name("rotate").unwrap();
    let params = op.sample(1, &mut rand::rngs::StdRng::seed_from_u64(5), &dev)?;
    let (tall, square) = (
        ImageDims { c: 1, h: 32, w: 2 },
        ImageDims { c: 1, h: 8, w: 8 },
    );
    let src: Vec<f32> = (0..64).map(|i| (i % 13) as f32 / 13.0).collect();
    let g: Vec<f32> = (0..64).map(|i| ((i % 7) as f32 - 3.0) / 7.0).collect();
    let reused = op.kernel(&params, (1, 1, 32, 2))?.unwrap();
    let mut out = vec![0f32; 64];
    reused.forward(0, 1.0, &src, tall, &mut out);
    let mut gx = vec![0f32; 64];
    let dm = reused.backward(0, 1.0, &src, square, &g, 1.0, &mut gx);
    let fresh = op.kernel(&params, (1, 1, 8, 8))?.unwrap();
    let mut gx_fresh = vec![0f32; 64];
    let dm_fresh = fresh.backward(0, 1.0, &src, square, &g, 1.0, &mut gx_fresh);
    assert_eq!(gx, gx_fresh);
    assert_eq!(dm, dm_fresh);
    Ok(())
}
