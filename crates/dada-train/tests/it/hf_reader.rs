//! With the `hf-datasets` feature: candle-datasets' CIFAR-10 reader and ours agree on the
//! imported shared archive.
use dada_train::data::{self, ImportConfig};

#[test]
fn candle_datasets_reader_agrees_with_ours() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let archive = data::default_archive(&root).expect("the shared CIFAR-10 archive");
    let imported = data::import_image_folder(&archive, &ImportConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    data::cifar::write_dir(dir.path(), &imported.train, &imported.test, &imported.meta).unwrap();
    let ours = data::load_dir(dir.path()).unwrap();
    let theirs = candle_datasets::vision::cifar::load_dir(dir.path()).unwrap();
    let dev = candle::Device::Cpu;
    for (set, images, labels) in [
        (&ours.train, &theirs.train_images, &theirs.train_labels),
        (&ours.test, &theirs.test_images, &theirs.test_labels),
    ] {
        let (x, y) = set.all_tensors(&dev).unwrap();
        assert_eq!(x.dims(), images.dims());
        let diff = (x - images.to_dtype(candle::DType::F32).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        let theirs_labels: Vec<u32> = labels.to_dtype(candle::DType::U32).unwrap().to_vec1().unwrap();
        assert_eq!(y.to_vec1::<u32>().unwrap(), theirs_labels);
    }
}
