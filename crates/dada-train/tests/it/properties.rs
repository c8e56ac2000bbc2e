//! Property tests of the parsers a user reaches: checkpoints (`Checkpoint::load`), dataset
//! metadata (`cifar::read_meta`, `store::inspect`, `store::load`, `store::prepare`), and the
//! dataset readers (`cifar::read_batch_file`, `cifar100::read_cifar100_file`,
//! `mat::read_mat_from_bytes`, `svhn::read_svhn_mat`), fed random bytes, random structures and
//! byte-level mutations of valid files. Each input gives `Ok` or an `Err` whose message is
//! non-empty and short; never a panic, a hang or an allocation the input does not justify.
//!
//! Deterministic: a fixed seed, no failure files written into the source tree.
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use candle::{DType, Device, Tensor};
use dada_train::checkpoint::Checkpoint;
use dada_train::data::cifar::{self, DatasetMeta};
use dada_train::data::cifar100::{self, Cifar100Labels, CIFAR100_RECORD_LEN};
use dada_train::data::mat::{self, MatArray, MatData};
use dada_train::data::store::{self, PrepareOptions, Prepared, Source, State};
use dada_train::data::svhn;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

#[path = "../../../../tools/testkit/parser_harness.rs"]
mod harness;
use harness::{MAX_ALLOC, MAX_MESSAGE};

/// Longest a single call may take (generous: the machine may be loaded).
const MAX_TIME: Duration = Duration::from_secs(10);

/// The runner configuration of these tests (their own fixed seed).
fn config(cases: u32) -> ProptestConfig {
    harness::config(cases, 0xDADA_0002)
}

/// Runs one call, checking that it is quick and allocates sanely.
fn watched<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    harness::watched(what, MAX_TIME, f)
}

/// An error a user sees: not empty, not a dump of the input.
fn check_message(what: &str, e: &dyn Display) -> Result<String, TestCaseError> {
    let msg = e.to_string();
    let n = msg.chars().count();
    prop_assert!(!msg.trim().is_empty(), "{what}: empty error message");
    prop_assert!(
        n < MAX_MESSAGE,
        "{what}: error message of {n} characters: {}...",
        msg.chars().take(300).collect::<String>()
    );
    Ok(msg)
}

/// `Ok` passes through; an `Err` must have a clean message.
fn clean<T, E: Display>(what: &str, r: Result<T, E>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => check_message(what, &e).map(|_| None),
    }
}

fn fail(e: impl Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

// ----- Byte mutations -----

/// One byte-level change of a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite a byte.
    Set(Index, u8),
    /// Insert a byte.
    Insert(Index, u8),
    /// Delete a byte.
    Delete(Index),
    /// Cut the file (inside the region: everything after it goes too).
    Truncate(Index),
    /// Copy a run of bytes to another place (duplicates structure).
    Splice(Index, Index, usize),
}

/// Bytes that matter to JSON and to binary headers, and any byte.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![2 => any::<u8>(), 1 => select(b"{}[]\",:-+.eE019 \n\\\xef\xbb\xbf\xff\x00\x80\x7f\x01\x08\x0e\x0f".to_vec())]
}

/// A non-zero XOR mask; single low bits half the time (they keep ASCII text ASCII, so a
/// mutated JSON header stays UTF-8 and is parsed further).
fn mask() -> impl Strategy<Value = u8> {
    prop_oneof![1u8..=255, select(vec![1u8, 2, 4, 8, 16, 32, 64])]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), mask()).prop_map(|(i, m)| Mutation::Flip(i, m)),
        3 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..48).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

/// One to a few mutations, mostly one or two.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop_oneof![3 => vec(mutation(), 1..3), 1 => vec(mutation(), 3..10)]
}

/// Applies `mutations` inside the region `lo..hi` of `bytes` (`hi`: `None` for the end of the
/// file; a fixed `hi` moves with what is inserted or deleted before it).
fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation], lo: usize, mut hi: Option<usize>) {
    for m in mutations {
        let end = hi.unwrap_or(bytes.len()).min(bytes.len());
        let span = end.saturating_sub(lo);
        match m {
            Mutation::Insert(i, b) => {
                bytes.insert(lo + i.index(span + 1), *b);
                hi = hi.map(|h| h + 1);
            }
            _ if span == 0 => {}
            Mutation::Flip(i, mask) => bytes[lo + i.index(span)] ^= mask,
            Mutation::Set(i, b) => bytes[lo + i.index(span)] = *b,
            Mutation::Delete(i) => {
                bytes.remove(lo + i.index(span));
                hi = hi.map(|h| h - 1);
            }
            Mutation::Truncate(i) => {
                bytes.truncate(lo + i.index(span));
                hi = hi.map(|h| h.min(bytes.len()));
            }
            Mutation::Splice(from, to, n) => {
                let from = lo + from.index(span);
                let run: Vec<u8> = bytes[from..(from + n).min(end)].to_vec();
                let to = lo + to.index(span + 1);
                let k = run.len();
                bytes.splice(to..to, run);
                hi = hi.map(|h| h + k);
            }
        }
    }
}

// ----- Random JSON -----

/// Numbers of every kind serde might meet, huge and negative included.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (0u64..300).prop_map(Value::from),
        2 => select(vec![0u64, 1, 3, 4096, 4097, 1 << 16, 1 << 32, (1 << 32) + 1, 1 << 53, u64::MAX]).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from), // non-finite values become null
        1 => (-2.0f64..5000.0).prop_map(Value::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number(),
        3 => "\\PC{0,16}".prop_map(Value::String),
    ]
}

/// Keys: the fields of the files read here, and random ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "channels", "height", "width", "classes", "name", "source", "sizes", "step", "config",
            "dtype", "shape", "data_offsets", "__metadata__", "dada_state", "dada_md5",
        ])
        .prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `good` most of the time, any JSON value otherwise.
fn mostly(good: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![40 => good, 1 => json_value()].boxed()
}

/// An object of (key, value) fields, each left out now and then, plus a random extra field.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<_> = fields
        .into_iter()
        .map(|(k, v)| prop::option::weighted(0.98, v).prop_map(move |v| v.map(|v| (k.to_string(), v))))
        .collect();
    (parts, btree_map("[a-z_]{1,8}", leaf(), 0..2))
        .prop_map(|(parts, extra)| {
            let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
            m.extend(parts.into_iter().flatten());
            Value::Object(m)
        })
        .boxed()
}

