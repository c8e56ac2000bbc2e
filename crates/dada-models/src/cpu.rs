//! Small helpers shared by the CPU kernels: contiguous f32 views, uninitialised buffers, and
//! the run-time choice of an AVX-512 build of the hot loops ([`multiversion!`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use candle::backend::BackendStorage;
use candle::{CpuStorage, Layout, Result, Storage, Tensor};

/// The contiguous f32 data of a CPU storage, or an error naming `op`.
pub(crate) fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(data) => data.as_slice(),
        other => candle::bail!("{op}: expected f32, got {:?}", other.dtype()),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle::bail!("{op}: expected a contiguous tensor, got strides {:?}", layout.stride()),
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor (made contiguous first if needed).
pub(crate) fn with_f32<R>(tensor: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(f32_slice(cpu, layout, op)?)),
        _ => candle::bail!("{op}: expected a CPU tensor"),
    }
}

/// A vector of `n` f32 whose contents are unspecified; every caller writes all elements before
/// any is read (this skips zeroing multi-megabyte activation buffers).
#[allow(clippy::uninit_vec)]
pub(crate) fn uninit_vec(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: f32 has no invalid bit patterns and callers overwrite every element before reading.
    unsafe { v.set_len(n) };
    v
}

static AVX512_ALLOWED: AtomicBool = AtomicBool::new(true);

/// Allows (the default) or forbids the AVX-512 copies of this crate's CPU kernels.
///
/// The workspace builds for x86-64-v3 (AVX2); the hot loops of BatchNorm and of the Winograd
/// transforms are also compiled for AVX-512 (x86-64-v4: AVX-512 F, BW, CD, DQ, VL) and that copy
/// runs when the CPU has those features. Both copies do the same arithmetic in the same order,
/// so results are bit-identical; this switch exists to measure one against the other. It is
/// process-wide.
pub fn set_avx512(allowed: bool) {
    AVX512_ALLOWED.store(allowed, Ordering::Relaxed);
}

/// Whether the AVX-512 copies of the CPU kernels run: the CPU has AVX-512 F, BW, CD, DQ and VL,
/// and [`set_avx512`] has not forbidden them.
pub fn avx512_active() -> bool {
    AVX512_ALLOWED.load(Ordering::Relaxed) && avx512_detected()
}

fn avx512_detected() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512cd")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Evaluates `$body` from a copy compiled for AVX-512 when [`avx512_active`], else from the
/// copy of the build's own target.
///
/// The body is written once and expanded twice; its AVX-512 copy sits in a closure called only
/// from a `#[target_feature]` function, which the compiler inlines there. Functions the body
/// calls are compiled into that copy only if they are inlined too: mark the hot ones
/// `#[inline(always)]`. The body must not `return` or use `?`.
macro_rules! multiversion {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
            unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if $crate::cpu::avx512_active() {
                let body = || $body;
                // SAFETY: avx512_active() checked at run time that the CPU has every feature
                // the function enables.
                unsafe { avx512(body) }
            } else {
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}
pub(crate) use multiversion;
