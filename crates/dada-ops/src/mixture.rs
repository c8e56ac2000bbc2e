//! `weighted_mixture`: `sum_k weights[:, k] * op_k(images, magnitudes)`, fused on the CPU.
use std::sync::{Arc, Mutex};

use candle::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::kernel::{
    cpu_f32, dot, fused_kernels, par_zeroed_chunks, with_f32, ImageDims, ImageKernel,
};
use crate::{OpParams, OpSet};

/// The weighted sum of every op of `ops` applied to the same images:
/// `out[b] = sum_k weights[b, k] * op_k(images[b], magnitudes[b, k])`.
///
/// `images (B,C,H,W)`, `weights (B, n_ops)`, `magnitudes` either `(B,)` (shared by all ops) or
/// `(B, n_ops)` (one per op), `params[k]` drawn by `ops.get(k).sample`. Differentiable w.r.t.
/// images, magnitudes and weights. On the CPU with f32 tensors (and every op providing a
/// kernel) this is one fused pass over the batch, parallel over images; otherwise it is
/// [`weighted_mixture_reference`].
pub fn weighted_mixture(
    ops: &OpSet,
    images: &Tensor,
    magnitudes: &Tensor,
    weights: &Tensor,
    params: &[OpParams],
) -> Result<Tensor> {
    let (_, per_op) = check_mixture(ops, images, magnitudes, weights, params)?;
    let ops_and_params = ops.iter().map(|op| op.as_ref()).zip(params);
    match fused_kernels(ops_and_params, images)? {
        Some(kernels) => images.contiguous()?.apply_op3(
            &magnitudes.contiguous()?,
            &weights.contiguous()?,
            FusedMixture::new(kernels, per_op),
        ),
        None => weighted_mixture_reference(ops, images, magnitudes, weights, params),
    }
}

/// [`weighted_mixture`] built from each op's plain-candle `apply_reference` (any device).
pub fn weighted_mixture_reference(
    ops: &OpSet,
    images: &Tensor,
    magnitudes: &Tensor,
    weights: &Tensor,
    params: &[OpParams],
) -> Result<Tensor> {
    let (b, per_op) = check_mixture(ops, images, magnitudes, weights, params)?;
    let mut acc: Option<Tensor> = None;
    for (k, (op, p)) in ops.iter().zip(params).enumerate() {
        let m = if per_op {
            magnitudes.narrow(1, k, 1)?.squeeze(1)?
        } else {
            magnitudes.clone()
        };
        let w = weights.narrow(1, k, 1)?.reshape((b, 1, 1, 1))?;
        let term = op.apply_reference(images, &m, p)?.broadcast_mul(&w)?;
        acc = Some(match acc {
            None => term,
            Some(a) => (a + term)?,
        });
    }
    match acc {
        Some(a) => Ok(a),
        None => images.zeros_like(),
    }
}

/// Checks the mixture's inputs and returns the batch size and whether the magnitudes are
/// per op `(B, n_ops)` rather than shared `(B,)`.
fn check_mixture(
    ops: &OpSet,
    images: &Tensor,
    magnitudes: &Tensor,
    weights: &Tensor,
    params: &[OpParams],
) -> Result<(usize, bool)> {
    let dims = images.dims();
    if dims.len() != 4 {
        bail!("weighted_mixture: images must be (B,C,H,W), got {dims:?}")
    }
    let (b, k) = (dims[0], ops.len());
    if weights.dims() != [b, k] {
        bail!(
            "weighted_mixture: weights must be ({b}, {k}), got {:?}",
            weights.dims()
        )
    }
    let per_op = match magnitudes.dims() {
        [mb] if *mb == b => false,
        [mb, mk] if *mb == b && *mk == k => true,
        d => bail!("weighted_mixture: magnitudes must be ({b},) or ({b}, {k}), got {d:?}"),
    };
    if params.len() != k {
        bail!(
            "weighted_mixture: need {k} params (one per op), got {}",
            params.len()
        )
    }
    if magnitudes.dtype() != images.dtype() || weights.dtype() != images.dtype() {
        bail!("weighted_mixture: images, magnitudes and weights must share a dtype")
    }
    Ok((b, per_op))
}

/// Recycled per-op output buffers: a fresh 24 MB allocation per forward costs thousands of page
/// faults; a training loop reuses the buffer of the previous step's (dropped) graph.
static BUFFERS: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
const MAX_BUFFERS: usize = 4;

