//! `ComposeError`: every way building or applying a composite can fail, and the crate `Result`.

/// The crate's result type: `Result<T, ComposeError>`.
///
/// `ComposeError` converts from and into `candle::Error`, so `?` works in both directions:
/// candle tensor errors become [`ComposeError::Candle`], and a `ComposeError` raised inside code
/// returning `candle::Result` becomes a wrapped candle error with the same message.
pub type Result<T> = std::result::Result<T, ComposeError>;

/// What went wrong while building or applying an operator.
///
/// Build-time problems (wrong number of weights, two weight modes at once, no children) are
/// returned by the constructors; data-dependent ones (a missing key, mismatched shapes, a router
/// index out of range) by `Operator::apply_batch`. None of them panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// A key an operator reads is not in the batch.
    #[error("{op}: missing key {key:?} in the batch (it has {available:?})")]
    MissingKey {
        /// The operator (or `"batch"`) that asked for the key.
        op: String,
        /// The missing key.
        key: String,
        /// The keys the batch does have.
        available: Vec<String>,
    },
    /// A batch was built with no tensor at all, so it has no batch size.
    #[error("batch: a batch needs at least one tensor to define its batch size")]
    EmptyBatch,
    /// A tensor's leading (batch) axis does not match the batch size.
    #[error("{op}: key {key:?} has leading dims {dims:?}, expected batch size {expected}")]
    BatchSizeMismatch {
        /// Where the mismatch was found.
        op: String,
        /// The offending key.
        key: String,
        /// Its full shape.
        dims: Vec<usize>,
        /// The batch size of the rest of the batch.
        expected: usize,
    },
    /// A composite was given no child operators.
    #[error("{op}: needs at least one child operator")]
    NoOperators {
        /// The composite.
        op: String,
    },
    /// Static or learnable weights with a length other than the number of children.
    #[error("{op}: {got} weights for {expected} child operators")]
    WrongNumberOfWeights {
        /// The composite.
        op: String,
        /// The number of children.
        expected: usize,
        /// The number of weights given.
        got: usize,
    },
    /// Dynamic weights read from the batch with a shape other than `(B, n_children)`.
    #[error("{op}: weights under {key:?} must be (B, {n_ops}) = ({b_sz}, {n_ops}), got {dims:?}")]
    WeightShape {
        /// The composite.
        op: String,
        /// The weight key.
        key: String,
        /// The batch size.
        b_sz: usize,
        /// The number of children.
        n_ops: usize,
        /// The shape found.
        dims: Vec<usize>,
    },
    /// More than one weight mode was configured for a `WeightedParallel`.
    #[error("{op}: exactly one weight mode is allowed, got {modes:?}; keep one of `weights`, `learnable_weights`, `weight_key`")]
    ConflictingWeightModes {
        /// The composite.
        op: String,
        /// The modes that were set.
        modes: Vec<&'static str>,
    },
    /// No weight mode was configured for a `WeightedParallel`.
    #[error("{op}: no weight mode; set one of `weights`, `learnable_weights`, `weight_key`")]
    NoWeightMode {
        /// The composite.
        op: String,
    },
    /// Children returned different sets of keys, so their outputs cannot be merged.
    #[error("{op}: child {child} returned keys {got:?}, child 0 returned {expected:?}")]
    KeyMismatch {
        /// The composite.
        op: String,
        /// Index of the first disagreeing child.
        child: usize,
        /// Keys of child 0.
        expected: Vec<String>,
        /// Keys of `child`.
        got: Vec<String>,
    },
    /// Children returned tensors of different shapes under the same key.
    #[error("{op}: key {key:?} of child {child} has shape {got:?}, child 0 has {expected:?}")]
    ShapeMismatch {
        /// The composite.
        op: String,
        /// The key.
        key: String,
        /// Index of the first disagreeing child.
        child: usize,
        /// Shape from child 0 (or from the input, for conditional strategies).
        expected: Vec<usize>,
        /// Shape from `child`.
        got: Vec<usize>,
    },
    /// A router returned a branch index outside `0..n_branches`.
    #[error("{op}: router sent element {element} to branch {index}, but there are {n_branches} branches")]
    RouterIndexOutOfRange {
        /// The composite.
        op: String,
        /// The element routed out of range.
        element: usize,
        /// The index the router returned.
        index: i64,
        /// The number of branches.
        n_branches: usize,
    },
    /// A router or condition returned a tensor of the wrong shape.
    #[error("{op}: {what} must have shape ({b_sz},), got {dims:?}")]
    PerElementShape {
        /// The composite.
        op: String,
        /// `"router output"` or `"condition mask"`.
        what: &'static str,
        /// The batch size.
        b_sz: usize,
        /// The shape found.
        dims: Vec<usize>,
    },
    /// An index into a `DynamicSequential` or a batch was out of range.
    #[error("{op}: index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The operator or container.
        op: String,
        /// The index given.
        index: usize,
        /// The current length.
        len: usize,
    },
    /// `DynamicSequential::reorder` was given something other than a permutation.
    #[error("{op}: {order:?} is not a permutation of 0..{len}")]
    NotAPermutation {
        /// The operator.
        op: String,
        /// The order given.
        order: Vec<usize>,
        /// The number of operators.
        len: usize,
    },
    /// Two children of a `Parallel` with `MergeMode::Named` have the same name.
    #[error("{op}: child name {name:?} is used twice; named outputs need distinct names")]
    DuplicateName {
        /// The composite.
        op: String,
        /// The repeated name.
        name: String,
    },
    /// A merge or concatenation axis does not exist in a child's output.
    #[error(
        "{op}: axis {axis} is invalid for key {key:?} with shape {dims:?} (axis 0 is the batch)"
    )]
    InvalidAxis {
        /// The composite.
        op: String,
        /// The key.
        key: String,
        /// The axis asked for.
        axis: usize,
        /// The tensor shape.
        dims: Vec<usize>,
    },
    /// Magnitudes for an augmentation operator have an unusable shape.
    #[error("{op}: magnitudes must be (B,) or (B, n) with a magnitude column, got {dims:?}")]
    MagnitudeShape {
        /// The operator.
        op: String,
        /// The shape found.
        dims: Vec<usize>,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

impl From<ComposeError> for candle::Error {
    fn from(err: ComposeError) -> Self {
        match err {
            ComposeError::Candle(err) => err,
            other => candle::Error::wrap(other),
        }
    }
}
