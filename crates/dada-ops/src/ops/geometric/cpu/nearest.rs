//! Nearest sampling in the CPU kernels: PIL's source pixel for every output pixel as a table
//! ([`NearestTable`]), gathered from and scattered into the image planes.
use crate::kernel::ImageDims;
use crate::ops::enhance::sum8;

/// PIL's nearest-neighbour affine sampling: 16.16 fixed point (`affine_fixed`) unless the
/// warp is a pure scale/translation (`ImagingScaleAffine`) or the coordinates could overflow,
/// where PIL uses doubles and truncation (`COORD`).
enum NearestMap {
    Fixed([i64; 6]),
    Float([f64; 6]),
}

impl NearestMap {
    fn new(a: [f64; 6], dims: ImageDims) -> Self {
        let check = |x: f64, y: f64| {
            (x * a[0] + y * a[1] + a[2]).abs() < 32768.0
                && (x * a[3] + y * a[4] + a[5]).abs() < 32768.0
        };
        let (w, h) = (dims.w as f64, dims.h as f64);
        let scale_only = a[1] == 0.0 && a[3] == 0.0;
        if scale_only || !(check(0.0, 0.0) && check(w, h) && check(0.0, h) && check(w, 0.0)) {
            return NearestMap::Float(a);
        }
        let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
        NearestMap::Fixed([
            fix(a[0]),
            fix(a[1]),
            fix(a[2] + a[0] * 0.5 + a[1] * 0.5),
            fix(a[3]),
            fix(a[4]),
            fix(a[5] + a[3] * 0.5 + a[4] * 0.5),
        ])
    }
}
/// A nearest-sampling table: per output pixel, its source pixel as an index into the image
/// plane (`FILL`, which is past any plane, for fill); per output row, `(lo, hi, s)` where the
/// row's pixels `lo..hi` read `s..s + hi - lo` consecutively and the rest are fill (every row of
/// shear_x and of the translations), so that row is a copy instead of a gather. The ops read and
/// write the image planes directly: no padded copy, no padded gradient to copy back.
pub(super) struct NearestTable {
    pub(super) idx: Vec<u32>,
    pub(super) runs: Vec<Option<(usize, usize, usize)>>,
    /// The image shape the indices are for (a cached table is reused only for this shape).
    pub(super) dims: (usize, usize),
}

/// A [`NearestTable`] entry for an output pixel filled with 0 (no plane is this large:
/// `fits_kernel_indices`).
const FILL: u32 = u32::MAX;

impl NearestTable {
    fn new(idx: Vec<u32>, dims: ImageDims) -> Self {
        let runs = idx
            .chunks_exact(dims.w.max(1))
            .map(|row| {
                // vectorizable passes (no early exit but the first one, which is short): a row
                // is a run when its `count` inside pixels start at `lo` and read consecutively
                let count = row.iter().filter(|&&q| q != FILL).count();
                let Some(lo) = row.iter().position(|&q| q != FILL) else {
                    return Some((0, 0, 0));
                };
                let (hi, s) = (lo + count, row[lo]);
                let consecutive = row[lo..hi]
                    .iter()
                    .zip(s..)
                    .fold(true, |ok, (&t, want)| ok & (t == want));
                consecutive.then_some((lo, hi, s as usize))
            })
            .collect();
        Self {
            idx,
            runs,
            dims: (dims.h, dims.w),
        }
    }

    /// Per output row: its table entries and its run, if it is one.
    fn rows(&self, w: usize) -> impl Iterator<Item = (&[u32], Option<(usize, usize, usize)>)> {
        self.idx
            .chunks_exact(w.max(1))
            .zip(self.runs.iter().copied())
    }

