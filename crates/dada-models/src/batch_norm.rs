//! BatchNorm over (B, C, H, W) with an optional fused ReLU: one-pass CPU kernels for the
//! forward and backward, and a plain-candle reference path used on other devices.

use std::sync::{Arc, OnceLock};

use candle::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, Var};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::cpu::{f32_slice, multiversion, uninit_vec, with_f32};

/// BatchNorm2d with learnable scale (`weight`) and shift (`bias`) and running statistics.
///
/// Training mode normalises with the batch statistics (biased variance) and updates the running
/// mean and unbiased variance with `momentum` 0.1, as PyTorch does; eval mode uses the running
/// statistics. Running statistics are `running_mean` / `running_var` variables, which
/// [`crate::ModelParams`] keeps out of the trainable set.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

/// A BatchNorm over `num_features` channels: weight 1, bias 0, running mean 0, variance 1.
pub fn batch_norm(num_features: usize, vb: VarBuilder) -> Result<BatchNorm> {
    let weight = vb.get_with_hints(num_features, "weight", candle_nn::Init::Const(1.0))?;
    let bias = vb.get_with_hints(num_features, "bias", candle_nn::Init::Const(0.0))?;
    let running_mean = vb.get_with_hints(num_features, "running_mean", candle_nn::Init::Const(0.0))?;
    let running_var = vb.get_with_hints(num_features, "running_var", candle_nn::Init::Const(1.0))?;
    Ok(BatchNorm {
        weight,
        bias,
        running_mean: Var::from_tensor(&running_mean)?,
        running_var: Var::from_tensor(&running_var)?,
        eps: 1e-5,
        momentum: 0.1,
    })
}

impl BatchNorm {
    /// BatchNorm alone.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_impl(x, train, false)
    }

    /// BatchNorm followed by ReLU, fused.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_impl(x, train, true)
    }

    /// Running mean (detached).
    pub fn running_mean(&self) -> Tensor {
        self.running_mean.as_detached_tensor()
    }

    /// Running variance (detached).
    pub fn running_var(&self) -> Tensor {
        self.running_var.as_detached_tensor()
    }

    /// The plain-candle reference path (used on every device), for comparisons.
    pub fn forward_reference_t(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        self.forward_with(x, train, relu, false)
    }

    fn forward_impl(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let fast = matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32;
        self.forward_with(x, train, relu, fast)
    }

    fn forward_with(&self, x: &Tensor, train: bool, relu: bool, fast: bool) -> Result<Tensor> {
        let (_, c, _, _) = x.dims4().map_err(|_| candle::Error::Msg(format!("batch_norm: x must be (B,C,H,W), got {:?}", x.dims())))?;
        if c != self.weight.elem_count() {
            candle::bail!("batch_norm: x has {c} channels, layer has {}", self.weight.elem_count())
        }
        if train {
            let (y, mean, var) = if fast {
                let stats = Arc::new(OnceLock::new());
                let op = BnTrainOp { eps: self.eps, relu, stats: stats.clone() };
                let y = x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?;
                let (mean, var) = stats.get().expect("batch_norm: forward stores its statistics");
                let mean = Tensor::from_slice(mean, c, x.device())?;
                let var = Tensor::from_slice(var, c, x.device())?;
                (y, mean, var)
            } else {
                batch_norm_train_reference(x, &self.weight, &self.bias, self.eps, relu)?
            };
            self.update_running_stats(&mean, &var, x.elem_count() / c)?;
            Ok(y)
        } else {
            let scale = (self.weight.clone() * (self.running_var.as_detached_tensor() + self.eps)?.sqrt()?.recip()?)?;
            let shift = (&self.bias - (self.running_mean.as_detached_tensor() * &scale)?)?;
            if fast {
                x.contiguous()?.apply_op3(&scale, &shift, ChannelAffineOp { relu })
            } else {
                channel_affine_reference(x, &scale, &shift, relu)
            }
        }
    }

    fn update_running_stats(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = var.affine(n as f64 / (n.max(2) - 1) as f64, 0.0)?;
        let rm = (self.running_mean.as_detached_tensor().affine(1.0 - m, 0.0)? + mean.detach().affine(m, 0.0)?)?;
        let rv = (self.running_var.as_detached_tensor().affine(1.0 - m, 0.0)? + unbiased.detach().affine(m, 0.0)?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)
    }
}

