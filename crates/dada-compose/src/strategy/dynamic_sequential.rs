//! `DynamicSequential`: a pipeline whose operators can be added, removed and reordered at run time.
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::strategy::sequential::apply_in_order;
use crate::{Batch, ComposeError, Operator, Result};

/// Like [`Sequential`](crate::Sequential), but its list of operators can change between calls
/// through a shared reference (`add`, `insert`, `remove`, `reorder`). A call sees the list as it
/// was when the call started.
#[derive(Debug)]
pub struct DynamicSequential {
    name: String,
    ops: RwLock<Vec<Arc<dyn Operator>>>,
}

impl DynamicSequential {
    /// A pipeline starting with `ops`.
    pub fn new(ops: impl IntoIterator<Item = Arc<dyn Operator>>) -> Self {
        Self {
            name: "dynamic_sequential".into(),
            ops: RwLock::new(ops.into_iter().collect()),
        }
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Appends `op` at the end.
    pub fn add(&self, op: Arc<dyn Operator>) {
        self.write().push(op);
    }

    /// Inserts `op` at `index` (`0..=len`).
    pub fn insert(&self, index: usize, op: Arc<dyn Operator>) -> Result<()> {
        let mut ops = self.write();
        if index > ops.len() {
            return Err(self.out_of_range(index, ops.len()));
        }
        ops.insert(index, op);
        Ok(())
    }

    /// Removes and returns the operator at `index`.
    pub fn remove(&self, index: usize) -> Result<Arc<dyn Operator>> {
        let mut ops = self.write();
        if index >= ops.len() {
            return Err(self.out_of_range(index, ops.len()));
        }
        Ok(ops.remove(index))
    }

    /// Reorders the operators: the new `i`-th is the old `order[i]`-th.
    pub fn reorder(&self, order: &[usize]) -> Result<()> {
        let mut ops = self.write();
        let mut seen = vec![false; ops.len()];
        let is_permutation = order.len() == ops.len()
            && order
                .iter()
                .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true));
        if !is_permutation {
            return Err(ComposeError::NotAPermutation {
                op: self.name.clone(),
                order: order.to_vec(),
                len: ops.len(),
            });
        }
        *ops = order.iter().map(|&i| ops[i].clone()).collect();
        Ok(())
    }

    /// The number of operators.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are no operators (the pipeline is the identity).
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The operators' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|op| op.name().to_string()).collect()
    }

    fn out_of_range(&self, index: usize, len: usize) -> ComposeError {
        ComposeError::IndexOutOfRange {
            op: self.name.clone(),
            index,
            len,
        }
    }

    // A poisoned lock means a writer panicked; every write leaves the list valid, so go on.
    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<dyn Operator>>> {
        self.ops.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Arc<dyn Operator>>> {
        self.ops.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Operator for DynamicSequential {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let ops = self.read().clone();
        apply_in_order(&ops, batch)
    }
}
