//! Augments one image with dada-ops and prints the gradients that make the ops learnable.
//!
//! It applies one op (`rotate`, bilinear, at a chosen magnitude) and the paper's 15-op weighted
//! mixture (what DADA evaluates for every image), saves the input and both outputs as PNG, and
//! backpropagates a loss (how far the output moved from the input, `mean((out - x)^2)`) to the
//! image and to the magnitudes with candle's `backward`.
//!
//! ```text
//! cargo run --release -p dada-ops --example augment_image -- [IMAGE] [OUT_DIR] [MAGNITUDE]
//! ```
//!
//! `IMAGE` is a PNG or JPEG file; without it the example makes a 64 x 64 test image
//! (`dada_ops::testing::smooth_images`). Outputs go to `OUT_DIR` (default: `dada-augment-image`
//! in the system's temporary directory). `MAGNITUDE` is in [0, 1] (default 0.8: rotate by
//! `-30 + 60 * 0.8 = 18` degrees).
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle::{DType, Device, Tensor, Var};
use dada_ops::testing::smooth_images;
use dada_ops::{weighted_mixture, AugOp, Interpolation, OpParams, OpSet, Rotate};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// What to augment and where the results go.
pub struct Options {
    /// The image to load; `None`: a generated test image of `size x size` pixels.
    pub input: Option<PathBuf>,
    /// Side of the generated test image.
    pub size: usize,
    /// Folder for `input.png`, `rotate.png` and `mixture.png` (created if missing).
    pub out_dir: PathBuf,
    /// The magnitude of every op, in [0, 1].
    pub magnitude: f32,
}

/// What the example computed.
pub struct Report {
    /// The image's shape `(1, 3, H, W)`.
    pub dims: Vec<usize>,
    /// The PNG files written: input, rotated, mixture.
    pub written: Vec<PathBuf>,
    /// `||d loss / d image||` and `d loss / d magnitude` for `rotate`.
    pub rotate_grads: (f32, f32),
    /// `||d loss / d image||` for the mixture.
    pub mixture_image_grad_norm: f32,
    /// `d loss / d magnitude` of each op of the mixture, with the op's name (0 for ops without
    /// a magnitude).
    pub mixture_magnitude_grads: Vec<(&'static str, f32)>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let magnitude = match args.get(2) {
        Some(m) => m
            .parse()
            .with_context(|| format!("MAGNITUDE must be a number, got {m:?}"))?,
        None => 0.8,
    };
    let options = Options {
        input: args.first().map(PathBuf::from),
        size: 64,
        out_dir: args
            .get(1)
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("dada-augment-image")),
        magnitude,
    };
    let report = run(&options)?;
    println!("image {:?}, magnitude {magnitude}", report.dims);
    let (image_norm, magnitude_grad) = report.rotate_grads;
    println!("rotate:  ||d loss / d image|| = {image_norm:.6}, d loss / d magnitude = {magnitude_grad:+.6}");
    println!(
        "mixture: ||d loss / d image|| = {:.6}",
        report.mixture_image_grad_norm
    );
    for (name, grad) in &report.mixture_magnitude_grads {
        println!("  d loss / d magnitude of {name:<14} {grad:+.6}");
    }
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Loads (or makes) the image, applies `rotate` and the 15-op mixture, saves them and returns
/// the gradients.
pub fn run(options: &Options) -> Result<Report> {
    ensure!(
        (0.0..=1.0).contains(&options.magnitude),
        "the magnitude must be in [0, 1], got {}",
        options.magnitude
    );
    let dev = Device::Cpu;
    let image = match &options.input {
        Some(path) => load_image(path, &dev)?,
        None => smooth_images((1, 3, options.size, options.size), 7, DType::F32, &dev)?,
    };
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create {}", options.out_dir.display()))?;
    let mut written = vec![save_image(&image, &options.out_dir.join("input.png"))?];

    // One op. The image and the magnitude are `Var`s so that backward reaches them. Random
    // parts of an op (here the rotation's sign) are drawn before `apply`: +1 rotates
    // counter-clockwise.
    let x = Var::from_tensor(&image)?;
    let magnitude = Var::new(&[options.magnitude], &dev)?;
    let rotate = Rotate::new(Interpolation::Bilinear);
    let params = OpParams::with_signs(&[1.0], &dev)?;
    let rotated = rotate.apply(x.as_tensor(), magnitude.as_tensor(), &params)?;
    written.push(save_image(&rotated, &options.out_dir.join("rotate.png"))?);
    let grads = moved_from(&rotated, x.as_tensor())?.backward()?;
    let rotate_grads = (
        norm(grads.get(x.as_tensor()).context("no image gradient")?)?,
        grads
            .get(magnitude.as_tensor())
            .context("no magnitude gradient")?
            .to_vec1::<f32>()?[0],
    );

    // The 15 ops of the paper, blended with equal weights, each at its own magnitude
    // `(B, n_ops)`; `sample_all` draws each op's random parameters from a seeded generator.
    let ops = OpSet::paper();
    let n_ops = ops.len();
    let magnitudes = Var::from_tensor(&Tensor::full(options.magnitude, (1, n_ops), &dev)?)?;
    let weights = Tensor::full(1.0 / n_ops as f32, (1, n_ops), &dev)?;
    let params = ops.sample_all(1, &mut StdRng::seed_from_u64(0), &dev)?;
    let mixed = weighted_mixture(
        &ops,
        x.as_tensor(),
        magnitudes.as_tensor(),
        &weights,
        &params,
    )?;
    written.push(save_image(&mixed, &options.out_dir.join("mixture.png"))?);
    let grads = moved_from(&mixed, x.as_tensor())?.backward()?;
    let per_op = grads
        .get(magnitudes.as_tensor())
        .context("no magnitude gradient")?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(Report {
        dims: image.dims().to_vec(),
        written,
        rotate_grads,
        mixture_image_grad_norm: norm(grads.get(x.as_tensor()).context("no image gradient")?)?,
        mixture_magnitude_grads: ops.names().into_iter().zip(per_op).collect(),
    })
}

/// The loss: `mean((out - x)^2)`, how far the augmentation moved the image (`x` is detached:
/// the image's gradient flows through the op only).
fn moved_from(out: &Tensor, x: &Tensor) -> candle::Result<Tensor> {
    (out - x.detach())?.sqr()?.mean_all()
}

/// The L2 norm of a tensor.
fn norm(t: &Tensor) -> candle::Result<f32> {
    t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()
}

/// An RGB image file as a `(1, 3, H, W)` f32 tensor in [0, 1].
fn load_image(path: &Path, dev: &Device) -> Result<Tensor> {
    let rgb = image::open(path)
        .with_context(|| format!("cannot read the image {}", path.display()))?
        .to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let hwc = Tensor::from_vec(rgb.into_raw(), (h, w, 3), dev)?;
    Ok((hwc.permute((2, 0, 1))?.to_dtype(DType::F32)? / 255.0)?.unsqueeze(0)?)
}

/// Writes a `(1, 3, H, W)` tensor in [0, 1] as a PNG file and returns its path.
fn save_image(image: &Tensor, path: &Path) -> Result<PathBuf> {
    let (_, _, h, w) = image.dims4()?;
    let hwc = (image.squeeze(0)?.permute((1, 2, 0))?.clamp(0f32, 1f32)? * 255.0)?
        .round()?
        .to_dtype(DType::U8)?
        .flatten_all()?
        .to_vec1::<u8>()?;
    let rgb = image::RgbImage::from_raw(w as u32, h as u32, hwc).context("image buffer size")?;
    rgb.save(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_path_buf())
}
