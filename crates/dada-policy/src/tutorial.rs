//! `TutorialPolicy`: the datarax guide's search space: sub-policies x slots, each slot a
//! Gumbel-Softmax mixture over all ops with a magnitude and an apply probability, per image.
use candle::{bail, DType, Device, Result, Tensor, Var, D};
use std::sync::Arc;

use dada_compose::{AugOperator, Batch, Operator, ParamSource, WeightedParallel, WeightedParallelConfig};
use dada_ops::OpSet;
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::analysis::OpPreference;
use crate::gumbel::{draw_bernoulli, draw_categorical, one_hot_argmax, straight_through, tensor};
use crate::policy::{apply_grouped, blend, round6, var_values, RelaxData, SoftSample, Target};
use crate::{Estimator, OpEntry, Policy, PolicyError, PolicyFile, PolicySample, SubPolicy};

/// How a slot's apply probability blends the mixture with the input under
/// [`Estimator::Gumbel`] (under RELAX the gate is always the hard Bernoulli draw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Gate {
    /// `p * mixture + (1 - p) * x` with `p = sigmoid(prob_logit)` (the datarax guide).
    #[default]
    Expected,
    /// The relaxed Bernoulli sample `sigmoid((prob_logit + logistic) / tau)`.
    Relaxed,
    /// The hard Bernoulli sample, with the relaxed sample's gradient.
    StraightThrough,
}

/// Settings of a [`TutorialPolicy`].
#[derive(Debug, Clone)]
pub struct TutorialConfig {
    /// The ops (default: `OpSet::tutorial()`).
    pub ops: OpSet,
    /// Number of sub-policies (default 25).
    pub n_sub_policies: usize,
    /// Op slots per sub-policy (default 2).
    pub n_slots: usize,
    /// Gate mode under [`Estimator::Gumbel`].
    pub gate: Gate,
    /// Straight-through (hard one-hot) op weights under [`Estimator::Gumbel`] instead of the
    /// soft Gumbel-Softmax mixture (default `false`).
    pub hard: bool,
    /// Initial magnitude (default 0.5; magnitudes are clamped to [0, 1] when used).
    pub init_magnitude: f32,
    /// Initial apply-probability logit (default 0: probability 0.5).
    pub init_prob_logit: f32,
}

impl Default for TutorialConfig {
    fn default() -> Self {
        Self {
            ops: OpSet::tutorial(),
            n_sub_policies: 25,
            n_slots: 2,
            gate: Gate::Expected,
            hard: false,
            init_magnitude: 0.5,
            init_prob_logit: 0.0,
        }
    }
}

/// The datarax guide's search space.
///
/// Parameters: `op_logits (S, slots, n_ops)` (init 0), `magnitudes (S, slots)` (clamped to
/// [0, 1] when used), `prob_logits (S, slots)`: 25 x 2 x 15 + 2 x 25 x 2 = 850 by default.
/// Each image picks a sub-policy uniformly; each slot applies the Gumbel-Softmax-weighted
/// mixture of all ops (dada-compose's dynamic `WeightedParallel`, fused into one dada-ops
/// `weighted_mixture` pass) at the slot's magnitude, blended with its input by the gate. Under
/// RELAX each image applies only its hard choices, grouped by op.
#[derive(Debug)]
pub struct TutorialPolicy {
    cfg: TutorialConfig,
    op_logits: Var,
    magnitudes: Var,
    prob_logits: Var,
    device: Device,
}

impl TutorialPolicy {
    /// A policy at the configured initial values.
    pub fn new(cfg: TutorialConfig, device: &Device) -> std::result::Result<Self, PolicyError> {
        if cfg.ops.is_empty() || cfg.n_sub_policies == 0 || cfg.n_slots == 0 {
            return Err(PolicyError::Config(format!(
                "tutorial space: need ops, sub-policies and slots, got {} ops, {} sub-policies, {} slots",
                cfg.ops.len(),
                cfg.n_sub_policies,
                cfg.n_slots
            )));
        }
        let (s, k, n) = (cfg.n_sub_policies, cfg.n_slots, cfg.ops.len());
        let op_logits = Var::from_tensor(&Tensor::zeros((s, k, n), DType::F32, device)?)?;
        let magnitudes = Var::from_tensor(&Tensor::full(cfg.init_magnitude, (s, k), device)?)?;
        let prob_logits = Var::from_tensor(&Tensor::full(cfg.init_prob_logit, (s, k), device)?)?;
        Ok(Self { cfg, op_logits, magnitudes, prob_logits, device: device.clone() })
    }

