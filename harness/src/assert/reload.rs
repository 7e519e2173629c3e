//! What a reload under load did: per connection, when it first saw the new
//! version and whether it ever went back; errors; connections the proxy
//! closed (announced or not); long streams, how each ended and what its
//! answer carried; and a timeline in 100 ms buckets.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Check, Verdict};
use crate::load::{Answer, DrainInForce, LongStream, Recording, StreamEnd};
use crate::scenario::{Closes, Errors, LongEnd, Reload};

/// Width of a timeline bucket.
pub const BUCKET: Duration = Duration::from_millis(100);
/// A failed request's own label in the timeline.
pub const ERROR: &str = "(error)";
/// The label of an absent version header.
pub const NONE: &str = "(none)";

#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub requests: usize,
    pub duration: Duration,
    pub http1: usize,
    pub http2: usize,
    /// Concurrent short streams on each HTTP/2 connection.
    pub streams_per_connection: usize,
    /// When the change began (publishing, rendering, applying), since the load started.
    pub applied_at: Duration,
    /// When the gateway took it, since the load started (none if the
    /// change made no update for it).
    pub taken: Option<Window>,
    /// When the gateway put new listeners in force, which starts the drain
    /// of the old ones (none if the change left the listeners alone).
    pub listeners_taken: Option<Window>,
    pub errors: usize,
    /// A few failed requests, to show what went wrong.
    pub error_examples: Vec<String>,
    /// Requests whose connection was going away before they went out,
    /// sent again on a new one.
    pub resent: usize,
    pub connections_opened: u32,
    pub closed_gracefully: usize,
    pub closed_abruptly: usize,
    /// First and last close by the proxy after the change, since the change.
    pub drain: Option<(Duration, Duration)>,
    /// The gateway's drain settings, when its admin API told them.
    pub drain_in_force: Option<DrainInForce>,
    /// Per short connection slot: whether it answered `from` before the change.
    pub saw_from: Vec<bool>,
    /// Per short connection slot: whether the proxy closed it, announced, after the change.
    pub drained: Vec<bool>,
    /// Per short connection slot: how long after the change it first saw `to`.
    pub switched: Vec<Option<Duration>>,
    /// Answers other than `to` to requests sent after their connection
    /// slot had answered `to`.
    pub flips_back: usize,
    /// Responses per version label (the header's value, or `(none)`).
    pub versions: BTreeMap<String, usize>,
    pub buckets: Vec<Bucket>,
    /// Every long stream, in the order they started.
    pub long: Vec<LongStream>,
    pub from: String,
    pub to: String,
}

/// A moment known to lie between two times (since the load started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: Duration,
    pub by: Duration,
}

/// When the gateway took a change: all of it, and its listeners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    pub all: Option<Window>,
    pub listeners: Option<Window>,
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

    /// From the change's beginning until the gateway was seen to have taken it.
    pub fn took(&self) -> Option<Duration> {
        self.taken.map(|t| t.by.saturating_sub(self.applied_at))
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

    /// Long streams across the change: started before it began, and
    /// answered (their response headers came) after the gateway had taken
    /// it, so that their answer shows what a stream in flight keeps.
    pub fn across_the_change(&self) -> impl Iterator<Item = &LongStream> {
        let taken = self.taken.map(|t| t.by);
        self.long.iter().filter(move |s| {
            s.started < self.applied_at && taken.is_some_and(|taken| s.answered.is_some_and(|a| a > taken))
        })
    }

    /// Long streams per way they ended (`completed`, `reset`, ...).
    pub fn long_ends(&self) -> BTreeMap<&'static str, usize> {
        let mut ends = BTreeMap::new();
        for stream in &self.long {
            *ends.entry(stream.end.kind()).or_default() += 1;
        }
        ends
    }
}

