//! The plain-candle path of the affine warps (any device and dtype): PIL's nearest rule and
//! bilinear sampling built from tensor ops, with the surrogate or straight-through magnitude
//! gradient under nearest sampling.
use candle::{DType, Result, Tensor};

use super::AffineKind;
use crate::ops::ste;
use crate::{Estimator, Interpolation, OpParams};

/// The plain-candle affine warp (any device and dtype; coordinates in f64).
pub(super) fn affine_reference(
    kind: AffineKind,
    interpolation: Interpolation,
    estimator: Estimator,
    images: &Tensor,
    magnitudes: &Tensor,
    params: &OpParams,
) -> Result<Tensor> {
    let (b, _, h, w) = images.dims4()?;
    let dev = images.device();
    let signs = match &params.signs {
        Some(s) => s.to_dtype(DType::F64)?,
        None => Tensor::ones(b, DType::F64, dev)?,
    };
    let range = kind.range();
    let m = magnitudes.to_dtype(DType::F64)?;
    let p = (m.affine(range.high as f64 - range.low as f64, range.low as f64)? * signs)?;
    let a = kind.coeffs_tensor(&p, h, w)?;
    let xs: Vec<f64> = (0..h * w).map(|i| (i % w) as f64 + 0.5).collect();
    let ys: Vec<f64> = (0..h * w).map(|i| (i / w) as f64 + 0.5).collect();
    let xs = Tensor::from_vec(xs, (1, h * w), dev)?;
    let ys = Tensor::from_vec(ys, (1, h * w), dev)?;
    let col = |t: &Tensor| t.unsqueeze(1);
    let u = col(&a[0])?
        .broadcast_mul(&xs)?
        .broadcast_add(&col(&a[1])?.broadcast_mul(&ys)?)?
        .broadcast_add(&col(&a[2])?)?;
    let v = col(&a[3])?
        .broadcast_mul(&xs)?
        .broadcast_add(&col(&a[4])?.broadcast_mul(&ys)?)?
        .broadcast_add(&col(&a[5])?)?;
    match interpolation {
        Interpolation::Bilinear => bilinear_sample(images, &u, &v),
        Interpolation::Nearest => {
            let (xi, yi) = nearest_indices(&a, &u, &v, h, w)?;
            let out = nearest_sample(images, &xi, &yi)?;
            match estimator {
                Estimator::Surrogate => {
                    let s = bilinear_sample(&images.detach(), &u, &v)?;
                    out + (&s - s.detach())?
                }
                Estimator::StraightThrough => out.broadcast_add(&ste(magnitudes)?),
            }
        }
    }
}

/// 1 where `0 <= xi < w` and `0 <= yi < h` (integer-valued f64 `(B, HW)`), else 0.
fn in_bounds(xi: &Tensor, yi: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let f = |t: Tensor| t.to_dtype(DType::F64);
    let vx = (f(xi.ge(0f64)?)? * f(xi.lt(w as f64)?)?)?;
    let vy = (f(yi.ge(0f64)?)? * f(yi.lt(h as f64)?)?)?;
    vx * vy
}

/// `images (B,C,H,W)` gathered at integer pixel `(xi, yi)` (f64 `(B, HW)`), 0 outside.
fn gather_pixels(images: &Tensor, xi: &Tensor, yi: &Tensor) -> Result<(Tensor, Tensor)> {
    let (b, c, h, w) = images.dims4()?;
    let valid = in_bounds(xi, yi, h, w)?;
    let idx = (yi.clamp(0f64, (h - 1) as f64)?.affine(w as f64, 0.0)?
        + xi.clamp(0f64, (w - 1) as f64)?)?
    .to_dtype(DType::U32)?
    .unsqueeze(1)?
    .broadcast_as((b, c, h * w))?
    .contiguous()?;
    let vals = images.reshape((b, c, h * w))?.gather(&idx, 2)?;
    Ok((vals, valid.unsqueeze(1)?))
}

