//! Named datasets: nothing a user prepared is replaced, every bad folder gets an error naming
//! the file and the fix, and a 48x48 three-class dataset searches and trains with every model.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use candle::Device;
use dada_train::data::{self, cifar, store, DatasetMeta, ImageSet, PrepareOptions, Prepared, Source, State};
use dada_train::models::ModelKind;
use dada_train::train::{TrainConfig, TrainPolicy, Trainer};
use dada_train::{DataError, Search, SearchConfig};

use super::data_errors::write_tree;

/// Every file under `root` with its bytes.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A two-class 48x48 dataset written where CIFAR-10 goes, as the importer of 2026-11 did
/// (metadata without a name).
fn users_dataset_in_cifar_folder(root: &Path) -> PathBuf {
    let dir = root.join(data::CIFAR10_DIR);
    let mut meta = DatasetMeta::new(3, 48, 48, vec!["cat".into(), "dog".into()]);
    meta.source = Some("my-images/".into());
    let mut train = ImageSet::empty(3, 48, 48);
    let mut test = ImageSet::empty(3, 48, 48);
    for i in 0..16u8 {
        train.push(&vec![i * 9; 3 * 48 * 48], i % 2);
        test.push(&vec![i * 5; 3 * 48 * 48], (i + 1) % 2);
    }
    cifar::write_dir(&dir, &train, &test, &meta).unwrap();
    // The importer of 2026-11 wrote no name and no sizes.
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("dada-meta.json")).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("sizes");
    std::fs::write(dir.join("dada-meta.json"), serde_json::to_string(&json).unwrap()).unwrap();
    dir
}

/// A small ImageFolder of CIFAR-10's shape (ten classes of 32x32): what the bundled copy is.
fn cifar_shaped_tree(root: &Path) -> PathBuf {
    let names: Vec<String> = data::CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
    let train: Vec<(&str, usize, u32)> = names.iter().map(|n| (n.as_str(), 2, 32)).collect();
    let test: Vec<(&str, usize, u32)> = names.iter().map(|n| (n.as_str(), 1, 32)).collect();
    write_tree(root, &train, &test);
    root.to_path_buf()
}

fn no_progress() -> impl FnMut(&str, u64, Option<u64>) {
    |_, _, _| {}
}

#[test]
fn a_damaged_user_dataset_is_never_rebuilt_over() {
    // The scenario of the bug report: the user's own data sits where CIFAR-10 goes, one file
    // goes missing, and a search asks for cifar10.
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let tree = cifar_shaped_tree(src.path());
    let dir = users_dataset_in_cifar_folder(root.path());
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    let before = snapshot(root.path());
    for force in [false, true] {
        let opts = PrepareOptions { seed: 0, force };
        let err = store::prepare(root.path(), "cifar10", &Source::ImageFolder(tree.clone()), opts, &mut no_progress()).unwrap_err();
        let msg = err.to_string();
        // Without force: another dataset than CIFAR-10 (two classes of 3x48x48); with force too,
        // since a damaged dataset is replaced only when it is the one asked for.
        assert!(matches!(err, DataError::WrongDataset { .. }), "{msg}");
        assert!(msg.contains("cifar-10-batches-bin") && msg.contains("3x48x48") && msg.contains("nothing was changed"), "{msg}");
        assert_eq!(snapshot(root.path()), before, "force = {force}");
    }
    let err = store::load(root.path(), "cifar10").unwrap_err();
    assert!(matches!(err, DataError::WrongDataset { .. }), "{err}");
    assert_eq!(snapshot(root.path()), before);
}

