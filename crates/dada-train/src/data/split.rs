//! Seeded train / validation / test splits (quick, full, reduced CIFAR-10).
//!
//! Validation images always come out of the training files, never the test file.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::cifar::{BinaryDataset, ImageSet};
use crate::error::{DataError, DataResult};

/// How to split a dataset; deterministic from `seed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Training images (from the training files).
    pub n_train: usize,
    /// Validation images (from the training files, disjoint from the training images).
    pub n_val: usize,
    /// Test images (from the test file); `None`: all of them.
    pub n_test: Option<usize>,
    /// Equal numbers per class (remainders to the first classes).
    pub stratified: bool,
    /// Seed of the selection.
    pub seed: u64,
}

impl SplitConfig {
    /// Quick mode: 1,024 train / 256 validation / 256 test.
    pub fn quick() -> Self {
        Self { n_train: 1024, n_val: 256, n_test: Some(256), stratified: true, seed: 0 }
    }

    /// Full CIFAR-10: 40,000 train / 10,000 validation / 10,000 test.
    pub fn full() -> Self {
        Self { n_train: 40_000, n_val: 10_000, n_test: None, stratified: true, seed: 0 }
    }

    /// Reduced CIFAR-10 (AutoAugment, DADA): 4,000 training images, no validation, full test.
    pub fn reduced() -> Self {
        Self { n_train: 4_000, n_val: 0, n_test: None, stratified: true, seed: 0 }
    }

    /// Reduced CIFAR-10 as the DADA search uses it: 4,000 images split 2,000 train / 2,000
    /// validation (stratified), full test.
    pub fn reduced_search() -> Self {
        Self { n_train: 2_000, n_val: 2_000, n_test: None, stratified: true, seed: 0 }
    }

    /// Shrinks a preset split to a dataset with `train_files` training and `test_files` test
    /// images, keeping the ratio of training to validation images, and returns one line per
    /// adjustment (empty when nothing changed). For presets only: a count the user asked for
    /// explicitly should be refused instead (see `make_splits`).
    pub fn fit_to(&mut self, train_files: usize, test_files: usize) -> Vec<String> {
        let mut notes = Vec::new();
        let want = self.n_train + self.n_val;
        if want > train_files {
            let (t, v) = (self.n_train, self.n_val);
            self.n_val = (v as u128 * train_files as u128 / want as u128) as usize;
            self.n_train = train_files - self.n_val;
            notes.push(format!(
                "the preset's {t} training + {v} validation images exceed the {train_files} training images: using {} + {}",
                self.n_train, self.n_val
            ));
        }
        if let Some(n) = self.n_test {
            if n > test_files {
                self.n_test = Some(test_files);
                notes.push(format!("the preset's {n} test images exceed the {test_files} available: using all {test_files}"));
            }
        }
        notes
    }

    /// The same split with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Train, validation and test image sets.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training images.
    pub train: ImageSet,
    /// Validation images (from the training files).
    pub val: ImageSet,
    /// Test images (from the test file).
    pub test: ImageSet,
    /// Indices of the training images in the training files.
    pub train_indices: Vec<usize>,
    /// Indices of the validation images in the training files.
    pub val_indices: Vec<usize>,
    /// Indices of the test images in the test file.
    pub test_indices: Vec<usize>,
}

/// Draws `counts.len()` disjoint index lists of the given sizes from `set`.
fn draw(set: &ImageSet, n_classes: usize, counts: &[usize], stratified: bool, rng: &mut rand::rngs::StdRng) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); counts.len()];
    if !stratified {
        let mut idx: Vec<usize> = (0..set.len()).collect();
        idx.shuffle(rng);
        let mut start = 0;
        for (k, &c) in counts.iter().enumerate() {
            out[k] = idx[start..start + c].to_vec();
            start += c;
        }
        return out;
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in set.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    for class in by_class.iter_mut() {
        class.shuffle(rng);
    }
    let mut taken = vec![0usize; n_classes];
    for (k, &c) in counts.iter().enumerate() {
        // Per class c / n_classes, the remainder to the classes with the most images left.
        let base = c / n_classes;
        let mut rem = c % n_classes;
        for (cls, members) in by_class.iter().enumerate() {
            let mut want = base;
            if rem > 0 && members.len() > taken[cls] + base {
                want += 1;
                rem -= 1;
            }
            let want = want.min(members.len() - taken[cls]);
            out[k].extend_from_slice(&members[taken[cls]..taken[cls] + want]);
            taken[cls] += want;
        }
        // Top up from any class if some were short.
        let mut cls = 0;
        while out[k].len() < c && cls < n_classes {
            if taken[cls] < by_class[cls].len() {
                out[k].push(by_class[cls][taken[cls]]);
                taken[cls] += 1;
            } else {
                cls += 1;
            }
        }
        out[k].shuffle(rng);
    }
    out
}

/// Splits `ds` as `cfg` says.
pub fn make_splits(ds: &BinaryDataset, cfg: &SplitConfig) -> DataResult<Splits> {
    let have = ds.train.len();
    if cfg.n_train + cfg.n_val > have {
        return Err(DataError::SplitTooLarge { what: "train + validation", want: cfg.n_train + cfg.n_val, have });
    }
    let n_test = cfg.n_test.unwrap_or(ds.test.len());
    if n_test > ds.test.len() {
        return Err(DataError::SplitTooLarge { what: "test", want: n_test, have: ds.test.len() });
    }
    let n_classes = ds.meta.classes.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let parts = draw(&ds.train, n_classes, &[cfg.n_train, cfg.n_val], cfg.stratified, &mut rng);
    let test_idx: Vec<usize> = if n_test == ds.test.len() {
        (0..n_test).collect()
    } else {
        draw(&ds.test, n_classes, &[n_test], cfg.stratified, &mut rng).remove(0)
    };
    let mut parts = parts.into_iter();
    let (train_indices, val_indices) = (parts.next().unwrap(), parts.next().unwrap());
    Ok(Splits {
        train: ds.train.select(&train_indices),
        val: ds.train.select(&val_indices),
        test: ds.test.select(&test_idx),
        train_indices,
        val_indices,
        test_indices: test_idx,
    })
}