fn random_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

// ===== Checkpoints =====

/// A saved checkpoint: its bytes, where its tensor data starts, and what it holds.
struct CheckpointBase {
    bytes: Vec<u8>,
    data_start: usize,
    contents: Contents,
}

/// A checkpoint's tensors (name -> dtype, shape, values as f64) and state.
type Contents = (BTreeMap<String, (DType, Vec<usize>, Vec<f64>)>, Value);

fn contents(ck: &Checkpoint) -> Contents {
    let tensors = ck
        .tensors
        .iter()
        .map(|(n, t)| {
            let values = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            (n.clone(), (t.dtype(), t.dims().to_vec(), values))
        })
        .collect();
    (tensors, ck.state.clone())
}

fn checkpoint_base() -> &'static CheckpointBase {
    static BASE: OnceLock<CheckpointBase> = OnceLock::new();
    BASE.get_or_init(|| {
        let dev = Device::Cpu;
        let mut ck = Checkpoint::default();
        let t = |r: candle::Result<Tensor>| r.unwrap();
        ck.tensors.insert("model.conv.weight".into(), t(t(Tensor::arange(0f32, 24., &dev)).reshape((2, 3, 4))));
        ck.tensors.insert("model.bn.running_mean".into(), t(Tensor::new(&[0.5f32, -1.5, 2.25], &dev)));
        ck.tensors.insert("sgd.steps".into(), t(Tensor::new(&[7u32, 8], &dev)));
        ck.tensors.insert("policy.logits".into(), t(Tensor::new(&[[0.1f64, 0.2], [0.3, 0.4]], &dev)));
        ck.state = json!({"step": 12, "epoch": 3, "config": {"lr": 0.1, "model": "wrn-40-2"}, "history": [[1, 0.5], [2, 0.25]]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        ck.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let data_start = 8 + header;
        assert!(data_start < bytes.len());
        let back = Checkpoint::load(&path, &dev).unwrap();
        assert_eq!(contents(&back), contents(&ck));
        CheckpointBase { bytes, data_start, contents: contents(&ck) }
    })
}

/// Writes `bytes` as a checkpoint file and loads it: `Ok(Some(checkpoint))`, or `Ok(None)` after
/// checking the error's message (returned in `msg`).
fn load_checkpoint(bytes: &[u8], msg: &mut String) -> Result<Option<Checkpoint>, TestCaseError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let path = dir.path().join("checkpoint.safetensors");
    std::fs::write(&path, bytes).map_err(fail)?;
    match watched("Checkpoint::load", || Checkpoint::load(&path, &Device::Cpu))? {
        Ok(ck) => Ok(Some(ck)),
        Err(e) => {
            *msg = check_message("Checkpoint::load", &e)?;
            Ok(None)
        }
    }
}

