//! The official CIFAR-100 and SVHN formats: files written here in each format read back exactly,
//! and damaged ones give errors naming the file, never a panic.
use std::path::Path;

use dada_train::data::cifar100::{self, Cifar100Labels, CIFAR100_RECORD_LEN};
use dada_train::data::mat::{self, MatData};
use dada_train::data::svhn;
use dada_train::DataError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A known pattern: pixel (row r, column c, channel ch) of image n.
fn pattern(n: usize, ch: usize, r: usize, c: usize) -> u8 {
    (r * 7 + c * 3 + ch * 50 + n * 31) as u8
}

/// `X` as SVHN stores it: `[32, 32, 3, N]` column-major.
fn svhn_x(n_images: usize) -> Vec<u8> {
    let mut x = vec![0u8; 3072 * n_images];
    for n in 0..n_images {
        for ch in 0..3 {
            for c in 0..32 {
                for r in 0..32 {
                    x[r + 32 * c + 1024 * ch + 3072 * n] = pattern(n, ch, r, c);
                }
            }
        }
    }
    x
}

/// An SVHN-format file with labels `y` (1..10, double as in the official files).
fn svhn_bytes(y: &[f64], compressed: bool) -> Vec<u8> {
    let n = y.len();
    mat::write_mat(
        &[("X", &[32, 32, 3, n], MatData::U8(svhn_x(n))), ("y", &[n, 1], MatData::F64(y.to_vec()))],
        compressed,
    )
}

fn layout_error_naming(err: DataError, file: &str) -> String {
    let msg = err.to_string();
    assert!(matches!(err, DataError::Layout { .. }), "expected a layout error, got {err:?}");
    assert!(msg.contains(file), "the message does not name {file}: {msg}");
    msg
}

#[test]
fn svhn_reads_back_pixel_exact_with_ten_as_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let y = [10.0, 1.0, 5.0, 9.0, 10.0];
    for compressed in [false, true] {
        let path = tmp.path().join(if compressed { "train_32x32.mat" } else { "test_32x32.mat" });
        std::fs::write(&path, svhn_bytes(&y, compressed)).unwrap();
        let set = svhn::read_svhn_mat(&path).unwrap();
        assert_eq!((set.len(), set.channels, set.height, set.width), (5, 3, 32, 32));
        assert_eq!(set.labels, vec![0, 1, 5, 9, 0]);
        for n in 0..5 {
            let image = set.image(n);
            for ch in 0..3 {
                for r in 0..32 {
                    for c in 0..32 {
                        assert_eq!(image[ch * 1024 + r * 32 + c], pattern(n, ch, r, c), "image {n} ch {ch} ({r}, {c})");
                    }
                }
            }
        }
    }
    let (train, test) = svhn::read_svhn_dir(tmp.path()).unwrap();
    assert_eq!(train, test);
}

#[test]
fn svhn_accepts_uint8_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("test_32x32.mat");
    let bytes = mat::write_mat(
        &[("y", &[2, 1], MatData::U8(vec![3, 10])), ("X", &[32, 32, 3, 2], MatData::U8(svhn_x(2)))],
        true,
    );
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(svhn::read_svhn_mat(&path).unwrap().labels, vec![3, 0]);
}

