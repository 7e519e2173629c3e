//! What a reload under TCP load did: which stamps each connection's
//! answers carried before and after the change, which connections the
//! proxy closed and when, against the drain time in force, and the
//! exchanges that failed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::reload::{millis, Taken, Window, DRAIN_EARLY, DRAIN_LATE, NONE};
use super::{Check, Verdict};
use crate::load::tcp::{TcpAnswer, TcpConnection, TcpRecording, TcpSample};
use crate::scenario::{Closes, Errors, TcpReload};

/// A reload's TCP record, with when the change began and was taken (since
/// the load started).
#[derive(Debug, Clone)]
pub struct TcpAnalysis {
    pub recording: TcpRecording,
    pub applied_at: Duration,
    pub taken: Taken,
    pub from: String,
    pub to: String,
}

impl TcpAnalysis {
    fn connection(&self, id: u32) -> Option<&TcpConnection> {
        self.recording.connections.iter().find(|c| c.id == id)
    }

    /// Answers to exchanges `select` picks: their stamps, or `None` for a
    /// failed exchange; a cut one is left out (the close is judged apart).
    fn answers<'a>(
        &'a self,
        select: impl Fn(&TcpSample, &TcpConnection) -> bool + 'a,
    ) -> impl Iterator<Item = Option<&'a str>> + 'a {
        self.recording.samples.iter().filter_map(move |sample| {
            let connection = self.connection(sample.connection)?;
            match &sample.outcome {
                _ if !select(sample, connection) => None,
                TcpAnswer::Stamped(stamps) => Some(Some(stamps.as_str())),
                TcpAnswer::Failed(_) => Some(None),
                TcpAnswer::Cut => None,
            }
        })
    }

    fn errors(&self) -> Vec<&str> {
        let failed = self.recording.samples.iter().filter_map(|s| match &s.outcome {
            TcpAnswer::Failed(why) => Some(why.as_str()),
            _ => None,
        });
        failed.collect()
    }

    /// When the gateway took the change (or, if it had nothing to take,
    /// when the change began).
    fn taken_by(&self) -> Duration {
        self.taken.all.map_or(self.applied_at, |t| t.by)
    }

    /// The drain time in force, when the gateway's admin API told it.
    fn drain_time(&self) -> Option<Duration> {
        humantime::parse_duration(&self.recording.drain.as_ref()?.time).ok()
    }
}

/// Every check of a TCP reload against what it saw.
pub fn verify(analysis: &TcpAnalysis, reload: &TcpReload) -> Verdict {
    let applied_at = analysis.applied_at;
    let taken_by = analysis.taken_by();
    let switched_by = applied_at + reload.switch_within;
    let before = analysis.answers(|sample, _| sample.sent < applied_at);
    let after = analysis.answers(|sample, c| c.opened < applied_at && sample.sent > taken_by);
    let new = analysis.answers(|_, c| c.opened >= switched_by);
    let mut checks = vec![
        all_answer(before, &reload.from, "answers before the change"),
        all_answer(
            after,
            &reload.held_after,
            "answers after the gateway took the change, on connections opened before it",
        ),
        all_answer(
            new,
            &reload.to,
            &format!("answers on connections opened {:?} after the change began", reload.switch_within),
        ),
        errors_check(analysis, reload.errors),
    ];
    checks.push(match reload.closes {
        Closes::None => {
            let closed = analysis.recording.connections.iter().filter(|c| c.closed_by_proxy.is_some()).count();
            Check::new("connections closed by the proxy: 0", format!("connections closed by the proxy: {closed}"))
        }
        Closes::Graceful | Closes::Drain => drain_check(analysis),
    });
    Verdict { checks }
}

