//! Retrying an expectation until it holds `times` in a row or the deadline
//! passes; or attempting it exactly once.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::failure::Failure;
use crate::scenario::Retry;

/// Pause after an attempt that did not hold, so a failing check does not spin.
const BACKOFF: Duration = Duration::from_millis(25);

#[derive(Debug, Clone)]
pub struct Attempts {
    pub count: u32,
    pub elapsed: Duration,
    /// The last attempt that did not hold: its diff, or why it could not be made.
    pub last_failure: Option<Failure>,
}

/// Consecutive attempts that held, counted toward the `times` a check needs.
#[derive(Debug, Clone)]
pub struct Streak {
    needed: u32,
    run: u32,
    held: bool,
    /// A miss ends it for good (`Once`, `Always`): no later attempt counts.
    strict: bool,
    missed: bool,
}

impl Streak {
    pub fn new(retry: Retry) -> Self {
        let (needed, strict) = match retry {
            Retry::Once => (1, true),
            Retry::Until { times, .. } => (times, false),
            Retry::Always { times, .. } => (times, true),
        };
        Streak { needed, run: 0, held: false, strict, missed: false }
    }

    /// Counts one attempt; once the streak is long enough, it has held for good.
    pub fn record(&mut self, holds: bool) {
        if self.held || self.missed {
            return;
        }
        self.missed = self.strict && !holds;
        self.run = if holds { self.run + 1 } else { 0 };
        self.held = self.run >= self.needed;
    }

    pub fn held(&self) -> bool {
        self.held
    }
}

/// Runs `attempt` until it holds as `retry` demands (Ok), or fails (Err,
/// with the last failure): at once for `Retry::Once`, else when `within`
/// has passed after a failed attempt. Passing attempts are `every` apart.
pub async fn eventually<F, Fut>(retry: Retry, mut attempt: F) -> Result<Attempts, Attempts>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let (within, every) = match retry {
        Retry::Once => (Duration::ZERO, Duration::ZERO),
        Retry::Until { within, every, .. } => (within, every),
        // Any miss ends it: no time to retry in.
        Retry::Always { every, .. } => (Duration::ZERO, every),
    };
    let started = Instant::now();
    let mut streak = Streak::new(retry);
    let mut attempts = Attempts { count: 0, elapsed: Duration::ZERO, last_failure: None };
    loop {
        attempts.count += 1;
        let result = attempt().await;
        streak.record(result.is_ok());
        attempts.elapsed = started.elapsed();
        match result {
            Ok(()) if streak.held() => return Ok(attempts),
            Ok(()) => {
                tokio::time::sleep(every).await;
                continue;
            }
            Err(failure) => attempts.last_failure = Some(failure),
        }
        if attempts.elapsed >= within {
            return Err(attempts);
        }
        tokio::time::sleep(BACKOFF).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::failure::FailureKind;

    fn until(times: u32, within: Duration) -> Retry {
        Retry::Until { times, within, every: Duration::ZERO }
    }

    fn scripted(script: &'static [bool]) -> (Cell<usize>, &'static [bool]) {
        (Cell::new(0), script)
    }

    #[tokio::test]
    async fn needs_consecutive_passes() {
        // pass, fail, pass, pass, pass: the streak restarts after the failure.
        let (i, script) = scripted(&[true, false, true, true, true]);
        let result = eventually(until(3, Duration::from_secs(5)), || {
            let ok = script[i.get()];
            i.set(i.get() + 1);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(Failure::new(FailureKind::Expectation, "no"))
                }
            }
        })
        .await
        .expect("holds three times in a row");
        assert_eq!(result.count, 5);
    }

    #[tokio::test]
    async fn gives_up_after_the_deadline_with_the_last_failure() {
        let result = eventually(until(1, Duration::from_millis(60)), || async {
            Err(Failure::new(FailureKind::Transport, "refused"))
        })
        .await;
        let attempts = result.expect_err("never holds");
        assert!(attempts.count >= 2);
        assert_eq!(attempts.last_failure.map(|f| f.message), Some("refused".to_owned()));
    }

    #[tokio::test]
    async fn once_judges_the_first_attempt_only() {
        let (i, script) = scripted(&[false, true]);
        let result = eventually(Retry::Once, || {
            let ok = script[i.get()];
            i.set(i.get() + 1);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(Failure::new(FailureKind::Expectation, "first"))
                }
            }
        })
        .await;
        let attempts = result.expect_err("the first attempt fails, and there is no second");
        assert_eq!(attempts.count, 1);
    }

    #[tokio::test]
    async fn always_needs_every_attempt_to_hold() {
        let always = Retry::Always { times: 3, every: Duration::ZERO };
        let (i, script) = scripted(&[true, false, true, true, true]);
        let attempt = || {
            let ok = script[i.get()];
            i.set(i.get() + 1);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(Failure::new(FailureKind::Expectation, "second"))
                }
            }
        };
        let attempts = eventually(always, attempt).await.expect_err("the second attempt fails, and that is the end");
        assert_eq!(attempts.count, 2);
        let (i, script) = scripted(&[true, true, true, false]);
        let attempts = eventually(always, || {
            let ok = script[i.get()];
            i.set(i.get() + 1);
            async move { ok.then_some(()).ok_or_else(|| Failure::new(FailureKind::Expectation, "no")) }
        })
        .await
        .expect("three that hold");
        assert_eq!(attempts.count, 3);
        let mut streak = Streak::new(always);
        for holds in [true, false, true, true, true] {
            streak.record(holds);
        }
        assert!(!streak.held(), "a miss is never made up for");
    }

    #[test]
    fn a_streak_holds_for_good_once_long_enough() {
        let mut streak = Streak::new(until(2, Duration::ZERO));
        for holds in [true, false, true] {
            streak.record(holds);
        }
        assert!(!streak.held());
        streak.record(true);
        assert!(streak.held());
        streak.record(false);
        assert!(streak.held(), "a later miss does not undo it");
    }
}
