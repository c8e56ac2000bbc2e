//! The `Policy` trait shared by both search spaces, `PolicySample` (one draw of the discrete
//! choices with everything the estimators need), and helpers shared by the spaces.
use std::fmt;

use candle::{bail, Device, Result, Tensor, Var};
use dada_ops::OpSet;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::analysis::OpPreference;
use crate::gumbel::{tensor, BernoulliDraw, CategoricalDraw};
use crate::PolicyFile;

/// How the gradient w.r.t. the discrete choices (op / sub-policy logits, probabilities) is
/// estimated. Magnitudes always get the pathwise gradient through the ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Estimator {
    /// Pathwise through the Gumbel-Softmax / relaxed Bernoulli (or straight-through) samples:
    /// `loss.backward()` reaches every parameter group.
    Gumbel,
    /// RELAX (Grathwohl et al. 2018): the augmentation uses the hard choices; the logits and
    /// probabilities get their gradient from [`crate::Relax`] (or [`crate::Reinforce`]).
    #[default]
    Relax,
}

/// A learnable augmentation policy (object safe: the search holds a `Box<dyn Policy>`).
pub trait Policy: Send + Sync + fmt::Debug {
    /// `"paper"` or `"tutorial"`.
    fn space(&self) -> &'static str;
    /// The ops the policy chooses from, in column order.
    fn ops(&self) -> &OpSet;
    /// The device of the parameters.
    fn device(&self) -> &Device;
    /// Number of sub-policies.
    fn num_sub_policies(&self) -> usize;
    /// Named parameter groups in a stable order: choice logits, magnitudes, probabilities.
    fn vars(&self) -> Vec<(String, Var)>;
    /// Draws the discrete choices for a batch of `b_sz` images at `temperature`.
    fn sample(&self, b_sz: usize, temperature: f64, rng: &mut StdRng) -> Result<PolicySample>;
    /// Augments `images (B,C,H,W)` with `sample` (drawn for the same `B`). Differentiable
    /// w.r.t. the magnitudes always, and w.r.t. logits / probabilities with
    /// [`Estimator::Gumbel`]; `rng` draws the ops' own random parameters (signs, centres).
    fn augment(&self, images: &Tensor, sample: &PolicySample, estimator: Estimator, rng: &mut StdRng) -> Result<Tensor>;
    /// The learned policy as a file (paper: top-k sub-policies by weight).
    fn export(&self) -> PolicyFile;
    /// Input size of the RELAX control variate for this policy.
    fn control_variate_dim(&self) -> usize;
    /// Ranked op preferences (highest weight first).
    fn op_preferences(&self) -> Vec<OpPreference>;
}

/// One draw of a policy's discrete choices, shared by the whole batch (paper space, one draw)
/// or per image (tutorial space, `B` draws).
///
/// It holds the hard choices, the relaxed samples as tensors differentiable w.r.t. the policy
/// (for [`Estimator::Gumbel`]), and the reparameterised and conditional relaxed samples `z`,
/// `z~` with the constants of their closed-form derivatives (for RELAX).
#[derive(Debug, Clone)]
pub struct PolicySample {
    pub(crate) temperature: f64,
    pub(crate) b_sz: usize,
    pub(crate) sub_policies: Vec<usize>,
    pub(crate) op_indices: Vec<Vec<usize>>,
    pub(crate) gates: Vec<Vec<bool>>,
    pub(crate) soft: SoftSample,
    pub(crate) relax: RelaxData,
}

