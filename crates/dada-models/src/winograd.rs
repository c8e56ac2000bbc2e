//! Winograd convolution F(MxM, 3x3) for 3x3, stride-1, padding-1 convolutions on CPU (Lavin &
//! Gray 2016), with output tiles of M = 2 or M = 4.
//!
//! Each MxM block of output ("tile") is computed from an AxA block of input (A = M + 2) as
//! `Y = A^T [ sum_ci (G g G^T) ⊙ (B^T d B) ] A`; the matrices are in [`F2`] and [`F4`]. The sum
//! over input channels is, for each of the A^2 transform positions `xi`, one GEMM
//! `M[xi] (c_out x n) = U[xi] (c_out x c_in) * V[xi] (c_in x n)` over the `n` tiles of a group
//! of images. F(2x2, 3x3) does 16 multiplications per 4 outputs and input channel instead of
//! 36 (2.25x less arithmetic than the im2col GEMM), F(4x4, 3x3) 36 per 16 (4x less), at the price
//! of larger constants in its transforms and so larger rounding error.
//!
//! The gradients are the adjoints of the same computation (exact in exact arithmetic, as the
//! transform is): the input gradient is the forward convolution of the output gradient with the
//! flipped kernel (done by the caller), and the weight gradient is
//! `dW = G^T [ sum_tiles (A dY A^T) V^T ] G`, again A^2 GEMMs, here with the tiles as the inner
//! dimension.
//!
//! The transforms run along the rows of tiles: an input row is split into its M column phases
//! (`x[M j + q]`), so every step of a transform is a vectorisable combination of contiguous
//! arrays over the tile columns. Images are processed in groups sized by shape only, and
//! weight-gradient partial sums are taken over a fixed split of the batch, so results do not
//! depend on the thread count.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::conv::gemm_strided as gemm;
use crate::cpu::{multiversion, uninit_vec};

/// The output tile of a Winograd convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileSize {
    /// F(2x2, 3x3): 4x4 input tiles, 2.25x fewer multiplications than direct convolution.
    F2,
    /// F(4x4, 3x3): 6x6 input tiles, 4x fewer multiplications.
    F4,
}

impl TileSize {
    fn m(self) -> usize {
        match self {
            TileSize::F2 => 2,
            TileSize::F4 => 4,
        }
    }

    fn a(self) -> usize {
        self.m() + 2
    }
}

/// The transform matrices of F(MxM, 3x3), `A = M + 2`, and the products with them written out.
/// (The kernels use the written-out products; the matrices document them and check them in the
/// tests.)
#[cfg_attr(not(test), allow(dead_code))]
trait Tiling<const M: usize, const A: usize> {
    /// `B^T` (A x A): input tile -> transform domain.
    const BT: [[f32; A]; A];
    /// `G` (A x 3): kernel -> transform domain.
    const G: [[f64; 3]; A];
    /// `A^T` (M x A): transform domain -> output tile.
    const AT: [[f32; A]; M];
    /// `A` (A x M), the transpose of `A^T`.
    const A_MAT: [[f32; M]; A];

    /// `B^T x` on one column of lane vectors, written out (equal to [`Tiling::BT`] times `x`).
    fn input_1d(x: [Lanes; A]) -> [Lanes; A];
    /// `A^T x` (equal to [`Tiling::AT`] times `x`).
    fn output_1d(x: [Lanes; A]) -> [Lanes; M];
    /// `A x` (equal to [`Tiling::A_MAT`] times `x`).
    fn output_adjoint_1d(x: [Lanes; M]) -> [Lanes; A];
}

/// F(2x2, 3x3) with interpolation points 0, 1, -1 and infinity.
pub(crate) struct F2;

impl Tiling<2, 4> for F2 {
    const BT: [[f32; 4]; 4] = [[1., 0., -1., 0.], [0., 1., 1., 0.], [0., -1., 1., 0.], [0., 1., 0., -1.]];
    const G: [[f64; 3]; 4] = [[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]];
    const AT: [[f32; 4]; 2] = [[1., 1., 1., 0.], [0., 1., -1., -1.]];
    const A_MAT: [[f32; 2]; 4] = [[1., 0.], [1., 1.], [1., -1.], [0., -1.]];

    #[inline(always)]
    fn input_1d([d0, d1, d2, d3]: [Lanes; 4]) -> [Lanes; 4] {
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
    }

