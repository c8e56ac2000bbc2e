//! The fixed parts of the training pipeline: random crop (zero padding), horizontal flip,
//! CIFAR normalisation and Cutout, as in fast-autoaugment / the official DADA code.
use candle::{Device, Result, Tensor};
use rand::rngs::StdRng;
use rand::Rng;

use crate::data::ImageSet;

/// CIFAR-10 channel means (fast-autoaugment's `_CIFAR_MEAN`).
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10 channel standard deviations (fast-autoaugment's `_CIFAR_STD`).
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Options of the fixed pipeline around a policy.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PipelineConfig {
    /// Zero padding of the random crop (0: no crop).
    pub crop_padding: usize,
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
    /// Side of the Cutout square applied after normalisation (0: none).
    pub cutout: usize,
}

impl PipelineConfig {
    /// Crop (pad 4) + flip + Cutout 16: the DADA search and final-training pipeline.
    pub fn standard() -> Self {
        Self { crop_padding: 4, flip: true, cutout: 16 }
    }

    /// Nothing but normalisation.
    pub fn none() -> Self {
        Self { crop_padding: 0, flip: false, cutout: 0 }
    }
}

/// Images `indices` of `set` as f32 in [0, 1], `(B, C, H, W)`, randomly cropped (with zero
/// padding) and flipped as `cfg` says, plus their labels (u32).
pub fn crop_flip_batch(
    set: &ImageSet,
    indices: &[usize],
    cfg: &PipelineConfig,
    rng: &mut StdRng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (c, h, w) = (set.channels, set.height, set.width);
    let pad = cfg.crop_padding as isize;
    let mut data = vec![0f32; indices.len() * c * h * w];
    let mut labels = Vec::with_capacity(indices.len());
    for (b, &i) in indices.iter().enumerate() {
        let img = set.image(i);
        let (dy, dx) = if pad > 0 {
            (rng.random_range(0..=2 * pad as i64) as isize - pad, rng.random_range(0..=2 * pad as i64) as isize - pad)
        } else {
            (0, 0)
        };
        let flip = cfg.flip && rng.random_bool(0.5);
        let out = &mut data[b * c * h * w..(b + 1) * c * h * w];
        for ch in 0..c {
            for y in 0..h {
                let sy = y as isize + dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = xx as isize + dx;
                    if sx < 0 || sx >= w as isize {
                        continue;
                    }
                    out[(ch * h + y) * w + x] = img[(ch * h + sy as usize) * w + sx as usize] as f32 / 255.0;
                }
            }
        }
        labels.push(set.labels[i] as u32);
    }
    Ok((Tensor::from_vec(data, (indices.len(), c, h, w), device)?, Tensor::from_vec(labels, indices.len(), device)?))
}

/// `(x - mean) / std` per channel (CIFAR statistics) on `(B, 3, H, W)`.
pub fn normalize(images: &Tensor) -> Result<Tensor> {
    let dev = images.device();
    let mean = Tensor::new(&CIFAR_MEAN, dev)?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&CIFAR_STD, dev)?.reshape((1, 3, 1, 1))?;
    images.broadcast_sub(&mean)?.broadcast_div(&std)
}

/// A Cutout mask `(B, 1, H, W)`: ones, with a `side` x `side` square of zeros at a uniformly
/// random centre per image (clipped at the border), as in DeVries & Taylor / fast-autoaugment.
pub fn cutout_mask(b_sz: usize, h: usize, w: usize, side: usize, rng: &mut StdRng, device: &Device) -> Result<Tensor> {
    let mut mask = vec![1f32; b_sz * h * w];
    if side > 0 {
        for b in 0..b_sz {
            let cy = rng.random_range(0..h) as isize;
            let cx = rng.random_range(0..w) as isize;
            let half = (side / 2) as isize;
            let (y0, y1) = ((cy - half).max(0) as usize, ((cy + half).min(h as isize)) as usize);
            let (x0, x1) = ((cx - half).max(0) as usize, ((cx + half).min(w as isize)) as usize);
            for y in y0..y1 {
                for x in x0..x1 {
                    mask[(b * h + y) * w + x] = 0.0;
                }
            }
        }
    }
    Tensor::from_vec(mask, (b_sz, 1, h, w), device)
}

/// Normalise, then apply Cutout (`side` 0: none): the model's input.
pub fn finish(images: &Tensor, side: usize, rng: &mut StdRng) -> Result<Tensor> {
    let x = normalize(images)?;
    if side == 0 {
        return Ok(x);
    }
    let (b, _, h, w) = x.dims4()?;
    let mask = cutout_mask(b, h, w, side, rng, x.device())?;
    x.broadcast_mul(&mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crop_without_shift_and_flip_is_identity() {
        let mut set = ImageSet::empty(3, 4, 4);
        set.push(&(0..48).map(|v| v as u8).collect::<Vec<_>>(), 1);
        let mut rng = StdRng::seed_from_u64(0);
        let (x, y) = crop_flip_batch(&set, &[0], &PipelineConfig::none(), &mut rng, &Device::Cpu).unwrap();
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v[5], 5.0 / 255.0);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![1]);
        // With padding, every output pixel is either zero or a pixel of the source.
        let cfg = PipelineConfig { crop_padding: 2, flip: true, cutout: 0 };
        let (x, _) = crop_flip_batch(&set, &[0, 0, 0, 0], &cfg, &mut rng, &Device::Cpu).unwrap();
        for v in x.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            let p = (v * 255.0).round();
            assert!((0.0..48.0).contains(&p));
        }
    }

    #[test]
    fn cutout_zeroes_at_most_a_square() {
        let mut rng = StdRng::seed_from_u64(1);
        let m = cutout_mask(8, 32, 32, 16, &mut rng, &Device::Cpu).unwrap();
        let zeros: Vec<f32> = (1.0 - m).unwrap().sum((1, 2, 3)).unwrap().to_vec1().unwrap();
        assert!(zeros.iter().all(|&z| z > 0.0 && z <= 256.0), "{zeros:?}");
    }
}
