//! `report.html`: every scenario with its result and steps; reload steps
//! with their timeline picture and summary.

use std::fmt::Write as _;
use std::path::Path;

use super::bundle::details;
use super::escape;
use super::timeline::svg;
use crate::outcome::{Outcome, Status};

pub fn write(path: &Path, profile: &str, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>plugproof: {profile}</title><style>\
         body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:.5em;overflow:auto}} \
         .pass{{color:#2ca02c}} .fail{{color:#d62728}} .skip{{color:#888}}</style></head><body>\
         <h1>plugproof on profile {profile}</h1>"
    );
    for outcome in outcomes {
        let (class, word, note) = match &outcome.status {
            Status::Passed => ("pass", "PASS", String::new()),
            Status::Failed(failure) => (
                "fail",
                "FAIL",
                format!("<p>failure kind: {}</p><pre>{}</pre>", failure.kind, escape(&failure.message)),
            ),
            Status::Skipped(reason) => ("skip", "SKIP", format!("<p>{}</p>", escape(reason))),
        };
        let _ = write!(
            out,
            "<h2><span class=\"{class}\">{word}</span> {} <small>({:.2} s)</small></h2>{note}<ul>",
            escape(&outcome.id),
            outcome.timings.total.as_secs_f64()
        );
        for step in &outcome.steps {
            let _ = write!(out, "<li>{} line {}: {}", step.verdict(), step.line, escape(&step.label));
            if let Some(reason) = &step.expected_failure {
                let _ = write!(out, " <em>(known: {})</em>", escape(reason));
            }
            if let Some(analysis) = &step.reload {
                let _ = write!(out, "<div>{}</div>", svg(analysis));
            }
            let details = details(step);
            if !details.is_empty() {
                let _ = write!(out, "<pre>{}</pre>", escape(&details));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, out)
}