impl PolicySample {
    /// The temperature it was drawn at.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }
    /// The batch size it was drawn for.
    pub fn batch_size(&self) -> usize {
        self.b_sz
    }
    /// Number of independent draws: 1 (shared by the batch) or `B` (per image).
    pub fn n_draws(&self) -> usize {
        self.sub_policies.len()
    }
    /// The sub-policy of each draw.
    pub fn sub_policies(&self) -> &[usize] {
        &self.sub_policies
    }
    /// The op (index into [`Policy::ops`]) of each slot of each draw.
    pub fn op_indices(&self) -> &[Vec<usize>] {
        &self.op_indices
    }
    /// Whether each slot of each draw is applied (the hard Bernoulli draw).
    pub fn gates(&self) -> &[Vec<bool>] {
        &self.gates
    }
    /// Relaxed categorical sample `softmax(z / tau)`, `(N, groups, K)`, differentiable w.r.t.
    /// the logits.
    pub fn relaxed_categorical(&self) -> &Tensor {
        &self.soft.cat
    }
    /// Relaxed Bernoulli sample `sigmoid(z / tau)`, `(N, groups)`, differentiable w.r.t. the
    /// probabilities.
    pub fn relaxed_bernoulli(&self) -> &Tensor {
        &self.soft.ber
    }
    /// The hard categorical choices as one-hot `(N, groups, K)` (the `b` of RELAX).
    pub fn hard_categorical(&self) -> &Tensor {
        &self.relax.cat.onehot
    }
    /// The hard Bernoulli choices `(N, groups)` as 0 / 1.
    pub fn hard_bernoulli(&self) -> &Tensor {
        &self.relax.ber.b
    }
}

/// The relaxed samples as functions of the policy Vars (graph kept).
#[derive(Debug, Clone)]
pub(crate) struct SoftSample {
    /// `(N, Gc, K)`.
    pub cat: Tensor,
    /// `(N, Gb)`.
    pub ber: Tensor,
}

/// Constants of one group of categorical variables, `(N, Gc, K)` each, and where their
/// gradient goes.
#[derive(Debug, Clone)]
pub(crate) struct CatData {
    pub x: Tensor,
    pub x_tilde: Tensor,
    pub p: Tensor,
    pub onehot: Tensor,
    pub dzt_dl: Tensor,
    pub target: Target,
}

/// Constants of the Bernoulli variables, `(N, Gb)` each.
#[derive(Debug, Clone)]
pub(crate) struct BerData {
    pub x: Tensor,
    pub x_tilde: Tensor,
    pub theta: Tensor,
    pub b: Tensor,
    pub dzt_dlam: Tensor,
    /// `d lambda / d param` (the chain to the stored parameter; 1 for logits).
    pub dlam_dparam: Tensor,
    pub target: Target,
}

/// Where per-draw gradients `(N, G)` go: `rows^T @ g`, reshaped to the Var's shape.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub var: Var,
    /// `(N, R)`: one-hot of the parameter row each draw used (ones `(1, 1)` for a whole Var).
    pub rows: Tensor,
}

impl Target {
    /// Scatters `(N, G)` per-draw gradients to the Var: `rows^T @ g`, reshaped.
    pub fn scatter(&self, g: &Tensor) -> Result<Tensor> {
        self.rows.t()?.matmul(g)?.reshape(self.var.shape())
    }
}

/// Everything RELAX needs about one sample.
#[derive(Debug, Clone)]
pub(crate) struct RelaxData {
    pub cat: CatData,
    pub ber: BerData,
    /// `(N, C)` extra control-variate input (the tutorial's sub-policy one-hot).
    pub context: Option<Tensor>,
}