thread_local! {
    static TMP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on an image-sized scratch buffer of `n` f32 (this thread's, reused from image to
/// image; a fresh one if a kernel re-entered the mixture on this thread).
fn with_tmp<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    TMP.with(|cell| match cell.try_borrow_mut() {
        Ok(mut tmp) => {
            tmp.resize(n, 0.0);
            f(&mut tmp[..n])
        }
        Err(_) => f(&mut vec![0f32; n]),
    })
}

/// A buffer of exactly `len` elements (contents unspecified: every op overwrites its slice).
fn take_buffer(len: usize) -> Vec<f32> {
    let recycled = BUFFERS.lock().ok().and_then(|mut pool| {
        let i = pool.iter().position(|v| v.capacity() >= len)?;
        Some(pool.swap_remove(i))
    });
    let mut v = recycled.unwrap_or_default();
    v.resize(len, 0.0);
    v.truncate(len);
    v
}

impl Drop for FusedMixture {
    fn drop(&mut self) {
        if let (Ok(outputs), Ok(mut pool)) = (self.outputs.get_mut(), BUFFERS.lock()) {
            if pool.len() < MAX_BUFFERS && outputs.capacity() > 0 {
                pool.push(std::mem::take(outputs));
            }
        }
    }
}

struct FusedMixture {
    kernels: Vec<Arc<dyn ImageKernel>>,
    per_op: bool,
    /// Per op, its slot in `outputs`, or `None` where the backward pass recomputes the op's
    /// output instead ([`ImageKernel::recompute_output`]).
    slots: Vec<Option<usize>>,
    /// The kept ops' outputs `(B, n_kept, C, H, W)` from the forward pass, for the weight
    /// gradients (while the graph lives).
    outputs: Mutex<Vec<f32>>,
}

impl FusedMixture {
    fn new(kernels: Vec<Arc<dyn ImageKernel>>, per_op: bool) -> Self {
        let mut kept = 0;
        let slots = kernels
            .iter()
            .map(|k| {
                (!k.recompute_output()).then(|| {
                    kept += 1;
                    kept - 1
                })
            })
            .collect();
        Self {
            kernels,
            per_op,
            slots,
            outputs: Mutex::new(Vec::new()),
        }
    }

    /// Number of ops whose outputs the forward keeps.
    fn kept(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    #[inline]
    fn magnitude(&self, mags: &[f32], i: usize, k: usize) -> f32 {
        if self.per_op {
            mags[i * self.kernels.len() + k]
        } else {
            mags[i]
        }
    }
}

impl CustomOp3 for FusedMixture {
    fn name(&self) -> &'static str {
        "weighted_mixture"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let images = cpu_f32("weighted_mixture", s1, l1)?;
        let mags = cpu_f32("weighted_mixture", s2, l2)?;
        let weights = cpu_f32("weighted_mixture", s3, l3)?;
        let (b, c, h, w) = l1.shape().dims4()?;
        let dims = ImageDims { c, h, w };
        let (n, k_ops) = (dims.len(), self.kernels.len());
        let kept = self.kept();
        // (one dummy element per image where no output is kept, so the images still zip)
        let per_image = (kept * n).max(1);
        let mut outputs = take_buffer(b * per_image);
        let out = par_zeroed_chunks(
            b,
            n,
            outputs.par_chunks_mut(per_image),
            |i, dst, kept_out| {
                let x = &images[i * n..(i + 1) * n];
                with_tmp(n, |tmp| {
                    for (k, kernel) in self.kernels.iter().enumerate() {
                        let res: &mut [f32] = match self.slots[k] {
                            Some(s) => &mut kept_out[s * n..(s + 1) * n],
                            None => &mut *tmp,
                        };
                        kernel.forward(i, self.magnitude(mags, i, k), x, dims, res);
                        let wk = weights[i * k_ops + k];
                        if wk != 0.0 {
                            dst.iter_mut()
                                .zip(res.iter())
                                .for_each(|(d, t)| *d += wk * t);
                        }
                    }
                })
            },
        );
        *self.outputs.lock().expect("mixture cache") = outputs;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        weights: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, w) = images.dims4()?;
        let dims = ImageDims { c, h, w };
        let (n, k_ops) = (dims.len(), self.kernels.len());
        let m_per_image = if self.per_op { k_ops } else { 1 };
        let mut grad_mags = vec![0f32; b * m_per_image];
        let mut grad_weights = vec![0f32; b * k_ops];
        let grad_images = with_f32(images, |x| {
            with_f32(magnitudes, |mags| {
                with_f32(weights, |wts| {
                    with_f32(grad_res, |g| {
                        if n == 0 || k_ops == 0 {
                            return Ok(vec![0f32; b * n]);
                        }
                        let cached = self.outputs.lock().expect("mixture cache");
                        let kept = self.kept();
                        let have_outputs = cached.len() == b * (kept * n).max(1);
                        Ok(par_zeroed_chunks(
                            b,
                            n,
                            grad_mags
                                .par_chunks_mut(m_per_image)
                                .zip(grad_weights.par_chunks_mut(k_ops)),
                            |i, gx, (gm, gw)| {
                                with_tmp(n, |tmp| {
                                    let r = i * n..(i + 1) * n;
                                    let (xi, gi) = (&x[r.clone()], &g[r]);
                                    for (k, kernel) in self.kernels.iter().enumerate() {
                                        let m = self.magnitude(mags, i, k);
                                        let wk = wts[i * k_ops + k];
                                        let kept_dot = match self.slots[k] {
                                            Some(s) if have_outputs => {
                                                let at = (i * kept + s) * n;
                                                Some(dot(&cached[at..at + n], gi))
                                            }
                                            _ => None,
                                        };
                                        let dm = match (kept_dot, wk == 0.0) {
                                            (Some(d), true) => {
                                                gw[k] = d;
                                                continue;
                                            }
                                            (None, true) => {
                                                gw[k] = kernel.output_dot(i, m, xi, dims, gi, tmp);
                                                continue;
                                            }
                                            (Some(d), false) => {
                                                gw[k] = d;
                                                kernel.backward(i, m, xi, dims, gi, wk, gx)
                                            }
                                            (None, false) => {
                                                let (dm, d) = kernel.backward_with_dot(
                                                    i, m, xi, dims, gi, wk, gx, tmp,
                                                );
                                                gw[k] = d;
                                                dm
                                            }
                                        };
                                        gm[if self.per_op { k } else { 0 }] += wk * dm;
                                    }
                                })
                            },
                        ))
                    })
                })
            })
        })?;
        let dev = images.device();
        let grad_mags = if self.per_op {
            Tensor::from_vec(grad_mags, (b, k_ops), dev)?
        } else {
            Tensor::from_vec(grad_mags, b, dev)?
        };
        Ok((
            Some(Tensor::from_vec(grad_images, (b, c, h, w), dev)?),
            Some(grad_mags),
            Some(Tensor::from_vec(grad_weights, (b, k_ops), dev)?),
        ))
    }
}
