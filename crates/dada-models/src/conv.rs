//! Fast CPU 2-D convolution: im2col / col2im + GEMM, parallel over the batch, as a candle
//! `CustomOp2` with its own backward for the input and the weight.
//!
//! candle's CPU `conv2d` backward computes the input gradient with a direct
//! `conv_transpose2d` loop and the weight gradient with a large-kernel convolution; both are far
//! slower than the GEMM formulation. Here, per image `b` (rows `K = c_in * kh * kw`, columns
//! `N = out_h * out_w`):
//! - forward:      `y_b  = W (c_out x K) * col(x_b) (K x N)`
//! - input grad:   `dx_b = col2im(W^T (K x c_out) * dy_b (c_out x N))`; for stride 1 instead
//!   the forward kernel on `dy` with the flipped, transposed kernel (a `k = c_out kh kw` GEMM
//!   and no scattering col2im)
//! - weight grad:  `dW   = sum_b dy_b (c_out x N) * col(x_b)^T (N x K)`, accumulated as `dW^T`
//!   (the orientation the gemm crate runs fastest on these shapes)
//!
//! The column matrix is built per tile of output rows (at most 384 KiB, so it stays in L2 between
//! im2col and the GEMM). 1x1 stride-1 convolutions skip im2col entirely. Weight-gradient partial sums are taken over a
//! fixed split of the batch, so results do not depend on the thread count or scheduling.
//! On other devices or dtypes [`conv2d`] uses candle's own convolution.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

use candle::{CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu::{f32_slice, uninit_vec};
use crate::winograd;

/// Number of partial sums for the weight gradient (fixed for determinism).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// The algorithm for 3x3, stride-1, padding-1 convolutions on CPU (the forward pass, the input
/// gradient and the weight gradient). Other shapes always take the im2col GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// The measured rule [`winograd_tile`]: Winograd where it is faster, im2col GEMM elsewhere.
    /// The choice depends on the shape only.
    Auto,
    /// im2col + GEMM everywhere.
    Gemm,
    /// Winograd F(2x2, 3x3) for every 3x3 stride-1 padding-1 convolution.
    WinogradF2,
    /// Winograd F(4x4, 3x3) for every 3x3 stride-1 padding-1 convolution.
    WinogradF4,
}

static ALGORITHM: AtomicU8 = AtomicU8::new(0);

/// Sets the CPU convolution algorithm for the whole process (default [`ConvAlgorithm::Auto`]).
/// Meant for benchmarks and comparisons; the algorithms agree to float rounding.
pub fn set_conv_algorithm(algorithm: ConvAlgorithm) {
    ALGORITHM.store(algorithm as u8, Ordering::Relaxed);
}