impl RelaxData {
    /// Builds the constant tensors from the CPU draws (`cat[n][g]`, `ber[n][g]`).
    pub fn build(
        cat: &[Vec<CategoricalDraw>],
        ber: &[Vec<BernoulliDraw>],
        dlam_dparam: Vec<f32>,
        cat_target: Target,
        ber_target: Target,
        context: Option<Tensor>,
        dev: &Device,
    ) -> Result<Self> {
        let n = cat.len();
        let gc = cat.first().map_or(0, |c| c.len());
        let k = cat.first().and_then(|c| c.first()).map_or(0, |d| d.p.len());
        let flat = |f: &dyn Fn(&CategoricalDraw) -> Vec<f64>| -> Result<Tensor> {
            let v: Vec<f32> = cat.iter().flatten().flat_map(f).map(|x| x as f32).collect();
            tensor(v, (n, gc, k), dev)
        };
        let cat = CatData {
            x: flat(&|d| d.x.clone())?,
            x_tilde: flat(&|d| d.x_tilde.clone())?,
            p: flat(&|d| d.p.clone())?,
            onehot: flat(&|d| (0..d.p.len()).map(|i| if i == d.b { 1.0 } else { 0.0 }).collect())?,
            dzt_dl: flat(&|d| d.dzt_dl.clone())?,
            target: cat_target,
        };
        let gb = ber.first().map_or(0, |b| b.len());
        let flatb = |f: &dyn Fn(&BernoulliDraw) -> f64| -> Result<Tensor> {
            let v: Vec<f32> = ber.iter().flatten().map(f).map(|x| x as f32).collect();
            tensor(v, (n, gb), dev)
        };
        let ber = BerData {
            x: flatb(&|d| d.x)?,
            x_tilde: flatb(&|d| d.x_tilde)?,
            theta: flatb(&|d| d.theta)?,
            b: flatb(&|d| if d.b { 1.0 } else { 0.0 })?,
            dzt_dlam: flatb(&|d| d.dzt_dlam)?,
            dlam_dparam: tensor(dlam_dparam, (n, gb), dev)?,
            target: ber_target,
        };
        Ok(Self { cat, ber, context })
    }
}

/// Applies, per image, op `choice[i]` (or nothing for `None`) with `magnitudes[i]`, grouping
/// images by op so each op runs once on its images. Differentiable w.r.t. `images` and
/// `magnitudes (B,)`.
pub(crate) fn apply_grouped(
    ops: &OpSet,
    images: &Tensor,
    choice: &[Option<usize>],
    magnitudes: &Tensor,
    rng: &mut StdRng,
) -> Result<Tensor> {
    let b = images.dim(0)?;
    if choice.len() != b {
        bail!("apply_grouped: {} choices for a batch of {b}", choice.len())
    }
    let dev = images.device();
    let magnitudes = &magnitudes.contiguous()?;
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); ops.len() + 1];
    for (i, c) in choice.iter().enumerate() {
        match c {
            Some(k) if *k < ops.len() => groups[*k].push(i as u32),
            Some(k) => bail!("apply_grouped: op index {k} out of range for {} ops", ops.len()),
            None => groups[ops.len()].push(i as u32),
        }
    }
    if groups[ops.len()].len() == b {
        return Ok(images.clone());
    }
    let mut pieces = Vec::new();
    let mut order: Vec<u32> = Vec::with_capacity(b);
    for (k, idx) in groups.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let whole = idx.len() == b;
        let index = Tensor::new(idx.as_slice(), dev)?;
        let sub = if whole { images.clone() } else { images.index_select(&index, 0)? };
        let piece = if k == ops.len() {
            sub
        } else {
            let op = ops.get(k);
            let m = if whole { magnitudes.clone() } else { magnitudes.index_select(&index, 0)? };
            let params = op.sample(idx.len(), rng, dev)?;
            op.apply(&sub, &m, &params)?
        };
        if whole {
            return Ok(piece);
        }
        pieces.push(piece);
        order.extend_from_slice(idx);
    }
    let stacked = Tensor::cat(&pieces, 0)?;
    let mut inverse = vec![0u32; b];
    for (row, &orig) in order.iter().enumerate() {
        inverse[orig as usize] = row as u32;
    }
    stacked.index_select(&Tensor::new(inverse.as_slice(), dev)?, 0)
}

/// `x + gate * (y - x)` with `gate` a scalar tensor or `(B,)`.
pub(crate) fn blend(x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
    let g = match gate.rank() {
        0 => gate.reshape((1, 1, 1, 1))?,
        1 => gate.reshape((gate.dim(0)?, 1, 1, 1))?,
        r => bail!("blend: gate must be a scalar or (B,), got rank {r}"),
    };
    x + (y - x)?.broadcast_mul(&g)?
}

/// The values of a Var as f32 (parameters are f32 by construction).
pub(crate) fn var_values(var: &Var) -> Vec<f32> {
    var.as_tensor()
        .flatten_all()
        .and_then(|t| t.to_dtype(candle::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .expect("policy parameters are readable f32 tensors")
}

/// Rounds to 6 decimals for files a person reads.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
