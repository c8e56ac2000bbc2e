//! Allocator tuning: keep freed activation buffers in the process instead of returning them to
//! the kernel (and faulting fresh zeroed pages in) on every training step.

use std::sync::Once;

static TUNE: Once = Once::new();

/// Raises glibc's mmap and trim thresholds (32 MiB / 1 GiB) so buffers up to 32 MiB come from
/// the heap and freed memory is kept for reuse. Process-wide; runs once; a no-op off glibc.
/// Returns whether the allocator accepted the settings (on the first call; later calls `true`).
pub fn retain_freed_memory() -> bool {
    let mut ok = true;
    TUNE.call_once(|| ok = tune());
    ok
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune() -> bool {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only changes allocator tunables; both values are within glibc's limits.
    unsafe { mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune() -> bool {
    true
}
