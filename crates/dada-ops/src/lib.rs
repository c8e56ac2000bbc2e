//! Differentiable, batched image augmentation ops on candle tensors.
//!
//! (Crate docs, op table and gradient table: being written.)
#![warn(missing_docs)]

mod kernel;
mod mixture;
mod op;
mod op_set;
pub mod ops;
mod params;
mod range;
pub mod testing;

pub use kernel::{apply_kernel, kernel_backward, ImageDims, ImageKernel};
pub use mixture::{weighted_mixture, weighted_mixture_reference};
pub use op::{AugOp, Estimator, Interpolation, MagnitudeGrad};
pub use op_set::{OpSet, BUILTIN_NAMES};
pub use ops::color::{AutoContrast, Equalize, Identity, Invert, Posterize, Solarize};
pub use ops::cutout::{Cutout, CutoutEdge};
pub use ops::enhance::{Brightness, Color, Contrast, Sharpness};
pub use ops::geometric::{FlipLR, Rotate, ShearX, ShearY, TranslateX, TranslateY};
pub use ops::noise::Noise;
pub use params::OpParams;
pub use range::MagnitudeRange;
