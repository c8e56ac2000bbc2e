//! A loss on policy-augmented images sends gradients to all three parameter groups, for both
//! search spaces and both estimators.
use candle::{Device, Result, Tensor, Var};
use dada_ops::OpSet;
use dada_policy::{Estimator, PaperConfig, PaperPolicy, Policy, Relax, TutorialConfig, TutorialPolicy};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn images(b: usize, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..b * 3 * 8 * 8).map(|_| rand::Rng::random::<f32>(&mut rng)).collect();
    Tensor::from_vec(v, (b, 3, 8, 8), &Device::Cpu).unwrap()
}

/// Per-image loss: a fixed random projection of the augmented image, squared.
fn per_image_loss(aug: &Tensor) -> Result<Tensor> {
    let w = images(aug.dim(0)?, 99);
    (aug * w)?.sum((1, 2, 3))?.sqr()
}

fn norms(policy: &dyn Policy, grads: &[(Var, Tensor)]) -> Vec<(String, Vec<usize>, f32)> {
    policy
        .vars()
        .into_iter()
        .map(|(name, var)| {
            let n = grads
                .iter()
                .filter(|(v, _)| v.id() == var.id())
                .map(|(_, g)| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
                .sum::<f32>();
            (name, var.dims().to_vec(), n)
        })
        .collect()
}

/// Gradients for all parameter groups from one augment + loss (+ RELAX for the discrete part).
fn check(policy: &dyn Policy, estimator: Estimator, b: usize, seed: u64, accept: &dyn Fn(&dada_policy::PolicySample) -> bool) -> Result<()> {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(seed);
    let x = images(b, seed);
    let mut sample = policy.sample(b, 0.5, &mut rng)?;
    while !accept(&sample) {
        sample = policy.sample(b, 0.5, &mut rng)?;
    }
    let aug = policy.augment(&x, &sample, estimator, &mut rng)?;
    assert_eq!(aug.dims(), x.dims());
    let per_image = per_image_loss(&aug)?;
    let loss = per_image.mean_all()?;
    let store = loss.backward()?;
    let mut grads: Vec<(Var, Tensor)> = policy
        .vars()
        .into_iter()
        .filter_map(|(_, v)| store.get(v.as_tensor()).map(|g| (v.clone(), g.clone())))
        .collect();
    if estimator == Estimator::Relax {
        let f = if sample.n_draws() == 1 { loss.reshape(1)? } else { per_image };
        let mut relax = Relax::new(policy, 100, 0.005, &dev)?;
        grads.extend(relax.grads(policy, &sample, &f)?);
    }
    for (name, shape, n) in norms(policy, &grads) {
        println!("{} {estimator:?}: {name} {shape:?} |grad| = {n:.6}", policy.space());
        assert!(n > 0.0 && n.is_finite(), "{} {estimator:?}: no gradient for {name}", policy.space());
    }
    Ok(())
}

#[test]
fn paper_space_gradients_reach_all_groups() -> Result<()> {
    let policy = PaperPolicy::new(PaperConfig::default(), &Device::Cpu).unwrap();
    assert_eq!(policy.num_sub_policies(), 105);
    assert_eq!(policy.control_variate_dim(), 315);
    let ops = policy.ops().clone();
    let subs = policy.sub_policies().to_vec();
    // a batch-shared draw whose two ops both apply and both have a magnitude
    let accept = move |s: &dada_policy::PolicySample| {
        s.gates()[0].iter().all(|&g| g) && subs[s.sub_policies()[0]].iter().all(|&o| ops.get(o).range().is_some())
    };
    for est in [Estimator::Gumbel, Estimator::Relax] {
        check(&policy, est, 4, 1, &accept)?;
    }
    Ok(())
}

#[test]
fn tutorial_space_gradients_reach_all_groups() -> Result<()> {
    let policy = TutorialPolicy::new(TutorialConfig::default(), &Device::Cpu).unwrap();
    let n_params: usize = policy.vars().iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(n_params, 850);
    for est in [Estimator::Gumbel, Estimator::Relax] {
        check(&policy, est, 6, 2, &|s| s.gates().iter().flatten().any(|&g| g))?;
    }
    Ok(())
}

#[test]
fn relax_augment_applies_exactly_the_hard_choices() -> Result<()> {
    // With RELAX, the augmented batch equals applying the chosen ops directly.
    let cfg = PaperConfig {
        ops: OpSet::new(vec![OpSet::by_name("invert").unwrap(), OpSet::by_name("identity").unwrap()]),
        init_probability: 1.0,
        ..PaperConfig::default()
    };
    let policy = PaperPolicy::new(cfg, &Device::Cpu).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let x = images(2, 3);
    let s = policy.sample(2, 0.5, &mut rng)?;
    assert_eq!(s.gates()[0], vec![true, true]);
    for est in [Estimator::Relax, Estimator::Gumbel] {
        let y = policy.augment(&x, &s, est, &mut rng)?;
        // invert then identity: 1 - x
        let d = (y - x.affine(-1.0, 1.0)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-6, "{est:?}: {d}");
    }
    Ok(())
}
