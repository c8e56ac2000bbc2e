//! Forward results against Pillow: golden outputs from real CIFAR-10 images, generated once by
//! `tools/golden/generate.py` (fixtures in `tests/fixtures/`).
use candle::{DType, Device, Result, Tensor};
use dada_ops::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const IMAGE_LEN: usize = 3 * 32 * 32;

struct Case {
    image: usize,
    op: String,
    magnitude: f32,
    sign: f32,
    center: [f32; 2],
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/cases.txt")).expect("cases.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Case {
                image: f[0].parse().unwrap(),
                op: f[1].to_string(),
                magnitude: f[2].parse().unwrap(),
                sign: f[3].parse().unwrap(),
                center: [f[4].parse().unwrap(), f[5].parse().unwrap()],
            }
        })
        .collect()
}

fn to_image(bytes: &[u8], dev: &Device) -> Result<Tensor> {
    let v: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
    Tensor::from_vec(v, (1, 3, 32, 32), dev)
}

/// Rounds `[0, 1]` values to u8 levels.
fn quantize(t: &Tensor) -> Result<Vec<u8>> {
    let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    Ok(v.iter()
        .map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect())
}

/// Runs every case through `apply` (fused) and `apply_reference`, and checks each output pixel
/// is within 1/255 of Pillow's after quantizing.
#[test]
fn ops_match_pillow_within_one_level() -> Result<()> {
    let dev = Device::Cpu;
    let inputs = std::fs::read(format!("{FIXTURES}/inputs.bin")).expect("inputs.bin");
    let golden = std::fs::read(format!("{FIXTURES}/golden.bin")).expect("golden.bin");
    let cases = cases();
    assert_eq!(golden.len(), cases.len() * IMAGE_LEN);
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (n, case) in cases.iter().enumerate() {
        let op = OpSet::by_name(&case.op).expect("op name");
        seen.insert(op.name());
        let image = to_image(
            &inputs[case.image * IMAGE_LEN..(case.image + 1) * IMAGE_LEN],
            &dev,
        )?;
        let m = Tensor::new(&[case.magnitude], &dev)?;
        let params = OpParams {
            signs: Some(Tensor::new(&[case.sign], &dev)?),
            centers: Some(Tensor::new(&[case.center], &dev)?),
            ..OpParams::default()
        };
        let expected = &golden[n * IMAGE_LEN..(n + 1) * IMAGE_LEN];
        for (path, out) in [
            ("fused", op.apply(&image, &m, &params)?),
            (
                "reference",
                op.apply_reference(
                    &image.to_dtype(DType::F64)?,
                    &m.to_dtype(DType::F64)?,
                    &params,
                )?,
            ),
        ] {
            let got = quantize(&out)?;
            let bad: Vec<(usize, u8, u8)> = got
                .iter()
                .zip(expected)
                .enumerate()
                .filter(|(_, (g, e))| g.abs_diff(**e) > 1)
                .map(|(i, (g, e))| (i, *g, *e))
                .collect();
            if !bad.is_empty() {
                failures.push(format!(
                    "{path} {} m={} sign={} image={}: {} pixels off, first (index, ours, pil): {:?}",
                    case.op,
                    case.magnitude,
                    case.sign,
                    case.image,
                    bad.len(),
                    &bad[..bad.len().min(4)]
                ));
            }
        }
    }
    assert_eq!(seen.len(), 15, "the fixtures cover the paper's 15 ops");
    assert!(
        failures.is_empty(),
        "{} cases differ from Pillow:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
