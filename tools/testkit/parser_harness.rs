//! The harness of the parser property tests of dada-policy and dada-train, included into each
//! test binary with `#[path]` (`mod harness;` in their `tests/it/properties.rs`): the runner
//! configuration, and an allocator that records the largest allocation of the watched thread,
//! so a parse can be checked to be quick and to allocate sanely.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed, TestCaseError};

/// Longest error message accepted (characters): messages must cut what they echo of the input.
pub const MAX_MESSAGE: usize = 2_000;
/// Largest single allocation a parse of these (at most ~100 KB) inputs may ask for.
pub const MAX_ALLOC: usize = 64 << 20;

/// The runner configuration: a fixed seed and no failure persistence, so runs are repeatable
/// and nothing is written next to the sources.
pub fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

/// Records the largest allocation made by the watched thread (this test's), so a parser that
/// sizes a buffer from a declared length is caught. Other threads and tests pay one
/// thread-local read per allocation.
pub mod alloc_watch {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static WATCHING: Cell<bool> = const { Cell::new(false) };
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    struct Watch;

    fn note(size: usize) {
        if WATCHING.try_with(Cell::get).unwrap_or(false) {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    }

    // SAFETY: every call is forwarded to `System` unchanged; `note` only touches const-initialised
    // thread-locals without destructors, which never allocate.
    unsafe impl GlobalAlloc for Watch {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static WATCH: Watch = Watch;

    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            WATCHING.with(|w| w.set(false));
        }
    }

    /// Runs `f` and returns its result with the largest single allocation it made (bytes).
    pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
        LARGEST.with(|l| l.set(0));
        WATCHING.with(|w| w.set(true));
        let reset = Reset;
        let out = f();
        drop(reset);
        (out, LARGEST.with(Cell::get))
    }
}

/// Runs one parse, checking that it takes less than `max_time` and allocates sanely.
pub fn watched<T>(what: &str, max_time: Duration, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let start = Instant::now();
    let (out, largest) = alloc_watch::largest_allocation(f);
    let took = start.elapsed();
    prop_assert!(took < max_time, "{what} took {took:?}");
    prop_assert!(largest <= MAX_ALLOC, "{what} asked for an allocation of {largest} bytes");
    Ok(out)
}
