//! Learnable DADA augmentation policies on candle: the two search spaces, Gumbel-Softmax and
//! relaxed Bernoulli, RELAX with a learned control variate, and policy files.
//!
//! - [`Policy`] is the object-safe trait the search holds. [`PaperPolicy`] is the official DADA
//!   space (all `C(15, 2) = 105` op pairs, one sub-policy per batch, selection logits +
//!   clamped probabilities and magnitudes; [`Draw::PerImage`], this project's extension, draws
//!   one sub-policy per image instead); [`TutorialPolicy`] is the datarax guide's
//!   (`25 x 2` slots, each a Gumbel-Softmax mixture over 15 ops, per image, 850 parameters).
//! - [`Policy::sample`] draws the discrete choices once ([`PolicySample`]); [`Policy::augment`]
//!   applies them with dada-ops. With [`Estimator::Gumbel`] every parameter group gets its
//!   gradient by backprop through the relaxed / straight-through samples; with
//!   [`Estimator::Relax`] the choices are hard and [`Relax`] estimates the gradient of the
//!   logits and probabilities, training its control variate in the loop.
//! - The design decision to know: RELAX's derivatives of the control variate w.r.t. the
//!   policy are written in closed form (MLP input gradient, VJPs of the relaxed and the
//!   conditional samples), so training the control variate is one ordinary backward pass;
//!   candle's double backprop is not used.
//! - Policy files ([`PolicyFile`]) go through `Read` / `Write`: readable JSON, the
//!   fast-autoaugment list format, raw parameters as safetensors. [`sample_discrete`] applies
//!   a file as ordinary augmentation.
//!
//! It knows no model, dataset or model optimiser (that is dada-train); the ops themselves are
//! dada-ops.
#![warn(missing_docs)]

mod adam;
mod analysis;
mod discrete;
mod error;
mod file;
mod gumbel;
mod paper;
mod policy;
mod relax;
mod schedule;
#[cfg(test)]
mod testing;
mod tutorial;

pub use adam::PolicyAdam;
pub use analysis::{
    file_op_preferences, preferences_text, sub_policies_text, sub_policy_summaries, OpPreference, SubPolicySummary,
};
pub use discrete::sample_discrete;
pub use error::{clip, clip_to, PolicyError, PolicyResult, ECHO_LIMIT, MESSAGE_LIMIT};
pub use file::{
    canonical_op_name, fast_autoaugment_name, read_params, read_tensors, write_params, write_tensors, OpEntry,
    PolicyFile, SubPolicy, FAST_AUTOAUGMENT_NAMES, FORMAT,
};
pub use gumbel::{
    gumbel_softmax, gumbel_softmax_with_noise, one_hot_argmax, relaxed_bernoulli, relaxed_bernoulli_with_noise,
    sample_gumbel, sample_logistic, straight_through, uniform, EPS,
};
pub use paper::{Draw, PaperConfig, PaperPolicy};
pub use policy::{Estimator, Policy, PolicySample};
pub use relax::{ControlVariate, Reinforce, Relax, RelaxConfig, RelaxEstimate};
pub use schedule::Schedule;
pub use tutorial::{Gate, TutorialConfig, TutorialPolicy};
