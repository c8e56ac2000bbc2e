//! `Branching`: a router picks, per element, which child operator processes it.
use std::fmt;
use std::sync::Arc;

use candle::{DType, Tensor};

use crate::batch::TensorMap;
use crate::{Batch, ComposeError, Operator, Result};

type RouterFn = dyn Fn(&Batch) -> Result<Tensor> + Send + Sync;

/// Sends each element to one child: the router returns a `(B,)` integer tensor of branch
/// indices. Each child runs once on the sub-batch routed to it; the outputs are put back in the
/// input order (gradients flow through the gathers). Branches must return the same keys and
/// per-element shapes.
pub struct Branching {
    name: String,
    ops: Vec<Arc<dyn Operator>>,
    router: Box<RouterFn>,
}

impl Branching {
    /// Branches `ops`, chosen by `router`; errors if `ops` is empty.
    pub fn new(
        ops: impl IntoIterator<Item = Arc<dyn Operator>>,
        router: impl Fn(&Batch) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Result<Self> {
        let ops: Vec<_> = ops.into_iter().collect();
        if ops.is_empty() {
            return Err(ComposeError::NoOperators {
                op: "branching".into(),
            });
        }
        Ok(Self {
            name: "branching".into(),
            ops,
            router: Box::new(router),
        })
    }

    /// Renames the operator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The branches.
    pub fn operators(&self) -> &[Arc<dyn Operator>] {
        &self.ops
    }

    /// The branch index of every element, checked against the number of branches.
    pub fn route(&self, batch: &Batch) -> Result<Vec<usize>> {
        let b_sz = batch.batch_size();
        let routes = (self.router)(batch)?;
        if routes.dims() != [b_sz] {
            return Err(ComposeError::PerElementShape {
                op: self.name.clone(),
                what: "router output",
                b_sz,
                dims: routes.dims().to_vec(),
            });
        }
        let routes = routes.to_dtype(DType::I64)?.to_vec1::<i64>()?;
        let n_branches = self.ops.len();
        routes
            .into_iter()
            .enumerate()
            .map(|(element, index)| {
                usize::try_from(index)
                    .ok()
                    .filter(|&i| i < n_branches)
                    .ok_or_else(|| ComposeError::RouterIndexOutOfRange {
                        op: self.name.clone(),
                        element,
                        index,
                        n_branches,
                    })
            })
            .collect()
    }
}

impl Operator for Branching {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let routes = self.route(batch)?;
        let mut groups = vec![Vec::<u32>::new(); self.ops.len()];
        for (element, &branch) in routes.iter().enumerate() {
            groups[branch].push(element as u32);
        }
        let active: Vec<usize> = (0..self.ops.len())
            .filter(|&b| !groups[b].is_empty())
            .collect();
        if let [only] = active.as_slice() {
            return self.ops[*only].apply_batch(batch);
        }
        let device = batch.device();
        let mut outputs = Vec::with_capacity(active.len());
        let mut order = Vec::with_capacity(batch.batch_size());
        for &branch in &active {
            let indices = Tensor::new(groups[branch].as_slice(), device)?;
            outputs.push((
                branch,
                self.ops[branch].apply_batch(&batch.index_select(&indices)?)?,
            ));
            order.extend_from_slice(&groups[branch]);
        }
        // Output row j holds element order[j]; gather it back with the inverse permutation.
        let mut inverse = vec![0u32; order.len()];
        for (row, &element) in order.iter().enumerate() {
            inverse[element as usize] = row as u32;
        }
        let inverse = Tensor::new(inverse.as_slice(), device)?;
        let data = self.reassemble(&outputs, Batch::get_data, &inverse)?;
        let states = self.reassemble(&outputs, Batch::get_states, &inverse)?;
        Batch::from_parts(data, states)
    }
}

impl Branching {
    fn reassemble(
        &self,
        outputs: &[(usize, Batch)],
        part: fn(&Batch) -> &TensorMap,
        inverse: &Tensor,
    ) -> Result<TensorMap> {
        let (first_branch, first) = &outputs[0];
        let keys: Vec<String> = part(first).keys().cloned().collect();
        let mut out = TensorMap::new();
        for (branch, output) in outputs {
            let got: Vec<String> = part(output).keys().cloned().collect();
            if got != keys {
                return Err(ComposeError::KeyMismatch {
                    op: self.name.clone(),
                    child: *branch,
                    expected: keys,
                    got,
                });
            }
        }
        for key in &keys {
            let expected = &part(first)[key].dims()[1..];
            let mut pieces = Vec::with_capacity(outputs.len());
            for (branch, output) in outputs {
                let t = &part(output)[key];
                if &t.dims()[1..] != expected {
                    return Err(ComposeError::ShapeMismatch {
                        op: format!("{} (branch {first_branch} vs {branch})", self.name),
                        key: key.clone(),
                        child: *branch,
                        expected: part(first)[key].dims().to_vec(),
                        got: t.dims().to_vec(),
                    });
                }
                pieces.push(t);
            }
            out.insert(
                key.clone(),
                Tensor::cat(&pieces, 0)?.index_select(inverse, 0)?,
            );
        }
        Ok(out)
    }
}

impl fmt::Debug for Branching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Branching")
            .field("name", &self.name)
            .field("ops", &self.ops)
            .finish()
    }
}
