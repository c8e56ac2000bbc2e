//! Property tests of the policy-file parsers a user reaches (`PolicyFile::read_json`,
//! `PolicyFile::read_fast_autoaugment`): random bytes, random JSON trees, policy-shaped JSON
//! with random fields, and byte-level mutations of valid files. Each input gives `Ok` (a
//! validated policy) or an `Err` whose message is non-empty and short; never a panic, a hang
//! or an allocation the input does not justify.
//!
//! Deterministic: a fixed seed, no failure files written into the source tree.
use std::fmt::Display;
use std::time::Duration;

use candle::Device;
use dada_policy::{
    canonical_op_name, OpEntry, PaperConfig, PaperPolicy, Policy, PolicyFile, SubPolicy, FAST_AUTOAUGMENT_NAMES, FORMAT,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

#[path = "../../../../tools/testkit/parser_harness.rs"]
mod harness;
use harness::MAX_MESSAGE;

/// Longest a single parse may take (generous: the machine may be loaded).
const MAX_TIME: Duration = Duration::from_secs(5);

/// The runner configuration of these tests (their own fixed seed).
fn config(cases: u32) -> ProptestConfig {
    harness::config(cases, 0xDADA_0001)
}

/// Runs one parse, checking that it is quick and allocates sanely.
fn watched<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    harness::watched(what, MAX_TIME, f)
}

/// An error a user sees: not empty, not a dump of the input.
fn check_message(what: &str, e: &dyn Display) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    let n = msg.chars().count();
    prop_assert!(!msg.trim().is_empty(), "{what}: empty error message");
    prop_assert!(
        n < MAX_MESSAGE,
        "{what}: error message of {n} characters: {}...",
        msg.chars().take(300).collect::<String>()
    );
    Ok(())
}

/// What every policy a reader returns must satisfy.
fn check_policy(what: &str, f: &PolicyFile) -> Result<(), TestCaseError> {
    prop_assert!(!f.sub_policies.is_empty(), "{what}: Ok with no sub-policies");
    for sp in &f.sub_policies {
        prop_assert!(!sp.ops.is_empty(), "{what}: Ok with an empty sub-policy");
        prop_assert!(sp.weight.is_finite() && sp.weight >= 0.0, "{what}: weight {}", sp.weight);
        for e in &sp.ops {
            prop_assert_eq!(canonical_op_name(&e.op), Some(e.op.as_str()), "{}: op name not canonical", what);
            prop_assert!((0.0..=1.0).contains(&e.probability), "{what}: probability {}", e.probability);
            prop_assert!((0.0..=1.0).contains(&e.magnitude), "{what}: magnitude {}", e.magnitude);
        }
    }
    for name in &f.ops {
        prop_assert_eq!(canonical_op_name(name), Some(name.as_str()), "{}: ops list name not canonical", what);
    }
    Ok(())
}

/// Feeds `bytes` to both readers: each gives a valid policy or a clean error; a policy read
/// from JSON writes back and reads back the same.
fn check_both_readers(bytes: &[u8]) -> Result<(), TestCaseError> {
    match watched("read_json", || PolicyFile::read_json(bytes))? {
        Ok(f) => {
            check_policy("read_json", &f)?;
            prop_assert_eq!(&f.format, FORMAT);
            let mut out = Vec::new();
            f.write_json(&mut out).unwrap();
            let back = PolicyFile::read_json(&out[..]);
            prop_assert!(back.as_ref().is_ok_and(|b| *b == f), "read_json of write_json: {back:?}");
        }
        Err(e) => check_message("read_json", &e)?,
    }
    match watched("read_fast_autoaugment", || PolicyFile::read_fast_autoaugment(bytes))? {
        Ok(f) => {
            check_policy("read_fast_autoaugment", &f)?;
            let mut out = Vec::new();
            f.write_fast_autoaugment(&mut out).unwrap();
            let back = PolicyFile::read_fast_autoaugment(&out[..]);
            prop_assert!(
                back.as_ref().is_ok_and(|b| b.sub_policies.len() == f.sub_policies.len()),
                "read_fast_autoaugment of write_fast_autoaugment: {back:?}"
            );
        }
        Err(e) => check_message("read_fast_autoaugment", &e)?,
    }
    Ok(())
}

