//! `AugOperator`: a dada-ops augmentation as an `Operator` (reads image + magnitude, writes image).
use std::sync::{Arc, Mutex};

use candle::{DType, Device, Tensor};
use dada_ops::{AugOp, OpParams, OpSet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Batch, ComposeError, Operator, Result};

/// Where an [`AugOperator`] gets its per-image random parameters (signs, cutout centres, ...).
///
/// Randomness is always explicit: either fixed parameters, or a seeded generator owned by the
/// operator, drawn from once per call. There is no global generator.
#[derive(Debug)]
pub enum ParamSource {
    /// The same parameters at every call (their batch size must match the batch).
    Fixed(OpParams),
    /// Fresh parameters at every call, from `AugOp::sample` with this generator.
    Seeded(Box<Mutex<StdRng>>),
}

impl ParamSource {
    /// Parameters drawn at each call from a generator seeded with `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// The parameters for one call on `b_sz` images.
    pub fn draw(&self, op: &dyn AugOp, b_sz: usize, device: &Device) -> Result<OpParams> {
        match self {
            Self::Fixed(params) => Ok(params.clone()),
            Self::Seeded(rng) => {
                // A poisoned lock only means another thread panicked mid-draw; the generator
                // state is still a valid generator state.
                let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
                Ok(op.sample(b_sz, &mut rng, device)?)
            }
        }
    }
}

/// A dada-ops [`AugOp`] as an operator: reads `images (B,C,H,W)` and `magnitudes`, writes the
/// augmented images back under the image key, and passes every other key through.
///
/// Magnitudes are `(B,)`, or `(B, n)` with [`AugOperator::with_magnitude_column`] picking one
/// column. A magnitude-free op (`range() == None`) needs no magnitude key.
#[derive(Debug)]
pub struct AugOperator {
    op: Arc<dyn AugOp>,
    params: ParamSource,
    image_key: String,
    magnitude_key: String,
    magnitude_column: Option<usize>,
}

impl AugOperator {
    /// `op` on keys `"image"` and `"magnitude"`, with parameters from `params`.
    pub fn new(op: Arc<dyn AugOp>, params: ParamSource) -> Self {
        Self {
            op,
            params,
            image_key: "image".into(),
            magnitude_key: "magnitude".into(),
            magnitude_column: None,
        }
    }

    /// Reads images from (and writes them to) `image_key` and magnitudes from `magnitude_key`.
    pub fn with_keys(
        mut self,
        image_key: impl Into<String>,
        magnitude_key: impl Into<String>,
    ) -> Self {
        self.image_key = image_key.into();
        self.magnitude_key = magnitude_key.into();
        self
    }

    /// Reads column `column` of `(B, n)` magnitudes.
    pub fn with_magnitude_column(mut self, column: usize) -> Self {
        self.magnitude_column = Some(column);
        self
    }

    /// The wrapped op.
    pub fn op(&self) -> &Arc<dyn AugOp> {
        &self.op
    }

    /// The op's stable name, e.g. `"shear_x"`.
    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// The image key.
    pub fn image_key(&self) -> &str {
        &self.image_key
    }

    /// The magnitude key.
    pub fn magnitude_key(&self) -> &str {
        &self.magnitude_key
    }

    /// The magnitude column read from `(B, n)` magnitudes, if set.
    pub fn magnitude_column(&self) -> Option<usize> {
        self.magnitude_column
    }

    /// Draws this call's parameters (advancing the generator of a seeded source).
    pub fn draw_params(&self, b_sz: usize, device: &Device) -> Result<OpParams> {
        self.params.draw(self.op.as_ref(), b_sz, device)
    }

    /// This operator's `(B,)` magnitudes from `batch`.
    pub fn magnitudes(&self, batch: &Batch) -> Result<Tensor> {
        let b_sz = batch.batch_size();
        let Some(magnitudes) = batch.get(&self.magnitude_key) else {
            if self.op.range().is_none() {
                let dtype = batch.get(&self.image_key).map_or(DType::F32, Tensor::dtype);
                return Ok(Tensor::zeros(b_sz, dtype, batch.device())?);
            }
            return Err(crate::batch::missing(
                self.name(),
                &self.magnitude_key,
                batch.get_data(),
            ));
        };
        match (magnitudes.dims(), self.magnitude_column) {
            ([_], _) => Ok(magnitudes.clone()),
            ([_, n], Some(column)) if column < *n => {
                Ok(magnitudes.narrow(1, column, 1)?.squeeze(1)?)
            }
            (dims, _) => Err(ComposeError::MagnitudeShape {
                op: self.name().to_string(),
                dims: dims.to_vec(),
            }),
        }
    }

    /// Applies the op with explicit parameters (no draw).
    pub fn apply_with(&self, batch: &Batch, params: &OpParams) -> Result<Batch> {
        let images = batch.require(&self.image_key)?;
        let magnitudes = self.magnitudes(batch)?;
        let out = self.op.apply(images, &magnitudes, params)?;
        batch.with(self.image_key.clone(), out)
    }
}

impl Operator for AugOperator {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn apply_batch(&self, batch: &Batch) -> Result<Batch> {
        let images = batch.require(&self.image_key)?;
        let params = self.draw_params(batch.batch_size(), images.device())?;
        self.apply_with(batch, &params)
    }

    fn as_aug_operator(&self) -> Option<&AugOperator> {
        Some(self)
    }
}

/// One [`AugOperator`] per op of `set`, in order, each drawing its parameters from its own
/// generator; the generators are seeded from `seed`, so the whole list is reproducible.
///
/// `WeightedParallel` over these runs as one fused `dada_ops::weighted_mixture`.
pub fn aug_operators(set: &OpSet, seed: u64) -> Vec<Arc<dyn Operator>> {
    let mut seeds = StdRng::seed_from_u64(seed);
    set.iter()
        .map(|op| AugOperator::new(op.clone(), ParamSource::seeded(seeds.random())).arc())
        .collect()
}