/// A safetensors file made up from parts: a header (random JSON, or tensor entries with random
/// dtypes, shapes and offsets and our metadata), a length prefix that may lie, random data.
fn safetensors_like() -> impl Strategy<Value = Vec<u8>> {
    let dtype = select(vec!["F32", "F64", "U32", "U8", "I64", "F16", "BF16", "BOOL", "F8_E4M3", "I8", "X", ""]);
    let dim = prop_oneof![4 => 0u64..5, 1 => select(vec![1u64 << 32, u64::MAX, 1 << 62])];
    let offset = prop_oneof![4 => 0u64..64, 1 => select(vec![u64::MAX, 1u64 << 40])];
    let entry = object(vec![
        ("dtype", mostly(dtype.prop_map(Value::from))),
        ("shape", mostly(vec(dim, 0..4).prop_map(|v| json!(v)))),
        ("data_offsets", mostly(vec(offset, 0..4).prop_map(|v| json!(v)))),
    ]);
    let state = prop_oneof![json_value().prop_map(|v| v.to_string()), "\\PC{0,16}"];
    let metadata = object(vec![
        ("dada_state", mostly(state.prop_map(Value::String))),
        ("dada_md5", mostly(prop_oneof!["[0-9a-f]{32}", "\\PC{0,8}"].prop_map(Value::String))),
    ]);
    let header = prop_oneof![
        3 => (btree_map("[a-z.]{1,6}", entry, 0..4), metadata).prop_map(|(tensors, meta)| {
            let mut m: serde_json::Map<String, Value> = tensors.into_iter().collect();
            m.insert("__metadata__".into(), meta);
            Value::Object(m).to_string()
        }),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => "\\PC{0,32}",
    ];
    let prefix = prop_oneof![6 => Just(None), 1 => any::<u64>().prop_map(Some), 1 => (0u64..300).prop_map(Some)];
    (header, prefix, random_bytes(128)).prop_map(|(header, prefix, data)| {
        let mut out = prefix.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        out
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Random bytes and made-up safetensors files: a clean error, or a checkpoint.
    #[test]
    fn checkpoint_of_random_bytes_is_refused_cleanly(
        bytes in prop_oneof![1 => random_bytes(512), 3 => safetensors_like()],
    ) {
        load_checkpoint(&bytes, &mut String::new())?;
    }

    /// Any mutations anywhere: a clean error, or a checkpoint.
    #[test]
    fn mutated_checkpoint_is_loaded_or_refused_cleanly(mutations in mutations()) {
        let mut bytes = checkpoint_base().bytes.clone();
        apply(&mut bytes, &mutations, 0, None);
        load_checkpoint(&bytes, &mut String::new())?;
    }

    /// Mutations of the length prefix and the JSON header only.
    #[test]
    fn checkpoint_with_mutated_header_is_loaded_or_refused_cleanly(mutations in mutations()) {
        let base = checkpoint_base();
        let mut bytes = base.bytes.clone();
        apply(&mut bytes, &mutations, 0, Some(base.data_start));
        load_checkpoint(&bytes, &mut String::new())?;
    }

    /// One flipped byte anywhere is refused, or changes nothing that is loaded.
    #[test]
    fn checkpoint_with_one_flipped_byte_is_refused_or_unchanged(at in any::<Index>(), mask in mask()) {
        let base = checkpoint_base();
        let mut bytes = base.bytes.clone();
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        if let Some(ck) = load_checkpoint(&bytes, &mut String::new())? {
            prop_assert!(contents(&ck) == base.contents, "a flip at byte {at} loaded other contents");
        }
    }

    /// Any change to the tensor data (after the length prefix and header) is refused as damaged:
    /// the checkpoint's md5 covers every data byte.
    #[test]
    fn checkpoint_with_mutated_data_is_refused(mutations in mutations()) {
        let base = checkpoint_base();
        let mut bytes = base.bytes.clone();
        apply(&mut bytes, &mutations, base.data_start, None);
        prop_assume!(bytes != base.bytes);
        let mut msg = String::new();
        let loaded = load_checkpoint(&bytes, &mut msg)?;
        prop_assert!(loaded.is_none(), "damaged tensor data was loaded");
        prop_assert!(msg.contains("checksum") || msg.contains("corrupt"), "{msg}");
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Any JSON state saves and loads back unchanged (each save syncs to disk: fewer cases).
    #[test]
    fn checkpoint_state_round_trips(state in json_value()) {
        let dir = tempfile::tempdir().map_err(fail)?;
        let path = dir.path().join("c.safetensors");
        let mut ck = Checkpoint::default();
        ck.tensors.insert("w".into(), Tensor::new(&[1f32, 2.0], &Device::Cpu).map_err(fail)?);
        ck.state = state.clone();
        ck.save(&path).map_err(fail)?;
        let back = Checkpoint::load(&path, &Device::Cpu).map_err(fail)?;
        prop_assert_eq!(back.state, state);
    }
}

/// A copy of the saved checkpoint with its JSON header edited by `edit`.
fn with_header(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let base = checkpoint_base();
    let mut header: Value = serde_json::from_slice(&base.bytes[8..base.data_start]).unwrap();
    edit(&mut header);
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&base.bytes[base.data_start..]);
    out
}

/// The message of loading `bytes` as a checkpoint, which must fail; `Err` describes a message
/// that is too long.
fn checkpoint_refusal(bytes: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let msg = Checkpoint::load(&path, &Device::Cpu).expect_err("a damaged checkpoint was loaded").to_string();
    let n = msg.chars().count();
    if n < MAX_MESSAGE {
        Ok(msg)
    } else {
        Err(format!("a message of {n} characters: {}...", msg.chars().take(120).collect::<String>()))
    }
}

const LONG: usize = 5_000;

/// Long strings in a checkpoint's header that messages do not echo (tensor names, state,
/// shapes, offsets): refused with short messages.
#[test]
fn checkpoint_header_with_long_fields_gives_short_errors() {
    let long = "n".repeat(LONG);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a 5,000-character tensor name",
            with_header(|h| {
                let t = h.as_object_mut().unwrap().remove("sgd.steps").unwrap();
                h[long.as_str()] = t;
            }),
        ),
        ("a 5,000-character state", with_header(|h| h["__metadata__"]["dada_state"] = json!(long))),
        ("5,000 dimensions", with_header(|h| h["sgd.steps"]["shape"] = json!(vec![1; LONG]))),
        (
            "a 5,000-character tensor name with bad offsets and no md5",
            with_header(|h| {
                let mut t = h.as_object_mut().unwrap().remove("sgd.steps").unwrap();
                t["data_offsets"] = json!([0, 1]);
                h[long.as_str()] = t;
                h["__metadata__"].as_object_mut().unwrap().remove("dada_md5");
            }),
        ),
    ];
    for (what, bytes) in cases {
        if let Err(e) = checkpoint_refusal(&bytes) {
            panic!("{what}: {e}");
        }
    }
}

/// Long strings in a checkpoint's header that messages echo: cut.
#[test]
fn checkpoint_header_with_long_echoed_fields_gives_short_errors() {
    let long = "n".repeat(LONG);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a 5,000-character dtype", with_header(|h| h["sgd.steps"]["dtype"] = json!(long))),
        ("a 5,000-character dada_md5", with_header(|h| h["__metadata__"]["dada_md5"] = json!(long))),
    ];
    let problems: Vec<String> = cases
        .into_iter()
        .filter_map(|(what, bytes)| checkpoint_refusal(&bytes).err().map(|e| format!("{what}: {e}")))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ===== Dataset metadata =====

/// The files of a tiny dataset built by `store::prepare` from an ImageFolder tree: two classes
/// of 4x4 images, 6 training and 4 test images.
struct DatasetBase {
    files: Vec<(String, Vec<u8>)>,
    meta: DatasetMeta,
    meta_json: Vec<u8>,
}

const META_FILE: &str = "dada-meta.json";

fn dataset_base() -> &'static DatasetBase {
    static BASE: OnceLock<DatasetBase> = OnceLock::new();
    BASE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("images");
        for (split, n) in [("train", 3), ("test", 2)] {
            for (k, class) in ["cat", "dog"].iter().enumerate() {
                let dir = src.join(split).join(class);
                std::fs::create_dir_all(&dir).unwrap();
                for i in 0..n {
                    let img = image::RgbImage::from_fn(4, 4, |x, y| {
                        image::Rgb([(x * 40 + i * 7) as u8, (y * 50 + k as u32 * 90) as u8, (i * 60) as u8])
                    });
                    img.save(dir.join(format!("{i}.png"))).unwrap();
                }
            }
        }
        let root = tmp.path().join("data");
        let prepared =
            store::prepare(&root, "tiny", &Source::ImageFolder(src), PrepareOptions::default(), &mut |_, _, _| {})
                .unwrap();
        assert!(matches!(prepared, Prepared::Built { replaced: false, .. }));
        let dir = store::dataset_dir(&root, "tiny");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        let meta = cifar::read_meta(&dir).unwrap();
        assert_eq!((meta.shape_text().as_str(), meta.classes.len()), ("3x4x4", 2));
        let meta_json = files.iter().find(|(n, _)| n == META_FILE).unwrap().1.clone();
        assert!(store::load(&root, "tiny").is_ok());
        DatasetBase { files, meta, meta_json }
    })
}

