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
            policy.gumbel_chain(&images, c, &gate_tensors, &Tensor::new(sel, &dev)?, &mut aug_rng.clone())
        };
        let replay = chain(&hard, 1.0)?;
        assert_eq!(values(&replay), values(&y), "the chain at the hard values is the augmentation");

        // dL/dsel: the output images + sel (x_k - images) is linear in sel and x_k = y at sel 1.
        let dl_dsel = loss_of(&(&y - &images)?)?;
        let change = max_abs(&values(&(&y - &images)?));
        // dL/dgate_j through the chain with plain Vars as gates (no straight-through).
        let gate_vars = hard.iter().map(|&g| Var::new(g, &dev)).collect::<Result<Vec<_>>>()?;
        let gate_tensors: Vec<Tensor> = gate_vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = policy.gumbel_chain(&images, c, &gate_tensors, &Tensor::new(1f32, &dev)?, &mut aug_rng.clone())?;
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
