//! The built-in ops, one file per family, and small helpers they share.
use candle::{bail, Result, Tensor};

pub mod color;
pub mod cutout;
pub mod enhance;
pub mod geometric;
pub mod noise;

/// `(B, 1, 1, 1)` zeros whose gradient w.r.t. `magnitudes (B,)` is 1 per element: adding it
/// to an op's output is DADA's straight-through estimator (`out + m - m.detach()`).
pub(crate) fn ste(magnitudes: &Tensor) -> Result<Tensor> {
    let b = magnitudes.dim(0)?;
    (magnitudes - magnitudes.detach())?.reshape((b, 1, 1, 1))
}

/// `magnitudes (B,)` viewed as `(B, 1, 1, 1)`.
pub(crate) fn per_image4(t: &Tensor) -> Result<Tensor> {
    let b = t.dim(0)?;
    t.reshape((b, 1, 1, 1))
}

/// PIL's ITU-R 601-2 luma weights (`L = R * 299/1000 + G * 587/1000 + B * 114/1000`).
pub(crate) const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Luma weights for `c` channels: the PIL weights for RGB, 1 for a single channel.
pub(crate) fn luma_weights(name: &str, c: usize) -> Result<&'static [f32]> {
    match c {
        3 => Ok(&LUMA),
        1 => Ok(&[1.0]),
        _ => bail!("{name}: needs 1 or 3 channels, got {c}"),
    }
}
