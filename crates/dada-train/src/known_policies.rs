//! Published policies typed in from their papers: AutoAugment's CIFAR-10 policy and
//! RandAugment, as policy files on our magnitude scale.
use dada_policy::{OpEntry, PolicyFile, SubPolicy};

/// AutoAugment's CIFAR-10 policy (Cubuk et al., 2019, appendix table; as listed in
/// fast-autoaugment's `autoaug_paper_cifar10`): `(op, probability, level 0..9)`.
/// `TranslateXAbs` / `TranslateYAbs` translate by up to 10 pixels; `Posterize2` keeps
/// `4 - int(4 level / 10)` bits.
pub const AUTOAUGMENT_CIFAR10: [[(&str, f64, u32); 2]; 25] = [
    [("Invert", 0.1, 7), ("Contrast", 0.2, 6)],
    [("Rotate", 0.7, 2), ("TranslateXAbs", 0.3, 9)],
    [("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)],
    [("ShearY", 0.5, 8), ("TranslateYAbs", 0.7, 9)],
    [("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)],
    [("ShearY", 0.2, 7), ("Posterize2", 0.3, 7)],
    [("Color", 0.4, 3), ("Brightness", 0.6, 7)],
    [("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)],
    [("Equalize", 0.6, 5), ("Equalize", 0.5, 1)],
    [("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)],
    [("Color", 0.7, 7), ("TranslateXAbs", 0.5, 8)],
    [("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)],
    [("TranslateYAbs", 0.4, 3), ("Sharpness", 0.2, 6)],
    [("Brightness", 0.9, 6), ("Color", 0.2, 6)],
    [("Solarize", 0.5, 2), ("Invert", 0.0, 3)],
    [("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)],
    [("Equalize", 0.2, 8), ("Equalize", 0.6, 4)],
    [("Color", 0.9, 9), ("Equalize", 0.6, 6)],
    [("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)],
    [("Brightness", 0.1, 3), ("Color", 0.7, 0)],
    [("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)],
    [("TranslateYAbs", 0.9, 9), ("TranslateYAbs", 0.7, 9)],
    [("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)],
    [("Equalize", 0.8, 8), ("Invert", 0.1, 3)],
    [("TranslateYAbs", 0.7, 9), ("AutoContrast", 0.9, 1)],
];

/// Converts an AutoAugment `(op, level)` to our `(op, magnitude)`, as fast-autoaugment's
/// `autoaug2fastaa` does: the level gives AutoAugment's parameter value, and the magnitude is
/// where that value sits in our range (`(value - low) / (high - low)`), clamped to [0, 1].
pub fn autoaugment_entry(name: &str, level: u32, image_size: usize) -> Option<(&'static str, f64)> {
    let l = level as f64 / 10.0;
    let lin = |v: f64, low: f64, high: f64| ((v - low) / (high - low)).clamp(0.0, 1.0);
    Some(match name {
        "ShearX" => ("shear_x", lin(0.3 * l, -0.3, 0.3)),
        "ShearY" => ("shear_y", lin(0.3 * l, -0.3, 0.3)),
        // Up to 10 pixels, as a fraction of the image size, on our [-0.45, 0.45] range.
        "TranslateXAbs" => ("translate_x", lin((10.0 * l).floor() / image_size as f64, -0.45, 0.45)),
        "TranslateYAbs" => ("translate_y", lin((10.0 * l).floor() / image_size as f64, -0.45, 0.45)),
        "Rotate" => ("rotate", lin((30.0 * l).floor(), -30.0, 30.0)),
        "Solarize" => ("solarize", lin(256.0 - (256.0 * l).floor(), 0.0, 256.0)),
        // Our posterize keeps 4..8 bits; AutoAugment's Posterize2 goes down to 1 bit (clamped).
        "Posterize2" => ("posterize", lin(4.0 - (4.0 * l).floor(), 4.0, 8.0)),
        "Contrast" => ("contrast", lin(1.8 * l + 0.1, 0.1, 1.9)),
        "Color" => ("color", lin(1.8 * l + 0.1, 0.1, 1.9)),
        "Brightness" => ("brightness", lin(1.8 * l + 0.1, 0.1, 1.9)),
        "Sharpness" => ("sharpness", lin(1.8 * l + 0.1, 0.1, 1.9)),
        "AutoContrast" => ("auto_contrast", 0.0),
        "Equalize" => ("equalize", 0.0),
        "Invert" => ("invert", 0.0),
        _ => return None,
    })
}

/// AutoAugment's CIFAR-10 policy as a policy file (`image_size`: 32 for CIFAR-10).
pub fn autoaugment_cifar10(image_size: usize) -> PolicyFile {
    let sub_policies: Vec<SubPolicy> = AUTOAUGMENT_CIFAR10
        .iter()
        .map(|pair| SubPolicy {
            weight: 1.0 / 25.0,
            ops: pair
                .iter()
                .map(|&(name, probability, level)| {
                    let (op, magnitude) = autoaugment_entry(name, level, image_size).expect("every listed op maps");
                    OpEntry { op: op.to_string(), probability, magnitude }
                })
                .collect(),
        })
        .collect();
    with_ops("autoaugment-cifar10", sub_policies)
}

/// RandAugment (Cubuk et al., 2020): `n` ops drawn uniformly (with replacement) from 14, each
/// at global magnitude `m` on RandAugment's 0..30 scale; as a policy file whose sub-policies
/// are all ordered `n`-tuples (so a uniform sub-policy is an independent uniform draw of ops).
/// Magnitudes: symmetric and enhance ops `0.5 + 0.5 m / 30` (stronger away from identity),
/// solarize and posterize `1 - m / 30` (lower threshold, fewer bits).
pub fn randaugment(n: usize, m: f64) -> PolicyFile {
    const OPS: [&str; 14] = [
        "identity",
        "auto_contrast",
        "equalize",
        "rotate",
        "solarize",
        "color",
        "posterize",
        "contrast",
        "brightness",
        "sharpness",
        "shear_x",
        "shear_y",
        "translate_x",
        "translate_y",
    ];
    let r = (m / 30.0).clamp(0.0, 1.0);
    let magnitude = |op: &str| match op {
        "solarize" | "posterize" => 1.0 - r,
        "identity" | "auto_contrast" | "equalize" => 0.0,
        _ => 0.5 + 0.5 * r,
    };
    let total = OPS.len().pow(n as u32);
    let sub_policies = (0..total)
        .map(|mut code| {
            let ops = (0..n)
                .map(|_| {
                    let op = OPS[code % OPS.len()];
                    code /= OPS.len();
                    OpEntry { op: op.to_string(), probability: 1.0, magnitude: magnitude(op) }
                })
                .collect();
            SubPolicy { weight: 1.0 / total as f64, ops }
        })
        .collect();
    with_ops(&format!("randaugment-{n}-{m}"), sub_policies)
}

fn with_ops(space: &str, sub_policies: Vec<SubPolicy>) -> PolicyFile {
    let mut ops: Vec<String> = sub_policies.iter().flat_map(|s| s.ops.iter().map(|e| e.op.clone())).collect();
    ops.sort();
    ops.dedup();
    PolicyFile::new(space, ops, sub_policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoaugment_levels_map_into_our_ranges() {
        let p = autoaugment_cifar10(32);
        assert_eq!(p.sub_policies.len(), 25);
        // ShearY level 8: shear 0.24 -> (0.24 + 0.3) / 0.6 = 0.9.
        let e = &p.sub_policies[3].ops[0];
        assert_eq!(e.op, "shear_y");
        assert!((e.magnitude - 0.9).abs() < 1e-12);
        // Solarize level 2: threshold 256 - 51 = 205 -> 205 / 256.
        let e = &p.sub_policies[14].ops[0];
        assert!((e.magnitude - 205.0 / 256.0).abs() < 1e-12);
        // Enhance level 7: factor 1.36 -> 0.7.
        let e = &p.sub_policies[9].ops[0];
        assert!((e.magnitude - 0.7).abs() < 1e-12);
        for s in &p.sub_policies {
            for e in &s.ops {
                assert!((0.0..=1.0).contains(&e.magnitude) && (0.0..=1.0).contains(&e.probability));
            }
        }
    }

    #[test]
    fn randaugment_enumerates_ordered_tuples() {
        let p = randaugment(2, 9.0);
        assert_eq!(p.sub_policies.len(), 196);
        assert!(p.sub_policies.iter().all(|s| s.ops.len() == 2 && s.ops.iter().all(|e| e.probability == 1.0)));
        let rot = p.sub_policies.iter().flat_map(|s| &s.ops).find(|e| e.op == "rotate").unwrap();
        assert!((rot.magnitude - 0.65).abs() < 1e-12);
    }
}
