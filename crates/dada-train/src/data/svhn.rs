//! SVHN cropped digits (format 2): reader of the official `train_32x32.mat` / `test_32x32.mat`.
//!
//! Each file holds `X`, uint8 of dimensions `[32, 32, 3, N]` stored column-major (element
//! (row r, column c, channel ch, image n) at `r + 32 c + 1024 ch + 3072 n`), and `y`, `[N, 1]`
//! (double in the official files; uint8 is accepted), with labels 1 to 10 where 10 is the digit 0.
//! The reader maps 10 to 0 (as torchvision does), so labels are the digits, and turns the images
//! planar, `(N, C, H, W)`, like every [`ImageSet`].
use std::path::Path;

use crate::data::cifar::ImageSet;
use crate::data::mat::{read_mat_hinted, MatArray, MatData};
use crate::error::{DataError, DataResult};

/// The official training file.
pub const SVHN_TRAIN_FILE: &str = "train_32x32.mat";
/// The official test file.
pub const SVHN_TEST_FILE: &str = "test_32x32.mat";
/// Where the official training file lives.
pub const SVHN_TRAIN_URL: &str = "http://ufldl.stanford.edu/housenumbers/train_32x32.mat";
/// Where the official test file lives.
pub const SVHN_TEST_URL: &str = "http://ufldl.stanford.edu/housenumbers/test_32x32.mat";
/// md5 of `train_32x32.mat`.
pub const SVHN_TRAIN_MD5: &str = "e26dedcc434d2e4c54c9b2d4a06d8373";
/// md5 of `test_32x32.mat`.
pub const SVHN_TEST_MD5: &str = "eb5a983be6a315427106f1b1d7ab8e30";
/// SVHN class names in label order: the digits (label 0 is the digit 0, stored as 10 in the files).
pub const SVHN_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// What to do about a missing or unreadable SVHN file.
pub const SVHN_HINT: &str = "download the official file with `cargo xtask datasets svhn --download`";

/// Reads an official SVHN file (`train_32x32.mat` or `test_32x32.mat`) into planar images with
/// labels 0 to 9.
pub fn read_svhn_mat(path: &Path) -> DataResult<ImageSet> {
    let hint = format!("the file is damaged or not a .mat file; {SVHN_HINT}");
    let arrays = read_mat_hinted(path, SVHN_HINT, &hint)?;
    svhn_from_arrays(arrays, path)
}

/// Reads `dir/train_32x32.mat` and `dir/test_32x32.mat`: (train, test).
pub fn read_svhn_dir(dir: &Path) -> DataResult<(ImageSet, ImageSet)> {
    Ok((read_svhn_mat(&dir.join(SVHN_TRAIN_FILE))?, read_svhn_mat(&dir.join(SVHN_TEST_FILE))?))
}

/// Builds the image set from the arrays of an SVHN file (`path` names it in error messages).
fn svhn_from_arrays(mut arrays: Vec<MatArray>, path: &Path) -> DataResult<ImageSet> {
    let not_svhn = |what: String| DataError::Layout {
        path: path.to_path_buf(),
        reason: format!(
            "not SVHN's `train_32x32.mat`/`test_32x32.mat` format: {} ({SVHN_HINT})",
            crate::error::clip_to(&what, crate::error::MESSAGE_LIMIT)
        ),
    };
    let mut take = |name: &str| arrays.iter().position(|a| a.name == name).map(|i| arrays.swap_remove(i));
    let x = take("X").ok_or_else(|| not_svhn("it has no variable `X`".into()))?;
    let y = take("y").ok_or_else(|| not_svhn("it has no variable `y`".into()))?;

    let n = match x.dims[..] {
        [32, 32, 3, n] => n,
        [32, 32, 3] => 1, // MATLAB drops a trailing singleton dimension
        _ => return Err(not_svhn(format!("`X` has dimensions {:?}, expected [32, 32, 3, N]", x.dims))),
    };
    let MatData::U8(x_data) = x.data else {
        return Err(not_svhn("`X` is not uint8".into()));
    };
    let y_ok = matches!(y.dims[..], [m, 1] | [1, m] if m == n) || (n == 1 && y.dims.iter().all(|&d| d == 1));
    if !y_ok {
        return Err(not_svhn(format!(
            "`y` has dimensions {:?}, expected [{n}, 1] to match the {n} images of `X`",
            y.dims
        )));
    }
    let raw: Vec<f64> = match y.data {
        MatData::U8(v) => v.into_iter().map(f64::from).collect(),
        MatData::F64(v) => v,
    };
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in raw.iter().enumerate() {
        if !(1.0..=10.0).contains(&v) || v.fract() != 0.0 {
            return Err(not_svhn(format!("`y` holds the label {v} for image {i}, outside 1..10")));
        }
        labels.push(v as u8 % 10);
    }

    const PLANE: usize = 32 * 32;
    const IMAGE: usize = 3 * PLANE;
    let mut pixels = vec![0u8; x_data.len()];
    for (src, dst) in x_data.chunks_exact(IMAGE).zip(pixels.chunks_exact_mut(IMAGE)) {
        for ch in 0..3 {
            let (src, dst) = (&src[ch * PLANE..(ch + 1) * PLANE], &mut dst[ch * PLANE..(ch + 1) * PLANE]);
            // Column-major (r + 32 c) to row-major (32 r + c): a 32x32 transpose.
            for c in 0..32 {
                for r in 0..32 {
                    dst[r * 32 + c] = src[r + 32 * c];
                }
            }
        }
    }
    Ok(ImageSet { pixels, labels, channels: 3, height: 32, width: 32 })
}
