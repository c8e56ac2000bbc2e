//! `PolicyError`: problems with a policy configuration or a policy file that a user must fix.

/// A policy configuration or policy file a user must fix. Tensor math errors arrive as
/// [`PolicyError::Candle`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A policy configuration is unusable (too few ops, zero slots, ...).
    #[error("invalid policy config: {0}")]
    Config(String),
    /// The file is not valid JSON or does not have the expected structure.
    #[error("policy file is not valid JSON of the expected structure: {}", clip_to(&.0.to_string(), MESSAGE_LIMIT))]
    Json(serde_json::Error),
    /// An op name that is neither one of our snake_case names nor a fast-autoaugment name.
    #[error(
        "policy file: unknown op {op:?} in sub-policy {sub_policy}; known ops: {known} \
         (snake_case like \"shear_x\" or fast-autoaugment names like \"ShearX\")"
    )]
    UnknownOp {
        /// The name found in the file.
        op: String,
        /// Index of the sub-policy it appears in.
        sub_policy: usize,
        /// The accepted names, comma separated.
        known: String,
    },
    /// A probability outside [0, 1].
    #[error("policy file: probability {value} of op {slot} in sub-policy {sub_policy} is outside [0, 1]")]
    ProbabilityOutOfRange {
        /// Index of the sub-policy.
        sub_policy: usize,
        /// Index of the op inside the sub-policy.
        slot: usize,
        /// The value found.
        value: f64,
    },
    /// A magnitude outside [0, 1].
    #[error("policy file: magnitude {value} of op {slot} in sub-policy {sub_policy} is outside [0, 1]")]
    MagnitudeOutOfRange {
        /// Index of the sub-policy.
        sub_policy: usize,
        /// Index of the op inside the sub-policy.
        slot: usize,
        /// The value found.
        value: f64,
    },
    /// An op entry with the wrong number of fields, or a sub-policy without ops.
    #[error("policy file: {what} in sub-policy {sub_policy} has {got} entries, expected {expected}")]
    WrongArity {
        /// What was malformed ("op entry", "sub-policy").
        what: &'static str,
        /// Index of the sub-policy.
        sub_policy: usize,
        /// The accepted count(s), in words.
        expected: String,
        /// The count found.
        got: usize,
    },
    /// A field with the wrong JSON type (e.g. a probability given as a string).
    #[error("policy file: {0}")]
    Malformed(String),
    /// The policy file has no sub-policies.
    #[error("policy file has no sub-policies")]
    Empty,
    /// A parameter file does not hold a tensor the policy needs, or holds it with another shape.
    #[error("parameter file: {0}")]
    Params(String),
    /// Reading or writing failed.
    #[error("policy file i/o: {0}")]
    Io(std::io::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

impl From<serde_json::Error> for PolicyError {
    fn from(e: serde_json::Error) -> Self {
        PolicyError::Json(e)
    }
}

impl From<std::io::Error> for PolicyError {
    fn from(e: std::io::Error) -> Self {
        PolicyError::Io(e)
    }
}

/// Longest piece of a file echoed back in a message (characters).
pub const ECHO_LIMIT: usize = 80;

/// `text` cut to [`ECHO_LIMIT`] characters, with the length of what was cut.
pub fn clip(text: &str) -> String {
    clip_to(text, ECHO_LIMIT)
}

/// Longest message built around a library's own error text (characters).
pub const MESSAGE_LIMIT: usize = 400;

/// `text` cut to `limit` characters, with the length of what was cut.
pub fn clip_to(text: &str, limit: usize) -> String {
    let n = text.chars().count();
    if n <= limit {
        text.to_string()
    } else {
        let head: String = text.chars().take(limit).collect();
        format!("{head}... ({n} characters)")
    }
}

/// `Result` with a [`PolicyError`].
pub type PolicyResult<T> = std::result::Result<T, PolicyError>;