/// Each answer must carry `stamps`; there must be at least one.
fn all_answer<'a>(answers: impl Iterator<Item = Option<&'a str>>, stamps: &str, what: &str) -> Check {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for answer in answers {
        *seen.entry(answer.map_or("(failed)", label)).or_default() += 1;
    }
    let expected = format!("{what}: each {:?}", label(stamps));
    match seen.len() {
        0 => Check::new(expected, format!("{what}: none was made")),
        1 if seen.contains_key(label(stamps)) => Check::held(expected),
        _ => Check::new(expected, format!("{what}: {}", tally(&seen))),
    }
}

/// The stamps as reports show them: `(none)` for no stamp at all.
fn label(stamps: &str) -> &str {
    if stamps.is_empty() {
        NONE
    } else {
        stamps
    }
}

fn tally(seen: &BTreeMap<&str, usize>) -> String {
    seen.iter().map(|(stamps, n)| format!("{stamps:?} {n}")).collect::<Vec<_>>().join(", ")
}

fn errors_check(analysis: &TcpAnalysis, errors: Errors) -> Check {
    let failed = analysis.errors();
    let exchanges = analysis.recording.samples.len();
    let examples: Vec<&str> = failed.iter().copied().take(3).collect();
    let actual = match examples.is_empty() {
        true => format!("failed exchanges: {}", failed.len()),
        false => format!("failed exchanges: {} ({})", failed.len(), examples.join("; ")),
    };
    match errors {
        Errors::AtMost(most) if failed.len() <= most as usize => {
            Check::held(format!("failed exchanges: at most {most}"))
        }
        Errors::AtMost(most) => Check::new(format!("failed exchanges: at most {most}"), actual),
        Errors::All if failed.len() == exchanges => Check::held("failed exchanges: every one"),
        Errors::All => Check::new("failed exchanges: every one", format!("{actual} of {exchanges}")),
    }
}

/// A drain: the change put new listeners in force, and the proxy closed
/// every held connection still on the old ones at the end of the drain
/// time in force, and no other connection.
fn drain_check(analysis: &TcpAnalysis) -> Check {
    let expected = "held connections on the old listener: each closed by the proxy at the end of the drain time";
    let Some(listeners) = analysis.taken.listeners else {
        return Check::new(expected, "the change left the gateway's listeners alone: nothing drains");
    };
    let Some(time) = analysis.drain_time() else {
        return Check::new(expected, "the gateway's drain time is not known (its admin API did not tell it)");
    };
    let connections = &analysis.recording.connections;
    let on_old = |c: &&TcpConnection| c.held && c.opened < listeners.after;
    let at_drain_end =
        |at: Duration| at + DRAIN_EARLY >= listeners.after + time && at <= listeners.by + time + DRAIN_LATE;
    let wrong: Vec<String> = connections
        .iter()
        .filter_map(|c| match (on_old(&c), c.closed_by_proxy) {
            (true, Some(at)) if at_drain_end(at) => None,
            (true, None) => Some(format!("connection {} stayed open", c.id)),
            (_, Some(at)) => Some(format!("connection {} closed {}", c.id, since_listeners(at, listeners))),
            (false, None) => None,
        })
        .collect();
    let on_old = connections.iter().filter(on_old).count();
    match (on_old, wrong.is_empty()) {
        (0, _) => Check::new(expected, "no held connection was open when the gateway took its new listeners"),
        (_, true) => Check::held(expected),
        (_, false) => Check::new(
            expected,
            format!("{} (drain time in force {time:?}; {on_old} held on the old listener)", wrong.join(", ")),
        ),
    }
}

fn since_listeners(at: Duration, listeners: Window) -> String {
    match at.checked_sub(listeners.after) {
        Some(later) => format!("{} after the gateway took its new listeners", millis(later)),
        None => format!("{} before the gateway took its new listeners", millis(listeners.after - at)),
    }
}

