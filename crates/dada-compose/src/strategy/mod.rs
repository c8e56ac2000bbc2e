//! The eleven composition strategies, one file each (the four ensembles share `ensemble.rs`).
mod branching;
mod conditional_parallel;
mod conditional_sequential;
mod dynamic_sequential;
mod ensemble;
mod parallel;
mod sequential;
mod weighted_parallel;

pub use branching::Branching;
pub use conditional_parallel::{ConditionalMerge, ConditionalParallel};
pub use conditional_sequential::ConditionalSequential;
pub use dynamic_sequential::DynamicSequential;
pub use ensemble::{EnsembleMax, EnsembleMean, EnsembleMin, EnsembleSum};
pub use parallel::Parallel;
pub use sequential::Sequential;
pub use weighted_parallel::{WeightMode, WeightedParallel, WeightedParallelConfig};
