//! `WeightedParallel`: a weighted sum of the children's outputs, with static, learnable or
//! dynamic (per-call, per-element) weights.
use std::sync::Arc;

use candle::{DType, Device, Tensor, Var};

use crate::merge::{merge, Reduce};
use crate::{Batch, ComposeError, Operator, Result};

/// The settings of a [`WeightedParallel`]: exactly one of `weights`, `learnable_weights`,
/// `weight_key` must be set (checked by [`WeightedParallel::new`]).
#[derive(Debug, Clone)]
pub struct WeightedParallelConfig {
    /// Static weights, one per child, the same for every element.
    pub weights: Option<Vec<f64>>,
    /// Learnable weights: a `(n_children,)` `Var` the caller optimises. It is used as is (raw,
    /// not normalised); gradients reach it through `backward`.
    pub learnable_weights: Option<Var>,
    /// Dynamic weights, read at each call from the batch under this key as `(B, n_children)`.
    /// The key is stripped before the children run, and is absent from the output.
    pub weight_key: Option<String>,
    /// Whether to use the fused dada-ops mixture kernel when every child is an augmentation of
    /// the same images (default `true`; `false` forces the generic weighted sum).
    pub fused: bool,
}

impl Default for WeightedParallelConfig {
    fn default() -> Self {
        Self {
            weights: None,
            learnable_weights: None,
            weight_key: None,
            fused: true,
        }
    }
}

impl WeightedParallelConfig {
    /// Static weights.
    pub fn static_weights(weights: impl Into<Vec<f64>>) -> Self {
        Self {
            weights: Some(weights.into()),
            ..Self::default()
        }
    }

    /// Learnable weights held in `var` (shape `(n_children,)`).
    pub fn learnable(var: Var) -> Self {
        Self {
            learnable_weights: Some(var),
            ..Self::default()
        }
    }

    /// Learnable weights initialised to `1 / n_children` each.
    pub fn learnable_uniform(n_children: usize, dtype: DType, device: &Device) -> Result<Self> {
        let init = Tensor::full(1.0 / n_children as f64, n_children, device)?.to_dtype(dtype)?;
        Ok(Self::learnable(Var::from_tensor(&init)?))
    }

    /// Dynamic weights read from the batch under `key`, e.g. `"op_weights"`.
    pub fn dynamic(key: impl Into<String>) -> Self {
        Self {
            weight_key: Some(key.into()),
            ..Self::default()
        }
    }

    /// The same config with the fused path on or off.
    pub fn with_fused(mut self, fused: bool) -> Self {
        self.fused = fused;
        self
    }
}

/// Where a [`WeightedParallel`] takes its weights from.
#[derive(Debug, Clone)]
pub enum WeightMode {
    /// Fixed weights, one per child.
    Static(Vec<f64>),
    /// A `(n_children,)` variable.
    Learnable(Var),
    /// `(B, n_children)` weights under this key of each batch.
    Dynamic(String),
}

/// `sum_i w_i * child_i(x)`, key by key; per element for dynamic weights.
///
/// This is the DADA mixture: with 15 dada-ops children and Gumbel-Softmax weights under
/// `"op_weights"`, each image becomes the weighted sum of its 15 augmentations. Keys every child
/// passes through unchanged (`"magnitude"`) are carried over, not summed. Gradients flow into
/// every child and, in the learnable and dynamic modes, into the weights.
#[derive(Debug)]
pub struct WeightedParallel {
    name: String,
    ops: Vec<Arc<dyn Operator>>,
    mode: WeightMode,
    fused: bool,
}