// ----- Strategies -----

/// Op names in both conventions, a few near misses.
fn op_name() -> impl Strategy<Value = String> {
    let mut names: Vec<&str> = FAST_AUTOAUGMENT_NAMES.iter().flat_map(|(a, b)| [*a, *b]).collect();
    names.push("autocontrast");
    let near = vec!["AutoContrast ", "shearx", "SHEAR_X", "", "Posterize2", "ShearX\0"];
    prop_oneof![40 => select(names).prop_map(String::from), 2 => select(near).prop_map(String::from), 1 => "\\PC{0,12}"]
}

/// Strings a policy file might hold: op names, tags, random text; with `long`, now and then
/// thousands of characters.
fn text(long: bool) -> BoxedStrategy<String> {
    let short = prop_oneof![
        6 => op_name(),
        2 => select(vec![FORMAT, "paper", "tutorial", "fast-autoaugment", "dada-polic", "DADA-POLICY"]).prop_map(String::from),
        4 => "\\PC{0,16}",
    ];
    if long {
        prop_oneof![1 => short, 1 => (100usize..3_000).prop_map(|n| "é".repeat(n))].boxed()
    } else {
        short.boxed()
    }
}

/// Numbers of every kind serde might meet: unit-range, edge, huge, negative, integers.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        48 => (0.0f64..=1.0).prop_map(Value::from),
        2 => select(vec![0.0, 1.0, -0.0, 1.0 + 1e-12, -1e-300, 1e300, f64::MIN_POSITIVE, f64::MAX, -1.0]).prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from), // non-finite values become null
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (0u32..3).prop_map(Value::from),
    ]
}

fn leaf(long: bool) -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number(),
        3 => text(long).prop_map(Value::String),
    ]
}

/// Keys: the fields of both formats, and random ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["format", "version", "space", "ops", "sub_policies", "weight", "op", "probability", "magnitude"])
            .prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value(long: bool) -> impl Strategy<Value = Value> {
    leaf(long).prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `good` most of the time, any JSON value otherwise.
fn mostly(good: impl Strategy<Value = Value> + 'static, long: bool) -> BoxedStrategy<Value> {
    let odd = if long { 60 } else { 1 };
    prop_oneof![200 => good, odd => json_value(long)].boxed()
}

/// An object of (key, value) fields, each left out now and then.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let parts: Vec<_> = fields
        .into_iter()
        .map(|(k, v)| prop::option::weighted(0.99, v).prop_map(move |v| v.map(|v| (k.to_string(), v))))
        .collect();
    (parts, btree_map("[a-z_]{1,8}", leaf(false), 0..2)).prop_map(|(parts, extra)| {
        let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
        m.extend(parts.into_iter().flatten());
        Value::Object(m)
    })
}

/// Lists of 1 to `max - 1` items, now and then empty.
fn rarely_empty<S: Strategy + Clone + 'static>(item: S, max: usize) -> BoxedStrategy<Value>
where
    S::Value: Into<Value>,
{
    let list = |n: std::ops::Range<usize>| {
        vec(item.clone(), n).prop_map(|v| Value::Array(v.into_iter().map(Into::into).collect()))
    };
    prop_oneof![1 => list(0..1), 12 => list(1..max)].boxed()
}