    /// `dst = out` of `N` channels (`src` and `dst` hold the `N` planes back to back), each
    /// row's indices loaded once for all of them.
    pub(super) fn gather<const N: usize>(&self, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let (w, plane) = (dims.w, dims.plane());
        let (srcs, mut dsts) = (planes::<N>(src, plane), planes_mut::<N>(dst, plane));
        for (y, (row, run)) in self.rows(w).enumerate() {
            let r = y * w..(y + 1) * w;
            match run {
                Some((lo, hi, s)) => {
                    for (d, x) in dsts.iter_mut().zip(srcs) {
                        let d = &mut d[r.clone()];
                        d[..lo].fill(0.0);
                        d[lo..hi].copy_from_slice(&x[s..s + hi - lo]);
                        d[hi..].fill(0.0);
                    }
                }
                None => {
                    let mut drows = dsts.each_mut().map(|d| &mut d[r.clone()][..row.len()]);
                    for (o, &q) in row.iter().enumerate() {
                        let q = q as usize;
                        for (d, x) in drows.iter_mut().zip(srcs) {
                            d[o] = if q < plane { x[q] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }

    /// `grad_src += scale * g` through the table for `N` channels (`g` and `grad_src` hold the
    /// `N` planes back to back), each row's indices loaded once for all of them.
    pub(super) fn scatter<const N: usize>(
        &self,
        g: &[f32],
        scale: f32,
        dims: ImageDims,
        grad_src: &mut [f32],
    ) {
        let (w, plane) = (dims.w, dims.plane());
        let (gs, mut dsts) = (planes::<N>(g, plane), planes_mut::<N>(grad_src, plane));
        for (y, (row, run)) in self.rows(w).enumerate() {
            let r = y * w..(y + 1) * w;
            match run {
                Some((lo, hi, s)) => {
                    for (d, g) in dsts.iter_mut().zip(gs) {
                        let g = &g[r.start + lo..r.start + hi];
                        for (d, &gv) in d[s..s + hi - lo].iter_mut().zip(g) {
                            *d += scale * gv;
                        }
                    }
                }
                None => {
                    let grows = gs.map(|g| &g[r.clone()][..row.len()]);
                    for (o, &q) in row.iter().enumerate() {
                        let q = q as usize;
                        if q < plane {
                            for (d, g) in dsts.iter_mut().zip(grows) {
                                d[q] += scale * g[o];
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`NearestTable::scatter`] of one channel, returning `sum(g * out)` with `out` read from
    /// the plane `src` in the same pass: the weight gradient of a mixture.
    pub(super) fn scatter_dot(
        &self,
        src: &[f32],
        g: &[f32],
        scale: f32,
        dims: ImageDims,
        grad_src: &mut [f32],
    ) -> f32 {
        let plane = dims.plane();
        let (grad_src, src) = (&mut grad_src[..plane], &src[..plane]);
        let mut total = 0f32;
        for ((row, run), gr) in self.rows(dims.w).zip(g.chunks_exact(dims.w)) {
            total += match run {
                Some((lo, hi, s)) => {
                    let gr = &gr[lo..hi];
                    for (d, &gv) in grad_src[s..s + hi - lo].iter_mut().zip(gr) {
                        *d += scale * gv;
                    }
                    crate::kernel::dot(gr, &src[s..s + hi - lo])
                }
                None => {
                    let mut acc = [0f32; 8];
                    for (x, (&q, &gv)) in row.iter().zip(gr).enumerate() {
                        let q = q as usize;
                        if q < plane {
                            grad_src[q] += scale * gv;
                            acc[x % 8] += gv * src[q];
                        }
                    }
                    acc.iter().sum()
                }
            };
        }
        total
    }

    /// `sum(g * out)` of one channel, with `out` read from its plane `src`.
    fn dot(&self, src: &[f32], g: &[f32], dims: ImageDims) -> f32 {
        let src = &src[..dims.plane()];
        let mut total = 0f32;
        for ((row, run), gr) in self.rows(dims.w).zip(g.chunks_exact(dims.w)) {
            total += match run {
                Some((lo, hi, s)) => crate::kernel::dot(&gr[lo..hi], &src[s..s + hi - lo]),
                None => {
                    let gr = &gr[..row.len()];
                    sum8(row.len(), |x| {
                        gr[x] * src.get(row[x] as usize).copied().unwrap_or(0.0)
                    })
                }
            };
        }
        total
    }
}

/// The first `N` planes of `plane` elements of `buf`.
fn planes<const N: usize>(buf: &[f32], plane: usize) -> [&[f32]; N] {
    std::array::from_fn(|c| &buf[c * plane..(c + 1) * plane])
}

/// [`planes`], mutable.
fn planes_mut<const N: usize>(buf: &mut [f32], plane: usize) -> [&mut [f32]; N] {
    let mut chunks = buf.chunks_exact_mut(plane);
    std::array::from_fn(|_| chunks.next().expect("N planes"))
}

/// `sum(grad_out * out)` over every channel for the nearest-sampled output of `table`.
pub(super) fn nearest_dot(
    table: &NearestTable,
    src: &[f32],
    dims: ImageDims,
    grad_out: &[f32],
) -> f32 {
    let plane = dims.plane();
    src.chunks_exact(plane)
        .zip(grad_out.chunks_exact(plane))
        .map(|(x, g)| table.dot(x, g, dims))
        .sum()
}

/// Source pixel of every output pixel, PIL's nearest rule, as an index into the image plane
/// (`FILL` for fill).
pub(super) fn nearest_table(a: [f64; 6], dims: ImageDims) -> NearestTable {
    let mut table = vec![FILL; dims.plane()];
    let (w, h) = (dims.w as i64, dims.h as i64);
    match NearestMap::new(a, dims) {
        NearestMap::Fixed(f) => {
            // PIL's `affine_fixed`: `(f2 + y f1 + x f0) >> 16`; where a row's sums stay well
            // inside i32 (always for images up to a few thousand pixels), in i32 with an
            // arithmetic shift (branch-free: the loop vectorizes), else in i64
            let (wi, hi) = (w as i32, h as i32);
            let fits = |v: i64| v.abs() < (1 << 30);
            for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                let (xs0, ys0) = (f[2] + y as i64 * f[1], f[5] + y as i64 * f[4]);
                let last = dims.w as i64 - 1;
                let (xs1, ys1) = (xs0 + last * f[0], ys0 + last * f[3]);
                if [xs0, ys0, xs1, ys1, f[0], f[3]].into_iter().all(fits) {
                    // linear in x, so every sum lies between the row's ends
                    let (mut xs, mut ys, fx, fy) =
                        (xs0 as i32, ys0 as i32, f[0] as i32, f[3] as i32);
                    for t in row.iter_mut() {
                        let (xi, yi) = (xs >> 16, ys >> 16);
                        let inside = (xi >= 0) & (yi >= 0) & (xi < wi) & (yi < hi);
                        *t = if inside { (yi * wi + xi) as u32 } else { FILL };
                        xs = xs.wrapping_add(fx);
                        ys = ys.wrapping_add(fy);
                    }
                    continue;
                }
                let (mut xs, mut ys) = (xs0, ys0);
                for t in row.iter_mut() {
                    let (xi, yi) = (xs >> 16, ys >> 16);
                    if xi >= 0 && yi >= 0 && xi < w && yi < h {
                        *t = (yi * w + xi) as u32;
                    }
                    xs += f[0];
                    ys += f[3];
                }
            }
        }
        NearestMap::Float(a) => {
            // PIL's `COORD`: `u = a0 X + a1 Y + a2` in doubles, truncated, fill below 0
            // (branch-free: the loop vectorizes)
            let (wf, hf, wi) = (dims.w as f64, dims.h as f64, dims.w as i32);
            if a[1] == 0.0 && a[3] == 0.0 {
                // u depends on x alone and v on y alone (the translations): the columns'
                // sources once, then each row's. `a1 Y` is a zero of a1's sign for every
                // pixel centre Y > 0, so `a1 * 0.5` gives the same sums bit for bit.
                let cols: Vec<Option<i32>> = (0..dims.w)
                    .map(|x| {
                        let u = a[0] * (x as i32 as f64 + 0.5) + a[1] * 0.5 + a[2];
                        ((u >= 0.0) & (u < wf)).then_some(u as i32)
                    })
                    .collect();
                for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                    let v = a[3] * 0.5 + a[4] * (y as i32 as f64 + 0.5) + a[5];
                    if !((v >= 0.0) & (v < hf)) {
                        continue; // left as fill
                    }
                    let base = v as i32 * wi;
                    for (t, c) in row.iter_mut().zip(&cols) {
                        *t = c.map_or(FILL, |xi| (base + xi) as u32);
                    }
                }
                return NearestTable::new(table, dims);
            }
            for (y, row) in table.chunks_exact_mut(dims.w).enumerate() {
                let yy = y as f64 + 0.5;
                for (x, t) in row.iter_mut().enumerate() {
                    let xx = x as i32 as f64 + 0.5;
                    let u = a[0] * xx + a[1] * yy + a[2];
                    let v = a[3] * xx + a[4] * yy + a[5];
                    let inside = (u >= 0.0) & (v >= 0.0) & (u < wf) & (v < hf);
                    // SAFETY: clamped into [0, size], finite (NaN -> 0)
                    let (xi, yi) = unsafe {
                        (
                            u.max(0.0).min(wf).to_int_unchecked::<i32>(),
                            v.max(0.0).min(hf).to_int_unchecked::<i32>(),
                        )
                    };
                    *t = if inside { (yi * wi + xi) as u32 } else { FILL };
                }
            }
        }
    }
    NearestTable::new(table, dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::geometric::AffineKind;

    #[test]
    fn nearest_tables_follow_pils_float_rule() {
        // every table entry against PIL's `COORD` evaluated pixel by pixel: the translations'
        // separable shortcut, the fixed-point maps and runs of consecutive sources
        let general = |a: [f64; 6], dims: ImageDims| -> Vec<u32> {
            let (wf, hf) = (dims.w as f64, dims.h as f64);
            (0..dims.plane())
                .map(|o| {
                    let (xx, yy) = ((o % dims.w) as f64 + 0.5, (o / dims.w) as f64 + 0.5);
                    let u = a[0] * xx + a[1] * yy + a[2];
                    let v = a[3] * xx + a[4] * yy + a[5];
                    if u >= 0.0 && v >= 0.0 && u < wf && v < hf {
                        (v as u32) * dims.w as u32 + u as u32
                    } else {
                        FILL
                    }
                })
                .collect()
        };
        for dims in [
            ImageDims { c: 3, h: 32, w: 32 },
            ImageDims { c: 1, h: 7, w: 13 },
        ] {
            for kind in [AffineKind::TranslateX, AffineKind::TranslateY] {
                // whole-pixel and half-pixel shifts, and shifts past the image
                for p in [0.0, 0.45, -0.45, 3.0 / 32.0, -0.5 / 13.0, 0.2999, 1.5, -2.0] {
                    let (a, _) = kind.coeffs(p, dims.h, dims.w);
                    let table = nearest_table(a, dims);
                    assert_eq!(table.idx, general(a, dims), "{kind:?} p {p} {dims:?}");
                    for (row, run) in table.idx.chunks_exact(dims.w).zip(&table.runs) {
                        let Some((lo, hi, s)) = *run else {
                            panic!("{kind:?} p {p}: a row of a translation is a run");
                        };
                        for (x, &q) in row.iter().enumerate() {
                            let want = if (lo..hi).contains(&x) {
                                (s + x - lo) as u32
                            } else {
                                FILL
                            };
                            assert_eq!(q, want, "{kind:?} p {p} x {x}");
                        }
                    }
                }
            }
            for kind in [AffineKind::Rotate, AffineKind::ShearX, AffineKind::ShearY] {
                for p in [0.0, 0.3, -0.17, 29.0, -13.5] {
                    let (a, _) = kind.coeffs(p, dims.h, dims.w);
                    let table = nearest_table(a, dims);
                    // the fixed-point rule may round differently from the float one right at a
                    // pixel boundary (as PIL's does); inside/outside and the sources agree
                    // elsewhere
                    let want = general(a, dims);
                    let differ = table.idx.iter().zip(&want).filter(|(a, b)| a != b).count();
                    assert!(
                        differ * 50 <= dims.plane(),
                        "{kind:?} p {p}: {differ} differ"
                    );
                    assert!(table
                        .idx
                        .iter()
                        .all(|&q| q == FILL || (q as usize) < dims.plane()));
                }
            }
        }
    }
}
