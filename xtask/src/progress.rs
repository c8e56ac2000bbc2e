//! Shared terminal plumbing of the long jobs: the Ctrl-C flag and the step progress bar.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

/// A flag set by the first Ctrl-C (the job then writes a checkpoint and stops); a second
/// Ctrl-C quits at once.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = stop.clone();
    // Only one handler per process: a second call (tests) keeps the first.
    let _ = ctrlc::set_handler(move || {
        if handler_stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: writing a checkpoint (Ctrl-C again to quit at once)");
    });
    stop
}

/// A bar over `len` steps, starting at `pos`, with elapsed time, ETA and a message.
pub fn step_bar(len: usize, pos: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}")
            .expect("valid template"),
    );
    bar.set_position(pos as u64);
    bar
}
