//! `report.html`: a summary table (scenario, result, time, failure kind),
//! then every scenario with its steps: a `filters` step's chain as a
//! picture, a reload step's timeline, the stats read over the steps, the details, the modules pushed
//! (source, sha256, digest) and the evidence of a failure.

use std::fmt::Write as _;
use std::path::Path;

use super::bundle::details;
use super::conformance::ScenarioResult;
use super::matrix::anchor;
use super::timeline::svg;
use super::{chain, escape, stats_chart};
use crate::outcome::{Outcome, Status};

pub fn write(path: &Path, title: &str, outcomes: &[Outcome]) -> std::io::Result<()> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>plugproof: {title}</title><style>\
         body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:.5em;overflow:auto}} \
         table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:.2em .6em;text-align:left}} \
         .pass{{color:#2ca02c}} .xfail{{color:#b8860b}} .fail{{color:#d62728}} .skip{{color:#888}}</style></head><body>\
         <h1>plugproof on {title}</h1><table><tr><th>scenario</th><th>result</th><th>time</th><th>failure kind</th></tr>",
        title = escape(title)
    );
    for outcome in outcomes {
        let result = ScenarioResult::of(outcome);
        let _ = write!(
            out,
            "<tr><td><a href=\"#{}\">{}</a></td><td class=\"{2}\">{2}</td><td>{3:.2} s</td><td>{4}</td></tr>",
            anchor(&outcome.id),
            escape(&outcome.id),
            result.result.name(),
            outcome.timings.total.as_secs_f64(),
            result.failure_kind.map(|k| k.to_string()).unwrap_or_default()
        );
    }
    out.push_str("</table>");
    for outcome in outcomes {
        let result = ScenarioResult::of(outcome);
        let note = match &outcome.status {
            Status::Passed => String::new(),
            Status::Failed(failure) => {
                format!("<p>failure kind: {}</p><pre>{}</pre>", failure.kind, escape(&failure.message))
            }
            Status::Skipped(reason) => format!("<p>{}</p>", escape(reason)),
        };
        let evidence = outcome
            .bundle
            .as_ref()
            .map(|b| format!("<p>evidence: <a href=\"{0}\">{0}</a></p>", escape(&b.display().to_string())))
            .unwrap_or_default();
        let modules: String =
            outcome.modules.iter().map(|m| format!("<li><code>{}</code></li>", escape(&m.to_string()))).collect();
        let modules = if modules.is_empty() { modules } else { format!("<p>modules:</p><ul>{modules}</ul>") };
        let _ = write!(
            out,
            "<h2 id=\"{0}\"><span class=\"{2}\">{3}</span> {1} <small>({4:.2} s)</small></h2>{note}{evidence}{modules}<ul>",
            anchor(&outcome.id),
            escape(&outcome.id),
            result.result.name(),
            result.result.name().to_uppercase(),
            outcome.timings.total.as_secs_f64()
        );
        for step in &outcome.steps {
            let _ = write!(out, "<li>{} line {}: {}", step.verdict(), step.line, escape(&step.label));
            if let Some(reason) = &step.expected_failure {
                let _ = write!(out, " <em>(known: {})</em>", escape(reason));
            }
            if let Some(seen) = &step.chain {
                out.push_str(&chain::html(seen));
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
        out.push_str(&stats_chart::html(&outcome.steps));
    }
    out.push_str("</body></html>\n");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, out)
}