/// Writes the tiny dataset's files under `root` as dataset `name`, with `meta_json` as its
/// `dada-meta.json`; returns the dataset folder.
fn write_dataset(root: &Path, name: &str, meta_json: &[u8]) -> Result<PathBuf, TestCaseError> {
    let dir = store::dataset_dir(root, name);
    std::fs::create_dir_all(&dir).map_err(fail)?;
    for (file, bytes) in &dataset_base().files {
        let bytes = if file == META_FILE { meta_json } else { bytes };
        std::fs::write(dir.join(file), bytes).map_err(fail)?;
    }
    Ok(dir)
}

/// The files of a folder and their bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// What every metadata `read_meta` accepts must satisfy.
fn check_meta(m: &DatasetMeta) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.channels, 3);
    prop_assert!((1..=DatasetMeta::MAX_SIDE).contains(&m.height) && (1..=DatasetMeta::MAX_SIDE).contains(&m.width));
    prop_assert!((2..=256).contains(&m.classes.len()));
    let distinct: std::collections::BTreeSet<&String> = m.classes.iter().collect();
    prop_assert_eq!(distinct.len(), m.classes.len());
    Ok(())
}

/// Dataset `name` under a fresh root, holding the tiny dataset's files with `meta_json` as its
/// metadata: `read_meta`, `inspect`, `load` and `prepare` (without `force`) each give a clean
/// answer, agree with each other, and change nothing.
fn check_dataset_folder(name: &str, meta_json: &[u8]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().map_err(fail)?;
    let root = tmp.path();
    let dir = write_dataset(root, name, meta_json)?;
    let before = snapshot(&dir);

    let meta = clean("read_meta", watched("read_meta", || cifar::read_meta(&dir))?)?;
    if let Some(m) = &meta {
        check_meta(m)?;
    }
    let state = clean("inspect", watched("inspect", || store::inspect(root, name))?)?;
    match &state {
        Some(State::Ready(m)) => prop_assert!(meta.as_ref() == Some(m), "inspect and read_meta disagree"),
        Some(other) => prop_assert!(false, "a folder with files inspected as {other:?}"),
        None => {}
    }
    let loaded = clean("load", watched("load", || store::load(root, name))?)?;
    if let Some(ds) = &loaded {
        prop_assert!(state.is_some(), "load read a folder inspect refused");
        let m = &ds.meta;
        for set in [&ds.train, &ds.test] {
            prop_assert_eq!(set.pixels.len(), set.len() * m.image_len());
            prop_assert!(set.labels.iter().all(|&l| (l as usize) < m.classes.len()));
        }
    }
    // Without --force nothing is rebuilt over a folder that holds files (the source does not
    // even exist: it must never be read).
    let missing_source = Source::ImageFolder(root.join("no-such-images"));
    let prepared = store::prepare(root, name, &missing_source, PrepareOptions::default(), &mut |_, _, _| {});
    match clean("prepare", prepared)? {
        Some(p) => prop_assert!(matches!(p, Prepared::AlreadyThere(_)) && state.is_some(), "prepare gave {p:?}"),
        None => prop_assert!(state.is_none(), "prepare refused a folder inspect accepted"),
    }
    prop_assert!(snapshot(&dir) == before, "the dataset folder changed");
    Ok(())
}

/// An image dimension: mostly the real one, else an edge, huge, negative, fractional or not a
/// number.
fn dimension(real: u64) -> BoxedStrategy<Value> {
    prop_oneof![
        60 => Just(Value::from(real)),
        6 => select(vec![0u64, 1, 2, 3, 4, 5, 32, 255, 4095, 4096, 4097, 65_535, 65_536, 1 << 31, 1 << 32, (1 << 32) + 1, 1 << 48, u64::MAX])
            .prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => select(vec![json!(3.0), json!(3.5), json!(-1), json!("3"), Value::Null, json!(1e300)]),
    ]
    .boxed()
}

/// Strings metadata holds; with `long`, now and then thousands of characters.
fn meta_text(long: bool) -> BoxedStrategy<String> {
    let short = prop_oneof![
        3 => select(vec!["tiny", "cat", "dog", "cifar10", "svhn", "", " ", "a", "pets"]).prop_map(String::from),
        2 => "\\PC{0,16}",
    ];
    if long {
        prop_oneof![1 => short, 1 => (100usize..3_000).prop_map(|n| "é".repeat(n))].boxed()
    } else {
        short.boxed()
    }
}

/// `dada-meta.json` with random field values of mostly the right types.
fn meta_like(long: bool) -> impl Strategy<Value = Vec<u8>> {
    let base = dataset_base();
    let real_sizes: BTreeMap<String, u64> = base.meta.sizes.clone();
    let files: Vec<String> = real_sizes.keys().cloned().collect();
    let size = prop_oneof![
        2 => select(vec![0u64, 1, 13, 26, 48, 49, 98, u64::MAX, 1 << 40]).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => select(vec![json!(-1), json!(26.5), json!("26"), Value::Null]),
    ];
    let perturbed = (Just(real_sizes.clone()), select(files.clone()), size.clone()).prop_map(|(sizes, f, v)| {
        let mut m: serde_json::Map<String, Value> = sizes.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        m.insert(f, v);
        Value::Object(m)
    });
    let sizes = prop_oneof![
        8 => Just(json!(real_sizes)),
        3 => perturbed,
        1 => btree_map(prop_oneof![select(files), "\\PC{0,8}"], size, 0..8).prop_map(|m| json!(m)),
    ];
    let classes = prop_oneof![
        8 => Just(json!(["cat", "dog"])),
        3 => vec(meta_text(long), 0..6).prop_map(|v| json!(v)),
        1 => (0usize..400).prop_map(|n| json!((0..n).map(|i| format!("c{i}")).collect::<Vec<_>>())),
        1 => Just(json!(["cat", "cat"])),
        1 => Just(json!(["cat", ""])),
    ];
    let text = move || meta_text(long).prop_map(Value::String);
    let meta = object(vec![
        ("channels", dimension(3)),
        ("height", dimension(4)),
        ("width", dimension(4)),
        ("classes", mostly(classes)),
        ("name", mostly(prop_oneof![6 => Just(json!("tiny")), 2 => text(), 1 => Just(Value::Null)])),
        ("source", mostly(text())),
        ("sizes", mostly(sizes)),
    ]);
    (meta, any::<bool>(), prop::bool::weighted(0.1)).prop_map(|(v, pretty, bom)| {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        let mut bytes = if bom { b"\xef\xbb\xbf".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(text.as_bytes());
        bytes
    })
}

/// The dataset name looked up: the folder's own, the official CIFAR-10 folder's, another
/// built-in one's.
fn dataset_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("tiny"), 1 => Just("cifar10"), 1 => Just("svhn")]
}

