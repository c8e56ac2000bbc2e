//! Fused CPU kernels: the `ImageKernel` trait and the candle `CustomOp2` that runs one over a batch.
use std::sync::Arc;

use candle::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use crate::{AugOp, OpParams};

/// The size of one image `(C, H, W)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDims {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl ImageDims {
    /// Elements of one image, `c * h * w`.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Pixels of one channel plane, `h * w`.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Whether the image has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forward and backward of one op on one image, as contiguous `(C, H, W)` f32 slices.
///
/// The per-image random parameters (signs, centres, noise) are captured by the kernel when the
/// op builds it (`AugOp::kernel`); `index` is the image's position in the batch.
pub trait ImageKernel: Send + Sync {
    /// Writes `op(src)` for image `index` with magnitude `magnitude` into `dst` (fully).
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]);

    /// Adds `scale * (d out / d src)^T grad_out` to `grad_src` and returns
    /// `sum(grad_out * d out / d magnitude)` (unscaled).
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32;

    /// Whether [`weighted_mixture`](crate::weighted_mixture) recomputes this op's output in its
    /// backward pass ([`ImageKernel::output_dot`]) instead of keeping the forward's output:
    /// `true` where the forward is cheaper than storing an image-sized buffer per op and image
    /// and reading it back from memory. Default `false`.
    fn recompute_output(&self) -> bool {
        false
    }

    /// `sum(grad_out * op(src))` for image `index`: the gradient of this op's weight in a
    /// mixture. `tmp` is scratch of the image's length. The default runs `forward` into `tmp`.
    #[allow(clippy::too_many_arguments)]
    fn output_dot(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        tmp: &mut [f32],
    ) -> f32 {
        self.forward(index, magnitude, src, dims, tmp);
        dot(tmp, grad_out)
    }

    /// [`ImageKernel::backward`] and [`ImageKernel::output_dot`] in one call, what the mixture
    /// needs per op and image: `(magnitude gradient, sum(grad_out * op(src)))`. Kernels
    /// override it to share the work of the two.
    #[allow(clippy::too_many_arguments)]
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
        let out_dot = self.output_dot(index, magnitude, src, dims, grad_out, tmp);
        (
            self.backward(index, magnitude, src, dims, grad_out, scale, grad_src),
            out_dot,
        )
    }
}

/// `sum(a * b)` over the common length, with eight independent accumulators (vectorizes).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Checks `images (B,C,H,W)` and `magnitudes (B,)` and returns the dims.
pub(crate) fn check_inputs(
    name: &str,
    images: &Tensor,
    magnitudes: &Tensor,
) -> Result<(usize, ImageDims)> {
    let dims = images.dims();
    if dims.len() != 4 {
        bail!("{name}: images must be (B,C,H,W), got {dims:?}")
    }
    let (b, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    if magnitudes.dims() != [b] {
        bail!(
            "{name}: magnitudes must be ({b},), got {:?}",
            magnitudes.dims()
        )
    }
    if !images.dtype().is_float() || magnitudes.dtype() != images.dtype() {
        bail!(
            "{name}: images and magnitudes must share a float dtype, got {:?} and {:?}",
            images.dtype(),
            magnitudes.dtype()
        )
    }
    Ok((b, ImageDims { c, h, w }))
}

/// The one place that chooses between the fused CPU kernels and the reference path: the
/// kernels of `ops` (each with its params) for `images (B,C,H,W)`, in order, when the images
/// are f32 on the CPU and every op has a kernel for them; `None` when the plain-candle
/// reference path must run instead (any other device or dtype, an op without a kernel).
/// Every built-in op's `apply` ([`dispatch`]) and [`weighted_mixture`](crate::weighted_mixture)
/// ask it.
pub(crate) fn fused_kernels<'a>(
    ops: impl IntoIterator<Item = (&'a dyn AugOp, &'a OpParams)>,
    images: &Tensor,
) -> Result<Option<Vec<Arc<dyn ImageKernel>>>> {
    if !(images.device().is_cpu() && images.dtype() == DType::F32) {
        return Ok(None);
    }
    let shape = images.dims4()?;
    let mut kernels = Vec::new();
    for (op, params) in ops {
        match op.kernel(params, shape)? {
            Some(kernel) => kernels.push(kernel),
            None => return Ok(None),
        }
    }
    Ok(Some(kernels))
}

/// The `apply` of every built-in op: checks the inputs, then runs the op's fused kernel where
/// [`fused_kernels`] gives one and its plain-candle `apply_reference` otherwise.
pub(crate) fn dispatch(
    op: &dyn AugOp,
    images: &Tensor,
    magnitudes: &Tensor,
    params: &OpParams,
) -> Result<Tensor> {
    check_inputs(op.name(), images, magnitudes)?;
    match fused_kernels([(op, params)], images)?.and_then(|mut kernels| kernels.pop()) {
        Some(kernel) => apply_kernel(op.name(), kernel, images, magnitudes),
        None => op.apply_reference(images, magnitudes, params),
    }
}

/// Runs `kernel` over the batch as a candle op with its own backward (CPU, f32).
pub fn apply_kernel(
    name: &'static str,
    kernel: Arc<dyn ImageKernel>,
    images: &Tensor,
    magnitudes: &Tensor,
) -> Result<Tensor> {
    check_inputs(name, images, magnitudes)?;
    images
        .contiguous()?
        .apply_op2(&magnitudes.contiguous()?, FusedOp { name, kernel })
}