    #[inline(always)]
    fn output_1d([m0, m1, m2, m3]: [Lanes; 4]) -> [Lanes; 2] {
        [m0 + m1 + m2, m1 - m2 - m3]
    }

    #[inline(always)]
    fn output_adjoint_1d([g0, g1]: [Lanes; 2]) -> [Lanes; 4] {
        [g0, g0 + g1, g0 - g1, Lanes::ZERO - g1]
    }
}

/// F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity.
pub(crate) struct F4;

impl Tiling<4, 6> for F4 {
    const BT: [[f32; 6]; 6] = [
        [4., 0., -5., 0., 1., 0.],
        [0., -4., -4., 1., 1., 0.],
        [0., 4., -4., -1., 1., 0.],
        [0., -2., -1., 2., 1., 0.],
        [0., 2., -1., -2., 1., 0.],
        [0., 4., 0., -5., 0., 1.],
    ];
    const G: [[f64; 3]; 6] = [
        [1. / 4., 0., 0.],
        [-1. / 6., -1. / 6., -1. / 6.],
        [-1. / 6., 1. / 6., -1. / 6.],
        [1. / 24., 1. / 12., 1. / 6.],
        [1. / 24., -1. / 12., 1. / 6.],
        [0., 0., 1.],
    ];
    const AT: [[f32; 6]; 4] = [
        [1., 1., 1., 1., 1., 0.],
        [0., 1., -1., 2., -2., 0.],
        [0., 1., 1., 4., 4., 0.],
        [0., 1., -1., 8., -8., 1.],
    ];
    const A_MAT: [[f32; 4]; 6] = [
        [1., 0., 0., 0.],
        [1., 1., 1., 1.],
        [1., -1., 1., -1.],
        [1., 2., 4., 8.],
        [1., -2., 4., -8.],
        [0., 0., 0., 1.],
    ];

    #[inline(always)]
    fn input_1d([d0, d1, d2, d3, d4, d5]: [Lanes; 6]) -> [Lanes; 6] {
        let (a, b) = (d4 - d2 * 4.0, d3 - d1 * 4.0);
        let (c, e) = (d4 - d2, (d3 - d1) * 2.0);
        [d0 * 4.0 - d2 * 5.0 + d4, a + b, a - b, c + e, c - e, d1 * 4.0 - d3 * 5.0 + d5]
    }

    #[inline(always)]
    fn output_1d([m0, m1, m2, m3, m4, m5]: [Lanes; 6]) -> [Lanes; 4] {
        let (sp, sm) = (m1 + m2, m1 - m2);
        let (tp, tm) = (m3 + m4, m3 - m4);
        [m0 + sp + tp, sm + tm * 2.0, sp + tp * 4.0, sm + tm * 8.0 + m5]
    }

    #[inline(always)]
    fn output_adjoint_1d([g0, g1, g2, g3]: [Lanes; 4]) -> [Lanes; 6] {
        let (e1, o1) = (g0 + g2, g1 + g3);
        let (e2, o2) = (g0 + g2 * 4.0, g1 * 2.0 + g3 * 8.0);
        [g0, e1 + o1, e1 - o1, e2 + o2, e2 - o2, g3]
    }
}

/// Tiles per GEMM column block: groups of images reach about this many ...
const GROUP_TILES: usize = 256;

/// ... while their transform buffers (V and M) stay within this many bytes (L2-sized).
const GROUP_BYTES: usize = 1 << 20;

// The V / M buffers hold element (xi, channel, tile) at `(channel A^2 + xi) n + tile`: the A^2
// positions of one channel lie together, so a transform writes (or reads) A^2 short streams
// within a few KiB, and each position's (channels x n) matrix has row stride A^2 n.

/// Number of partial sums for the weight gradient (fixed for determinism).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// The shape of one convolution on the Winograd path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    tile: TileSize,
    b_sz: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    /// Tile rows and columns (`ceil(h / M)`, `ceil(w / M)`).
    th: usize,
    tw: usize,
    /// Images per group.
    group: usize,
}

