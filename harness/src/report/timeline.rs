//! A reload's timeline as an SVG picture: answers per 100 ms, stacked by
//! version (errors on top, in red), with the moment of the change, the
//! moment every connection had switched and the drain marked; below, each
//! long stream as a bar from its request to its end, across the change.

use std::fmt::Write as _;
use std::time::Duration;

use super::escape;
use crate::assert::reload::{describe, millis, Analysis, BUCKET, ERROR, NONE};
use crate::load::{LongStream, StreamEnd};

const BAR: usize = 10;
const HEIGHT: usize = 140;
const TOP: usize = 44;
const LEFT: usize = 40;
/// Roughly one character at the picture's 11 px font, to lay out the legend.
const CHAR: usize = 7;
/// A long stream's row: its bar's height, and the row's.
const STREAM: usize = 6;
const ROW: usize = 9;
/// Rows drawn at most; streams beyond them are counted in the caption.
const MAX_ROWS: usize = 32;
/// The width of the mark at the end of a stream that did not complete.
const CUT: usize = 4;

const OLD: &str = "#9aa6b2";
const NEW: &str = "#2ca02c";
const OTHER: &str = "#ff7f0e";
const FAILED: &str = "#d62728";
const DRAIN: &str = "#ffbf00";
const CHANGE: &str = "black";
const SWITCHED: &str = "#1a6e1a";

