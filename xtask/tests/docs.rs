//! The API docs build without a warning: `RUSTDOCFLAGS="-D warnings" cargo doc --workspace
//! --no-deps` passes, so every public item of the library crates has a doc line (each `lib.rs`
//! has `#![warn(missing_docs)]`) and every intra-doc link resolves. CI runs only `cargo test
//! --workspace`, so the check runs here.
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

#[test]
fn rustdoc_builds_the_workspace_without_warnings() {
    let root = workspace_root();
    // A target directory of its own: the `cargo test` that runs this test holds the lock on
    // the usual one, and its artifacts stay as they are.
    let target = root.join("target").join("doc-check");
    let started = Instant::now();
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--workspace", "--no-deps"])
        // Only build scripts and proc macros are compiled for docs (everything else is
        // metadata): unoptimised and without debug info they build in well under half the
        // time (about 2.5 instead of 6 minutes from an empty directory on two cores).
        .args(["--config", "profile.dev.package.\"*\".opt-level=0"])
        .args(["--config", "profile.dev.debug=0"])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps` failed ({}); fix the \
         warnings below (a missing doc line, a broken intra-doc link):\n{stderr}",
        output.status
    );
    eprintln!("cargo doc: ok in {:.0?}", started.elapsed());
}