    /// The settings.
    pub fn config(&self) -> &TutorialConfig {
        &self.cfg
    }

    /// `(S, slots, n_ops)` op logits.
    pub fn op_logits(&self) -> &Var {
        &self.op_logits
    }

    /// `(S, slots)` raw magnitudes.
    pub fn magnitudes(&self) -> &Var {
        &self.magnitudes
    }

    /// `(S, slots)` apply-probability logits.
    pub fn prob_logits(&self) -> &Var {
        &self.prob_logits
    }

    /// Per-slot op distributions `softmax(op_logits)` as `[sub_policy][slot][op]`.
    pub fn op_probabilities(&self) -> Vec<Vec<Vec<f64>>> {
        let (s, k, n) = (self.cfg.n_sub_policies, self.cfg.n_slots, self.cfg.ops.len());
        let l = var_values(&self.op_logits);
        (0..s)
            .map(|i| {
                (0..k)
                    .map(|j| {
                        let row = &l[(i * k + j) * n..(i * k + j + 1) * n];
                        crate::gumbel::log_softmax(row).iter().map(|x| x.exp()).collect()
                    })
                    .collect()
            })
            .collect()
    }

    /// The [`Estimator::Gumbel`] augmentation with every slot's op weights `(B, n_ops)` and
    /// gates `(B,)` given: `x_j = x_{j-1} + gate_j * (sum_k weights_j[:, k] op_k(x_{j-1}) - x_{j-1})`
    /// at `magnitudes (B, slots)` (already clamped). `rng` draws the ops' own parameters.
    fn gumbel_chain(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        weights: &[Tensor],
        gates: &[Tensor],
        rng: &mut StdRng,
    ) -> Result<Tensor> {
        let k = self.cfg.n_slots;
        if weights.len() != k || gates.len() != k {
            bail!("tutorial policy augment: {} weights and {} gates for {k} slots", weights.len(), gates.len())
        }
        let mut x = images.clone();
        for (j, (w, gate)) in weights.iter().zip(gates).enumerate() {
            let m = magnitudes.narrow(1, j, 1)?.squeeze(1)?.contiguous()?;
            let mixed = slot_mixture(&self.cfg.ops, &x, &m, &w.contiguous()?, rng)?;
            x = blend(&x, &mixed, gate)?;
        }
        Ok(x)
    }

    /// `(B, R)` rows of `var` viewed as `(S, R)`, picked by `index`.
    fn rows(var: &Var, s: usize, index: &Tensor) -> Result<Tensor> {
        let r = var.elem_count() / s;
        var.as_tensor().reshape((s, r))?.index_select(index, 0)
    }
}

/// One slot's mixture `sum_k weights[:, k] * op_k(images, magnitudes)` through dada-compose's
/// `WeightedParallel` with dynamic weights under `"op_weights"` (the datarax guide's
/// `CompositeOperatorModule(WEIGHTED_PARALLEL, weight_key="op_weights")`), whose fused path is
/// dada-ops' `weighted_mixture`. The ops' random parameters are drawn from `rng` here.
pub(crate) fn slot_mixture(
    ops: &OpSet,
    images: &Tensor,
    magnitudes: &Tensor,
    weights: &Tensor,
    rng: &mut StdRng,
) -> Result<Tensor> {
    let b = images.dim(0)?;
    let params = ops.sample_all(b, rng, images.device())?;
    let children: Vec<Arc<dyn Operator>> = ops
        .iter()
        .zip(params)
        .map(|(op, p)| Arc::new(AugOperator::new(op.clone(), ParamSource::Fixed(p))) as Arc<dyn Operator>)
        .collect();
    let mixture = WeightedParallel::new(children, WeightedParallelConfig::dynamic("op_weights")).map_err(candle::Error::wrap)?;
    let batch = Batch::new([("image", images.clone()), ("magnitude", magnitudes.clone()), ("op_weights", weights.clone())])
        .map_err(candle::Error::wrap)?;
    let out = mixture.apply_batch(&batch).map_err(candle::Error::wrap)?;
    out.require("image").cloned().map_err(candle::Error::wrap)
}

