//! Imports the shared CIFAR-10 archive and checks it against figures computed by Pillow.
use std::path::PathBuf;
use std::sync::OnceLock;

use dada_train::data::{self, import::decode_planar_rgb, ImportConfig, Imported, SplitConfig};

fn archive() -> PathBuf {
    if let Ok(p) = std::env::var("DADA_CIFAR10_ARCHIVE") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    data::default_archive(&root).unwrap_or_else(|| {
        panic!("the shared CIFAR-10 archive is missing: expected ../shared/datasets/cifar10-imagefolder.tar.gz beside the checkout, or set DADA_CIFAR10_ARCHIVE")
    })
}

fn imported() -> &'static Imported {
    static CELL: OnceLock<Imported> = OnceLock::new();
    CELL.get_or_init(|| data::import_image_folder(&archive(), &ImportConfig::default()).expect("import"))
}

fn fixture() -> serde_json::Value {
    let text = include_str!("../fixtures/cifar_known.json");
    serde_json::from_str(text).unwrap()
}

fn archive_file(rel: &str) -> Vec<u8> {
    let f = std::fs::File::open(archive()).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.ends_with(rel) {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
            return buf;
        }
    }
    panic!("{rel} not in archive");
}

#[test]
fn class_counts_match_the_release() {
    let imp = imported();
    assert_eq!(imp.meta.classes, data::CIFAR10_CLASSES.to_vec());
    assert_eq!((imp.meta.channels, imp.meta.height, imp.meta.width), (3, 32, 32));
    assert_eq!(imp.train.class_counts(10), vec![5000; 10]);
    assert_eq!(imp.test.class_counts(10), vec![1000; 10]);
    let fx = fixture();
    for split in ["train", "test"] {
        let want: Vec<usize> = serde_json::from_value(fx["counts"][split].clone()).unwrap();
        let set = if split == "train" { &imp.train } else { &imp.test };
        assert_eq!(set.class_counts(10), want, "{split}");
    }
}

#[test]
fn pixel_sums_agree_with_pillow() {
    // Our JPEG decoder and Pillow's libjpeg may round a few values differently: allow 0.2%.
    let imp = imported();
    let fx = fixture();
    for (split, set) in [("train", &imp.train), ("test", &imp.test)] {
        let ours: u64 = set.pixels.iter().map(|&p| p as u64).sum();
        let pillow = fx["pixel_sums"][split].as_u64().unwrap();
        let rel = (ours as f64 - pillow as f64).abs() / pillow as f64;
        println!("{split}: ours {ours}, pillow {pillow}, rel diff {rel:.2e}");
        assert!(rel < 2e-3, "{split}: pixel sum {ours} vs pillow {pillow} (rel {rel:.2e})");
    }
}

#[test]
fn known_images_are_in_the_import_with_their_labels() {
    let imp = imported();
    let fx = fixture();
    for (rel, info) in fx["known"].as_object().unwrap() {
        let (w, h, planar) = decode_planar_rgb(&archive_file(rel), std::path::Path::new(rel)).unwrap();
        assert_eq!((w, h), (32, 32));
        // Against Pillow: channel sums within 0.5% and first pixels within 8 levels.
        for c in 0..3 {
            let ours: i64 = planar[c * 1024..(c + 1) * 1024].iter().map(|&p| p as i64).sum();
            let pil = info["channel_sums"][c].as_i64().unwrap();
            assert!((ours - pil).abs() as f64 <= 0.005 * pil as f64 + 64.0, "{rel} channel {c}: {ours} vs {pil}");
        }
        for (i, v) in info["first_pixels_r"].as_array().unwrap().iter().enumerate() {
            let d = (planar[i] as i64 - v.as_i64().unwrap()).abs();
            assert!(d <= 8, "{rel} pixel {i}: {} vs {v}", planar[i]);
        }
        // The record is in the imported set, with the right label.
        let set = if rel.starts_with("train/") { &imp.train } else { &imp.test };
        let label = info["label"].as_u64().unwrap() as u8;
        let found: Vec<usize> = (0..set.len()).filter(|&i| set.image(i) == planar.as_slice()).collect();
        assert!(!found.is_empty(), "{rel} not found in the import");
        assert!(found.iter().all(|&i| set.labels[i] == label), "{rel}: wrong label");
    }
}

#[test]
fn records_are_shuffled_and_reproducible() {
    let imp = imported();
    // The export is sorted by class: after import the first 1,000 test records hold every class.
    let first = imp.test.select(&(0..1000).collect::<Vec<_>>());
    assert!(first.class_counts(10).iter().all(|&c| c > 50), "{:?}", first.class_counts(10));
    // Same seed, same order (checked on a small tree to keep the test fast).
    let dir = tempfile::tempdir().unwrap();
    super::data_errors::write_tree(dir.path(), &[("a", 5, 8), ("b", 5, 8)], &[("a", 2, 8), ("b", 2, 8)]);
    let a = data::import_image_folder(dir.path(), &ImportConfig { classes: None, seed: 3 }).unwrap();
    let b = data::import_image_folder(dir.path(), &ImportConfig { classes: None, seed: 3 }).unwrap();
    let c = data::import_image_folder(dir.path(), &ImportConfig { classes: None, seed: 4 }).unwrap();
    assert_eq!(a.train, b.train);
    assert_ne!(a.train.labels, c.train.labels);
}

#[test]
fn binary_layout_round_trips() {
    let imp = imported();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(data::CIFAR10_DIR);
    data::cifar::write_dir(&out, &imp.train, &imp.test, &imp.meta).unwrap();
    // Official file sizes: 10,000 records of 3,073 bytes.
    for f in data::cifar::TRAIN_FILES {
        assert_eq!(std::fs::metadata(out.join(f)).unwrap().len(), 10_000 * 3_073);
    }
    let ds = data::load_dir(&out).unwrap();
    assert_eq!(ds.train, imp.train);
    assert_eq!(ds.test, imp.test);
    // Splits: sizes, disjoint, stratified, validation from the training files, deterministic.
    let s = data::make_splits(&ds, &SplitConfig::quick()).unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (1024, 256, 256));
    let counts = s.val.class_counts(10);
    assert!(counts.iter().all(|&c| c == 25 || c == 26), "{counts:?}");
    let s2 = data::make_splits(&ds, &SplitConfig::quick()).unwrap();
    assert_eq!(s.train, s2.train);
    let r = data::make_splits(&ds, &SplitConfig::reduced_search()).unwrap();
    assert_eq!(r.train.class_counts(10), vec![200; 10]);
    assert_eq!(r.val.class_counts(10), vec![200; 10]);
    assert_eq!(r.test.len(), 10_000);
    // Train and validation are disjoint records of the training files.
    let train: std::collections::HashSet<usize> = r.train_indices.iter().copied().collect();
    assert!(r.val_indices.iter().all(|i| !train.contains(i)));
    assert!(r.val_indices.iter().all(|&i| i < ds.train.len()));
    let full = data::make_splits(&ds, &SplitConfig::full()).unwrap();
    assert_eq!((full.train.len(), full.val.len(), full.test.len()), (40_000, 10_000, 10_000));
}
