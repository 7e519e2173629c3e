//! The load's clock: when it started, when it ends, and how long answers
//! still due may take after that.

use std::time::{Duration, Instant};

use super::GRACE;

/// The load's time: its start, its end, and the last moment an answer
/// still due is waited for.
#[derive(Debug, Clone)]
pub(super) struct Clock {
    pub started: Instant,
    pub deadline: Instant,
}

impl Clock {
    pub fn start(duration: Duration) -> Self {
        let started = Instant::now();
        Clock { started, deadline: started + duration }
    }

    pub fn since(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn over(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn last_answer(&self) -> tokio::time::Instant {
        (self.deadline + GRACE).into()
    }
}
