//! Allocator tuning: keep freed activation buffers in the process instead of returning them to
//! the kernel (and faulting fresh zeroed pages in) on every training step.

use std::sync::Once;

static TUNE: Once = Once::new();

/// Raises glibc's mmap threshold to its maximum (32 MiB) so activation buffers come from the
/// heap, and disables heap trimming so freed memory is kept for the next step (a training step
/// of WRN-40-2 at batch 128 peaks above 1 GiB and would otherwise be handed back every step). Process-wide; runs once; a no-op off glibc.
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
    // SAFETY: mallopt only changes allocator tunables; both values are within glibc's limits
    // (-1 as the trim threshold means "never trim").
    unsafe {
        let mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
        let trim_ok = mallopt(M_TRIM_THRESHOLD, -1) == 1;
        mmap_ok && trim_ok
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune() -> bool {
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn allocator_accepts_the_settings() {
        assert!(super::retain_freed_memory());
    }
}
