//! `PaperPolicy`: the official DADA search space (`search_relax/model_search.py`): every
//! unordered pair of distinct ops is a sub-policy, drawn once per batch.
use candle::{bail, Device, Result, Tensor, Var, D};
use dada_ops::OpSet;
use rand::rngs::StdRng;

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
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self { ops: OpSet::paper(), slots: 2, top_k: 25, init_logit: 1e-3, init_probability: 0.5, init_magnitude: 0.5 }
    }
}

/// The official DADA search space.
///
/// Parameters: selection `logits (S,)` (categorical = softmax, init 1e-3), raw
/// `magnitudes (S, slots)` and raw `probabilities (S, slots)` (init 0.5, clamped to [0, 1] when
/// used; the Bernoulli logit is `logit(clamp(p, 1e-6, 1 - 1e-6))`). One sub-policy is drawn per
/// batch by Gumbel-max, and each of its ops is applied or skipped by one Bernoulli draw shared
/// by the whole batch (all `S x slots` Bernoullis are drawn, as in the official code, so the
/// RELAX control variate sees `S x (slots + 1)` relaxed values).
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

    /// The [`Estimator::Gumbel`] augmentation with the gates and the selection given as scalar
    /// tensors: `x_0 = images`, `x_j = x_{j-1} + gate_j * (op_j(x_{j-1}, m_j) - x_{j-1})`, and
    /// the result `images + sel * (x_k - images)`. Every op runs, a skipped one too (its
    /// output is what the gradient of its gate needs). `rng` draws the ops' own parameters.
    ///
    /// The gradients are `dL/dsel = <dL/dy, x_k - images>` and
    /// `dL/dgate_j = <dL/dx_j, op_j(x_{j-1}) - x_{j-1}>`: both are exactly zero when the ops
    /// leave the images unchanged, as the symmetric geometric and the enhance ops do at
    /// magnitude 0.5 (see [`PaperConfig::init_magnitude`]).
    fn gumbel_chain(&self, images: &Tensor, chosen: usize, gates: &[Tensor], sel: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let b = images.dim(0)?;
        let ops = &self.sub_policies[chosen];
        if gates.len() != ops.len() {
            bail!("paper policy augment: {} gates for {} op slots", gates.len(), ops.len())
        }
        let mags = self.magnitudes.as_tensor().clamp(0.0, 1.0)?;
        let mut x = images.clone();
        for (j, (&op, gate)) in ops.iter().zip(gates).enumerate() {
            let m = mags.get(chosen)?.get(j)?.broadcast_as(b)?;
            let y = apply_grouped(&self.cfg.ops, &x, &vec![Some(op); b], &m, rng)?;
            x = blend(&x, &y, gate)?;
        }
        blend(images, &x, sel)
    }
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
        let (s, k) = (self.sub_policies.len(), self.cfg.slots);
        let dev = &self.device;
        let logits = var_values(&self.logits);
        let raw_p = var_values(&self.probabilities);
        let cat = draw_categorical(&logits, temperature, rng);
        let mut ber = Vec::with_capacity(s * k);
        let mut dlam_dparam = Vec::with_capacity(s * k);
        for &p in &raw_p {
            let pc = clamp_unit(p as f64);
            ber.push(draw_bernoulli(pc.ln() - (-pc).ln_1p(), temperature, rng));
            // d logit(clamp(p)) / dp = 1 / (p (1 - p)) inside the clamp, 0 outside
            let inside = (p as f64) > EPS && (p as f64) < 1.0 - EPS;
            dlam_dparam.push(if inside { (1.0 / (pc * (1.0 - pc))) as f32 } else { 0.0 });
        }
        // Relaxed samples as functions of the Vars (same noise as the hard draws).
        let gumbel = tensor(cat.gumbel.iter().map(|&g| g as f32).collect(), s, dev)?;
        let log_p = candle_nn::ops::log_softmax(self.logits.as_tensor(), D::Minus1)?;
        let soft_cat = candle_nn::ops::softmax(&((log_p + gumbel)? / temperature)?, D::Minus1)?.reshape((1, 1, s))?;
        let logistic = tensor(ber.iter().map(|d| d.logistic as f32).collect(), (s, k), dev)?;
        let soft_ber = candle_nn::ops::sigmoid(&((self.bernoulli_logits()? + logistic)? / temperature)?)?
            .reshape((1, s * k))?;
        let chosen = cat.b;
        let gates: Vec<bool> = (0..k).map(|j| ber[chosen * k + j].b).collect();
        let ones = Tensor::ones((1, 1), candle::DType::F32, dev)?;
        let relax = RelaxData::build(
            &[vec![cat]],
            &[ber],
            dlam_dparam,
            Target { var: self.logits.clone(), rows: ones.clone() },
            Target { var: self.probabilities.clone(), rows: ones },
            None,
            dev,
        )?;
        Ok(PolicySample {
            temperature,
            b_sz,
            sub_policies: vec![chosen],
            op_indices: vec![self.sub_policies[chosen].clone()],
            gates: vec![gates],
            soft: SoftSample { cat: soft_cat, ber: soft_ber },
            relax,
        })
    }

    fn augment(&self, images: &Tensor, sample: &PolicySample, estimator: Estimator, rng: &mut StdRng) -> Result<Tensor> {
        let b = images.dim(0)?;
        if sample.n_draws() != 1 {
            bail!("paper policy augment: expected a batch-shared sample, got {} draws", sample.n_draws())
        }
        let (s, k) = (self.sub_policies.len(), self.cfg.slots);
        let chosen = sample.sub_policies[0];
        if chosen >= s {
            bail!("paper policy augment: sub-policy {chosen} out of range ({s})")
        }
        match estimator {
            Estimator::Relax => {
                let mags = self.magnitudes.as_tensor().clamp(0.0, 1.0)?;
                let mut x = images.clone();
                for (j, &op) in self.sub_policies[chosen].iter().enumerate() {
                    if sample.gates[0][j] {
                        let m = mags.get(chosen)?.get(j)?.broadcast_as(b)?;
                        x = apply_grouped(&self.cfg.ops, &x, &vec![Some(op); b], &m, rng)?;
                    }
                }
                Ok(x)
            }
            Estimator::Gumbel => {
                // Straight-through: values are the hard choices, gradients those of the
                // relaxed samples (`hard + soft - soft.detach()`).
                let sel_soft = sample.soft.cat.flatten_all()?.get(chosen)?;
                let sel = ((&sel_soft - sel_soft.detach())? + 1.0)?;
                let soft_ber = sample.soft.ber.flatten_all()?;
                let gates = (0..k)
                    .map(|j| {
                        let g_soft = soft_ber.get(chosen * k + j)?;
                        let hard = if sample.gates[0][j] { 1.0 } else { 0.0 };
                        (&g_soft - g_soft.detach())? + hard
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
