//! Bilinear sampling in the CPU kernels: the taps of every output pixel in zero-padded planes
//! ([`TapField`]) and the magnitude derivative of the warps through them (per pixel, per row for
//! the one-axis warps, on channel-interleaved quads for three channels).
use super::padded_len;
use crate::kernel::ImageDims;
use crate::ops::enhance::sum8;
use crate::ops::geometric::AffineKind;

/// Bilinear taps of every output pixel, as indices into a source plane padded with a zero
/// border of one pixel (`(h + 2) x (w + 2)`): taps outside the image read the border, so
/// sampling and its derivatives are branch-free. Pixel centres are at `i + 0.5`; a pixel
/// whose four taps all lie outside the image points at index 0 with `mask = 0`.
#[derive(Default)]
pub(super) struct TapField {
    /// Padded index of the tap `(x0, y0)`; the others are `+1`, `+pw`, `+pw + 1`.
    pub(super) idx: Vec<u32>,
    pub(super) fx: Vec<f32>,
    pub(super) fy: Vec<f32>,
    pub(super) mask: Vec<f32>,
    /// Padded row width, `w + 2`.
    pub(super) pw: usize,
}

/// The taps of up to 64 consecutive pixels of one row (see [`tap_blocks`]).
struct TapBlock {
    n: usize,
    idx: [u32; 64],
    fx: [f32; 64],
    fy: [f32; 64],
    mask: [f32; 64],
}

/// Walks the bilinear taps of the warp `a` on images of `dims` in blocks of up to 64 pixels of
/// a row, calling `f(y, x0, block)` for each: [`TapField`]'s definition (padded index of the tap
/// `(x0, y0)`, fractions, inside mask; index 0 and mask 0 outside), shared by
/// [`TapField::fill`] and [`TapField::fill_weights`].
#[inline(always)]
fn tap_blocks(a: &[f64; 6], dims: ImageDims, mut f: impl FnMut(usize, usize, &TapBlock)) {
    let (h, w, pw) = (dims.h, dims.w, dims.w + 2);
    let mut b = TapBlock {
        n: 0,
        idx: [0; 64],
        fx: [0.0; 64],
        fy: [0.0; 64],
        mask: [0.0; 64],
    };
    let (mut us, mut vs) = ([0f32; 64], [0f32; 64]);
    let (wi, hi, pwi) = (w as i32, h as i32, pw as i32);
    let (wf, hf) = (w as f32, h as f32);
    for y in 0..h {
        let yy = y as f64 + 0.5;
        let (bu, bv) = (a[1] * yy, a[4] * yy);
        for x0 in (0..w).step_by(64) {
            let nx = (w - x0).min(64);
            // the same arithmetic as PIL's and the reference path's: a0 X + a1 Y + a2 in f64
            // (through i32, which converts to floats in one instruction: `fits_kernel_indices`)
            for x in 0..nx {
                let xx = (x0 + x) as i32 as f64 + 0.5;
                us[x] = (a[0] * xx + bu + a[2]) as f32 - 0.5;
                vs[x] = (a[3] * xx + bv + a[5]) as f32 - 0.5;
            }
            b.n = nx;
            for x in 0..nx {
                let (u, v) = (us[x], vs[x]);
                let (fu, fv) = (u.floor(), v.floor());
                // clamped into [-2, size], where -2 and size are both outside (NaN -> -2)
                let (xc, yc) = (fu.max(-2.0).min(wf), fv.max(-2.0).min(hf));
                // SAFETY: finite and within i32 after the clamp (`fits_kernel_indices`)
                let (xi, yi) =
                    unsafe { (xc.to_int_unchecked::<i32>(), yc.to_int_unchecked::<i32>()) };
                let inside = (xi >= -1) & (xi < wi) & (yi >= -1) & (yi < hi);
                // (outside, the fractions of an infinite coordinate would be NaN)
                b.fx[x] = if inside { u - fu } else { 0.0 };
                b.fy[x] = if inside { v - fv } else { 0.0 };
                b.mask[x] = if inside { 1.0 } else { 0.0 };
                b.idx[x] = if inside {
                    ((yi + 1) * pwi + xi + 1) as u32
                } else {
                    0
                };
            }
            f(y, x0, &b);
        }
    }
}