/// Our policy.json, with random field values of mostly the right types.
fn policy_like(long: bool) -> impl Strategy<Value = Value> {
    let entry = object(vec![
        ("op", mostly(op_name().prop_map(Value::String), long)),
        ("probability", mostly(number(), long)),
        ("magnitude", mostly(number(), long)),
    ])
    .boxed();
    let sub = object(vec![("weight", mostly(number(), long)), ("ops", mostly(rarely_empty(entry, 4), long))]).boxed();
    object(vec![
        (
            "format",
            prop_oneof![12 => Just(json!(FORMAT)), 1 => text(long).prop_map(Value::String), 1 => json_value(long)]
                .boxed(),
        ),
        (
            "version",
            mostly(prop_oneof![8 => Just(json!(1)), 1 => any::<u32>().prop_map(Value::from), 1 => number()], long),
        ),
        ("space", mostly(text(long).prop_map(Value::String), long)),
        ("ops", mostly(vec(op_name().prop_map(Value::String), 0..5).prop_map(Value::Array), long)),
        ("sub_policies", mostly(rarely_empty(sub, 5), long)),
    ])
}

/// The fast-autoaugment list, with random entries of mostly the right shape.
fn fast_autoaugment_like(long: bool) -> impl Strategy<Value = Value> {
    let entry = prop_oneof![
        12 => (op_name(), number(), number()).prop_map(|(n, p, m)| json!([n, p, m])),
        6 => (op_name(), number(), number(), number()).prop_map(|(n, p, m, w)| json!([n, p, m, w])),
        1 => vec(leaf(long), 0..6).prop_map(Value::Array),
        1 => json_value(long),
    ]
    .boxed();
    let odd = if long { 8 } else { 1 };
    let sub = prop_oneof![24 => rarely_empty(entry, 4), odd => json_value(long).boxed()];
    prop_oneof![24 => rarely_empty(sub, 6), odd => json_value(long).boxed()]
}

/// A policy that validates: known ops, probabilities and magnitudes in [0, 1].
fn valid_policy() -> impl Strategy<Value = PolicyFile> {
    let names: Vec<&'static str> = FAST_AUTOAUGMENT_NAMES.iter().map(|(ours, _)| *ours).collect();
    let entry = (select(names.clone()), 0.0f64..=1.0, 0.0f64..=1.0).prop_map(|(op, probability, magnitude)| OpEntry {
        op: op.to_string(),
        probability,
        magnitude,
    });
    let sub = (0.0f64..10.0, vec(entry, 1..4)).prop_map(|(weight, ops)| SubPolicy { weight, ops });
    (select(vec!["paper", "tutorial", "fast-autoaugment"]), vec(select(names), 0..4), vec(sub, 1..8))
        .prop_map(|(space, ops, subs)| PolicyFile::new(space, ops.into_iter().map(String::from).collect(), subs))
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
    /// Cut the file.
    Truncate(Index),
    /// Copy a run of bytes to another place (duplicates structure).
    Splice(Index, Index, usize),
}

/// Bytes that matter to JSON, UTF-8 and numbers, and any byte.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![1 => any::<u8>(), 1 => select(b"{}[]\",:-+.eE019 \n\\nulltrufase\xef\xbb\xbf\xff\x00\x80".to_vec())]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        3 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..48).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
            _ if len == 0 => {}
            Mutation::Flip(i, mask) => bytes[i.index(len)] ^= mask,
            Mutation::Set(i, b) => bytes[i.index(len)] = *b,
            Mutation::Delete(i) => {
                bytes.remove(i.index(len));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Splice(from, to, n) => {
                let from = from.index(len);
                let run: Vec<u8> = bytes[from..(from + n).min(len)].to_vec();
                let to = to.index(len + 1);
                bytes.splice(to..to, run);
            }
        }
    }
}

