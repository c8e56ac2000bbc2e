//! Probe: single-thread gemm throughput for the WRN-40-2 convolution shapes (development aid).
use std::time::Instant;

fn main() {
    // (m, n, k, label): forward y = W (c_out x K) * col (K x N)
    let shapes = [
        (32, 1024, 288, "fwd g1"), (32, 1024, 288, "fwd g1 again"), (1024, 32, 288, "fwd g1 T"), (32, 4096, 288, "fwd g1 x4"), (64, 256, 576, "fwd g2"), (128, 64, 1152, "fwd g3"), (128, 512, 1152, "fwd g3 x8"),
        (288, 1024, 32, "dcol g1"), (1152, 64, 128, "dcol g3"), (1152, 512, 128, "dcol g3 x8"),
        (32, 288, 1024, "dW g1"), (128, 1152, 64, "dW g3"), (128, 1152, 512, "dW g3 x8"),
    ];
    for (m, n, k, label) in shapes {
        let a = vec![1.0f32; m * k];
        let b = vec![1.0f32; k * n];
        let mut c = vec![0f32; m * n];
        let reps = (2e9 / (2.0 * (m * n * k) as f64)) as usize + 1;
        let t = Instant::now();
        for _ in 0..reps {
            unsafe {
                gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), 1, k as isize, b.as_ptr(), 1, n as isize,
                    0.0, 1.0, false, false, false, gemm::Parallelism::None);
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!("{label:12} m {m:5} n {n:5} k {k:5}: {:.1} GFLOP/s", 2.0 * (m * n * k * reps) as f64 / s / 1e9);
    }
}