impl TapField {
    /// Overwrites the field with the taps of the warp `a` on images of `dims` (buffers are
    /// reused: every element is written).
    pub(super) fn fill(&mut self, a: &[f64; 6], dims: ImageDims) {
        let (w, n) = (dims.w, dims.plane());
        for v in [&mut self.fx, &mut self.fy, &mut self.mask] {
            v.resize(n, 0.0);
        }
        self.idx.resize(n, 0);
        self.pw = w + 2;
        let (idx, fx, fy, mask) = (&mut self.idx, &mut self.fx, &mut self.fy, &mut self.mask);
        tap_blocks(a, dims, |y, x0, b| {
            let r = y * w + x0..y * w + x0 + b.n;
            idx[r.clone()].copy_from_slice(&b.idx[..b.n]);
            fx[r.clone()].copy_from_slice(&b.fx[..b.n]);
            fy[r.clone()].copy_from_slice(&b.fy[..b.n]);
            mask[r].copy_from_slice(&b.mask[..b.n]);
        });
    }

    /// [`TapField::fill`] and [`magnitude_weights`] in one pass, for when only the tap indices
    /// and the derivative's weights are needed (nearest sampling's surrogate): writes `idx` and
    /// `e`, not `fx`, `fy`, `mask`. The same arithmetic, so the same values.
    pub(super) fn fill_weights(
        &mut self,
        a: &[f64; 6],
        da: [f32; 6],
        dims: ImageDims,
        e: &mut [Vec<f32>; 4],
    ) {
        let (w, n) = (dims.w, dims.plane());
        self.idx.resize(n, 0);
        self.pw = w + 2;
        for v in e.iter_mut() {
            v.resize(n, 0.0);
        }
        let [e0, e1, e2, e3] = e;
        let idx = &mut self.idx;
        tap_blocks(a, dims, |y, x0, b| {
            let yy = y as f32 + 0.5;
            let (du_row, dv_row) = (da[1] * yy + da[2], da[4] * yy + da[5]);
            let r = y * w + x0..y * w + x0 + b.n;
            idx[r.clone()].copy_from_slice(&b.idx[..b.n]);
            let (e0, e1, e2, e3) = (
                &mut e0[r.clone()],
                &mut e1[r.clone()],
                &mut e2[r.clone()],
                &mut e3[r],
            );
            for x in 0..b.n {
                let xx = (x0 + x) as i32 as f32 + 0.5;
                let m = b.mask[x];
                let (du, dv) = ((da[0] * xx + du_row) * m, (da[3] * xx + dv_row) * m);
                [e0[x], e1[x], e2[x], e3[x]] = tap_weights(b.fx[x], b.fy[x], du, dv);
            }
        });
    }
}
/// The weights `e_k` of the four taps `(v00, v01, v10, v11)` in `d sample / d p = sum_k v_k e_k`,
/// for fractions `(fx, fy)` and coordinate derivatives `du = d u / d p`, `dv = d v / d p`.
#[inline(always)]
fn tap_weights(fx: f32, fy: f32, du: f32, dv: f32) -> [f32; 4] {
    [
        -(1.0 - fy) * du - (1.0 - fx) * dv,
        (1.0 - fy) * du - fx * dv,
        -fy * du + (1.0 - fx) * dv,
        fy * du + fx * dv,
    ]
}

