//! Seeded, deterministic parameter initialisation: a `VarBuilder` backend over a `VarMap`.
//!
//! candle's own `Init::var` draws from an unseeded generator. Here every new variable draws from
//! a SplitMix64 stream seeded by `seed` and the variable's full name, so a model built twice
//! with the same seed has bit-identical weights whatever the construction order.

use candle::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarMap};

/// Kaiming-normal (He) initialisation for convolutions, `fan_out` mode, ReLU gain, as in the
/// reference WRN implementations (`nn.init.kaiming_normal_(w, mode="fan_out")`).
pub const KAIMING_NORMAL_FAN_OUT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// A `VarBuilder` backend that creates missing variables in a [`VarMap`] from a seeded generator.
#[derive(Clone)]
pub struct SeededInit {
    varmap: VarMap,
    seed: u64,
}

impl SeededInit {
    /// Wraps `varmap`; new variables are drawn from streams derived from `seed`.
    pub fn new(varmap: VarMap, seed: u64) -> Self {
        Self { varmap, seed }
    }

    /// Draws the initial value of variable `name` with hint `init`.
    pub fn sample(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        let mut rng = SplitMix64::new(self.seed ^ fnv1a(name.as_bytes()));
        let n = shape.elem_count();
        match init {
            Init::Const(v) => vec![v as f32; n],
            Init::Randn { mean, stdev } => (0..n).map(|_| (mean + stdev * rng.normal()) as f32).collect(),
            Init::Uniform { lo, up } => (0..n).map(|_| (lo + (up - lo) * rng.uniform()) as f32).collect(),
            Init::Kaiming { dist, fan, non_linearity } => {
                let fan = fan.for_shape(shape).max(1);
                let std = non_linearity.gain() / (fan as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => (0..n).map(|_| (std * rng.normal()) as f32).collect(),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        (0..n).map(|_| (bound * (2.0 * rng.uniform() - 1.0)) as f32).collect()
                    }
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.varmap.data().lock().unwrap();
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                candle::bail!("seeded_init: shape mismatch on {name}: {shape:?} vs stored {:?}", var.shape())
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.sample(&shape, name, init);
        let tensor = Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let tensor = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let data = self.varmap.data().lock().unwrap();
        match data.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype)?.to_device(dev),
            None => candle::bail!("seeded_init: no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().unwrap().contains_key(name)
    }
}

/// FNV-1a hash of a byte string, used to give each variable its own stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 generator with Box-Muller normals; small, fast and reproducible everywhere.
struct SplitMix64 {
    state: u64,
    spare: Option<f64>,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed, spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal.
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_normal_has_the_he_standard_deviation() {
        let init = SeededInit::new(VarMap::new(), 7);
        let shape = Shape::from((64, 32, 3, 3));
        let w = init.sample(&shape, "w", KAIMING_NORMAL_FAN_OUT);
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        // std = sqrt(2) / sqrt(fan_out), fan_out = 64 * 3 * 3 = 576
        let expected = (2.0f64 / 576.0).sqrt();
        assert!(mean.abs() < 0.01 * expected * 10.0, "mean {mean}");
        assert!((var.sqrt() / expected - 1.0).abs() < 0.03, "std {} vs {expected}", var.sqrt());
    }

    #[test]
    fn same_seed_same_values_different_name_different_values() {
        let shape = Shape::from((10,));
        let a = SeededInit::new(VarMap::new(), 1).sample(&shape, "a", Init::Randn { mean: 0., stdev: 1. });
        let b = SeededInit::new(VarMap::new(), 1).sample(&shape, "a", Init::Randn { mean: 0., stdev: 1. });
        let c = SeededInit::new(VarMap::new(), 1).sample(&shape, "c", Init::Randn { mean: 0., stdev: 1. });
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
