//! `MagnitudeRange`: how a magnitude in [0, 1] maps to an op's parameter.

/// The parameter range of an op: `param = sign * (low + m * (high - low))`.
///
/// This is the DADA / AutoAugment mapping (`val = m * (maxval - minval) + minval`), with the
/// random mirror of the symmetric ops (shear, translate, rotate) applied on top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MagnitudeRange {
    /// Parameter at magnitude 0.
    pub low: f32,
    /// Parameter at magnitude 1.
    pub high: f32,
    /// Whether the op draws a random sign per image (shear, translate, rotate).
    pub symmetric: bool,
}

impl MagnitudeRange {
    /// The parameter for magnitude `m` and sign `sign` (+1 or -1; ignored unless symmetric).
    pub fn param(&self, m: f32, sign: f32) -> f32 {
        let v = self.low + m * (self.high - self.low);
        if self.symmetric {
            sign * v
        } else {
            v
        }
    }

    /// d param / d m for sign `sign`.
    pub fn dparam_dm(&self, sign: f32) -> f32 {
        let d = self.high - self.low;
        if self.symmetric {
            sign * d
        } else {
            d
        }
    }

    /// `param` computed in f64, the precision the geometric ops use for sampling coordinates.
    pub fn param_f64(&self, m: f32, sign: f32) -> f64 {
        let v = m as f64 * (self.high as f64 - self.low as f64) + self.low as f64;
        if self.symmetric {
            sign as f64 * v
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_maps_ends_and_sign() {
        let r = MagnitudeRange {
            low: -0.3,
            high: 0.3,
            symmetric: true,
        };
        assert_eq!(r.param(0.0, 1.0), -0.3);
        assert_eq!(r.param(1.0, -1.0), -0.3);
        assert!(r.param(0.5, 1.0).abs() < 1e-7);
        // d/dm (sign * (low + m (high - low))) = sign * (high - low)
        assert!((r.dparam_dm(-1.0) + 0.6).abs() < 1e-6);
        let s = MagnitudeRange {
            low: 0.1,
            high: 1.9,
            symmetric: false,
        };
        assert!((s.param(0.5, -1.0) - 1.0).abs() < 1e-6);
        assert!((s.param_f64(0.5, -1.0) - 1.0).abs() < 1e-6);
    }
}