/// PIL's nearest source pixel `(xi, yi)` (integer-valued f64 `(B, HW)`) for affine
/// coefficients `a` (six `(B,)` f64) and float coordinates `(u, v)`: see `NearestMap`.
fn nearest_indices(
    a: &[Tensor; 6],
    u: &Tensor,
    v: &Tensor,
    h: usize,
    w: usize,
) -> Result<(Tensor, Tensor)> {
    let dev = u.device();
    let col = |t: &Tensor| t.unsqueeze(1);
    let fix = |t: &Tensor| t.affine(65536.0, 0.5)?.floor();
    let f = [
        fix(&a[0])?,
        fix(&a[1])?,
        fix(&((&a[2] + a[0].affine(0.5, 0.0)?)? + a[1].affine(0.5, 0.0)?)?)?,
        fix(&a[3])?,
        fix(&a[4])?,
        fix(&((&a[5] + a[3].affine(0.5, 0.0)?)? + a[4].affine(0.5, 0.0)?)?)?,
    ];
    let xs: Vec<f64> = (0..h * w).map(|i| (i % w) as f64).collect();
    let ys: Vec<f64> = (0..h * w).map(|i| (i / w) as f64).collect();
    let xs = Tensor::from_vec(xs, (1, h * w), dev)?;
    let ys = Tensor::from_vec(ys, (1, h * w), dev)?;
    let fixed_coord = |c: &Tensor, cy: &Tensor, cx: &Tensor| -> Result<Tensor> {
        col(c)?
            .broadcast_add(&ys.broadcast_mul(&col(cy)?)?)?
            .broadcast_add(&xs.broadcast_mul(&col(cx)?)?)?
            .affine(1.0 / 65536.0, 0.0)?
            .floor()
    };
    let xi_fixed = fixed_coord(&f[2], &f[1], &f[0])?;
    let yi_fixed = fixed_coord(&f[5], &f[4], &f[3])?;
    // Fixed point unless a pure scale/translation or a corner could overflow 16.16.
    let to_f = |t: Tensor| t.to_dtype(DType::F64);
    let mut use_fixed = to_f((a[1].abs()? + a[3].abs()?)?.gt(0f64)?)?;
    for (x, y) in [
        (0.0, 0.0),
        (w as f64, h as f64),
        (0.0, h as f64),
        (w as f64, 0.0),
    ] {
        for (c0, c1, c2) in [(&a[0], &a[1], &a[2]), (&a[3], &a[4], &a[5])] {
            let at = ((c0.affine(x, 0.0)? + c1.affine(y, 0.0)?)? + c2)?;
            use_fixed = (use_fixed * to_f(at.abs()?.lt(32768f64)?)?)?;
        }
    }
    let use_fixed = col(&use_fixed)?;
    let use_float = use_fixed.affine(-1.0, 1.0)?;
    let pick = |fixed: Tensor, float: Tensor| -> Result<Tensor> {
        fixed.broadcast_mul(&use_fixed)? + float.broadcast_mul(&use_float)?
    };
    Ok((pick(xi_fixed, u.floor()?)?, pick(yi_fixed, v.floor()?)?))
}

/// Nearest sampling at integer source pixels `(xi, yi)` (f64 `(B, HW)`), fill 0 outside.
fn nearest_sample(images: &Tensor, xi: &Tensor, yi: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (vals, valid) = gather_pixels(images, xi, yi)?;
    vals.broadcast_mul(&valid.to_dtype(images.dtype())?)?
        .reshape((b, c, h, w))
}

/// Bilinear sampling at input coordinates `(u, v)` with zero padding; differentiable in the
/// images and in `(u, v)`.
fn bilinear_sample(images: &Tensor, u: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (ux, vy) = (u.affine(1.0, -0.5)?, v.affine(1.0, -0.5)?);
    let (x0, y0) = (ux.floor()?, vy.floor()?);
    let (fx, fy) = ((&ux - &x0)?, (&vy - &y0)?);
    let mut acc: Option<Tensor> = None;
    for (dx, dy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
        let (vals, valid) = gather_pixels(images, &x0.affine(1.0, dx)?, &y0.affine(1.0, dy)?)?;
        let wx = if dx == 0.0 {
            fx.affine(-1.0, 1.0)?
        } else {
            fx.clone()
        };
        let wy = if dy == 0.0 {
            fy.affine(-1.0, 1.0)?
        } else {
            fy.clone()
        };
        let weight = (wx * wy)?
            .unsqueeze(1)?
            .broadcast_mul(&valid)?
            .to_dtype(images.dtype())?;
        let term = vals.broadcast_mul(&weight)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    acc.expect("four taps").reshape((b, c, h, w))
}
