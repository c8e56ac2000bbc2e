//! SgdMomentum against PyTorch's update rule, gradient clipping, and short training runs on a
//! synthetic learnable dataset where the loss falls.

use candle::{DType, Device, Tensor, Var};
use dada_models::{build_model, clip_grad_norm, Classifier, ModelKind, ModelParams, SgdConfig, SgdMomentum};

use crate::common::rand_tensor;

#[test]
fn sgd_momentum_follows_pytorch_update_rule() {
    for nesterov in [false, true] {
        let cfg = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov };
        let a = [1.0f32, -2.0, 0.5];
        let w0 = [0.3f32, 0.1, -0.4];
        let w = Var::from_slice(&w0, 3, &Device::Cpu).unwrap();
        let a_t = Tensor::from_slice(&a, 3, &Device::Cpu).unwrap();
        let mut opt = SgdMomentum::new(vec![w.clone()], cfg.clone()).unwrap();
        // independent scalar replay of torch.optim.SGD; loss = sum(a w + w^2 / 2), grad = a + w
        let mut we: Vec<f64> = w0.iter().map(|&v| v as f64).collect();
        let mut buf = [0f64; 3];
        for step in 0..3 {
            let loss = ((w.as_tensor() * &a_t).unwrap() + (w.as_tensor().sqr().unwrap() * 0.5).unwrap()).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            for i in 0..3 {
                let d = a[i] as f64 + we[i] + cfg.weight_decay * we[i];
                buf[i] = if step == 0 { d } else { cfg.momentum * buf[i] + d };
                let upd = if nesterov { d + cfg.momentum * buf[i] } else { buf[i] };
                we[i] -= cfg.lr * upd;
            }
            let got: Vec<f32> = w.as_tensor().to_vec1().unwrap();
            for i in 0..3 {
                assert!((got[i] as f64 - we[i]).abs() < 1e-6, "nesterov {nesterov} step {step}: {got:?} vs {we:?}");
            }
            let b: Vec<f32> = opt.momentum_buffer(&w).unwrap().to_vec1().unwrap();
            for i in 0..3 {
                assert!((b[i] as f64 - buf[i]).abs() < 1e-6);
            }
        }
        opt.set_lr(0.0);
        assert_eq!(opt.lr(), 0.0);
    }
}

#[test]
fn clip_grad_norm_scales_to_max_norm() {
    let u = Var::from_slice(&[3.0f32, 0.0], 2, &Device::Cpu).unwrap();
    let v = Var::from_slice(&[0.0f32, 4.0], 2, &Device::Cpu).unwrap();
    // loss = (u.u + v.v) / 2: grads are u and v, global norm 5
    let loss = ((u.as_tensor().sqr().unwrap().sum_all().unwrap() + v.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap() * 0.5).unwrap();
    let mut grads = loss.backward().unwrap();
    let vars = [u.clone(), v.clone()];
    let norm = clip_grad_norm(&vars, &mut grads, 1.0).unwrap();
    assert!((norm - 5.0).abs() < 1e-6);
    let gu: Vec<f32> = grads.get(u.as_tensor()).unwrap().to_vec1().unwrap();
    let gv: Vec<f32> = grads.get(v.as_tensor()).unwrap().to_vec1().unwrap();
    let clipped = ((gu[0] * gu[0] + gv[1] * gv[1]) as f64).sqrt();
    assert!((clipped - 1.0).abs() < 1e-5, "{clipped}");
    // below the limit nothing changes
    let norm_again = clip_grad_norm(&vars, &mut grads, 10.0).unwrap();
    assert!((norm_again - 1.0).abs() < 1e-5);
}

/// A synthetic, learnable 3-class set: noise plus a positive offset on the class's channel.
fn synthetic_batch(b: usize, h: usize, seed: u64) -> (Tensor, Tensor) {
    let labels: Vec<u32> = (0..b as u32).map(|i| i % 3).collect();
    let mut offsets = vec![0f32; b * 3];
    for (i, &l) in labels.iter().enumerate() {
        offsets[i * 3 + l as usize] = 0.8;
    }
    let offsets = Tensor::from_vec(offsets, (b, 3, 1, 1), &Device::Cpu).unwrap();
    let images = rand_tensor(&[b, 3, h, h], seed).broadcast_add(&offsets).unwrap();
    (images, Tensor::from_vec(labels, b, &Device::Cpu).unwrap())
}

fn train_steps(model: &dyn Classifier, params: &ModelParams, steps: usize, images: &Tensor, labels: &Tensor, lr: f64) -> (f32, f32) {
    let mut opt = SgdMomentum::new(params.trainable_vars(), SgdConfig { lr, momentum: 0.9, weight_decay: 5e-4, nesterov: true }).unwrap();
    let loss_of = |train: bool| candle_nn::loss::cross_entropy(&model.forward_t(images, train).unwrap(), labels).unwrap();
    let first = loss_of(true).to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap();
    for _ in 0..steps {
        let loss = loss_of(true);
        let mut grads = loss.backward().unwrap();
        clip_grad_norm(opt.vars(), &mut grads, 5.0).unwrap();
        opt.step(&grads).unwrap();
    }
    let last = loss_of(true).to_scalar::<f32>().unwrap();
    (first, last)
}

#[test]
fn tiny_cnn_loss_falls_on_synthetic_data() {
    let (images, labels) = synthetic_batch(48, 16, 1);
    let params = ModelParams::new(3, &Device::Cpu);
    let model = build_model(ModelKind::TinyCnn, 3, &params).unwrap();
    let (first, last) = train_steps(model.as_ref(), &params, 15, &images, &labels, 0.05);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // and the model classifies held-out samples of the same distribution in eval mode
    let (test_images, test_labels) = synthetic_batch(30, 16, 2);
    let pred = model.forward_t(&test_images, false).unwrap().argmax(1).unwrap();
    let correct = pred.eq(&test_labels).unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(correct >= 24.0, "{correct} / 30 correct");
}

#[test]
fn wrn_40_2_loss_falls_in_a_few_steps() {
    let (images, labels) = synthetic_batch(12, 16, 4);
    let params = ModelParams::new(5, &Device::Cpu);
    let model = build_model(ModelKind::Wrn40_2, 3, &params).unwrap();
    let (first, last) = train_steps(model.as_ref(), &params, 4, &images, &labels, 0.05);
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}
