//! The `Operator` trait and `ElementOperator`, which wraps a per-batch kernel, a per-element
//! function or a dada-ops augmentation.
use std::fmt;
use std::sync::Arc;

use candle::Tensor;
use dada_ops::AugOp;

use crate::{AugOperator, Batch, Element, ParamSource, Result};

/// Something that maps a [`Batch`] to a new `Batch`: a leaf (an [`ElementOperator`], an
/// [`AugOperator`]) or a composite of other operators (the strategies).
///
/// Applying to a whole batch is the operator's job: users never loop over elements. Operators
/// are shared between composites as `Arc<dyn Operator>`; [`Operator::arc`] makes one.
pub trait Operator: Send + Sync + fmt::Debug {
    /// A short name for messages and for `MergeMode::Named` output keys.
    fn name(&self) -> &str;

    /// Applies the operator to every element of `batch`, differentiably.
    fn apply_batch(&self, batch: &Batch) -> Result<Batch>;

    /// Applies the operator to one element (as a batch of one).
    fn apply_element(&self, element: &Element) -> Result<Element> {
        let batch = Batch::from_elements(std::slice::from_ref(element))?;
        self.apply_batch(&batch)?.element(0)
    }

    /// The augmentation view of this operator, if it is one; `WeightedParallel` uses it to find
    /// children it can run as one fused dada-ops mixture.
    fn as_aug_operator(&self) -> Option<&AugOperator> {
        None
    }

    /// This operator as a shareable `Arc<dyn Operator>`.
    fn arc(self) -> Arc<dyn Operator>
    where
        Self: Sized + 'static,
    {
        Arc::new(self)
    }
}

type BatchFn = dyn Fn(&Batch) -> Result<Batch> + Send + Sync;
type ElementFn = dyn Fn(&Element) -> Result<Element> + Send + Sync;

/// A leaf operator: a per-batch kernel, a per-element function applied to each element and
/// re-stacked, or a dada-ops augmentation running as its batched kernel.
pub struct ElementOperator {
    name: String,
    kernel: Kernel,
}

enum Kernel {
    Batch(Box<BatchFn>),
    Element(Box<ElementFn>),
    Aug(Box<AugOperator>),
}

impl ElementOperator {
    /// An operator from a kernel that processes a whole batch at once (the fast form).
    pub fn batched(
        name: impl Into<String>,
        kernel: impl Fn(&Batch) -> Result<Batch> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            kernel: Kernel::Batch(Box::new(kernel)),
        }
    }

    /// An operator from a function of one element; it is applied to each element in turn and
    /// the results are stacked (they must agree in keys and shapes).
    pub fn per_element(
        name: impl Into<String>,
        function: impl Fn(&Element) -> Result<Element> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            kernel: Kernel::Element(Box::new(function)),
        }
    }

    /// A batched operator that replaces data `key` by `f(batch[key])`, leaving the rest.
    pub fn map(
        name: impl Into<String>,
        key: impl Into<String>,
        f: impl Fn(&Tensor) -> candle::Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        let key = key.into();
        Self::batched(name, move |batch| {
            let out = f(batch.require(&key)?)?;
            batch.with(key.clone(), out)
        })
    }

    /// A dada-ops augmentation that reads `"image"` and `"magnitude"` and writes `"image"`,
    /// with its random parameters from `params` (see [`AugOperator`]).
    pub fn from_aug_op(op: Arc<dyn AugOp>, params: ParamSource) -> Self {
        let aug = AugOperator::new(op, params);
        Self {
            name: aug.name().to_string(),
            kernel: Kernel::Aug(Box::new(aug)),
        }
    }

    /// Wraps an existing [`AugOperator`].
    pub fn from_aug_operator(aug: AugOperator) -> Self {
        Self {
            name: aug.name().to_string(),
            kernel: Kernel::Aug(Box::new(aug)),
        }
    }
}

impl Operator for ElementOperator {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        match &self.kernel {
            Kernel::Batch(kernel) => kernel(batch),
            Kernel::Element(function) => {
                let inputs = batch.elements()?;
                let outputs = inputs
                    .iter()
                    .map(function.as_ref())
                    .collect::<Result<Vec<_>>>()?;
                let stacked = Batch::from_elements(&outputs)?;
                keep_untouched(batch, &inputs, &outputs, stacked)
            }
            Kernel::Aug(aug) => aug.apply_batch(batch),
        }
    }

    fn as_aug_operator(&self) -> Option<&AugOperator> {
        match &self.kernel {
            Kernel::Aug(aug) => Some(aug),
            _ => None,
        }
    }
}

/// Puts back the batch tensor of every key that the per-element function returned untouched
/// for all elements (the very element views it was given), so that pass-through keys keep their
/// identity and parallel strategies carry them over instead of merging them.
fn keep_untouched(
    batch: &Batch,
    inputs: &[Element],
    outputs: &[Element],
    stacked: Batch,
) -> Result<Batch> {
    let mut out = stacked;
    for (key, original) in batch.get_data() {
        let untouched = inputs
            .iter()
            .zip(outputs)
            .all(|(i, o)| match (i.get(key), o.get(key)) {
                (Some(i), Some(o)) => i.id() == o.id(),
                _ => false,
            });
        if untouched {
            out = out.with(key.clone(), original.clone())?;
        }
    }
    Ok(out)
}

impl fmt::Debug for ElementOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kernel {
            Kernel::Batch(_) => "batched",
            Kernel::Element(_) => "per_element",
            Kernel::Aug(_) => "aug_op",
        };
        f.debug_struct("ElementOperator")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}
