//! Small helpers shared by the CPU kernels: contiguous f32 views and raw-pointer wrappers.

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
