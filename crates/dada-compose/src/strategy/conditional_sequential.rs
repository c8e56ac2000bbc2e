//! `ConditionalSequential`: a pipeline whose steps each apply only where their condition holds.
use std::sync::Arc;

use crate::batch::TensorMap;
use crate::condition::select;
use crate::{Batch, ComposeError, Condition, Mask, Operator, Result};

/// Applies its children in order; each step has a [`Condition`] evaluated on the batch it would
/// receive. Where it is false the step is skipped (per element for per-element conditions: the
/// element keeps its input, and gradients go to the selected branch only).
///
/// With a per-element condition a step must return the keys it was given, with the same shapes.
#[derive(Debug)]
pub struct ConditionalSequential {
    name: String,
    steps: Vec<(Arc<dyn Operator>, Condition)>,
}

impl ConditionalSequential {
    /// A pipeline of `(operator, condition)` steps, first to last.
    pub fn new(steps: impl IntoIterator<Item = (Arc<dyn Operator>, Condition)>) -> Self {
        Self {
            name: "conditional_sequential".into(),
            steps: steps.into_iter().collect(),
        }
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[(Arc<dyn Operator>, Condition)] {
        &self.steps
    }
}

impl Operator for ConditionalSequential {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let mut current = batch.clone();
        for (op, condition) in &self.steps {
            current = match condition.eval(&self.name, &current)? {
                Mask::All(false) => current,
                Mask::All(true) => op.apply_batch(&current)?,
                Mask::PerElement(mask) => {
                    let out = op.apply_batch(&current)?;
                    blend(&self.name, &mask, &out, &current)?
                }
            };
        }
        Ok(current)
    }
}

/// Per element: `mask ? on_true : on_false`, key by key (data and states).
pub(crate) fn blend(
    op: &str,
    mask: &candle::Tensor,
    on_true: &Batch,
    on_false: &Batch,
) -> Result<Batch> {
    let part = |t: &TensorMap, f: &TensorMap| -> Result<TensorMap> {
        let t_keys: Vec<String> = t.keys().cloned().collect();
        let f_keys: Vec<String> = f.keys().cloned().collect();
        if t_keys != f_keys {
            return Err(ComposeError::KeyMismatch {
                op: op.to_string(),
                child: 1,
                expected: f_keys,
                got: t_keys,
            });
        }
        let mut out = TensorMap::new();
        for (key, on_false) in f {
            let on_true = &t[key];
            if on_true.id() == on_false.id() {
                out.insert(key.clone(), on_false.clone());
                continue;
            }
            if on_true.dims() != on_false.dims() {
                return Err(ComposeError::ShapeMismatch {
                    op: op.to_string(),
                    key: key.clone(),
                    child: 1,
                    expected: on_false.dims().to_vec(),
                    got: on_true.dims().to_vec(),
                });
            }
            out.insert(key.clone(), select(mask, on_true, on_false)?);
        }
        Ok(out)
    };
    let data = part(on_true.get_data(), on_false.get_data())?;
    let states = part(on_true.get_states(), on_false.get_states())?;
    Batch::from_parts(data, states)
}