#[test]
fn svhn_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    // A .mat without `X`.
    let path = write("no_x.mat", &mat::write_mat(&[("y", &[1, 1], MatData::F64(vec![1.0]))], false));
    let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "no_x.mat");
    assert!(msg.contains("train_32x32.mat") && msg.contains("`X`"), "{msg}");

    // Not a .mat at all.
    let path = write("notes.mat", b"these are not the digits you are looking for");
    let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "notes.mat");
    assert!(msg.contains("cargo xtask datasets svhn --download"), "{msg}");

    // Truncated, compressed and not.
    for compressed in [false, true] {
        let full = svhn_bytes(&[1.0, 2.0], compressed);
        let path = write("cut.mat", &full[..full.len() - 100]);
        let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "cut.mat");
        assert!(msg.contains("truncated"), "{msg}");
    }

    // Wrong `X` dimensions.
    let bytes = mat::write_mat(
        &[("X", &[32, 32, 1, 3], MatData::U8(vec![0; 3072])), ("y", &[3, 1], MatData::F64(vec![1.0; 3]))],
        false,
    );
    let path = write("gray.mat", &bytes);
    let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "gray.mat");
    assert!(msg.contains("[32, 32, 3, N]") && msg.contains("test_32x32.mat"), "{msg}");

    // A label outside 1..10.
    let path = write("zero_label.mat", &svhn_bytes(&[1.0, 0.0], false));
    let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "zero_label.mat");
    assert!(msg.contains("outside 1..10"), "{msg}");

    // As many labels as images, or an error.
    let bytes = mat::write_mat(
        &[("X", &[32, 32, 3, 2], MatData::U8(svhn_x(2))), ("y", &[3, 1], MatData::F64(vec![1.0; 3]))],
        true,
    );
    let path = write("count.mat", &bytes);
    layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "count.mat");

    // Dimensions that do not match the data.
    let bytes = mat::write_mat(&[("X", &[32, 32, 3, 2], MatData::U8(svhn_x(1)))], false);
    let path = write("dims.mat", &bytes);
    let msg = layout_error_naming(svhn::read_svhn_mat(&path).unwrap_err(), "dims.mat");
    assert!(msg.contains("dimensions"), "{msg}");

    // A missing file.
    let err = svhn::read_svhn_mat(&tmp.path().join("absent.mat")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    assert!(msg.contains("absent.mat") && msg.contains("cargo xtask datasets svhn --download"), "{msg}");
}

#[test]
fn mat_reader_survives_random_damage() {
    let y = [3.0, 10.0];
    let name = Path::new("fuzz.mat");
    let plain = svhn_bytes(&y, false);
    let compressed = svhn_bytes(&y, true);
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (mut oks, mut errs) = (0, 0);
    for case in 0..400 {
        let base = if case % 2 == 0 { &plain } else { &compressed };
        let mut bytes = base.clone();
        match rng.random_range(0..4) {
            // Truncate anywhere.
            0 => bytes.truncate(rng.random_range(0..bytes.len())),
            // Flip a few bytes (half the time in the first 300, where the tags are).
            1 => {
                for _ in 0..rng.random_range(1..8) {
                    let end = if rng.random_bool(0.5) { 300.min(bytes.len()) } else { bytes.len() };
                    let i = rng.random_range(0..end);
                    bytes[i] = rng.random();
                }
            }
            // Overwrite an aligned word with a huge or random size.
            2 => {
                let i = rng.random_range(0..(bytes.len() - 4) / 4) * 4;
                let word: u32 = if rng.random_bool(0.5) { u32::MAX - rng.random_range(0..16) } else { rng.random() };
                bytes[i..i + 4].copy_from_slice(&word.to_le_bytes());
            }
            // Damage the element, then compress it, so the damage is past the zlib layer.
            _ => {
                let mut element = plain[128..].to_vec();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..200.min(element.len()));
                    element[i] = rng.random();
                }
                bytes = compress_as_element(&plain[..128], &element);
            }
        }
        let result = std::panic::catch_unwind(|| mat::read_mat_from_bytes(&bytes, name));
        match result {
            Ok(Ok(_)) => oks += 1,
            Ok(Err(err)) => {
                assert!(err.to_string().contains("fuzz.mat"), "case {case}: {err}");
                errs += 1;
            }
            Err(_) => panic!("case {case}: read_mat panicked on {} bytes", bytes.len()),
        }
    }
    eprintln!("damaged files: {oks} read, {errs} refused");
    // Both outcomes occur: the cases reach past the header checks.
    assert!(oks > 0 && errs > 0, "{oks} read, {errs} refused");
}

/// A MAT-file of `header` and `element` wrapped in one miCOMPRESSED element.
fn compress_as_element(header: &[u8], element: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(element).unwrap();
    let zipped = encoder.finish().unwrap();
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&15u32.to_le_bytes());
    bytes.extend_from_slice(&(zipped.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&zipped);
    bytes
}

/// A CIFAR-100 record: coarse, fine, then a planar image filled with `fill`.
fn cifar100_record(coarse: u8, fine: u8, fill: u8) -> Vec<u8> {
    let mut record = vec![coarse, fine];
    record.extend((0..3072).map(|i| fill.wrapping_add((i % 251) as u8)));
    record
}

