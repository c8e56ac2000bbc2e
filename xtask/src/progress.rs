//! Shared terminal plumbing of the long jobs: the Ctrl-C flag, the step progress bar, and plain
//! progress lines when stderr is not a terminal.
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Seconds between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(60);

/// The progress of a long job over `len` steps: the bar of [`step_bar`] on a terminal; when
/// stderr is not a terminal (a log file, `nohup`), where the bar draws nothing, a plain line at
/// most once a minute with the step, the message, the time per step and the time left.
pub struct StepProgress {
    bar: ProgressBar,
    /// `Some` when stderr is not a terminal: (start, last line, step at start).
    plain: Option<(Instant, Instant, u64)>,
}

impl StepProgress {
    /// Starts at step `pos` of `len`.
    pub fn new(len: usize, pos: usize) -> Self {
        let now = Instant::now();
        let plain = (!std::io::stderr().is_terminal()).then_some((now, now, pos as u64));
        Self { bar: step_bar(len, pos), plain }
    }

    /// One step done, with the message to show.
    pub fn step(&mut self, msg: String) {
        self.bar.inc(1);
        if let Some((start, last, pos0)) = &mut self.plain {
            let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
            if last.elapsed() >= PLAIN_EVERY && pos < len {
                *last = Instant::now();
                let per_step = start.elapsed().as_secs_f64() / (pos - *pos0).max(1) as f64;
                let left = hms(per_step * (len - pos) as f64);
                eprintln!("step {pos}/{len}: {msg}; {per_step:.1} s/step, {left} left");
            }
        }
        self.bar.set_message(msg);
    }

    /// A warning printed above the bar.
    pub fn warn(&self, msg: &str) {
        self.bar.suspend(|| eprintln!("warning: {msg}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `h:mm:ss`.
fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
