//! RELAX and REINFORCE on `f(b) = <onehot(b_cat), t> + <b_ber, s>`, whose expected-value
//! gradient is known in closed form: unbiased means, and RELAX's variance below REINFORCE's and
//! falling as its control variate trains; the paper space's per-image draws on a loss that is
//! nonlinear in each image's gates, whose expectation is enumerated.
use candle::{Device, Result, Tensor, Var};
use dada_ops::OpSet;
use dada_policy::{
    Draw, PaperConfig, PaperPolicy, Policy, PolicySample, Reinforce, Relax, RelaxConfig, TutorialConfig, TutorialPolicy,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Running mean and variance per coordinate of a gradient estimate (flattened, concatenated).
struct Moments {
    n: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Moments {
    fn new() -> Self {
        Self { n: 0, sum: vec![], sq: vec![] }
    }
    fn push(&mut self, g: &[f64]) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; g.len()];
            self.sq = vec![0.0; g.len()];
        }
        for (i, x) in g.iter().enumerate() {
            self.sum[i] += x;
            self.sq[i] += x * x;
        }
        self.n += 1;
    }
    fn mean(&self) -> Vec<f64> {
        self.sum.iter().map(|s| s / self.n as f64).collect()
    }
    fn var(&self) -> Vec<f64> {
        let m = self.mean();
        self.sq.iter().zip(&m).map(|(q, m)| q / self.n as f64 - m * m).collect()
    }
    /// Trace of the covariance: the summed variance over all coordinates.
    fn total_var(&self) -> f64 {
        self.var().iter().sum()
    }
    /// Checks every coordinate of the mean against `exact` within 5 standard errors.
    fn assert_unbiased(&self, exact: &[f64], what: &str) {
        let (m, v) = (self.mean(), self.var());
        let mut worst = 0f64;
        for i in 0..exact.len() {
            let se = (v[i] / self.n as f64).sqrt() + 1e-4;
            let z = (m[i] - exact[i]).abs() / se;
            worst = worst.max(z);
            assert!(z < 5.0, "{what}: coordinate {i}: mean {} vs exact {} ({z:.1} standard errors)", m[i], exact[i]);
        }
        println!("{what}: mean within {worst:.2} standard errors of the exact gradient ({} samples)", self.n);
    }
}