/// The per-pixel weights `e_k` of the bilinear derivative of the warp w.r.t. its parameter `p`
/// (`da` = d coefficients / d p): `d sample / d p = sum_k v_k e_k` with `v_k` the four taps
/// `(v00, v01, v10, v11)`, from `d/du = (1 - fy)(v01 - v00) + fy (v11 - v10)` and
/// `d/dv = (1 - fx)(v10 - v00) + fx (v11 - v01)`, each times the coordinate's derivative.
#[inline(never)]
pub(super) fn magnitude_weights(
    taps: &TapField,
    da: [f32; 6],
    dims: ImageDims,
    e: &mut [Vec<f32>; 4],
) {
    let [e0, e1, e2, e3] = e;
    for y in 0..dims.h {
        let yy = y as f32 + 0.5;
        let (du_row, dv_row) = (da[1] * yy + da[2], da[4] * yy + da[5]);
        let r = y * dims.w..(y + 1) * dims.w;
        let (fx, fy, m) = (
            &taps.fx[r.clone()],
            &taps.fy[r.clone()],
            &taps.mask[r.clone()],
        );
        let (e0, e1, e2, e3) = (
            &mut e0[r.clone()],
            &mut e1[r.clone()],
            &mut e2[r.clone()],
            &mut e3[r],
        );
        for x in 0..dims.w {
            let xx = x as i32 as f32 + 0.5;
            let (du, dv) = ((da[0] * xx + du_row) * m[x], (da[3] * xx + dv_row) * m[x]);
            [e0[x], e1[x], e2[x], e3[x]] = tap_weights(fx[x], fy[x], du, dv);
        }
    }
}

/// `sum_o g[o] sum_k v_k(o) e_k(o)` over one padded plane: one channel's share of
/// `d out / d p` against the upstream gradient `g`.
#[inline(never)]
pub(super) fn channel_dp(pad: &[f32], pw: usize, idx: &[u32], e: &[Vec<f32>; 4], g: &[f32]) -> f32 {
    let n = g.len();
    let (idx, e0, e1, e2, e3) = (&idx[..n], &e[0][..n], &e[1][..n], &e[2][..n], &e[3][..n]);
    sum8(n, |o| {
        // SAFETY: a TapField index of this size into one padded plane
        let v = unsafe { taps4(pad, *idx.get_unchecked(o) as usize, pw) };
        g[o] * (v[0] * e0[o] + v[1] * e1[o] + v[2] * e2[o] + v[3] * e3[o])
    })
}

