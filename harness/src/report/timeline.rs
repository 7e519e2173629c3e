//! A reload's timeline as an SVG picture: answers per 100 ms, stacked by
//! version (errors on top, in red), with the moment of the change marked.

use std::fmt::Write as _;

use crate::assert::reload::{Analysis, BUCKET, ERROR};

const BAR: usize = 6;
const HEIGHT: usize = 140;
const TOP: usize = 24;
const LEFT: usize = 40;

pub fn svg(analysis: &Analysis) -> String {
    let width = LEFT + analysis.buckets.len() * BAR + 10;
    let peak = analysis.buckets.iter().map(|b| b.counts.values().sum::<usize>()).max().unwrap_or(1).max(1);
    let scale = |n: usize| n * HEIGHT / peak;
    let colour = |label: &str| {
        if label == ERROR {
            "#d62728"
        } else if label == analysis.from {
            "#9aa6b2"
        } else if label == analysis.to {
            "#2ca02c"
        } else {
            "#ff7f0e"
        }
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">"#,
        TOP + HEIGHT + 30
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="14">answers per {} ms: {} (old) {} (new) {} (errors)</text>"#,
        BUCKET.as_millis(),
        escape(&analysis.from),
        escape(&analysis.to),
        ERROR
    );
    let _ = write!(out, r##"<text x="2" y="{}">{peak}</text><text x="2" y="{}">0</text>"##, TOP + 10, TOP + HEIGHT);
    for (index, bucket) in analysis.buckets.iter().enumerate() {
        let x = LEFT + index * BAR;
        let mut y = TOP + HEIGHT;
        // Errors last, so they sit on top where they are seen.
        let mut labels: Vec<(&String, &usize)> = bucket.counts.iter().collect();
        labels.sort_by_key(|(label, _)| label.as_str() == ERROR);
        for (label, count) in labels {
            let h = scale(*count).max(1);
            y -= h;
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="{}" height="{h}" fill="{}"><title>{}: {count}</title></rect>"#,
                BAR - 1,
                colour(label),
                escape(label)
            );
        }
        if index % 10 == 0 {
            let _ = write!(out, r#"<text x="{x}" y="{}">{}s</text>"#, TOP + HEIGHT + 14, index / 10);
        }
    }
    let applied = LEFT + (analysis.applied_at.as_secs_f64() / BUCKET.as_secs_f64() * BAR as f64) as usize;
    let _ = write!(
        out,
        r#"<line x1="{applied}" y1="{TOP}" x2="{applied}" y2="{}" stroke="black" stroke-dasharray="3,2"/><text x="{}" y="{}">change</text>"#,
        TOP + HEIGHT,
        applied + 3,
        TOP + 10
    );
    out.push_str("</svg>");
    out
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
