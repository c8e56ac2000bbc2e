//! The AVX-512 copies of the CPU kernels (BatchNorm, the Winograd transforms) against the copies
//! of the build's own target: the same arithmetic in the same order, so bit-identical values
//! and gradients. Skips (with a message) on a CPU without AVX-512.

use candle::{Tensor, Var};
use dada_models::{avx512_active, batch_norm, conv2d_fast, set_avx512, with_conv_algorithm, ConvAlgorithm, ModelParams};

use crate::common::rand_tensor;

/// Everything one BatchNorm and one Winograd convolution of each tile size compute: outputs,
/// running statistics, and every gradient.
fn kernels_outputs() -> Vec<Vec<f32>> {
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut out = Vec::new();
    // 7x7 and 32x32 planes: a remainder after the 16-lane chunks, and none
    for (h, relu, train) in [(7, true, true), (32, false, true), (32, true, false)] {
        let params = ModelParams::new(0, &candle::Device::Cpu);
        let bn = batch_norm(5, params.var_builder().pp("bn")).unwrap();
        let x = Var::from_tensor(&rand_tensor(&[3, 5, h, h], 21).affine(2.0, 1.0).unwrap()).unwrap();
        bn.forward_relu_t(x.as_tensor(), true).unwrap();
        let y = if relu { bn.forward_relu_t(x.as_tensor(), train) } else { bn.forward_t(x.as_tensor(), train) }.unwrap();
        let g = (&y * rand_tensor(y.dims(), 22)).unwrap().sum_all().unwrap().backward().unwrap();
        out.extend([flat(&y), flat(g.get(x.as_tensor()).unwrap()), flat(&bn.running_mean()), flat(&bn.running_var())]);
        for v in params.trainable_vars() {
            out.push(flat(g.get(v.as_tensor()).unwrap()));
        }
    }
    for algorithm in [ConvAlgorithm::WinogradF2, ConvAlgorithm::WinogradF4] {
        // 13x13 leaves partial tiles and a partial lane vector; 32x32 is a WRN shape
        for (c, h) in [(16, 13), (16, 32)] {
            let x = Var::from_tensor(&rand_tensor(&[2, c, h, h], 23)).unwrap();
            let w = Var::from_tensor(&rand_tensor(&[c, c, 3, 3], 24)).unwrap();
            let (y, g) = with_conv_algorithm(algorithm, || {
                let y = conv2d_fast(x.as_tensor(), w.as_tensor(), 1, 1).unwrap();
                let g = (&y * rand_tensor(y.dims(), 25)).unwrap().sum_all().unwrap().backward().unwrap();
                (y, g)
            });
            out.extend([flat(&y), flat(g.get(x.as_tensor()).unwrap()), flat(g.get(w.as_tensor()).unwrap())]);
        }
    }
    out
}

#[test]
fn avx512_copies_are_bit_identical_to_the_build_target() {
    if !avx512_active() {
        println!("skipped: this CPU has no AVX-512 (F, BW, CD, DQ, VL), so only one copy of the kernels runs");
        return;
    }
    set_avx512(false);
    let plain = kernels_outputs();
    set_avx512(true);
    let avx512 = kernels_outputs();
    assert_eq!(plain.len(), avx512.len());
    for (i, (a, b)) in plain.iter().zip(&avx512).enumerate() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(a) == bits(b), "output {i}: the AVX-512 copy differs from the build target's");
    }
}
