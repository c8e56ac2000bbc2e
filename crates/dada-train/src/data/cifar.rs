//! The CIFAR-10 binary layout: reader and (atomic) writer of `data_batch_{1..5}.bin` / `test_batch.bin`.
//!
//! Each record is 1 label byte followed by the image as planar bytes (all of R, then G, then B),
//! 3,072 bytes for CIFAR-10's 3x32x32. Directories we write also carry `batches.meta.txt` (class
//! names, one per line, as the official release) and `dada-meta.json` (shape and classes), which
//! lets the same layout hold an imported dataset of another image size.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, DataResult, PREPARE_HINT};

/// Training batch files of the official layout.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Test batch file of the official layout.
pub const TEST_FILE: &str = "test_batch.bin";
/// The directory name inside the official archive.
pub const CIFAR10_DIR: &str = "cifar-10-batches-bin";
/// CIFAR-10 class names in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Image shape and class names of a dataset directory (`dada-meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// Channels (3 for RGB).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The dataset's name (`cifar10`, `pets`, ...); absent in directories written before names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the data came from (an archive, a folder, a URL), for messages that say how to
    /// rebuild it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Size in bytes of each data file as written, so that a truncated or swapped file is
    /// caught even when it still holds whole records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, u64>,
}

impl DatasetMeta {
    /// CIFAR-10: 3x32x32, ten classes.
    pub fn cifar10() -> Self {
        let mut meta = Self::new(3, 32, 32, CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
        meta.name = Some("cifar10".into());
        meta
    }

    /// Metadata of a `channels x height x width` dataset with these classes (no name yet).
    pub fn new(channels: usize, height: usize, width: usize, classes: Vec<String>) -> Self {
        Self { channels, height, width, classes, name: None, source: None, sizes: BTreeMap::new() }
    }

    /// The same metadata under a name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Largest image side the binary layout accepts (pixels).
    pub const MAX_SIDE: usize = 4096;

    /// Checks that the metadata describes a usable dataset: three channels, sides in
    /// `1..=MAX_SIDE`, two to 256 distinct, non-empty class names. `path` names the file in errors.
    pub fn check(&self, path: &Path) -> DataResult<()> {
        let bad = |reason: String| Err(DataError::Layout { path: path.to_path_buf(), reason });
        if self.channels != 3 {
            return bad(format!("{} channels; datasets are RGB (3 channels)", self.channels));
        }
        if !(1..=Self::MAX_SIDE).contains(&self.height) || !(1..=Self::MAX_SIDE).contains(&self.width) {
            return bad(format!("image size {}x{} is outside 1..={} pixels a side", self.width, self.height, Self::MAX_SIDE));
        }
        if self.classes.len() < 2 {
            return bad(format!("{} class(es); a classifier needs at least two", self.classes.len()));
        }
        if self.classes.len() > 256 {
            return bad(format!("{} classes; the binary layout stores labels in one byte (at most 256)", self.classes.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.classes {
            if c.trim().is_empty() || !seen.insert(c.as_str()) {
                return bad(format!("class name '{}' is empty or repeated", crate::error::clip(c)));
            }
        }
        Ok(())
    }

    /// `3x48x48`.
    pub fn shape_text(&self) -> String {
        format!("{}x{}x{}", self.channels, self.height, self.width)
    }

    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Bytes of one record (label + image).
    pub fn record_len(&self) -> usize {
        1 + self.image_len()
    }
}

/// A set of labelled images held as u8 planar pixels, `(N, C, H, W)` in memory order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// `N * C * H * W` pixel bytes.
    pub pixels: Vec<u8>,
    /// `N` labels.
    pub labels: Vec<u8>,
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

impl ImageSet {
    /// An empty set of images of the given shape.
    pub fn empty(channels: usize, height: usize, width: usize) -> Self {
        Self { pixels: Vec::new(), labels: Vec::new(), channels, height, width }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The planar bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Appends one image (planar bytes) with its label.
    pub fn push(&mut self, image: &[u8], label: u8) {
        assert_eq!(image.len(), self.image_len(), "image size mismatch");
        self.pixels.extend_from_slice(image);
        self.labels.push(label);
    }

    /// A new set holding the images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut out = ImageSet::empty(self.channels, self.height, self.width);
        out.pixels.reserve(indices.len() * self.image_len());
        for &i in indices {
            out.push(self.image(i), self.labels[i]);
        }
        out
    }

    /// Appends all images of `other` (same shape).
    pub fn extend(&mut self, other: &ImageSet) {
        assert_eq!(
            (self.channels, self.height, self.width),
            (other.channels, other.height, other.width)
        );
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
    }

    /// Per-class image counts for `n_classes` classes.
    pub fn class_counts(&self, n_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; n_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Images at `indices` as f32 in [0, 1], `(B, C, H, W)`, and labels as u32 `(B,)`.
    pub fn to_tensors(&self, indices: &[usize], device: &Device) -> candle::Result<(Tensor, Tensor)> {
        let n = self.image_len();
        let mut data = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            data.extend(self.image(i).iter().map(|&p| p as f32 / 255.0));
            labels.push(self.labels[i] as u32);
        }
        let images = Tensor::from_vec(data, (indices.len(), self.channels, self.height, self.width), device)?;
        let labels = Tensor::from_vec(labels, indices.len(), device)?;
        Ok((images, labels))
    }

    /// All images as tensors.
    pub fn all_tensors(&self, device: &Device) -> candle::Result<(Tensor, Tensor)> {
        let idx: Vec<usize> = (0..self.len()).collect();
        self.to_tensors(&idx, device)
    }
}

/// A dataset in the binary layout: training images (all batch files), test images, metadata.
#[derive(Debug, Clone)]
pub struct BinaryDataset {
    /// Images of the training files.
    pub train: ImageSet,
    /// Images of the test file.
    pub test: ImageSet,
    /// Shape and class names.
    pub meta: DatasetMeta,
    /// The directory read.
    pub dir: PathBuf,
}

/// Reads the metadata of a binary dataset directory (defaults to CIFAR-10 when no sidecar).
pub fn read_meta(dir: &Path) -> DataResult<DatasetMeta> {
    let json = dir.join("dada-meta.json");
    if json.exists() {
        let text = fs::read_to_string(&json).map_err(|e| DataError::io(&json, e))?;
        let meta: DatasetMeta = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| DataError::Layout {
            path: json.clone(),
            reason: format!(
                "malformed metadata: {} (rebuild the dataset: {PREPARE_HINT}, or re-import it with --force)",
                crate::error::clip_to(&e.to_string(), crate::error::MESSAGE_LIMIT)
            ),
        })?;
        meta.check(&json)?;
        return Ok(meta);
    }
    let mut meta = DatasetMeta::cifar10();
    let txt = dir.join("batches.meta.txt");
    if txt.exists() {
        let text = fs::read_to_string(&txt).map_err(|e| DataError::io(&txt, e))?;
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if names.len() == meta.classes.len() {
            meta.classes = names;
        }
    }
    Ok(meta)
}

/// Reads one batch file of records of `meta`'s shape, checking size and labels.
pub fn read_batch_file(path: &Path, meta: &DatasetMeta) -> DataResult<ImageSet> {
    if !path.exists() {
        return Err(DataError::Missing { path: path.to_path_buf(), hint: PREPARE_HINT.to_string() });
    }
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    let record = meta.record_len();
    if bytes.len() % record != 0 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record,
            hint: format!("delete it and {PREPARE_HINT}"),
        });
    }
    let n = bytes.len() / record;
    let mut set = ImageSet::empty(meta.channels, meta.height, meta.width);
    set.pixels.reserve(n * meta.image_len());
    set.labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[0];
        if label as usize >= meta.classes.len() {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record: i,
                label,
                n_classes: meta.classes.len(),
                hint: format!("the file is corrupt: delete it and {PREPARE_HINT}"),
            });
        }
        set.push(&rec[1..], label);
    }
    Ok(set)
}

