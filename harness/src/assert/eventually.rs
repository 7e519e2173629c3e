//! Retrying an expectation until it holds `times` in a row or the deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

use super::Verdict;

/// Pause after an attempt that did not hold, so a failing check does not spin.
const BACKOFF: Duration = Duration::from_millis(25);

#[derive(Debug, Clone)]
pub struct Attempts {
    pub count: u32,
    pub elapsed: Duration,
    /// The last attempt that did not hold: its diff, or why it could not be made.
    pub last_failure: Option<String>,
}

/// Runs `attempt` until it holds `times` times in a row, `every` apart (Ok),
/// or `within` has passed after a failed attempt (Err, with the last failure).
pub async fn eventually<F, Fut>(
    times: u32,
    within: Duration,
    every: Duration,
    mut attempt: F,
) -> Result<Attempts, Attempts>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Verdict, String>>,
{
    let started = Instant::now();
    let mut streak = 0;
    let mut attempts = Attempts { count: 0, elapsed: Duration::ZERO, last_failure: None };
    loop {
        attempts.count += 1;
        match attempt().await {
            Ok(verdict) if verdict.holds() => {
                streak += 1;
                if streak >= times {
                    attempts.elapsed = started.elapsed();
                    return Ok(attempts);
                }
                tokio::time::sleep(every).await;
                continue;
            }
            Ok(verdict) => attempts.last_failure = Some(verdict.diff()),
            Err(error) => attempts.last_failure = Some(error),
        }
        streak = 0;
        attempts.elapsed = started.elapsed();
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
    use crate::assert::Check;

    fn verdict(ok: bool) -> Verdict {
        Verdict { checks: vec![if ok { Check::held("x") } else { Check::new("x", "y") }] }
    }

    #[tokio::test]
    async fn needs_consecutive_passes() {
        // pass, fail, pass, pass, pass: the streak restarts after the failure.
        let script = [true, false, true, true, true];
        let i = Cell::new(0);
        let result = eventually(3, Duration::from_secs(5), Duration::ZERO, || {
            let ok = script[i.get()];
            i.set(i.get() + 1);
            async move { Ok(verdict(ok)) }
        })
        .await
        .expect("holds three times in a row");
        assert_eq!(result.count, 5);
    }

    #[tokio::test]
    async fn gives_up_after_the_deadline_with_the_last_failure() {
        let result = eventually(1, Duration::from_millis(60), Duration::ZERO, || async {
            Err::<Verdict, _>("refused".to_owned())
        })
        .await;
        let attempts = result.expect_err("never holds");
        assert!(attempts.count >= 2);
        assert_eq!(attempts.last_failure.as_deref(), Some("refused"));
    }
}
