//! Peak memory of a search or training run, estimated from the model, batch and image size
//! before the run starts, and the memory available to it.
//!
//! The estimate is what the run adds to the process once its dataset is loaded (see
//! [`estimate`]). Its constants are fitted to peaks measured by `tools/memory/measure.sh`
//! (docs/performance.md, "Memory"), where its error is stated.
use std::path::Path;

use dada_models::shapes::conv_shapes;
use dada_models::ModelKind;

/// Bytes the run adds beyond its tensors (allocator slack, thread stacks, figures).
pub const FIXED: u64 = 120 << 20;
/// Copies of the parameters a run holds: training (weights, gradients, momentum, a spare) and
/// search (also the unrolled and finite-difference copies).
pub const PARAM_COPIES: [f64; 2] = [4.0, 9.0];
/// Images per chunk of the test evaluation: training and search.
pub const EVAL_BATCH: [usize; 2] = [500, 256];
/// Copies of one input image a search's augmentation keeps (the mixture's op outputs and their
/// gradients).
pub const AUGMENT_COPIES: f64 = 40.0;

/// Convolution-output copies alive at the peak, fitted per architecture to measured peaks:
/// `(training step, search step, evaluation)`. Pre-activation WRN blocks fuse BatchNorm and ReLU
/// and keep fewer tensors than ResNet-18's post-activation blocks.
pub fn activation_copies(kind: ModelKind) -> (f64, f64, f64) {
    match kind {
        ModelKind::ResNet18 => (3.0, 6.0, 2.7),
        _ => (2.0, 5.3, 1.9),
    }
}

/// A run whose memory is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Training with a fixed policy.
    Train,
    /// The bi-level search (training and validation batches, unrolled step).
    Search,
}

/// The estimated peak of a run, in bytes, with its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Total bytes.
    pub bytes: u64,
    /// Parameters and their copies.
    pub params: u64,
    /// Activations at the peak (a training or search step, or a chunk of the evaluation).
    pub activations: u64,
}

/// Estimates the peak memory a run adds to the process once its dataset is loaded:
/// `FIXED + params + max(step, evaluation)`, where a step keeps `copies x` every convolution's
/// output plus the largest im2col buffer for each image of the batch (and, in a search, the
/// augmentation's images), and the evaluation keeps its own copies for a chunk of
/// [`EVAL_BATCH`] images.
pub fn estimate(kind: ModelKind, n_classes: usize, (c, h, w): (usize, usize, usize), batch: usize, run: RunKind) -> Estimate {
    let convs = conv_shapes(kind, h, w);
    let features = convs.iter().map(|s| s.output_elems()).sum::<u64>() as f64;
    let im2col = convs.iter().map(|s| s.im2col_elems()).max().unwrap_or(0) as f64;
    let last = convs.last().map(|s| s.c_out).unwrap_or(0) as u64;
    let n_params = (convs.iter().map(|s| s.weights()).sum::<u64>() + last * n_classes as u64) as f64;
    let image = (c * h * w) as f64;
    let (train, search, eval) = activation_copies(kind);
    let k = match run {
        RunKind::Train => 0,
        RunKind::Search => 1,
    };
    let per_image = match run {
        RunKind::Train => train * features + im2col + image,
        RunKind::Search => search * features + im2col + AUGMENT_COPIES * image,
    };
    let step = 4.0 * per_image * batch as f64;
    let evaluation = 4.0 * eval * features * EVAL_BATCH[k] as f64;
    let params = 4.0 * PARAM_COPIES[k] * n_params;
    let activations = step.max(evaluation);
    let clamp = |x: f64| if x >= u64::MAX as f64 { u64::MAX } else { x as u64 };
    Estimate {
        bytes: FIXED.saturating_add(clamp(params)).saturating_add(clamp(activations)),
        params: clamp(params),
        activations: clamp(activations),
    }
}

/// The largest batch in `1..=batch` whose estimate fits in `limit` bytes (0 if none does).
pub fn largest_batch(limit: u64, batch: usize, est: impl Fn(usize) -> u64) -> usize {
    let (mut lo, mut hi) = (0usize, batch);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if est(mid) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `/proc` style `key: N kB` line's value in bytes.
fn proc_kb(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Resident memory of this process now, in bytes.
pub fn resident() -> Option<u64> {
    proc_kb("/proc/self/status", "VmRSS:")
}

/// Memory this process may still use, in bytes, and where that figure came from: the smaller
/// of the cgroup's room (v2 `memory.max - memory.current`, or v1) and `MemAvailable`.
pub fn available() -> Option<(u64, String)> {
    let mut best: Option<(u64, String)> = proc_kb("/proc/meminfo", "MemAvailable:").map(|b| (b, "MemAvailable".to_string()));
    let cgroups = [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "the cgroup limit"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes", "the cgroup limit"),
    ];
    for (max, current, what) in cgroups {
        if let (Some(limit), Some(used)) = (read_u64(Path::new(max)), read_u64(Path::new(current))) {
            let room = limit.saturating_sub(used);
            if best.as_ref().is_none_or(|(b, _)| room < *b) {
                best = Some((room, what.to_string()));
            }
        }
    }
    best
}

/// `1.23 GiB`.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_batch_and_size_and_the_largest_batch_fits() {
        let e = |b| estimate(ModelKind::Wrn40_2, 10, (3, 32, 32), b, RunKind::Train).bytes;
        // Up to about the evaluation chunk the evaluation is the peak; above it, the step.
        assert!(e(2048) > e(1024) && e(1024) > e(128) && e(128) >= e(1));
        assert_eq!(e(128), e(1));
        let big = estimate(ModelKind::Wrn40_2, 10, (3, 64, 64), 128, RunKind::Train).bytes;
        assert!(big > e(128));
        assert!(estimate(ModelKind::Wrn40_2, 10, (3, 32, 32), 1024, RunKind::Search).bytes > e(1024));
        let limit = e(1000);
        assert_eq!(largest_batch(limit, 5000, e), 1000);
        assert_eq!(largest_batch(0, 1000, e), 0);
        // A million images is a terabyte-scale estimate, not an overflow.
        assert!(e(1_000_000) > 1 << 40);
        assert!(available().is_some());
    }
}