/// Reads a binary dataset directory (`data_batch_{1..5}.bin`, `test_batch.bin`).
pub fn load_dir(dir: &Path) -> DataResult<BinaryDataset> {
    if !dir.is_dir() {
        return Err(DataError::Missing { path: dir.to_path_buf(), hint: PREPARE_HINT.to_string() });
    }
    let meta = read_meta(dir)?;
    let mut train = ImageSet::empty(meta.channels, meta.height, meta.width);
    for f in TRAIN_FILES {
        train.extend(&read_batch_file(&dir.join(f), &meta)?);
    }
    let test = read_batch_file(&dir.join(TEST_FILE), &meta)?;
    Ok(BinaryDataset { train, test, meta, dir: dir.to_path_buf() })
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> DataResult<()> {
    let tmp = path.with_extension(format!(
        "{}tmp",
        path.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
    ));
    {
        let mut f = fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| DataError::io(&tmp, e))?;
        f.sync_all().map_err(|e| DataError::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

fn encode_records(set: &ImageSet, range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(range.len() * (1 + set.image_len()));
    for i in range {
        out.push(set.labels[i]);
        out.extend_from_slice(set.image(i));
    }
    out
}

/// Writes a dataset in the binary layout: the training set over five batch files (as even as
/// possible), the test set in `test_batch.bin`, plus `batches.meta.txt` and `dada-meta.json`.
/// Each file is written atomically; the metadata last, so a directory with metadata is complete.
pub fn write_dir(dir: &Path, train: &ImageSet, test: &ImageSet, meta: &DatasetMeta) -> DataResult<()> {
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mut meta = meta.clone();
    meta.sizes.clear();
    let n = train.len();
    let per = n.div_ceil(TRAIN_FILES.len());
    for (k, f) in TRAIN_FILES.iter().enumerate() {
        let start = (k * per).min(n);
        let end = ((k + 1) * per).min(n);
        let bytes = encode_records(train, start..end);
        meta.sizes.insert(f.to_string(), bytes.len() as u64);
        write_atomic(&dir.join(f), &bytes)?;
    }
    let bytes = encode_records(test, 0..test.len());
    meta.sizes.insert(TEST_FILE.to_string(), bytes.len() as u64);
    write_atomic(&dir.join(TEST_FILE), &bytes)?;
    let names = meta.classes.join("\n") + "\n";
    write_atomic(&dir.join("batches.meta.txt"), names.as_bytes())?;
    let json = serde_json::to_string_pretty(&meta).expect("metadata serialises");
    write_atomic(&dir.join("dada-meta.json"), json.as_bytes())
}

/// Whether `dir` holds a complete binary dataset (all files present, sizes whole records).
pub fn is_complete(dir: &Path) -> bool {
    let Ok(meta) = read_meta(dir) else { return false };
    TRAIN_FILES.iter().chain(std::iter::once(&TEST_FILE)).all(|f| {
        fs::metadata(dir.join(f))
            .map(|m| m.len() % meta.record_len() as u64 == 0)
            .unwrap_or(false)
    })
}
