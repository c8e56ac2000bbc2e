//! The `Classifier` trait every model implements, and `build_model` by `ModelKind`.

use std::fmt;
use std::str::FromStr;

use candle::{Device, Result, Tensor};

use crate::alloc::retain_freed_memory;
use crate::layers::Kernels;
use crate::params::ModelParams;
use crate::resnet::resnet18_with_kernels;
use crate::tiny_cnn::tiny_cnn_with_kernels;
use crate::wrn::{wrn, WrnConfig};

/// An image classifier: (B, 3, H, W) images to (B, n_classes) logits.
pub trait Classifier: Send + Sync {
    /// Logits for `images`. `train = true` normalises with batch statistics and updates the
    /// BatchNorm running statistics (and applies dropout where configured); `train = false`
    /// uses the running statistics. Weights are read from their `Var`s at every call.
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor>;
}

/// The models this crate provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelKind {
    /// WRN-40-2 (about 2.24M parameters), the DADA search and reduced-CIFAR model.
    Wrn40_2,
    /// WRN-16-2 (about 0.69M parameters, a third of WRN-40-2's compute): the reduced-protocol
    /// classifier for short CPU experiments.
    Wrn16_2,
    /// WRN-28-10 (about 36.5M parameters).
    Wrn28_10,
    /// CIFAR ResNet-18 (about 11.2M parameters).
    ResNet18,
    /// Tiny CNN (about 24K parameters) for tests.
    TinyCnn,
}

impl ModelKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ModelKind; 5] = [ModelKind::Wrn40_2, ModelKind::Wrn16_2, ModelKind::Wrn28_10, ModelKind::ResNet18, ModelKind::TinyCnn];

    /// Stable snake_case key: `wrn_40_2`, `wrn_16_2`, `wrn_28_10`, `resnet18`, `tiny_cnn`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Wrn40_2 => "wrn_40_2",
            ModelKind::Wrn16_2 => "wrn_16_2",
            ModelKind::Wrn28_10 => "wrn_28_10",
            ModelKind::ResNet18 => "resnet18",
            ModelKind::TinyCnn => "tiny_cnn",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown model name.
#[derive(Debug, thiserror::Error)]
#[error("unknown model `{0}`; expected one of wrn_40_2, wrn_16_2, wrn_28_10, resnet18, tiny_cnn")]
pub struct UnknownModel(pub String);

impl FromStr for ModelKind {
    type Err = UnknownModel;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        ModelKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// Builds a model of `kind` with `n_classes` outputs, creating its variables in `params`
/// (seeded initialisation) or reusing those already there.
///
/// On CPU this also calls [`retain_freed_memory`] once, so large activation buffers are reused
/// rather than handed back to the kernel every step.
pub fn build_model(kind: ModelKind, n_classes: usize, params: &ModelParams) -> Result<Box<dyn Classifier>> {
    build_model_with_kernels(kind, n_classes, Kernels::Fast, params)
}

/// [`build_model`] with an explicit kernel choice (`Kernels::Stock` for candle's stock ops).
pub fn build_model_with_kernels(kind: ModelKind, n_classes: usize, kernels: Kernels, params: &ModelParams) -> Result<Box<dyn Classifier>> {
    if matches!(params.device(), Device::Cpu) {
        retain_freed_memory();
    }
    let vb = params.var_builder();
    Ok(match kind {
        ModelKind::Wrn40_2 => Box::new(wrn(&WrnConfig { n_classes, kernels, ..WrnConfig::wrn_40_2() }, vb)?),
        ModelKind::Wrn16_2 => Box::new(wrn(&WrnConfig { n_classes, kernels, ..WrnConfig::wrn_16_2() }, vb)?),
        ModelKind::Wrn28_10 => Box::new(wrn(&WrnConfig { n_classes, kernels, ..WrnConfig::wrn_28_10() }, vb)?),
        ModelKind::ResNet18 => Box::new(resnet18_with_kernels(n_classes, kernels, vb)?),
        ModelKind::TinyCnn => Box::new(tiny_cnn_with_kernels(n_classes, kernels, vb)?),
    })
}
