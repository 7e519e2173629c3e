//! What a reload under load did: per connection, when it first saw the new
//! version and whether it ever went back; errors; connections the proxy
//! closed (announced or not); and a timeline in 100 ms buckets.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Check, Verdict};
use crate::load::{Answer, Protocol, Recording};
use crate::scenario::{Closes, Reload};

/// Width of a timeline bucket.
pub const BUCKET: Duration = Duration::from_millis(100);
/// A failed request's own label in the timeline.
pub const ERROR: &str = "(error)";

#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub requests: usize,
    pub duration: Duration,
    pub http1: usize,
    pub http2: usize,
    /// When the change was applied, since the load started.
    pub applied_at: Duration,
    /// How long applying it took (the change step itself).
    pub apply_took: Duration,
    pub errors: usize,
    /// A few failed requests, to show what went wrong.
    pub error_examples: Vec<String>,
    pub connections_opened: u32,
    pub closed_gracefully: usize,
    pub closed_abruptly: usize,
    /// First and last close by the proxy after the change, since the change.
    pub drain: Option<(Duration, Duration)>,
    /// Per connection slot: whether it answered `from` before the change.
    pub saw_from: Vec<bool>,
    /// Per connection slot: whether the proxy closed it, announced, after the change.
    pub drained: Vec<bool>,
    /// Per connection slot: how long after the change it first saw `to`.
    pub switched: Vec<Option<Duration>>,
    /// Answers other than `to` after their connection slot had seen `to`.
    pub flips_back: usize,
    /// Responses per version label (the header's value, or `(none)`).
    pub versions: BTreeMap<String, usize>,
    pub buckets: Vec<Bucket>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// Answers in this bucket per version label (errors under `ERROR`).
    pub counts: BTreeMap<String, usize>,
}

impl Analysis {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }

    /// Slowest connection's switch, if every connection switched.
    pub fn all_switched(&self) -> Option<Duration> {
        self.switched.iter().copied().collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().max())
    }

    /// Connections the proxy closed, announced or not.
    pub fn closed(&self) -> usize {
        self.closed_gracefully + self.closed_abruptly
    }

    pub fn median_switch(&self) -> Option<Duration> {
        let mut seen: Vec<Duration> = self.switched.iter().flatten().copied().collect();
        seen.sort();
        seen.get(seen.len() / 2).copied()
    }
}

/// `apply_took`: from the change until the gateway had taken it.
pub fn analyze(recording: &Recording, reload: &Reload, applied_at: Duration, apply_took: Duration) -> Analysis {
    let slots = reload.load.http1 + reload.load.http2;
    let (from, to) = (&reload.version.from, &reload.version.to);
    let mut analysis = Analysis {
        requests: recording.samples.len(),
        duration: recording.duration,
        http1: reload.load.http1,
        http2: reload.load.http2,
        applied_at,
        apply_took,
        errors: 0,
        error_examples: Vec::new(),
        connections_opened: recording.connects.iter().sum(),
        closed_gracefully: recording.ends.iter().filter(|e| e.graceful).count(),
        closed_abruptly: recording.ends.iter().filter(|e| !e.graceful).count(),
        drain: None,
        saw_from: vec![false; slots],
        drained: vec![false; slots],
        switched: vec![None; slots],
        flips_back: 0,
        versions: BTreeMap::new(),
        buckets: vec![Bucket::default(); bucket_index(recording.duration) + 1],
        from: from.clone(),
        to: to.clone(),
    };
    let after: Vec<Duration> =
        recording.ends.iter().filter(|e| e.at >= applied_at).map(|e| e.at - applied_at).collect();
    if let (Some(first), Some(last)) = (after.iter().min(), after.iter().max()) {
        analysis.drain = Some((*first, *last));
    }
    for end in recording.ends.iter().filter(|e| e.graceful && e.at >= applied_at) {
        analysis.drained[end.slot] = true;
    }
    for sample in &recording.samples {
        let label = match &sample.outcome {
            Answer::Response { status, version } if *status == reload.status => {
                version.clone().unwrap_or_else(|| "(none)".to_owned())
            }
            Answer::Response { status, .. } => failure(&mut analysis, format!("status {status}")),
            Answer::Failed(error) => {
                let kind = if sample.protocol == Protocol::Http1 { "HTTP/1" } else { "HTTP/2" };
                failure(&mut analysis, format!("{kind} connection {}: {error}", sample.connection))
            }
        };
        *analysis.versions.entry(label.clone()).or_default() += 1;
        *analysis.buckets[bucket_index(sample.answered)].counts.entry(label.clone()).or_default() += 1;
        if sample.answered < applied_at {
            analysis.saw_from[sample.slot] |= &label == from;
            continue;
        }
        let switched = &mut analysis.switched[sample.slot];
        if &label == to && switched.is_none() {
            *switched = Some(sample.answered - applied_at);
        } else if &label != to && label != ERROR && switched.is_some() {
            analysis.flips_back += 1;
        }
    }
    analysis
}

