//! CIFAR-100, binary version: reader of `cifar-100-binary/{train,test}.bin` and extraction of the
//! official `cifar-100-binary.tar.gz`.
//!
//! Each record is 1 coarse label byte (0..20), 1 fine label byte (0..100), then the 3x32x32 image
//! as planar bytes (all of R, then G, then B): 3,074 bytes. The directory also holds
//! `coarse_label_names.txt` and `fine_label_names.txt`, one class name a line; without them the
//! built-in official names are used.
use std::fs;
use std::path::{Path, PathBuf};

use crate::data::cifar::ImageSet;
use crate::data::download::md5_file;
use crate::error::{DataError, DataResult};

/// Where the official binary release lives.
pub const CIFAR100_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";
/// md5 of `cifar-100-binary.tar.gz`.
pub const CIFAR100_MD5: &str = "03b5dce01913d631647c71ecec9e9cb8";
/// The official archive's file name.
pub const CIFAR100_ARCHIVE: &str = "cifar-100-binary.tar.gz";
/// The directory name inside the official archive.
pub const CIFAR100_DIR: &str = "cifar-100-binary";
/// The training file of the directory (50,000 records).
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// The test file of the directory (10,000 records).
pub const CIFAR100_TEST_FILE: &str = "test.bin";
/// The coarse class names file of the directory.
pub const CIFAR100_COARSE_NAMES_FILE: &str = "coarse_label_names.txt";
/// The fine class names file of the directory.
pub const CIFAR100_FINE_NAMES_FILE: &str = "fine_label_names.txt";
/// Bytes of one record: coarse label, fine label, 3x32x32 planar pixels.
pub const CIFAR100_RECORD_LEN: usize = 2 + 3 * 32 * 32;
/// What to do about a missing or damaged CIFAR-100 file.
pub const CIFAR100_HINT: &str = "run `cargo xtask datasets cifar100 --download` to prepare it";

/// The 20 coarse classes (superclasses) in label order, as `coarse_label_names.txt`.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// The 100 fine classes in label order, as `fine_label_names.txt`.
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Which of CIFAR-100's two labels becomes the image label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Labels {
    /// The 100 fine classes (the usual CIFAR-100 benchmark).
    #[default]
    Fine,
    /// The 20 coarse classes (superclasses).
    Coarse,
}

impl Cifar100Labels {
    /// Number of classes: 100 fine or 20 coarse.
    pub fn n_classes(self) -> usize {
        self.builtin_names().len()
    }

    /// The official class names, built in.
    pub fn builtin_names(self) -> &'static [&'static str] {
        match self {
            Cifar100Labels::Fine => &CIFAR100_FINE_CLASSES,
            Cifar100Labels::Coarse => &CIFAR100_COARSE_CLASSES,
        }
    }

    /// The class names file of the official directory.
    pub fn names_file(self) -> &'static str {
        match self {
            Cifar100Labels::Fine => CIFAR100_FINE_NAMES_FILE,
            Cifar100Labels::Coarse => CIFAR100_COARSE_NAMES_FILE,
        }
    }
}

/// Reads one CIFAR-100 binary file (`train.bin` or `test.bin`), keeping the `labels` kind.
/// Both labels of every record are checked (coarse < 20, fine < 100).
pub fn read_cifar100_file(path: &Path, labels: Cifar100Labels) -> DataResult<ImageSet> {
    if !path.exists() {
        return Err(DataError::Missing { path: path.to_path_buf(), hint: CIFAR100_HINT.to_string() });
    }
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.len() % CIFAR100_RECORD_LEN != 0 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record: CIFAR100_RECORD_LEN,
            hint: format!("delete it and {CIFAR100_HINT}"),
        });
    }
    let n = bytes.len() / CIFAR100_RECORD_LEN;
    let mut set = ImageSet::empty(3, 32, 32);
    set.pixels.reserve(n * set.image_len());
    set.labels.reserve(n);
    for (i, record) in bytes.chunks_exact(CIFAR100_RECORD_LEN).enumerate() {
        let (coarse, fine) = (record[0], record[1]);
        for (label, kind) in [(coarse, Cifar100Labels::Coarse), (fine, Cifar100Labels::Fine)] {
            if label as usize >= kind.n_classes() {
                return Err(DataError::BadLabel {
                    path: path.to_path_buf(),
                    record: i,
                    label,
                    n_classes: kind.n_classes(),
                    hint: format!(
                        "its {} label is out of range, the file is corrupt: delete it and {CIFAR100_HINT}",
                        if kind == Cifar100Labels::Fine { "fine" } else { "coarse" }
                    ),
                });
            }
        }
        let label = match labels {
            Cifar100Labels::Fine => fine,
            Cifar100Labels::Coarse => coarse,
        };
        set.push(&record[2..], label);
    }
    Ok(set)
}