/// A few lines for the console and the step trace.
pub fn summary(analysis: &TcpAnalysis) -> String {
    let recording = &analysis.recording;
    let held = recording.connections.iter().filter(|c| c.held).count();
    let mut versions: BTreeMap<&str, usize> = BTreeMap::new();
    for answer in analysis.answers(|_, _| true) {
        *versions.entry(answer.map_or("(failed)", label)).or_default() += 1;
    }
    // New connections (one exchange each) after the change: when the
    // first answered `to`, and the last `from`.
    let new_answering = |stamps: &str| {
        let answered = |s: &&TcpSample| matches!(&s.outcome, TcpAnswer::Stamped(got) if got == stamps);
        let new = |s: &&TcpSample| analysis.connection(s.connection).is_some_and(|c| !c.held);
        let after = |s: &&TcpSample| s.sent >= analysis.applied_at;
        let times = recording.samples.iter().filter(after).filter(new).filter(answered);
        times.map(|s| s.sent - analysis.applied_at).collect::<Vec<_>>()
    };
    let switch = match (new_answering(&analysis.to).first(), new_answering(&analysis.from).last()) {
        (Some(first), Some(last)) => {
            format!(
                "; new connections answered {:?} from +{}, {:?} until +{}",
                label(&analysis.to),
                millis(*first),
                label(&analysis.from),
                millis(*last)
            )
        }
        (Some(first), None) => format!("; new connections answered {:?} from +{}", label(&analysis.to), millis(*first)),
        (None, _) => format!("; no new connection answered {:?}", label(&analysis.to)),
    };
    let closes: Vec<String> = recording
        .connections
        .iter()
        .filter_map(|c| Some((c.id, c.closed_by_proxy?)))
        .map(|(id, at)| match analysis.taken.listeners {
            Some(listeners) => format!("{id} {}", since_listeners(at, listeners)),
            None => format!("{id} at {}", millis(at)),
        })
        .collect();
    let mut lines = vec![
        format!(
            "{} exchanges in {:.2} s on {} connections ({held} held, the rest one exchange each); answers: {}",
            recording.samples.len(),
            recording.duration.as_secs_f64(),
            recording.connections.len(),
            tally(&versions)
        ),
        format!(
            "change applied at {} ({}){switch}",
            millis(analysis.applied_at),
            match analysis.taken.all {
                Some(t) => format!("taken by the gateway by +{}", millis(t.by.saturating_sub(analysis.applied_at))),
                None => "the gateway had nothing to take".to_owned(),
            }
        ),
        format!(
            "failed exchanges {}; closed by the proxy: {}",
            analysis.errors().len(),
            if closes.is_empty() { "none".to_owned() } else { closes.join(", ") }
        ),
    ];
    if let Some(drain) = &recording.drain {
        lines.push(format!("gateway drain in force: drain time {}, strategy {}", drain.time, drain.strategy));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tcp::TcpLoadPlan;
    use crate::load::DrainInForce;
    use crate::scenario::Change;

    fn reload(closes: Closes) -> TcpReload {
        TcpReload {
            listener: "raw".into(),
            load: TcpLoadPlan {
                held: 1,
                every: Duration::from_millis(100),
                rate: 10,
                duration: Duration::from_secs(10),
            },
            after: Duration::from_secs(1),
            change: Change::Delete { namespace: "n".into(), name: "x".into() },
            from: "[a1]".into(),
            to: "[a2]".into(),
            errors: Errors::AtMost(0),
            closes,
            switch_within: Duration::from_secs(2),
            held_after: "[a1]".into(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn window(after: u64, by: u64) -> Window {
        Window { after: ms(after), by: ms(by) }
    }

    /// A held connection from the start (closed at `closed`, if given) and
    /// new connections at 0.5 s, 2 s and 4 s answering `[a1]`, then `new`.
    fn analysis(closed: Option<u64>, new: &str, listeners: bool) -> TcpAnalysis {
        let connection = |id, held, opened, closed: Option<u64>| TcpConnection {
            id,
            held,
            opened: ms(opened),
            closed_by_proxy: closed.map(ms),
        };
        let stamped = |connection, sent, stamps: &str| TcpSample {
            connection,
            sent: ms(sent),
            outcome: TcpAnswer::Stamped(stamps.into()),
        };
        let held_until = closed.unwrap_or(9000);
        let mut samples: Vec<TcpSample> = (0..held_until / 500).map(|i| stamped(1, i * 500, "[a1]")).collect();
        samples.extend([stamped(2, 500, "[a1]"), stamped(3, 2000, new), stamped(4, 4000, new)]);
        TcpAnalysis {
            recording: TcpRecording {
                samples,
                connections: vec![
                    connection(1, true, 0, closed),
                    connection(2, false, 500, None),
                    connection(3, false, 2000, None),
                    connection(4, false, 4000, None),
                ],
                duration: ms(10_000),
                drain: Some(DrainInForce { time: "5s".into(), strategy: "Immediate".into() }),
            },
            applied_at: ms(1000),
            taken: Taken { all: Some(window(1100, 1300)), listeners: listeners.then(|| window(1100, 1300)) },
            from: "[a1]".into(),
            to: "[a2]".into(),
        }
    }

    #[test]
    fn a_config_change_keeps_held_connections_and_switches_new_ones() {
        let verdict = verify(&analysis(None, "[a2]", false), &reload(Closes::None));
        assert!(verdict.holds(), "{}", verdict.diff());
        let verdict = verify(&analysis(None, "[a1]", false), &reload(Closes::None));
        let mismatches = verdict.mismatches();
        assert_eq!(mismatches.len(), 1, "{}", verdict.diff());
        assert!(mismatches[0].actual.ends_with("after the change began: \"[a1]\" 1"), "{mismatches:?}");
    }

    #[test]
    fn a_drain_closes_held_connections_at_the_end_of_the_drain_time() {
        let verdict = verify(&analysis(Some(6200), "[a2]", true), &reload(Closes::Drain));
        assert!(verdict.holds(), "{}", verdict.diff());
        let early = verify(&analysis(Some(3000), "[a2]", true), &reload(Closes::Drain));
        assert!(early.mismatches()[0].actual.starts_with("connection 1 closed 1900 ms after"), "{}", early.diff());
        let kept = verify(&analysis(None, "[a2]", true), &reload(Closes::Drain));
        assert!(kept.mismatches()[0].actual.starts_with("connection 1 stayed open"), "{}", kept.diff());
        let no_listeners = verify(&analysis(Some(6200), "[a2]", false), &reload(Closes::Drain));
        assert!(no_listeners.mismatches()[0].actual.contains("nothing drains"), "{}", no_listeners.diff());
        let closed = verify(&analysis(Some(6200), "[a2]", true), &reload(Closes::None));
        assert_eq!(closed.mismatches()[0].actual, "connections closed by the proxy: 1");
    }

    #[test]
    fn a_claim_with_nothing_to_judge_fails() {
        let mut seen = analysis(None, "[a2]", false);
        seen.recording.samples.retain(|s| s.connection != 1 || s.sent < ms(1000));
        let verdict = verify(&seen, &reload(Closes::None));
        assert!(verdict.mismatches()[0].actual.ends_with("none was made"), "{}", verdict.diff());
    }

    #[test]
    fn failed_exchanges_count_against_errors_and_cut_ones_do_not() {
        let mut seen = analysis(Some(6200), "[a2]", true);
        seen.recording.samples.push(TcpSample { connection: 1, sent: ms(6150), outcome: TcpAnswer::Cut });
        assert!(verify(&seen, &reload(Closes::Drain)).holds());
        let refused = TcpAnswer::Failed("connect: refused".into());
        seen.recording.samples.push(TcpSample { connection: 4, sent: ms(4100), outcome: refused });
        let verdict = verify(&seen, &reload(Closes::Drain));
        let actual: Vec<String> = verdict.mismatches().into_iter().map(|m| m.actual).collect();
        assert!(actual.contains(&"failed exchanges: 1 (connect: refused)".to_owned()), "{actual:?}");
    }
}
