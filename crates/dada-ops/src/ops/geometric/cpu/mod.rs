//! The fused CPU kernels of the geometric ops: [`AffineKernel`] (the five affine warps, nearest
//! or bilinear, forward and backward on one image) and [`FlipKernel`], with the per-thread
//! scratch they share. Nearest tables are in `nearest`, bilinear taps and the magnitude
//! derivative in `bilinear`.
use std::cell::RefCell;
use std::sync::Mutex;

use crate::kernel::{ImageDims, ImageKernel};
use crate::ops::enhance::sum8;
use crate::ops::geometric::AffineKind;
use crate::{Estimator, Interpolation};

mod bilinear;
mod nearest;

use bilinear::{axis_dp, channel_dp, interleave3, magnitude_weights, quad_dp, taps4, TapField};
use nearest::{nearest_dot, nearest_table, NearestTable};

/// Per-thread buffers of the geometric kernels, reused from image to image: no allocation or
/// zeroing per image (the padded planes' borders stay zero; their interiors are overwritten).
#[derive(Default)]
struct Scratch {
    taps: TapField,
    /// Per-pixel weights of the magnitude derivative, `d sample / d p = sum_k v_k e_k`.
    e: [Vec<f32>; 4],
    /// Every channel of the current image, zero-padded (see [`Scratch::pad`]).
    pads: Vec<f32>,
    /// The image gradient of the current image in zero-padded planes (bilinear sampling).
    grads: Vec<f32>,
    /// A three-channel image, zero-padded, as one quad per padded pixel (see [`quad_dp`]).
    quad: Vec<f32>,
    quad_dims: Option<ImageDims>,
    /// The upstream gradient of a three-channel image as one quad per pixel.
    gquad: Vec<f32>,
    /// Whether `grads` is all zero: the backward pass zeroes what it touched as it copies the
    /// gradient out, instead of a memset of the whole buffer per image.
    grads_zero: bool,
    pads_dims: Option<ImageDims>,
}

impl Scratch {
    /// Copies every channel of `image` into the interior of its own zero-bordered padded plane
    /// in `self.pads`.
    fn pad(&mut self, image: &[f32], dims: ImageDims) {
        let (pw, pl) = (dims.w + 2, padded_len(dims));
        if self.pads_dims != Some(dims) {
            self.pads = vec![0f32; dims.c * pl];
            self.pads_dims = Some(dims);
        }
        for (plane, pad) in image
            .chunks_exact(dims.plane())
            .zip(self.pads.chunks_exact_mut(pl))
        {
            for (y, row) in plane.chunks_exact(dims.w).enumerate() {
                pad[(y + 1) * pw + 1..(y + 1) * pw + 1 + dims.w].copy_from_slice(row);
            }
        }
    }