#[test]
fn a_missing_or_truncated_file_names_the_file_and_the_fix() {
    let src = tempfile::tempdir().unwrap();
    let tree = cifar_shaped_tree(src.path());
    for damage in ["missing", "cut-bytes", "cut-record"] {
        let root = tempfile::tempdir().unwrap();
        let built = store::prepare(root.path(), "cifar10", &Source::ImageFolder(tree.clone()), PrepareOptions::default(), &mut no_progress()).unwrap();
        assert!(matches!(built, Prepared::Built { replaced: false, .. }));
        let f = built.dir().join("data_batch_2.bin");
        let bytes = std::fs::read(&f).unwrap();
        match damage {
            "missing" => std::fs::remove_file(&f).unwrap(),
            "cut-bytes" => std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap(),
            // Whole records: only the recorded size can tell.
            _ => std::fs::write(&f, &bytes[..bytes.len() - 3073]).unwrap(),
        }
        let before = snapshot(root.path());
        let err = store::prepare(root.path(), "cifar10", &Source::ImageFolder(tree.clone()), PrepareOptions::default(), &mut no_progress()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Incomplete { .. }), "{damage}: {msg}");
        assert!(msg.contains("data_batch_2.bin") && msg.contains("cargo xtask datasets cifar10 --force"), "{damage}: {msg}");
        assert_eq!(snapshot(root.path()), before, "{damage}");
        assert!(store::load(root.path(), "cifar10").is_err());
        // --force rebuilds a damaged dataset of the name asked for.
        let opts = PrepareOptions { seed: 0, force: true };
        let rebuilt = store::prepare(root.path(), "cifar10", &Source::ImageFolder(tree.clone()), opts, &mut no_progress()).unwrap();
        assert!(matches!(rebuilt, Prepared::Built { replaced: true, .. }));
        assert_eq!(store::load(root.path(), "cifar10").unwrap().train.len(), 20);
        // Nothing is left beside it.
        let names: Vec<String> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec![data::CIFAR10_DIR.to_string()]);
    }
}

#[test]
fn an_import_under_its_own_name_and_every_refusal() {
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), &[("ant", 4, 48), ("bee", 4, 48), ("cow", 4, 48)], &[("ant", 2, 48), ("bee", 2, 48), ("cow", 2, 48)]);
    let root = tempfile::tempdir().unwrap();
    let pets = Source::ImageFolder(src.path().to_path_buf());
    let built = store::prepare(root.path(), "pets", &pets, PrepareOptions::default(), &mut no_progress()).unwrap();
    assert_eq!(built.dir(), root.path().join("pets"));
    let ds = store::load(root.path(), "pets").unwrap();
    assert_eq!(store::describe("pets", &ds.meta, &ds.train, &ds.test), "pets: 12 training and 6 test images of 3x48x48, 3 classes");
    assert_eq!(ds.meta.name.as_deref(), Some("pets"));
    // Again: nothing is written.
    let before = snapshot(root.path());
    let again = store::prepare(root.path(), "pets", &pets, PrepareOptions::default(), &mut no_progress()).unwrap();
    assert!(matches!(again, Prepared::AlreadyThere(_)));
    assert_eq!(snapshot(root.path()), before);

    // The pets folder asked for as another name: WrongDataset.
    std::fs::rename(root.path().join("pets"), root.path().join("birds")).unwrap();
    let err = store::load(root.path(), "birds").unwrap_err();
    assert!(matches!(err, DataError::WrongDataset { .. }) && err.to_string().contains("--dataset pets"), "{err}");
    std::fs::rename(root.path().join("birds"), root.path().join("pets")).unwrap();

    // CIFAR-10 asked for from a folder that is not CIFAR-10.
    let other = tempfile::tempdir().unwrap();
    let err = store::prepare(other.path(), "cifar10", &pets, PrepareOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("datasets import") && err.to_string().contains("--name"), "{err}");
    assert!(snapshot(other.path()).is_empty());

    // A folder of the user's own files is never written into, even with --force.
    let occupied = root.path().join("notes");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("todo.txt"), b"mine").unwrap();
    let before = snapshot(root.path());
    for force in [false, true] {
        let err = store::prepare(root.path(), "notes", &pets, PrepareOptions { seed: 0, force }, &mut no_progress()).unwrap_err();
        assert!(matches!(err, DataError::Occupied { .. }), "{err}");
    }
    // Nor the folder being imported from.
    let err = store::prepare(src.path().parent().unwrap(), src.path().file_name().unwrap().to_str().unwrap(), &pets, PrepareOptions { seed: 0, force: true }, &mut no_progress());
    assert!(err.is_err());
    assert_eq!(snapshot(root.path()), before);

    // Names that are not plain names.
    for bad in ["", "../etc", "a b", "-x", "x/y", &"n".repeat(65), "caf\u{e9}"] {
        let err = store::prepare(root.path(), bad, &pets, PrepareOptions::default(), &mut no_progress()).unwrap_err();
        assert!(matches!(err, DataError::BadName { .. }), "{bad:?}: {err}");
        assert!(err.to_string().len() < 300);
    }
    assert_eq!(snapshot(root.path()), before);
    assert_eq!(store::inspect(root.path(), "absent").unwrap(), State::Absent);
}