/// Reference training-mode BatchNorm(+ReLU) in plain candle ops; returns `(y, mean, var)` with the
/// biased batch variance.
pub fn batch_norm_train_reference(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, relu: bool) -> Result<(Tensor, Tensor, Tensor)> {
    let c = weight.elem_count();
    let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
    let x_hat = centred.broadcast_div(&(var.clone() + eps)?.sqrt()?)?;
    let y = x_hat.broadcast_mul(&weight.reshape((1, c, 1, 1))?)?.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    let y = if relu { y.relu()? } else { y };
    Ok((y, mean.flatten_all()?, var.flatten_all()?))
}

/// Reference per-channel `x * scale + shift` (+ReLU) in plain candle ops.
pub fn channel_affine_reference(x: &Tensor, scale: &Tensor, shift: &Tensor, relu: bool) -> Result<Tensor> {
    let c = scale.elem_count();
    let y = x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// Training BatchNorm(+ReLU) on (x, weight, bias); stores (mean, biased var) for the caller.
struct BnTrainOp {
    eps: f64,
    relu: bool,
    stats: Arc<OnceLock<(Vec<f32>, Vec<f32>)>>,
}

impl CustomOp3 for BnTrainOp {
    fn name(&self) -> &'static str {
        "fused-batch-norm-train"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "batch_norm")?;
        let gamma = f32_slice(s2, l2, "batch_norm")?;
        let beta = f32_slice(s3, l3, "batch_norm")?;
        let (b_sz, c, h, w) = l1.shape().dims4()?;
        let hw = h * w;
        let n = (b_sz * hw) as f64;
        let (mean, var): (Vec<f32>, Vec<f32>) = (0..c)
            .into_par_iter()
            .map(|ci| {
                let shift = x[ci * hw];
                let (s, ss) = multiversion!({
                    let (mut s, mut ss) = (0f64, 0f64);
                    for bi in 0..b_sz {
                        let (a, b) = sum_and_sumsq(&x[(bi * c + ci) * hw..][..hw], shift);
                        s += a as f64;
                        ss += b as f64;
                    }
                    (s, ss)
                });
                let m = s / n;
                ((shift as f64 + m) as f32, (ss / n - m * m).max(0.0) as f32)
            })
            .unzip();
        let mut scale = vec![0f32; c];
        let mut shift = vec![0f32; c];
        for ci in 0..c {
            let inv_std = 1.0 / (var[ci] as f64 + self.eps).sqrt();
            scale[ci] = (gamma[ci] as f64 * inv_std) as f32;
            shift[ci] = beta[ci] - mean[ci] * scale[ci];
        }
        let y = affine_forward(x, &scale, &shift, c, hw, self.relu);
        let _ = self.stats.set((mean, var));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, gamma: &Tensor, _beta: &Tensor, y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some((mean, var)) = self.stats.get() else {
            candle::bail!("batch_norm backward: forward statistics missing")
        };
        let (b_sz, c, h, w) = x.dims4()?;
        let hw = h * w;
        let n = (b_sz * hw) as f32;
        let gamma = gamma.to_vec1::<f32>()?;
        let relu = self.relu;
        let eps = self.eps;
        let out = with_f32(x, "batch_norm backward", |xs| {
            with_f32(y, "batch_norm backward", |ys| {
                with_f32(grad, "batch_norm backward", |gs| {
                    // per channel: sum_dz = sum dz, sum_dz_xc = sum dz * (x - mean)
                    let (sum_dz, sum_dz_xc) = channel_grad_sums(xs, ys, gs, mean, b_sz, c, hw, relu);
                    // dx = k dz - k/n sum_dz - k inv_std^2 (x - mean) sum_dz_xc / n, k = gamma inv_std
                    let mut c_dz = vec![0f32; c];
                    let mut c_x = vec![0f32; c];
                    let mut c_0 = vec![0f32; c];
                    let mut dgamma = vec![0f32; c];
                    for ci in 0..c {
                        let inv_std = 1.0 / (var[ci] as f64 + eps).sqrt();
                        let k = gamma[ci] as f64 * inv_std;
                        let cx = k * inv_std * inv_std * sum_dz_xc[ci] as f64 / n as f64;
                        c_dz[ci] = k as f32;
                        c_x[ci] = -cx as f32;
                        c_0[ci] = (-k * sum_dz[ci] as f64 / n as f64 + cx * mean[ci] as f64) as f32;
                        dgamma[ci] = (sum_dz_xc[ci] as f64 * inv_std) as f32;
                    }
                    let dx = affine_backward(xs, ys, gs, &c_dz, &c_x, &c_0, c, hw, relu);
                    (dx, dgamma, sum_dz)
                })
            })
        })???;
        let (dx, dgamma, dbeta) = out;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            crate::grad_mode::parameter_grads().then(|| Tensor::from_vec(dgamma, c, dev)).transpose()?,
            crate::grad_mode::parameter_grads().then(|| Tensor::from_vec(dbeta, c, dev)).transpose()?,
        ))
    }
}

