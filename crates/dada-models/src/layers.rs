//! Building blocks shared by the models: convolution and linear layers, and the kernel choice.

use candle::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::batch_norm::{self, BatchNorm};
use crate::conv;
use crate::init::KAIMING_NORMAL_FAN_OUT;

/// Which kernels a model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// Fused CPU kernels (GEMM convolution, one-pass BatchNorm+ReLU) for f32 on CPU, candle's
    /// own ops on other devices.
    #[default]
    Fast,
    /// candle's stock ops everywhere (the reference path, kept for comparison and tests).
    Stock,
}

/// A 2-D convolution without bias; weight (C_out, C_in, k, k), Kaiming-normal (fan-out) init.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
    kernels: Kernels,
}

/// A `k x k` convolution without bias, `c_in -> c_out`, reading `weight` from `vb`.
pub fn conv2d_no_bias(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize, kernels: Kernels, vb: VarBuilder) -> Result<Conv2d> {
    let weight = vb.get_with_hints((c_out, c_in, k, k), "weight", KAIMING_NORMAL_FAN_OUT)?;
    Ok(Conv2d { weight, stride, padding, kernels })
}

impl Conv2d {
    /// The weight tensor (shares storage with its `Var`).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Conv2d {
    /// `self.forward(x) + residual`, fused on the fast CPU path ([`conv::conv2d_add`]).
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Fast => conv::conv2d_add(x, &self.weight, residual, self.stride, self.padding),
            Kernels::Stock => conv::conv2d_reference(x, &self.weight, self.stride, self.padding)? + residual,
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Fast => conv::conv2d(x, &self.weight, self.stride, self.padding),
            Kernels::Stock => conv::conv2d_reference(x, &self.weight, self.stride, self.padding),
        }
    }
}

/// A BatchNorm layer honouring the kernel choice.
#[derive(Clone, Debug)]
pub struct Norm {
    bn: BatchNorm,
    kernels: Kernels,
}

/// A BatchNorm over `c` channels with the given kernels.
pub fn norm(c: usize, kernels: Kernels, vb: VarBuilder) -> Result<Norm> {
    Ok(Norm { bn: batch_norm::batch_norm(c, vb)?, kernels })
}

impl Norm {
    /// BatchNorm, then ReLU if `relu`.
    pub fn forward_t(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        match (self.kernels, relu) {
            (Kernels::Fast, true) => self.bn.forward_relu_t(x, train),
            (Kernels::Fast, false) => self.bn.forward_t(x, train),
            (Kernels::Stock, _) => self.bn.forward_reference_t(x, train, relu),
        }
    }

    /// The underlying BatchNorm.
    pub fn batch_norm(&self) -> &BatchNorm {
        &self.bn
    }
}

/// A fully-connected layer: PyTorch's default uniform(+-1/sqrt(fan_in)) weight, zero bias.
pub fn linear(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<candle_nn::Linear> {
    let bound = 1.0 / (c_in as f64).sqrt();
    let weight = vb.get_with_hints((c_out, c_in), "weight", Init::Uniform { lo: -bound, up: bound })?;
    let bias = vb.get_with_hints(c_out, "bias", Init::Const(0.0))?;
    Ok(candle_nn::Linear::new(weight, Some(bias)))
}

/// Global average pooling (B, C, H, W) -> (B, C).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(2)
}