thread_local! {
    /// A scoped override of the process-wide algorithm on this thread ([`with_conv_algorithm`]).
    static THREAD_ALGORITHM: std::cell::Cell<Option<ConvAlgorithm>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `algorithm` for the convolutions this thread starts (forward and backward
/// passes run on the calling thread choose their algorithm there), whatever the process-wide
/// setting; other threads are not affected. For tests and comparisons within one process.
pub fn with_conv_algorithm<R>(algorithm: ConvAlgorithm, f: impl FnOnce() -> R) -> R {
    let previous = THREAD_ALGORITHM.with(|a| a.replace(Some(algorithm)));
    struct Restore(Option<ConvAlgorithm>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_ALGORITHM.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The CPU convolution algorithm in use on this thread (see [`set_conv_algorithm`] and
/// [`with_conv_algorithm`]).
pub fn conv_algorithm() -> ConvAlgorithm {
    if let Some(algorithm) = THREAD_ALGORITHM.with(|a| a.get()) {
        return algorithm;
    }
    match ALGORITHM.load(Ordering::Relaxed) {
        1 => ConvAlgorithm::Gemm,
        2 => ConvAlgorithm::WinogradF2,
        3 => ConvAlgorithm::WinogradF4,
        _ => ConvAlgorithm::Auto,
    }
}

/// The measured rule of [`ConvAlgorithm::Auto`] for a 3x3 stride-1 padding-1 convolution with
/// these channel counts and image size: the Winograd output tile (2 or 4) where Winograd beats
/// the im2col GEMM, `None` where the GEMM is faster. Measured per WRN-40-2 layer shape with
/// `cargo run --release -p dada-models --example conv_time` (docs/performance.md): F(4x4, 3x3)
/// is 1.22x faster forward and 1.05x backward at 32 channels of 32x32; at 16x16 and 8x8 every
/// Winograd variant loses in the backward pass.
pub fn winograd_tile(c_in: usize, c_out: usize, h: usize, w: usize) -> Option<usize> {
    // F(4x4, 3x3) needs whole 8-tile lane vectors (width 32 and more) to pay for its transforms
    (c_in >= 16 && c_out >= 16 && h.min(w) >= 32).then_some(4)
}

/// The Winograd tile this convolution runs with under the current algorithm, if any.
fn winograd_tile_for(g: Geom) -> Option<winograd::TileSize> {
    if !(g.kh == 3 && g.kw == 3 && g.stride == 1 && g.padding == 1) {
        return None;
    }
    match conv_algorithm() {
        ConvAlgorithm::Auto => match winograd_tile(g.c_in, g.c_out, g.h, g.w)? {
            2 => Some(winograd::TileSize::F2),
            _ => Some(winograd::TileSize::F4),
        },
        ConvAlgorithm::Gemm => None,
        ConvAlgorithm::WinogradF2 => Some(winograd::TileSize::F2),
        ConvAlgorithm::WinogradF4 => Some(winograd::TileSize::F4),
    }
}

fn winograd_plan(tile: winograd::TileSize, g: Geom) -> winograd::Plan {
    winograd::Plan::new(tile, g.b_sz, g.c_in, g.c_out, g.h, g.w)
}

/// 2-D convolution without bias, groups 1, dilation 1: `input` (B, C_in, H, W), `weight`
/// (C_out, C_in, kh, kw) -> (B, C_out, H_out, W_out).
///
/// Uses the fast GEMM kernel for f32 on CPU and candle's `conv2d` elsewhere.
pub fn conv2d(input: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if matches!(input.device(), Device::Cpu) && input.dtype() == DType::F32 && weight.dtype() == DType::F32 {
        conv2d_fast(input, weight, stride, padding)
    } else {
        conv2d_reference(input, weight, stride, padding)
    }
}

/// The fast CPU kernel; errors on other devices or dtypes.
pub fn conv2d_fast(input: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let geom = Geom::new(input.dims(), weight.dims(), stride, padding)?;
    if !matches!(input.device(), Device::Cpu) {
        candle::bail!("conv2d_fast: CPU only, got {:?}", input.device().location())
    }
    input.contiguous()?.apply_op2(&weight.contiguous()?, FastConv2d { geom })
}

/// The gradients of [`conv2d_fast`] w.r.t. its input and its weight for the output gradient
/// `grad_out`: the kernels its backward pass runs, callable alone (for benchmarks and checks).
/// CPU and f32 only.
pub fn conv2d_fast_backward(input: &Tensor, weight: &Tensor, grad_out: &Tensor, stride: usize, padding: usize) -> Result<(Tensor, Tensor)> {
    let geom = Geom::new(input.dims(), weight.dims(), stride, padding)?;
    if !matches!(input.device(), Device::Cpu) {
        candle::bail!("conv2d_fast_backward: CPU only, got {:?}", input.device().location())
    }
    let (grad_out, weight) = (grad_out.contiguous()?, weight.contiguous()?);
    let grad_input = grad_out.apply_op2_no_bwd(&weight, &ConvInputGrad { geom })?;
    let grad_weight = input.contiguous()?.apply_op2_no_bwd(&grad_out, &ConvWeightGrad { geom })?;
    Ok((grad_input, grad_weight))
}

/// `conv2d(input, weight) + residual` with `residual` of the output's shape: the residual
/// connection of a ResNet block. On f32 CPU tensors the convolution accumulates onto the
/// residual in one op (no separate add in the forward pass and one gradient edge fewer in the
/// backward pass); elsewhere it is [`conv2d`] followed by an add.
pub fn conv2d_add(input: &Tensor, weight: &Tensor, residual: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let fast = matches!(input.device(), Device::Cpu)
        && [input.dtype(), weight.dtype(), residual.dtype()].iter().all(|&d| d == DType::F32);
    if !fast {
        return conv2d(input, weight, stride, padding)? + residual;
    }
    let geom = Geom::new(input.dims(), weight.dims(), stride, padding)?;
    let out_dims = [geom.b_sz, geom.c_out, geom.out_h, geom.out_w];
    if residual.dims() != out_dims {
        candle::bail!("conv2d_add: residual must have the output's shape {out_dims:?}, got {:?}", residual.dims())
    }
    input.contiguous()?.apply_op3(&weight.contiguous()?, &residual.contiguous()?, FastConv2dAdd { geom })
}

/// candle's stock convolution (the reference path and the path on CUDA).
///
/// candle 0.9.2's CPU tiled `conv2d` takes a contiguous (B, C, H, W) input for an NHWC one when
/// `C == H == W` (its layout check compares strides only) and returns wrong values, e.g. for
/// WRN-40-2's 32-channel 32x32 layers. On CPU in that case this transposes H and W on input,
/// kernel and output, which gives a layout the check rejects and the same mathematical result.
pub fn conv2d_reference(input: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let hits_candle_bug = match input.dims() {
        &[_, c, h, w] => matches!(input.device(), Device::Cpu) && c == h && h == w && w > 1,
        _ => false,
    };
    if hits_candle_bug {
        let y = input.transpose(2, 3)?.conv2d(&weight.transpose(2, 3)?, padding, stride, 1, 1)?;
        y.transpose(2, 3)?.contiguous()
    } else {
        input.conv2d(weight, padding, stride, 1, 1)
    }
}

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geom {
    b_sz: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    out_h: usize,
    out_w: usize,
}

impl Geom {
    fn new(input: &[usize], weight: &[usize], stride: usize, padding: usize) -> Result<Self> {
        let &[b_sz, c_in, h, w] = input else {
            candle::bail!("conv2d: input must be (B,C,H,W), got {input:?}")
        };
        let &[c_out, c_in_k, kh, kw] = weight else {
            candle::bail!("conv2d: weight must be (C_out,C_in,kh,kw), got {weight:?}")
        };
        if c_in != c_in_k {
            candle::bail!("conv2d: input has {c_in} channels but weight expects {c_in_k}")
        }
        if stride == 0 || h + 2 * padding < kh || w + 2 * padding < kw {
            candle::bail!("conv2d: invalid geometry input {input:?} weight {weight:?} stride {stride} padding {padding}")
        }
        let out_h = (h + 2 * padding - kh) / stride + 1;
        let out_w = (w + 2 * padding - kw) / stride + 1;
        Ok(Self { b_sz, c_in, h, w, c_out, kh, kw, stride, padding, out_h, out_w })
    }

    /// Rows of the column matrix.
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Columns of the column matrix (output pixels).
    fn n(&self) -> usize {
        self.out_h * self.out_w
    }

    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.c_out * self.n()
    }
}

struct FastConv2d {
    geom: Geom,
}

impl CustomOp2 for FastConv2d {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let x = f32_slice(s1, l1, "conv2d")?;
        let weight = f32_slice(s2, l2, "conv2d")?;
        let out = forward(g, x, weight);
        Ok((CpuStorage::F32(out), Shape::from((g.b_sz, g.c_out, g.out_h, g.out_w))))
    }

    fn bwd(&self, input: &Tensor, weight: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        conv_backward(self.geom, input, weight, &grad.contiguous()?)
    }
}

/// The input gradient and (unless parameter gradients are off) the weight gradient.
fn conv_backward(geom: Geom, input: &Tensor, weight: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let grad_input = grad.apply_op2_no_bwd(weight, &ConvInputGrad { geom })?;
    if !crate::grad_mode::parameter_grads() {
        return Ok((Some(grad_input), None));
    }
    let grad_weight = input.apply_op2_no_bwd(grad, &ConvWeightGrad { geom })?;
    Ok((Some(grad_input), Some(grad_weight)))
}

/// (input, weight, residual) -> conv + residual.
struct FastConv2dAdd {
    geom: Geom,
}

impl CustomOp3 for FastConv2dAdd {
    fn name(&self) -> &'static str {
        "fast-conv2d-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let x = f32_slice(s1, l1, "conv2d_add")?;
        let weight = f32_slice(s2, l2, "conv2d_add")?;
        let residual = f32_slice(s3, l3, "conv2d_add")?;
        let out = forward_onto(g, x, weight, Some(residual));
        Ok((CpuStorage::F32(out), Shape::from((g.b_sz, g.c_out, g.out_h, g.out_w))))
    }

    fn bwd(&self, input: &Tensor, weight: &Tensor, _residual: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (grad_input, grad_weight) = conv_backward(self.geom, input, weight, &grad)?;
        Ok((grad_input, grad_weight, Some(grad)))
    }
}

/// The forward convolution of a batch: per image, `y_b = W * col(x_b)` over column tiles.
fn forward(g: Geom, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_onto(g, x, weight, None)
}

/// [`forward`], plus `residual` (of the output's shape) when given: each image's output starts
/// as its residual and the GEMMs accumulate onto it.
fn forward_onto(g: Geom, x: &[f32], weight: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
    if let Some(tile) = winograd_tile_for(g) {
        return winograd::forward(winograd_plan(tile, g), x, weight, residual);
    }
    let mut out = uninit_vec(g.b_sz * g.out_len());
    out.par_chunks_mut(g.out_len()).enumerate().for_each(|(bi, out_b)| {
        let x_b = &x[bi * g.in_len()..(bi + 1) * g.in_len()];
        if let Some(r) = residual {
            out_b.copy_from_slice(&r[bi * g.out_len()..(bi + 1) * g.out_len()]);
        }
        for_each_col_tile(g, x_b, |c0, nt, col| {
            // out_b[:, c0..c0 + nt] (c_out x nt, row stride n) [+]= W (c_out x k) * col (k x nt)
            unsafe {
                gemm_f32(g.c_out, nt, g.k(), out_b.as_mut_ptr().add(c0), g.n() as isize, residual.is_some(),
                    weight.as_ptr(), g.k() as isize, 1, col.as_ptr(), nt as isize, 1);
            }
        });
    });
    out
}

/// The input gradient of a stride-1 convolution as a forward convolution of the output
/// gradient: `dx = conv(dy, W')` with `W'[ci][co][ky][kx] = W[co][ci][kh-1-ky][kw-1-kx]` and
/// padding `kh - 1 - padding`. This runs on the forward path's large-`k` GEMMs (`k = c_out kh
/// kw`) instead of a `k = c_out` GEMM plus a scattering col2im. `None` where it does not apply.
fn input_grad_as_forward(g: Geom, dy: &[f32], weight: &[f32]) -> Option<Vec<f32>> {
    if g.stride != 1 || g.kh != g.kw || g.padding >= g.kh || g.is_pointwise() {
        return None;
    }
    let t = Geom::new(&[g.b_sz, g.c_out, g.out_h, g.out_w], &[g.c_in, g.c_out, g.kh, g.kw], 1, g.kh - 1 - g.padding).ok()?;
    if t.out_h != g.h || t.out_w != g.w {
        return None;
    }
    let (kh, kw) = (g.kh, g.kw);
    let mut flipped = uninit_vec(weight.len());
    for co in 0..g.c_out {
        for ci in 0..g.c_in {
            for ky in 0..kh {
                for kx in 0..kw {
                    flipped[((ci * g.c_out + co) * kh + ky) * kw + kx] = weight[((co * g.c_in + ci) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
                }
            }
        }
    }
    Some(forward(t, dy, &flipped))
}

/// (grad_out, weight) -> grad_input.
struct ConvInputGrad {
    geom: Geom,
}

impl CustomOp2 for ConvInputGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-input-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let grad = f32_slice(s1, l1, "conv2d backward")?;
        let weight = f32_slice(s2, l2, "conv2d backward")?;
        let shape = Shape::from((g.b_sz, g.c_in, g.h, g.w));
        if let Some(dx) = input_grad_as_forward(g, grad, weight) {
            return Ok((CpuStorage::F32(dx), shape));
        }
        let mut dx = uninit_vec(g.b_sz * g.in_len());
        dx.par_chunks_mut(g.in_len()).enumerate().for_each(|(bi, dx_b)| {
            let dy_b = &grad[bi * g.out_len()..(bi + 1) * g.out_len()];
            // dcol (k x n) = W^T (k x c_out; W is c_out x k row-major) * dy_b (c_out x n)
            if g.is_pointwise() {
                unsafe {
                    gemm_f32(g.k(), g.n(), g.c_out, dx_b.as_mut_ptr(), g.n() as isize, false,
                        weight.as_ptr(), 1, g.k() as isize, dy_b.as_ptr(), g.n() as isize, 1);
                }
                return;
            }
            dx_b.fill(0.0);
            let rows = tile_rows(g);
            with_scratch(g.k() * rows * g.out_w, |dcol| {
                let mut oy0 = 0;
                while oy0 < g.out_h {
                    let oy1 = (oy0 + rows).min(g.out_h);
                    let (c0, nt) = (oy0 * g.out_w, (oy1 - oy0) * g.out_w);
                    let dcol = &mut dcol[..g.k() * nt];
                    unsafe {
                        gemm_f32(g.k(), nt, g.c_out, dcol.as_mut_ptr(), nt as isize, false,
                            weight.as_ptr(), 1, g.k() as isize, dy_b.as_ptr().add(c0), g.n() as isize, 1);
                    }
                    col2im_rows(g, dcol, oy0, oy1, dx_b);
                    oy0 = oy1;
                }
            });
        });
        Ok((CpuStorage::F32(dx), shape))
    }
}

/// (input, grad_out) -> grad_weight.
struct ConvWeightGrad {
    geom: Geom,
}

impl CustomOp2 for ConvWeightGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-weight-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let x = f32_slice(s1, l1, "conv2d backward")?;
        let grad = f32_slice(s2, l2, "conv2d backward")?;
        let shape = Shape::from((g.c_out, g.c_in, g.kh, g.kw));
        if let Some(tile) = winograd_tile_for(g) {
            return Ok((CpuStorage::F32(winograd::weight_grad(winograd_plan(tile, g), x, grad)), shape));
        }
        let w_len = g.c_out * g.k();
        // every chunk holds at least one image, so each partial is fully written
        let per_chunk = g.b_sz.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
        let n_chunks = g.b_sz.div_ceil(per_chunk);
        let mut partials = uninit_vec(n_chunks * w_len);
        partials.par_chunks_mut(w_len).enumerate().for_each(|(ci, acc)| {
            let start = ci * per_chunk;
            let end = ((ci + 1) * per_chunk).min(g.b_sz);
            let mut first = true;
            for bi in start..end {
                let x_b = &x[bi * g.in_len()..(bi + 1) * g.in_len()];
                let dy_b = &grad[bi * g.out_len()..(bi + 1) * g.out_len()];
                for_each_col_tile(g, x_b, |c0, nt, col| {
                    // acc^T (k x c_out, stored column-major as c_out x k) += dy_b[:, c0..c0 + nt]
                    // (c_out x nt) * col^T (nt x k): the gemm crate runs this orientation
                    // 20-35% faster than a row-major (c_out x k) destination on these shapes
                    unsafe {
                        gemm_strided(g.c_out, g.k(), nt, acc.as_mut_ptr(), 1, g.c_out as isize, !first,
                            dy_b.as_ptr().add(c0), g.n() as isize, 1, col.as_ptr(), 1, nt as isize);
                    }
                    first = false;
                });
            }
        });
        // sum the partials (in chunk order) and transpose (k x c_out) -> (c_out x k)
        let mut dw_t = partials[..w_len].to_vec();
        for part in partials.chunks(w_len).skip(1) {
            dw_t.iter_mut().zip(part).for_each(|(d, p)| *d += p);
        }
        let mut dw = uninit_vec(w_len);
        for (j, row) in dw_t.chunks_exact(g.c_out).enumerate() {
            for (co, &v) in row.iter().enumerate() {
                dw[co * g.k() + j] = v;
            }
        }
        Ok((CpuStorage::F32(dw), shape))
    }
}