    /// The quads of [`quad_dp`]: a three-channel `image` zero-padded into `self.quad` and
    /// `grad_out` into `self.gquad`.
    fn fill_quads(&mut self, image: &[f32], grad_out: &[f32], dims: ImageDims) {
        debug_assert_eq!(dims.c, 3);
        let (plane, pw) = (dims.plane(), dims.w + 2);
        if self.quad_dims != Some(dims) {
            self.quad = vec![0f32; 4 * padded_len(dims)];
            self.quad_dims = Some(dims);
        }
        interleave3(image, plane, dims.w, &mut self.quad, |y| (y + 1) * pw + 1);
        self.gquad.resize(4 * plane, 0.0);
        interleave3(grad_out, plane, dims.w, &mut self.gquad, |y| y * dims.w);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` on this thread's [`Scratch`].
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// Whether images of `h x w` fit the geometric kernels' index arithmetic: padded-plane indices
/// in `i32` (so every image up to about 46,000 x 46,000 pixels); larger ones take the
/// plain-candle path.
pub(super) fn fits_kernel_indices(h: usize, w: usize) -> bool {
    (h + 2)
        .checked_mul(w + 2)
        .is_some_and(|n| n < i32::MAX as usize)
}

/// Elements of one zero-padded plane, `(h + 2) (w + 2)`.
fn padded_len(dims: ImageDims) -> usize {
    (dims.h + 2) * (dims.w + 2)
}
pub(super) struct AffineKernel {
    kind: AffineKind,
    interpolation: Interpolation,
    estimator: Estimator,
    signs: Vec<f32>,
    /// Nearest tables built by `forward`, per image, keyed by the magnitude's bits: the
    /// backward pass of the same image takes its table instead of building it again.
    tables: Vec<Mutex<Option<(u32, NearestTable)>>>,
}

impl AffineKernel {
    pub(super) fn new(
        kind: AffineKind,
        interpolation: Interpolation,
        estimator: Estimator,
        signs: Vec<f32>,
    ) -> Self {
        let tables = if interpolation == Interpolation::Nearest {
            (0..signs.len()).map(|_| Mutex::new(None)).collect()
        } else {
            Vec::new()
        };
        Self {
            kind,
            interpolation,
            estimator,
            signs,
            tables,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_impl(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        out_dot: Option<&mut f32>,
    ) -> f32 {
        let sign = self.signs[index];
        let range = self.kind.range();
        let p = range.param_f64(magnitude, sign);
        let (a, da) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        let bilinear = self.interpolation == Interpolation::Bilinear;
        let table = (!bilinear).then(|| self.take_table(index, magnitude, a, dims));
        let pl = padded_len(dims);
        with_scratch(|scratch| {
            // nearest sampling scatters straight into grad_src (and reads the output's dot from
            // src); bilinear sampling goes through zero-padded planes (the border dropped)
            if bilinear {
                if !scratch.grads_zero {
                    scratch.grads.clear();
                }
                scratch.grads.resize(dims.c * pl, 0.0);
                scratch.grads_zero = false;
            }
            // the straight-through estimate is d out / d m = 1 itself, not a derivative in p
            let straight_through = !bilinear && self.estimator == Estimator::StraightThrough;
            // rotate and shear_y under nearest sampling, three channels: the surrogate reads
            // channel-interleaved quads instead of padded planes
            let quads = !bilinear
                && !straight_through
                && dims.c == 3
                && matches!(self.kind, AffineKind::Rotate | AffineKind::ShearY);
            if quads {
                scratch.fill_quads(src, grad_out, dims);
            } else if !straight_through {
                scratch.pad(src, dims);
            }
            if let Some(table) = &table {
                let planes = grad_out.chunks_exact(plane);
                match out_dot {
                    None if dims.c == 3 => table.scatter::<3>(grad_out, scale, dims, grad_src),
                    None => planes
                        .zip(grad_src.chunks_exact_mut(plane))
                        .for_each(|(g, gs)| table.scatter::<1>(g, scale, dims, gs)),
                    // with the weight gradient of a mixture, sum(grad_out * out), out gathered by
                    // the table, in the same pass as the scatter
                    Some(d) => {
                        *d = planes
                            .zip(grad_src.chunks_exact_mut(plane))
                            .zip(src.chunks_exact(plane))
                            .map(|((g, gs), x)| table.scatter_dot(x, g, scale, dims, gs))
                            .sum();
                    }
                }
            }
            let axis = if bilinear || straight_through {
                None
            } else {
                let da = da.map(|v| v as f32);
                axis_dp(self.kind, &a, da, &scratch.pads, dims, grad_out)
            };
            let dp = if straight_through {
                sum8(grad_out.len(), |j| grad_out[j]) as f64
            } else if let Some(dp) = axis {
                dp
            } else {
                // d out / d p = d out / d u * d u / d p + d out / d v * d v / d p (bilinear
                // derivative; the surrogate under nearest sampling)
                let Scratch {
                    taps,
                    e,
                    pads,
                    grads,
                    quad,
                    gquad,
                    ..
                } = &mut *scratch;
                let da32 = da.map(|v| v as f32);
                if bilinear {
                    // the image gradient needs the fractions too
                    taps.fill(&a, dims);
                    for e in e.iter_mut() {
                        e.resize(plane, 0.0);
                    }
                    magnitude_weights(taps, da32, dims, e);
                } else {
                    taps.fill_weights(&a, da32, dims, e);
                }
                let pw = taps.pw;
                let idx = &taps.idx[..plane];
                let mut dp = 0f64;
                if dims.c == 3 && !bilinear {
                    // (`quads` holds here: rotate or shear_y, nearest, three channels)
                    dp += if self.kind == AffineKind::ShearY {
                        quad_dp::<true>(quad, pw, idx, e, gquad)
                    } else {
                        quad_dp::<false>(quad, pw, idx, e, gquad)
                    } as f64;
                }
                for c in (0..dims.c).filter(|_| dims.c != 3 || bilinear) {
                    let g = &grad_out[c * plane..(c + 1) * plane];
                    dp += channel_dp(&pads[c * pl..(c + 1) * pl], pw, idx, e, g) as f64;
                    if bilinear {
                        let gp = &mut grads[c * pl..(c + 1) * pl];
                        for o in 0..plane {
                            let (i, fx, fy) = (idx[o] as usize, taps.fx[o], taps.fy[o]);
                            let sg = scale * g[o] * taps.mask[o];
                            let (gy0, gy1) = (sg * (1.0 - fy), sg * fy);
                            gp[i] += gy0 * (1.0 - fx);
                            gp[i + 1] += gy0 * fx;
                            gp[i + pw] += gy1 * (1.0 - fx);
                            gp[i + pw + 1] += gy1 * fx;
                        }
                    }
                }
                dp
            };
            // the interior goes to grad_src and is zeroed in the same pass, then the border
            // (where fill pixels and edge taps scattered) is zeroed: grads is all zero again
            let pw = dims.w + 2;
            if bilinear {
                for (gp, gs) in scratch
                    .grads
                    .chunks_exact_mut(pl)
                    .zip(grad_src.chunks_exact_mut(plane))
                {
                    for (y, row) in gs.chunks_exact_mut(dims.w).enumerate() {
                        let from = &mut gp[(y + 1) * pw + 1..(y + 1) * pw + 1 + dims.w];
                        row.iter_mut().zip(from.iter_mut()).for_each(|(d, s)| {
                            *d += *s;
                            *s = 0.0;
                        });
                        gp[(y + 1) * pw] = 0.0;
                        gp[(y + 1) * pw + pw - 1] = 0.0;
                    }
                    gp[..pw].fill(0.0);
                    gp[pl - pw..].fill(0.0);
                }
                scratch.grads_zero = true;
            }
            if straight_through {
                dp as f32
            } else {
                (dp * range.dparam_dm(sign) as f64) as f32
            }
        })
    }

    /// The nearest table of image `index` at `magnitude` (the one `forward` built, if any).
    fn take_table(
        &self,
        index: usize,
        magnitude: f32,
        a: [f64; 6],
        dims: ImageDims,
    ) -> NearestTable {
        let cached = self
            .tables
            .get(index)
            .and_then(|slot| slot.lock().ok()?.take());
        match cached {
            Some((bits, table))
                if bits == magnitude.to_bits() && table.dims == (dims.h, dims.w) =>
            {
                table
            }
            _ => nearest_table(a, dims),
        }
    }
}

impl ImageKernel for AffineKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let p = self.kind.range().param_f64(magnitude, self.signs[index]);
        let (a, _) = self.kind.coeffs(p, dims.h, dims.w);
        let plane = dims.plane();
        match self.interpolation {
            Interpolation::Nearest => {
                let table = nearest_table(a, dims);
                if dims.c == 3 {
                    table.gather::<3>(src, dims, dst);
                } else {
                    for (s, d) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
                        table.gather::<1>(s, dims, d);
                    }
                }
                if let Some(slot) = self.tables.get(index) {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some((magnitude.to_bits(), table));
                    }
                }
            }
            Interpolation::Bilinear => with_scratch(|scratch| {
                scratch.taps.fill(&a, dims);
                scratch.pad(src, dims);
                let (taps, pads) = (&scratch.taps, &scratch.pads);
                let (pw, pl) = (taps.pw, padded_len(dims));
                for (pad, d) in pads.chunks_exact(pl).zip(dst.chunks_exact_mut(plane)) {
                    for (o, d) in d.iter_mut().enumerate() {
                        // SAFETY: a TapField index of this size into one padded plane
                        let v = unsafe { taps4(pad, taps.idx[o] as usize, pw) };
                        let (fx, fy, m) = (taps.fx[o], taps.fy[o], taps.mask[o]);
                        let (wy0, wy1) = ((1.0 - fy) * m, fy * m);
                        *d = v[0] * ((1.0 - fx) * wy0)
                            + v[1] * (fx * wy0)
                            + v[2] * ((1.0 - fx) * wy1)
                            + v[3] * (fx * wy1);
                    }
                }
            }),
        }
    }

    fn recompute_output(&self) -> bool {
        true
    }

    fn output_dot(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        tmp: &mut [f32],
    ) -> f32 {
        if self.interpolation == Interpolation::Bilinear {
            self.forward(index, magnitude, src, dims, tmp);
            return crate::kernel::dot(tmp, grad_out);
        }
        // the nearest table the forward kept (left for the backward pass), or a new one
        let peeked = self.tables.get(index).and_then(|slot| {
            let slot = slot.lock().ok()?;
            let (bits, table) = slot.as_ref()?;
            (*bits == magnitude.to_bits() && table.dims == (dims.h, dims.w))
                .then(|| nearest_dot(table, src, dims, grad_out))
        });
        peeked.unwrap_or_else(|| {
            let p = self.kind.range().param_f64(magnitude, self.signs[index]);
            let (a, _) = self.kind.coeffs(p, dims.h, dims.w);
            nearest_dot(&nearest_table(a, dims), src, dims, grad_out)
        })
    }

    fn backward(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        self.backward_impl(index, magnitude, src, dims, grad_out, scale, grad_src, None)
    }

    fn backward_with_dot(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
        tmp: &mut [f32],
    ) -> (f32, f32) {
        if self.interpolation == Interpolation::Bilinear {
            let out_dot = self.output_dot(index, magnitude, src, dims, grad_out, tmp);
            return (
                self.backward(index, magnitude, src, dims, grad_out, scale, grad_src),
                out_dot,
            );
        }
        let mut out_dot = 0.0;
        let dm = self.backward_impl(
            index,
            magnitude,
            src,
            dims,
            grad_out,
            scale,
            grad_src,
            Some(&mut out_dot),
        );
        (dm, out_dot)
    }
}

pub(super) struct FlipKernel;

impl ImageKernel for FlipKernel {
    fn forward(&self, _: usize, _: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        for (d, s) in dst.chunks_exact_mut(dims.w).zip(src.chunks_exact(dims.w)) {
            for (dv, sv) in d.iter_mut().zip(s.iter().rev()) {
                *dv = *sv;
            }
        }
    }

    fn recompute_output(&self) -> bool {
        true
    }

    fn backward(
        &self,
        _: usize,
        _: f32,
        _: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        for (gs, g) in grad_src
            .chunks_exact_mut(dims.w)
            .zip(grad_out.chunks_exact(dims.w))
        {
            for (gv, go) in gs.iter_mut().zip(g.iter().rev()) {
                *gv += scale * go;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform values in [-1, 1) from a fixed LCG.
    pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }
    /// Image and magnitude gradients of `kernel` on one image of `dims`.
    fn grads(kernel: &AffineKernel, dims: ImageDims, m: f32, seed: u64) -> (Vec<f32>, f32) {
        let x: Vec<f32> = values(dims.len(), seed)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let g = values(dims.len(), seed + 1);
        let mut gx = vec![0f32; dims.len()];
        let mut out = vec![0f32; dims.len()];
        kernel.forward(0, m, &x, dims, &mut out);
        let gm = kernel.backward(0, m, &x, dims, &g, 1.0, &mut gx);
        (gx, gm)
    }

    #[test]
    fn reused_scratch_gives_the_gradients_of_a_fresh_one() {
        // bilinear taps and nearest fill scatter into the padded border; a later image of
        // another shape must not see any of it (its interior overlaps the old border)
        for interpolation in [Interpolation::Bilinear, Interpolation::Nearest] {
            for kind in [
                AffineKind::Rotate,
                AffineKind::ShearY,
                AffineKind::TranslateX,
            ] {
                let kernel =
                    AffineKernel::new(kind, interpolation, Estimator::Surrogate, vec![1.0]);
                let a = ImageDims { c: 3, h: 9, w: 11 };
                for b in [
                    ImageDims { c: 2, h: 12, w: 8 },
                    ImageDims { c: 3, h: 5, w: 4 },
                    ImageDims { c: 1, h: 20, w: 2 },
                    ImageDims { c: 1, h: 30, w: 3 },
                    a,
                ] {
                    let fresh =
                        std::thread::scope(|s| s.spawn(|| grads(&kernel, b, 0.9, 5)).join());
                    let fresh = fresh.expect("fresh thread");
                    for m in [0.95, 0.05] {
                        grads(&kernel, a, m, 3);
                        let again = grads(&kernel, b, 0.9, 5);
                        assert_eq!(again, fresh, "{kind:?} {interpolation:?} {b:?}");
                    }
                }
            }
        }
    }
}
