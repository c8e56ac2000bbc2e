//! `PaperPolicy`: the official DADA search space (`search_relax/model_search.py`): every
//! unordered pair of distinct ops is a sub-policy, drawn once per batch ([`Draw::PerBatch`]) or,
//! as this project's extension, once per image ([`Draw::PerImage`]).
use candle::{bail, DType, Device, Result, Tensor, Var, D};
use dada_ops::OpSet;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::analysis::OpPreference;
use crate::gumbel::{clamp_unit, draw_bernoulli, draw_categorical, tensor, EPS};
use crate::policy::{apply_grouped, blend, var_values, round6, RelaxData, SoftSample, Target};
use crate::{Estimator, OpEntry, Policy, PolicyError, PolicyFile, PolicySample, SubPolicy};

/// Settings of a [`PaperPolicy`].
#[derive(Debug, Clone)]
pub struct PaperConfig {
    /// The ops (default: `OpSet::paper()`, the DADA / AutoAugment 15).
    pub ops: OpSet,
    /// Ops per sub-policy: the sub-policies are all `C(n_ops, slots)` combinations of distinct
    /// ops in lexicographic order of their indices (default 2: the 105 pairs).
    pub slots: usize,
    /// Sub-policies kept by [`Policy::export`] (default 25).
    pub top_k: usize,
    /// Initial selection logit of every sub-policy (default 1e-3).
    pub init_logit: f32,
    /// Initial raw probability of every op slot (default 0.5).
    pub init_probability: f32,
    /// Initial raw magnitude of every op slot (default 0.5, as the official code).
    ///
    /// Magnitude 0.5 is the identity of 9 of the 15 paper ops (shear, translate and rotate map
    /// it to 0, the four enhance ops to factor 1.0) and 3 more have no magnitude. A draw whose
    /// applied ops are all identities leaves the images unchanged, so with
    /// [`Estimator::Gumbel`] its selection logit and its probabilities get an exactly zero
    /// gradient there (the true derivative, not a lost one); the magnitudes of the applied ops
    /// do get a gradient, which moves them off 0.5 in the first step.
    pub init_magnitude: f32,
    /// One sub-policy per batch (default, the paper's) or one per image (this project's
    /// extension, see [`Draw::PerImage`]).
    pub draw: Draw,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            ops: OpSet::paper(),
            slots: 2,
            top_k: 25,
            init_logit: 1e-3,
            init_probability: 0.5,
            init_magnitude: 0.5,
            draw: Draw::PerBatch,
        }
    }
}

/// How many sub-policies a [`PaperPolicy`] draws for a batch of `B` images.
///
/// Serialised by variant name (`"PerBatch"`, `"PerImage"`); configurations written before the
/// choice existed read as the default, [`Draw::PerBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Draw {
    /// One sub-policy and one set of gates shared by the whole batch: the paper's and the
    /// official code's. With 105 sub-policies, each one's magnitudes and probabilities get a
    /// gradient in about one step of 105.
    #[default]
    PerBatch,
    /// One independent draw per image (this project's extension, not in the paper): image `i`
    /// gets its own sub-policy `c_i` and gates, each draw an i.i.d. copy of the per-batch draw
    /// (one Gumbel-max over the `S` logits and all `S x slots` Bernoullis, so the RELAX
    /// control variate keeps its `S x (slots + 1)` inputs); only `c_i`'s gates are applied
    /// to image `i`. At uniform weights a batch of 128 reaches about 74 of the 105 sub-policies per step.
    ///
    /// **RELAX per draw.** Let `f_i(b_i)` be image `i`'s term of the objective, scaled so
    /// that the objective is `F = E[(1/B) sum_i f_i(b_i)]` (the search passes image `i`'s own
    /// loss term, on the scale of the batch mean: `B` times its share). The draws are
    /// independent and `f_i` depends on `b_i` alone, so
    /// `grad F = (1/B) sum_i grad E_{b_i}[f_i(b_i)]`: each term is a one-draw expectation
    /// (the other draws integrate out). RELAX for one draw,
    /// `g_i = [f_i(b_i) - c(z~_i)] grad log p(b_i) + grad c(z_i) - grad c(z~_i)`, is unbiased
    /// for `grad E[f_i(b_i)]` for any `c` (Grathwohl et al. 2018, eq. 7), so the mean
    /// `g = (1/B) sum_i g_i` is unbiased for `grad F`. One control variate `c` serves every
    /// draw (each evaluates it at its own `z_i`, `z~_i`), trained on `|g|^2` as before; the
    /// `1/B` is [`crate::Relax::estimate`]'s mean over draws. Caveat: a model in training
    /// mode couples the images through its batch-norm statistics, so `f_i` also depends, by
    /// `O(1/B)`, on the other draws; the cross terms `E[f_i grad log p(b_j)]`, `j != i`, are
    /// left out (the per-batch draw has no such term to leave out, one draw sees the whole
    /// batch's loss).
    ///
    /// **Pathwise.** The magnitudes (and under [`Estimator::Gumbel`] the straight-through
    /// selections and gates) get their gradient by backprop through each image's own ops:
    /// image `i` applies slot `j` at `m[c_i, j]`, so `dL/dm[c, j]` sums over the images that
    /// drew `c`. Each op runs once per slot on the images that drew it (grouped by op, not by
    /// sub-policy: at most `n_ops` groups per slot).
    PerImage,
}

/// The official DADA search space.
///
/// Parameters: selection `logits (S,)` (categorical = softmax, init 1e-3), raw
/// `magnitudes (S, slots)` and raw `probabilities (S, slots)` (init 0.5, clamped to [0, 1] when
/// used; the Bernoulli logit is `logit(clamp(p, 1e-6, 1 - 1e-6))`). One sub-policy is drawn per
/// batch by Gumbel-max, and each of its ops is applied or skipped by one Bernoulli draw shared
/// by the whole batch (all `S x slots` Bernoullis are drawn, as in the official code, so the
/// RELAX control variate sees `S x (slots + 1)` relaxed values). With [`Draw::PerImage`] the
/// same draw is made once per image.
#[derive(Debug)]
pub struct PaperPolicy {
    cfg: PaperConfig,
    sub_policies: Vec<Vec<usize>>,
    logits: Var,
    magnitudes: Var,
    probabilities: Var,
    device: Device,
}