impl Plan {
    /// The plan for input `(b_sz, c_in, h, w)` and a `(c_out, c_in, 3, 3)` kernel with stride 1
    /// and padding 1.
    pub fn new(tile: TileSize, b_sz: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Self {
        let (th, tw) = (h.div_ceil(tile.m()), w.div_ceil(tile.m()));
        let tiles = (th * tw).max(1);
        let bytes_per_image = tile.a() * tile.a() * (c_in + c_out) * tiles * 4;
        let group = (GROUP_TILES / tiles).min(GROUP_BYTES / bytes_per_image.max(1)).clamp(1, b_sz.max(1));
        Self { tile, b_sz, c_in, c_out, h, w, th, tw, group }
    }

    /// Tiles per image.
    fn tiles(&self) -> usize {
        self.th * self.tw
    }

    fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.c_out * self.h * self.w
    }
}

thread_local! {
    /// Per-thread transform buffers (V, M, and the transforms' row buffer), kept between calls.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's two scratch buffers of `len_a` and `len_b` floats and its row
/// buffer (any length; each transform sizes it with [`work_slice`]).
fn with_scratch<R>(len_a: usize, len_b: usize, f: impl FnOnce(&mut [f32], &mut [f32], &mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let (a, b, work) = &mut *s;
        if a.len() < len_a {
            a.resize(len_a, 0.0);
        }
        if b.len() < len_b {
            b.resize(len_b, 0.0);
        }
        f(&mut a[..len_a], &mut b[..len_b], work)
    })
}

/// The first `len` floats of `work`, grown if needed (contents unspecified: callers write
/// before they read).
fn work_slice(work: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if work.len() < len {
        work.resize(len, 0.0);
    }
    &mut work[..len]
}

/// Lanes per transform vector: the transforms run on this many tiles of a tile row at once.
const LANES: usize = 8;

/// `LANES` floats, one per tile; element-wise arithmetic on it compiles to SIMD.
#[derive(Clone, Copy)]
struct Lanes([f32; LANES]);

impl Lanes {
    const ZERO: Self = Self([0.0; LANES]);

    /// `len <= LANES` floats from `src`, zero beyond.
    #[inline(always)]
    fn load(src: &[f32], len: usize) -> Self {
        if len == LANES {
            return Self(src[..LANES].try_into().expect("LANES floats"));
        }
        let mut v = Self::ZERO;
        for (d, &x) in v.0.iter_mut().zip(&src[..len]) {
            *d = x;
        }
        v
    }

    /// The first `len <= LANES` lanes into `dst`.
    #[inline(always)]
    fn store(self, dst: &mut [f32], len: usize) {
        if len == LANES {
            let dst: &mut [f32; LANES] = (&mut dst[..LANES]).try_into().expect("LANES floats");
            *dst = self.0;
            return;
        }
        for (d, x) in dst[..len].iter_mut().zip(self.0) {
            *d = x;
        }
    }
}

impl std::ops::Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, other: Self) -> Self {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a += b);
        self
    }
}

impl std::ops::Sub for Lanes {
    type Output = Self;
    #[inline(always)]
    fn sub(mut self, other: Self) -> Self {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a -= b);
        self
    }
}

impl std::ops::Mul<f32> for Lanes {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, c: f32) -> Self {
        self.0.iter_mut().for_each(|a| *a *= c);
        self
    }
}

/// `mat x mat^T` for the C x C tile `x` read through `load(r, c)`, written through
/// `store(i, j, value)`, where `f` multiplies a column by the R x C matrix `mat`. Columns are
/// loaded and transformed one at a time and rows transformed and stored one at a time, so few
/// lane vectors are live at once.
#[inline(always)]
fn separable<const R: usize, const C: usize>(
    load: impl Fn(usize, usize) -> Lanes,
    f: impl Fn([Lanes; C]) -> [Lanes; R],
    mut store: impl FnMut(usize, usize, Lanes),
) {
    let mut cols = [[Lanes::ZERO; R]; C];
    for (c, col) in cols.iter_mut().enumerate() {
        *col = f(std::array::from_fn(|r| load(r, c)));
    }
    // row i of the column results is element i of every column
    #[allow(clippy::needless_range_loop)]
    for i in 0..R {
        for (j, v) in f(std::array::from_fn(|c| cols[c][i])).into_iter().enumerate() {
            store(i, j, v);
        }
    }
}