proptest! {
    #![proptest_config(config(512))]

    /// `dada-meta.json` with random fields: clean answers that agree, nothing changed.
    #[test]
    fn dataset_with_random_metadata_fields(name in dataset_name(), meta in meta_like(false)) {
        check_dataset_folder(name, &meta)?;
    }

    /// `dada-meta.json` holding any JSON value, or random bytes.
    #[test]
    fn dataset_with_random_metadata_json(
        name in dataset_name(),
        meta in prop_oneof![3 => json_value().prop_map(|v| v.to_string().into_bytes()), 1 => random_bytes(256)],
    ) {
        check_dataset_folder(name, &meta)?;
    }

    /// The tiny dataset's own `dada-meta.json` with mutated bytes.
    #[test]
    fn dataset_with_mutated_metadata(name in dataset_name(), mutations in mutations()) {
        let mut meta = dataset_base().meta_json.clone();
        apply(&mut meta, &mutations, 0, None);
        check_dataset_folder(name, &meta)?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Metadata strings of up to 3,000 characters (name, source, classes): messages stay short.
    #[test]
    fn dataset_with_long_metadata_strings(name in dataset_name(), meta in meta_like(true)) {
        check_dataset_folder(name, &meta)?;
    }
}

/// Metadata claiming images of 2^32 pixels (and more) is refused before anything is sized from it.
#[test]
fn metadata_claiming_huge_images_is_refused() {
    let base = dataset_base();
    let huge = [
        (3u64, 65_536u64, 65_536u64),
        (3, 1 << 32, 1),
        (3, 1, 1 << 32),
        (1 << 32, 1, 1),
        (3, u64::MAX, u64::MAX),
        (u64::MAX, u64::MAX, u64::MAX),
        (3, 4097, 4),
    ];
    for (channels, height, width) in huge {
        let mut meta = json!(base.meta);
        meta["channels"] = json!(channels);
        meta["height"] = json!(height);
        meta["width"] = json!(width);
        let bytes = meta.to_string().into_bytes();
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_dataset(tmp.path(), "tiny", &bytes).unwrap();
        let (r, largest) = harness::alloc_watch::largest_allocation(|| cifar::read_meta(&dir));
        let msg = r.unwrap_err().to_string();
        assert!(largest < MAX_ALLOC, "read_meta allocated {largest} bytes");
        assert!(msg.contains("dada-meta.json"), "{msg}");
        assert!(store::inspect(tmp.path(), "tiny").is_err());
        assert!(store::load(tmp.path(), "tiny").is_err());
        check_dataset_folder("tiny", &bytes).unwrap();
    }
    // The largest size accepted, over files of a 3x4x4 dataset: refused when read, without a
    // buffer of a 4096x4096 image (empty files are read as no images).
    let mut meta = json!(base.meta);
    meta["height"] = json!(4096);
    meta["width"] = json!(4096);
    let bytes = meta.to_string().into_bytes();
    let tmp = tempfile::tempdir().unwrap();
    write_dataset(tmp.path(), "tiny", &bytes).unwrap();
    let (r, largest) = harness::alloc_watch::largest_allocation(|| store::load(tmp.path(), "tiny"));
    assert!(r.is_err() && largest < MAX_ALLOC, "{largest} bytes");
    check_dataset_folder("tiny", &bytes).unwrap();
}

/// Long names and sources in the metadata are cut in every message that echoes them.
#[test]
fn dataset_metadata_with_long_strings_gives_short_errors() {
    let base = dataset_base();
    let long = "n".repeat(5_000);
    let mut problems = Vec::new();
    let mut try_meta = |what: &str, meta: Value, name: &str, damage: Option<&str>| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_dataset(tmp.path(), name, meta.to_string().as_bytes()).unwrap();
        if let Some(file) = damage {
            std::fs::write(dir.join(file), b"x").unwrap();
        }
        for (call, r) in [
            ("inspect", store::inspect(tmp.path(), name).map(|_| ())),
            ("load", store::load(tmp.path(), name).map(|_| ())),
        ] {
            if let Err(e) = r {
                let n = e.to_string().chars().count();
                if n >= MAX_MESSAGE {
                    problems.push(format!("{what}: {call} gave a message of {n} characters"));
                }
            }
        }
    };
    let mut m = json!(base.meta);
    m["name"] = json!(long);
    try_meta("a 5,000-character name", m, "tiny", None);
    let mut m = json!(base.meta);
    m["source"] = json!(long);
    try_meta("a 5,000-character source and a damaged file", m, "tiny", Some("data_batch_1.bin"));
    let mut m = json!(base.meta);
    m["classes"] = json!([long, "dog"]);
    try_meta("a 5,000-character class name", m, "tiny", None);
    let mut m = json!(base.meta);
    m["classes"] = json!([long, long]);
    try_meta("a repeated 5,000-character class name", m, "tiny", None);
    let mut m = json!(base.meta);
    m["height"] = json!(long);
    try_meta("a 5,000-character string for the height", m, "tiny", None);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Long variable names and many dimensions in MAT-files are cut in messages.
#[test]
fn mat_and_svhn_errors_cut_long_names_and_dimensions() {
    let long = "n".repeat(LONG);
    let many = vec![1usize; LONG];
    let mut problems = Vec::new();
    let mut check = |what: &str, r: Result<(), dada_train::DataError>| {
        let msg = r.expect_err(what).to_string();
        let n = msg.chars().count();
        if n >= MAX_MESSAGE {
            problems
                .push(format!("{what}: a message of {n} characters: {}...", msg.chars().take(100).collect::<String>()));
        }
    };
    let bytes = mat::write_mat(&[(long.as_str(), &[2, 2], MatData::U8(vec![1, 2, 3]))], false);
    check("a 5,000-byte variable name", mat::read_mat_from_bytes(&bytes, Path::new("t.mat")).map(|_| ()));
    let bytes = mat::write_mat(&[("X", &many, MatData::U8(vec![1, 2]))], false);
    check("5,000 dimensions", mat::read_mat_from_bytes(&bytes, Path::new("t.mat")).map(|_| ()));
    let x_many = mat::write_mat(&[("X", &many, MatData::U8(vec![1])), ("y", &[1, 1], MatData::F64(vec![1.0]))], false);
    // Two images, one label in a 1x1x...x1 `y`.
    let y_many = mat::write_mat(
        &[("X", &[32, 32, 3, 2], MatData::U8(vec![0; 6144])), ("y", &many, MatData::F64(vec![1.0]))],
        false,
    );
    for (what, bytes) in [("SVHN X with 5,000 dimensions", x_many), ("SVHN y with 5,000 dimensions", y_many)] {
        let (_dir, path) = write_temp(svhn::SVHN_TRAIN_FILE, &bytes).unwrap();
        check(what, svhn::read_svhn_mat(&path).map(|_| ()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ===== Dataset readers =====

/// CIFAR-10-layout metadata the readers are given (always checked ones, as `read_meta` returns).
fn batch_meta() -> impl Strategy<Value = DatasetMeta> {
    let names = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
    select(vec![
        DatasetMeta::cifar10(),
        DatasetMeta::new(3, 2, 2, names(2)),
        DatasetMeta::new(3, 1, 1, names(256)),
        DatasetMeta::new(3, DatasetMeta::MAX_SIDE, DatasetMeta::MAX_SIDE, names(3)),
    ])
}

/// Labels: mostly in range for `n` classes.
fn label(n: usize) -> impl Strategy<Value = u8> {
    prop_oneof![6 => (0..n.min(256)).prop_map(|l| l as u8), 1 => any::<u8>()]
}

/// Whole records of `record` bytes whose first `labels` bytes are labels below `n`(s), then
/// perhaps a few stray bytes.
fn records(record: usize, label_bounds: Vec<usize>, max: usize) -> impl Strategy<Value = Vec<u8>> {
    let one = (label_bounds.into_iter().map(label).collect::<Vec<_>>(), 0u8..=255).prop_map(move |(labels, fill)| {
        let mut r = labels;
        let k = r.len();
        r.extend((0..record - k).map(|i| fill.wrapping_add(i as u8)));
        r
    });
    (vec(one, 0..max), prop_oneof![6 => Just(0usize), 1 => 1usize..8]).prop_map(|(recs, stray)| {
        let mut out: Vec<u8> = recs.concat();
        out.extend((0..stray).map(|i| i as u8));
        out
    })
}

fn write_temp(name: &str, bytes: &[u8]) -> Result<(tempfile::TempDir, PathBuf), TestCaseError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).map_err(fail)?;
    Ok((dir, path))
}

// --- MAT-files ---

/// One array as `write_mat` takes it.
type Array = (String, Vec<usize>, MatData);

fn mat_name() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[A-Za-z][A-Za-z0-9_]{0,10}", 1 => select(vec!["X", "y", ""]).prop_map(String::from), 1 => "\\PC{0,6}"]
}

/// Finite doubles (NaN would not compare equal after a round trip).
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        (-300.0f64..300.0).prop_map(f64::round),
        select(vec![0.0, -0.0, 255.0, 256.0, 1e300, f64::MIN_POSITIVE]),
    ]
}