fn failure(analysis: &mut Analysis, what: String) -> String {
    analysis.errors += 1;
    if analysis.error_examples.len() < 5 {
        analysis.error_examples.push(what);
    }
    ERROR.to_owned()
}

fn bucket_index(at: Duration) -> usize {
    (at.as_millis() / BUCKET.as_millis()) as usize
}

/// The reload's checks: every connection on `from` before the change,
/// errors, closes, switch-over, no other answer after the switch.
pub fn verify(analysis: &Analysis, reload: &Reload) -> Verdict {
    let expected = format!("every connection answered {:?} before the change", analysis.from);
    let without_from = analysis.saw_from.iter().filter(|s| !**s).count();
    let mut checks = vec![if without_from == 0 {
        Check::held(expected)
    } else {
        Check::new(
            expected,
            format!("{without_from} connection(s) never answered {:?} before the change", analysis.from),
        )
    }];
    checks.push(Check::new(
        format!("failed requests: at most {}", reload.errors),
        if analysis.errors <= reload.errors as usize {
            format!("failed requests: at most {}", reload.errors)
        } else {
            format!("failed requests: {} ({})", analysis.errors, analysis.error_examples.join("; "))
        },
    ));
    checks.push(match reload.closes {
        Closes::None => Check::new(
            "connections closed by the proxy: 0",
            format!("connections closed by the proxy: {}", analysis.closed()),
        ),
        Closes::Graceful | Closes::Drain => Check::new(
            "connections closed without notice: 0",
            format!("connections closed without notice: {}", analysis.closed_abruptly),
        ),
    });
    if reload.closes == Closes::Drain {
        let expected = "every connection closed with notice after the change (a drain)".to_owned();
        let kept = analysis.drained.iter().filter(|d| !**d).count();
        checks.push(if kept == 0 {
            Check::held(expected)
        } else {
            Check::new(expected, format!("{kept} connection(s) were not closed by the proxy after the change"))
        });
    }
    let expected = format!("every connection on {:?} within {:?} of the change", analysis.to, reload.switch_within);
    checks.push(match analysis.all_switched() {
        Some(slowest) if slowest <= reload.switch_within => Check::held(expected),
        Some(slowest) => Check::new(expected, format!("the slowest connection switched after {slowest:?}")),
        None => {
            let missing = analysis.switched.iter().filter(|s| s.is_none()).count();
            Check::new(expected, format!("{missing} connection(s) never saw {:?}", analysis.to))
        }
    });
    checks.push(Check::new(
        format!("answers other than {:?} after a connection switched: 0", analysis.to),
        format!("answers other than {:?} after a connection switched: {}", analysis.to, analysis.flips_back),
    ));
    Verdict { checks }
}

/// A duration as whole milliseconds, the unit every reload figure is read in.
pub fn millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A few lines for the console and the step trace.
pub fn summary(analysis: &Analysis) -> String {
    let ms = millis;
    let versions: Vec<String> = analysis.versions.iter().map(|(v, n)| format!("{v} {n}")).collect();
    let mut lines = vec![
        format!(
            "{} requests in {:.2} s ({:.0}/s) over {} HTTP/1.1 + {} HTTP/2 connections; responses: {}",
            analysis.requests,
            analysis.duration.as_secs_f64(),
            analysis.rate(),
            analysis.http1,
            analysis.http2,
            versions.join(", ")
        ),
        format!(
            "change applied at {} (taken by the gateway after {}); every connection on {} after {}, median {}; flips back {}",
            ms(analysis.applied_at),
            ms(analysis.apply_took),
            analysis.to,
            analysis.all_switched().map_or("never".into(), ms),
            analysis.median_switch().map_or("-".into(), ms),
            analysis.flips_back
        ),
        format!(
            "failed requests {}; connections opened {}, closed by the proxy {} (announced {}, without notice {}){}",
            analysis.errors,
            analysis.connections_opened,
            analysis.closed(),
            analysis.closed_gracefully,
            analysis.closed_abruptly,
            analysis.drain.map_or(String::new(), |(first, last)| format!(
                "; drain from +{} to +{}",
                ms(first),
                ms(last)
            ))
        ),
    ];
    lines.push(format!("per 100 ms: {}", sparkline(analysis)));
    lines.join("\n")
}