/// `sum_o g[o] d out[o] / d p` of the bilinear derivative, summed over channels, for the warps
/// that move pixels along one axis: shear_x and translate_x (`u = x + t(y)`, `v = y`) and
/// translate_y (`u = x`, `v = y + t`). Their taps in a row are consecutive and their fractions
/// constant, so each row is a difference of two contiguous slices instead of four gathers per
/// pixel. The same values as [`TapField`] + [`magnitude_weights`] + [`channel_dp`] (the same
/// coordinate arithmetic); `None` for the other kinds.
pub(super) fn axis_dp(
    kind: AffineKind,
    a: &[f64; 6],
    da: [f32; 6],
    pads: &[f32],
    dims: ImageDims,
    grad_out: &[f32],
) -> Option<f64> {
    let (h, w, pw) = (dims.h, dims.w, dims.w + 2);
    let (plane, pl) = (dims.plane(), padded_len(dims));
    let mut acc = [0f32; 8];
    // every channel's row y, pixels x0..x1: k * sum_x g[x] (pad[q1 + x] - pad[q0 + x])
    let add_row =
        |acc: &mut [f32; 8], k: f32, y: usize, x0: usize, x1: usize, q0: usize, q1: usize| {
            for c in 0..dims.c {
                let g = &grad_out[c * plane + y * w + x0..c * plane + y * w + x1];
                let pad = &pads[c * pl..(c + 1) * pl];
                acc_diff(acc, k, g, &pad[q0..q0 + g.len()], &pad[q1..q1 + g.len()]);
            }
        };
    match kind {
        AffineKind::ShearX | AffineKind::TranslateX => {
            // v = y exactly, fy = 0: d out / d p = du (v01 - v00), du constant over a row
            let (wi, wf) = (w as i32, w as f32);
            for y in 0..h {
                let yy = y as f64 + 0.5;
                let bu = a[1] * yy;
                // TapField's coordinate: u(x) = f32(a0 X + bu + a2) - 0.5, X = x + 0.5
                let u = |x: usize| (a[0] * (x as f64 + 0.5) + bu + a[2]) as f32 - 0.5;
                let du = da[1] * (y as f32 + 0.5) + da[2];
                let row_base = (y + 1) * pw + 1;
                match uniform_offset(a[0], bu + a[2], w, &u) {
                    Some(k) => {
                        // inside where xi = x + k lies in [-1, w - 1]
                        let x0 = (-1 - k).clamp(0, w as i64) as usize;
                        let x1 = (w as i64 - k).clamp(x0 as i64, w as i64) as usize;
                        if x0 < x1 {
                            let q = (row_base as i64 + x0 as i64 + k) as usize;
                            add_row(&mut acc, du, y, x0, x1, q, q + 1);
                        }
                    }
                    None => {
                        for x in 0..w {
                            let fu = u(x).floor();
                            // SAFETY: finite and within i32 after the clamp
                            // (`fits_kernel_indices`)
                            let xi = unsafe { fu.max(-2.0).min(wf).to_int_unchecked::<i32>() };
                            if xi >= -1 && xi < wi {
                                let i = (row_base as i64 + xi as i64) as usize;
                                add_row(&mut acc, du, y, x, x + 1, i, i + 1);
                            }
                        }
                    }
                }
            }
        }
        AffineKind::TranslateY => {
            // u = x exactly, fx = 0: d out / d p = dv (v10 - v00), dv constant
            let (hi, hf) = (h as i32, h as f32);
            let dv = da[5];
            for y in 0..h {
                let bv = a[4] * (y as f64 + 0.5);
                // TapField's `a3 X + bv + a5` with a3 = 0
                let v = (bv + a[5]) as f32 - 0.5;
                // SAFETY: finite and within i32 after the clamp (`fits_kernel_indices`)
                let yi = unsafe { v.floor().max(-2.0).min(hf).to_int_unchecked::<i32>() };
                if yi >= -1 && yi < hi {
                    let q = (yi + 1) as usize * pw + 1;
                    add_row(&mut acc, dv, y, 0, w, q, q + pw);
                }
            }
        }
        AffineKind::ShearY | AffineKind::Rotate => return None,
    }
    Some(acc.iter().map(|&v| v as f64).sum())
}

/// `acc[i mod 8] += k g[i] (p1[i] - p0[i])` (vectorizes; equal lengths).
#[inline(always)]
fn acc_diff(acc: &mut [f32; 8], k: f32, g: &[f32], p0: &[f32], p1: &[f32]) {
    let n = g.len();
    let (p0, p1) = (&p0[..n], &p1[..n]);
    let (cg, c0, c1) = (g.chunks_exact(8), p0.chunks_exact(8), p1.chunks_exact(8));
    let (rg, r0, r1) = (cg.remainder(), c0.remainder(), c1.remainder());
    for ((g, p0), p1) in cg.zip(c0).zip(c1) {
        for l in 0..8 {
            acc[l] += k * g[l] * (p1[l] - p0[l]);
        }
    }
    for (l, ((g, p0), p1)) in rg.iter().zip(r0).zip(r1).enumerate() {
        acc[l] += k * g * (p1 - p0);
    }
}

