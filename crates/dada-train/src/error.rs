//! `DataError`: problems with datasets a user must fix, each naming the file and the fix.
use std::path::PathBuf;

/// The command that prepares the default CIFAR-10 copy.
pub const PREPARE_HINT: &str = "run `cargo xtask datasets cifar10` to prepare it";

/// A dataset problem a user must fix. Messages name the file and the command that fixes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory the dataset needs does not exist.
    #[error("{path}: not found ({hint})")]
    Missing {
        /// The missing path.
        path: PathBuf,
        /// How to fix it.
        hint: String,
    },
    /// A binary batch file whose size is not a whole number of records.
    #[error("{path}: truncated or corrupt: {len} bytes is not a multiple of the {record}-byte record size ({hint})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// Record size in bytes (1 label byte + pixels).
        record: usize,
        /// How to fix it.
        hint: String,
    },
    /// A record whose label is not a valid class index.
    #[error("{path}: record {record} has label {label}, but there are only {n_classes} classes ({hint})")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Index of the record in the file.
        record: usize,
        /// The label found.
        label: u8,
        /// Number of classes.
        n_classes: usize,
        /// How to fix it.
        hint: String,
    },
    /// An image in an ImageFolder tree that cannot be decoded.
    #[error("{path}: unreadable image: {reason}")]
    BadImage {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// Images of different sizes in one ImageFolder tree.
    #[error("{path}: image is {got_w}x{got_h}, but the first image ({first}) is {want_w}x{want_h}; all images must have one size (resize them first)")]
    MixedSizes {
        /// The odd image.
        path: PathBuf,
        /// Its width.
        got_w: u32,
        /// Its height.
        got_h: u32,
        /// The first image seen.
        first: PathBuf,
        /// The expected width.
        want_w: u32,
        /// The expected height.
        want_h: u32,
    },
    /// A class folder with no images.
    #[error("{path}: class folder '{class}' has no images (.jpg, .jpeg, .png)")]
    EmptyClass {
        /// The folder.
        path: PathBuf,
        /// The class name.
        class: String,
    },
    /// An ImageFolder tree that does not have the expected layout.
    #[error("{path}: {reason}")]
    Layout {
        /// The tree or archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A download whose checksum does not match.
    #[error("{path}: md5 {got} does not match the expected {want}; the download is corrupt, delete it and retry")]
    Checksum {
        /// The downloaded file.
        path: PathBuf,
        /// The md5 found.
        got: String,
        /// The md5 expected.
        want: String,
    },
    /// A download that failed.
    #[error("downloading {url} failed: {reason} (offline? import an ImageFolder copy with `cargo xtask datasets cifar10 --from PATH`)")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A split that asks for more images than the files hold.
    #[error("split asks for {want} {what} images but only {have} are available")]
    SplitTooLarge {
        /// Which part of the split.
        what: &'static str,
        /// Images requested.
        want: usize,
        /// Images available.
        have: usize,
    },
    /// A dataset folder that holds part of a dataset: a file missing, truncated or of another
    /// size than written. Nothing is rebuilt over it.
    #[error("{path}: {reason}; the dataset is incomplete and nothing was changed ({hint})")]
    Incomplete {
        /// The missing or damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// A data folder holding another dataset than the one asked for.
    #[error("{path}: holds {found}, not {want}; nothing was changed ({hint})")]
    WrongDataset {
        /// The folder.
        path: PathBuf,
        /// What it holds ("pets: 3 classes of 3x48x48").
        found: String,
        /// The dataset asked for.
        want: String,
        /// How to fix it.
        hint: String,
    },
    /// A folder that holds files of its own where a dataset would be written.
    #[error("{path}: the folder is not empty and holds no dataset; nothing was written ({hint})")]
    Occupied {
        /// The folder.
        path: PathBuf,
        /// How to fix it.
        hint: String,
    },
    /// A dataset name that is not a plain name.
    #[error("dataset name '{name}' is not a plain name: {reason} (use letters, digits, '-' and '_', e.g. `pets`)")]
    BadName {
        /// The name given (cut to a sane length).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A tensor error.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}

/// Result alias for dataset operations.
pub type DataResult<T> = std::result::Result<T, DataError>;

/// Cutting echoed input to a sane length: one implementation, in dada-policy.
pub use dada_policy::{clip, clip_to, ECHO_LIMIT, MESSAGE_LIMIT};
