//! Temperature schedules for the relaxations: constant, linear, exponential, cosine.
use serde::{Deserialize, Serialize};

/// A value annealed from `start` (step 0) to `end` (step `total`).
///
/// The default is the datarax guide's: cosine from 1.0 to 0.1 over the search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// Always `value` (the official DADA code: 0.5).
    Constant(f64),
    /// `start + (end - start) * t`, `t = step / total`.
    Linear {
        /// Value at step 0.
        start: f64,
        /// Value at the last step.
        end: f64,
    },
    /// `start * (end / start)^t` (geometric); `start` and `end` must be > 0.
    Exponential {
        /// Value at step 0.
        start: f64,
        /// Value at the last step.
        end: f64,
    },
    /// `end + (start - end) * (1 + cos(pi t)) / 2`.
    Cosine {
        /// Value at step 0.
        start: f64,
        /// Value at the last step.
        end: f64,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Cosine { start: 1.0, end: 0.1 }
    }
}

impl Schedule {
    /// The value at `step` of `total` (steps past `total` keep the final value; `total == 0`
    /// gives the final value).
    pub fn value(&self, step: usize, total: usize) -> f64 {
        let t = if total == 0 { 1.0 } else { (step as f64 / total as f64).clamp(0.0, 1.0) };
        match *self {
            Schedule::Constant(v) => v,
            Schedule::Linear { start, end } => start + (end - start) * t,
            Schedule::Exponential { start, end } => start * (end / start).powf(t),
            Schedule::Cosine { start, end } => end + (start - end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        }
    }

    /// Parses `constant:V`, `linear:A:B`, `exponential:A:B` (or `exp:A:B`), `cosine:A:B`.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |i: usize| parts.get(i).and_then(|p| p.trim().parse::<f64>().ok());
        match (parts[0].trim(), parts.len()) {
            ("constant", 2) => num(1).map(Schedule::Constant),
            ("linear", 3) => Some(Schedule::Linear { start: num(1)?, end: num(2)? }),
            ("exponential" | "exp", 3) => {
                let (start, end) = (num(1)?, num(2)?);
                (start > 0.0 && end > 0.0).then_some(Schedule::Exponential { start, end })
            }
            ("cosine", 3) => Some(Schedule::Cosine { start: num(1)?, end: num(2)? }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_hit_their_ends_and_midpoints() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        for s in [
            Schedule::Linear { start: 1.0, end: 0.1 },
            Schedule::Exponential { start: 1.0, end: 0.1 },
            Schedule::Cosine { start: 1.0, end: 0.1 },
        ] {
            assert!(close(s.value(0, 10), 1.0));
            assert!(close(s.value(10, 10), 0.1));
            assert!(close(s.value(50, 10), 0.1));
            // monotone decreasing
            assert!((0..10).all(|i| s.value(i + 1, 10) < s.value(i, 10)));
        }
        assert!(close(Schedule::Linear { start: 1.0, end: 0.1 }.value(5, 10), 0.55));
        // geometric mean at the midpoint: sqrt(1.0 * 0.1)
        assert!(close(Schedule::Exponential { start: 1.0, end: 0.1 }.value(5, 10), 0.1f64.sqrt()));
        // cos(pi/2) = 0: the arithmetic mean
        assert!(close(Schedule::default().value(5, 10), 0.55));
        assert!(close(Schedule::Constant(0.5).value(3, 10), 0.5));
        assert_eq!(Schedule::parse("cosine:1:0.1"), Some(Schedule::default()));
        assert_eq!(Schedule::parse("constant:0.5"), Some(Schedule::Constant(0.5)));
        assert_eq!(Schedule::parse("exp:0:1"), None);
        assert_eq!(Schedule::parse("warp:1"), None);
    }
}
