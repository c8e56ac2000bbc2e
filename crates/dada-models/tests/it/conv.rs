//! The fast convolution agrees with candle's conv2d (values, input and weight gradients) on the
//! WRN shapes, and with finite differences on a tiny case.

use candle::{DType, Var};
use dada_models::{conv2d_add, conv2d_fast, conv2d_reference};

use crate::common::{finite_diff, rand_tensor, rel_err, rel_err_slices};

/// Checks fast vs candle for input (b, c_in, h, w) and a k x k kernel; returns nothing, asserts.
#[allow(clippy::too_many_arguments)]
fn check_against_candle(b: usize, c_in: usize, h: usize, c_out: usize, k: usize, stride: usize, padding: usize, seed: u64) {
    let x = Var::from_tensor(&rand_tensor(&[b, c_in, h, h], seed)).unwrap();
    let w = Var::from_tensor(&rand_tensor(&[c_out, c_in, k, k], seed + 1)).unwrap();
    let y_fast = conv2d_fast(x.as_tensor(), w.as_tensor(), stride, padding).unwrap();
    let y_ref = conv2d_reference(x.as_tensor(), w.as_tensor(), stride, padding).unwrap();
    let what = format!("b{b} c_in{c_in} h{h} c_out{c_out} k{k} s{stride} p{padding}");
    assert!(rel_err(&y_fast, &y_ref) < 1e-4, "{what}: forward {}", rel_err(&y_fast, &y_ref));
    // loss = sum(y * r): dL/dy = r
    let r = rand_tensor(y_ref.dims(), seed + 2);
    let g_fast = (y_fast * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = (y_ref * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, v) in [("input", &x), ("weight", &w)] {
        let a = g_fast.get(v.as_tensor()).unwrap();
        let e = g_ref.get(v.as_tensor()).unwrap();
        let err = rel_err(a, e);
        assert!(err < 1e-4, "{what}: {name} gradient rel err {err}");
    }
}

#[test]
fn agrees_with_candle_on_wrn_shapes() {
    // (batch, c_in, h, c_out, k, stride, padding): stem, each group's first and inner 3x3
    // convolutions, and the 1x1 shortcuts with stride 1 and 2.
    let cases = [
        (2, 3, 32, 16, 3, 1, 1),
        (2, 16, 32, 32, 3, 1, 1),
        (2, 32, 32, 32, 3, 1, 1),
        (2, 16, 32, 32, 1, 1, 0),
        (2, 32, 32, 64, 3, 2, 1),
        (2, 32, 32, 64, 1, 2, 0),
        (2, 64, 16, 128, 3, 2, 1),
        (2, 64, 16, 128, 1, 2, 0),
        (2, 128, 8, 128, 3, 1, 1),
    ];
    for (i, &(b, c_in, h, c_out, k, s, p)) in cases.iter().enumerate() {
        check_against_candle(b, c_in, h, c_out, k, s, p, 10 * i as u64 + 1);
    }
}

#[test]
fn agrees_with_candle_on_odd_geometries() {
    // odd sizes, no padding, stride 3, padding 2, a batch larger than the weight-grad chunking
    check_against_candle(3, 5, 7, 4, 3, 1, 0, 100);
    check_against_candle(1, 2, 9, 3, 3, 3, 1, 101);
    check_against_candle(2, 3, 6, 2, 5, 1, 2, 102);
    check_against_candle(11, 4, 5, 6, 3, 2, 1, 103);
    check_against_candle(3, 4, 7, 5, 1, 2, 0, 104);
    // several column tiles (tiles hold 96K floats): strided, and unpadded stride 1
    check_against_candle(1, 64, 40, 8, 3, 2, 1, 105);
    check_against_candle(1, 48, 34, 8, 3, 1, 0, 106);
}

#[test]
fn gradients_match_finite_differences() {
    // stride 2 (input gradient by col2im), stride 1 "same" and "valid" (input gradient as a
    // forward convolution with the flipped kernel)
    for geometry in [(2, 2, 5, 3, 3, 2, 1), (2, 2, 5, 3, 3, 1, 1), (1, 3, 6, 2, 3, 1, 0)] {
        check_finite_differences(geometry);
    }
}

fn check_finite_differences((b, c_in, h, c_out, k, stride, padding): (usize, usize, usize, usize, usize, usize, usize)) {
    // loss(x, w) = sum(conv(x, w) * r) is bilinear, so central differences are exact up to
    // rounding; evaluated in f64 through candle's conv for the perturbed points.
    let x = Var::from_tensor(&rand_tensor(&[b, c_in, h, h], 7)).unwrap();
    let w = Var::from_tensor(&rand_tensor(&[c_out, c_in, k, k], 8)).unwrap();
    let y = conv2d_fast(x.as_tensor(), w.as_tensor(), stride, padding).unwrap();
    let r = rand_tensor(y.dims(), 9);
    let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let r64 = r.to_dtype(DType::F64).unwrap();
    let x64: Vec<f64> = x.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let w64: Vec<f64> = w.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let loss = |xv: &[f64], wv: &[f64]| -> f64 {
        let xt = candle::Tensor::from_slice(xv, (b, c_in, h, h), &candle::Device::Cpu).unwrap();
        let wt = candle::Tensor::from_slice(wv, (c_out, c_in, k, k), &candle::Device::Cpu).unwrap();
        let y = xt.conv2d(&wt, padding, stride, 1, 1).unwrap();
        (y * &r64).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
    };
    let fd_x = finite_diff(&x64, 1e-3, |xv| loss(xv, &w64));
    let fd_w = finite_diff(&w64, 1e-3, |wv| loss(&x64, wv));
    let an_x: Vec<f64> = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let an_w: Vec<f64> = grads.get(w.as_tensor()).unwrap().flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
    let what = format!("b {b} c_in {c_in} h {h} c_out {c_out} k {k} stride {stride} padding {padding}");
    assert!(rel_err_slices(&an_x, &fd_x) < 1e-4, "{what}: input {}", rel_err_slices(&an_x, &fd_x));
    assert!(rel_err_slices(&an_w, &fd_w) < 1e-4, "{what}: weight {}", rel_err_slices(&an_w, &fd_w));
}

#[test]
fn fused_residual_add_agrees_with_candle() {
    // the WRN residual joins: an identity residual after a 3x3 stride-1 convolution, and the
    // output of a stride-2 shortcut (same output shape) after a stride-2 convolution's block
    for (i, &(b, c_in, h, c_out, k, stride, padding)) in
        [(2, 32, 32, 32, 3, 1, 1), (3, 16, 16, 32, 3, 2, 1), (2, 8, 9, 4, 1, 1, 0)].iter().enumerate()
    {
        let seed = 200 + 10 * i as u64;
        let x = Var::from_tensor(&rand_tensor(&[b, c_in, h, h], seed)).unwrap();
        let w = Var::from_tensor(&rand_tensor(&[c_out, c_in, k, k], seed + 1)).unwrap();
        let y_ref = conv2d_reference(x.as_tensor(), w.as_tensor(), stride, padding).unwrap();
        let res = Var::from_tensor(&rand_tensor(y_ref.dims(), seed + 2)).unwrap();
        let y_ref = (y_ref + res.as_tensor()).unwrap();
        let y_fast = conv2d_add(x.as_tensor(), w.as_tensor(), res.as_tensor(), stride, padding).unwrap();
        let what = format!("case {i}");
        assert!(rel_err(&y_fast, &y_ref) < 1e-4, "{what}: forward {}", rel_err(&y_fast, &y_ref));
        let r = rand_tensor(y_ref.dims(), seed + 3);
        let g_fast = (y_fast * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_ref = (y_ref * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("input", &x), ("weight", &w), ("residual", &res)] {
            let err = rel_err(g_fast.get(v.as_tensor()).unwrap(), g_ref.get(v.as_tensor()).unwrap());
            assert!(err < 1e-4, "{what}: {name} gradient rel err {err}");
        }
    }
    let x = rand_tensor(&[1, 3, 8, 8], 1);
    let w = rand_tensor(&[4, 3, 3, 3], 2);
    let err = conv2d_add(&x, &w, &rand_tensor(&[1, 4, 7, 8], 3), 1, 1).unwrap_err().to_string();
    assert!(err.contains("residual must have the output's shape"), "{err}");
}

#[test]
fn rejects_mismatched_channels() {
    let x = rand_tensor(&[1, 3, 8, 8], 1);
    let w = rand_tensor(&[4, 2, 3, 3], 2);
    let err = conv2d_fast(&x, &w, 1, 1).unwrap_err().to_string();
    assert!(err.contains("conv2d"), "{err}");
}

/// Error of each CPU algorithm against the same convolution in f64 (candle's, values and both
/// gradients), on the 3x3 stride-1 shapes of WRN-40-2's three groups: `max |a - b| / max |b|`.
/// The measured errors (printed with `--nocapture`) are in docs/performance.md; the bounds here
/// are about 3x the largest measured.
#[test]
fn every_algorithm_is_accurate_against_f64() {
    use dada_models::{with_conv_algorithm, ConvAlgorithm};
    let bounds = [(ConvAlgorithm::Gemm, 2e-6), (ConvAlgorithm::WinogradF2, 3e-6), (ConvAlgorithm::WinogradF4, 3e-5)];
    for (i, &(c, h)) in [(32usize, 32usize), (64, 16), (128, 8)].iter().enumerate() {
        let seed = 200 + 10 * i as u64;
        // activations after BatchNorm + ReLU are non-negative; He-scaled weights
        let x = rand_tensor(&[2, c, h, h], seed).relu().unwrap();
        let w = (rand_tensor(&[c, c, 3, 3], seed + 1) * (2.0 / (9.0 * c as f64)).sqrt()).unwrap();
        let r = rand_tensor(&[2, c, h, h], seed + 2);
        let (x64, w64) = (Var::from_tensor(&x.to_dtype(DType::F64).unwrap()).unwrap(), Var::from_tensor(&w.to_dtype(DType::F64).unwrap()).unwrap());
        let y64 = conv2d_reference(x64.as_tensor(), w64.as_tensor(), 1, 1).unwrap();
        let g64 = (&y64 * r.to_dtype(DType::F64).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
        for &(algorithm, bound) in &bounds {
            let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
            let (y, g) = with_conv_algorithm(algorithm, || {
                let y = conv2d_fast(xv.as_tensor(), wv.as_tensor(), 1, 1).unwrap();
                let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                (y, g)
            });
            let errs = [
                ("output", rel_err(&y, &y64)),
                ("input gradient", rel_err(g.get(xv.as_tensor()).unwrap(), g64.get(x64.as_tensor()).unwrap())),
                ("weight gradient", rel_err(g.get(wv.as_tensor()).unwrap(), g64.get(w64.as_tensor()).unwrap())),
            ];
            println!("{algorithm:?} c {c} {h}x{h}: {errs:?}");
            for (what, err) in errs {
                assert!(err < bound, "{algorithm:?} c {c} {h}x{h}: {what} error {err} against f64, bound {bound}");
            }
        }
    }
}