/// One character per bucket: `.` old version only, `#` new only, `+` both,
/// `!` any error, ` ` nothing.
fn sparkline(analysis: &Analysis) -> String {
    analysis
        .buckets
        .iter()
        .map(|b| {
            let has = |label: &str| b.counts.get(label).is_some_and(|n| *n > 0);
            match (has(ERROR), has(&analysis.from), has(&analysis.to)) {
                (true, ..) => '!',
                (false, true, true) => '+',
                (false, true, false) => '.',
                (false, false, true) => '#',
                (false, false, false) => ' ',
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{ConnectionEnd, Sample};
    use crate::scenario::{Change, LoadPlan, VersionSpec};

    fn reload(closes: Closes) -> Reload {
        Reload {
            load: LoadPlan {
                host: "h".into(),
                path: "/".into(),
                http1: 1,
                http2: 1,
                rate: 10,
                duration: Duration::from_secs(2),
            },
            after: Duration::from_secs(1),
            change: Change::Delete { namespace: "n".into(), name: "p".into() },
            version: VersionSpec { header: "x-v".into(), from: "v1".into(), to: "v2".into() },
            errors: 0,
            status: 200,
            closes,
            switch_within: Duration::from_millis(500),
        }
    }

    fn sample(slot: usize, ms: u64, version: Option<&str>, status: u16) -> Sample {
        Sample {
            slot,
            protocol: if slot == 0 { Protocol::Http1 } else { Protocol::Http2 },
            connection: 1,
            sent: Duration::from_millis(ms),
            answered: Duration::from_millis(ms),
            outcome: Answer::Response { status, version: version.map(str::to_owned) },
        }
    }

    fn recording(samples: Vec<Sample>, ends: Vec<ConnectionEnd>) -> Recording {
        Recording { samples, ends, connects: vec![1, 1], duration: Duration::from_secs(2) }
    }

    #[test]
    fn a_clean_switch_holds() {
        let rec = recording(
            vec![
                sample(0, 900, Some("v1"), 200),
                sample(1, 950, Some("v1"), 200),
                sample(0, 1100, Some("v2"), 200),
                sample(1, 1200, Some("v2"), 200),
            ],
            vec![],
        );
        let r = reload(Closes::None);
        let analysis = analyze(&rec, &r, Duration::from_secs(1), Duration::ZERO);
        assert_eq!(analysis.all_switched(), Some(Duration::from_millis(200)));
        assert!(verify(&analysis, &r).holds(), "{}", verify(&analysis, &r).diff());
    }

    /// Both slots answer v1 before the change at 1 s.
    fn before_change() -> Vec<Sample> {
        vec![sample(0, 900, Some("v1"), 200), sample(1, 950, Some("v1"), 200)]
    }

    #[test]
    fn errors_flips_and_unswitched_connections_fail() {
        let mut samples = before_change();
        samples.extend([
            sample(0, 1100, Some("v2"), 200),
            sample(0, 1200, Some("v3"), 200),
            sample(0, 1250, Some("v1"), 200),
            sample(1, 1300, None, 503),
        ]);
        let r = reload(Closes::None);
        let analysis = analyze(&recording(samples, vec![]), &r, Duration::from_secs(1), Duration::ZERO);
        assert_eq!((analysis.errors, analysis.flips_back), (1, 2), "any answer but v2 after the switch is a flip");
        let diff = verify(&analysis, &r).diff();
        assert!(diff.contains("+failed requests: 1 (status 503)"), "{diff}");
        assert!(diff.contains(r#"never saw "v2""#), "{diff}");
        assert!(diff.contains(r#"+answers other than "v2" after a connection switched: 2"#), "{diff}");
    }

    #[test]
    fn every_connection_must_answer_from_before_the_change() {
        let samples = vec![
            sample(0, 900, Some("v1"), 200),
            sample(1, 950, Some("v0"), 200),
            sample(0, 1100, Some("v2"), 200),
            sample(1, 1100, Some("v2"), 200),
        ];
        let r = reload(Closes::None);
        let analysis = analyze(&recording(samples, vec![]), &r, Duration::from_secs(1), Duration::ZERO);
        let diff = verify(&analysis, &r).diff();
        assert!(diff.contains(r#"+1 connection(s) never answered "v1" before the change"#), "{diff}");
    }

    #[test]
    fn closes_none_graceful_and_drain() {
        let end = |slot, graceful| ConnectionEnd { slot, at: Duration::from_millis(1500), graceful };
        let mut samples = before_change();
        samples.extend([sample(0, 1100, Some("v2"), 200), sample(1, 1100, Some("v2"), 200)]);
        let one_announced = recording(samples.clone(), vec![end(0, true)]);
        let analysis = analyze(&one_announced, &reload(Closes::Graceful), Duration::from_secs(1), Duration::ZERO);
        assert!(verify(&analysis, &reload(Closes::Graceful)).holds(), "graceful allows announced closes");
        assert!(!verify(&analysis, &reload(Closes::None)).holds());
        assert_eq!(analysis.drain, Some((Duration::from_millis(500), Duration::from_millis(500))));
        let diff = verify(&analysis, &reload(Closes::Drain)).diff();
        assert!(diff.contains("+1 connection(s) were not closed by the proxy after the change"), "{diff}");
        let both = recording(samples.clone(), vec![end(0, true), end(1, true)]);
        let analysis = analyze(&both, &reload(Closes::Drain), Duration::from_secs(1), Duration::ZERO);
        assert!(
            verify(&analysis, &reload(Closes::Drain)).holds(),
            "{}",
            verify(&analysis, &reload(Closes::Drain)).diff()
        );
        let abrupt = recording(samples, vec![end(0, true), end(1, false)]);
        let analysis = analyze(&abrupt, &reload(Closes::Drain), Duration::from_secs(1), Duration::ZERO);
        assert!(!verify(&analysis, &reload(Closes::Drain)).holds());
        assert!(!verify(&analysis, &reload(Closes::Graceful)).holds());
    }
}
