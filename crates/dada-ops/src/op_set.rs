//! `OpSet`: an ordered list of ops (the paper's and the tutorial's 15), and the name registry.
use std::sync::Arc;

use candle::{Device, Result};
use rand::rngs::StdRng;

use crate::{
    AugOp, AutoContrast, Brightness, Color, Contrast, Cutout, Equalize, FlipLR, Identity,
    Interpolation, Invert, Noise, OpParams, Posterize, Rotate, Sharpness, ShearX, ShearY, Solarize,
    TranslateX, TranslateY,
};

/// An ordered set of ops; the order is the column order of mixture weights and policy files.
#[derive(Debug, Clone, Default)]
pub struct OpSet {
    ops: Vec<Arc<dyn AugOp>>,
}

/// The `name()` of every built-in op, in registry order.
pub const BUILTIN_NAMES: [&str; 18] = [
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "auto_contrast",
    "invert",
    "equalize",
    "solarize",
    "posterize",
    "contrast",
    "color",
    "brightness",
    "sharpness",
    "cutout",
    "identity",
    "flip_lr",
    "noise",
];

impl OpSet {
    /// A set of the given ops, in order.
    pub fn new(ops: Vec<Arc<dyn AugOp>>) -> Self {
        Self { ops }
    }

    /// The DADA / AutoAugment list of 15: shear_x, shear_y, translate_x, translate_y, rotate,
    /// auto_contrast, invert, equalize, solarize, posterize, contrast, color, brightness,
    /// sharpness, cutout (default construction: PIL-exact nearest sampling and hard cutout).
    pub fn paper() -> Self {
        Self::from_names(&BUILTIN_NAMES[..15])
    }

    /// The seed tutorial's 15: translate_x, translate_y, shear_x, shear_y, rotate, brightness,
    /// contrast, solarize, posterize, equalize, invert, auto_contrast, noise, cutout, identity.
    pub fn tutorial() -> Self {
        Self::from_names(&[
            "translate_x",
            "translate_y",
            "shear_x",
            "shear_y",
            "rotate",
            "brightness",
            "contrast",
            "solarize",
            "posterize",
            "equalize",
            "invert",
            "auto_contrast",
            "noise",
            "cutout",
            "identity",
        ])
    }

    fn from_names(names: &[&str]) -> Self {
        Self::new(
            names
                .iter()
                .map(|n| Self::by_name(n).expect("built-in op name"))
                .collect(),
        )
    }

    /// The built-in op called `name` (its `name()`; `"autocontrast"` is accepted for
    /// `"auto_contrast"`), default-constructed, or `None`.
    pub fn by_name(name: &str) -> Option<Arc<dyn AugOp>> {
        let op: Arc<dyn AugOp> = match name {
            "shear_x" => Arc::new(ShearX::default()),
            "shear_y" => Arc::new(ShearY::default()),
            "translate_x" => Arc::new(TranslateX::default()),
            "translate_y" => Arc::new(TranslateY::default()),
            "rotate" => Arc::new(Rotate::default()),
            "auto_contrast" | "autocontrast" => Arc::new(AutoContrast),
            "invert" => Arc::new(Invert),
            "equalize" => Arc::new(Equalize),
            "solarize" => Arc::new(Solarize::default()),
            "posterize" => Arc::new(Posterize::default()),
            "contrast" => Arc::new(Contrast),
            "color" => Arc::new(Color),
            "brightness" => Arc::new(Brightness),
            "sharpness" => Arc::new(Sharpness),
            "cutout" => Arc::new(Cutout::default()),
            "identity" => Arc::new(Identity),
            "flip_lr" => Arc::new(FlipLR),
            "noise" => Arc::new(Noise),
            _ => return None,
        };
        Some(op)
    }

    /// [`OpSet::by_name`], with the geometric ops (shear, translate, rotate) sampling with
    /// `interpolation` (other ops ignore it).
    pub fn by_name_with(name: &str, interpolation: Interpolation) -> Option<Arc<dyn AugOp>> {
        let op: Arc<dyn AugOp> = match name {
            "shear_x" => Arc::new(ShearX::new(interpolation)),
            "shear_y" => Arc::new(ShearY::new(interpolation)),
            "translate_x" => Arc::new(TranslateX::new(interpolation)),
            "translate_y" => Arc::new(TranslateY::new(interpolation)),
            "rotate" => Arc::new(Rotate::new(interpolation)),
            _ => return Self::by_name(name),
        };
        Some(op)
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The op at `i`; panics if `i >= len()`.
    pub fn get(&self, i: usize) -> &Arc<dyn AugOp> {
        &self.ops[i]
    }

    /// The ops in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn AugOp>> {
        self.ops.iter()
    }

    /// The ops' names in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.ops.iter().map(|op| op.name()).collect()
    }

    /// Position of the op called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.ops.iter().position(|op| op.name() == name)
    }

    /// Appends an op (built-in or user-defined).
    pub fn push(&mut self, op: Arc<dyn AugOp>) {
        self.ops.push(op)
    }

    /// Draws every op's random parameters for a batch of `b_sz`, in order.
    pub fn sample_all(&self, b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<Vec<OpParams>> {
        self.ops
            .iter()
            .map(|op| op.sample(b_sz, rng, dev))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_have_fifteen_distinct_named_ops() {
        for set in [OpSet::paper(), OpSet::tutorial()] {
            assert_eq!(set.len(), 15);
            let mut names = set.names();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), 15);
        }
        assert_eq!(OpSet::paper().names()[5], "auto_contrast");
        assert_eq!(OpSet::tutorial().index_of("noise"), Some(12));
        for name in BUILTIN_NAMES {
            assert_eq!(OpSet::by_name(name).map(|op| op.name()), Some(name));
        }
        assert!(OpSet::by_name("autocontrast").is_some());
        assert!(OpSet::by_name("warp").is_none());
        let bilinear = OpSet::by_name_with("rotate", Interpolation::Bilinear).unwrap();
        assert_eq!(bilinear.magnitude_grad(), crate::MagnitudeGrad::Exact);
        assert_eq!(
            OpSet::by_name_with("invert", Interpolation::Bilinear)
                .unwrap()
                .name(),
            "invert"
        );
    }
}
