//! CIFAR ResNet-18 (3x3 stem, no max-pool, post-activation basic blocks).

use candle::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::classifier::Classifier;
use crate::layers::{conv2d_no_bias, global_avg_pool, linear, norm, Conv2d, Kernels, Norm};
use crate::wrn::check_images;

/// ResNet-18 for 32x32 inputs: about 11.2M parameters for 10 classes.
#[derive(Clone, Debug)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: Norm,
    layers: Vec<BasicBlock>,
    fc: candle_nn::Linear,
}

/// A CIFAR ResNet-18 with `n_classes` outputs and the fast kernels.
pub fn resnet18(n_classes: usize, vb: VarBuilder) -> Result<ResNet18> {
    resnet18_with_kernels(n_classes, Kernels::Fast, vb)
}

/// A CIFAR ResNet-18 with the given kernels.
pub fn resnet18_with_kernels(n_classes: usize, kernels: Kernels, vb: VarBuilder) -> Result<ResNet18> {
    let conv1 = conv2d_no_bias(3, 64, 3, 1, 1, kernels, vb.pp("conv1"))?;
    let bn1 = norm(64, kernels, vb.pp("bn1"))?;
    let mut layers = Vec::new();
    let mut c_in = 64;
    for (li, &c_out) in [64, 128, 256, 512].iter().enumerate() {
        let vb_l = vb.pp(format!("layer{}", li + 1));
        for i in 0..2 {
            let stride = if i == 0 && li > 0 { 2 } else { 1 };
            layers.push(basic_block(c_in, c_out, stride, kernels, vb_l.pp(i))?);
            c_in = c_out;
        }
    }
    let fc = linear(512, n_classes, vb.pp("fc"))?;
    Ok(ResNet18 { conv1, bn1, layers, fc })
}

impl Classifier for ResNet18 {
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        check_images("resnet18", images)?;
        let mut x = self.bn1.forward_t(&self.conv1.forward(images)?, train, true)?;
        for block in &self.layers {
            x = block.forward_t(&x, train)?;
        }
        self.fc.forward(&global_avg_pool(&x)?)
    }
}

#[derive(Clone, Debug)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: Norm,
    conv2: Conv2d,
    bn2: Norm,
    shortcut: Option<(Conv2d, Norm)>,
}

fn basic_block(c_in: usize, c_out: usize, stride: usize, kernels: Kernels, vb: VarBuilder) -> Result<BasicBlock> {
    let shortcut = if stride != 1 || c_in != c_out {
        let vb_s = vb.pp("shortcut");
        Some((conv2d_no_bias(c_in, c_out, 1, stride, 0, kernels, vb_s.pp("conv"))?, norm(c_out, kernels, vb_s.pp("bn"))?))
    } else {
        None
    };
    Ok(BasicBlock {
        conv1: conv2d_no_bias(c_in, c_out, 3, stride, 1, kernels, vb.pp("conv1"))?,
        bn1: norm(c_out, kernels, vb.pp("bn1"))?,
        conv2: conv2d_no_bias(c_out, c_out, 3, 1, 1, kernels, vb.pp("conv2"))?,
        bn2: norm(c_out, kernels, vb.pp("bn2"))?,
        shortcut,
    })
}

impl BasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.bn1.forward_t(&self.conv1.forward(x)?, train, true)?;
        let h = self.bn2.forward_t(&self.conv2.forward(&h)?, train, false)?;
        let residual = match &self.shortcut {
            Some((conv, bn)) => bn.forward_t(&conv.forward(x)?, train, false)?,
            None => x.clone(),
        };
        (h + residual)?.relu()
    }
}
