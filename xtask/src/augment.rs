//! `cargo xtask augment` (one op on an image file) and `cargo xtask showcase` (every op).
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle::{Device, Tensor};
use dada_train::ops::{AugOp, Cutout, CutoutEdge, Interpolation, OpSet, Rotate, ShearX, ShearY, TranslateX, TranslateY};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::datasets::open;
use crate::flags::{AugmentCmd, ShowcaseCmd};
use crate::{figures, project_root};

/// The op `name` with the requested sampling for geometric ops.
fn op_by_name(name: &str, interp: Interpolation) -> Result<Arc<dyn AugOp>> {
    let op: Arc<dyn AugOp> = match name {
        "shear_x" => Arc::new(ShearX::new(interp)),
        "shear_y" => Arc::new(ShearY::new(interp)),
        "translate_x" => Arc::new(TranslateX::new(interp)),
        "translate_y" => Arc::new(TranslateY::new(interp)),
        "rotate" => Arc::new(Rotate::new(interp)),
        "cutout" if interp == Interpolation::Bilinear => Arc::new(Cutout::new(CutoutEdge::Soft)),
        other => OpSet::by_name(other).with_context(|| {
            let mut names = OpSet::paper().names();
            names.extend(OpSet::tutorial().names());
            names.sort();
            names.dedup();
            format!("--op '{}': unknown op; known ops: {}", dada_train::error::clip(other), names.join(", "))
        })?,
    };
    Ok(op)
}

impl AugmentCmd {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.magnitude) {
            bail!("--magnitude {}: expected a number in [0, 1]", self.magnitude);
        }
        let interp = match self.interp.as_str() {
            "nearest" => Interpolation::Nearest,
            "bilinear" => Interpolation::Bilinear,
            other => bail!("--interp '{}': expected nearest or bilinear", dada_train::error::clip(other)),
        };
        let op = op_by_name(&self.op, interp)?;
        let img = image::open(&self.input).with_context(|| format!("reading {}", self.input.display()))?.to_rgb8();
        let (w, h) = img.dimensions();
        let (w, h) = (w as usize, h as usize);
        let mut planar = vec![0f32; 3 * h * w];
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                planar[c * h * w + i] = px[c] as f32 / 255.0;
            }
        }
        let dev = self.run.select()?;
        let x = Tensor::from_vec(planar, (1, 3, h, w), &dev)?;
        let m = Tensor::new(&[self.magnitude], &dev)?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut params = op.sample(1, &mut rng, &dev)?;
        if let Some(sign) = &self.sign {
            let s = match sign.as_str() {
                "plus" => 1f32,
                "minus" => -1f32,
                other => bail!("--sign '{}': expected plus or minus", dada_train::error::clip(other)),
            };
            params.signs = Some(Tensor::new(&[s], &dev)?);
        }
        let y = op.apply(&x, &m, &params)?.squeeze(0)?;
        let data: Vec<f32> = y.flatten_all()?.to_device(&Device::Cpu)?.to_vec1()?;
        let out = image::RgbImage::from_fn(w as u32, h as u32, |xx, yy| {
            let i = yy as usize * w + xx as usize;
            let px = |c: usize| (data[c * h * w + i].clamp(0.0, 1.0) * 255.0).round() as u8;
            image::Rgb([px(0), px(1), px(2)])
        });
        out.save(&self.output).with_context(|| format!("writing {}", self.output.display()))?;
        eprintln!("{} at magnitude {} -> {}", op.name(), self.magnitude, self.output.display());
        Ok(())
    }
}

impl ShowcaseCmd {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.magnitude) {
            bail!("--magnitude {}: expected a number in [0, 1]", self.magnitude);
        }
        let ds = open(&self.data)?;
        if self.index >= ds.test.len() {
            bail!("--index {}: the test set has {} images (0..={})", self.index, ds.test.len(), ds.test.len() - 1);
        }
        let idx = self.index;
        let (x, _) = ds.test.to_tensors(&[idx], &self.run.select()?)?;
        let out = self.out.clone().unwrap_or_else(|| project_root().join("docs").join("showcase.png"));
        figures::showcase(&out, &x.get(0)?, self.magnitude, self.seed)?;
        eprintln!("wrote {}", out.display());
        Ok(())
    }
}
