//! `matrix.html`: one row per scenario, one column per target; each cell
//! says pass, fail, xfail or skip and links to its evidence; cells that
//! differ from the newest target's are highlighted.

use std::fmt::Write as _;
use std::path::Path;

use super::conformance::{Entry, Report, Verdict};
use super::escape;

/// A target's name as a folder name (a binary's path holds slashes).
pub fn folder(target: &str) -> String {
    target.replace('/', "_")
}

/// The entry of the newest target: the latest istiod, then the latest Envoy.
pub fn newest(entries: &[Entry]) -> Option<usize> {
    let version = |v: &str| -> Vec<u32> { v.split(['.', '-']).filter_map(|p| p.parse().ok()).collect() };
    (0..entries.len()).max_by_key(|i| {
        let implementation = &entries[*i].implementation;
        (version(&implementation.istiod.version), version(&implementation.envoy.version))
    })
}

/// Every scenario id of any entry, in first-seen order.
pub fn scenarios(entries: &[Entry]) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for result in entries.iter().flat_map(|e| &e.results) {
        if !ids.contains(&result.scenario.as_str()) {
            ids.push(&result.scenario);
        }
    }
    ids
}

pub fn write(path: &Path, report: &Report) -> std::io::Result<()> {
    let entries = &report.entries;
    let newest = newest(entries);
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>plugproof compatibility matrix</title><style>\
         body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} \
         th,td{border:1px solid #ccc;padding:.3em .6em;font-size:13px} th{background:#f3f3f3;vertical-align:bottom} \
         td a{text-decoration:none;color:inherit;display:block} .pass{background:#dff0d8} .fail{background:#f2dede} \
         .xfail{background:#fcf8e3} .skip{background:#eee;color:#777} .missing{background:#fff} \
         .differs{outline:3px solid #ff9800;outline-offset:-3px} .newest{background:#e3ecf7}</style></head><body>\
         <h1>plugproof compatibility matrix</h1>\
         <p>One row per scenario, one column per target. Outlined cells differ from the newest target's column.</p><table><tr><th>scenario</th>",
    );
    for (i, entry) in entries.iter().enumerate() {
        let implementation = &entry.implementation;
        let class = if Some(i) == newest { " class=\"newest\"" } else { "" };
        let image = implementation.image.as_ref().map_or(String::new(), |image| {
            let id = image.digest.as_deref().unwrap_or(&image.id);
            format!("<br>image {}<br>{}", escape(&image.reference), escape(id))
        });
        let _ = write!(
            out,
            "<th{class}><a href=\"{}/report.html\">{}</a><br><small>Envoy {}<br>istiod {} ({}){image}</small></th>",
            escape(&folder(&entry.target)),
            escape(&entry.target),
            escape(&implementation.envoy.version),
            escape(&implementation.istiod.version),
            escape(&implementation.istiod.mode),
        );
    }
    out.push_str("</tr>");
    let by_target: Vec<_> = entries.iter().map(Entry::by_scenario).collect();
    for id in scenarios(entries) {
        let _ = write!(out, "<tr><td>{}</td>", escape(id));
        let reference = newest.and_then(|n| by_target[n].get(id)).map(|r| r.result);
        for (entry, results) in entries.iter().zip(&by_target) {
            let Some(result) = results.get(id) else {
                out.push_str("<td class=\"missing\">-</td>");
                continue;
            };
            let differs = reference.is_some_and(|r| r != result.result);
            let link = match &result.evidence {
                Some(evidence) => relative(path, evidence),
                None => format!("{}/report.html#{}", folder(&entry.target), anchor(id)),
            };
            let title = result.detail.as_deref().map(|d| d.lines().next().unwrap_or_default()).unwrap_or_default();
            let kind = result.failure_kind.map(|k| format!(" ({k})")).unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"{}{}\" title=\"{}\"><a href=\"{}\">{}{kind}</a></td>",
                result.result.name(),
                if differs { " differs" } else { "" },
                escape(title),
                escape(&link),
                result.result.name(),
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    let _ = writeln!(out, "<p>Legend: {}</p></body></html>", legend());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, out)
}

fn legend() -> String {
    [Verdict::Pass, Verdict::Xfail, Verdict::Fail, Verdict::Skip]
        .iter()
        .map(|v| format!("<span class=\"{0}\">{0}</span>", v.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HTML anchor of a scenario in a run's report.
pub fn anchor(id: &str) -> String {
    id.replace('/', "-")
}

/// `evidence` relative to the folder of `page`, when it is inside it.
fn relative(page: &Path, evidence: &str) -> String {
    let base = page.parent().unwrap_or(Path::new(""));
    Path::new(evidence).strip_prefix(base).map_or_else(|_| evidence.to_owned(), |p| p.display().to_string())
}
