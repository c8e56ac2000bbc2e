//! Benchmarks live in `bench_main.rs`; this library is empty.