/// Per-channel `x * scale + shift` (+ReLU) on (x, scale, shift), differentiable in all three.
struct ChannelAffineOp {
    relu: bool,
}

impl CustomOp3 for ChannelAffineOp {
    fn name(&self) -> &'static str {
        "fused-channel-affine"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "batch_norm eval")?;
        let scale = f32_slice(s2, l2, "batch_norm eval")?;
        let shift = f32_slice(s3, l3, "batch_norm eval")?;
        let (_, c, h, w) = l1.shape().dims4()?;
        Ok((CpuStorage::F32(affine_forward(x, scale, shift, c, h * w, self.relu)), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, scale: &Tensor, _shift: &Tensor, y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b_sz, c, h, w) = x.dims4()?;
        let hw = h * w;
        let scale_v = scale.to_vec1::<f32>()?;
        let relu = self.relu;
        let (dx, dscale, dshift) = with_f32(x, "batch_norm eval backward", |xs| {
            with_f32(y, "batch_norm eval backward", |ys| {
                with_f32(grad, "batch_norm eval backward", |gs| {
                    let (dshift, dscale) = channel_grad_sums(xs, ys, gs, &vec![0f32; c], b_sz, c, hw, relu);
                    let zeros = vec![0f32; c];
                    let dx = affine_backward(xs, ys, gs, &scale_v, &zeros, &zeros, c, hw, relu);
                    (dx, dscale, dshift)
                })
            })
        })???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            crate::grad_mode::parameter_grads().then(|| Tensor::from_vec(dscale, c, dev)).transpose()?,
            crate::grad_mode::parameter_grads().then(|| Tensor::from_vec(dshift, c, dev)).transpose()?,
        ))
    }
}

/// `y = x * scale[c] + shift[c]` (+ReLU), parallel over the batch.
fn affine_forward(x: &[f32], scale: &[f32], shift: &[f32], c: usize, hw: usize, relu: bool) -> Vec<f32> {
    let mut y = uninit_vec(x.len());
    y.par_chunks_mut(c * hw).zip(x.par_chunks(c * hw)).for_each(|(y_b, x_b)| {
        multiversion!({
            for ((yr, xr), (&s, &t)) in y_b.chunks_exact_mut(hw).zip(x_b.chunks_exact(hw)).zip(scale.iter().zip(shift)) {
                if relu {
                    yr.iter_mut().zip(xr).for_each(|(y, &x)| *y = (x * s + t).max(0.0));
                } else {
                    yr.iter_mut().zip(xr).for_each(|(y, &x)| *y = x * s + t);
                }
            }
        })
    });
    y
}

/// `dx = a[c] * dz + b[c] * x + d[c]` with `dz = grad` masked by `y > 0` when `relu`; `b` and
/// `d` may be `None` (zero). Parallel over the batch.
#[allow(clippy::too_many_arguments)]
fn affine_backward(x: &[f32], y: &[f32], g: &[f32], a: &[f32], b: &[f32], d: &[f32], c: usize, hw: usize, relu: bool) -> Vec<f32> {
    let mut dx = uninit_vec(x.len());
    let plane = c * hw;
    dx.par_chunks_mut(plane).enumerate().for_each(|(bi, dx_b)| {
        let rows = dx_b
            .chunks_exact_mut(hw)
            .zip(x[bi * plane..(bi + 1) * plane].chunks_exact(hw))
            .zip(y[bi * plane..(bi + 1) * plane].chunks_exact(hw))
            .zip(g[bi * plane..(bi + 1) * plane].chunks_exact(hw));
        multiversion!({
            for (ci, (((dr, xr), yr), gr)) in rows.enumerate() {
                let (a, b, d) = (a[ci], b[ci], d[ci]);
                if relu {
                    for (((o, &x), &y), &g) in dr.iter_mut().zip(xr).zip(yr).zip(gr) {
                        let dz = if y > 0.0 { g } else { 0.0 };
                        *o = a * dz + b * x + d;
                    }
                } else {
                    for ((o, &x), &g) in dr.iter_mut().zip(xr).zip(gr) {
                        *o = a * g + b * x + d;
                    }
                }
            }
        })
    });
    dx
}