/// An array whose data matches its dimensions.
fn mat_array() -> impl Strategy<Value = Array> {
    (mat_name(), vec(0usize..5, 0..4), any::<bool>()).prop_flat_map(|(name, dims, bytes)| {
        let n: usize = dims.iter().product();
        let data = if bytes {
            vec(any::<u8>(), n).prop_map(MatData::U8).boxed()
        } else {
            vec(finite(), n).prop_map(MatData::F64).boxed()
        };
        (Just(name), Just(dims), data)
    })
}

/// An array whose data need not match its dimensions (the writer does not check).
fn odd_mat_array() -> impl Strategy<Value = Array> {
    let data = prop_oneof![vec(any::<u8>(), 0..20).prop_map(MatData::U8), vec(finite(), 0..6).prop_map(MatData::F64)];
    (mat_name(), vec(prop_oneof![4 => 0usize..6, 1 => Just(i32::MAX as usize)], 0..5), data)
}

fn write_arrays(arrays: &[Array], compressed: bool) -> Vec<u8> {
    let refs: Vec<(&str, &[usize], MatData)> =
        arrays.iter().map(|(n, d, data)| (n.as_str(), d.as_slice(), data.clone())).collect();
    mat::write_mat(&refs, compressed)
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tag(ty: u32, len: u32) -> Vec<u8> {
    [ty.to_le_bytes(), len.to_le_bytes()].concat()
}

/// A declared length: the true one mostly, else a lie.
fn declared() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![8 => Just(None), 1 => select(vec![0u32, 1, 7, 8, 9, 1 << 20, u32::MAX]).prop_map(Some), 1 => any::<u32>().prop_map(Some)]
}

/// A made-up `miMATRIX` element (perhaps in a `miCOMPRESSED` one): random class and flags,
/// dimensions (negative and huge ones too), name, data type and bytes, sizes that may lie.
fn matrix_soup() -> impl Strategy<Value = Vec<u8>> {
    let class = prop_oneof![4 => 6u8..=15, 1 => any::<u8>()];
    let flags = prop_oneof![4 => Just(0u32), 1 => Just(0x0800u32), 1 => any::<u32>()];
    let dim = prop_oneof![6 => 0i32..5, 1 => any::<i32>(), 1 => Just(-1), 1 => Just(i32::MAX)];
    let mi = prop_oneof![4 => select(vec![1u32, 2, 3, 4, 5, 6, 7, 9, 12, 13]), 1 => 0u32..20, 1 => any::<u32>()];
    let name = prop_oneof![Just(vec![]), vec(any::<u8>(), 1..5), vec(any::<u8>(), 5..12)];
    (class, flags, vec(dim, 0..5), name, mi, vec(any::<u8>(), 0..48), declared(), declared(), 0u8..4).prop_map(
        |(class, flags, dims, name, mi, data, body_len, data_len, wrap)| {
            let mut body = tag(6, 8);
            body.extend_from_slice(&(flags & !0xFF | class as u32).to_le_bytes());
            body.extend_from_slice(&[0; 4]);
            let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
            body.extend(tag(5, dims.len() as u32));
            body.extend_from_slice(&dims);
            body.resize(body.len().next_multiple_of(8), 0);
            if name.len() <= 4 && !name.is_empty() {
                body.extend_from_slice(&(1u32 | (name.len() as u32) << 16).to_le_bytes());
                body.extend_from_slice(&name);
                body.resize(body.len() + 4 - name.len(), 0);
            } else {
                body.extend(tag(1, name.len() as u32));
                body.extend_from_slice(&name);
                body.resize(body.len().next_multiple_of(8), 0);
            }
            body.extend(tag(mi, data_len.unwrap_or(data.len() as u32)));
            body.extend_from_slice(&data);
            body.resize(body.len().next_multiple_of(8), 0);
            let mut element = tag(14, body_len.unwrap_or(body.len() as u32));
            element.extend(body);
            if wrap == 0 {
                let zipped = zlib(&element);
                let mut out = tag(15, zipped.len() as u32);
                out.extend(zipped);
                out
            } else {
                element
            }
        },
    )
}