impl PaperPolicy {
    /// A policy with every `C(n_ops, slots)` sub-policy, at the configured initial values.
    pub fn new(cfg: PaperConfig, device: &Device) -> std::result::Result<Self, PolicyError> {
        let n_ops = cfg.ops.len();
        if cfg.slots == 0 || cfg.slots > n_ops {
            return Err(PolicyError::Config(format!("paper space: slots must be in 1..={n_ops}, got {}", cfg.slots)));
        }
        let sub_policies = combinations(n_ops, cfg.slots);
        let s = sub_policies.len();
        let k = cfg.slots;
        let logits = Var::from_tensor(&Tensor::full(cfg.init_logit, s, device)?)?;
        let magnitudes = Var::from_tensor(&Tensor::full(cfg.init_magnitude, (s, k), device)?)?;
        let probabilities = Var::from_tensor(&Tensor::full(cfg.init_probability, (s, k), device)?)?;
        Ok(Self { cfg, sub_policies, logits, magnitudes, probabilities, device: device.clone() })
    }

    /// The sub-policies as op indices, in parameter order.
    pub fn sub_policies(&self) -> &[Vec<usize>] {
        &self.sub_policies
    }

    /// The selection logits `(S,)`.
    pub fn logits(&self) -> &Var {
        &self.logits
    }

    /// The raw magnitudes `(S, slots)`.
    pub fn magnitudes(&self) -> &Var {
        &self.magnitudes
    }

    /// The raw probabilities `(S, slots)`.
    pub fn probabilities(&self) -> &Var {
        &self.probabilities
    }

    /// The settings.
    pub fn config(&self) -> &PaperConfig {
        &self.cfg
    }

    /// Sub-policy weights `softmax(logits)`.
    pub fn weights(&self) -> Vec<f64> {
        let l = var_values(&self.logits);
        crate::gumbel::log_softmax(&l).iter().map(|x| x.exp()).collect()
    }

    /// The Bernoulli logits `logit(clamp(p, EPS, 1 - EPS))` as a tensor of the Var.
    fn bernoulli_logits(&self) -> Result<Tensor> {
        let p = self.probabilities.as_tensor().clamp(EPS, 1.0 - EPS)?;
        p.log()? - p.affine(-1.0, 1.0)?.log()?
    }

    /// The [`Estimator::Gumbel`] augmentation with the gates and the selection given as
    /// tensors, scalars for a batch-shared draw (`chosen` of length 1) or `(B,)` for per-image
    /// draws (`chosen[i]` is image `i`'s sub-policy): `x_0 = images`,
    /// `x_j = x_{j-1} + gate_j * (op_j(x_{j-1}, m_j) - x_{j-1})`, and the result
    /// `images + sel * (x_k - images)`. Every op runs, a skipped one too (its output is what
    /// the gradient of its gate needs). `rng` draws the ops' own parameters.
    ///
    /// The gradients are `dL/dsel = <dL/dy, x_k - images>` and
    /// `dL/dgate_j = <dL/dx_j, op_j(x_{j-1}) - x_{j-1}>` (per image for per-image draws): both
    /// are exactly zero when the ops leave the images unchanged, as the symmetric geometric
    /// and the enhance ops do at magnitude 0.5 (see [`PaperConfig::init_magnitude`]).
    fn gumbel_chain(&self, images: &Tensor, chosen: &[usize], gates: &[Tensor], sel: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let b = images.dim(0)?;
        let k = self.cfg.slots;
        if gates.len() != k {
            bail!("paper policy augment: {} gates for {k} op slots", gates.len())
        }
        let mags = self.slot_magnitudes(chosen, b)?;
        let mut x = images.clone();
        for (j, gate) in gates.iter().enumerate() {
            let choice: Vec<Option<usize>> = (0..b).map(|i| Some(self.op_of(chosen, i, j))).collect();
            let y = apply_grouped(&self.cfg.ops, &x, &choice, &mags[j], rng)?;
            x = blend(&x, &y, gate)?;
        }
        blend(images, &x, sel)
    }

    /// The op of slot `j` for image `i` under the draws `chosen` (one shared, or one per image).
    fn op_of(&self, chosen: &[usize], i: usize, j: usize) -> usize {
        self.sub_policies[chosen[if chosen.len() == 1 { 0 } else { i }]][j]
    }

    /// Each slot's magnitude per image, `(B,)` each, clamped to [0, 1]: the shared sub-policy's
    /// broadcast (`chosen` of length 1), or row `chosen[i]` for image `i` (gathered, so the
    /// gradient of `m[c, j]` sums over the images that drew `c`).
    fn slot_magnitudes(&self, chosen: &[usize], b: usize) -> Result<Vec<Tensor>> {
        let mags = self.magnitudes.as_tensor().clamp(0.0, 1.0)?;
        let k = self.cfg.slots;
        if let [c] = chosen {
            return (0..k).map(|j| mags.get(*c)?.get(j)?.broadcast_as(b)).collect();
        }
        let rows = mags.index_select(&index_tensor(chosen, &self.device)?, 0)?; // (B, slots)
        (0..k).map(|j| rows.narrow(1, j, 1)?.squeeze(1)?.contiguous()).collect()
    }
}

/// `values` as a `u32` index tensor.
fn index_tensor(values: &[usize], dev: &Device) -> Result<Tensor> {
    Tensor::new(values.iter().map(|&v| v as u32).collect::<Vec<_>>().as_slice(), dev)
}

