//! Progress for long work: a spinner on a terminal, plain lines otherwise
//! (CI logs, nextest output), both on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    label: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(label: impl Into<String>) -> Self {
        let label = label.into();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner().with_message(label.clone());
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("a valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("plugproof: {label} ...");
            None
        };
        Progress { label, started: Instant::now(), bar }
    }

    pub fn finish(self, ok: bool) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let outcome = if ok { "done" } else { "failed" };
        eprintln!("plugproof: {}: {outcome} in {:.1}s", self.label, self.started.elapsed().as_secs_f64());
    }
}