struct FusedOp {
    name: &'static str,
    kernel: Arc<dyn ImageKernel>,
}

impl CustomOp2 for FusedOp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let images = cpu_f32(self.name, s1, l1)?;
        let mags = cpu_f32(self.name, s2, l2)?;
        let (b, c, h, w) = l1.shape().dims4()?;
        let dims = ImageDims { c, h, w };
        let n = dims.len();
        let out = par_zeroed_chunks(b, n, rayon::iter::repeat_n((), b), |i, dst, ()| {
            self.kernel
                .forward(i, mags[i], &images[i * n..(i + 1) * n], dims, dst)
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gm) = kernel_backward(self.kernel.as_ref(), images, magnitudes, grad_res)?;
        Ok((Some(gx), Some(gm)))
    }
}

/// The backward of [`apply_kernel`] outside candle's autograd: for an upstream gradient
/// `grad_out (B,C,H,W)`, returns `(d L / d images, d L / d magnitudes)` (CPU, f32). Useful to
/// drive the fused kernels from elsewhere and to time them alone.
pub fn kernel_backward(
    kernel: &dyn ImageKernel,
    images: &Tensor,
    magnitudes: &Tensor,
    grad_out: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (b, c, h, w) = images.dims4()?;
    if grad_out.dims() != images.dims() {
        bail!(
            "kernel_backward: grad_out must be {:?}, got {:?}",
            images.dims(),
            grad_out.dims()
        )
    }
    let dims = ImageDims { c, h, w };
    let n = dims.len();
    let mut grad_mags = vec![0f32; b];
    let grad_images = with_f32(images, |x| {
        with_f32(magnitudes, |mags| {
            with_f32(grad_out, |g| {
                Ok(par_zeroed_chunks(
                    b,
                    n,
                    grad_mags.par_iter_mut(),
                    |i, gx, gm| {
                        let r = i * n..(i + 1) * n;
                        *gm = kernel.backward(i, mags[i], &x[r.clone()], dims, &g[r], 1.0, gx);
                    },
                ))
            })
        })
    })?;
    let dev = images.device();
    Ok((
        Tensor::from_vec(grad_images, (b, c, h, w), dev)?,
        Tensor::from_vec(grad_mags, b, dev)?,
    ))
}

/// A vector of `b` chunks of `n` f32, each zeroed and then passed to `f(i, chunk, side_i)` in
/// parallel with the `i`-th item of `side` (which must have `b` items). Each chunk is zeroed by
/// the thread that fills it, while it is in cache, instead of by one single-threaded memset of
/// the whole buffer before the parallel loop.
pub(crate) fn par_zeroed_chunks<S, I>(
    b: usize,
    n: usize,
    side: I,
    f: impl Fn(usize, &mut [f32], S) + Sync + Send,
) -> Vec<f32>
where
    S: Send,
    I: IndexedParallelIterator<Item = S>,
{
    assert_eq!(side.len(), b, "par_zeroed_chunks: one side item per chunk");
    let len = b * n;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if n > 0 {
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(n)
            .zip(side)
            .enumerate()
            .for_each(|(i, (chunk, s))| {
                for v in chunk.iter_mut() {
                    v.write(0.0);
                }
                // SAFETY: every element of the chunk was just initialised
                let chunk =
                    unsafe { &mut *(chunk as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
                f(i, chunk, s)
            });
    }
    // SAFETY: the `b` chunks of `n` cover `len` (the zip is exact: `side` has `b` items) and each
    // was initialised above; with `n = 0`, `len` is 0. A panic in `f` leaves `len` unset.
    unsafe { out.set_len(len) };
    out
}

/// The contiguous f32 slice of a CPU storage.
pub(crate) fn cpu_f32<'a>(name: &str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{name}: the fused cpu kernel needs f32 tensors, got another dtype")
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => bail!("{name}: the fused cpu kernel needs contiguous tensors"),
    }
}

/// Calls `f` on the contiguous f32 data of a CPU tensor, copying only if it is strided (a
/// broadcast scalar, the gradient of a sum or mean, is filled without candle's strided copy).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    if t.dtype() == DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let Storage::Cpu(CpuStorage::F32(v)) = &*storage {
            if let Some((start, end)) = layout.contiguous_offsets() {
                return f(&v[start..end]);
            }
            if layout.stride().iter().all(|&s| s == 0) {
                let filled = vec![v[layout.start_offset()]; t.elem_count()];
                drop(storage);
                return f(&filled);
            }
        }
    }
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    f(&v)
}

/// A per-image vector `(B,)` of a params tensor, or `default` when absent.
pub(crate) fn per_image(
    t: Option<&Tensor>,
    b: usize,
    default: f32,
    what: &str,
) -> Result<Vec<f32>> {
    match t {
        None => Ok(vec![default; b]),
        Some(t) => {
            if t.dims() != [b] {
                bail!("{what} must be ({b},), got {:?}", t.dims())
            }
            t.to_dtype(DType::F32)?.to_vec1::<f32>()
        }
    }
}
