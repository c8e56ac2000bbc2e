//! `Sequential`: children applied one after the other.
use std::sync::Arc;

use crate::{Batch, Operator, Result};

/// Applies its children in order, each to the previous one's output (empty: the identity).
#[derive(Debug)]
pub struct Sequential {
    name: String,
    ops: Vec<Arc<dyn Operator>>,
}

impl Sequential {
    /// A pipeline of `ops`, first to last.
    pub fn new(ops: impl IntoIterator<Item = Arc<dyn Operator>>) -> Self {
        Self {
            name: "sequential".into(),
            ops: ops.into_iter().collect(),
        }
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The children, in order.
    pub fn operators(&self) -> &[Arc<dyn Operator>] {
        &self.ops
    }
}

impl Operator for Sequential {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        apply_in_order(&self.ops, batch)
    }
}

pub(crate) fn apply_in_order(ops: &[Arc<dyn Operator>], batch: &Batch) -> Result<Batch> {
    let mut current = batch.clone();
    for op in ops {
        current = op.apply_batch(&current)?;
    }
    Ok(current)
}