impl Policy for TutorialPolicy {
    fn space(&self) -> &'static str {
        "tutorial"
    }

    fn ops(&self) -> &OpSet {
        &self.cfg.ops
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn num_sub_policies(&self) -> usize {
        self.cfg.n_sub_policies
    }

    fn vars(&self) -> Vec<(String, Var)> {
        vec![
            ("op_logits".to_string(), self.op_logits.clone()),
            ("magnitudes".to_string(), self.magnitudes.clone()),
            ("prob_logits".to_string(), self.prob_logits.clone()),
        ]
    }

    fn sample(&self, b_sz: usize, temperature: f64, rng: &mut StdRng) -> Result<PolicySample> {
        if temperature <= 0.0 {
            bail!("tutorial policy sample: temperature must be > 0, got {temperature}")
        }
        if b_sz == 0 {
            bail!("tutorial policy sample: empty batch")
        }
        let (s, k, n) = (self.cfg.n_sub_policies, self.cfg.n_slots, self.cfg.ops.len());
        let dev = &self.device;
        let logits = var_values(&self.op_logits);
        let prob_logits = var_values(&self.prob_logits);
        let mut sub_policies = Vec::with_capacity(b_sz);
        let (mut cat, mut ber) = (Vec::with_capacity(b_sz), Vec::with_capacity(b_sz));
        for _ in 0..b_sz {
            let sp = rng.random_range(0..s);
            sub_policies.push(sp);
            cat.push(
                (0..k)
                    .map(|j| draw_categorical(&logits[(sp * k + j) * n..(sp * k + j + 1) * n], temperature, rng))
                    .collect::<Vec<_>>(),
            );
            ber.push(
                (0..k).map(|j| draw_bernoulli(prob_logits[sp * k + j] as f64, temperature, rng)).collect::<Vec<_>>(),
            );
        }
        let op_indices: Vec<Vec<usize>> = cat.iter().map(|c| c.iter().map(|d| d.b).collect()).collect();
        let gates: Vec<Vec<bool>> = ber.iter().map(|c| c.iter().map(|d| d.b).collect()).collect();
        let index = Tensor::new(sub_policies.iter().map(|&i| i as u32).collect::<Vec<_>>().as_slice(), dev)?;
        let gumbel: Vec<f32> = cat.iter().flatten().flat_map(|d| d.gumbel.iter().map(|&g| g as f32)).collect();
        let gumbel = tensor(gumbel, (b_sz, k, n), dev)?;
        let rows = Self::rows(&self.op_logits, s, &index)?.reshape((b_sz, k, n))?;
        let log_p = candle_nn::ops::log_softmax(&rows, D::Minus1)?;
        let soft_cat = candle_nn::ops::softmax(&((log_p + gumbel)? / temperature)?, D::Minus1)?;
        let logistic = tensor(ber.iter().flatten().map(|d| d.logistic as f32).collect(), (b_sz, k), dev)?;
        let lam = Self::rows(&self.prob_logits, s, &index)?;
        let soft_ber = candle_nn::ops::sigmoid(&((lam + logistic)? / temperature)?)?;
        let onehot: Vec<f32> =
            sub_policies.iter().flat_map(|&sp| (0..s).map(move |i| if i == sp { 1.0 } else { 0.0 })).collect();
        let onehot = tensor(onehot, (b_sz, s), dev)?;
        let relax = RelaxData::build(
            &cat,
            &ber,
            vec![1.0; b_sz * k],
            Target { var: self.op_logits.clone(), rows: onehot.clone() },
            Target { var: self.prob_logits.clone(), rows: onehot.clone() },
            Some(onehot),
            dev,
        )?;
        Ok(PolicySample {
            temperature,
            b_sz,
            sub_policies,
            op_indices,
            gates,
            soft: SoftSample { cat: soft_cat, ber: soft_ber },
            relax,
        })
    }

    fn augment(&self, images: &Tensor, sample: &PolicySample, estimator: Estimator, rng: &mut StdRng) -> Result<Tensor> {
        let b = images.dim(0)?;
        if sample.n_draws() != b {
            bail!("tutorial policy augment: sample has {} draws for a batch of {b}", sample.n_draws())
        }
        let (s, k) = (self.cfg.n_sub_policies, self.cfg.n_slots);
        let dev = &self.device;
        let index = Tensor::new(sample.sub_policies.iter().map(|&i| i as u32).collect::<Vec<_>>().as_slice(), dev)?;
        let mags = Self::rows(&self.magnitudes, s, &index)?.clamp(0.0, 1.0)?; // (B, slots)
        let mut x = images.clone();
        match estimator {
            Estimator::Relax => {
                for j in 0..k {
                    let choice: Vec<Option<usize>> =
                        (0..b).map(|i| sample.gates[i][j].then_some(sample.op_indices[i][j])).collect();
                    let m = mags.narrow(1, j, 1)?.squeeze(1)?;
                    x = apply_grouped(&self.cfg.ops, &x, &choice, &m, rng)?;
                }
            }
            Estimator::Gumbel => {
                let prob = match self.cfg.gate {
                    Gate::Expected => candle_nn::ops::sigmoid(&Self::rows(&self.prob_logits, s, &index)?)?,
                    Gate::Relaxed => sample.soft.ber.clone(),
                    Gate::StraightThrough => straight_through(&sample.relax.ber.b, &sample.soft.ber)?,
                };
                let mut weights = Vec::with_capacity(k);
                let mut gates = Vec::with_capacity(k);
                for j in 0..k {
                    let soft = sample.soft.cat.narrow(1, j, 1)?.squeeze(1)?; // (B, n_ops)
                    weights.push(if self.cfg.hard { straight_through(&one_hot_argmax(&soft)?, &soft)? } else { soft });
                    gates.push(prob.narrow(1, j, 1)?.squeeze(1)?);
                }
                x = self.gumbel_chain(images, &mags, &weights, &gates, rng)?;
            }
        }
        Ok(x)
    }

    fn export(&self) -> PolicyFile {
        let (k, names) = (self.cfg.n_slots, self.cfg.ops.names());
        let probs = self.op_probabilities();
        let mags = var_values(&self.magnitudes);
        let pl = var_values(&self.prob_logits);
        let weight = round6(1.0 / self.cfg.n_sub_policies as f64);
        let sub_policies = probs
            .iter()
            .enumerate()
            .map(|(i, slots)| SubPolicy {
                weight,
                ops: slots
                    .iter()
                    .enumerate()
                    .map(|(j, p)| {
                        let best = (0..p.len()).fold(0, |b, o| if p[o] > p[b] { o } else { b });
                        OpEntry {
                            op: names[best].to_string(),
                            probability: round6(crate::gumbel::sigmoid(pl[i * k + j] as f64)),
                            magnitude: round6((mags[i * k + j] as f64).clamp(0.0, 1.0)),
                        }
                    })
                    .collect(),
            })
            .collect();
        PolicyFile::new("tutorial", names.iter().map(|n| n.to_string()).collect(), sub_policies)
    }

    fn control_variate_dim(&self) -> usize {
        let (s, k, n) = (self.cfg.n_sub_policies, self.cfg.n_slots, self.cfg.ops.len());
        s + k * n + k
    }

    fn op_preferences(&self) -> Vec<OpPreference> {
        let (k, n) = (self.cfg.n_slots, self.cfg.ops.len());
        let probs = self.op_probabilities();
        let mags = var_values(&self.magnitudes);
        let pl = var_values(&self.prob_logits);
        let slots = (self.cfg.n_sub_policies * k) as f64;
        let (mut weight, mut used, mut mag) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
        for (i, sp) in probs.iter().enumerate() {
            for (j, p) in sp.iter().enumerate() {
                let gate = crate::gumbel::sigmoid(pl[i * k + j] as f64);
                let m = (mags[i * k + j] as f64).clamp(0.0, 1.0);
                for o in 0..n {
                    weight[o] += p[o] / slots;
                    used[o] += p[o] * gate / slots;
                    mag[o] += p[o] * m / slots;
                }
            }
        }
        crate::analysis::rank(&self.cfg.ops, weight, used, mag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Var;
    use dada_ops::{AugOp, Interpolation};
    use rand::SeedableRng;

    use crate::testing::{assert_close, central_diff, f64s, images_and_weight, max_abs, values};

    /// Ops smooth in image and magnitude: a bilinear translation (one kink per whole-pixel
    /// shift; shear and rotate move every pixel across cell borders at different magnitudes,
    /// too many kinks for finite differences through a 7-op mixture) and linear colour ops.
    fn smooth_ops() -> OpSet {
        let mut ops: Vec<Arc<dyn AugOp>> = vec![Arc::new(dada_ops::TranslateY::new(Interpolation::Bilinear))];
        ops.extend(["brightness", "contrast", "color", "invert", "identity"].map(|n| OpSet::by_name(n).unwrap()));
        OpSet::new(ops)
    }

    /// Moves every parameter off its initial value (magnitudes off the identity 0.5).
    fn perturb(policy: &TutorialPolicy, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut set = |var: &Var, f: &mut dyn FnMut(&mut StdRng) -> f32| -> Result<()> {
            let v: Vec<f32> = (0..var.elem_count()).map(|_| f(&mut rng)).collect();
            var.set(&Tensor::from_vec(v, var.shape(), var.device())?)
        };
        set(&policy.op_logits, &mut |r| 2.0 * r.random::<f32>() - 1.0)?;
        set(&policy.magnitudes, &mut |r| 0.15 + 0.25 * r.random::<f32>() + if r.random() { 0.45 } else { 0.0 })?;
        set(&policy.prob_logits, &mut |r| 2.0 * r.random::<f32>() - 1.0)
    }

    /// `<a, b>` of two flat vectors.
    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    /// One [`Estimator::Gumbel`] draw of `b` images (sample from `rng`, augment with the ops'
    /// parameters drawn from `rng`, `L = <y, w>`): the autograd gradients of all three groups
    /// against the chain rule written out, each factor computed apart from the
    /// straight-through construction: `dL/dweights_j` and `dL/dgate_j` by autograd of the
    /// chain with plain Vars as inputs, the derivatives of the relaxed samples (and of the
    /// expected gate) by finite differences with the noise fixed (re-drawn from the same seed),
    /// and, with `fd_magnitudes`, `dL/dmagnitudes` by finite differences of the augmentation.
    /// Returns `|grad|_max` of op logits, magnitudes, prob logits.
    fn check_draw(policy: &TutorialPolicy, rng: &mut StdRng, b: usize, data: u64, fd_magnitudes: bool) -> Result<[f32; 3]> {
        let dev = Device::Cpu;
        let (s, k, n) = (policy.cfg.n_sub_policies, policy.cfg.n_slots, policy.cfg.ops.len());
        let tau = 0.5;
        let (images, w) = images_and_weight(b, data)?;
        let sample_rng = rng.clone();
        let sample = policy.sample(b, tau, rng)?;
        let aug_rng = rng.clone();
        let y = policy.augment(&images, &sample, Estimator::Gumbel, rng)?;
        let store = (&y * &w)?.sum_all()?.backward()?;
        let grad = |v: &Var| store.get(v.as_tensor()).map(values).unwrap_or_else(|| vec![0.0; v.elem_count()]);
        let (g_logits, g_mags, g_probs) = (grad(&policy.op_logits), grad(&policy.magnitudes), grad(&policy.prob_logits));

        // The relaxed samples are the RELAX draw's; the hard choices their argmax / threshold.
        let (soft_cat, soft_ber) = (values(sample.relaxed_categorical()), values(sample.relaxed_bernoulli()));
        assert_close("soft_cat", &soft_cat, &f64s(&values(&sample.relax.cat.x)), 1e-5, 1e-6);
        assert_close("soft_ber", &soft_ber, &f64s(&values(&sample.relax.ber.x)), 1e-5, 1e-6);
        for i in 0..b {
            for j in 0..k {
                let row = &soft_cat[(i * k + j) * n..(i * k + j + 1) * n];
                assert!(row.iter().all(|&v| v <= row[sample.op_indices[i][j]]), "op choice is the argmax");
                assert_eq!(soft_ber[i * k + j] > 0.5, sample.gates[i][j], "gate is the relaxed sample > 0.5");
            }
        }

        // The values the augmentation fed the chain, as plain Vars.
        let index = Tensor::new(sample.sub_policies.iter().map(|&i| i as u32).collect::<Vec<_>>().as_slice(), &dev)?;
        let expected_gate = || -> Result<Vec<f32>> {
            Ok(values(&candle_nn::ops::sigmoid(&TutorialPolicy::rows(&policy.prob_logits, s, &index)?)?))
        };
        let gate_values = match policy.cfg.gate {
            Gate::Expected => expected_gate()?,
            Gate::Relaxed => soft_ber.clone(),
            Gate::StraightThrough => sample.gates.iter().flatten().map(|&g| if g { 1.0 } else { 0.0 }).collect(),
        };
        let weight_vars = (0..k)
            .map(|j| {
                let v: Vec<f32> = (0..b)
                    .flat_map(|i| {
                        let row = &soft_cat[(i * k + j) * n..(i * k + j + 1) * n];
                        let pick = sample.op_indices[i][j];
                        (0..n).map(move |o| if !policy.cfg.hard { row[o] } else if o == pick { 1.0 } else { 0.0 })
                    })
                    .collect();
                Var::from_vec(v, (b, n), &dev)
            })
            .collect::<Result<Vec<_>>>()?;
        let gate_vars = (0..k)
            .map(|j| Var::from_vec((0..b).map(|i| gate_values[i * k + j]).collect(), b, &dev))
            .collect::<Result<Vec<_>>>()?;
        let mags = TutorialPolicy::rows(&policy.magnitudes, s, &index)?.clamp(0.0, 1.0)?;
        let as_tensors = |vars: &[Var]| vars.iter().map(|v| v.as_tensor().clone()).collect::<Vec<_>>();
        let out = policy.gumbel_chain(&images, &mags, &as_tensors(&weight_vars), &as_tensors(&gate_vars), &mut aug_rng.clone())?;
        assert_close("chain replay", &values(&out), &f64s(&values(&y)), 0.0, 1e-6);
        let chain_store = (out * &w)?.sum_all()?.backward()?;
        let chain_grad = |v: &Var| chain_store.get(v.as_tensor()).map(values).unwrap_or_else(|| vec![0.0; v.elem_count()]);
        // dL/dweights as (b, k, n) and dL/dgates as (b, k), the layout of the relaxed samples
        let dl_dweights: Vec<f32> = {
            let per_slot: Vec<Vec<f32>> = weight_vars.iter().map(&chain_grad).collect();
            (0..b).flat_map(|i| (0..k).flat_map(|j| per_slot[j][i * n..(i + 1) * n].to_vec()).collect::<Vec<_>>()).collect()
        };
        let dl_dgates: Vec<f32> = {
            let per_slot: Vec<Vec<f32>> = gate_vars.iter().map(&chain_grad).collect();
            (0..b).flat_map(|i| (0..k).map(|j| per_slot[j][i]).collect::<Vec<_>>()).collect()
        };

        // The relaxed samples re-drawn with the same noise, differentiated by finite differences.
        let redraw = || policy.sample(b, tau, &mut sample_rng.clone());
        let want_logits = (0..s * k * n)
            .map(|q| central_diff(&policy.op_logits, q, 1e-2, || Ok(dot(&dl_dweights, &values(redraw()?.relaxed_categorical())))))
            .collect::<Result<Vec<_>>>()?;
        let gate_of = || -> Result<Vec<f32>> {
            match policy.cfg.gate {
                Gate::Expected => expected_gate(),
                Gate::Relaxed | Gate::StraightThrough => Ok(values(redraw()?.relaxed_bernoulli())),
            }
        };
        let want_probs = (0..s * k)
            .map(|q| central_diff(&policy.prob_logits, q, 1e-2, || Ok(dot(&dl_dgates, &gate_of()?))))
            .collect::<Result<Vec<_>>>()?;
        assert_close("op_logits", &g_logits, &want_logits, 2e-2, 1e-5);
        assert_close("prob_logits", &g_probs, &want_probs, 2e-2, 1e-5);
        if fd_magnitudes {
            let loss = || -> Result<f64> {
                let y = policy.augment(&images, &sample, Estimator::Gumbel, &mut aug_rng.clone())?;
(y * &w)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()
            };
            let want_mags = (0..s * k).map(|q| central_diff(&policy.magnitudes, q, 1e-3, loss)).collect::<Result<Vec<_>>>()?;
            assert_close("magnitudes", &g_mags, &want_mags, 2e-2, 1e-4);
        }
        Ok([max_abs(&g_logits), max_abs(&g_mags), max_abs(&g_probs)])
    }

    #[test]
    fn gumbel_gradients_match_the_chain_rule_in_every_mode() -> Result<()> {
        for gate in [Gate::Expected, Gate::Relaxed, Gate::StraightThrough] {
            for hard in [false, true] {
                let cfg = TutorialConfig { ops: smooth_ops(), n_sub_policies: 3, gate, hard, ..TutorialConfig::default() };
                let policy = TutorialPolicy::new(cfg, &Device::Cpu).unwrap();
                perturb(&policy, 3)?;
                let mut rng = StdRng::seed_from_u64(4);
                for i in 0..3 {
                    let grads = check_draw(&policy, &mut rng, 4, 10 + i, true)?;
                    println!("tutorial {gate:?} hard={hard}: |grad| op_logits, magnitudes, prob_logits = {grads:?}");
                    // 4 images x 2 slots: some gate is on, and every op changes the images
                    assert!(grads.iter().all(|&g| g > 0.0), "{gate:?} hard={hard}: {grads:?}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn gumbel_gradients_at_init_reach_every_group() -> Result<()> {
        // The default space and initialisation, as in the paper-space report.
        let policy = TutorialPolicy::new(TutorialConfig::default(), &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        for i in 0..3 {
            let grads = check_draw(&policy, &mut rng, 4, i, false)?;
            println!("tutorial default at init: |grad| op_logits, magnitudes, prob_logits = {grads:?}");
            assert!(grads.iter().all(|&g| g > 0.0), "{grads:?}");
        }
        Ok(())
    }

    #[test]
    fn relaxed_gumbel_loss_matches_finite_differences() -> Result<()> {
        // Soft mixture and relaxed gate: with the noise fixed the loss is smooth in every
        // parameter; its finite differences (re-drawing the sample from the same seed) match
        // the autograd gradients end to end.
        let cfg = TutorialConfig { ops: smooth_ops(), n_sub_policies: 2, gate: Gate::Relaxed, ..TutorialConfig::default() };
        let policy = TutorialPolicy::new(cfg, &Device::Cpu).unwrap();
        perturb(&policy, 5)?;
        let (images, w) = images_and_weight(3, 6)?;
        let loss = || -> Result<Tensor> {
            let mut rng = StdRng::seed_from_u64(7);
            let sample = policy.sample(3, 0.5, &mut rng)?;
            (policy.augment(&images, &sample, Estimator::Gumbel, &mut rng)? * &w)?.to_dtype(DType::F64)?.sum_all()
        };
        let store = loss()?.backward()?;
        for (name, var) in policy.vars() {
            let got = values(store.get(var.as_tensor()).expect("gradient reaches every group"));
            // logits: smooth, larger steps beat rounding; magnitudes: small steps, fewer kinks
            let h = if name == "magnitudes" { 1e-3 } else { 1e-2 };
            let want = (0..var.elem_count())
                .map(|q| central_diff(&var, q, h, || loss()?.to_scalar::<f64>()))
                .collect::<Result<Vec<_>>>()?;
            println!("tutorial relaxed: {name} |grad|_max = {}", max_abs(&got));
            assert!(max_abs(&got) > 0.0, "{name}");
            assert_close(name.as_str(), &got, &want, 2e-2, 1e-4);
        }
        Ok(())
    }

    #[test]
    fn compose_mixture_equals_dada_ops_mixture() -> Result<()> {
        let dev = Device::Cpu;
        let ops = OpSet::tutorial();
        let b = 4;
        let x = Tensor::rand(0.05f32, 0.95, (b, 3, 8, 8), &dev)?;
        let m = Tensor::rand(0f32, 1f32, b, &dev)?;
        let w = candle_nn::ops::softmax(&Tensor::randn(0f32, 1f32, (b, ops.len()), &dev)?, D::Minus1)?;
        let via_compose = slot_mixture(&ops, &x, &m, &w, &mut StdRng::seed_from_u64(5))?;
        let params = ops.sample_all(b, &mut StdRng::seed_from_u64(5), &dev)?;
        let direct = dada_ops::weighted_mixture(&ops, &x, &m, &w, &params)?;
        let d = (via_compose - direct)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-6, "{d}");
        Ok(())
    }
}
