//! Policy files: JSON and fast-autoaugment round trips, import of a published policy,
//! safetensors parameter round trips, clear errors for malformed files, `sample_discrete`,
//! analysis.
use candle::{Device, Result, Tensor};
use dada_ops::{OpParams, OpSet};
use dada_policy::{
    file_op_preferences, preferences_text, read_params, read_tensors, sample_discrete, sub_policies_text,
    write_params, write_tensors, PaperConfig, PaperPolicy, Policy, PolicyError, PolicyFile, TutorialConfig,
    TutorialPolicy,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn trained_paper() -> PaperPolicy {
    let dev = Device::Cpu;
    let p = PaperPolicy::new(PaperConfig::default(), &dev).unwrap();
    let l: Vec<f32> = (0..105).map(|i| ((i * 37) % 101) as f32 / 50.0).collect();
    p.logits().set(&Tensor::from_vec(l, 105, &dev).unwrap()).unwrap();
    let pr: Vec<f32> = (0..210).map(|i| ((i * 13) % 23) as f32 / 20.0 - 0.05).collect(); // some outside [0,1]
    p.probabilities().set(&Tensor::from_vec(pr, (105, 2), &dev).unwrap()).unwrap();
    p
}

#[test]
fn paper_export_is_top_k_and_round_trips_through_json() {
    let policy = trained_paper();
    let file = policy.export();
    assert_eq!(file.sub_policies.len(), 25);
    assert_eq!(file.space, "paper");
    assert!(file.sub_policies.windows(2).all(|w| w[0].weight >= w[1].weight), "sorted by weight");
    let w = policy.weights();
    let best = (0..105).fold(0, |b, i| if w[i] > w[b] { i } else { b });
    let names = policy.ops().names();
    let best_ops: Vec<&str> = policy.sub_policies()[best].iter().map(|&o| names[o]).collect();
    let got: Vec<&str> = file.sub_policies[0].ops.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(got, best_ops);
    for e in file.sub_policies.iter().flat_map(|s| &s.ops) {
        assert!((0.0..=1.0).contains(&e.probability), "clamped on export");
    }
    let mut buf = Vec::new();
    file.write_json(&mut buf).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(text.contains("\"probability\"") && text.contains("\"magnitude\"") && text.contains("\"weight\""));
    let back = PolicyFile::read_json(&buf[..]).unwrap();
    assert_eq!(back, file);
}

#[test]
fn fast_autoaugment_format_round_trips_and_imports() {
    let file = TutorialPolicy::new(TutorialConfig::default(), &Device::Cpu).unwrap().export();
    assert_eq!(file.sub_policies.len(), 25);
    let mut buf = Vec::new();
    file.write_fast_autoaugment(&mut buf).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(text.starts_with("[\n  [[\"TranslateX\""), "fast-autoaugment names: {text}");
    let back = PolicyFile::read_fast_autoaugment(&buf[..]).unwrap();
    assert_eq!(back.sub_policies.len(), file.sub_policies.len());
    for (a, b) in back.sub_policies.iter().zip(&file.sub_policies) {
        assert_eq!(a.ops, b.ops);
    }
    // a published-style policy: fast-autoaugment names, and a DADA genotype 4-tuple
    let published = r#"[[["ShearX", 0.2, 0.9], ["AutoContrast", 0.8, 0.1]],
                        [["Posterize", 0.5, 0.3], ["Cutout", 1.0, 0.2, 0.07]]]"#;
    let imp = PolicyFile::read_fast_autoaugment(published.as_bytes()).unwrap();
    assert_eq!(imp.sub_policies[0].ops[1].op, "auto_contrast");
    assert_eq!(imp.sub_policies[0].weight, 0.5);
    assert_eq!(imp.sub_policies[1].weight, 0.07);
    assert_eq!(imp.ops, vec!["shear_x", "auto_contrast", "posterize", "cutout"]);
}

