//! The four ensembles: `EnsembleMean`, `EnsembleSum`, `EnsembleMax`, `EnsembleMin`.
use std::sync::Arc;

use crate::{Batch, MergeMode, Operator, Parallel, Result};

macro_rules! ensemble {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $mode:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty(Parallel);

        impl $ty {
            /// The ensemble of `ops`; errors with [`ComposeError::NoOperators`](crate::ComposeError::NoOperators) if empty.
            pub fn new(ops: impl IntoIterator<Item = Arc<dyn Operator>>) -> Result<Self> {
                Parallel::named($name, ops, $mode).map(Self)
            }

            /// Renames the operator.
            pub fn with_name(self, name: impl Into<String>) -> Self {
                Self(self.0.with_name(name))
            }

            /// The members.
            pub fn operators(&self) -> &[Arc<dyn Operator>] {
                self.0.operators()
            }
        }

        impl Operator for $ty {
            fn name(&self) -> &str {
                self.0.name()
            }

            fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
                self.0.apply_batch(batch)
            }
        }
    };
}

ensemble!(
    /// Applies every member to the same input and averages their outputs element-wise.
    EnsembleMean, "ensemble_mean", MergeMode::Mean
);
ensemble!(
    /// Applies every member to the same input and sums their outputs element-wise.
    EnsembleSum, "ensemble_sum", MergeMode::Sum
);
ensemble!(
    /// Applies every member to the same input and keeps the element-wise maximum (the gradient
    /// goes to the maximal members).
    EnsembleMax, "ensemble_max", MergeMode::Max
);
ensemble!(
    /// Applies every member to the same input and keeps the element-wise minimum (the gradient
    /// goes to the minimal members).
    EnsembleMin, "ensemble_min", MergeMode::Min
);
