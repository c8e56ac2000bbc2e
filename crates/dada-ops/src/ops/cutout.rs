//! `Cutout`: fill a square at a random centre with grey (PIL-exact hard edge, or a soft edge).
use std::sync::Arc;

use candle::{bail, DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use crate::kernel::{check_inputs, dispatch, ImageDims, ImageKernel};
use crate::ops::ste;
use crate::params::random_centers;
use crate::{AugOp, Estimator, MagnitudeGrad, MagnitudeRange, OpParams};

/// Cutout side range as a fraction of the image width: `side = 0.2 m W`.
pub const CUTOUT_RANGE: MagnitudeRange = MagnitudeRange {
    low: 0.0,
    high: 0.2,
    symmetric: false,
};
/// Cutout fill colour, `(125, 123, 114) / 255` (channel `c` of other channel counts uses
/// entry `c % 3`).
pub const CUTOUT_FILL: [f32; 3] = [125.0 / 255.0, 123.0 / 255.0, 114.0 / 255.0];

/// How the cutout square's edge is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CutoutEdge {
    /// PIL-exact (fast-autoaugment `CutoutAbs`): integer box, `ImageDraw.rectangle` inclusive of
    /// its far corner. Magnitude gradient from the estimator.
    #[default]
    Hard,
    /// Area coverage: each pixel is filled by the fraction of it the square `[a, a + side)`
    /// covers. Piecewise linear in the side, so the magnitude gradient is exact.
    Soft,
}

/// Cutout: fill a square of side `0.2 m W` (in [0, 0.2] x width) with grey `(125, 123, 114)`.
///
/// The square starts at `a = max(0, centre - side / 2)` on each axis (it is shifted, not
/// clipped, at the top and left, as in fast-autoaugment); centres are `params.centers` (relative
/// `(y, x)`, drawn uniformly by `sample`). PIL reference:
/// `ImageDraw.rectangle((x0, y0, x0 + side, y0 + side), fill)`. Image gradient exact
/// (`1 - mask`). Magnitude gradient: exact for [`CutoutEdge::Soft`]; for the hard edge the soft
/// edge's gradient (surrogate, default) or straight-through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cutout {
    /// Hard (PIL, default) or soft edge.
    pub edge: CutoutEdge,
    /// Magnitude-gradient estimator of the hard edge.
    pub estimator: Estimator,
}

impl Cutout {
    /// The op with the given edge and the default (surrogate) estimator.
    pub fn new(edge: CutoutEdge) -> Self {
        Self {
            edge,
            estimator: Estimator::default(),
        }
    }

    /// The same op with another magnitude-gradient estimator for the hard edge.
    pub fn with_estimator(mut self, estimator: Estimator) -> Self {
        self.estimator = estimator;
        self
    }
}

impl AugOp for Cutout {
    fn name(&self) -> &'static str {
        "cutout"
    }
    fn range(&self) -> Option<MagnitudeRange> {
        Some(CUTOUT_RANGE)
    }
    fn magnitude_grad(&self) -> MagnitudeGrad {
        match self.edge {
            CutoutEdge::Soft => MagnitudeGrad::Exact,
            CutoutEdge::Hard => self.estimator.magnitude_grad(),
        }
    }
    fn sample(&self, b_sz: usize, rng: &mut StdRng, dev: &Device) -> Result<OpParams> {
        Ok(OpParams {
            centers: Some(random_centers(b_sz, rng, dev)?),
            ..OpParams::default()
        })
    }
    fn apply(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
        dispatch(self, images, magnitudes, params)
    }
    fn apply_reference(
        &self,
        images: &Tensor,
        magnitudes: &Tensor,
        params: &OpParams,
    ) -> Result<Tensor> {
        check_inputs(self.name(), images, magnitudes)?;
        self.reference(images, magnitudes, params)
    }
    fn kernel(
        &self,
        params: &OpParams,
        shape: (usize, usize, usize, usize),
    ) -> Result<Option<Arc<dyn ImageKernel>>> {
        let centers = centers_vec(params, shape.0)?;
        Ok(Some(Arc::new(CutoutKernel { op: *self, centers })))
    }
}

/// `(y, x)` relative centres per image (0.5, 0.5 when absent).
fn centers_vec(params: &OpParams, b: usize) -> Result<Vec<[f32; 2]>> {
    match &params.centers {
        None => Ok(vec![[0.5, 0.5]; b]),
        Some(t) => {
            if t.dims() != [b, 2] {
                bail!("cutout: centers must be ({b}, 2), got {:?}", t.dims())
            }
            Ok(t.to_dtype(DType::F32)?
                .to_vec2::<f32>()?
                .into_iter()
                .map(|r| [r[0], r[1]])
                .collect())
        }
    }
}

