//! Peak memory of a search or training run, estimated from the model, batch and image size
//! before the run starts, and the memory available to it.
//!
//! The estimate is what the run adds to the process once its dataset is loaded:
//! `FIXED + 4 (PARAM_COPIES * params + batch * per_image)` bytes, where `per_image` is
//! `ACTIVATION_COPIES` times the elements of every convolution's output, plus the largest
//! im2col buffer, plus (for a search) the augmentation mixture's per-op images. The constants
//! are fitted to peaks measured with `/usr/bin/time -v` (docs/performance.md, "Memory").
use std::path::Path;

use dada_models::shapes::conv_shapes;
use dada_models::ModelKind;

/// Bytes the run adds beyond its tensors (allocator slack, thread stacks, figures).
pub const FIXED: u64 = 160 << 20;
/// Copies of the parameters a run holds: weights, gradients, momentum, and (search) the
/// unrolled and finite-difference copies.
pub const PARAM_COPIES: [u64; 2] = [4, 9];
/// Activation elements kept per convolution output element (conv output, BatchNorm output,
/// ReLU output, their gradients at the peak of the backward pass).
pub const ACTIVATION_COPIES: u64 = 5;
/// Copies of one input image a search's augmentation keeps (the 15 op outputs of the mixture
/// and their gradients).
pub const AUGMENT_COPIES: u64 = 40;

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
    /// Activations of one batch.
    pub activations: u64,
}

/// Estimates the peak memory a run adds to the process.
pub fn estimate(kind: ModelKind, n_classes: usize, (c, h, w): (usize, usize, usize), batch: usize, run: RunKind) -> Estimate {
    let convs = conv_shapes(kind, h, w);
    let features: u64 = convs.iter().map(|s| s.output_elems()).sum();
    let im2col = convs.iter().map(|s| s.im2col_elems()).max().unwrap_or(0);
    let last = convs.last().map(|s| s.c_out).unwrap_or(0) as u64;
    let n_params: u64 = convs.iter().map(|s| s.weights()).sum::<u64>() + last * n_classes as u64;
    let image = (c * h * w) as u64;
    let (copies, per_image) = match run {
        RunKind::Train => (PARAM_COPIES[0], ACTIVATION_COPIES * features + im2col + 4 * image),
        RunKind::Search => (PARAM_COPIES[1], ACTIVATION_COPIES * features + im2col + AUGMENT_COPIES * image),
    };
    let params = 4 * copies * n_params;
    let activations = 4u64.saturating_mul(per_image).saturating_mul(batch as u64);
    Estimate { bytes: FIXED.saturating_add(params).saturating_add(activations), params, activations }
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
        assert!(e(256) > e(128) && e(128) > e(1));
        let big = estimate(ModelKind::Wrn40_2, 10, (3, 64, 64), 128, RunKind::Train).bytes;
        assert!(big > e(128));
        assert!(estimate(ModelKind::Wrn40_2, 10, (3, 32, 32), 128, RunKind::Search).bytes > e(128));
        let limit = e(100);
        assert_eq!(largest_batch(limit, 1000, e), 100);
        assert_eq!(largest_batch(0, 1000, e), 0);
        // A million images is a terabyte-scale estimate, not an overflow.
        assert!(e(1_000_000) > 1 << 40);
        assert!(available().is_some());
    }
}