/// `U[co][ci][xi] = (G g G^T)[xi]` for a `(c_out, c_in, 3, 3)` kernel (computed in f64; the A^2
/// values of one kernel together, so this writes contiguously and the GEMMs read it strided).
fn transform_weights<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, weight: &[f32]) -> Vec<f32> {
    let pairs = p.c_out * p.c_in;
    let mut u = uninit_vec(A * A * pairs);
    for (k, g) in weight.chunks_exact(9).enumerate() {
        // G g (A x 3), then (G g) G^T (A x A)
        let mut gg = [[0f64; 3]; A];
        for (i, row) in gg.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|r| T::G[i][r] * g[r * 3 + c] as f64).sum();
            }
        }
        for (i, row) in gg.iter().enumerate() {
            for j in 0..A {
                let v: f64 = (0..3).map(|c| row[c] * T::G[j][c]).sum();
                u[k * A * A + i * A + j] = v as f32;
            }
        }
    }
    u
}

/// `dW = G^T dU G` per kernel: `du[ci][co][xi]` -> `(c_out, c_in, 3, 3)` (computed in f64).
fn weight_grad_from_transformed<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, du: &[f32]) -> Vec<f32> {
    let pairs = p.c_out * p.c_in;
    let mut dw = uninit_vec(9 * pairs);
    for (k, out) in dw.chunks_exact_mut(9).enumerate() {
        let (co, ci) = (k / p.c_in, k % p.c_in);
        let d = |i: usize, j: usize| du[(ci * p.c_out + co) * A * A + i * A + j] as f64;
        // G^T dU (3 x A), then (G^T dU) G (3 x 3)
        let mut r = [[0f64; A]; 3];
        for (a, row) in r.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..A).map(|i| T::G[i][a] * d(i, j)).sum();
            }
        }
        for (a, row) in r.iter().enumerate() {
            for c in 0..3 {
                out[a * 3 + c] = (0..A).map(|j| row[j] * T::G[j][c]).sum::<f64>() as f32;
            }
        }
    }
    dw
}

/// Floats per column phase of a split row: the tile columns rounded up to whole lane vectors,
/// plus one (a tile reads its phase at `tx` and `tx + 1`).
fn phase_len(tw: usize) -> usize {
    tw.next_multiple_of(LANES) + 1
}

/// Splits every row of one padded input plane (one row and column of zeros around the image)
/// into its M column phases: `split[(pr * M + q) * phase_len + j] = padded[pr][M j + q]`, for
/// padded rows `pr` in `0..M th + 2`. `padded` (`M phase_len` floats) holds one padded row.
#[inline(always)]
fn split_plane<const M: usize>(p: Plan, plane: &[f32], split: &mut [f32], padded: &mut [f32]) {
    let pl = phase_len(p.tw);
    split.fill(0.0);
    padded.fill(0.0);
    for (y, row) in plane.chunks_exact(p.w).enumerate() {
        padded[1..p.w + 1].copy_from_slice(row);
        deinterleave::<M>(padded, &mut split[(y + 1) * M * pl..(y + 2) * M * pl], pl);
    }
}

/// `phases[b * stride + j] = row[M j + b]` for the length of `row` (the rest of `phases` is
/// left as it is).
#[inline(always)]
fn deinterleave<const M: usize>(row: &[f32], phases: &mut [f32], stride: usize) {
    let mut chunks = row.chunks_exact(M);
    for (j, chunk) in (&mut chunks).enumerate() {
        for (b, &v) in chunk.iter().enumerate() {
            phases[b * stride + j] = v;
        }
    }
    let j = row.len() / M;
    for (b, &v) in chunks.remainder().iter().enumerate() {
        phases[b * stride + j] = v;
    }
}

/// `V[xi][ci][col0 + tile] = (B^T d B)[xi]` for every tile of one image.
#[inline(always)]
fn transform_input<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, x_b: &[f32], v: &mut [f32], n: usize, col0: usize, work: &mut Vec<f32>) {
    let pl = phase_len(p.tw);
    let split_len = (M * p.th + 2) * M * pl;
    let (split, padded) = work_slice(work, split_len + M * pl).split_at_mut(split_len);
    for ci in 0..p.c_in {
        split_plane::<M>(p, &x_b[ci * p.h * p.w..(ci + 1) * p.h * p.w], split, padded);
        for ty in 0..p.th {
            for tx0 in (0..p.tw).step_by(LANES) {
                let len = LANES.min(p.tw - tx0);
                // d[r][c] for LANES tiles: padded row M ty + r, column M tx + c = phase c % M at
                // tx + c / M
                let rows = &split[M * ty * M * pl..];
                let base = ci * A * A * n + col0 + ty * p.tw + tx0;
                separable(
                    |r, c| Lanes::load(&rows[(r * M + c % M) * pl + tx0 + c / M..], LANES),
                    T::input_1d,
                    |i, j, lane: Lanes| lane.store(&mut v[(i * A + j) * n + base..], len),
                );
            }
        }
    }
}