/// The row's constant `floor(u(x)) - x` when TapField's f32 coordinates `u(x)` (`a0 = 1`,
/// `u(x) = f32(x + 0.5 + c) - 0.5`) floor to consecutive pixels across the whole row, else
/// `None`. Without rounding the offset is `floor(c)`; f32 rounding can move a coordinate by at
/// most half an ulp, so when `c` lies farther than that from an integer the offset is certain,
/// and otherwise every pixel is checked.
fn uniform_offset(a0: f64, c: f64, w: usize, u: &impl Fn(usize) -> f32) -> Option<i64> {
    if a0 != 1.0 || !c.is_finite() || c.abs() > 1e6 {
        return None;
    }
    let frac = c - c.floor();
    // generous: a few f32 ulps at the row's largest coordinate, plus the f64 sum's error
    let margin = 4.0 * f32::EPSILON as f64 * (c.abs() + w as f64 + 1.0);
    if frac > margin && frac < 1.0 - margin {
        return Some(c.floor() as i64);
    }
    let k0 = (u(0).floor() - 0.0) as i64;
    (0..w)
        .all(|x| u(x).floor() as i64 - x as i64 == k0)
        .then_some(k0)
}

/// [`channel_dp`] of three channels in one pass, on channel-interleaved planes (see
/// [`Scratch::fill_quads`](super::Scratch::fill_quads)): `quad` holds the zero-padded image as
/// one `[c0, c1, c2, 0]` quad per padded pixel and `gquad` the upstream gradient as one quad per
/// pixel. A pixel's taps `(x0, y0)` and `(x0 + 1, y0)` are then eight consecutive floats, and
/// so are the two below: two vector loads instead of twelve scalar ones. With `VERTICAL`, the
/// warp keeps every pixel's column (`u = x`, so `fx = 0` and `du = 0`: shear_y), the weights of
/// the right-hand taps are zero, and only the two left-hand quads are read.
#[inline(never)]
pub(super) fn quad_dp<const VERTICAL: bool>(
    quad: &[f32],
    pw: usize,
    idx: &[u32],
    e: &[Vec<f32>; 4],
    gquad: &[f32],
) -> f32 {
    let n = idx.len();
    let (e0, e1, e2, e3) = (&e[0][..n], &e[1][..n], &e[2][..n], &e[3][..n]);
    let gquad = &gquad[..4 * n];
    let mut acc = [0f32; 8];
    for o in 0..n {
        let i = idx[o] as usize;
        // a TapField index is at most h pw + w, so the quads up to `i + pw + 1` are inside
        // the padded plane of (h + 2) pw quads
        assert!(4 * (i + pw) + 8 <= quad.len());
        // SAFETY: checked just above
        let (t, b): (&[f32; 8], &[f32; 8]) = unsafe {
            (
                &*(quad.as_ptr().add(4 * i) as *const [f32; 8]),
                &*(quad.as_ptr().add(4 * (i + pw)) as *const [f32; 8]),
            )
        };
        let g = &gquad[4 * o..4 * o + 4];
        if VERTICAL {
            let (w0, w2) = (e0[o], e2[o]);
            for l in 0..4 {
                acc[l] += (t[l] * w0 + b[l] * w2) * g[l];
            }
            continue;
        }
        let (w0, w1, w2, w3) = (e0[o], e1[o], e2[o], e3[o]);
        for l in 0..4 {
            acc[l] += (t[l] * w0 + b[l] * w2) * g[l];
            acc[4 + l] += (t[4 + l] * w1 + b[4 + l] * w3) * g[l];
        }
    }
    acc.iter().sum()
}

/// Writes three planes (`planes`, `n` pixels of `w`-wide rows each) as one `[c0, c1, c2, 0]`
/// quad per pixel into `quad`, row `y` starting at quad `row_start(y)`.
pub(super) fn interleave3(
    planes: &[f32],
    n: usize,
    w: usize,
    quad: &mut [f32],
    row_start: impl Fn(usize) -> usize,
) {
    let (p0, p1, p2) = (&planes[..n], &planes[n..2 * n], &planes[2 * n..3 * n]);
    let rows = p0
        .chunks_exact(w)
        .zip(p1.chunks_exact(w))
        .zip(p2.chunks_exact(w));
    for (y, ((r0, r1), r2)) in rows.enumerate() {
        let q = &mut quad[4 * row_start(y)..4 * (row_start(y) + w)];
        for (x, d) in q.chunks_exact_mut(4).enumerate() {
            d[0] = r0[x];
            d[1] = r1[x];
            d[2] = r2[x];
            d[3] = 0.0;
        }
    }
}