fn flat(grads: &[(Var, Tensor)], order: &[&Var]) -> Vec<f64> {
    order
        .iter()
        .flat_map(|v| {
            let g = grads.iter().find(|(w, _)| w.id() == v.id()).expect("gradient for every group");
            g.1.flatten_all().unwrap().to_dtype(candle::DType::F64).unwrap().to_vec1::<f64>().unwrap()
        })
        .collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(candle::DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

/// `f(b)` per draw: `<onehot, t>` over all categorical groups + `<b_ber, s>`, where the
/// categorical targets `t` and Bernoulli targets `s` are given per draw by closures.
fn toy_f(sample: &PolicySample, t: &dyn Fn(usize, usize, usize) -> f64, s: &dyn Fn(usize, usize) -> f64) -> Tensor {
    let cat = sample.hard_categorical(); // (N, G, K)
    let (n, g, k) = cat.dims3().unwrap();
    let ber = values(sample.hard_bernoulli()); // (N, Gb)
    let gb = ber.len() / n;
    let c = values(cat);
    let f: Vec<f32> = (0..n)
        .map(|d| {
            let mut acc = 0.0;
            for gi in 0..g {
                for ki in 0..k {
                    acc += c[(d * g + gi) * k + ki] * t(d, gi, ki);
                }
            }
            for j in 0..gb {
                acc += ber[d * gb + j] * s(d, j);
            }
            acc as f32
        })
        .collect();
    Tensor::from_vec(f, n, &Device::Cpu).unwrap()
}

#[test]
fn paper_relax_and_reinforce_are_unbiased_and_relax_has_lower_variance() -> Result<()> {
    let dev = Device::Cpu;
    let cfg = PaperConfig {
        ops: OpSet::new((0..4).map(|i| OpSet::paper().get(i).clone()).collect()),
        ..PaperConfig::default()
    };
    let policy = PaperPolicy::new(cfg, &dev).unwrap();
    let s_n = policy.num_sub_policies(); // C(4, 2) = 6
    let logits = [0.3f32, -0.5, 0.8, 0.0, -0.2, 0.4];
    policy.logits().set(&Tensor::new(&logits[..], &dev)?)?;
    let probs: Vec<f32> = (0..2 * s_n).map(|i| 0.2 + 0.05 * i as f32).collect();
    policy.probabilities().set(&Tensor::from_vec(probs.clone(), (s_n, 2), &dev)?)?;
    let t: Vec<f64> = (0..s_n).map(|i| ((i * 7) % 5) as f64 * 0.5 - 1.0).collect();
    let s: Vec<f64> = (0..2 * s_n).map(|i| ((i * 3) % 4) as f64 * 0.5 - 0.7).collect();
    // E f = sum_k p_k t_k + sum_j pi_j s_j with p = softmax(logits), pi = clamp(P):
    // dE/dlogits = p * (t - <p, t>), dE/dP = s (P inside (0, 1)).
    let lp: Vec<f64> = logits.iter().map(|&l| (l as f64).exp()).collect();
    let z: f64 = lp.iter().sum();
    let p: Vec<f64> = lp.iter().map(|x| x / z).collect();
    let pt: f64 = p.iter().zip(&t).map(|(a, b)| a * b).sum();
    let mut exact: Vec<f64> = p.iter().zip(&t).map(|(pk, tk)| pk * (tk - pt)).collect();
    exact.extend(s.iter().copied());

    let tau = 0.5;
    let order = [policy.logits(), policy.probabilities()];
    let f_of = |smp: &PolicySample| toy_f(smp, &|_, _, k| t[k], &|_, j| s[j]);
    let mut rng = StdRng::seed_from_u64(20);
    let cfg = RelaxConfig { hidden: 32, lr: 0.01, ..RelaxConfig::default() };
    let mut relax = Relax::with_config(&policy, cfg, &dev)?;
    let m = 3000;

    let mut untrained = Moments::new();
    for _ in 0..m {
        let smp = policy.sample(1, tau, &mut rng)?;
        untrained.push(&flat(&relax.estimate(&smp, &f_of(&smp))?.grads, &order));
    }
    let mut train_curve = Vec::new();
    let mut window = Moments::new();
    for step in 0..4000 {
        let smp = policy.sample(1, tau, &mut rng)?;
        window.push(&flat(&relax.grads(&policy, &smp, &f_of(&smp))?, &order));
        if (step + 1) % 500 == 0 {
            train_curve.push(window.total_var());
            window = Moments::new();
        }
    }
    let mut trained = Moments::new();
    for _ in 0..m {
        let smp = policy.sample(1, tau, &mut rng)?;
        trained.push(&flat(&relax.estimate(&smp, &f_of(&smp))?.grads, &order));
    }
    let mut reinforce = Reinforce::new();
    let mut rf = Moments::new();
    for _ in 0..m {
        let smp = policy.sample(1, tau, &mut rng)?;
        rf.push(&flat(&reinforce.grads(&smp, &f_of(&smp))?, &order));
    }
    println!(
        "paper toy, summed variance of the estimate: REINFORCE {:.4}, RELAX untrained {:.4}, \
         RELAX while training (per 500 steps) {:?}, RELAX trained {:.4}",
        rf.total_var(),
        untrained.total_var(),
        train_curve.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>(),
        trained.total_var()
    );
    untrained.assert_unbiased(&exact, "RELAX (untrained control variate)");
    trained.assert_unbiased(&exact, "RELAX (trained control variate)");
    rf.assert_unbiased(&exact, "REINFORCE");
    assert!(trained.total_var() < rf.total_var(), "trained RELAX has lower variance than REINFORCE");
    assert!(trained.total_var() < untrained.total_var(), "the control variate's training lowers the variance");
    assert!(train_curve.last() < train_curve.first(), "variance falls while training: {train_curve:?}");
    Ok(())
}

#[test]
fn tutorial_relax_is_unbiased_per_image() -> Result<()> {
    let dev = Device::Cpu;
    let (s_n, k_slots, n_ops, b) = (3usize, 2usize, 4usize, 8usize);
    let cfg = TutorialConfig {
        ops: OpSet::new((0..n_ops).map(|i| OpSet::tutorial().get(i).clone()).collect()),
        n_sub_policies: s_n,
        n_slots: k_slots,
        ..TutorialConfig::default()
    };
    let policy = TutorialPolicy::new(cfg, &dev).unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    let logits: Vec<f32> = (0..s_n * k_slots * n_ops).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    policy.op_logits().set(&Tensor::from_vec(logits.clone(), (s_n, k_slots, n_ops), &dev)?)?;
    let pl: Vec<f32> = (0..s_n * k_slots).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    policy.prob_logits().set(&Tensor::from_vec(pl.clone(), (s_n, k_slots), &dev)?)?;
    // targets per (sub-policy, slot, op) and (sub-policy, slot)
    let t: Vec<f64> = (0..s_n * k_slots * n_ops).map(|i| ((i * 5) % 7) as f64 * 0.3 - 0.9).collect();
    let s: Vec<f64> = (0..s_n * k_slots).map(|i| ((i * 3) % 5) as f64 * 0.4 - 0.8).collect();
    // E mean_n f_n = (1/S) sum_{sp, slot} [<softmax(l[sp,slot]), t[sp,slot]> + sigmoid(pl) s]
    let mut exact = Vec::new();
    for r in 0..s_n * k_slots {
        let row: Vec<f64> = logits[r * n_ops..(r + 1) * n_ops].iter().map(|&x| (x as f64).exp()).collect();
        let z: f64 = row.iter().sum();
        let p: Vec<f64> = row.iter().map(|x| x / z).collect();
        let pt: f64 = (0..n_ops).map(|o| p[o] * t[r * n_ops + o]).sum();
        exact.extend((0..n_ops).map(|o| p[o] * (t[r * n_ops + o] - pt) / s_n as f64));
    }
    for r in 0..s_n * k_slots {
        let th = 1.0 / (1.0 + (-(pl[r] as f64)).exp());
        exact.push(th * (1.0 - th) * s[r] / s_n as f64);
    }
    let order = [policy.op_logits(), policy.prob_logits()];
    let mut relax = Relax::with_config(&policy, RelaxConfig { hidden: 32, lr: 0.01, ..RelaxConfig::default() }, &dev)?;
    let mut mo = Moments::new();
    let mut rf = Moments::new();
    let mut reinforce = Reinforce::new();
    for _ in 0..2500 {
        let smp = policy.sample(b, 0.5, &mut rng)?;
        let sps = smp.sub_policies().to_vec();
        let f = toy_f(&smp, &|d, g, o| t[(sps[d] * k_slots + g) * n_ops + o], &|d, j| s[sps[d] * k_slots + j]);
        mo.push(&flat(&relax.grads(&policy, &smp, &f)?, &order));
        rf.push(&flat(&reinforce.grads(&smp, &f)?, &order));
    }
    println!("tutorial toy: summed variance REINFORCE {:.5}, RELAX (training) {:.5}", rf.total_var(), mo.total_var());
    mo.assert_unbiased(&exact, "tutorial RELAX");
    rf.assert_unbiased(&exact, "tutorial REINFORCE");
    Ok(())
}

/// `E[(1/B) sum_i T_i[c_i][g_i0 + 2 g_i1]]` for per-image draws of the paper space with 2 slots,
/// enumerated: `sum_i sum_c p_c sum_g P_c(g) T_i[c][g] / B`, `p = softmax(logits)`,
/// `P_c(g) = prod_j pi_cj^g_j (1 - pi_cj)^(1 - g_j)`, `pi` the probabilities (inside (0, 1)).
fn enumerated_expectation(logits: &[f64], pi: &[f64], table: &[Vec<[f64; 4]>]) -> f64 {
    let z: f64 = logits.iter().map(|l| l.exp()).sum();
    let mut total = 0.0;
    for t in table {
        for (c, l) in logits.iter().enumerate() {
            let p_c = l.exp() / z;
            for (g, value) in t[c].iter().enumerate() {
                let (g0, g1) = (g & 1, g >> 1);
                let bern = |j: usize, on: usize| if on == 1 { pi[c * 2 + j] } else { 1.0 - pi[c * 2 + j] };
                total += p_c * bern(0, g0) * bern(1, g1) * value;
            }
        }
    }
    total / table.len() as f64
}

#[test]
fn paper_relax_per_image_is_unbiased_for_an_enumerated_expectation() -> Result<()> {
    // Per-image draws: image i's loss depends on its own sub-policy and gates only, through a
    // table that is nonlinear in the gates (so no linear shortcut is being tested). RELAX per
    // draw, averaged over the draws, must be unbiased for the gradient of the expected mean
    // loss; checked coordinate by coordinate within 5 standard errors of the sample mean
    // (`Moments::assert_unbiased`), with an untrained and a training control variate, and
    // REINFORCE as a control.
    let dev = Device::Cpu;
    let cfg = PaperConfig {
        ops: OpSet::new((0..3).map(|i| OpSet::paper().get(i).clone()).collect()),
        draw: Draw::PerImage,
        ..PaperConfig::default()
    };
    let policy = PaperPolicy::new(cfg, &dev).unwrap();
    let s_n = policy.num_sub_policies(); // C(3, 2) = 3
    let b = 3;
    let logits = [0.4f32, -0.3, 0.1];
    let probs = [0.3f32, 0.7, 0.55, 0.2, 0.8, 0.45];
    policy.logits().set(&Tensor::new(&logits[..], &dev)?)?;
    policy.probabilities().set(&Tensor::from_vec(probs.to_vec(), (s_n, 2), &dev)?)?;
    let mut rng = StdRng::seed_from_u64(22);
    let table: Vec<Vec<[f64; 4]>> =
        (0..b).map(|_| (0..s_n).map(|_| [(); 4].map(|_| rng.random::<f64>() * 2.0 - 1.0)).collect()).collect();
    let l64: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    let p64: Vec<f64> = probs.iter().map(|&x| x as f64).collect();
    // Exact gradient, analytic: with V_i[c] = sum_g P_c(g) T_i[c][g],
    //   dE/dlogit_l = (1/B) sum_i p_l (V_i[l] - sum_c p_c V_i[c]),
    //   dE/dpi_cj   = (1/B) sum_i p_c sum_g (2 g_j - 1) pi_c(1-j)^g_(1-j) (1 - pi_c(1-j))^(1 - g_(1-j)) T_i[c][g];
    let z: f64 = l64.iter().map(|l| l.exp()).sum();
    let p: Vec<f64> = l64.iter().map(|l| l.exp() / z).collect();
    let bern = |c: usize, j: usize, on: usize| if on == 1 { p64[c * 2 + j] } else { 1.0 - p64[c * 2 + j] };
    let mut exact = vec![0f64; s_n + 2 * s_n];
    for t in &table {
        let v: Vec<f64> = (0..s_n).map(|c| (0..4).map(|g| bern(c, 0, g & 1) * bern(c, 1, g >> 1) * t[c][g]).sum()).collect();
        let pv: f64 = (0..s_n).map(|c| p[c] * v[c]).sum();
        for l in 0..s_n {
            exact[l] += p[l] * (v[l] - pv) / b as f64;
        }
        for c in 0..s_n {
            for j in 0..2 {
                let d: f64 = (0..4)
                    .map(|g| {
                        let (gj, go) = if j == 0 { (g & 1, g >> 1) } else { (g >> 1, g & 1) };
                        (2.0 * gj as f64 - 1.0) * bern(c, 1 - j, go) * t[c][g]
                    })
                    .sum();
                exact[s_n + c * 2 + j] += p[c] * d / b as f64;
            }
        }
    }
    // ... and the same by f64 central differences of the enumerated expectation.
    let h = 1e-5;
    for q in 0..exact.len() {
        let (mut lp, mut lm, mut pp, mut pm) = (l64.clone(), l64.clone(), p64.clone(), p64.clone());
        if q < s_n {
            lp[q] += h;
            lm[q] -= h;
        } else {
            pp[q - s_n] += h;
            pm[q - s_n] -= h;
        }
        let fd = (enumerated_expectation(&lp, &pp, &table) - enumerated_expectation(&lm, &pm, &table)) / (2.0 * h);
        assert!((fd - exact[q]).abs() < 1e-8, "coordinate {q}: analytic {} vs enumerated finite difference {fd}", exact[q]);
    }

    let order = [policy.logits(), policy.probabilities()];
    // f_i: image i's own term, on the scale of the mean (the mean over draws is the objective).
    let f_of = |smp: &PolicySample| -> Tensor {
        assert_eq!(smp.n_draws(), b, "one draw per image");
        let f: Vec<f32> = (0..b)
            .map(|i| {
                let g = smp.gates()[i].iter().enumerate().map(|(j, &on)| (on as usize) << j).sum::<usize>();
                table[i][smp.sub_policies()[i]][g] as f32
            })
            .collect();
        Tensor::from_vec(f, b, &Device::Cpu).unwrap()
    };
    let mut relax = Relax::with_config(&policy, RelaxConfig { hidden: 32, lr: 0.01, ..RelaxConfig::default() }, &dev)?;
    let (mut untrained, mut training, mut rf) = (Moments::new(), Moments::new(), Moments::new());
    let mut reinforce = Reinforce::new();
    let m = 3000;
    for _ in 0..m {
        let smp = policy.sample(b, 0.5, &mut rng)?;
        untrained.push(&flat(&relax.estimate(&smp, &f_of(&smp))?.grads, &order));
        rf.push(&flat(&reinforce.grads(&smp, &f_of(&smp))?, &order));
    }
    for _ in 0..m {
        let smp = policy.sample(b, 0.5, &mut rng)?;
        training.push(&flat(&relax.grads(&policy, &smp, &f_of(&smp))?, &order));
    }
    println!(
        "paper per-image toy ({b} draws): summed variance REINFORCE {:.4}, RELAX untrained {:.4}, RELAX training {:.4}",
        rf.total_var(),
        untrained.total_var(),
        training.total_var()
    );
    untrained.assert_unbiased(&exact, "per-image RELAX (untrained control variate)");
    training.assert_unbiased(&exact, "per-image RELAX (training control variate)");
    rf.assert_unbiased(&exact, "per-image REINFORCE");
    Ok(())
}
