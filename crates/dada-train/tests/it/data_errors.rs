//! Corrupt and malformed input: each case gives its clear error, naming the file.
use std::path::Path;

use dada_train::data::{self, cifar, DatasetMeta, ImageSet, ImportConfig};
use dada_train::DataError;

/// Writes an ImageFolder tree: `train/<class>/NNN.png` (n images of size s x s) and `test/...`.
pub fn write_tree(root: &Path, train: &[(&str, usize, u32)], test: &[(&str, usize, u32)]) {
    for (split, classes) in [("train", train), ("test", test)] {
        for (k, &(class, n, size)) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let img = image::RgbImage::from_fn(size, size, |x, y| {
                    image::Rgb([(x * 7 + i as u32 * 13) as u8, (y * 5 + k as u32 * 40) as u8, (i * 31) as u8])
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

fn small_dataset(dir: &Path) -> (ImageSet, ImageSet) {
    let meta = DatasetMeta::cifar10();
    let mut train = ImageSet::empty(3, 32, 32);
    let mut test = ImageSet::empty(3, 32, 32);
    for i in 0..20u8 {
        train.push(&vec![i; 3072], i % 10);
        test.push(&vec![i + 1; 3072], (i + 3) % 10);
    }
    cifar::write_dir(dir, &train, &test, &meta).unwrap();
    (train, test)
}

#[test]
fn missing_directory_names_the_fix() {
    let err = data::load_dir(Path::new("/nonexistent/cifar-10-batches-bin")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(msg.contains("/nonexistent/cifar-10-batches-bin") && msg.contains("cargo xtask datasets cifar10"), "{msg}");
}

#[test]
fn missing_batch_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    small_dataset(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
    let msg = data::load_dir(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("data_batch_3.bin") && msg.contains("not found"), "{msg}");
}

#[test]
fn truncated_batch_file() {
    let dir = tempfile::tempdir().unwrap();
    small_dataset(dir.path());
    let f = dir.path().join("data_batch_2.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let err = data::load_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Truncated { record: 3073, .. }), "{msg}");
    assert!(msg.contains("data_batch_2.bin") && msg.contains("3073"), "{msg}");
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    small_dataset(dir.path());
    let f = dir.path().join("test_batch.bin");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[3073 * 2] = 17; // the third record's label
    std::fs::write(&f, &bytes).unwrap();
    let err = data::load_dir(dir.path()).unwrap_err();
    match &err {
        DataError::BadLabel { record, label, n_classes, .. } => assert_eq!((*record, *label, *n_classes), (2, 17, 10)),
        other => panic!("expected BadLabel, got {other}"),
    }
    assert!(err.to_string().contains("test_batch.bin"));
}

#[test]
fn written_layout_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = small_dataset(dir.path());
    let ds = data::load_dir(dir.path()).unwrap();
    assert_eq!(ds.train, train);
    assert_eq!(ds.test, test);
    assert!(cifar::is_complete(dir.path()));
}

#[test]
fn mixed_size_image_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("cat", 3, 16), ("dog", 2, 16)], &[("cat", 1, 16)]);
    image::RgbImage::new(20, 16).save(dir.path().join("train/dog/odd.png")).unwrap();
    let err = data::import_image_folder(dir.path(), &ImportConfig::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::MixedSizes { got_w: 20, got_h: 16, want_w: 16, want_h: 16, .. }), "{msg}");
    assert!(msg.contains("odd.png"), "{msg}");
}

#[test]
fn unreadable_image() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("cat", 2, 8), ("dog", 2, 8)], &[]);
    std::fs::write(dir.path().join("train/cat/broken.jpg"), b"not a jpeg at all").unwrap();
    let err = data::import_image_folder(dir.path(), &ImportConfig::default()).unwrap_err();
    assert!(matches!(err, DataError::BadImage { .. }), "{err}");
    assert!(err.to_string().contains("broken.jpg"));
}

#[test]
fn empty_class_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("cat", 2, 8), ("dog", 0, 8)], &[]);
    let err = data::import_image_folder(dir.path(), &ImportConfig::default()).unwrap_err();
    match &err {
        DataError::EmptyClass { class, .. } => assert_eq!(class, "dog"),
        other => panic!("expected EmptyClass, got {other}"),
    }
}

#[test]
fn missing_train_folder_and_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    let err = data::import_image_folder(dir.path(), &ImportConfig::default()).unwrap_err();
    assert!(err.to_string().contains("no train/ folder"), "{err}");
    let err = data::import_image_folder(&dir.path().join("nope.tar.gz"), &ImportConfig::default()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }));
}

#[test]
fn class_order_given_or_alphabetical_and_other_sizes() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("zebra", 3, 12), ("ant", 2, 12)], &[("zebra", 1, 12)]);
    let alpha = data::import_image_folder(dir.path(), &ImportConfig::default()).unwrap();
    assert_eq!(alpha.meta.classes, vec!["ant", "zebra"]);
    assert_eq!(alpha.train.class_counts(2), vec![2, 3]);
    assert_eq!((alpha.meta.height, alpha.meta.width), (12, 12));
    let given = ImportConfig { classes: Some(vec!["zebra".into(), "ant".into()]), seed: 0 };
    let given = data::import_image_folder(dir.path(), &given).unwrap();
    assert_eq!(given.train.class_counts(2), vec![3, 2]);
    assert_eq!(given.test.labels, vec![0]);
    // A class folder not in the given list is an error.
    let wrong = ImportConfig { classes: Some(vec!["zebra".into()]), seed: 0 };
    let err = data::import_image_folder(dir.path(), &wrong).unwrap_err();
    assert!(err.to_string().contains("'ant'"), "{err}");
    // The 12x12 dataset round-trips through the binary layout with its metadata.
    let out = tempfile::tempdir().unwrap();
    cifar::write_dir(out.path(), &alpha.train, &alpha.test, &alpha.meta).unwrap();
    let ds = data::load_dir(out.path()).unwrap();
    assert_eq!((ds.meta.classes.clone(), ds.meta.shape_text()), (alpha.meta.classes.clone(), alpha.meta.shape_text()));
    assert_eq!(ds.meta.sizes.len(), 6);
    assert_eq!(ds.train, alpha.train);
}

#[test]
fn archive_import_matches_directory_import() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("export");
    write_tree(&tree, &[("a", 3, 8), ("b", 4, 8)], &[("a", 1, 8), ("b", 2, 8)]);
    let tgz = dir.path().join("export.tar.gz");
    let f = std::fs::File::create(&tgz).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast()));
    builder.append_dir_all("export", &tree).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    let from_dir = data::import_image_folder(&tree, &ImportConfig::default()).unwrap();
    let from_tgz = data::import_image_folder(&tgz, &ImportConfig::default()).unwrap();
    assert_eq!(from_dir.train, from_tgz.train);
    assert_eq!(from_dir.test, from_tgz.test);
    // A corrupt archive is an error naming it.
    std::fs::write(dir.path().join("bad.tar.gz"), b"\x1f\x8b garbage").unwrap();
    let err = data::import_image_folder(&dir.path().join("bad.tar.gz"), &ImportConfig::default()).unwrap_err();
    assert!(err.to_string().contains("bad.tar.gz"), "{err}");
}

#[test]
fn official_archive_checksum_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&fake, b"not the real archive").unwrap();
    let err = data::download::extract_official(&fake, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(data::download::CIFAR10_MD5));
}
