//! A scenario's stats over its steps, as a picture: one line per stat that
//! two `stats` steps or more read (a VM count, memory, a plugin's counter
//! across reloads), each scaled to its own range.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use crate::steps::StepResult;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 60.0;

/// An SVG per stat read twice or more, with its first, last, least and
/// greatest values; empty if none was.
pub fn html(steps: &[StepResult]) -> String {
    let mut series: BTreeMap<&str, Vec<(u64, i64)>> = BTreeMap::new();
    for step in steps {
        for (name, value) in step.stats_read.iter().flatten() {
            series.entry(name).or_default().push((step.line, *value));
        }
    }
    let mut out = String::new();
    for (name, points) in series.into_iter().filter(|(_, points)| points.len() > 1) {
        let values: Vec<i64> = points.iter().map(|(_, v)| *v).collect();
        let (least, most) = (*values.iter().min().expect("points"), *values.iter().max().expect("points"));
        let span = (most - least).max(1) as f64;
        let step = WIDTH / (points.len() - 1) as f64;
        let line: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, HEIGHT - (v - least) as f64 / span * HEIGHT))
            .collect();
        let _ = write!(
            out,
            "<p><code>{}</code> over {} reads (lines {}..{}): first {}, last {}, least {least}, greatest {most}</p>\
             <svg width=\"{WIDTH}\" height=\"{}\" viewBox=\"-2 -2 {} {}\"><polyline fill=\"none\" stroke=\"#1f77b4\" \
             stroke-width=\"1.5\" points=\"{}\"/></svg>",
            escape(name),
            points.len(),
            points[0].0,
            points[points.len() - 1].0,
            values[0],
            values[values.len() - 1],
            HEIGHT + 4.0,
            WIDTH + 4.0,
            HEIGHT + 4.0,
            line.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read(line: u64, stats: &[(&str, i64)]) -> StepResult {
        StepResult {
            line,
            label: "stats".into(),
            passed: true,
            attempts: Some(1),
            once: true,
            elapsed: Duration::ZERO,
            failure: None,
            expected_failure: None,
            update: None,
            reload: None,
            tcp_reload: None,
            stats_read: Some(stats.iter().map(|(n, v)| (n.to_string(), *v)).collect()),
            chain: None,
        }
    }

    #[test]
    fn a_stat_read_twice_is_drawn() {
        let steps = [read(3, &[("vms", 3), ("once", 1)]), read(9, &[("vms", 5)])];
        let html = html(&steps);
        assert!(
            html.contains("<code>vms</code> over 2 reads (lines 3..9): first 3, last 5, least 3, greatest 5"),
            "{html}"
        );
        assert!(html.contains("points=\"0.0,60.0 480.0,0.0\""), "{html}");
        assert!(!html.contains("once"), "a stat read once has no line");
    }
}