#[test]
fn one_class_or_a_class_without_test_images_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let one = tempfile::tempdir().unwrap();
    write_tree(one.path(), &[("ant", 4, 16)], &[("ant", 2, 16)]);
    let err = store::prepare(root.path(), "one", &Source::ImageFolder(one.path().into()), PrepareOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("at least two"), "{err}");
    let gap = tempfile::tempdir().unwrap();
    write_tree(gap.path(), &[("ant", 4, 16), ("bee", 4, 16)], &[("ant", 2, 16)]);
    let err = store::prepare(root.path(), "gap", &Source::ImageFolder(gap.path().into()), PrepareOptions::default(), &mut no_progress()).unwrap_err();
    assert!(err.to_string().contains("'bee' has no test images"), "{err}");
    assert!(snapshot(root.path()).is_empty());
}

#[test]
fn metadata_with_absurd_shapes_is_an_error_not_a_panic() {
    let root = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), &[("ant", 2, 8), ("bee", 2, 8)], &[("ant", 1, 8), ("bee", 1, 8)]);
    store::prepare(root.path(), "tiny", &Source::ImageFolder(src.path().into()), PrepareOptions::default(), &mut no_progress()).unwrap();
    let json = root.path().join("tiny/dada-meta.json");
    let good = std::fs::read_to_string(&json).unwrap();
    for (field, value) in [("height", "4294967296"), ("width", "0"), ("channels", "1"), ("height", "18446744073709551615")] {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        std::fs::write(&json, v.to_string()).unwrap();
        let err = store::load(root.path(), "tiny").unwrap_err();
        assert!(err.to_string().contains("dada-meta.json"), "{field}={value}: {err}");
    }
    // A byte-order mark is accepted.
    std::fs::write(&json, format!("\u{feff}{good}")).unwrap();
    store::load(root.path(), "tiny").unwrap();
}

/// A 48x48 three-class dataset: class k is brighter in its own third of the rows.
fn three_classes_48(n_train: usize, n_test: usize) -> cifar::BinaryDataset {
    let make = |n: usize| {
        let mut set = ImageSet::empty(3, 48, 48);
        for i in 0..n {
            let k = i % 3;
            let img: Vec<u8> = (0..3 * 48 * 48).map(|p| if (p % 2304) / 48 / 16 == k { 200 } else { 40 + (p % 7) as u8 }).collect();
            set.push(&img, k as u8);
        }
        set
    };
    let meta = DatasetMeta::new(3, 48, 48, vec!["a".into(), "b".into(), "c".into()]).named("shapes");
    cifar::BinaryDataset { train: make(n_train), test: make(n_test), meta, dir: "shapes".into() }
}

#[test]
fn a_48x48_three_class_dataset_searches_and_trains_with_every_model() {
    let ds = three_classes_48(24, 6);
    let never = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    for model in [ModelKind::TinyCnn, ModelKind::Wrn16_2, ModelKind::Wrn40_2, ModelKind::ResNet18] {
        let mut cfg = SearchConfig::paper();
        cfg.model = model;
        cfg.split = data::SplitConfig { n_train: 8, n_val: 4, n_test: Some(3), stratified: true, seed: 1 };
        cfg.batch_size = 4;
        cfg.epochs = 1;
        cfg.checkpoint_every = 100;
        let steps = cfg.total_steps();
        let mut search = Search::new(cfg, &ds, &Device::Cpu).unwrap();
        search.run(&dir.path().join(format!("{model}.safetensors")), &never, &mut |_| {}).unwrap();
        assert_eq!(search.step_index(), steps);
        assert!(search.history.iter().all(|r| r.train_loss.is_finite() && r.val_loss.is_finite()), "{model}");
        let eval = search.evaluate_test().unwrap();
        assert!(eval.loss.is_finite(), "{model}");
        assert!(!search.export().sub_policies.is_empty());

        let cfg = TrainConfig {
            model,
            n_train: Some(6),
            epochs: 1,
            batch_size: 3,
            warmup_epochs: 0,
            eval_every: 1,
            ..TrainConfig::wrn40x2_cifar10(TrainPolicy::Cutout)
        };
        let mut trainer = Trainer::new(cfg, &ds, &Device::Cpu).unwrap();
        trainer.run(&dir.path().join(format!("{model}-train.safetensors")), &never, &mut |_, l, _| assert!(l.is_finite())).unwrap();
        assert!(trainer.evaluate_test().unwrap().loss.is_finite(), "{model}");
    }
}