/// Valid files of both formats to mutate: a small hand-made policy and the paper space's
/// export (25 sub-policies), each as policy.json and as a fast-autoaugment list.
fn valid_files() -> Vec<Vec<u8>> {
    let small = PolicyFile::new(
        "tutorial",
        vec!["shear_x".into(), "invert".into()],
        vec![
            SubPolicy {
                weight: 0.75,
                ops: vec![
                    OpEntry { op: "shear_x".into(), probability: 0.5, magnitude: 0.25 },
                    OpEntry { op: "invert".into(), probability: 1.0, magnitude: 0.0 },
                ],
            },
            SubPolicy {
                weight: 0.25,
                ops: vec![OpEntry { op: "posterize".into(), probability: 0.125, magnitude: 1.0 }],
            },
        ],
    );
    let paper = PaperPolicy::new(PaperConfig::default(), &Device::Cpu).unwrap().export();
    let mut files = Vec::new();
    for f in [&small, &paper] {
        let mut a = Vec::new();
        f.write_json(&mut a).unwrap();
        let mut b = Vec::new();
        f.write_fast_autoaugment(&mut b).unwrap();
        files.push(a);
        files.push(b);
    }
    files
}

fn deep(open: &str, n: usize) -> Vec<u8> {
    open.repeat(n).into_bytes()
}