/// One axis of the square: start `a`, side `s`, and `d a / d s`.
#[derive(Clone, Copy)]
struct Span {
    a: f32,
    s: f32,
    da: f32,
}

impl Span {
    fn new(center: f32, s: f32) -> Self {
        let a0 = center - s * 0.5;
        if a0 > 0.0 {
            Span { a: a0, s, da: -0.5 }
        } else {
            Span { a: 0.0, s, da: 0.0 }
        }
    }

    /// Soft coverage of pixel `j` and its derivative w.r.t. the side.
    #[inline]
    fn soft(&self, j: usize) -> (f32, f32) {
        let (j0, j1) = (j as f32, j as f32 + 1.0);
        let e = self.a + self.s;
        let cov = e.min(j1) - self.a.max(j0);
        if cov <= 0.0 {
            return (0.0, 0.0);
        }
        let mut d = 0.0;
        if e < j1 {
            d += self.da + 1.0;
        }
        if self.a > j0 {
            d -= self.da;
        }
        (cov.min(1.0), d)
    }

    /// Whether pixel `j` is inside the PIL box on an axis of length `len`.
    fn hard(&self, j: usize, len: usize) -> bool {
        if self.s <= 0.0 {
            return false;
        }
        let start = self.a.floor();
        let last = (start + self.s).floor().min(len as f32 - 1.0);
        let jf = j as f32;
        jf >= start && jf <= last
    }
}

struct CutoutKernel {
    op: Cutout,
    centers: Vec<[f32; 2]>,
}

impl CutoutKernel {
    fn spans(&self, index: usize, magnitude: f32, dims: ImageDims) -> (Span, Span) {
        let k = (CUTOUT_RANGE.high as f64 * dims.w as f64) as f32;
        let s = magnitude * k;
        let [ry, rx] = self.centers[index];
        (
            Span::new(ry * dims.h as f32, s),
            Span::new(rx * dims.w as f32, s),
        )
    }
}

/// Per-axis tables of one image: hard mask, soft coverage and its derivative w.r.t. the side.
struct AxisTables {
    hard: Vec<f32>,
    soft: Vec<f32>,
    dsoft: Vec<f32>,
}

impl AxisTables {
    fn new(span: Span, len: usize) -> Self {
        let mut t = AxisTables {
            hard: vec![0.0; len],
            soft: vec![0.0; len],
            dsoft: vec![0.0; len],
        };
        for j in 0..len {
            t.hard[j] = span.hard(j, len) as u8 as f32;
            (t.soft[j], t.dsoft[j]) = span.soft(j);
        }
        t
    }

    fn mask(&self, edge: CutoutEdge) -> &[f32] {
        match edge {
            CutoutEdge::Hard => &self.hard,
            CutoutEdge::Soft => &self.soft,
        }
    }
}

impl ImageKernel for CutoutKernel {
    fn forward(&self, index: usize, magnitude: f32, src: &[f32], dims: ImageDims, dst: &mut [f32]) {
        let (sy, sx) = self.spans(index, magnitude, dims);
        let (ty, tx) = (AxisTables::new(sy, dims.h), AxisTables::new(sx, dims.w));
        let (my, mx) = (ty.mask(self.op.edge), tx.mask(self.op.edge));
        let plane = dims.plane();
        dst.copy_from_slice(src);
        for c in 0..dims.c {
            let fill = CUTOUT_FILL[c % 3];
            for (y, &wy) in my.iter().enumerate() {
                if wy == 0.0 {
                    continue;
                }
                let row = c * plane + y * dims.w;
                for (x, &wx) in mx.iter().enumerate() {
                    let mask = wy * wx;
                    let o = row + x;
                    dst[o] = src[o] * (1.0 - mask) + fill * mask;
                }
            }
        }
    }

    fn recompute_output(&self) -> bool {
        true
    }

