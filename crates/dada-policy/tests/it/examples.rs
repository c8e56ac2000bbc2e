//! The examples run with small sizes under `cargo test`, so they keep compiling and working.
use std::path::Path;

// `main` is the example's command line; the tests call its `run`.
#[allow(dead_code)]
#[path = "../../examples/policy_roundtrip.rs"]
mod policy_roundtrip;

#[test]
fn policy_roundtrip_trains_writes_and_reads_back_the_paper_policy() {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dada-policy-roundtrip");
    let report = policy_roundtrip::run(&policy_roundtrip::Options { out_dir, steps: 3, batch: 4, size: 16 }).unwrap();
    assert_eq!(report.steps.len(), 3);
    for (ops, applied, loss) in &report.steps {
        assert_eq!((ops.len(), applied.len()), (2, 2), "a paper sub-policy is a pair of ops");
        assert!(loss.is_finite() && *loss <= 0.0, "loss {loss}");
    }
    assert_eq!(report.exported.space, "paper");
    assert_eq!(report.exported.sub_policies.len(), 25, "the 25 heaviest are exported");
    assert!(report.written.iter().all(|p| p.is_file()), "{:?}", report.written);
    assert!(report.json_round_trips, "the JSON file reads back as the exported policy");
    assert!(report.params_round_trip, "the raw parameters load into a fresh policy");
    assert_eq!(report.augmented_dims, [4, 3, 16, 16]);
}
