//! Differentiable, batched image augmentation ops on candle tensors: the 15 DADA /
//! AutoAugment ops (and a few more), with gradients w.r.t. the image **and** the magnitude.
//!
//! Every op implements [`AugOp`]: `images (B, C, H, W)` f32 in [0, 1], per-image `magnitudes
//! (B,)` in [0, 1], and per-image random parameters ([`OpParams`]: signs, cutout centres,
//! noise) drawn by [`AugOp::sample`] *before* [`AugOp::apply`], so `apply` is pure, replayable
//! and finite-difference checkable. The magnitude maps to the op's parameter as in DADA,
//! `param = low + m * (high - low)` ([`MagnitudeRange`]), and symmetric ops multiply it by a
//! random sign. [`OpSet::paper`] and [`OpSet::tutorial`] are the two lists of 15;
//! [`weighted_mixture`] is `sum_k w[:, k] * op_k(x, m)`, what DADA evaluates for every image.
//!
//! **The one design decision to know:** every built-in op has two implementations. On the CPU
//! with f32 tensors `apply` runs a fused per-image kernel ([`ImageKernel`], parallel over the
//! batch with rayon) inside a candle `CustomOp2` with its own backward; `weighted_mixture` fuses
//! all ops' kernels into one `CustomOp3`. Everywhere else (CUDA, f64) `apply` falls back to
//! [`AugOp::apply_reference`], built from plain candle ops. Tests check the two agree (values
//! and gradients) and check both against Pillow golden outputs.
//!
//! Forward results follow Pillow (the official DADA code runs these ops in PIL): within 1/255
//! per pixel after quantizing to u8, PIL-exact pixel selection for nearest sampling (PIL's
//! 16.16 fixed-point affine), except the bilinear option of the geometric ops.
//!
//! | op (`name()`) | parameter | PIL reference | image grad | magnitude grad |
//! |---|---|---|---|---|
//! | [`ShearX`] `shear_x` | shear `sign * (-0.3 + 0.6 m)` | `transform(AFFINE, (1, v, 0, 0, 1, 0))` | exact | bilinear: exact; nearest: bilinear surrogate or straight-through |
//! | [`ShearY`] `shear_y` | shear `sign * (-0.3 + 0.6 m)` | `transform(AFFINE, (1, 0, 0, v, 1, 0))` | exact | as shear_x |
//! | [`TranslateX`] `translate_x` | `sign * (-0.45 + 0.9 m) * W` px | `transform(AFFINE, (1, 0, v, 0, 1, 0))` | exact | as shear_x |
//! | [`TranslateY`] `translate_y` | `sign * (-0.45 + 0.9 m) * H` px | `transform(AFFINE, (1, 0, 0, 0, 1, v))` | exact | as shear_x |
//! | [`Rotate`] `rotate` | `sign * (-30 + 60 m)` degrees | `rotate(v)` | exact | as shear_x |
//! | [`AutoContrast`] `auto_contrast` | none | `ImageOps.autocontrast` | exact (through min/max) | none |
//! | [`Invert`] `invert` | none | `ImageOps.invert` | exact | none |
//! | [`Equalize`] `equalize` | none | `ImageOps.equalize` | straight-through | none |
//! | [`Solarize`] `solarize` | threshold `256 m` (0..255 scale) | `ImageOps.solarize` | exact (+-1) | sigmoid surrogate or straight-through |
//! | [`Posterize`] `posterize` | bits `int(4 + 4 m)` | `ImageOps.posterize` | straight-through | expected-loss surrogate or straight-through |
//! | [`Contrast`] `contrast` | factor `0.1 + 1.8 m` | `ImageEnhance.Contrast` | exact | exact |
//! | [`Color`] `color` | factor `0.1 + 1.8 m` | `ImageEnhance.Color` | exact | exact |
//! | [`Brightness`] `brightness` | factor `0.1 + 1.8 m` | `ImageEnhance.Brightness` | exact | exact |
//! | [`Sharpness`] `sharpness` | factor `0.1 + 1.8 m` | `ImageEnhance.Sharpness` | exact | exact |
//! | [`Cutout`] `cutout` | side `0.2 m * W`, fill (125, 123, 114) | fast-autoaugment `CutoutAbs` | exact | soft edge: exact; hard (PIL): soft-edge surrogate or straight-through |
//! | [`Identity`] `identity` | none | - | exact | none |
//! | [`FlipLR`] `flip_lr` | none | `ImageOps.mirror` | exact | none |
//! | [`Noise`] `noise` | std `0.1 m` | - | exact | exact |
//!
//! Estimators ([`Estimator`], per op, default `Surrogate`): *straight-through* is DADA's
//! `out + m - m.detach()` (the magnitude gets the sum of the upstream gradient); the
//! *surrogates* are the gradients of documented smooth versions: bilinear sampling at the same
//! coordinates (nearest geometric ops), `x + sigmoid((255 x - 256 m) / 8) (1 - 2 x)`
//! (solarize), the expected truncation loss `-(2^(8 - b) - 1) / 510` with `b = 4 + 4 m`
//! continuous (posterize), the area-coverage soft edge (hard cutout).
//! [`AugOp::magnitude_grad`] says which one an op uses. Magnitude-free ops take `magnitudes`
//! anyway and give it no gradient. [`OpSet::straight_through`] wraps every op of a set that
//! has a magnitude in [`StraightThrough`]: the official DADA search's estimator for *every*
//! op, smooth or not (its ops run in PIL), kept for comparison with the exact gradients.
//!
//! ```
//! use candle::{Device, Tensor, Var};
//! use dada_ops::{AugOp, Interpolation, OpParams, ShearX};
//!
//! let dev = Device::Cpu;
//! let images = Var::from_tensor(&Tensor::rand(0f32, 1.0, (2, 3, 8, 8), &dev)?)?;
//! let magnitudes = Var::new(&[0.7f32, 0.9], &dev)?;
//! let op = ShearX::new(Interpolation::Bilinear);
//! let params = OpParams::with_signs(&[1.0, -1.0], &dev)?;
//! let out = op.apply(images.as_tensor(), magnitudes.as_tensor(), &params)?;
//! let grads = out.sum_all()?.backward()?;
//! assert_eq!(grads.get(magnitudes.as_tensor()).unwrap().dims(), [2]);
//! # Ok::<(), candle::Error>(())
//! ```
//!
//! Deliberately left out: probabilities, sub-policies, Gumbel-Softmax and anything learned
//! (`dada-policy`), composing ops over a batch (`dada-compose`), files and datasets
//! (`dada-train`). [`testing`] holds the finite-difference checker other crates' tests use.
#![warn(missing_docs)]

mod kernel;
mod mixture;
mod op;
mod op_set;
pub mod ops;
mod params;
mod range;
mod straight_through;
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
pub use straight_through::StraightThrough;