/// A MAT-file header (v5, little-endian) followed by made-up elements and random bytes.
fn mat_soup() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        6 => Just(mat::write_mat(&[], false)),
        1 => (select(vec![0x0100u16, 0x0200, 0, 0xFFFF]), select(vec![*b"IM", *b"MI", *b"XX"])).prop_map(|(v, e)| {
            let mut h = mat::write_mat(&[], false);
            h[124..126].copy_from_slice(&v.to_le_bytes());
            h[126..128].copy_from_slice(&e);
            h
        }),
    ];
    let element = prop_oneof![
        4 => matrix_soup(),
        1 => (0u32..20, declared(), vec(any::<u8>(), 0..24)).prop_map(|(ty, len, payload)| {
            let mut out = tag(ty, len.unwrap_or(payload.len() as u32));
            out.extend(payload);
            out
        }),
        1 => (0u32..20, 0u32..6, any::<u32>()).prop_map(|(ty, n, data)| {
            [((n << 16) | ty).to_le_bytes(), data.to_le_bytes()].concat()
        }),
        1 => (declared(), vec(any::<u8>(), 0..32)).prop_map(|(len, raw)| {
            let zipped = zlib(&raw);
            let mut out = tag(15, len.unwrap_or(zipped.len() as u32));
            out.extend(zipped);
            out
        }),
    ];
    (header, vec(element, 0..4), random_bytes(16)).prop_map(|(h, elements, tail)| [h, elements.concat(), tail].concat())
}

fn check_mat(bytes: &[u8]) -> Result<Option<Vec<MatArray>>, TestCaseError> {
    clean(
        "read_mat_from_bytes",
        watched("read_mat_from_bytes", || mat::read_mat_from_bytes(bytes, Path::new("t.mat")))?,
    )
}

/// What an SVHN file holds: the number of images and how `X` and `y` are stored.
#[derive(Debug, Clone)]
struct SvhnFile {
    n: usize,
    x_dims: Vec<usize>,
    x_u8: bool,
    y_dims: Vec<usize>,
    y: Vec<f64>,
    y_u8: bool,
    names: (String, String),
    compressed: bool,
}

impl SvhnFile {
    /// Whether the reader must accept it.
    fn valid(&self) -> bool {
        let n = self.n;
        let x_ok = self.x_dims == [32, 32, 3, n] || (n == 1 && self.x_dims == [32, 32, 3]);
        let y_ok = self.y_dims == [n, 1] || self.y_dims == [1, n] || (n == 1 && self.y_dims.iter().all(|&d| d == 1));
        let labels_ok = self.stored_y().iter().all(|&v| (1.0..=10.0).contains(&v) && v.fract() == 0.0);
        self.names == ("X".into(), "y".into()) && x_ok && self.x_u8 && y_ok && labels_ok
    }

    /// The labels as the file stores them (as u8 when `y_u8`).
    fn stored_y(&self) -> Vec<f64> {
        if self.y_u8 {
            self.y.iter().map(|&v| f64::from(v.clamp(0.0, 255.0) as u8)).collect()
        } else {
            self.y.clone()
        }
    }

    fn x(&self) -> Vec<u8> {
        let len: usize = self.x_dims.iter().product();
        (0..len).map(|i| (i * 7 + i / 3072 * 13) as u8).collect()
    }

    fn bytes(&self) -> Vec<u8> {
        let x = self.x();
        let x_data = if self.x_u8 { MatData::U8(x) } else { MatData::F64(x.iter().map(|&b| b as f64).collect()) };
        let y_data = if self.y_u8 {
            MatData::U8(self.stored_y().iter().map(|&v| v as u8).collect())
        } else {
            MatData::F64(self.y.clone())
        };
        let arrays = [
            (self.names.0.as_str(), self.x_dims.as_slice(), x_data),
            (self.names.1.as_str(), self.y_dims.as_slice(), y_data),
        ];
        mat::write_mat(&arrays, self.compressed)
    }
}