/// `out[co] [+]= (A^T M A)` for every tile of one image, from `M[xi][co][col0 + tile]`.
#[inline(always)]
fn transform_output<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, m: &[f32], n: usize, col0: usize, out_b: &mut [f32], accumulate: bool, work: &mut Vec<f32>) {
    let tw = p.tw;
    // y[(a M + b) tw + tx]: output row a, column phase b of one tile row
    let y = work_slice(work, M * M * tw);
    for co in 0..p.c_out {
        let plane = &mut out_b[co * p.h * p.w..(co + 1) * p.h * p.w];
        for ty in 0..p.th {
            for tx0 in (0..tw).step_by(LANES) {
                let len = LANES.min(tw - tx0);
                let base = co * A * A * n + col0 + ty * tw + tx0;
                separable(
                    |i, j| Lanes::load(&m[(i * A + j) * n + base..], len),
                    T::output_1d,
                    |a, b, lane: Lanes| lane.store(&mut y[(a * M + b) * tw + tx0..], len),
                );
            }
            for a in 0..M {
                let oy = M * ty + a;
                if oy < p.h {
                    interleave::<M>(&mut plane[oy * p.w..(oy + 1) * p.w], &y[a * M * tw..(a + 1) * M * tw], tw, accumulate);
                }
            }
        }
    }
}

/// `row[M j + b] [+]= phases[b * tw + j]` for the length of `row`.
#[inline(always)]
fn interleave<const M: usize>(row: &mut [f32], phases: &[f32], tw: usize, accumulate: bool) {
    let j = row.len() / M;
    let mut chunks = row.chunks_exact_mut(M);
    for (j, chunk) in (&mut chunks).enumerate() {
        for (b, o) in chunk.iter_mut().enumerate() {
            let v = phases[b * tw + j];
            *o = if accumulate { *o + v } else { v };
        }
    }
    for (b, o) in chunks.into_remainder().iter_mut().enumerate() {
        let v = phases[b * tw + j];
        *o = if accumulate { *o + v } else { v };
    }
}

/// `dM[xi][co][col0 + tile] = (A dY A^T)[xi]` for every tile of one image (the adjoint of
/// [`transform_output`]; output positions outside the image count as zero).
#[inline(always)]
fn transform_output_adjoint<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, dy_b: &[f32], dm: &mut [f32], n: usize, col0: usize, work: &mut Vec<f32>) {
    let tw = p.tw;
    let pl = phase_len(tw);
    // g[(a M + b) pl + tx] = dY[M ty + a][M tx + b] of one tile row
    let g = work_slice(work, M * M * pl);
    for co in 0..p.c_out {
        let plane = &dy_b[co * p.h * p.w..(co + 1) * p.h * p.w];
        for ty in 0..p.th {
            g.fill(0.0);
            for (a, phases) in g.chunks_exact_mut(M * pl).enumerate() {
                let oy = M * ty + a;
                if oy < p.h {
                    deinterleave::<M>(&plane[oy * p.w..(oy + 1) * p.w], phases, pl);
                }
            }
            for tx0 in (0..tw).step_by(LANES) {
                let len = LANES.min(tw - tx0);
                let base = co * A * A * n + col0 + ty * tw + tx0;
                separable(
                    |a, b| Lanes::load(&g[(a * M + b) * pl + tx0..], LANES),
                    T::output_adjoint_1d,
                    |i, j, lane: Lanes| lane.store(&mut dm[(i * A + j) * n + base..], len),
                );
            }
        }
    }
}

/// The forward convolution of a batch, `out (b_sz, c_out, h, w)`, starting from `residual`
/// when given.
pub(crate) fn forward(p: Plan, x: &[f32], weight: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
    match p.tile {
        TileSize::F2 => forward_with::<2, 4, F2>(p, x, weight, residual),
        TileSize::F4 => forward_with::<4, 6, F4>(p, x, weight, residual),
    }
}

