//! Image classifiers on candle-nn for DADA: WRN-40-2, WRN-28-10, a CIFAR ResNet-18 and a tiny
//! CNN, with a fast CPU training path.
//!
//! The main trait is [`Classifier`] (`forward_t(images, train)` to logits); [`build_model`]
//! makes one by [`ModelKind`], with its variables in a [`ModelParams`] that separates trainable
//! weights from BatchNorm running statistics and saves / loads safetensors checkpoints.
//! [`SgdMomentum`] and [`clip_grad_norm`] train them.
//!
//! The design decision to know: layers read their weights from candle `Var`s at every forward
//! (so an unrolled step can `Var::set` weights and restore them), and on CPU the convolution
//! ([`conv2d`]: im2col / col2im + GEMM with its own backward) and BatchNorm(+ReLU)
//! ([`BatchNorm`]) are fused custom ops; on other devices candle's own ops run.
//!
//! This crate knows nothing of augmentation, datasets or training loops: those are in
//! `dada-policy` and `dada-train`.
#![warn(missing_docs)]

mod alloc;
mod batch_norm;
mod classifier;
mod conv;
mod cpu;
mod dropout;
mod grad_mode;
mod init;
mod layers;
mod optim;
mod params;
mod resnet;
pub mod shapes;
mod tiny_cnn;
mod winograd;
mod wrn;

pub use alloc::retain_freed_memory;
pub use batch_norm::{batch_norm, batch_norm_train_reference, channel_affine_reference, BatchNorm};
pub use classifier::{build_model, build_model_with_kernels, Classifier, ModelKind, UnknownModel};
pub use cpu::{avx512_active, set_avx512};
pub use conv::{conv2d, conv2d_add, conv2d_fast, conv2d_fast_backward, conv2d_reference, conv_algorithm, set_conv_algorithm, winograd_tile, with_conv_algorithm, ConvAlgorithm};
pub use dropout::SeededDropout;
pub use grad_mode::without_parameter_grads;
pub use init::{SeededInit, KAIMING_NORMAL_FAN_OUT};
pub use layers::{conv2d_no_bias, global_avg_pool, linear, norm, Conv2d, Kernels, Norm};
pub use optim::{clip_grad_norm, SgdConfig, SgdMomentum};
pub use params::{CheckpointError, ModelParams};
pub use resnet::{resnet18, resnet18_with_kernels, ResNet18};
pub use tiny_cnn::{tiny_cnn, tiny_cnn_with_kernels, TinyCnn};
pub use wrn::{wrn, Wrn, WrnConfig};