impl Policy for PaperPolicy {
    fn space(&self) -> &'static str {
        "paper"
    }

    fn ops(&self) -> &OpSet {
        &self.cfg.ops
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn num_sub_policies(&self) -> usize {
        self.sub_policies.len()
    }

    fn vars(&self) -> Vec<(String, Var)> {
        vec![
            ("logits".to_string(), self.logits.clone()),
            ("magnitudes".to_string(), self.magnitudes.clone()),
            ("probabilities".to_string(), self.probabilities.clone()),
        ]
    }

    fn sample(&self, b_sz: usize, temperature: f64, rng: &mut StdRng) -> Result<PolicySample> {
        if temperature <= 0.0 {
            bail!("paper policy sample: temperature must be > 0, got {temperature}")
        }
        let n = match self.cfg.draw {
            Draw::PerBatch => 1,
            Draw::PerImage if b_sz == 0 => bail!("paper policy sample: empty batch"),
            Draw::PerImage => b_sz,
        };
        let (s, k) = (self.sub_policies.len(), self.cfg.slots);
        let dev = &self.device;
        let logits = var_values(&self.logits);
        let raw_p = var_values(&self.probabilities);
        let lambda: Vec<f64> = raw_p
            .iter()
            .map(|&p| {
                let pc = clamp_unit(p as f64);
                pc.ln() - (-pc).ln_1p()
            })
            .collect();
        // d logit(clamp(p)) / dp = 1 / (p (1 - p)) inside the clamp, 0 outside
        let dlam_dparam: Vec<f32> = raw_p
            .iter()
            .map(|&p| {
                let pc = clamp_unit(p as f64);
                let inside = (p as f64) > EPS && (p as f64) < 1.0 - EPS;
                if inside { (1.0 / (pc * (1.0 - pc))) as f32 } else { 0.0 }
            })
            .collect();
        // Each draw: the sub-policy, then every Bernoulli (the per-batch order, n times).
        let (mut cat, mut ber) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            cat.push(vec![draw_categorical(&logits, temperature, rng)]);
            ber.push(lambda.iter().map(|&l| draw_bernoulli(l, temperature, rng)).collect::<Vec<_>>());
        }
        // Relaxed samples as functions of the Vars (same noise as the hard draws), (N, ...).
        let gumbel = tensor(cat.iter().flat_map(|c| c[0].gumbel.iter().map(|&g| g as f32)).collect(), (n, s), dev)?;
        let log_p = candle_nn::ops::log_softmax(self.logits.as_tensor(), D::Minus1)?;
        let soft_cat = candle_nn::ops::softmax(&(log_p.broadcast_add(&gumbel)? / temperature)?, D::Minus1)?.reshape((n, 1, s))?;
        let logistic = tensor(ber.iter().flatten().map(|d| d.logistic as f32).collect(), (n, s * k), dev)?;
        let lam = self.bernoulli_logits()?.reshape((1, s * k))?;
        let soft_ber = candle_nn::ops::sigmoid(&(lam.broadcast_add(&logistic)? / temperature)?)?;
        let sub_policies: Vec<usize> = cat.iter().map(|c| c[0].b).collect();
        let gates: Vec<Vec<bool>> =
            sub_policies.iter().zip(&ber).map(|(&c, draw)| (0..k).map(|j| draw[c * k + j].b).collect()).collect();
        // Every draw's gradient goes to the whole Var (rows of ones: summed, then averaged).
        let ones = Tensor::ones((n, 1), DType::F32, dev)?;
        let relax = RelaxData::build(
            &cat,
            &ber,
            dlam_dparam.repeat(n),
            Target { var: self.logits.clone(), rows: ones.clone() },
            Target { var: self.probabilities.clone(), rows: ones },
            None,
            dev,
        )?;
        Ok(PolicySample {
            temperature,
            b_sz,
            op_indices: sub_policies.iter().map(|&c| self.sub_policies[c].clone()).collect(),
            sub_policies,
            gates,
            soft: SoftSample { cat: soft_cat, ber: soft_ber },
            relax,
        })
    }

    fn augment(&self, images: &Tensor, sample: &PolicySample, estimator: Estimator, rng: &mut StdRng) -> Result<Tensor> {
        let b = images.dim(0)?;
        let n = sample.n_draws();
        if n != 1 && n != b {
            bail!("paper policy augment: a sample of {n} draws for a batch of {b} (expected one shared draw or one per image)")
        }
        let (s, k) = (self.sub_policies.len(), self.cfg.slots);
        let chosen = &sample.sub_policies;
        if let Some(c) = chosen.iter().find(|&&c| c >= s) {
            bail!("paper policy augment: sub-policy {c} out of range ({s})")
        }
        // The draw of image `i`.
        let draw = |i: usize| if n == 1 { 0 } else { i };
        match estimator {
            Estimator::Relax => {
                let mags = self.slot_magnitudes(chosen, b)?;
                let mut x = images.clone();
                for (j, m) in mags.iter().enumerate() {
                    // Each op once, on the images whose draw applies it (none: x unchanged).
                    let choice: Vec<Option<usize>> =
                        (0..b).map(|i| sample.gates[draw(i)][j].then(|| self.op_of(chosen, i, j))).collect();
                    x = apply_grouped(&self.cfg.ops, &x, &choice, m, rng)?;
                }
                Ok(x)
            }
            Estimator::Gumbel => {
                // Straight-through: values are the hard choices, gradients those of the
                // relaxed samples (`hard + soft - soft.detach()`), per draw.
                let st = |soft: Tensor, hard: Tensor| -> Result<Tensor> { (&soft - soft.detach())? + hard };
                if n == 1 {
                    let c = chosen[0];
                    let sel = st(sample.soft.cat.flatten_all()?.get(c)?, Tensor::new(1f32, &self.device)?)?;
                    let soft_ber = sample.soft.ber.flatten_all()?;
                    let gates = (0..k)
                        .map(|j| st(soft_ber.get(c * k + j)?, Tensor::new(if sample.gates[0][j] { 1f32 } else { 0.0 }, &self.device)?))
                        .collect::<Result<Vec<_>>>()?;
                    return self.gumbel_chain(images, chosen, &gates, &sel, rng);
                }
                let index = index_tensor(chosen, &self.device)?.unsqueeze(1)?; // (B, 1)
                let sel_soft = sample.soft.cat.reshape((n, s))?.gather(&index, 1)?.squeeze(1)?;
                let sel = st(sel_soft, Tensor::ones(n, DType::F32, &self.device)?)?;
                let gates = (0..k)
                    .map(|j| {
                        let cols: Vec<usize> = chosen.iter().map(|&c| c * k + j).collect();
                        let cols = index_tensor(&cols, &self.device)?.unsqueeze(1)?;
                        let soft = sample.soft.ber.gather(&cols, 1)?.squeeze(1)?;
                        let hard: Vec<f32> = sample.gates.iter().map(|g| if g[j] { 1.0 } else { 0.0 }).collect();
                        st(soft, Tensor::new(hard.as_slice(), &self.device)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.gumbel_chain(images, chosen, &gates, &sel, rng)
            }
        }
    }

    fn export(&self) -> PolicyFile {
        let w = self.weights();
        let mags = var_values(&self.magnitudes);
        let probs = var_values(&self.probabilities);
        let k = self.cfg.slots;
        let names = self.cfg.ops.names();
        let mut order: Vec<usize> = (0..w.len()).collect();
        order.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
        let sub_policies = order
            .into_iter()
            .take(self.cfg.top_k)
            .map(|i| SubPolicy {
                weight: round6(w[i]),
                ops: self.sub_policies[i]
                    .iter()
                    .enumerate()
                    .map(|(j, &op)| OpEntry {
                        op: names[op].to_string(),
                        probability: round6((probs[i * k + j] as f64).clamp(0.0, 1.0)),
                        magnitude: round6((mags[i * k + j] as f64).clamp(0.0, 1.0)),
                    })
                    .collect(),
            })
            .collect();
        PolicyFile::new("paper", names.iter().map(|n| n.to_string()).collect(), sub_policies)
    }

    fn control_variate_dim(&self) -> usize {
        self.sub_policies.len() * (self.cfg.slots + 1)
    }

    fn op_preferences(&self) -> Vec<OpPreference> {
        let w = self.weights();
        let probs = var_values(&self.probabilities);
        let mags = var_values(&self.magnitudes);
        let k = self.cfg.slots;
        let n_ops = self.cfg.ops.len();
        let (mut weight, mut used, mut mag) = (vec![0f64; n_ops], vec![0f64; n_ops], vec![0f64; n_ops]);
        for (i, sp) in self.sub_policies.iter().enumerate() {
            for (j, &op) in sp.iter().enumerate() {
                let wi = w[i] / k as f64;
                weight[op] += wi;
                used[op] += w[i] * (probs[i * k + j] as f64).clamp(0.0, 1.0);
                mag[op] += wi * (mags[i * k + j] as f64).clamp(0.0, 1.0);
            }
        }
        crate::analysis::rank(&self.cfg.ops, weight, used, mag)
    }
}

/// All `C(n, k)` combinations of `0..n`, lexicographic.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<usize> = (0..k).collect();
    loop {
        out.push(cur.clone());
        // rightmost index that can still move
        let Some(i) = (0..k).rev().find(|&i| cur[i] < n - k + i) else { return out };
        cur[i] += 1;
        for j in i + 1..k {
            cur[j] = cur[j - 1] + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use candle::Var;
    use dada_ops::{AugOp, Interpolation, MagnitudeGrad};
    use rand::{Rng, SeedableRng};

    use crate::testing::{assert_close, central_diff, f64s, images_and_weight, max_abs, values};

    /// What one straight-through draw looked like.
    #[derive(Debug)]
    struct Draw {
        ops: Vec<&'static str>,
        gates: Vec<bool>,
        /// `y != images`.
        moved: bool,
        /// `max |y - images|`.
        change: f32,
        /// `dL/dgate_j != 0` for some slot.
        gate_sensitive: bool,
        /// `|grad|_max` of logits, magnitudes, probabilities.
        grads: [f32; 3],
    }

    /// One [`Estimator::Gumbel`] draw (sample from `rng`, augment with the ops' parameters drawn
    /// from `rng`, `L = <y, w>`): the autograd gradients of all three groups against the chain
    /// rule written out factor by factor, each factor computed independently of the
    /// straight-through construction:
    /// - `dL/dlogits = dL/dsel * d soft_cat[c] / d logits`, with `dL/dsel = <w, y - images>`
    ///   (the output is linear in `sel`) and the relaxed sample differentiated by finite
    ///   differences, re-drawn with the same noise;
    /// - `dL/dp[c, j] = dL/dgate_j * d soft_ber[c, j] / d p[c, j]`, `dL/dgate_j` from the chain
    ///   with plain gate Vars (and finite differences of it when `fd_gates`);
    /// - `dL/dm[c, j]` by finite differences of the augmentation when op `j` is smooth in its
    ///   magnitude (`MagnitudeGrad::Exact`) and `fd_magnitudes`; every other entry is 0.
    fn check_draw(policy: &PaperPolicy, rng: &mut StdRng, data: u64, fd_gates: bool, fd_magnitudes: bool) -> Result<Draw> {
        let dev = Device::Cpu;
        let (tau, b, k) = (0.5, 4, policy.cfg.slots);
        let (images, w) = images_and_weight(4, data)?;
        let sample_rng = rng.clone();
        let sample = policy.sample(b, tau, rng)?;
        let aug_rng = rng.clone();
        let y = policy.augment(&images, &sample, Estimator::Gumbel, rng)?;
        let loss_of = |t: &Tensor| -> Result<f64> { (t * &w)?.to_dtype(candle::DType::F64)?.sum_all()?.to_scalar::<f64>() };
        let store = (&y * &w)?.sum_all()?.backward()?;
        let grad = |v: &Var| -> Vec<f32> {
            store.get(v.as_tensor()).map(values).unwrap_or_else(|| vec![0.0; v.elem_count()])
        };
        let (g_logits, g_mags, g_probs) = (grad(&policy.logits), grad(&policy.magnitudes), grad(&policy.probabilities));
        let c = sample.sub_policies[0];
        let gates = sample.gates[0].clone();
        // The relaxed samples are those of the Gumbel-max / logistic draw (f64 RELAX data),
        // and the hard choices their argmax / threshold.
        let (soft_cat, soft_ber) = (values(sample.relaxed_categorical()), values(sample.relaxed_bernoulli()));
        assert_close("soft_cat", &soft_cat, &f64s(&values(&sample.relax.cat.x)), 1e-5, 1e-6);
        assert_close("soft_ber", &soft_ber, &f64s(&values(&sample.relax.ber.x)), 1e-5, 1e-6);
        assert!(soft_cat.iter().all(|&v| v <= soft_cat[c]), "the chosen sub-policy is the argmax");
        for (j, &g) in gates.iter().enumerate() {
            assert_eq!(soft_ber[c * k + j] > 0.5, g, "gate {j} is the relaxed sample > 0.5");
        }
        let hard: Vec<f32> = gates.iter().map(|&g| if g { 1.0 } else { 0.0 }).collect();

        // The chain at the hard values (gates 0 / 1, sel 1) is the augmentation itself.
        let chain = |gate_values: &[f32], sel: f32| -> Result<Tensor> {
            let gate_tensors = gate_values.iter().map(|&g| Tensor::new(g, &dev)).collect::<Result<Vec<_>>>()?;
            policy.gumbel_chain(&images, &[c], &gate_tensors, &Tensor::new(sel, &dev)?, &mut aug_rng.clone())
        };
        let replay = chain(&hard, 1.0)?;
        assert_eq!(values(&replay), values(&y), "the chain at the hard values is the augmentation");

        // dL/dsel: the output images + sel (x_k - images) is linear in sel and x_k = y at sel 1.
        let dl_dsel = loss_of(&(&y - &images)?)?;
        let change = max_abs(&values(&(&y - &images)?));
        // dL/dgate_j through the chain with plain Vars as gates (no straight-through).
        let gate_vars = hard.iter().map(|&g| Var::new(g, &dev)).collect::<Result<Vec<_>>>()?;
        let gate_tensors: Vec<Tensor> = gate_vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = policy.gumbel_chain(&images, &[c], &gate_tensors, &Tensor::new(1f32, &dev)?, &mut aug_rng.clone())?;
        let gate_store = (out * &w)?.sum_all()?.backward()?;
        let dl_dgate: Vec<f64> = gate_vars
            .iter()
            .map(|v| Ok(gate_store.get(v.as_tensor()).map_or(Ok(0.0), |g| g.to_scalar::<f32>())? as f64))
            .collect::<Result<_>>()?;
        if fd_gates {
            for j in 0..k {
                let h = 1e-2;
                let (mut plus, mut minus) = (hard.clone(), hard.clone());
                plus[j] += h;
                minus[j] -= h;
                let fd = (loss_of(&chain(&plus, 1.0)?)? - loss_of(&chain(&minus, 1.0)?)?) / (2.0 * h as f64);
                assert_close(&format!("dL/dgate_{j}"), &[dl_dgate[j] as f32], &[fd], 1e-2, 1e-4);
            }
        }

        // The relaxed samples re-drawn with the same noise, differentiated by finite differences.
        let redraw = || policy.sample(b, tau, &mut sample_rng.clone());
        let soft_cat_c = || -> Result<f64> { Ok(values(redraw()?.relaxed_categorical())[c] as f64) };
        let s = policy.sub_policies.len();
        let mut want_logits = vec![0f64; s];
        for (i, want) in want_logits.iter_mut().enumerate() {
            *want = dl_dsel * central_diff(&policy.logits, i, 1e-2, soft_cat_c)?;
        }
        let mut want_probs = vec![0f64; s * k];
        let mut want_mags = vec![0f64; s * k];
        let mut mags_checked = vec![true; s * k];
        for j in 0..k {
            let idx = c * k + j;
            let soft_ber = || -> Result<f64> { Ok(values(redraw()?.relaxed_bernoulli())[idx] as f64) };
            want_probs[idx] = dl_dgate[j] * central_diff(&policy.probabilities, idx, 1e-3, soft_ber)?;
            let op = policy.cfg.ops.get(policy.sub_policies[c][j]);
            if op.range().is_none() {
                continue; // no magnitude: exactly 0
            }
            if fd_magnitudes && op.magnitude_grad() == MagnitudeGrad::Exact {
                let aug = || loss_of(&policy.augment(&images, &sample, Estimator::Gumbel, &mut aug_rng.clone())?);
                want_mags[idx] = central_diff(&policy.magnitudes, idx, 1e-3, aug)?;
            } else {
                // not smooth in the magnitude (or at a kink): only its sign pattern is known
                mags_checked[idx] = false;
                assert_eq!(g_mags[idx] != 0.0, gates[j], "magnitude grad of {} with gate {}", op.name(), gates[j]);
            }
        }
        assert_close("logits", &g_logits, &want_logits, 2e-2, 1e-5);
        assert_close("probabilities", &g_probs, &want_probs, 2e-2, 1e-5);
        let (got_m, want_m): (Vec<f32>, Vec<f64>) =
            (0..s * k).filter(|&i| mags_checked[i]).map(|i| (g_mags[i], want_mags[i])).unzip();
        assert_close("magnitudes", &got_m, &want_m, 2e-2, 1e-4);

        let ops = policy.sub_policies[c].iter().map(|&o| policy.cfg.ops.get(o).name()).collect();
        let draw = Draw {
            ops,
            gates,
            moved: change > 0.0,
            change,
            gate_sensitive: dl_dgate.iter().any(|&d| d != 0.0),
            grads: [max_abs(&g_logits), max_abs(&g_mags), max_abs(&g_probs)],
        };
        println!("{draw:?}");
        Ok(draw)
    }

    /// Moves every parameter off its initial value (magnitudes off the identity 0.5).
    fn perturb(policy: &PaperPolicy, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (s, k) = (policy.sub_policies.len(), policy.cfg.slots);
        let dev = Device::Cpu;
        let l: Vec<f32> = (0..s).map(|_| rng.random::<f32>() - 0.5).collect();
        let m: Vec<f32> = (0..s * k).map(|_| 0.15 + 0.25 * rng.random::<f32>() + if rng.random() { 0.45 } else { 0.0 }).collect();
        let p: Vec<f32> = (0..s * k).map(|_| 0.2 + 0.6 * rng.random::<f32>()).collect();
        policy.logits.set(&Tensor::from_vec(l, s, &dev)?)?;
        policy.magnitudes.set(&Tensor::from_vec(m, (s, k), &dev)?)?;
        policy.probabilities.set(&Tensor::from_vec(p, (s, k), &dev)?)?;
        Ok(())
    }

    #[test]
    fn magnitude_half_is_the_identity_of_nine_paper_ops() -> Result<()> {
        // The root of the zero straight-through gradients at the default initialisation.
        let ops = OpSet::paper();
        let (images, _) = images_and_weight(4, 0)?;
        let half = Tensor::full(0.5f32, 4, &Device::Cpu)?;
        let mut rng = StdRng::seed_from_u64(1);
        let mut identity = Vec::new();
        for op in ops.iter() {
            let params = op.sample(4, &mut rng, &Device::Cpu)?;
            let out = op.apply(&images, &half, &params)?;
            if max_abs(&values(&(out - &images)?)) < 1e-6 {
                identity.push(op.name());
            }
        }
        let want = ["shear_x", "shear_y", "translate_x", "translate_y", "rotate", "contrast", "color", "brightness", "sharpness"];
        identity.sort_unstable();
        let mut want = want.to_vec();
        want.sort_unstable();
        assert_eq!(identity, want);
        Ok(())
    }

    #[test]
    fn straight_through_gradients_at_init_match_the_chain_rule() -> Result<()> {
        // The reported draws (seed 0, default config and initialisation): zero gradients
        // appear exactly where the chosen ops leave the images unchanged at magnitude 0.5.
        let policy = PaperPolicy::new(PaperConfig::default(), &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let draws = (0..6).map(|i| check_draw(&policy, &mut rng, i, false, false)).collect::<Result<Vec<_>>>()?;
        for d in &draws {
            assert_eq!(d.grads[0] != 0.0, d.moved, "{d:?}: logits grad is 0 exactly when y == images");
            assert_eq!(d.grads[2] != 0.0, d.gate_sensitive, "{d:?}: probabilities grad is 0 exactly when every dL/dgate is");
        }
        // an applied op that is the identity up to rounding (enhance at factor 1.0)
        assert!(draws.iter().any(|d| d.change < 1e-5 && d.gates.iter().any(|&g| g)), "covers an applied identity op");
        assert!(draws.iter().any(|d| d.moved), "covers a draw that changes the images");
        Ok(())
    }

    #[test]
    fn straight_through_gradients_reach_every_group_when_they_should() -> Result<()> {
        // Off the identity every op changes the images: the probabilities always get a
        // gradient, the logits whenever an op is applied, the magnitudes whenever an op with
        // a magnitude is applied.
        let policy = PaperPolicy::new(PaperConfig::default(), &Device::Cpu).unwrap();
        perturb(&policy, 7)?;
        let mut rng = StdRng::seed_from_u64(0);
        let mut seen = [false; 3];
        for i in 0..10 {
            let d = check_draw(&policy, &mut rng, i, false, true)?;
            let ranged = d.ops.iter().zip(&d.gates).any(|(&o, &g)| g && OpSet::by_name(o).is_some_and(|op| op.range().is_some()));
            assert!(d.grads[2] > 0.0, "{d:?}: probabilities");
            assert_eq!(d.grads[0] > 0.0, d.gates.iter().any(|&g| g), "{d:?}: logits");
            assert_eq!(d.grads[1] > 0.0, ranged, "{d:?}: magnitudes");
            seen[d.gates.iter().filter(|&&g| g).count()] = true;
        }
        assert_eq!(seen, [true; 3], "draws with 0, 1 and 2 ops applied");
        Ok(())
    }

    #[test]
    fn straight_through_gradients_match_finite_differences_on_smooth_ops() -> Result<()> {
        // Ops smooth in image and magnitude: every factor of the chain rule by finite
        // differences, the gates' too.
        let bilinear = Interpolation::Bilinear;
        let ops: Vec<Arc<dyn AugOp>> = vec![
            Arc::new(dada_ops::ShearX::new(bilinear)),
            Arc::new(dada_ops::TranslateY::new(bilinear)),
            Arc::new(dada_ops::Rotate::new(bilinear)),
            OpSet::by_name("brightness").unwrap(),
            OpSet::by_name("contrast").unwrap(),
            OpSet::by_name("invert").unwrap(),
        ];
        let policy = PaperPolicy::new(PaperConfig { ops: OpSet::new(ops), ..PaperConfig::default() }, &Device::Cpu).unwrap();
        perturb(&policy, 8)?;
        let mut rng = StdRng::seed_from_u64(2);
        let mut seen = [false; 3];
        for i in 0..8 {
            let d = check_draw(&policy, &mut rng, 100 + i, true, true)?;
            seen[d.gates.iter().filter(|&&g| g).count()] = true;
        }
        assert_eq!(seen, [true; 3], "draws with 0, 1 and 2 ops applied");
        Ok(())
    }

    /// Ops smooth in image and magnitude (bilinear geometric, linear colour ops) and one
    /// without a magnitude: 6 ops, 15 sub-policies.
    fn smooth_ops() -> OpSet {
        let bilinear = Interpolation::Bilinear;
        OpSet::new(vec![
            Arc::new(dada_ops::ShearX::new(bilinear)),
            Arc::new(dada_ops::TranslateY::new(bilinear)),
            Arc::new(dada_ops::Rotate::new(bilinear)),
            OpSet::by_name("brightness").unwrap(),
            OpSet::by_name("contrast").unwrap(),
            OpSet::by_name("invert").unwrap(),
        ])
    }

    fn per_image(ops: OpSet) -> PaperPolicy {
        PaperPolicy::new(PaperConfig { ops, draw: super::Draw::PerImage, ..PaperConfig::default() }, &Device::Cpu).unwrap()
    }

    #[test]
    fn per_image_draws_are_independent_copies_of_the_batch_draw() -> Result<()> {
        // A per-image sample of B images is B batch draws in a row from the same stream.
        let batch = PaperPolicy::new(PaperConfig { ops: smooth_ops(), ..PaperConfig::default() }, &Device::Cpu).unwrap();
        let image = per_image(smooth_ops());
        perturb(&batch, 1)?;
        for (name, var) in image.vars() {
            var.set(batch.vars().iter().find(|(n, _)| *n == name).unwrap().1.as_tensor())?;
        }
        let (b, tau) = (5, 0.7);
        let many = image.sample(b, tau, &mut StdRng::seed_from_u64(9))?;
        assert_eq!(many.n_draws(), b);
        assert_eq!(image.control_variate_dim(), batch.control_variate_dim());
        let mut rng = StdRng::seed_from_u64(9);
        for i in 0..b {
            let one = batch.sample(b, tau, &mut rng)?;
            assert_eq!(many.sub_policies()[i], one.sub_policies()[0], "draw {i}");
            assert_eq!(many.gates()[i], one.gates()[0], "draw {i}");
            assert_eq!(many.op_indices()[i], one.op_indices()[0], "draw {i}");
            let row = |t: &Tensor| -> Result<Vec<f32>> { Ok(values(&t.get(i)?)) };
            assert_eq!(row(many.relaxed_categorical())?, values(one.relaxed_categorical()), "draw {i}");
            assert_eq!(row(many.relaxed_bernoulli())?, values(one.relaxed_bernoulli()), "draw {i}");
            assert_eq!(row(&many.relax.cat.x_tilde)?, values(&one.relax.cat.x_tilde), "draw {i}");
            assert_eq!(row(&many.relax.ber.x_tilde)?, values(&one.relax.ber.x_tilde), "draw {i}");
        }
        assert!(image.sample(0, tau, &mut rng).is_err(), "an empty batch has no draws");
        Ok(())
    }

    #[test]
    fn per_image_augment_applies_each_images_own_draw() -> Result<()> {
        // Ops with no random parameters, so each image's expected output is its own ops
        // applied to it alone, at its sub-policy's magnitudes.
        let ops = OpSet::new(["brightness", "contrast", "color", "invert", "solarize"].map(|n| OpSet::by_name(n).unwrap()).to_vec());
        let policy = per_image(ops.clone());
        perturb(&policy, 2)?;
        let (images, _) = images_and_weight(12, 3)?;
        let mags = values(policy.magnitudes.as_tensor());
        let mut rng = StdRng::seed_from_u64(4);
        let sample = policy.sample(12, 0.5, &mut rng)?;
        let distinct: std::collections::BTreeSet<usize> = sample.sub_policies().iter().copied().collect();
        assert!(distinct.len() >= 5, "12 images drew {} sub-policies", distinct.len());
        for est in [Estimator::Relax, Estimator::Gumbel] {
            let y = policy.augment(&images, &sample, est, &mut rng)?;
            for i in 0..12 {
                let c = sample.sub_policies()[i];
                let mut x = images.narrow(0, i, 1)?;
                for (j, &op) in policy.sub_policies[c].iter().enumerate() {
                    if sample.gates()[i][j] {
                        let m = Tensor::new(&[mags[c * 2 + j].clamp(0.0, 1.0)], &Device::Cpu)?;
                        let op = ops.get(op);
                        x = op.apply(&x, &m, &op.sample(1, &mut rng, &Device::Cpu)?)?;
                    }
                }
                let d = max_abs(&values(&(y.narrow(0, i, 1)? - x)?));
                assert!(d < 1e-6, "{est:?}: image {i} (sub-policy {c}, gates {:?}) differs by {d}", sample.gates()[i]);
            }
        }
        Ok(())
    }

    #[test]
    fn per_image_magnitude_gradients_match_finite_differences() -> Result<()> {
        // RELAX: hard choices, pathwise magnitudes; dL/dm[c, j] sums over the images that drew
        // c and applied slot j, and is 0 for every sub-policy no image applied.
        let policy = per_image(smooth_ops());
        perturb(&policy, 5)?;
        let (images, w) = images_and_weight(8, 6)?;
        let mut rng = StdRng::seed_from_u64(7);
        let sample = policy.sample(8, 0.5, &mut rng)?;
        let loss = |rng: &mut StdRng| -> Result<Tensor> {
            (policy.augment(&images, &sample, Estimator::Relax, rng)? * &w)?.to_dtype(candle::DType::F64)?.sum_all()
        };
        let store = loss(&mut rng.clone())?.backward()?;
        let got = values(store.get(policy.magnitudes.as_tensor()).expect("magnitudes get a gradient"));
        let want = (0..got.len())
            .map(|q| central_diff(&policy.magnitudes, q, 1e-3, || loss(&mut rng.clone())?.to_scalar::<f64>()))
            .collect::<Result<Vec<_>>>()?;
        assert_close("per-image magnitudes", &got, &want, 2e-2, 1e-4);
        let k = policy.cfg.slots;
        let mut moved = std::collections::BTreeSet::new();
        for (q, &g) in got.iter().enumerate() {
            let (c, j) = (q / k, q % k);
            let applied = (0..8).any(|i| sample.sub_policies()[i] == c && sample.gates()[i][j]);
            let ranged = policy.cfg.ops.get(policy.sub_policies[c][j]).range().is_some();
            assert_eq!(g != 0.0, applied && ranged, "m[{c}, {j}]: grad {g}, applied {applied}");
            if g != 0.0 {
                moved.insert(c);
            }
        }
        println!("per-image RELAX: 8 images moved the magnitudes of sub-policies {moved:?}");
        assert!(moved.len() >= 3, "one step reaches several sub-policies: {moved:?}");
        Ok(())
    }

    #[test]
    fn per_image_straight_through_gradients_match_the_chain_rule() -> Result<()> {
        // The per-image version of `check_draw`: per image `i`, `dL/dsel_i` and `dL/dgate_ij`
        // from the chain with plain (B,) Vars (the gates also by finite differences), times the
        // derivatives of image i's relaxed samples re-drawn with the same noise (finite
        // differences); the magnitudes by finite differences of the augmentation:
        //   dL/dlogits = sum_i dL/dsel_i d soft_cat[i, c_i] / dlogits
        //   dL/dp      = sum_i sum_j dL/dgate_ij d soft_ber[i, c_i * k + j] / dp
        let dev = Device::Cpu;
        let policy = per_image(smooth_ops());
        perturb(&policy, 8)?;
        let (s, k, b, tau) = (policy.sub_policies.len(), policy.cfg.slots, 8, 0.5);
        let (images, w) = images_and_weight(b, 9)?;
        let loss_of = |t: &Tensor| -> Result<f64> { (t * &w)?.to_dtype(candle::DType::F64)?.sum_all()?.to_scalar::<f64>() };
        let mut rng = StdRng::seed_from_u64(10);
        let sample_rng = rng.clone();
        let sample = policy.sample(b, tau, &mut rng)?;
        let aug_rng = rng.clone();
        let y = policy.augment(&images, &sample, Estimator::Gumbel, &mut rng)?;
        let store = (&y * &w)?.sum_all()?.backward()?;
        let grad = |v: &Var| store.get(v.as_tensor()).map(values).unwrap_or_else(|| vec![0.0; v.elem_count()]);
        let (g_logits, g_mags, g_probs) = (grad(&policy.logits), grad(&policy.magnitudes), grad(&policy.probabilities));
        let chosen = sample.sub_policies().to_vec();
        let (soft_cat, soft_ber) = (values(sample.relaxed_categorical()), values(sample.relaxed_bernoulli()));
        for (i, &c) in chosen.iter().enumerate() {
            assert!(soft_cat[i * s..(i + 1) * s].iter().all(|&v| v <= soft_cat[i * s + c]), "image {i}: the argmax");
            for j in 0..k {
                assert_eq!(soft_ber[(i * s + c) * k + j] > 0.5, sample.gates()[i][j], "image {i}, gate {j}");
            }
        }

        // The chain with plain Vars at the hard values replays the augmentation.
        let hard: Vec<Vec<f32>> = (0..k).map(|j| (0..b).map(|i| if sample.gates()[i][j] { 1.0 } else { 0.0 }).collect()).collect();
        let gate_vars = hard.iter().map(|h| Var::from_slice(h, b, &dev)).collect::<Result<Vec<_>>>()?;
        let sel_var = Var::ones(b, candle::DType::F32, &dev)?;
        let gate_tensors: Vec<Tensor> = gate_vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = policy.gumbel_chain(&images, &chosen, &gate_tensors, sel_var.as_tensor(), &mut aug_rng.clone())?;
        assert_eq!(values(&out), values(&y), "the chain at the hard values is the augmentation");
        let chain_store = (out * &w)?.sum_all()?.backward()?;
        let dl_dsel = values(chain_store.get(sel_var.as_tensor()).expect("sel gradient"));
        let dl_dgate: Vec<Vec<f32>> =
            gate_vars.iter().map(|v| chain_store.get(v.as_tensor()).map(values).unwrap_or_else(|| vec![0.0; b])).collect();
        // dL/dsel_i = <w_i, y_i - images_i>: the output is linear in sel_i.
        for (i, &g) in dl_dsel.iter().enumerate() {
            let exact = ((&y - &images)?.narrow(0, i, 1)? * w.narrow(0, i, 1)?)?.to_dtype(candle::DType::F64)?.sum_all()?.to_scalar::<f64>()?;
            assert_close(&format!("dL/dsel_{i}"), &[g], &[exact], 1e-4, 1e-5);
        }
        // dL/dgate_ij by finite differences of the chain (all gates as one vector, as the
        // other groups: a clip kink of an enhance op inside one interval shows as a small
        // error against the largest entry).
        let at = |i: usize, j: usize, delta: f32| -> Result<f64> {
            let gates = (0..k)
                .map(|jj| {
                    let mut v = hard[jj].clone();
                    if jj == j {
                        v[i] += delta;
                    }
                    Tensor::from_vec(v, b, &dev)
                })
                .collect::<Result<Vec<_>>>()?;
            loss_of(&policy.gumbel_chain(&images, &chosen, &gates, &Tensor::ones(b, candle::DType::F32, &dev)?, &mut aug_rng.clone())?)
        };
        let h = 1e-3f32;
        let (mut got_gates, mut want_gates) = (Vec::new(), Vec::new());
        for (j, slot) in dl_dgate.iter().enumerate() {
            for (i, &g) in slot.iter().enumerate() {
                got_gates.push(g);
                want_gates.push((at(i, j, h)? - at(i, j, -h)?) / (2.0 * h as f64));
            }
        }
        assert_close("dL/dgates", &got_gates, &want_gates, 2e-2, 1e-4);

        // Relaxed samples re-drawn with the same noise, differentiated by finite differences.
        let redraw = || policy.sample(b, tau, &mut sample_rng.clone());
        let mut dsel = vec![0f32; b * s];
        let mut dgate = vec![0f32; b * s * k];
        for (i, &c) in chosen.iter().enumerate() {
            dsel[i * s + c] = dl_dsel[i];
            for j in 0..k {
                dgate[(i * s + c) * k + j] = dl_dgate[j][i];
            }
        }
        let dot = |a: &[f32], t: &Tensor| -> f64 { a.iter().zip(values(t)).map(|(&x, y)| x as f64 * y as f64).sum() };
        let want_logits = (0..s)
            .map(|q| central_diff(&policy.logits, q, 1e-2, || Ok(dot(&dsel, redraw()?.relaxed_categorical()))))
            .collect::<Result<Vec<_>>>()?;
        let want_probs = (0..s * k)
            .map(|q| central_diff(&policy.probabilities, q, 1e-3, || Ok(dot(&dgate, redraw()?.relaxed_bernoulli()))))
            .collect::<Result<Vec<_>>>()?;
        let aug = || loss_of(&policy.augment(&images, &sample, Estimator::Gumbel, &mut aug_rng.clone())?);
        let want_mags = (0..s * k).map(|q| central_diff(&policy.magnitudes, q, 1e-3, aug)).collect::<Result<Vec<_>>>()?;
        assert_close("logits", &g_logits, &want_logits, 2e-2, 1e-5);
        assert_close("probabilities", &g_probs, &want_probs, 2e-2, 1e-5);
        assert_close("magnitudes", &g_mags, &want_mags, 2e-2, 1e-4);
        let reached = |g: &[f32]| (0..s).filter(|&c| (0..g.len() / s).any(|j| g[c * (g.len() / s) + j] != 0.0)).count();
        println!(
            "per-image straight-through: {b} images reach {} logits, the probabilities of {} and the magnitudes of {} sub-policies",
            reached(&g_logits),
            reached(&g_probs),
            reached(&g_mags)
        );
        // Every logit moves (softmax couples them); probabilities and magnitudes of each drawn
        // sub-policy whose gates matter.
        assert!(reached(&g_logits) == s && reached(&g_probs) >= 3 && reached(&g_mags) >= 3);
        Ok(())
    }

    #[test]
    fn combinations_count_and_order() {
        let c = combinations(15, 2);
        assert_eq!(c.len(), 105);
        assert_eq!(c[0], vec![0, 1]);
        assert_eq!(c[14], vec![1, 2]);
        assert_eq!(c[104], vec![13, 14]);
        assert_eq!(combinations(5, 3).len(), 10);
        assert_eq!(combinations(4, 1), vec![vec![0], vec![1], vec![2], vec![3]]);
    }
}
