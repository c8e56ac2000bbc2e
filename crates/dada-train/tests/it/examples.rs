//! The examples run with small sizes under `cargo test`, so they keep compiling and working.

// `main` is the example's command line; the tests call its `run`.
#[allow(dead_code)]
#[path = "../../examples/search_in_memory.rs"]
mod search_in_memory;

#[test]
fn search_in_memory_runs_every_step_and_exports_a_policy() {
    let options = search_in_memory::Options { per_class: 12, batch_size: 8, epochs: 1 };
    let mut seen = Vec::new();
    let report = search_in_memory::run(&options, &mut |row| seen.push(row.step)).unwrap();
    // 36 training images: 24 for the model (3 batches of 8), 12 for the validation loss
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(report.history.len(), 3);
    assert!(report.history.iter().all(|row| row.train_loss.is_finite() && row.val_loss.is_finite()));
    assert_eq!(report.policy.space, "paper");
    assert!(!report.policy.sub_policies.is_empty());
    assert!(report.test.loss.is_finite());
    assert!((0.0..=1.0).contains(&report.test.accuracy));
}
