//! Fused BatchNorm(+ReLU): agreement with the plain-candle reference (values, running
//! statistics, gradients) in train and eval mode, and finite differences of the definition.

use candle::{DType, Device, Tensor, Var};
use dada_models::{batch_norm, batch_norm_train_reference, BatchNorm, ModelParams};

use crate::common::{finite_diff, rand_tensor, rel_err, rel_err_slices};

/// A BatchNorm over `c` channels with seeded random weight and bias, and its parameter set.
fn random_bn(c: usize, seed: u64) -> (BatchNorm, ModelParams) {
    let params = ModelParams::new(0, &Device::Cpu);
    let bn = batch_norm(c, params.var_builder().pp("bn")).unwrap();
    for (name, var) in params.named_trainable_vars() {
        let v = rand_tensor(var.dims(), seed + name.len() as u64);
        // weight in [0.5, 1.5), bias in [-1, 1)
        let v = if name.ends_with("weight") { v.affine(0.5, 1.0).unwrap() } else { v };
        var.set(&v).unwrap();
    }
    (bn, params)
}

fn trainable(params: &ModelParams) -> Vec<Var> {
    params.trainable_vars()
}

#[test]
fn fused_matches_reference_in_train_and_eval() {
    for relu in [false, true] {
        for train in [true, false] {
            let (bn_fast, p_fast) = random_bn(6, 3);
            let (bn_ref, p_ref) = random_bn(6, 3);
            // shift the input so the mean is far from zero
            let x = rand_tensor(&[5, 6, 7, 7], 11).affine(3.0, 2.0).unwrap();
            let x_fast = Var::from_tensor(&x).unwrap();
            let x_ref = Var::from_tensor(&x).unwrap();
            // one training step first so eval uses non-trivial running statistics
            bn_fast.forward_relu_t(&x, true).unwrap();
            bn_ref.forward_reference_t(&x, true, true).unwrap();
            let y_fast = if relu { bn_fast.forward_relu_t(x_fast.as_tensor(), train) } else { bn_fast.forward_t(x_fast.as_tensor(), train) }.unwrap();
            let y_ref = bn_ref.forward_reference_t(x_ref.as_tensor(), train, relu).unwrap();
            let what = format!("relu {relu} train {train}");
            assert!(rel_err(&y_fast, &y_ref) < 1e-5, "{what}: forward {}", rel_err(&y_fast, &y_ref));
            assert!(rel_err(&bn_fast.running_mean(), &bn_ref.running_mean()) < 1e-5, "{what}: running mean");
            assert!(rel_err(&bn_fast.running_var(), &bn_ref.running_var()) < 1e-5, "{what}: running var");
            let r = rand_tensor(y_ref.dims(), 12);
            let g_fast = (y_fast * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g_ref = (y_ref * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let e = rel_err(g_fast.get(x_fast.as_tensor()).unwrap(), g_ref.get(x_ref.as_tensor()).unwrap());
            assert!(e < 1e-4, "{what}: input gradient {e}");
            for (vf, vr) in trainable(&p_fast).iter().zip(trainable(&p_ref).iter()) {
                let e = rel_err(g_fast.get(vf.as_tensor()).unwrap(), g_ref.get(vr.as_tensor()).unwrap());
                assert!(e < 1e-4, "{what}: parameter gradient {e}");
            }
        }
    }
}

#[test]
fn running_statistics_follow_pytorch() {
    let (bn, _) = random_bn(3, 5);
    let x = (rand_tensor(&[4, 3, 5, 5], 6) + 0.7).unwrap();
    bn.forward_t(&x, true).unwrap();
    // running_mean = 0.9 * 0 + 0.1 * mean; running_var = 0.9 * 1 + 0.1 * unbiased var
    let n = 4.0 * 25.0;
    let mean = x.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
    let var = x.broadcast_sub(&mean).unwrap().sqr().unwrap().sum_keepdim(0).unwrap().sum_keepdim(2).unwrap().sum_keepdim(3).unwrap();
    let expected_mean = (mean.flatten_all().unwrap() * 0.1).unwrap();
    let expected_var = var.flatten_all().unwrap().affine(0.1 / (n - 1.0), 0.9).unwrap();
    assert!(rel_err(&bn.running_mean(), &expected_mean) < 1e-5);
    assert!(rel_err(&bn.running_var(), &expected_var) < 1e-5);
}

#[test]
fn fused_gradients_match_finite_differences_of_the_definition() {
    // The fused kernel's analytic gradients (f32) against central differences of the f64
    // reference definition y = relu(gamma (x - mean) / sqrt(var + eps) + beta).
    let (b, c, h) = (3, 2, 3);
    let (bn, params) = random_bn(c, 21);
    let x = Var::from_tensor(&rand_tensor(&[b, c, h, h], 22)).unwrap();
    let y = bn.forward_relu_t(x.as_tensor(), true).unwrap();
    let r = rand_tensor(y.dims(), 23);
    let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let named = params.named_trainable_vars();
    let gamma = named.iter().find(|(n, _)| n.ends_with("weight")).unwrap().1.clone();
    let beta = named.iter().find(|(n, _)| n.ends_with("bias")).unwrap().1.clone();
    let to64 = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap() };
    let (x0, g0, b0) = (to64(x.as_tensor()), to64(gamma.as_tensor()), to64(beta.as_tensor()));
    let r64 = r.to_dtype(DType::F64).unwrap();
    let dev = Device::Cpu;
    let loss = |xv: &[f64], gv: &[f64], bv: &[f64]| -> f64 {
        let xt = Tensor::from_slice(xv, (b, c, h, h), &dev).unwrap();
        let gt = Tensor::from_slice(gv, c, &dev).unwrap();
        let bt = Tensor::from_slice(bv, c, &dev).unwrap();
        let (y, _, _) = batch_norm_train_reference(&xt, &gt, &bt, 1e-5, true).unwrap();
        (y * &r64).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
    };
    let checks = [
        ("input", to64(grads.get(x.as_tensor()).unwrap()), finite_diff(&x0, 1e-5, |v| loss(v, &g0, &b0))),
        ("weight", to64(grads.get(gamma.as_tensor()).unwrap()), finite_diff(&g0, 1e-5, |v| loss(&x0, v, &b0))),
        ("bias", to64(grads.get(beta.as_tensor()).unwrap()), finite_diff(&b0, 1e-5, |v| loss(&x0, &g0, v))),
    ];
    for (name, analytic, numeric) in checks {
        let e = rel_err_slices(&analytic, &numeric);
        assert!(e < 1e-3, "{name}: rel err {e}");
    }
}