/// The class names of `labels` from `dir`'s names file, or the built-in official names when the
/// file is absent. A names file with the wrong number of names is an error.
pub fn read_cifar100_names(dir: &Path, labels: Cifar100Labels) -> DataResult<Vec<String>> {
    let path = dir.join(labels.names_file());
    if !path.exists() {
        return Ok(labels.builtin_names().iter().map(|s| s.to_string()).collect());
    }
    let text = fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != labels.n_classes() {
        return Err(DataError::Layout {
            reason: format!(
                "holds {} class names, expected {} (delete it to use the built-in names, or {CIFAR100_HINT})",
                names.len(),
                labels.n_classes()
            ),
            path,
        });
    }
    Ok(names)
}

/// Reads the `cifar-100-binary` directory `dir`: (train, test, class names), with `labels`
/// choosing fine (100) or coarse (20) classes.
pub fn read_cifar100_dir(dir: &Path, labels: Cifar100Labels) -> DataResult<(ImageSet, ImageSet, Vec<String>)> {
    if !dir.is_dir() {
        return Err(DataError::Missing { path: dir.to_path_buf(), hint: CIFAR100_HINT.to_string() });
    }
    let train = read_cifar100_file(&dir.join(CIFAR100_TRAIN_FILE), labels)?;
    let test = read_cifar100_file(&dir.join(CIFAR100_TEST_FILE), labels)?;
    let names = read_cifar100_names(dir, labels)?;
    Ok((train, test, names))
}

/// Extracts the official `cifar-100-binary.tar.gz` into `into`, checking its md5 first; returns
/// `into/cifar-100-binary`. Entries that would land outside `into` (`..`, absolute paths) are
/// not written.
pub fn extract_cifar100(archive: &Path, into: &Path) -> DataResult<PathBuf> {
    if !archive.exists() {
        return Err(DataError::Missing {
            path: archive.to_path_buf(),
            hint: format!("give the path of {CIFAR100_ARCHIVE}, or {CIFAR100_HINT}"),
        });
    }
    let got = md5_file(archive)?;
    if got != CIFAR100_MD5 {
        return Err(DataError::Checksum { path: archive.to_path_buf(), got, want: CIFAR100_MD5.to_string() });
    }
    unpack(archive, into)
}

/// Unpacks a `.tar.gz` into `into` (the `tar` crate skips entries with `..` and makes absolute
/// paths relative) and checks that it held `cifar-100-binary/`.
fn unpack(archive: &Path, into: &Path) -> DataResult<PathBuf> {
    let f = fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    fs::create_dir_all(into).map_err(|e| DataError::io(into, e))?;
    tar.unpack(into).map_err(|e| DataError::io(archive, e))?;
    let dir = into.join(CIFAR100_DIR);
    if !dir.is_dir() {
        return Err(DataError::Layout {
            path: archive.to_path_buf(),
            reason: format!(
                "the archive holds no `{CIFAR100_DIR}/` directory; it is not {CIFAR100_ARCHIVE} ({CIFAR100_HINT})"
            ),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(builder: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, raw_path: &[u8], data: &[u8]) {
        // Set the name bytes directly: `append_data` refuses `..`, and the test wants it written.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..raw_path.len()].copy_from_slice(raw_path);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    #[test]
    fn unpack_keeps_entries_inside_and_needs_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("a.tar.gz");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        append(&mut builder, b"cifar-100-binary/test.bin", &[0u8; CIFAR100_RECORD_LEN]);
        append(&mut builder, b"../escaped.txt", b"no");
        fs::write(&archive, builder.into_inner().unwrap().finish().unwrap()).unwrap();

        let into = tmp.path().join("out");
        let dir = unpack(&archive, &into).unwrap();
        assert_eq!(dir, into.join(CIFAR100_DIR));
        assert_eq!(read_cifar100_file(&dir.join("test.bin"), Cifar100Labels::Fine).unwrap().len(), 1);
        assert!(!tmp.path().join("escaped.txt").exists());

        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        append(&mut builder, b"other/x.bin", b"x");
        fs::write(&archive, builder.into_inner().unwrap().finish().unwrap()).unwrap();
        let msg = unpack(&archive, &tmp.path().join("out2")).unwrap_err().to_string();
        assert!(msg.contains("a.tar.gz") && msg.contains("no `cifar-100-binary/`"), "{msg}");
    }
}