proptest! {
    #![proptest_config(config(1024))]

    /// Random bytes, with and without a byte-order mark, and random valid UTF-8.
    #[test]
    fn arbitrary_bytes_are_refused_cleanly(
        bytes in prop_oneof![vec(any::<u8>(), 0..1024), "\\PC{0,256}".prop_map(String::into_bytes)],
        bom in any::<bool>(),
    ) {
        let bytes = if bom { [b"\xef\xbb\xbf".as_slice(), &bytes].concat() } else { bytes };
        check_both_readers(&bytes)?;
    }

    /// Any JSON tree, compact and pretty printed.
    #[test]
    fn any_json_value_is_read_or_refused_cleanly(v in json_value(false), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
        check_both_readers(text.as_bytes())?;
    }

    /// policy.json with random field values: a policy read is valid and round-trips.
    #[test]
    fn policy_shaped_json_is_read_or_refused_cleanly(v in policy_like(false)) {
        check_both_readers(v.to_string().as_bytes())?;
    }

    /// Fast-autoaugment lists with random entries.
    #[test]
    fn fast_autoaugment_shaped_json_is_read_or_refused_cleanly(v in fast_autoaugment_like(false)) {
        check_both_readers(v.to_string().as_bytes())?;
    }

    /// Valid files of both formats with flipped, replaced, inserted, deleted and copied bytes,
    /// or cut short.
    #[test]
    fn mutated_valid_files_are_read_or_refused_cleanly(
        file in select(valid_files()),
        mutations in prop_oneof![3 => vec(mutation(), 1..3), 1 => vec(mutation(), 3..10)],
    ) {
        let mut bytes = file;
        apply(&mut bytes, &mutations);
        check_both_readers(&bytes)?;
    }

    /// A UTF-8 byte-order mark before a valid file of either format changes nothing.
    #[test]
    fn a_byte_order_mark_before_a_valid_file_is_accepted(policy in valid_policy()) {
        let mut validated = policy.clone();
        validated.validate().unwrap();
        let mut json = b"\xef\xbb\xbf".to_vec();
        policy.write_json(&mut json).unwrap();
        let read = PolicyFile::read_json(&json[..]);
        prop_assert!(read.as_ref().is_ok_and(|r| *r == validated), "{read:?}");
        prop_assert_eq!(read.unwrap(), PolicyFile::read_json(&json[3..]).unwrap());

        let mut faa = b"\xef\xbb\xbf".to_vec();
        policy.write_fast_autoaugment(&mut faa).unwrap();
        let with_bom = PolicyFile::read_fast_autoaugment(&faa[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let without = PolicyFile::read_fast_autoaugment(&faa[3..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&with_bom, &without);
        let entries = |f: &PolicyFile| -> Vec<Vec<OpEntry>> { f.sub_policies.iter().map(|s| s.ops.clone()).collect() };
        prop_assert_eq!(entries(&with_bom), entries(&validated));
    }

    /// Strings of up to 3,000 characters anywhere in either format: messages stay short.
    #[test]
    fn long_strings_anywhere_are_cut(
        v in prop_oneof![policy_like(true).boxed(), fast_autoaugment_like(true).boxed(), json_value(true).boxed()],
    ) {
        check_both_readers(v.to_string().as_bytes())?;
    }
}

/// Deep nesting hits serde_json's recursion limit: an error, not a stack overflow.
#[test]
fn deeply_nested_json_is_refused_without_overflow() {
    for text in [deep("[", 100_000), deep("{\"a\":", 100_000), [deep("[", 50_000), deep("]", 50_000)].concat()] {
        let r = PolicyFile::read_json(&text[..]);
        check_message("read_json", &r.unwrap_err()).unwrap();
        let r = PolicyFile::read_fast_autoaugment(&text[..]);
        check_message("read_fast_autoaugment", &r.unwrap_err()).unwrap();
    }
    // 127 levels is within serde_json's limit: read, then refused for its shape.
    let text = [deep("[", 120), deep("]", 120)].concat();
    check_message("read_fast_autoaugment", &PolicyFile::read_fast_autoaugment(&text[..]).unwrap_err()).unwrap();
}

/// Long strings where a message might echo them (unknown format tag, op names, keys) are cut.
#[test]
fn long_strings_are_not_echoed_whole() {
    assert_no_long_messages(&long_string_files(false));
}

/// A long string where policy.json wants a number is cut in the message.
#[test]
fn long_strings_where_numbers_belong_are_not_echoed_whole() {
    assert_no_long_messages(&long_string_files(true));
}

/// Files with a 10,000-character string in places a message might echo it; `numbers`: in
/// fields that must be numbers.
fn long_string_files(numbers: bool) -> Vec<Value> {
    let text = "x".repeat(10_000);
    let long = text.as_str();
    let entry = |op: Value, p: Value, m: Value| json!({"op": op, "probability": p, "magnitude": m});
    let mut long_key = serde_json::Map::new();
    long_key.insert(long.to_string(), json!(1));
    let cases = [
        json!({"format": long, "version": 1, "space": "paper", "ops": [], "sub_policies": []}),
        json!({"format": FORMAT, "version": 1, "space": "paper", "ops": [],
               "sub_policies": [{"weight": 1.0, "ops": [entry(json!(long), json!(0.5), json!(0.5))]}]}),
        json!({"format": FORMAT, "version": 1, "space": "paper", "ops": [long],
               "sub_policies": [{"weight": 1.0, "ops": [entry(json!("invert"), json!(0.5), json!(0.5))]}]}),
        Value::Object(long_key),
        json!([[[long, 0.5, 0.5]]]),
        json!([[["invert", long, 0.5]]]),
    ];
    let in_numbers = [
        json!({"format": FORMAT, "version": 1, "space": "paper", "ops": [],
               "sub_policies": [{"weight": 1.0, "ops": [entry(json!("invert"), json!(long), json!(0.5))]}]}),
        json!({"format": FORMAT, "version": long, "space": "paper", "ops": [], "sub_policies": []}),
        json!({"format": FORMAT, "version": 1, "space": "paper", "ops": [], "sub_policies": [{"weight": long, "ops": []}]}),
    ];
    if numbers {
        in_numbers.to_vec()
    } else {
        cases.to_vec()
    }
}

fn assert_no_long_messages(cases: &[Value]) {
    let mut too_long = Vec::new();
    for (k, v) in cases.iter().enumerate() {
        let text = v.to_string();
        for (what, r) in [
            ("read_json", PolicyFile::read_json(text.as_bytes())),
            ("read_fast_autoaugment", PolicyFile::read_fast_autoaugment(text.as_bytes())),
        ] {
            if let Err(e) = check_message(what, &r.unwrap_err()) {
                too_long.push(format!("case {k}: {e}"));
            }
        }
    }
    assert!(too_long.is_empty(), "{}", too_long.join("\n"));
}