/// Per-channel `(sum dz, sum dz * (x - centre[c]))`, `dz` masked by `y > 0` when `relu`.
///
/// Parallel over a fixed split of the batch (each part reads its images front to back, which
/// is several times faster than walking one channel across the batch), each part summed in a
/// fixed order and the parts added in order: deterministic whatever the thread count.
#[allow(clippy::too_many_arguments)]
fn channel_grad_sums(x: &[f32], y: &[f32], g: &[f32], centre: &[f32], b_sz: usize, c: usize, hw: usize, relu: bool) -> (Vec<f32>, Vec<f32>) {
    const PARTS: usize = 8;
    let per_part = b_sz.div_ceil(PARTS).max(1);
    let plane = c * hw;
    let partials: Vec<Vec<(f64, f64)>> = (0..b_sz.div_ceil(per_part))
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![(0f64, 0f64); c];
            multiversion!(for bi in part * per_part..((part + 1) * per_part).min(b_sz) {
                let (xb, yb, gb) = (&x[bi * plane..][..plane], &y[bi * plane..][..plane], &g[bi * plane..][..plane]);
                for (ci, a) in acc.iter_mut().enumerate() {
                    let r = ci * hw..(ci + 1) * hw;
                    let (p, q) = if relu {
                        grad_sums::<true>(&xb[r.clone()], &yb[r.clone()], &gb[r], centre[ci])
                    } else {
                        grad_sums::<false>(&xb[r.clone()], &yb[r.clone()], &gb[r], centre[ci])
                    };
                    a.0 += p as f64;
                    a.1 += q as f64;
                }
            });
            acc
        })
        .collect();
    (0..c)
        .map(|ci| {
            let (a, b) = partials.iter().fold((0f64, 0f64), |(a, b), p| (a + p[ci].0, b + p[ci].1));
            (a as f32, b as f32)
        })
        .unzip()
}

/// Sum of `x - shift` and of its square, with lane accumulators the compiler vectorises
/// (fixed-size array chunks, so no bounds checks stand in the way). Inlined into the
/// [`multiversion!`] copies of its callers.
#[inline(always)]
fn sum_and_sumsq(row: &[f32], shift: f32) -> (f32, f32) {
    const L: usize = 16;
    let mut s = [0f32; L];
    let mut ss = [0f32; L];
    let (chunks, rest) = row.as_chunks::<L>();
    for ch in chunks {
        for i in 0..L {
            let v = ch[i] - shift;
            s[i] += v;
            ss[i] += v * v;
        }
    }
    let (mut a, mut b) = (s.iter().sum::<f32>(), ss.iter().sum::<f32>());
    for &v in rest {
        let v = v - shift;
        a += v;
        b += v * v;
    }
    (a, b)
}

/// `(sum dz, sum dz * (x - centre))` with `dz = grad` masked by `y > 0` when `RELU`. Inlined
/// into the [`multiversion!`] copies of its caller.
#[inline(always)]
fn grad_sums<const RELU: bool>(x: &[f32], y: &[f32], g: &[f32], centre: f32) -> (f32, f32) {
    const L: usize = 16;
    let mut s = [0f32; L];
    let mut sx = [0f32; L];
    let (xc, x_rest) = x.as_chunks::<L>();
    let (yc, _) = y[..x.len()].as_chunks::<L>();
    let (gc, _) = g[..x.len()].as_chunks::<L>();
    for ((xc, yc), gc) in xc.iter().zip(yc).zip(gc) {
        // separate simple lane loops: each vectorises on its own
        let mut dz = *gc;
        if RELU {
            for i in 0..L {
                dz[i] = if yc[i] > 0.0 { dz[i] } else { 0.0 };
            }
        }
        for i in 0..L {
            s[i] += dz[i];
        }
        for i in 0..L {
            sx[i] += dz[i] * (xc[i] - centre);
        }
    }
    let (mut a, mut b) = (s.iter().sum::<f32>(), sx.iter().sum::<f32>());
    let full = x.len() - x_rest.len();
    for j in full..x.len() {
        let dz = if !RELU || y[j] > 0.0 { g[j] } else { 0.0 };
        a += dz;
        b += dz * (x[j] - centre);
    }
    (a, b)
}
