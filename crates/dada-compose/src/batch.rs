//! `Element` (one sample of named tensors) and `Batch` (the same, stacked on a leading axis).
use std::collections::BTreeMap;

use candle::{Device, Tensor};

use crate::{ComposeError, Result};

/// Named tensors, keyed by name (`"image"`, `"magnitude"`, `"op_weights"`, ...).
pub type TensorMap = BTreeMap<String, Tensor>;

/// One sample: named data tensors plus optional named per-element state, with no batch axis.
#[derive(Debug, Clone, Default)]
pub struct Element {
    data: TensorMap,
    states: TensorMap,
}

impl Element {
    /// An element from its data and states.
    pub fn from_parts(data: TensorMap, states: TensorMap) -> Self {
        Self { data, states }
    }

    /// An element with data only: `Element::new([("image", image)])`.
    pub fn new<K: Into<String>>(data: impl IntoIterator<Item = (K, Tensor)>) -> Self {
        let data = data.into_iter().map(|(k, t)| (k.into(), t)).collect();
        Self {
            data,
            states: TensorMap::new(),
        }
    }

    /// The data tensors.
    pub fn get_data(&self) -> &TensorMap {
        &self.data
    }

    /// The per-element states.
    pub fn get_states(&self) -> &TensorMap {
        &self.states
    }

    /// The data tensor under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.data.get(key)
    }

    /// The data tensor under `key`, or [`ComposeError::MissingKey`].
    pub fn require(&self, key: &str) -> Result<&Tensor> {
        self.data
            .get(key)
            .ok_or_else(|| missing("element", key, &self.data))
    }

    /// This element with `key` set to `tensor` (inserted or replaced).
    pub fn with(mut self, key: impl Into<String>, tensor: Tensor) -> Self {
        self.data.insert(key.into(), tensor);
        self
    }

    /// The data and states, by value.
    pub fn into_parts(self) -> (TensorMap, TensorMap) {
        (self.data, self.states)
    }
}

/// A batch: named data tensors and named states, all sharing a leading batch axis of size `B`.
///
/// E.g. `{"image": (B,C,H,W), "magnitude": (B,), "op_weights": (B,15)}`. A `Batch` is cheap to
/// clone (tensors are reference counted) and immutable: operators return new batches.
#[derive(Debug, Clone)]
pub struct Batch {
    data: TensorMap,
    states: TensorMap,
    batch_size: usize,
}

impl Batch {
    /// A batch from pre-stacked tensors; every tensor must have the same leading dimension.
    ///
    /// Errors: [`ComposeError::EmptyBatch`] if there is no tensor at all,
    /// [`ComposeError::BatchSizeMismatch`] if a tensor is a scalar or its leading dim differs.
    pub fn from_parts(data: TensorMap, states: TensorMap) -> Result<Self> {
        let first = data.iter().chain(states.iter()).next();
        let (first_key, first) = first.ok_or(ComposeError::EmptyBatch)?;
        let batch_size = match first.dims().first() {
            Some(&b) => b,
            None => return Err(batch_mismatch(first_key, first, 0)),
        };
        for (key, tensor) in data.iter().chain(states.iter()) {
            if tensor.dims().first() != Some(&batch_size) {
                return Err(batch_mismatch(key, tensor, batch_size));
            }
        }
        Ok(Self {
            data,
            states,
            batch_size,
        })
    }

    /// A batch with data only: `Batch::new([("image", images), ("magnitude", magnitudes)])`.
    pub fn new<K: Into<String>>(data: impl IntoIterator<Item = (K, Tensor)>) -> Result<Self> {
        let data = data.into_iter().map(|(k, t)| (k.into(), t)).collect();
        Self::from_parts(data, TensorMap::new())
    }

    /// Stacks elements that all have the same keys and per-key shapes.
    pub fn from_elements(elements: &[Element]) -> Result<Self> {
        let first = elements.first().ok_or(ComposeError::EmptyBatch)?;
        let stack_all = |part: fn(&Element) -> &TensorMap| -> Result<TensorMap> {
            let keys: Vec<String> = part(first).keys().cloned().collect();
            let mut out = TensorMap::new();
            for (child, element) in elements.iter().enumerate() {
                let got: Vec<String> = part(element).keys().cloned().collect();
                if got != keys {
                    return Err(ComposeError::KeyMismatch {
                        op: "batch::from_elements".into(),
                        child,
                        expected: keys,
                        got,
                    });
                }
            }
            for key in &keys {
                let tensors: Vec<&Tensor> = elements.iter().map(|e| &part(e)[key]).collect();
                check_same_shapes("batch::from_elements", key, &tensors)?;
                out.insert(key.clone(), Tensor::stack(&tensors, 0)?);
            }
            Ok(out)
        };
        let data = stack_all(Element::get_data)?;
        let states = stack_all(Element::get_states)?;
        Self::from_parts(data, states)
    }

