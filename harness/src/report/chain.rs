//! A `filters` step's chain as a picture: the expected filters above the
//! chain Envoy holds, each filter a box coloured by what it is (a Wasm
//! filter by its phase, Envoy's own filters apart), in request order.

use std::fmt::Write as _;

use super::escape;
use crate::scenario::Phase;
use crate::steps::{ChainFilter, ChainSeen, FilterKind};

const STYLE: &str = "display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin:2px 0";

fn colour(kind: &FilterKind) -> &'static str {
    match kind {
        FilterKind::Wasm { phase: Phase::Authn, .. } => "#4e79a7",
        FilterKind::Wasm { phase: Phase::Authz, .. } => "#9467bd",
        FilterKind::Wasm { phase: Phase::Stats, .. } => "#17a2a2",
        FilterKind::Wasm { phase: Phase::UnspecifiedPhase, .. } => "#6b7b8c",
        FilterKind::Native => "#e07b00",
        FilterKind::Other => "#999",
    }
}

/// A short label: the plugin and phase for a Wasm filter, the short name of a native one.
fn label(filter: &ChainFilter) -> String {
    match &filter.kind {
        FilterKind::Wasm { plugin, phase } => format!("{plugin} ({})", phase_name(*phase)),
        FilterKind::Native => filter.name.trim_start_matches("envoy.filters.http.").to_owned(),
        FilterKind::Other => filter.name.clone(),
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Authn => "AUTHN",
        Phase::Authz => "AUTHZ",
        Phase::Stats => "STATS",
        Phase::UnspecifiedPhase => "unset phase",
    }
}

fn row(out: &mut String, title: &str, filters: &[ChainFilter], missing: &dyn Fn(&ChainFilter) -> bool) {
    let _ = write!(out, "<div style=\"{STYLE}\"><b style=\"width:5em\">{title}</b>");
    for (i, filter) in filters.iter().enumerate() {
        if i > 0 {
            out.push_str("&rarr;");
        }
        let border = if missing(filter) { "3px dashed #d62728" } else { "1px solid #333" };
        let _ = write!(
            out,
            "<span title=\"{}\" style=\"background:{};color:white;border:{border};border-radius:4px;padding:2px 6px;font-size:12px\">{}</span>",
            escape(&filter.name),
            colour(&filter.kind),
            escape(&label(filter))
        );
    }
    out.push_str("</div>");
}

/// The picture; an expected filter Envoy does not hold is outlined in red.
pub fn html(chain: &ChainSeen) -> String {
    let mut out = String::from("<div>");
    let held = |f: &ChainFilter| !chain.actual.iter().any(|a| a.name == f.name);
    row(&mut out, "expected", &chain.expected, &held);
    row(&mut out, "actual", &chain.actual, &|_| false);
    let legend = [
        ("#4e79a7", "AUTHN"),
        ("#9467bd", "AUTHZ"),
        ("#17a2a2", "STATS"),
        ("#6b7b8c", "unset phase"),
        ("#e07b00", "Envoy's own"),
    ];
    out.push_str("<div style=\"font-size:11px;color:#555\">");
    for (colour, name) in legend {
        let _ = write!(out, "<span style=\"color:{colour}\">&#9632;</span> {name} &nbsp;");
    }
    out.push_str("(request order; the response runs in reverse)</div></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_rows_and_marks_what_is_missing() {
        let wasm = |plugin: &str| ChainFilter {
            name: format!("x/{plugin}"),
            kind: FilterKind::Wasm { plugin: plugin.into(), phase: Phase::Authn },
        };
        let router = ChainFilter { name: "envoy.filters.http.router".into(), kind: FilterKind::Native };
        let chain = ChainSeen { expected: vec![wasm("ns/a"), wasm("ns/b")], actual: vec![wasm("ns/a"), router] };
        let picture = html(&chain);
        assert!(picture.contains(">ns/a (AUTHN)<"), "{picture}");
        assert!(picture.contains(">router<"), "{picture}");
        assert_eq!(picture.matches("dashed").count(), 1, "only ns/b is missing: {picture}");
    }
}