fn write_cifar100(dir: &Path, train: &[(u8, u8)], test: &[(u8, u8)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (file, labels) in [("train.bin", train), ("test.bin", test)] {
        let bytes: Vec<u8> = labels
            .iter()
            .enumerate()
            .flat_map(|(i, &(coarse, fine))| cifar100_record(coarse, fine, i as u8 * 10))
            .collect();
        std::fs::write(dir.join(file), bytes).unwrap();
    }
}

#[test]
fn cifar100_reads_fine_and_coarse_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(cifar100::CIFAR100_DIR);
    let train = [(4, 30), (1, 1), (19, 99)];
    let test = [(0, 0), (14, 2)];
    write_cifar100(&dir, &train, &test);

    let (tr, te, names) = cifar100::read_cifar100_dir(&dir, Cifar100Labels::default()).unwrap();
    assert_eq!(tr.labels, vec![30, 1, 99]);
    assert_eq!(te.labels, vec![0, 2]);
    assert_eq!(names.len(), 100);
    assert_eq!((names[0].as_str(), names[99].as_str()), ("apple", "worm"));
    assert_eq!(tr.image(2), &cifar100_record(0, 0, 20)[2..]);
    assert_eq!((tr.channels, tr.height, tr.width), (3, 32, 32));

    let (tr, te, names) = cifar100::read_cifar100_dir(&dir, Cifar100Labels::Coarse).unwrap();
    assert_eq!(tr.labels, vec![4, 1, 19]);
    assert_eq!(te.labels, vec![0, 14]);
    assert_eq!(names, cifar100::CIFAR100_COARSE_CLASSES.to_vec());

    // Names files, when present, are used.
    let fine: Vec<String> = (0..100).map(|i| format!("class{i}")).collect();
    std::fs::write(dir.join("fine_label_names.txt"), fine.join("\n") + "\n\n").unwrap();
    let (_, _, names) = cifar100::read_cifar100_dir(&dir, Cifar100Labels::Fine).unwrap();
    assert_eq!(names, fine);
    std::fs::write(dir.join("coarse_label_names.txt"), "just\ntwo\n").unwrap();
    let err = cifar100::read_cifar100_dir(&dir, Cifar100Labels::Coarse).unwrap_err();
    layout_error_naming(err, "coarse_label_names.txt");
}

#[test]
fn cifar100_truncated_and_bad_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(cifar100::CIFAR100_DIR);
    write_cifar100(&dir, &[(1, 1), (2, 2)], &[(3, 3)]);

    let train = dir.join("train.bin");
    let bytes = std::fs::read(&train).unwrap();
    std::fs::write(&train, &bytes[..CIFAR100_RECORD_LEN + 10]).unwrap();
    let err = cifar100::read_cifar100_dir(&dir, Cifar100Labels::Fine).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Truncated { record: 3074, .. }), "{err:?}");
    assert!(msg.contains("train.bin") && msg.contains("cargo xtask datasets cifar100"), "{msg}");

    for (coarse, fine, n_classes) in [(20u8, 5u8, 20usize), (5, 100, 100)] {
        write_cifar100(&dir, &[(1, 1), (coarse, fine)], &[(3, 3)]);
        // Both labels are checked whichever is kept.
        for labels in [Cifar100Labels::Fine, Cifar100Labels::Coarse] {
            let err = cifar100::read_cifar100_dir(&dir, labels).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DataError::BadLabel { record: 1, n_classes: n, .. } if n == n_classes), "{err:?}");
            assert!(msg.contains("train.bin"), "{msg}");
        }
    }

    let err = cifar100::read_cifar100_dir(&tmp.path().join("absent"), Cifar100Labels::Fine).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
}

#[test]
fn cifar100_extract_checks_the_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("cifar-100-binary.tar.gz");
    std::fs::write(&archive, b"not the archive").unwrap();
    let err = cifar100::extract_cifar100(&archive, &tmp.path().join("out")).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err:?}");
    assert!(err.to_string().contains("cifar-100-binary.tar.gz"), "{err}");
    assert!(!tmp.path().join("out").exists());
}