/// SVHN files, mostly valid: 0 to 2 images, odd dimensions, labels, types and names now and then.
fn svhn_file() -> impl Strategy<Value = SvhnFile> {
    (0usize..3).prop_flat_map(|n| {
        let x_dims = prop_oneof![
            8 => Just(vec![32, 32, 3, n]),
            1 => Just(if n == 1 { vec![32, 32, 3] } else { vec![32, 32, 3, n] }),
            1 => select(vec![vec![32, 32, 2, n], vec![32, 3, 32, n], vec![3, 32, 32, n], vec![32, 32, 3, n, 1], vec![32, 32], vec![2, 2]]),
        ];
        let y_dims = prop_oneof![
            8 => Just(vec![n, 1]),
            1 => Just(vec![1, n]),
            1 => select(vec![vec![n], vec![n, 2], vec![n + 1, 1], vec![1, 1], vec![1, 1, 1], vec![]]),
        ];
        let label = prop_oneof![
            12 => (1u8..=10).prop_map(f64::from),
            1 => select(vec![0.0, 11.0, 2.5, -1.0, 255.0, f64::NAN, f64::INFINITY, 1e300]),
        ];
        let names = prop_oneof![
            12 => Just(("X".to_string(), "y".to_string())),
            1 => select(vec![("x", "y"), ("X", "Y"), ("y", "X"), ("X", "X")]).prop_map(|(a, b)| (a.to_string(), b.to_string())),
        ];
        (x_dims, prop::bool::weighted(0.95), y_dims, prop::bool::weighted(0.3), names, any::<bool>()).prop_flat_map(
            move |(x_dims, x_u8, y_dims, y_u8, names, compressed)| {
                let count: usize = y_dims.iter().product();
                vec(label.clone(), count).prop_map(move |y| SvhnFile {
                    n,
                    x_dims: x_dims.clone(),
                    x_u8,
                    y_dims: y_dims.clone(),
                    y,
                    y_u8,
                    names: names.clone(),
                    compressed,
                })
            },
        )
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// `read_batch_file`: random bytes and records with random labels for several metadata:
    /// accepted exactly when the file is whole records with labels in range.
    #[test]
    fn batch_files_are_read_exactly_when_whole_and_labelled(
        meta in batch_meta(),
        bytes in prop_oneof![random_bytes(2048), records(13, vec![3], 6)],
        pick in any::<Index>(),
    ) {
        // Whole records for the chosen metadata now and then.
        let bytes = if pick.index(3) == 0 && meta.record_len() <= 4096 {
            let n = bytes.len() / meta.record_len();
            bytes[..n * meta.record_len()].to_vec()
        } else {
            bytes
        };
        let (_dir, path) = write_temp("data_batch_1.bin", &bytes)?;
        let got = clean("read_batch_file", watched("read_batch_file", || cifar::read_batch_file(&path, &meta))?)?;
        let r = meta.record_len();
        let valid = bytes.len() % r == 0 && bytes.chunks_exact(r).all(|rec| (rec[0] as usize) < meta.classes.len());
        prop_assert_eq!(got.is_some(), valid);
        if let Some(set) = got {
            prop_assert_eq!(set.len(), bytes.len() / r);
            for (i, rec) in bytes.chunks_exact(r).enumerate() {
                prop_assert_eq!(set.labels[i], rec[0]);
                prop_assert_eq!(set.image(i), &rec[1..]);
            }
        }
    }

    /// `read_cifar100_file`: random bytes and records with random coarse and fine labels.
    #[test]
    fn cifar100_files_are_read_exactly_when_whole_and_labelled(
        bytes in prop_oneof![1 => random_bytes(8000), 3 => records(CIFAR100_RECORD_LEN, vec![20, 100], 4)],
        fine in any::<bool>(),
    ) {
        let labels = if fine { Cifar100Labels::Fine } else { Cifar100Labels::Coarse };
        let (_dir, path) = write_temp("train.bin", &bytes)?;
        let got = clean("read_cifar100_file", watched("read_cifar100_file", || cifar100::read_cifar100_file(&path, labels))?)?;
        let r = CIFAR100_RECORD_LEN;
        let valid = bytes.len() % r == 0 && bytes.chunks_exact(r).all(|rec| rec[0] < 20 && rec[1] < 100);
        prop_assert_eq!(got.is_some(), valid);
        if let Some(set) = got {
            prop_assert_eq!(set.len(), bytes.len() / r);
            for (i, rec) in bytes.chunks_exact(r).enumerate() {
                prop_assert_eq!(set.labels[i], if fine { rec[1] } else { rec[0] });
                prop_assert_eq!(set.image(i), &rec[2..]);
            }
        }
    }

    /// `read_mat_from_bytes` of random bytes, with or without a valid header, and of made-up
    /// elements (lying sizes, odd classes, types and dimensions, compressed or not).
    #[test]
    fn mat_of_random_bytes_is_refused_cleanly(
        bytes in prop_oneof![1 => random_bytes(512), 1 => random_bytes(256).prop_map(|b| [mat::write_mat(&[], false), b].concat()), 4 => mat_soup()],
    ) {
        check_mat(&bytes)?;
    }

    /// MAT-files `write_mat` writes read back exactly.
    #[test]
    fn mat_files_round_trip(arrays in vec(mat_array(), 0..4), compressed in any::<bool>()) {
        let bytes = write_arrays(&arrays, compressed);
        let got = check_mat(&bytes)?;
        let want: Vec<MatArray> = arrays.into_iter().map(|(name, dims, data)| MatArray { name, dims, data }).collect();
        prop_assert_eq!(got, Some(want));
    }

    /// Files of `write_mat` (arrays whose dimensions may not match their data), mutated anywhere
    /// or after the 128-byte header only.
    #[test]
    fn mutated_mat_files_are_read_or_refused_cleanly(
        arrays in vec(prop_oneof![4 => mat_array(), 1 => odd_mat_array()], 0..4),
        compressed in any::<bool>(),
        after_header in prop::bool::weighted(0.8),
        mutations in mutations(),
    ) {
        let mut bytes = write_arrays(&arrays, compressed);
        apply(&mut bytes, &mutations, if after_header { 128 } else { 0 }, None);
        check_mat(&bytes)?;
    }

    /// `read_svhn_mat`: files in SVHN's layout, mostly valid, read exactly when valid (images
    /// turned planar, label 10 read as the digit 0); mutated, read or refused cleanly.
    #[test]
    fn svhn_files_are_read_exactly_when_valid(
        file in svhn_file(),
        mutate in prop::bool::weighted(0.3),
        mutations in mutations(),
    ) {
        let mut bytes = file.bytes();
        if mutate {
            apply(&mut bytes, &mutations, 128, None);
        }
        let (_dir, path) = write_temp(svhn::SVHN_TRAIN_FILE, &bytes)?;
        let got = clean("read_svhn_mat", watched("read_svhn_mat", || svhn::read_svhn_mat(&path))?)?;
        if mutate {
            return Ok(());
        }
        prop_assert_eq!(got.is_some(), file.valid(), "{:?}", got.as_ref().map(|s| s.len()));
        if let Some(set) = got {
            prop_assert_eq!(set.len(), file.n);
            let labels: Vec<u8> = file.stored_y().iter().map(|&v| v as u8 % 10).collect();
            prop_assert_eq!(&set.labels, &labels);
            let x = file.x();
            for n in 0..file.n {
                for (ch, r, c) in [(0, 0, 1), (1, 5, 30), (2, 31, 0), (2, 17, 9)] {
                    prop_assert_eq!(set.image(n)[ch * 1024 + r * 32 + c], x[r + 32 * c + 1024 * ch + 3072 * n]);
                }
            }
        }
    }
}