/// Column-tile budget in floats (384 KiB): a tile stays in L2 between im2col and the GEMM.
const TILE_FLOATS: usize = 96 * 1024;

/// Output rows per column tile.
fn tile_rows(g: Geom) -> usize {
    (TILE_FLOATS / (g.k() * g.out_w).max(1)).clamp(1, g.out_h)
}

thread_local! {
    /// Per-thread im2col scratch, kept between calls so buffers are not reallocated.
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` floats.
fn with_scratch(len: usize, f: impl FnOnce(&mut [f32])) {
    COL.with(|col| {
        let mut col = col.borrow_mut();
        if col.len() < len {
            col.resize(len, 0.0);
        }
        f(&mut col[..len]);
    })
}

/// Runs `f(first_column, n_columns, col)` over tiles of output rows of one image, `col` being
/// the (k x n_columns) column matrix of the tile; pointwise convolutions use the image itself.
fn for_each_col_tile(g: Geom, x_b: &[f32], mut f: impl FnMut(usize, usize, &[f32])) {
    if g.is_pointwise() {
        return f(0, g.n(), x_b);
    }
    let rows = tile_rows(g);
    with_scratch(g.k() * rows * g.out_w, |col| {
        let mut oy0 = 0;
        while oy0 < g.out_h {
            let oy1 = (oy0 + rows).min(g.out_h);
            let nt = (oy1 - oy0) * g.out_w;
            let tile = &mut col[..g.k() * nt];
            im2col_rows(g, x_b, oy0, oy1, tile);
            f(oy0 * g.out_w, nt, tile);
            oy0 = oy1;
        }
    })
}

/// Output columns `ox` whose input column `ox * stride + kx - padding` lies inside `[0, w)`.
fn valid_range(g: Geom, kx: usize) -> (usize, usize) {
    let (s, p) = (g.stride as isize, g.padding as isize);
    let lo = ((p - kx as isize).max(0) + s - 1) / s;
    let hi_excl = ((g.w as isize + p - kx as isize - 1).div_euclid(s) + 1).clamp(0, g.out_w as isize);
    let lo = (lo as usize).min(g.out_w);
    (lo, (hi_excl as usize).max(lo))
}

/// The column matrix of output rows `oy0..oy1`: (k x (oy1 - oy0) out_w).
fn im2col_rows(g: Geom, x_b: &[f32], oy0: usize, oy1: usize, col: &mut [f32]) {
    if g.stride == 1 && g.out_h == g.h && g.out_w == g.w {
        return im2col_same_rows(g, x_b, oy0, oy1, col);
    }
    let nt = (oy1 - oy0) * g.out_w;
    for ci in 0..g.c_in {
        let plane = &x_b[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * nt..][..nt];
                let (lo, hi) = valid_range(g, kx);
                for oy in oy0..oy1 {
                    let dst = &mut row[(oy - oy0) * g.out_w..(oy - oy0 + 1) * g.out_w];
                    let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                    if iy < 0 || iy >= g.h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if g.stride == 1 {
                        let start = lo + kx - g.padding;
                        dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                            *d = src[ox * g.stride + kx - g.padding];
                        }
                    }
                }
            }
        }
    }
}

/// im2col for stride-1 "same" convolutions: each row is the image plane shifted by
/// `(ky - p) * w + (kx - p)`, copied in one block; the columns that wrap into the neighbouring
/// image row are then zeroed.
fn im2col_same_rows(g: Geom, x_b: &[f32], oy0: usize, oy1: usize, col: &mut [f32]) {
    let (hw, w, p) = ((g.h * g.w) as isize, g.w, g.padding as isize);
    let nt = (oy1 - oy0) * w;
    for ci in 0..g.c_in {
        let plane = &x_b[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * nt..][..nt];
                let dx = kx as isize - p;
                // row[j] = plane[start + j] where that index is inside the plane
                let start = (oy0 * w) as isize + (ky as isize - p) * w as isize + dx;
                let lo = (-start).clamp(0, nt as isize) as usize;
                let hi = (hw - start).clamp(lo as isize, nt as isize) as usize;
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                if hi > lo {
                    // (an empty range may start past the plane's end: nothing to copy then)
                    let src = (start + lo as isize) as usize;
                    row[lo..hi].copy_from_slice(&plane[src..src + (hi - lo)]);
                }
                if dx < 0 {
                    for r in row.chunks_exact_mut(w) {
                        r[..(-dx) as usize].fill(0.0);
                    }
                } else if dx > 0 {
                    for r in row.chunks_exact_mut(w) {
                        r[w - dx as usize..].fill(0.0);
                    }
                }
            }
        }
    }
}

/// Adds the column matrix of output rows `oy0..oy1` back onto the image gradient (the adjoint
/// of `im2col_rows`).
fn col2im_rows(g: Geom, col: &[f32], oy0: usize, oy1: usize, dx_b: &mut [f32]) {
    let nt = (oy1 - oy0) * g.out_w;
    for ci in 0..g.c_in {
        let plane = &mut dx_b[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &col[((ci * g.kh + ky) * g.kw + kx) * nt..][..nt];
                let (lo, hi) = valid_range(g, kx);
                for oy in oy0..oy1 {
                    let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let src = &row[(oy - oy0) * g.out_w..(oy - oy0 + 1) * g.out_w];
                    let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    if g.stride == 1 {
                        let start = lo + kx - g.padding;
                        dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]).for_each(|(d, s)| *d += s);
                    } else {
                        for ox in lo..hi {
                            dst[ox * g.stride + kx - g.padding] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) * rhs (k x n)` with a row-major destination (row stride
/// `dst_rs`), single-threaded (the callers parallelise over the batch).
///
/// # Safety
/// Every pointer must cover the strided extents it is given.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(
    m: usize, n: usize, k: usize,
    dst: *mut f32, dst_rs: isize, accumulate: bool,
    lhs: *const f32, lhs_rs: isize, lhs_cs: isize,
    rhs: *const f32, rhs_rs: isize, rhs_cs: isize,
) {
    gemm_strided(m, n, k, dst, dst_rs, 1, accumulate, lhs, lhs_rs, lhs_cs, rhs, rhs_rs, rhs_cs);
}

/// The gemm crate's product `dst [+]= lhs * rhs` with every stride given as (row, column),
/// single-threaded (callers parallelise over images); also the Winograd path's GEMM.
///
/// # Safety
/// Every pointer must cover the strided extents it is given.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided(
    m: usize, n: usize, k: usize,
    dst: *mut f32, dst_rs: isize, dst_cs: isize, accumulate: bool,
    lhs: *const f32, lhs_rs: isize, lhs_cs: isize,
    rhs: *const f32, rhs_rs: isize, rhs_cs: isize,
) {
    gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
        1.0, 1.0, false, false, false, gemm::Parallelism::None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| lhs[i * k + p] * rhs[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn gemm_matches_naive_product() {
        for &(m, n, k) in &[(32, 1024, 144), (32, 1024, 288), (5, 7, 300), (64, 64, 1152)] {
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 11) as f32 - 5.0).collect();
            let mut out = vec![0f32; m * n];
            unsafe { gemm_f32(m, n, k, out.as_mut_ptr(), n as isize, false, lhs.as_ptr(), k as isize, 1, rhs.as_ptr(), n as isize, 1) };
            assert_eq!(out, naive(m, n, k, &lhs, &rhs), "m {m} n {n} k {k}");
        }
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    /// Direct convolution, the definition: out[co, oy, ox] = sum w[co, ci, ky, kx] x[ci, iy, ix].
    fn naive_conv(g: Geom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; g.out_len()];
        for co in 0..g.c_out {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let mut acc = 0f32;
                    for ci in 0..g.c_in {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                if iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize {
                                    acc += w[((co * g.c_in + ci) * g.kh + ky) * g.kw + kx]
                                        * x[(ci * g.h + iy as usize) * g.w + ix as usize];
                                }
                            }
                        }
                    }
                    out[(co * g.out_h + oy) * g.out_w + ox] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn fast_and_reference_match_the_definition_when_channels_equal_size() {
        // C == H == W: the case candle 0.9.2's tiled conv2d gets wrong without the workaround.
        let g = Geom::new(&[1, 8, 8, 8], &[4, 8, 3, 3], 1, 1).unwrap();
        // small integers: every sum is exact in f32
        let x: Vec<f32> = (0..g.in_len()).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let w: Vec<f32> = (0..g.c_out * g.k()).map(|i| ((i * 104_729) % 11) as f32 - 5.0).collect();
        let expected = naive_conv(g, &x, &w);
        let xt = Tensor::from_slice(&x, (1, 8, 8, 8), &Device::Cpu).unwrap();
        let wt = Tensor::from_slice(&w, (4, 8, 3, 3), &Device::Cpu).unwrap();
        let fast: Vec<f32> = conv2d_fast(&xt, &wt, 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let reference: Vec<f32> = conv2d_reference(&xt, &wt, 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(fast, expected);
        assert_eq!(reference, expected);
        // FIXME(candle 0.9.2): the stock op itself is wrong here; when this starts failing the
        // bug is fixed upstream and the workaround in `conv2d_reference` can go.
        let stock: Vec<f32> = xt.conv2d(&wt, 1, 1, 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_ne!(stock, expected);
    }
}
