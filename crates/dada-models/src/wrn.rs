//! Wide ResNets (Zagoruyko & Komodakis 2016) for 32x32 inputs: WRN-40-2, WRN-28-10.

use candle::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::classifier::Classifier;
use crate::dropout::SeededDropout;
use crate::layers::{conv2d_no_bias, global_avg_pool, linear, norm, Conv2d, Kernels, Norm};

/// Shape of a Wide ResNet: `depth = 6 n + 4` layers, widths `16, 16 k, 32 k, 64 k`.
#[derive(Clone, Debug, PartialEq)]
pub struct WrnConfig {
    /// Total depth; `(depth - 4) / 6` blocks per group.
    pub depth: usize,
    /// Width multiplier `k`.
    pub widen_factor: usize,
    /// Number of output classes.
    pub n_classes: usize,
    /// Dropout probability between the two convolutions of a block (0: none, the default).
    pub dropout: f32,
    /// Seed of the dropout masks ([`SeededDropout`](crate::SeededDropout); block `i` uses
    /// `dropout_seed + i`), so a run with dropout repeats exactly.
    pub dropout_seed: u64,
    /// Kernels to use.
    pub kernels: Kernels,
}

impl WrnConfig {
    /// WRN-40-2 for 10 classes: about 2.24M parameters.
    pub fn wrn_40_2() -> Self {
        Self { depth: 40, widen_factor: 2, n_classes: 10, dropout: 0.0, dropout_seed: 0, kernels: Kernels::Fast }
    }

    /// WRN-16-2 for 10 classes: about 0.69M parameters (two blocks per group).
    pub fn wrn_16_2() -> Self {
        Self { depth: 16, widen_factor: 2, n_classes: 10, dropout: 0.0, dropout_seed: 0, kernels: Kernels::Fast }
    }

    /// WRN-28-10 for 10 classes: about 36.5M parameters.
    pub fn wrn_28_10() -> Self {
        Self { depth: 28, widen_factor: 10, n_classes: 10, dropout: 0.0, dropout_seed: 0, kernels: Kernels::Fast }
    }
}

/// A pre-activation Wide ResNet.
#[derive(Clone, Debug)]
pub struct Wrn {
    conv1: Conv2d,
    groups: Vec<Vec<WideBlock>>,
    bn1: Norm,
    fc: candle_nn::Linear,
}

/// Builds a Wide ResNet; variables are named like the struct (`block1.layer.0.conv1.weight`).
pub fn wrn(cfg: &WrnConfig, vb: VarBuilder) -> Result<Wrn> {
    if cfg.depth < 10 || !(cfg.depth - 4).is_multiple_of(6) {
        candle::bail!("wrn: depth must be 6n + 4 with n >= 1, got {}", cfg.depth)
    }
    if cfg.widen_factor == 0 || cfg.n_classes == 0 {
        candle::bail!("wrn: widen_factor and n_classes must be positive")
    }
    let n = (cfg.depth - 4) / 6;
    let k = cfg.widen_factor;
    let widths = [16, 16 * k, 32 * k, 64 * k];
    let kernels = cfg.kernels;
    let conv1 = conv2d_no_bias(3, widths[0], 3, 1, 1, kernels, vb.pp("conv1"))?;
    let mut groups = Vec::with_capacity(3);
    for g in 0..3 {
        let vb_g = vb.pp(format!("block{}", g + 1)).pp("layer");
        let stride = if g == 0 { 1 } else { 2 };
        let mut blocks = Vec::with_capacity(n);
        for i in 0..n {
            let (c_in, s) = if i == 0 { (widths[g], stride) } else { (widths[g + 1], 1) };
            let index = (g * n + i) as u64;
            blocks.push(wide_block(c_in, widths[g + 1], s, cfg, index, vb_g.pp(i))?);
        }
        groups.push(blocks);
    }
    let bn1 = norm(widths[3], kernels, vb.pp("bn1"))?;
    let fc = linear(widths[3], cfg.n_classes, vb.pp("fc"))?;
    Ok(Wrn { conv1, groups, bn1, fc })
}

impl Classifier for Wrn {
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        check_images("wrn", images)?;
        let mut x = self.conv1.forward(images)?;
        for group in &self.groups {
            for block in group {
                x = block.forward_t(&x, train)?;
            }
        }
        let x = self.bn1.forward_t(&x, train, true)?;
        self.fc.forward(&global_avg_pool(&x)?)
    }
}

/// Checks that `images` is (B, 3, H, W).
pub(crate) fn check_images(model: &str, images: &Tensor) -> Result<()> {
    match images.dims() {
        [_, 3, _, _] => Ok(()),
        dims => candle::bail!("{model}: images must be (B,3,H,W), got {dims:?}"),
    }
}

/// Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3, plus an identity or a
/// 1x1-convolution shortcut (taken from the activated input) where the shape changes.
#[derive(Clone, Debug)]
struct WideBlock {
    bn1: Norm,
    conv1: Conv2d,
    bn2: Norm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    dropout: Option<SeededDropout>,
}

fn wide_block(c_in: usize, c_out: usize, stride: usize, cfg: &WrnConfig, index: u64, vb: VarBuilder) -> Result<WideBlock> {
    let kernels = cfg.kernels;
    let shortcut = if c_in != c_out || stride != 1 {
        Some(conv2d_no_bias(c_in, c_out, 1, stride, 0, kernels, vb.pp("shortcut"))?)
    } else {
        None
    };
    Ok(WideBlock {
        bn1: norm(c_in, kernels, vb.pp("bn1"))?,
        conv1: conv2d_no_bias(c_in, c_out, 3, stride, 1, kernels, vb.pp("conv1"))?,
        bn2: norm(c_out, kernels, vb.pp("bn2"))?,
        conv2: conv2d_no_bias(c_out, c_out, 3, 1, 1, kernels, vb.pp("conv2"))?,
        shortcut,
        dropout: if cfg.dropout > 0.0 {
            Some(SeededDropout::new(cfg.dropout, cfg.dropout_seed.wrapping_add(index))?)
        } else {
            None
        },
    })
}

impl WideBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let act = self.bn1.forward_t(x, train, true)?;
        let h = self.conv1.forward(&act)?;
        let h = self.bn2.forward_t(&h, train, true)?;
        let h = match (&self.dropout, train) {
            (Some(d), true) => d.forward(&h)?,
            _ => h,
        };
        let residual = match &self.shortcut {
            Some(conv) => conv.forward(&act)?,
            None => x.clone(),
        };
        self.conv2.forward_add(&h, &residual)
    }
}