/// The weight gradient `(c_out, c_in, 3, 3)` from the input `x` and the output gradient `dy`.
pub(crate) fn weight_grad(p: Plan, x: &[f32], dy: &[f32]) -> Vec<f32> {
    match p.tile {
        TileSize::F2 => weight_grad_with::<2, 4, F2>(p, x, dy),
        TileSize::F4 => weight_grad_with::<4, 6, F4>(p, x, dy),
    }
}

fn forward_with<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, x: &[f32], weight: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
    let u = transform_weights::<M, A, T>(p, weight);
    let mut out = uninit_vec(p.b_sz * p.out_len());
    out.par_chunks_mut(p.group * p.out_len()).enumerate().for_each(|(gi, out_g)| {
        let first = gi * p.group;
        let imgs = out_g.len() / p.out_len();
        let n = imgs * p.tiles();
        let rs = (A * A * n) as isize;
        with_scratch(A * A * n * p.c_in, A * A * n * p.c_out, |v, m, work| multiversion!({
            for k in 0..imgs {
                let bi = first + k;
                transform_input::<M, A, T>(p, &x[bi * p.in_len()..(bi + 1) * p.in_len()], v, n, k * p.tiles(), work);
            }
            for xi in 0..A * A {
                // M[xi] (c_out x n) = U[xi] (c_out x c_in) * V[xi] (c_in x n)
                unsafe {
                    gemm(p.c_out, n, p.c_in, m.as_mut_ptr().add(xi * n), rs, 1, false,
                        u.as_ptr().add(xi), (p.c_in * A * A) as isize, (A * A) as isize,
                        v.as_ptr().add(xi * n), rs, 1);
                }
            }
            for (k, out_b) in out_g.chunks_exact_mut(p.out_len()).enumerate() {
                let accumulate = match residual {
                    Some(r) => {
                        let bi = first + k;
                        out_b.copy_from_slice(&r[bi * p.out_len()..(bi + 1) * p.out_len()]);
                        true
                    }
                    None => false,
                };
                transform_output::<M, A, T>(p, m, n, k * p.tiles(), out_b, accumulate, work);
            }
        }));
    });
    out
}