/// The four taps of a [`TapField`] pixel in one padded plane: `(v00, v01, v10, v11)` (`v_yx`).
///
/// # Safety
/// `i` must come from a `TapField` of this image size and `pad` be one padded plane of it:
/// `i <= h pw + w`, so `i + pw + 1 < (h + 2) pw`.
#[inline(always)]
pub(super) unsafe fn taps4(pad: &[f32], i: usize, pw: usize) -> [f32; 4] {
    debug_assert!(i + pw + 1 < pad.len());
    [
        *pad.get_unchecked(i),
        *pad.get_unchecked(i + 1),
        *pad.get_unchecked(i + pw),
        *pad.get_unchecked(i + pw + 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::geometric::cpu::tests::values;
    use crate::ops::geometric::cpu::Scratch;

    /// The general path: TapField, magnitude_weights and channel_dp.
    fn tap_field_dp(a: &[f64; 6], da: [f32; 6], pads: &[f32], dims: ImageDims, g: &[f32]) -> f64 {
        let mut taps = TapField::default();
        taps.fill(a, dims);
        let mut e: [Vec<f32>; 4] = Default::default();
        for e in &mut e {
            e.resize(dims.plane(), 0.0);
        }
        magnitude_weights(&taps, da, dims, &mut e);
        let (plane, pl) = (dims.plane(), padded_len(dims));
        (0..dims.c)
            .map(|c| {
                let (pad, g) = (&pads[c * pl..(c + 1) * pl], &g[c * plane..(c + 1) * plane]);
                channel_dp(pad, taps.pw, &taps.idx, &e, g) as f64
            })
            .sum()
    }
    #[test]
    fn quad_dp_is_the_tap_field_path() {
        // the channel-interleaved dot equals three single-channel dots; shear_y keeps every
        // pixel's column, its right-hand weights are zero, and the two-tap dot equals the
        // four-tap one
        let dims = ImageDims { c: 3, h: 13, w: 9 };
        let image: Vec<f32> = values(dims.len(), 21)
            .iter()
            .map(|v| 0.5 + 0.5 * v)
            .collect();
        let g = values(dims.len(), 22);
        let mut scratch = Scratch::default();
        scratch.pad(&image, dims);
        scratch.fill_quads(&image, &g, dims);
        for (kind, p) in [
            (AffineKind::ShearY, -0.3),
            (AffineKind::ShearY, -0.11),
            (AffineKind::ShearY, 0.0),
            (AffineKind::ShearY, 0.29),
            (AffineKind::ShearY, 1.7),
            (AffineKind::Rotate, 0.0),
            (AffineKind::Rotate, 13.0),
            (AffineKind::Rotate, -29.9),
            (AffineKind::Rotate, 170.0),
        ] {
            let (a, da) = kind.coeffs(p, dims.h, dims.w);
            let da = da.map(|v| v as f32);
            let mut taps = TapField::default();
            let mut e: [Vec<f32>; 4] = Default::default();
            taps.fill_weights(&a, da, dims, &mut e);
            let (quad, gquad, pw) = (&scratch.quad, &scratch.gquad, taps.pw);
            let four = quad_dp::<false>(quad, pw, &taps.idx, &e, gquad);
            let want = tap_field_dp(&a, da, &scratch.pads, dims, &g) as f32;
            assert!(
                (four - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{kind:?} p {p}: {four} vs {want}"
            );
            if kind == AffineKind::ShearY {
                assert!(e[1].iter().chain(&e[3]).all(|&v| v == 0.0), "p {p}");
                let two = quad_dp::<true>(quad, pw, &taps.idx, &e, gquad);
                assert!(
                    (two - four).abs() <= 1e-5 * (1.0 + four.abs()),
                    "p {p}: {two} vs {four}"
                );
            }
        }
    }

    #[test]
    fn fill_weights_is_fill_then_magnitude_weights() {
        for (kind, p) in [
            (AffineKind::Rotate, 17.0),
            (AffineKind::Rotate, -29.5),
            (AffineKind::ShearY, 0.21),
            (AffineKind::ShearX, -0.3),
        ] {
            for dims in [
                ImageDims { c: 3, h: 9, w: 70 },
                ImageDims { c: 1, h: 32, w: 32 },
            ] {
                let (a, da) = kind.coeffs(p, dims.h, dims.w);
                let da = da.map(|v| v as f32);
                let (mut t1, mut t2) = (TapField::default(), TapField::default());
                let (mut e1, mut e2): ([Vec<f32>; 4], [Vec<f32>; 4]) = Default::default();
                t1.fill(&a, dims);
                for e in &mut e1 {
                    e.resize(dims.plane(), 0.0);
                }
                magnitude_weights(&t1, da, dims, &mut e1);
                t2.fill_weights(&a, da, dims, &mut e2);
                assert_eq!((t1.idx, t1.pw), (t2.idx, t2.pw), "{kind:?}");
                assert_eq!(e1, e2, "{kind:?}");
            }
        }
    }
    #[test]
    fn axis_dp_matches_the_tap_field_path() {
        for (c, h, w) in [(3, 9, 11), (3, 32, 32), (1, 5, 40), (2, 1, 1)] {
            let dims = ImageDims { c, h, w };
            let image: Vec<f32> = values(dims.len(), (h * w) as u64)
                .iter()
                .map(|v| 0.5 + 0.5 * v)
                .collect();
            let g = values(dims.len(), 7 + w as u64);
            let mut scratch = Scratch::default();
            scratch.pad(&image, dims);
            for kind in [
                AffineKind::ShearX,
                AffineKind::TranslateX,
                AffineKind::TranslateY,
            ] {
                let r = kind.range();
                // a sweep of the range, exact whole-pixel shifts and shifts of the whole image
                let mut ps: Vec<f64> = (0..=40)
                    .map(|i| r.low as f64 + (r.high - r.low) as f64 * i as f64 / 40.0)
                    .collect();
                ps.extend((-3..=3).map(|k| k as f64 / w.max(h) as f64));
                ps.extend([-2.0, 1.5, 7.0, -0.0]);
                for p in ps {
                    let (a, da) = kind.coeffs(p, h, w);
                    let da = da.map(|v| v as f32);
                    let fast = axis_dp(kind, &a, da, &scratch.pads, dims, &g).unwrap();
                    let slow = tap_field_dp(&a, da, &scratch.pads, dims, &g);
                    assert!(
                        (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                        "{kind:?} {dims:?} p {p}: {fast} vs {slow}"
                    );
                }
            }
            // a slight x scale breaks the rows' constant offset: the per-pixel fallback
            for (scale, p) in [(1.01, 0.2), (0.97, -0.25), (1.3, 0.05)] {
                let (mut a, da) = AffineKind::ShearX.coeffs(p, h, w);
                a[0] = scale;
                a[2] = 0.3;
                let da = da.map(|v| v as f32);
                let fast = axis_dp(AffineKind::ShearX, &a, da, &scratch.pads, dims, &g).unwrap();
                let slow = tap_field_dp(&a, da, &scratch.pads, dims, &g);
                assert!(
                    (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                    "scaled shear {dims:?} {scale} {p}: {fast} vs {slow}"
                );
            }
            let (a, da) = AffineKind::Rotate.coeffs(10.0, h, w);
            let da = da.map(|v| v as f32);
            assert!(axis_dp(AffineKind::Rotate, &a, da, &scratch.pads, dims, &g).is_none());
        }
    }
}
