//! `Parallel`: every child gets the same input; the outputs are merged by a `MergeMode`.
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::merge::{merge, Reduce};
use crate::{Batch, ComposeError, MergeMode, Operator, Result};

/// Applies every child to the same input and merges their outputs key by key (stack, concat,
/// sum, mean, max, min, or keep them as named outputs); see [`MergeMode`].
#[derive(Debug)]
pub struct Parallel {
    name: String,
    ops: Vec<Arc<dyn Operator>>,
    names: Vec<String>,
    mode: MergeMode,
}

impl Parallel {
    /// `ops` in parallel, merged by `mode`.
    ///
    /// Errors: [`ComposeError::NoOperators`]; [`ComposeError::DuplicateName`] for
    /// `MergeMode::Named` with two children of the same name.
    pub fn new(ops: impl IntoIterator<Item = Arc<dyn Operator>>, mode: MergeMode) -> Result<Self> {
        Self::named("parallel", ops, mode)
    }

    pub(crate) fn named(
        name: &str,
        ops: impl IntoIterator<Item = Arc<dyn Operator>>,
        mode: MergeMode,
    ) -> Result<Self> {
        let ops: Vec<Arc<dyn Operator>> = ops.into_iter().collect();
        if ops.is_empty() {
            return Err(ComposeError::NoOperators {
                op: name.to_string(),
            });
        }
        let names: Vec<String> = ops.iter().map(|op| op.name().to_string()).collect();
        if mode == MergeMode::Named {
            let mut seen = BTreeSet::new();
            if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(ComposeError::DuplicateName {
                    op: name.to_string(),
                    name: dup.clone(),
                });
            }
        }
        Ok(Self {
            name: name.to_string(),
            ops,
            names,
            mode,
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

    /// The merge mode.
    pub fn mode(&self) -> &MergeMode {
        &self.mode
    }
}

impl Operator for Parallel {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let outputs = self
            .ops
            .iter()
            .map(|op| op.apply_batch(batch))
            .collect::<Result<Vec<_>>>()?;
        merge(
            &self.name,
            batch,
            &outputs,
            Reduce::Mode(&self.mode, &self.names),
        )
    }
}