pub fn svg(analysis: &Analysis) -> String {
    let peak = analysis.buckets.iter().map(|b| b.counts.values().sum::<usize>()).max().unwrap_or(1).max(1);
    let scale = |n: usize| n * HEIGHT / peak;
    let x_at = |at: Duration| LEFT + (at.as_secs_f64() / BUCKET.as_secs_f64() * BAR as f64).round() as usize;
    let colour = |label: &str| match label {
        ERROR => FAILED,
        l if l == analysis.from => OLD,
        l if l == analysis.to => NEW,
        _ => OTHER,
    };
    let bottom = TOP + HEIGHT;
    let rows = rows(&analysis.long);
    let drawn = rows.len().min(MAX_ROWS);
    // Long streams below the axis's labels, one row per lane of them.
    let streams_top = bottom + 22;
    let marks_bottom = if drawn == 0 { bottom } else { streams_top + drawn * ROW };

    let mut body = String::new();
    let _ = write!(body, r#"<text x="{LEFT}" y="14">answers per {} ms</text>"#, BUCKET.as_millis());
    let mut x = LEFT;
    let mut legend = vec![
        (Swatch::Fill(OLD), format!("{} (old)", analysis.from)),
        (Swatch::Fill(NEW), format!("{} (new)", analysis.to)),
        (Swatch::Fill(OTHER), "other".to_owned()),
        (Swatch::Fill(FAILED), "failed".to_owned()),
        (Swatch::Fill(DRAIN), "drain".to_owned()),
        (Swatch::Line(CHANGE), "change".to_owned()),
        (Swatch::Line(SWITCHED), "all switched".to_owned()),
    ];
    if drawn > 0 {
        legend.push((Swatch::Fill(FAILED), "stream cut (end)".to_owned()));
    }
    for (swatch, label) in legend {
        match swatch {
            Swatch::Fill(colour) => {
                let _ = write!(body, r#"<rect x="{x}" y="21" width="10" height="10" fill="{colour}"/>"#);
            }
            Swatch::Line(colour) => {
                let _ = write!(body, r#"<line x1="{}" y1="20" x2="{}" y2="32" {}/>"#, x + 5, x + 5, dashed(colour));
            }
        }
        let _ = write!(body, r#"<text x="{}" y="30">{}</text>"#, x + 14, escape(&label));
        x += 14 + label.chars().count() * CHAR + 12;
    }
    let width = (LEFT + analysis.buckets.len() * BAR + 10).max(x);
    let _ = write!(body, r##"<text x="2" y="{}">{peak}</text><text x="2" y="{bottom}">0</text>"##, TOP + 10);

    for (index, bucket) in analysis.buckets.iter().enumerate() {
        let x = LEFT + index * BAR;
        let mut y = bottom;
        // Errors last, so they sit on top where they are seen.
        let mut labels: Vec<(&String, &usize)> = bucket.counts.iter().collect();
        labels.sort_by_key(|(label, _)| label.as_str() == ERROR);
        for (label, count) in labels {
            let h = scale(*count).max(1);
            y -= h;
            let _ = write!(
                body,
                r#"<rect x="{x}" y="{y}" width="{}" height="{h}" fill="{}"><title>{}: {count}</title></rect>"#,
                BAR - 1,
                colour(label),
                escape(label)
            );
        }
        if index % 10 == 0 {
            let _ = write!(body, r#"<text x="{x}" y="{}">{}s</text>"#, bottom + 14, index / 10);
        }
    }

    // A stream's bar: faint until its answer, then in its answer's colour,
    // with a red end if it did not complete.
    if drawn > 0 {
        let _ = write!(body, r#"<text x="2" y="{}">long</text>"#, streams_top + STREAM);
    }
    for (row, streams) in rows.iter().take(MAX_ROWS).enumerate() {
        let y = streams_top + row * ROW;
        for stream in streams {
            let (start, end) = (x_at(stream.started), x_at(stream.ended).max(x_at(stream.started) + 1));
            let answered = stream.answered.map_or(end, |at| x_at(at).clamp(start, end));
            let fill = colour(stream.version.as_deref().unwrap_or(NONE));
            let title = escape(&format!(
                "{}; answered {}",
                describe(stream, analysis.applied_at),
                stream.version.as_deref().unwrap_or(NONE)
            ));
            let _ = write!(body, r#"<g><title>{title}</title>"#);
            if answered > start {
                let _ = write!(
                    body,
                    r#"<rect x="{start}" y="{y}" width="{}" height="{STREAM}" fill="{fill}" opacity="0.35"/>"#,
                    answered - start
                );
            }
            if end > answered {
                let _ = write!(
                    body,
                    r#"<rect x="{answered}" y="{y}" width="{}" height="{STREAM}" fill="{fill}"/>"#,
                    end - answered
                );
            }
            if stream.end != StreamEnd::Completed {
                let _ = write!(
                    body,
                    r#"<rect x="{}" y="{}" width="{CUT}" height="{}" fill="{FAILED}"/>"#,
                    end.saturating_sub(CUT / 2),
                    y - 1,
                    STREAM + 2
                );
            }
            body.push_str("</g>");
        }
    }

    // Marks go over the bars; what they mean is written out below the axis.
    let mut caption = vec![format!("change at {}", millis(analysis.applied_at))];
    if let Some((first, last)) = analysis.drain {
        let (start, end) = (x_at(analysis.applied_at + first), x_at(analysis.applied_at + last));
        let closed = analysis.closed();
        let what = format!("drain: {closed} connections closed by the proxy, +{} to +{}", millis(first), millis(last));
        let _ = write!(
            body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{DRAIN}" opacity="0.7"><title>{what}</title></rect>"#,
            start.saturating_sub(1),
            TOP - 4,
            (end - start).max(1) + 2,
            HEIGHT + 4
        );
        caption.push(what);
    }
    let mut marker = |at: Duration, colour: &str| {
        let x = x_at(at);
        let _ = write!(body, r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{marks_bottom}" {}/>"#, dashed(colour));
    };
    marker(analysis.applied_at, CHANGE);
    if let Some(switched) = analysis.all_switched() {
        marker(analysis.applied_at + switched, SWITCHED);
        caption.push(format!("all connections on {} at +{}", analysis.to, millis(switched)));
    }
    if !analysis.long.is_empty() {
        let ends: Vec<String> = analysis.long_ends().into_iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        let mut line = format!("long streams: {} ({})", analysis.long.len(), ends.join(", "));
        let hidden: usize = rows.iter().skip(MAX_ROWS).map(Vec::len).sum();
        if hidden > 0 {
            line.push_str(&format!("; {hidden} in {} more rows not drawn", rows.len() - MAX_ROWS));
        }
        if let Some(drain) = &analysis.drain_in_force {
            line.push_str(&format!("; drain time in force {}, {}", drain.time, drain.strategy));
        }
        caption.push(line);
    }
    let caption_top = marks_bottom + if drawn == 0 { 30 } else { 16 };
    for (row, line) in caption.iter().enumerate() {
        let _ = write!(body, r#"<text x="{LEFT}" y="{}">{}</text>"#, caption_top + row * 13, escape(line));
    }

    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">{body}</svg>"#,
        caption_top - 5 + caption.len() * 13
    )
}

/// Long streams packed in rows, each row's streams one after another (a
/// lane's, usually), in the order they started.
fn rows(streams: &[LongStream]) -> Vec<Vec<&LongStream>> {
    let mut rows: Vec<Vec<&LongStream>> = Vec::new();
    for stream in streams {
        match rows.iter_mut().find(|row| row.last().is_some_and(|last| last.ended <= stream.started)) {
            Some(row) => row.push(stream),
            None => rows.push(vec![stream]),
        }
    }
    rows
}

enum Swatch {
    Fill(&'static str),
    Line(&'static str),
}

fn dashed(colour: &str) -> String {
    format!(r#"stroke="{colour}" stroke-width="2" stroke-dasharray="4,2""#)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::assert::reload::Bucket;
    use crate::load::{DrainInForce, Protocol};

    fn bucket(counts: &[(&str, usize)]) -> Bucket {
        Bucket { counts: counts.iter().map(|(l, n)| (l.to_string(), *n)).collect::<BTreeMap<_, _>>() }
    }

    #[test]
    fn marks_the_change_the_switch_and_the_drain() {
        let analysis = Analysis {
            applied_at: Duration::from_millis(1000),
            switched: vec![Some(Duration::from_millis(150)), Some(Duration::from_millis(250))],
            drain: Some((Duration::from_millis(200), Duration::from_millis(230))),
            closed_gracefully: 2,
            from: "v1".into(),
            to: "v<2>".into(),
            buckets: vec![bucket(&[("v1", 10)]), bucket(&[("v1", 4), ("v<2>", 5), (ERROR, 1)])],
            ..Analysis::default()
        };
        let svg = svg(&analysis);
        // 100 ms is one bar: the change at 1000 ms is 10 bars in.
        assert!(svg.contains(r#"<line x1="140" y1="44" x2="140""#), "{svg}");
        assert!(svg.contains(r#"<line x1="165" y1="44""#), "the last connection switched at +250 ms: {svg}");
        assert!(svg.contains(r#"<rect x="159" y="40" width="5""#), "the drain from +200 to +230 ms: {svg}");
        for line in [
            "change at 1000 ms",
            "drain: 2 connections closed by the proxy, +200 ms to +230 ms",
            "all connections on v&lt;2&gt; at +250 ms",
        ] {
            assert!(svg.contains(&format!(">{line}</text>")), "{line}: {svg}");
        }
        assert!(svg.contains(&format!(r#"fill="{FAILED}"><title>(error): 1</title>"#)), "{svg}");
        assert!(svg.contains(&format!(r#"fill="{NEW}"><title>v&lt;2&gt;: 5</title>"#)), "{svg}");
    }

    #[test]
    fn without_a_switch_or_drain_only_the_change_is_marked() {
        let analysis = Analysis {
            applied_at: Duration::from_millis(500),
            switched: vec![None],
            from: "a".into(),
            to: "b".into(),
            buckets: vec![bucket(&[("a", 3)])],
            ..Analysis::default()
        };
        let svg = svg(&analysis);
        assert_eq!(svg.matches("<line").count(), 3, "two in the legend, the change in the plot: {svg}");
        assert!(svg.contains(">change at 500 ms</text>"), "{svg}");
    }

    fn long(started: u64, answered: u64, ended: u64, version: &str, end: StreamEnd) -> LongStream {
        LongStream {
            slot: 2,
            protocol: Protocol::Http2,
            connection: 1,
            started: Duration::from_millis(started),
            answered: Some(Duration::from_millis(answered)),
            ended: Duration::from_millis(ended),
            status: Some(200),
            version: Some(version.to_owned()),
            chunks: 4,
            expected_chunks: 8,
            end,
        }
    }

    #[test]
    fn draws_long_streams_as_bars_across_the_change() {
        let analysis = Analysis {
            applied_at: Duration::from_millis(1000),
            from: "v1".into(),
            to: "v2".into(),
            buckets: vec![bucket(&[("v1", 10)]); 60],
            long: vec![
                long(0, 2000, 6000, "v1", StreamEnd::ClosedWithNotice("broken pipe".into())),
                long(1500, 1500, 2500, "v2", StreamEnd::Completed),
            ],
            drain_in_force: Some(DrainInForce { time: "5s".into(), strategy: "Immediate".into() }),
            ..Analysis::default()
        };
        let svg = svg(&analysis);
        // Two rows below the axis (they overlap): the first waits for its
        // answer (faint) until 2 s, then is cut at 6 s (a red end).
        for bar in [
            format!(r#"<rect x="40" y="206" width="200" height="6" fill="{OLD}" opacity="0.35"/>"#),
            format!(r#"<rect x="240" y="206" width="400" height="6" fill="{OLD}"/>"#),
            format!(r#"<rect x="638" y="205" width="4" height="8" fill="{FAILED}"/>"#),
            format!(r#"<rect x="190" y="215" width="100" height="6" fill="{NEW}"/>"#),
        ] {
            assert!(svg.contains(&bar), "{bar}: {svg}");
        }
        assert_eq!(svg.matches(&format!(r#"fill="{FAILED}"/>"#)).count(), 3, "two in the legend, one cut: {svg}");
        assert!(svg.contains(r#"<line x1="140" y1="44" x2="140" y2="224""#), "the change crosses the streams: {svg}");
        assert!(
            svg.contains(
                ">long streams: 2 (closed with notice 1, completed 1); drain time in force 5s, Immediate</text>"
            ),
            "{svg}"
        );
        assert!(
            svg.contains("stream started -1000 ms, answered +1000 ms and ended +5000 ms"),
            "each bar says what it was: {svg}"
        );
    }
}
