//! A tiny CNN (three conv-BN-ReLU stages, about 24K parameters) for fast tests.

use candle::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::classifier::Classifier;
use crate::layers::{conv2d_no_bias, global_avg_pool, linear, norm, Conv2d, Kernels, Norm};
use crate::wrn::check_images;

/// conv3x3(3->16)-BN-ReLU, conv3x3/2(16->32)-BN-ReLU, conv3x3/2(32->64)-BN-ReLU, avg-pool, linear.
#[derive(Clone, Debug)]
pub struct TinyCnn {
    stages: Vec<(Conv2d, Norm)>,
    fc: candle_nn::Linear,
}

/// A tiny CNN with `n_classes` outputs and the fast kernels.
pub fn tiny_cnn(n_classes: usize, vb: VarBuilder) -> Result<TinyCnn> {
    tiny_cnn_with_kernels(n_classes, Kernels::Fast, vb)
}

/// A tiny CNN with the given kernels.
pub fn tiny_cnn_with_kernels(n_classes: usize, kernels: Kernels, vb: VarBuilder) -> Result<TinyCnn> {
    let mut stages = Vec::new();
    for (i, (c_in, c_out, stride)) in [(3, 16, 1), (16, 32, 2), (32, 64, 2)].into_iter().enumerate() {
        let conv = conv2d_no_bias(c_in, c_out, 3, stride, 1, kernels, vb.pp(format!("conv{}", i + 1)))?;
        let bn = norm(c_out, kernels, vb.pp(format!("bn{}", i + 1)))?;
        stages.push((conv, bn));
    }
    let fc = linear(64, n_classes, vb.pp("fc"))?;
    Ok(TinyCnn { stages, fc })
}

impl Classifier for TinyCnn {
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        check_images("tiny_cnn", images)?;
        let mut x = images.clone();
        for (conv, bn) in &self.stages {
            x = bn.forward_t(&conv.forward(&x)?, train, true)?;
        }
        self.fc.forward(&global_avg_pool(&x)?)
    }
}