#[test]
fn malformed_files_give_clear_errors() {
    let faa = |s: &str| PolicyFile::read_fast_autoaugment(s.as_bytes()).unwrap_err();
    let e = faa(r#"[[["Warp", 0.5, 0.5]]]"#);
    assert!(matches!(&e, PolicyError::UnknownOp { op, .. } if op == "Warp"), "{e}");
    assert!(e.to_string().contains("shear_x"), "lists the known ops: {e}");
    let e = faa(r#"[[["ShearX", 1.5, 0.5]]]"#);
    assert!(matches!(e, PolicyError::ProbabilityOutOfRange { value, .. } if value == 1.5), "{e}");
    let e = faa(r#"[[["ShearX", 0.5, -0.1]]]"#);
    assert!(matches!(e, PolicyError::MagnitudeOutOfRange { .. }), "{e}");
    let e = faa(r#"[[["ShearX", 0.5]]]"#);
    assert!(matches!(e, PolicyError::WrongArity { got: 2, .. }), "{e}");
    assert!(e.to_string().contains("[op, prob, mag]"), "{e}");
    let e = faa(r#"[[["ShearX", "high", 0.5]]]"#);
    assert!(e.to_string().contains("probability must be a number"), "{e}");
    assert!(matches!(faa("[]"), PolicyError::Empty));
    assert!(matches!(faa("[[]]"), PolicyError::WrongArity { .. }));
    assert!(matches!(faa("{not json"), PolicyError::Json(_)));
    // readable JSON: the same checks
    let mut file = trained_paper().export();
    file.sub_policies[3].ops[0].probability = 2.0;
    let mut buf = Vec::new();
    file.write_json(&mut buf).unwrap();
    let e = PolicyFile::read_json(&buf[..]).unwrap_err();
    assert!(matches!(e, PolicyError::ProbabilityOutOfRange { sub_policy: 3, slot: 0, .. }), "{e}");
}

#[test]
fn raw_parameters_round_trip_through_safetensors() -> Result<()> {
    let dev = Device::Cpu;
    let a = trained_paper();
    let mut buf = Vec::new();
    write_params(&a, &mut buf).unwrap();
    let b = PaperPolicy::new(PaperConfig::default(), &dev).unwrap();
    read_params(&b, &buf[..]).unwrap();
    for ((_, va), (_, vb)) in a.vars().iter().zip(b.vars().iter()) {
        let d = (va.as_tensor() - vb.as_tensor())?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(d, 0.0);
    }
    // wrong space: a clear error naming the missing tensor
    let t = TutorialPolicy::new(TutorialConfig::default(), &dev).unwrap();
    let e = read_params(&t, &buf[..]).unwrap_err();
    assert!(e.to_string().contains("op_logits"), "{e}");
    // shape mismatch
    let small = PaperPolicy::new(PaperConfig { ops: OpSet::new((0..4).map(|i| OpSet::paper().get(i).clone()).collect()), ..PaperConfig::default() }, &dev).unwrap();
    let e = read_params(&small, &buf[..]).unwrap_err();
    assert!(e.to_string().contains("shape"), "{e}");
    assert!(read_params(&small, &b"garbage"[..]).is_err());
    // generic named tensors (checkpoint state) keep dtype and values
    let named = vec![("t".to_string(), Tensor::new(&[3u32, 4], &dev)?), ("m.0".to_string(), Tensor::new(&[0.5f32], &dev)?)];
    let mut buf = Vec::new();
    write_tensors(&named, &mut buf).unwrap();
    let back = read_tensors(&buf[..], &dev).unwrap();
    assert_eq!(back[1].0, "t");
    assert_eq!(back[1].1.to_vec1::<u32>()?, vec![3, 4]);
    Ok(())
}

#[test]
fn sample_discrete_applies_ops_with_their_probabilities() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::rand(0f32, 1f32, (5, 3, 8, 8), &dev)?;
    let mut rng = StdRng::seed_from_u64(0);
    let always = PolicyFile::read_fast_autoaugment(r#"[[["Invert", 1.0, 0.3], ["Rotate", 0.0, 0.9]]]"#.as_bytes()).unwrap();
    let y = sample_discrete(&always, &x, &mut rng).unwrap();
    let invert = OpSet::by_name("invert").unwrap();
    let expect = invert.apply(&x, &Tensor::full(0.3f32, 5, &dev)?, &OpParams::none())?;
    assert_eq!((y - expect)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
    // two sub-policies, one identity-like (never applied), one always inverting: each image is
    // either unchanged or inverted, and both happen
    let mixed = PolicyFile::read_fast_autoaugment(r#"[[["Invert", 1.0, 0.0]], [["Invert", 0.0, 0.0]]]"#.as_bytes()).unwrap();
    let x = Tensor::rand(0f32, 1f32, (64, 3, 4, 4), &dev)?;
    let y = sample_discrete(&mixed, &x, &mut rng).unwrap();
    let same = (&y - &x)?.abs()?.sum((1, 2, 3))?.to_vec1::<f32>()?;
    let inv = (&y - x.affine(-1.0, 1.0)?)?.abs()?.sum((1, 2, 3))?.to_vec1::<f32>()?;
    let n_same = same.iter().filter(|&&d| d == 0.0).count();
    let n_inv = inv.iter().filter(|&&d| d < 1e-5).count();
    assert_eq!(n_same + n_inv, 64);
    assert!(n_same > 10 && n_inv > 10, "{n_same} unchanged, {n_inv} inverted");
    Ok(())
}

#[test]
fn analysis_ranks_ops_and_prints_sub_policies() {
    let policy = trained_paper();
    let prefs = policy.op_preferences();
    assert_eq!(prefs.len(), 15);
    let total: f64 = prefs.iter().map(|p| p.weight).sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to 1: {total}");
    assert!(prefs.windows(2).all(|w| w[0].weight >= w[1].weight));
    let text = preferences_text(&prefs);
    assert!(text.contains(&prefs[0].op));
    let file = policy.export();
    let fp = file_op_preferences(&file);
    assert!((fp.iter().map(|p| p.weight).sum::<f64>() - 1.0).abs() < 1e-6);
    let subs = sub_policies_text(&file, 5);
    assert_eq!(subs.lines().count(), 5);
    println!("{text}\n{subs}");
    let t = TutorialPolicy::new(TutorialConfig::default(), &Device::Cpu).unwrap();
    let tp = t.op_preferences();
    assert_eq!(tp.len(), 15);
    // uniform at initialisation: every op has weight 1/15, used half the time
    assert!(tp.iter().all(|p| (p.weight - 1.0 / 15.0).abs() < 1e-9 && (p.expected_use - 0.5 / 15.0).abs() < 1e-9));
}