    /// The batch size `B`.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The device of the batch's tensors (that of the first one).
    pub fn device(&self) -> &Device {
        // `from_parts` guarantees at least one tensor.
        let first = self.data.values().chain(self.states.values()).next();
        first.map(Tensor::device).unwrap_or(&Device::Cpu)
    }

    /// The data tensors.
    pub fn get_data(&self) -> &TensorMap {
        &self.data
    }

    /// The states.
    pub fn get_states(&self) -> &TensorMap {
        &self.states
    }

    /// The data tensor under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.data.get(key)
    }

    /// The data tensor under `key`, or [`ComposeError::MissingKey`].
    pub fn require(&self, key: &str) -> Result<&Tensor> {
        self.data
            .get(key)
            .ok_or_else(|| missing("batch", key, &self.data))
    }

    /// The data keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// A copy of this batch with data `key` set to `tensor` (whose leading dim must be `B`).
    pub fn with(&self, key: impl Into<String>, tensor: Tensor) -> Result<Self> {
        let key = key.into();
        if tensor.dims().first() != Some(&self.batch_size) {
            return Err(batch_mismatch(&key, &tensor, self.batch_size));
        }
        let mut out = self.clone();
        out.data.insert(key, tensor);
        Ok(out)
    }

    /// A copy of this batch without data `key` (unchanged if absent).
    pub fn without(&self, key: &str) -> Self {
        let mut out = self.clone();
        out.data.remove(key);
        out
    }

    /// Element `index`, a view without the batch axis (differentiable).
    pub fn element(&self, index: usize) -> Result<Element> {
        if index >= self.batch_size {
            return Err(ComposeError::IndexOutOfRange {
                op: "batch::element".into(),
                index,
                len: self.batch_size,
            });
        }
        let pick = |map: &TensorMap| -> Result<TensorMap> {
            map.iter()
                .map(|(k, t)| Ok((k.clone(), t.get(index)?)))
                .collect()
        };
        Ok(Element::from_parts(pick(&self.data)?, pick(&self.states)?))
    }

    /// All elements, in order.
    pub fn elements(&self) -> Result<Vec<Element>> {
        (0..self.batch_size).map(|i| self.element(i)).collect()
    }

    /// The sub-batch of the elements at `indices` (a `(K,)` u32 tensor), in that order.
    pub fn index_select(&self, indices: &Tensor) -> Result<Self> {
        let pick = |map: &TensorMap| -> Result<TensorMap> {
            map.iter()
                .map(|(k, t)| Ok((k.clone(), t.index_select(indices, 0)?)))
                .collect()
        };
        let batch_size = indices.dims1()?;
        Ok(Self {
            data: pick(&self.data)?,
            states: pick(&self.states)?,
            batch_size,
        })
    }

    /// The data and states, by value.
    pub fn into_parts(self) -> (TensorMap, TensorMap) {
        (self.data, self.states)
    }
}

pub(crate) fn missing(op: &str, key: &str, map: &TensorMap) -> ComposeError {
    ComposeError::MissingKey {
        op: op.to_string(),
        key: key.to_string(),
        available: map.keys().cloned().collect(),
    }
}

fn batch_mismatch(key: &str, tensor: &Tensor, expected: usize) -> ComposeError {
    ComposeError::BatchSizeMismatch {
        op: "batch".into(),
        key: key.to_string(),
        dims: tensor.dims().to_vec(),
        expected,
    }
}

/// [`ComposeError::ShapeMismatch`] unless all tensors have the shape of the first.
pub(crate) fn check_same_shapes(op: &str, key: &str, tensors: &[&Tensor]) -> Result<()> {
    let Some(first) = tensors.first() else {
        return Ok(());
    };
    for (child, t) in tensors.iter().enumerate().skip(1) {
        if t.dims() != first.dims() {
            return Err(ComposeError::ShapeMismatch {
                op: op.to_string(),
                key: key.to_string(),
                child,
                expected: first.dims().to_vec(),
                got: t.dims().to_vec(),
            });
        }
    }
    Ok(())
}