    fn backward(
        &self,
        index: usize,
        magnitude: f32,
        src: &[f32],
        dims: ImageDims,
        grad_out: &[f32],
        scale: f32,
        grad_src: &mut [f32],
    ) -> f32 {
        let (sy, sx) = self.spans(index, magnitude, dims);
        let (ty, tx) = (AxisTables::new(sy, dims.h), AxisTables::new(sx, dims.w));
        let (my, mx) = (ty.mask(self.op.edge), tx.mask(self.op.edge));
        let plane = dims.plane();
        for c in 0..dims.c {
            for (y, &wy) in my.iter().enumerate() {
                let row = c * plane + y * dims.w;
                for x in 0..dims.w {
                    grad_src[row + x] += scale * grad_out[row + x] * (1.0 - wy * mx[x]);
                }
            }
        }
        if self.op.edge == CutoutEdge::Hard && self.op.estimator == Estimator::StraightThrough {
            return grad_out.iter().sum();
        }
        // d mask_soft / d side = dcy cx + cy dcx; d out / d mask = fill - x.
        let mut ds = 0f32;
        for c in 0..dims.c {
            let fill = CUTOUT_FILL[c % 3];
            for y in 0..dims.h {
                let (cy, dcy) = (ty.soft[y], ty.dsoft[y]);
                if cy == 0.0 && dcy == 0.0 {
                    continue;
                }
                let row = c * plane + y * dims.w;
                for x in 0..dims.w {
                    let dmask = dcy * tx.soft[x] + cy * tx.dsoft[x];
                    ds += grad_out[row + x] * (fill - src[row + x]) * dmask;
                }
            }
        }
        ds * (CUTOUT_RANGE.high as f64 * dims.w as f64) as f32
    }
}

impl Cutout {
    fn reference(&self, images: &Tensor, magnitudes: &Tensor, params: &OpParams) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        let dev = images.device();
        let dt = images.dtype();
        let centers = match &params.centers {
            Some(t) => t.to_dtype(dt)?,
            None => Tensor::full(0.5f32, (b, 2), dev)?.to_dtype(dt)?,
        };
        let side = magnitudes.affine(CUTOUT_RANGE.high as f64 * w as f64, 0.0)?;
        let axis = |rel: Tensor, len: usize| -> Result<(Tensor, Tensor)> {
            let center = rel.affine(len as f64, 0.0)?;
            let a = (center - side.affine(0.5, 0.0)?)?.maximum(0f64)?;
            let e = (&a + &side)?;
            let j = Tensor::arange(0u32, len as u32, dev)?
                .to_dtype(dt)?
                .unsqueeze(0)?;
            let (a, e) = (a.unsqueeze(1)?, e.unsqueeze(1)?);
            let soft = (j.affine(1.0, 1.0)?.broadcast_minimum(&e)? - j.broadcast_maximum(&a)?)?
                .clamp(0f64, 1f64)?;
            let start = a.detach().floor()?;
            let last = (&start + side.detach().unsqueeze(1)?)?
                .floor()?
                .minimum((len - 1) as f64)?;
            let positive = side.detach().gt(0f64)?.to_dtype(dt)?.unsqueeze(1)?;
            let hard = (j.broadcast_ge(&start)?.to_dtype(dt)?
                * j.broadcast_le(&last)?.to_dtype(dt)?)?
            .broadcast_mul(&positive)?;
            Ok((soft, hard))
        };
        let (soft_y, hard_y) = axis(centers.narrow(1, 0, 1)?.squeeze(1)?, h)?;
        let (soft_x, hard_x) = axis(centers.narrow(1, 1, 1)?.squeeze(1)?, w)?;
        let outer = |y: &Tensor, x: &Tensor| -> Result<Tensor> {
            y.unsqueeze(2)?
                .broadcast_mul(&x.unsqueeze(1)?)?
                .unsqueeze(1)
        };
        let fill: Vec<f32> = (0..c).map(|i| CUTOUT_FILL[i % 3]).collect();
        let fill = Tensor::from_vec(fill, (1, c, 1, 1), dev)?.to_dtype(dt)?;
        let blend = |x: &Tensor, mask: &Tensor| -> Result<Tensor> {
            x.broadcast_mul(&mask.affine(-1.0, 1.0)?)? + fill.broadcast_mul(mask)?
        };
        let soft = outer(&soft_y, &soft_x)?;
        match self.edge {
            CutoutEdge::Soft => blend(images, &soft),
            CutoutEdge::Hard => {
                let out = blend(images, &outer(&hard_y, &hard_x)?)?;
                match self.estimator {
                    Estimator::StraightThrough => out.broadcast_add(&ste(magnitudes)?),
                    Estimator::Surrogate => {
                        let surrogate = blend(&images.detach(), &soft)?;
                        out + (&surrogate - surrogate.detach())?
                    }
                }
            }
        }
    }
}