fn weight_grad_with<const M: usize, const A: usize, T: Tiling<M, A>>(p: Plan, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let du_len = A * A * p.c_out * p.c_in;
    let per_chunk = p.b_sz.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
    let n_chunks = p.b_sz.div_ceil(per_chunk);
    let mut partials = uninit_vec(n_chunks * du_len);
    partials.par_chunks_mut(du_len).enumerate().for_each(|(chunk, acc)| {
        let (start, end) = (chunk * per_chunk, ((chunk + 1) * per_chunk).min(p.b_sz));
        let mut first = true;
        let mut g0 = start;
        while g0 < end {
            let imgs = p.group.min(end - g0);
            let n = imgs * p.tiles();
            let rs = (A * A * n) as isize;
            with_scratch(A * A * n * p.c_in, A * A * n * p.c_out, |v, dm, work| multiversion!({
                for k in 0..imgs {
                    let bi = g0 + k;
                    transform_input::<M, A, T>(p, &x[bi * p.in_len()..(bi + 1) * p.in_len()], v, n, k * p.tiles(), work);
                    transform_output_adjoint::<M, A, T>(p, &dy[bi * p.out_len()..(bi + 1) * p.out_len()], dm, n, k * p.tiles(), work);
                }
                for xi in 0..A * A {
                    // dU[xi] (c_out x c_in, stored as du[ci][co][xi]) [+]= dM[xi] (c_out x n)
                    // V[xi]^T (n x c_in)
                    unsafe {
                        gemm(p.c_out, p.c_in, n, acc.as_mut_ptr().add(xi), (A * A) as isize, (p.c_out * A * A) as isize, !first,
                            dm.as_ptr().add(xi * n), rs, 1,
                            v.as_ptr().add(xi * n), 1, rs);
                    }
                }
            }));
            first = false;
            g0 += imgs;
        }
    });
    let mut du = partials[..du_len].to_vec();
    for part in partials.chunks(du_len).skip(1) {
        du.iter_mut().zip(part).for_each(|(d, q)| *d += q);
    }
    weight_grad_from_transformed::<M, A, T>(p, &du)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64: out[co, oy, ox] = sum w[co, ci, ky, kx] x[ci, oy + ky - 1, ox + kx - 1].
    fn direct(p: Plan, x: &[f32], w: &[f32]) -> Vec<f64> {
        let mut out = vec![0f64; p.b_sz * p.out_len()];
        for b in 0..p.b_sz {
            for co in 0..p.c_out {
                for oy in 0..p.h {
                    for ox in 0..p.w {
                        let mut acc = 0f64;
                        for ci in 0..p.c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy as isize + ky as isize - 1, ox as isize + kx as isize - 1);
                                    if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                                        acc += w[((co * p.c_in + ci) * 3 + ky) * 3 + kx] as f64
                                            * x[b * p.in_len() + (ci * p.h + iy as usize) * p.w + ix as usize] as f64;
                                    }
                                }
                            }
                        }
                        out[b * p.out_len() + (co * p.h + oy) * p.w + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn data(n: usize, salt: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + salt * 104_729) % 1999) as f32 / 1999.0) - 0.5).collect()
    }

    /// The written-out 1-D transforms are the products with their matrices.
    fn check_1d<const M: usize, const A: usize, T: Tiling<M, A>>() {
        let x: [Lanes; A] = std::array::from_fn(|k| Lanes([(k * k + 1) as f32 * 0.37; LANES]));
        let product = |row: &[f32], xs: &[Lanes]| row.iter().zip(xs).map(|(c, v)| c * v.0[0]).sum::<f32>();
        for (i, out) in T::input_1d(x).iter().enumerate() {
            assert!((out.0[0] - product(&T::BT[i], &x)).abs() < 1e-5, "B^T row {i}");
        }
        for (i, out) in T::output_1d(x).iter().enumerate() {
            assert!((out.0[0] - product(&T::AT[i], &x)).abs() < 1e-4, "A^T row {i}");
        }
        let g: [Lanes; M] = std::array::from_fn(|k| x[k]);
        for (i, out) in T::output_adjoint_1d(g).iter().enumerate() {
            assert!((out.0[0] - product(&T::A_MAT[i], &g)).abs() < 1e-4, "A row {i}");
        }
        for (i, row) in T::A_MAT.iter().enumerate() {
            for (a, &v) in row.iter().enumerate() {
                assert_eq!(v, T::AT[a][i], "A is the transpose of A^T");
            }
        }
    }

    #[test]
    fn written_out_transforms_are_the_matrices() {
        check_1d::<2, 4, F2>();
        check_1d::<4, 6, F4>();
    }

    #[test]
    fn forward_and_weight_gradient_match_the_definition_on_odd_and_even_sizes() {
        for tile in [TileSize::F2, TileSize::F4] {
            for &(b, ci, co, h, w) in &[(3, 2, 3, 5, 7), (2, 4, 5, 8, 8), (1, 1, 1, 1, 1), (20, 3, 2, 4, 6), (2, 2, 2, 9, 3)] {
                let p = Plan::new(tile, b, ci, co, h, w);
                let x = data(b * ci * h * w, 1);
                let wt = data(co * ci * 9, 2);
                let want = direct(p, &x, &wt);
                let got = forward(p, &x, &wt, None);
                for (g, e) in got.iter().zip(&want) {
                    assert!((*g as f64 - e).abs() < 1e-5, "{tile:?} forward {b} {ci} {co} {h} {w}: {g} vs {e}");
                }
                let residual = data(b * co * h * w, 4);
                let onto = forward(p, &x, &wt, Some(&residual));
                for ((g, e), r) in onto.iter().zip(&want).zip(&residual) {
                    assert!((*g as f64 - e - *r as f64).abs() < 1e-5, "{tile:?} forward with residual: {g} vs {e} + {r}");
                }
                // <dy, conv(x, w)> is linear in w: its gradient is the weight gradient
                let dy = data(b * co * h * w, 3);
                let dw = weight_grad(p, &x, &dy);
                for k in 0..co * ci * 9 {
                    let mut basis = vec![0f32; co * ci * 9];
                    basis[k] = 1.0;
                    let e: f64 = direct(p, &x, &basis).iter().zip(&dy).map(|(a, &d)| a * d as f64).sum();
                    assert!((dw[k] as f64 - e).abs() < 1e-4, "{tile:?} weight grad {b} {ci} {co} {h} {w} [{k}]: {} vs {e}", dw[k]);
                }
            }
        }
    }
}