impl WeightedParallel {
    /// `ops` mixed with the weights of `config`.
    ///
    /// Errors: [`ComposeError::NoOperators`], [`ComposeError::ConflictingWeightModes`],
    /// [`ComposeError::NoWeightMode`], [`ComposeError::WrongNumberOfWeights`].
    pub fn new(
        ops: impl IntoIterator<Item = Arc<dyn Operator>>,
        config: WeightedParallelConfig,
    ) -> Result<Self> {
        let name = "weighted_parallel".to_string();
        let ops: Vec<Arc<dyn Operator>> = ops.into_iter().collect();
        if ops.is_empty() {
            return Err(ComposeError::NoOperators { op: name });
        }
        let WeightedParallelConfig {
            weights,
            learnable_weights,
            weight_key,
            fused,
        } = config;
        let mut modes = Vec::new();
        if weights.is_some() {
            modes.push("weights");
        }
        if learnable_weights.is_some() {
            modes.push("learnable_weights");
        }
        if weight_key.is_some() {
            modes.push("weight_key");
        }
        if modes.len() > 1 {
            return Err(ComposeError::ConflictingWeightModes { op: name, modes });
        }
        let wrong_count = |got| ComposeError::WrongNumberOfWeights {
            op: "weighted_parallel".into(),
            expected: ops.len(),
            got,
        };
        let mode = match (weights, learnable_weights, weight_key) {
            (Some(weights), _, _) => {
                if weights.len() != ops.len() {
                    return Err(wrong_count(weights.len()));
                }
                WeightMode::Static(weights)
            }
            (_, Some(var), _) => {
                if var.dims() != [ops.len()] {
                    return Err(wrong_count(var.elem_count()));
                }
                WeightMode::Learnable(var)
            }
            (_, _, Some(key)) => WeightMode::Dynamic(key),
            (None, None, None) => return Err(ComposeError::NoWeightMode { op: name }),
        };
        Ok(Self {
            name,
            ops,
            mode,
            fused,
        })
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The children.
    pub fn operators(&self) -> &[Arc<dyn Operator>] {
        &self.ops
    }

    /// The weight mode.
    pub fn mode(&self) -> &WeightMode {
        &self.mode
    }

    /// The learnable weights, to hand to an optimiser (`None` in the other modes).
    pub fn weights_var(&self) -> Option<&Var> {
        match &self.mode {
            WeightMode::Learnable(var) => Some(var),
            _ => None,
        }
    }

    /// Whether calls run as one fused `dada_ops::weighted_mixture`: the config allows it and
    /// every child is an [`AugOperator`](crate::AugOperator) on the same image and magnitude keys.
    pub fn uses_fused_mixture(&self) -> bool {
        self.fused && crate::fused::aug_children(&self.ops).is_some()
    }

    /// The `(B, n_children)` weights for `batch`, and the batch the children should see.
    pub fn resolve_weights(&self, batch: &Batch) -> Result<(Tensor, Batch)> {
        let b_sz = batch.batch_size();
        let n_ops = self.ops.len();
        let device = batch.device();
        let (weights, inner) = match &self.mode {
            WeightMode::Static(weights) => {
                (Tensor::new(weights.as_slice(), device)?, batch.clone())
            }
            WeightMode::Learnable(var) => (var.as_tensor().clone(), batch.clone()),
            WeightMode::Dynamic(key) => {
                let weights = batch
                    .get(key)
                    .ok_or_else(|| crate::batch::missing(&self.name, key, batch.get_data()))?;
                if weights.dims() != [b_sz, n_ops] {
                    return Err(ComposeError::WeightShape {
                        op: self.name.clone(),
                        key: key.clone(),
                        b_sz,
                        n_ops,
                        dims: weights.dims().to_vec(),
                    });
                }
                return Ok((weights.clone(), batch.without(key)));
            }
        };
        Ok((weights.unsqueeze(0)?.broadcast_as((b_sz, n_ops))?, inner))
    }
}

impl Operator for WeightedParallel {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let (weights, inner) = self.resolve_weights(batch)?;
        if self.fused {
            if let Some(out) = crate::fused::try_mixture(&self.ops, &inner, &weights)? {
                return Ok(out);
            }
        }
        let outputs = self
            .ops
            .iter()
            .map(|op| op.apply_batch(&inner))
            .collect::<Result<Vec<_>>>()?;
        merge(&self.name, &inner, &outputs, Reduce::Weighted(&weights))
    }
}