/// `applied_at`: when the change began; `taken`: when the gateway took it.
pub fn analyze(recording: &Recording, reload: &Reload, applied_at: Duration, taken: Taken) -> Analysis {
    let slots = reload.load.short_slots();
    let (from, to) = (&reload.version.from, &reload.version.to);
    let mut analysis = Analysis {
        requests: recording.samples.len(),
        duration: recording.duration,
        http1: reload.load.http1,
        http2: reload.load.http2,
        streams_per_connection: reload.load.streams,
        applied_at,
        taken: taken.all,
        listeners_taken: taken.listeners,
        errors: 0,
        error_examples: Vec::new(),
        resent: recording.resent,
        connections_opened: recording.connects.iter().sum(),
        closed_gracefully: recording.ends.iter().filter(|e| e.graceful).count(),
        closed_abruptly: recording.ends.iter().filter(|e| !e.graceful).count(),
        drain: None,
        drain_in_force: recording.drain.clone(),
        saw_from: vec![false; slots],
        drained: vec![false; slots],
        switched: vec![None; slots],
        flips_back: 0,
        versions: BTreeMap::new(),
        buckets: vec![Bucket::default(); bucket_index(recording.duration) + 1],
        long: recording.streams.clone(),
        from: from.clone(),
        to: to.clone(),
    };
    let after: Vec<Duration> =
        recording.ends.iter().filter(|e| e.at >= applied_at).map(|e| e.at - applied_at).collect();
    if let (Some(first), Some(last)) = (after.iter().min(), after.iter().max()) {
        analysis.drain = Some((*first, *last));
    }
    for end in recording.ends.iter().filter(|e| e.graceful && e.at >= applied_at && e.slot < slots) {
        analysis.drained[end.slot] = true;
    }
    // When each slot first answered `to` after the change: a request sent
    // later must answer `to` too (one sent earlier, on another stream of the
    // same HTTP/2 connection, may still answer `from`).
    let mut first_to: Vec<Option<Duration>> = vec![None; slots];
    let mut labels = Vec::with_capacity(recording.samples.len());
    for sample in &recording.samples {
        let label = match &sample.outcome {
            Answer::Response { status, version } if *status == reload.status => {
                version.clone().unwrap_or_else(|| NONE.to_owned())
            }
            Answer::Response { status, .. } => failure(&mut analysis, format!("status {status}")),
            Answer::Failed(error) => {
                let kind = sample.protocol.name();
                failure(&mut analysis, format!("{kind} connection {}: {error}", sample.connection))
            }
        };
        *analysis.versions.entry(label.clone()).or_default() += 1;
        *analysis.buckets[bucket_index(sample.answered)].counts.entry(label.clone()).or_default() += 1;
        if sample.answered < applied_at {
            analysis.saw_from[sample.slot] |= &label == from;
        } else if &label == to {
            let first = first_to[sample.slot].get_or_insert(sample.answered);
            *first = (*first).min(sample.answered);
        }
        labels.push(label);
    }
    let after_switch = &reload.claims.after_switch;
    for (sample, label) in recording.samples.iter().zip(&labels) {
        if let Some(first) = first_to[sample.slot] {
            if sample.sent > first && label != after_switch && label != ERROR {
                analysis.flips_back += 1;
            }
        }
    }
    for (slot, first) in first_to.iter().enumerate() {
        analysis.switched[slot] = first.map(|at| at - applied_at);
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
/// errors, closes, switch-over, no other answer after the switch; with long
/// streams, that one was open across the change, that each completed, and
/// that each answered with the version in force when it started.
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
    checks.push(errors_check(analysis, reload.errors));
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
    let after_switch = &reload.claims.after_switch;
    checks.push(Check::new(
        format!("answers other than {after_switch:?} after a connection switched: 0"),
        format!("answers other than {after_switch:?} after a connection switched: {}", analysis.flips_back),
    ));
    if reload.load.long.is_some() {
        checks.extend(verify_long(analysis, reload));
    }
    Verdict { checks }
}

fn errors_check(analysis: &Analysis, errors: Errors) -> Check {
    let failed = if analysis.error_examples.is_empty() {
        format!("failed requests: {}", analysis.errors)
    } else {
        format!("failed requests: {} ({})", analysis.errors, analysis.error_examples.join("; "))
    };
    match errors {
        Errors::AtMost(most) if analysis.errors <= most as usize => {
            Check::held(format!("failed requests: at most {most}"))
        }
        Errors::AtMost(most) => Check::new(format!("failed requests: at most {most}"), failed),
        Errors::All if analysis.errors == analysis.requests => Check::held("failed requests: every one"),
        Errors::All => Check::new("failed requests: every one", format!("{failed} of {}", analysis.requests)),
    }
}

fn verify_long(analysis: &Analysis, reload: &Reload) -> Vec<Check> {
    let mut checks = Vec::new();
    if reload.across {
        checks.push(across_check(analysis));
    }
    checks.push(completion_check(analysis, reload.claims.long_end));
    // What a stream's answer carries was decided when it started: before
    // the change `long_before`, once every connection must have switched
    // `long_after`.
    let claims = &reload.claims;
    let settled = analysis.applied_at + reload.switch_within;
    let wanted = |stream: &LongStream| -> Option<&str> {
        if stream.started < analysis.applied_at {
            Some(&claims.long_before)
        } else if stream.started >= settled {
            Some(&claims.long_after)
        } else {
            None
        }
    };
    let answered = |stream: &LongStream| {
        let version = stream.version.as_deref().unwrap_or(NONE);
        match stream.status {
            Some(status) if status == reload.status => match wanted(stream) {
                Some(wanted) => version == wanted,
                None => version == analysis.from || version == analysis.to,
            },
            // A stream cut before its answer fails the completion check.
            None => true,
            Some(_) => false,
        }
    };
    let expected = format!(
        "long streams answered {} with {:?} if started before the change, {:?} if started {:?} after it",
        reload.status, claims.long_before, claims.long_after, reload.switch_within
    );
    let wrong: Vec<&LongStream> = analysis.long.iter().filter(|s| !answered(s)).collect();
    checks.push(match wrong.first() {
        None => Check::held(expected),
        Some(first) => Check::new(
            expected,
            format!(
                "{} long stream(s) answered otherwise; first: {} answered {} {:?}",
                wrong.len(),
                describe(first, analysis.applied_at),
                first.status.map_or("-".to_owned(), |s| s.to_string()),
                first.version.as_deref().unwrap_or(NONE)
            ),
        ),
    });
    checks
}

/// A long stream started before the change and answered after the
/// gateway took it: only its answer shows what a stream in flight keeps.
fn across_check(analysis: &Analysis) -> Check {
    let expected = "long streams started before the change and answered after the gateway took it: at least 1";
    let answered_before = || -> String {
        let times: Vec<String> = analysis
            .long
            .iter()
            .filter(|s| s.started < analysis.applied_at)
            .filter_map(|s| s.answered)
            .map(|at| relative(at, analysis.applied_at))
            .collect();
        if times.is_empty() {
            "no time".to_owned()
        } else {
            times.join(", ")
        }
    };
    match analysis.taken {
        _ if analysis.across_the_change().next().is_some() => Check::held(expected),
        None => Check::new(expected, "the gateway took no update, so no stream could be answered after it"),
        Some(taken) => Check::new(
            expected,
            format!(
                "long streams started before the change and answered after the gateway took it (by {}): 0; \
                 those started before it answered at {} of the change; give them a `delay` that outlasts the take",
                relative(taken.by, analysis.applied_at),
                answered_before()
            ),
        ),
    }
}

/// Whether the long streams ended as `claim` says; a stream that did not
/// complete is told with when it was cut, against the gateway's drain time.
fn completion_check(analysis: &Analysis, claim: LongEnd) -> Check {
    let total = analysis.long.len();
    let unfinished: Vec<&LongStream> = analysis.long.iter().filter(|s| s.end != StreamEnd::Completed).collect();
    let expected = match claim {
        LongEnd::Completed => format!("long streams completed: {total} of {total}"),
        LongEnd::Cut => format!("long streams completed: 0 of {total}"),
    };
    let holds = match claim {
        LongEnd::Completed => unfinished.is_empty(),
        LongEnd::Cut => unfinished.len() == total,
    };
    if holds {
        return Check::held(expected);
    }
    if unfinished.is_empty() {
        return Check::new(expected, format!("long streams completed: {total} of {total}"));
    }
    let ends: Vec<String> = analysis
        .long_ends()
        .into_iter()
        .filter(|(kind, _)| *kind != "completed")
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    Check::new(
        expected,
        format!(
            "long streams completed: {} of {total}; {}, {}; first: {}",
            total - unfinished.len(),
            ends.join(", "),
            cut_when(analysis, &unfinished),
            describe(unfinished[0], analysis.applied_at)
        ),
    )
}

/// How long after the take a listener drain may end and still be "at the
/// end of the drain time": Envoy closes what is left on its drain timer,
/// read here through the admin API's counters and the client's clock.
pub(crate) const DRAIN_EARLY: Duration = Duration::from_millis(250);
pub(crate) const DRAIN_LATE: Duration = Duration::from_secs(1);

/// When the streams that did not complete were cut: at the end of the
/// gateway's drain time after it put its new listeners in force (or, when
/// the change left them alone, after it took the change), or when else.
fn cut_when(analysis: &Analysis, cut: &[&LongStream]) -> String {
    let drain = analysis.drain_in_force.as_ref();
    let in_force =
        drain.map_or("no drain time known".to_owned(), |d| format!("drain time in force {}, {}", d.time, d.strategy));
    let (start, took) = match analysis.listeners_taken {
        Some(window) => (Some(window), "the gateway took its new listeners"),
        None => (analysis.taken, "the gateway took the change"),
    };
    let (Some(taken), Some(time)) = (start, drain.and_then(|d| humantime::parse_duration(&d.time).ok())) else {
        return format!("cut ({in_force})");
    };
    let at_drain_end = |s: &&&LongStream| {
        s.ended >= (taken.after + time).saturating_sub(DRAIN_EARLY) && s.ended <= taken.by + time + DRAIN_LATE
    };
    if cut.iter().all(|s| at_drain_end(&s)) {
        return format!("each cut at the end of the drain time after {took} ({in_force})");
    }
    let since: Vec<String> = cut.iter().map(|s| relative(s.ended, taken.by)).collect();
    format!("cut at {} of the time {took} ({in_force})", since.join(", "))
}

/// `at` as `+N ms` or `-N ms` from `origin`.
fn relative(at: Duration, origin: Duration) -> String {
    if at >= origin {
        format!("+{}", millis(at - origin))
    } else {
        format!("-{}", millis(origin - at))
    }
}

/// One long stream in a line: protocol, connection, when it started, was
/// answered and ended relative to the change, chunks, and how it ended.
pub fn describe(stream: &LongStream, applied_at: Duration) -> String {
    let answered = stream.answered.map_or(String::new(), |at| format!(", answered {}", relative(at, applied_at)));
    let mut text = format!(
        "{} connection {} stream started {}{answered} and ended {} of the change after {} of {} chunks: {}",
        stream.protocol.name(),
        stream.connection,
        relative(stream.started, applied_at),
        relative(stream.ended, applied_at),
        stream.chunks,
        stream.expected_chunks,
        stream.end.kind()
    );
    if let Some(detail) = stream.end.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    text
}

/// A duration as whole milliseconds, the unit every reload figure is read in.
pub fn millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A few lines for the console and the step trace.
pub fn summary(analysis: &Analysis) -> String {
    let ms = millis;
    let versions: Vec<String> = analysis.versions.iter().map(|(v, n)| format!("{v} {n}")).collect();
    let multiplexed = match analysis.streams_per_connection {
        n if n > 1 => format!(" ({n} streams each)"),
        _ => String::new(),
    };
    let mut lines = vec![
        format!(
            "{} requests in {:.2} s ({:.0}/s) over {} HTTP/1.1 + {} HTTP/2 connections{multiplexed}; responses: {}",
            analysis.requests,
            analysis.duration.as_secs_f64(),
            analysis.rate(),
            analysis.http1,
            analysis.http2,
            versions.join(", ")
        ),
        format!(
            "change applied at {} ({}); every connection on {} after {}, median {}; flips back {}",
            ms(analysis.applied_at),
            analysis.taken.map_or("the gateway had nothing to take".to_owned(), |t| format!(
                "taken by the gateway between {} and {}",
                relative(t.after, analysis.applied_at),
                relative(t.by, analysis.applied_at)
            )),
            analysis.to,
            analysis.all_switched().map_or("never".into(), ms),
            analysis.median_switch().map_or("-".into(), ms),
            analysis.flips_back
        ),
        format!(
            "failed requests {}; sent again after their connection went away {}; connections opened {}, \
             closed by the proxy {} (announced {}, without notice {}){}",
            analysis.errors,
            analysis.resent,
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
    if !analysis.long.is_empty() {
        let ends: Vec<String> = analysis.long_ends().into_iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
        for stream in &analysis.long {
            *answered.entry(stream.version.as_deref().unwrap_or(NONE)).or_default() += 1;
        }
        let answered: Vec<String> = answered.into_iter().map(|(v, n)| format!("{v} {n}")).collect();
        lines.push(format!(
            "long streams {} ({} answered across the change): {}; answered {}",
            analysis.long.len(),
            analysis.across_the_change().count(),
            ends.join(", "),
            answered.join(", ")
        ));
        for stream in analysis.long.iter().filter(|s| s.end != StreamEnd::Completed).take(3) {
            lines.push(format!("  {}", describe(stream, analysis.applied_at)));
        }
    }
    if let Some(drain) = &analysis.drain_in_force {
        lines.push(format!("gateway drain in force: drain time {}, strategy {}", drain.time, drain.strategy));
    }
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
    use crate::load::{ConnectionEnd, LoadPlan, LongStreams, Protocol, Sample, StreamShape};
    use crate::scenario::{Change, ReloadClaims, VersionSpec};

    fn reload(closes: Closes) -> Reload {
        Reload {
            load: LoadPlan {
                host: "h".into(),
                path: "/".into(),
                http1: 1,
                http2: 1,
                streams: 1,
                rate: 10,
                duration: Duration::from_secs(2),
                long: None,
            },
            after: Duration::from_secs(1),
            change: Change::Delete { namespace: "n".into(), name: "p".into() },
            claims: ReloadClaims::of(&VersionSpec { header: "x-v".into(), from: "v1".into(), to: "v2".into() }),
            version: VersionSpec { header: "x-v".into(), from: "v1".into(), to: "v2".into() },
            errors: Errors::AtMost(0),
            status: 200,
            closes,
            switch_within: Duration::from_millis(500),
            across: true,
        }
    }

    fn window(after: u64, by: u64) -> Option<Window> {
        Some(Window { after: Duration::from_millis(after), by: Duration::from_millis(by) })
    }

    /// The gateway took the change between these (ms since the load
    /// started), with its listeners left alone.
    fn taken(after: u64, by: u64) -> Taken {
        Taken { all: window(after, by), listeners: None }
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
        Recording { samples, ends, connects: vec![1, 1], duration: Duration::from_secs(2), ..Recording::default() }
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
        let analysis = analyze(&rec, &r, Duration::from_secs(1), taken(1000, 1010));
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
        let analysis = analyze(&recording(samples, vec![]), &r, Duration::from_secs(1), taken(1000, 1010));
        assert_eq!((analysis.errors, analysis.flips_back), (1, 2), "any answer but v2 after the switch is a flip");
        let diff = verify(&analysis, &r).diff();
        assert!(diff.contains("+failed requests: 1 (status 503)"), "{diff}");
        assert!(diff.contains(r#"never saw "v2""#), "{diff}");
        assert!(diff.contains(r#"+answers other than "v2" after a connection switched: 2"#), "{diff}");
    }

    #[test]
    fn a_stream_sent_before_its_connection_switched_may_answer_the_old_version() {
        let mut samples = before_change();
        // Two streams of the HTTP/2 connection: one sent at 1050 ms answers
        // v1 after another, sent later, answered v2.
        let mut slow = sample(1, 1150, Some("v1"), 200);
        slow.sent = Duration::from_millis(1050);
        samples.extend([sample(0, 1100, Some("v2"), 200), sample(1, 1100, Some("v2"), 200), slow]);
        let mut late = sample(1, 1300, Some("v1"), 200);
        late.sent = Duration::from_millis(1200);
        let r = reload(Closes::None);
        let analysis = analyze(&recording(samples.clone(), vec![]), &r, Duration::from_secs(1), taken(1000, 1010));
        assert_eq!(analysis.flips_back, 0);
        samples.push(late);
        let analysis = analyze(&recording(samples, vec![]), &r, Duration::from_secs(1), taken(1000, 1010));
        assert_eq!(analysis.flips_back, 1, "sent after the switch was seen, it must answer v2");
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
        let analysis = analyze(&recording(samples, vec![]), &r, Duration::from_secs(1), taken(1000, 1010));
        let diff = verify(&analysis, &r).diff();
        assert!(diff.contains(r#"+1 connection(s) never answered "v1" before the change"#), "{diff}");
    }

    #[test]
    fn closes_none_graceful_and_drain() {
        let end = |slot, graceful| ConnectionEnd { slot, at: Duration::from_millis(1500), graceful };
        let mut samples = before_change();
        samples.extend([sample(0, 1100, Some("v2"), 200), sample(1, 1100, Some("v2"), 200)]);
        let one_announced = recording(samples.clone(), vec![end(0, true)]);
        let analysis = analyze(&one_announced, &reload(Closes::Graceful), Duration::from_secs(1), taken(1000, 1010));
        assert!(verify(&analysis, &reload(Closes::Graceful)).holds(), "graceful allows announced closes");
        assert!(!verify(&analysis, &reload(Closes::None)).holds());
        assert_eq!(analysis.drain, Some((Duration::from_millis(500), Duration::from_millis(500))));
        let diff = verify(&analysis, &reload(Closes::Drain)).diff();
        assert!(diff.contains("+1 connection(s) were not closed by the proxy after the change"), "{diff}");
        let both = recording(samples.clone(), vec![end(0, true), end(1, true)]);
        let analysis = analyze(&both, &reload(Closes::Drain), Duration::from_secs(1), taken(1000, 1010));
        assert!(
            verify(&analysis, &reload(Closes::Drain)).holds(),
            "{}",
            verify(&analysis, &reload(Closes::Drain)).diff()
        );
        let abrupt = recording(samples, vec![end(0, true), end(1, false)]);
        let analysis = analyze(&abrupt, &reload(Closes::Drain), Duration::from_secs(1), taken(1000, 1010));
        assert!(!verify(&analysis, &reload(Closes::Drain)).holds());
        assert!(!verify(&analysis, &reload(Closes::Graceful)).holds());
    }

    fn with_long(closes: Closes) -> Reload {
        let mut r = reload(closes);
        let shape = StreamShape { delay: Duration::ZERO, chunks: 4, every: Duration::from_millis(250), size: 64 };
        r.load.long = Some(LongStreams { http1: 0, http2: 1, shape });
        r
    }

    /// A long stream from `started` to `ended` (ms), answered at `answered` with `version`.
    fn long(started: u64, answered: u64, ended: u64, version: &str, end: StreamEnd) -> LongStream {
        LongStream {
            slot: 1,
            protocol: Protocol::Http2,
            connection: 1,
            started: Duration::from_millis(started),
            answered: Some(Duration::from_millis(answered)),
            ended: Duration::from_millis(ended),
            status: Some(200),
            version: Some(version.to_owned()),
            chunks: if end == StreamEnd::Completed { 4 } else { 2 },
            expected_chunks: 4,
            end,
        }
    }

    fn switched() -> Vec<Sample> {
        let mut samples = before_change();
        samples.extend([sample(0, 1100, Some("v2"), 200), sample(1, 1100, Some("v2"), 200)]);
        samples
    }

    /// The change begins at 1 s; the gateway takes it between 1080 and 1100 ms.
    fn analyze_long(streams: Vec<LongStream>, r: &Reload) -> Analysis {
        let mut rec = recording(switched(), vec![]);
        rec.streams = streams;
        rec.drain = Some(DrainInForce { time: "5s".into(), strategy: "Immediate".into() });
        analyze(&rec, r, Duration::from_secs(1), taken(1080, 1100))
    }

    #[test]
    fn long_streams_across_the_change_complete_with_the_version_they_started_with() {
        let r = with_long(Closes::None);
        let analysis = analyze_long(
            vec![long(0, 1200, 1500, "v1", StreamEnd::Completed), long(1600, 1605, 1900, "v2", StreamEnd::Completed)],
            &r,
        );
        assert_eq!(analysis.across_the_change().count(), 1);
        let verdict = verify(&analysis, &r);
        assert!(verdict.holds(), "{}", verdict.diff());
        assert!(summary(&analysis)
            .contains("long streams 2 (1 answered across the change): completed 2; answered v1 1, v2 1"));
    }

    #[test]
    fn a_stream_answered_before_the_take_is_not_across_the_change() {
        let r = with_long(Closes::None);
        // Open across the take, but its answer came at 1090 ms, before the
        // take was seen (by 1100 ms): it cannot show what a stream keeps.
        let analysis = analyze_long(vec![long(0, 1090, 1500, "v1", StreamEnd::Completed)], &r);
        let diff = verify(&analysis, &r).diff();
        assert!(
            diff.contains(
                "+long streams started before the change and answered after the gateway took it (by +100 ms): 0; \
                 those started before it answered at +90 ms of the change"
            ),
            "{diff}"
        );
        let r = with_long(Closes::None);
        let mut rec = recording(switched(), vec![]);
        rec.streams = vec![long(0, 1200, 1500, "v1", StreamEnd::Completed)];
        let analysis = analyze(&rec, &r, Duration::from_secs(1), Taken::default());
        assert!(verify(&analysis, &r).diff().contains("+the gateway took no update"));
    }

    #[test]
    fn a_stream_cut_at_the_end_of_the_drain_says_so() {
        let r = with_long(Closes::Graceful);
        let cut = || StreamEnd::ClosedWithNotice("stream closed because of a broken pipe".into());
        let at_drain_end = analyze_long(vec![long(0, 1200, 6150, "v1", cut())], &r);
        let diff = verify(&at_drain_end, &r).diff();
        assert!(
            diff.contains(
                "+long streams completed: 0 of 1; 1 closed with notice, each cut at the end of the drain time after \
                 the gateway took the change (drain time in force 5s, Immediate); first: HTTP/2 connection 1 stream \
                 started -1000 ms, answered +200 ms and ended +5150 ms of the change after 2 of 4 chunks: \
                 closed with notice (stream closed because of a broken pipe)"
            ),
            "{diff}"
        );
        let early = analyze_long(vec![long(0, 1200, 1400, "v1", cut())], &r);
        let diff = verify(&early, &r).diff();
        assert!(
            diff.contains("1 closed with notice, cut at +300 ms of the time the gateway took the change"),
            "{diff}"
        );
    }

    #[test]
    fn the_drain_is_timed_from_the_new_listeners_not_the_whole_change() {
        let r = with_long(Closes::Graceful);
        let cut = || StreamEnd::ClosedWithNotice("stream closed because of a broken pipe".into());
        let mut rec = recording(switched(), vec![]);
        rec.streams = vec![long(0, 1200, 5150, "v1", cut())];
        rec.drain = Some(DrainInForce { time: "4s".into(), strategy: "Immediate".into() });
        // The listeners were in force by 1100 ms, the filter's config by 2100 ms.
        let both = Taken { all: window(2080, 2100), listeners: window(1080, 1100) };
        let diff = verify(&analyze(&rec, &r, Duration::from_secs(1), both), &r).diff();
        assert!(
            diff.contains("each cut at the end of the drain time after the gateway took its new listeners"),
            "{diff}"
        );
        // Timed from the whole change, the same cut would be 950 ms early.
        let whole = Taken { all: window(2080, 2100), listeners: None };
        let diff = verify(&analyze(&rec, &r, Duration::from_secs(1), whole), &r).diff();
        assert!(diff.contains("cut at +3050 ms of the time the gateway took the change"), "{diff}");
    }

    #[test]
    fn a_stream_must_answer_what_was_in_force_when_it_started() {
        let r = with_long(Closes::None);
        // Started before the change but answered with the new version; one
        // started well after the change answered the old one.
        let streams =
            vec![long(0, 1200, 1500, "v2", StreamEnd::Completed), long(1600, 1605, 1900, "v1", StreamEnd::Completed)];
        let diff = verify(&analyze_long(streams, &r), &r).diff();
        assert!(
            diff.contains("+2 long stream(s) answered otherwise; first: HTTP/2 connection 1 stream started -1000 ms"),
            "{diff}"
        );
        // Between the change and switch_within either version is right.
        let streams =
            vec![long(0, 1200, 1500, "v1", StreamEnd::Completed), long(1200, 1205, 1400, "v1", StreamEnd::Completed)];
        let verdict = verify(&analyze_long(streams, &r), &r);
        assert!(verdict.holds(), "{}", verdict.diff());
    }

    #[test]
    fn claims_that_hold_only_on_nothing_fail_on_what_was_seen() {
        let streams = || {
            vec![long(0, 1200, 1500, "v1", StreamEnd::Completed), long(1600, 1605, 1900, "v2", StreamEnd::Completed)]
        };
        let mut r = with_long(Closes::None);
        r.claims.long_end = LongEnd::Cut;
        assert!(verify(&analyze_long(streams(), &r), &r).diff().contains("+long streams completed: 2 of 2"));
        let mut r = with_long(Closes::None);
        r.claims.after_switch = "v1".into();
        let mut rec = recording(switched(), vec![]);
        rec.samples.push(sample(0, 1300, Some("v2"), 200));
        let analysis = analyze(&rec, &r, Duration::from_secs(1), taken(1080, 1100));
        assert!(verify(&analysis, &r).diff().contains(r#"+answers other than "v1" after a connection switched: 1"#));
        let mut r = with_long(Closes::None);
        r.errors = Errors::All;
        let diff = verify(&analyze_long(streams(), &r), &r).diff();
        assert!(diff.contains("+failed requests: 0 of 4"), "{diff}");
    }
}
