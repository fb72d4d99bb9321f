//! How the engine follows asynchronous tasks: adaptive by default, learning
//! the run's task duration from the tasks that end, or at a fixed interval.

use std::time::Duration;

/// First status query of a run with nothing learned yet.
const FIRST_POLL: Duration = Duration::from_millis(250);
/// Growth of the wait while nothing is known about the task duration.
const GROWTH: f64 = 1.5;
/// Longest wait between two queries of one task.
const MAX_STEP: Duration = Duration::from_secs(30);
/// Shortest wait between two queries of one task.
const MIN_STEP: Duration = Duration::from_millis(10);

/// When task status is queried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schedule {
    /// Soon at first, backing off geometrically; every task that ends teaches
    /// the run the task duration, and later tasks are queried near it.
    Adaptive,
    /// A fixed interval, the first query one interval after submission.
    Fixed(Duration),
}

/// How tasks are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Polling {
    /// When to query.
    pub schedule: Schedule,
    /// Longest a task may run before its instance is reported `unknown`.
    pub task_timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self { schedule: Schedule::Adaptive, task_timeout: Duration::from_secs(30 * 60) }
    }
}

impl Polling {
    /// Adaptive polling with this task timeout.
    pub fn adaptive(task_timeout: Duration) -> Self {
        Self { schedule: Schedule::Adaptive, task_timeout }
    }

    /// Polling at a fixed interval.
    pub fn fixed(interval: Duration) -> Self {
        Self { schedule: Schedule::Fixed(interval.max(MIN_STEP)), ..Self::default() }
    }

    /// Sets the task timeout.
    pub fn with_task_timeout(mut self, task_timeout: Duration) -> Self {
        self.task_timeout = task_timeout;
        self
    }
}

/// What a run has learned about its task durations: tasks were seen running
/// at age `lo` and ended by age `hi`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Estimator {
    lo: Option<Duration>,
    hi: Option<Duration>,
}

impl Estimator {
    /// A task was still running at `age`.
    pub fn running_at(&mut self, age: Duration) {
        match self.hi {
            Some(hi) if age >= hi => {
                // Tasks got longer than we thought: forget the upper bound.
                self.hi = None;
                self.lo = Some(age);
            }
            _ => self.lo = Some(self.lo.map_or(age, |lo| lo.max(age))),
        }
    }

    /// A task had ended by `age`; `first` when it was the first query of its
    /// task, which then may have ended long before.
    pub fn ended_by(&mut self, age: Duration, first: bool) {
        let width = match (self.lo, self.hi) {
            (Some(lo), Some(hi)) => hi.saturating_sub(lo),
            _ => age,
        };
        self.hi = Some(self.hi.map_or(age, |hi| hi.min(age)));
        if let Some(lo) = self.lo {
            if lo >= age {
                // Tasks got shorter: what we knew of the lower bound is stale.
                self.lo = Some(age / 2);
            } else if first {
                // No query saw it running: widen below, so shorter tasks are found.
                self.lo = Some(lo.saturating_sub((width * 2).max(MIN_STEP)));
            }
        }
    }

    /// The age at which to query a task next, given the age of its last query.
    pub fn next_age(&self, schedule: Schedule, last: Option<Duration>) -> Duration {
        let after = last.unwrap_or(Duration::ZERO);
        let next = match schedule {
            Schedule::Fixed(interval) => after + interval,
            Schedule::Adaptive => self.adaptive_next(last),
        };
        next.clamp(after + MIN_STEP, after + MAX_STEP)
    }

    fn adaptive_next(&self, last: Option<Duration>) -> Duration {
        let after = last.unwrap_or(Duration::ZERO);
        if let Some(hi) = self.hi {
            // Narrow in on the end: halfway, three quarters, then the known bound.
            let lo = self.lo.unwrap_or(Duration::ZERO).min(hi);
            let width = hi - lo;
            if width <= (hi / 40).max(MIN_STEP * 2) && hi >= after + MIN_STEP {
                // Close enough: go straight to the bound.
                return hi;
            }
            for point in [lo + width / 2, lo + width * 3 / 4, hi] {
                if point >= after + MIN_STEP {
                    return point;
                }
            }
            if hi + MIN_STEP >= after {
                // Due about now: one more query just past the bound.
                return after + MIN_STEP;
            }
        } else if let Some(lo) = self.lo
            && last.is_none()
        {
            return lo.mul_f64(GROWTH).max(FIRST_POLL);
        }
        match last {
            None => FIRST_POLL,
            Some(age) => age.mul_f64(GROWTH).max(age + FIRST_POLL / 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates one task of duration `task` polled from age 0; returns the
    /// age it is seen done and the number of queries.
    fn follow(est: &mut Estimator, task: Duration) -> (Duration, u32) {
        let mut last = None;
        let mut queries = 0;
        loop {
            let age = est.next_age(Schedule::Adaptive, last);
            queries += 1;
            if age >= task {
                est.ended_by(age, queries == 1);
                return (age, queries);
            }
            est.running_at(age);
            last = Some(age);
        }
    }

    #[test]
    fn learns_the_duration_and_closes_in() {
        for ms in [300u64, 1_000, 3_000, 30_000] {
            let task = Duration::from_millis(ms);
            let mut est = Estimator::default();
            let rounds: Vec<(Duration, u32)> = (0..6).map(|_| follow(&mut est, task)).collect();
            let total: Duration = rounds.iter().map(|r| r.0).sum();
            let floor = task * rounds.len() as u32;
            let ratio = total.as_secs_f64() / floor.as_secs_f64();
            assert!(ratio < 1.15, "{ms} ms: {ratio:.3} ({rounds:?})");
            // After learning, few queries per round.
            assert!(rounds[3..].iter().all(|r| r.1 <= 3), "{ms} ms: {rounds:?}");
        }
    }

    #[test]
    fn recovers_when_tasks_get_longer_or_shorter() {
        let mut est = Estimator::default();
        for _ in 0..4 {
            follow(&mut est, Duration::from_millis(400));
        }
        let (seen, _) = follow(&mut est, Duration::from_secs(5));
        assert!(seen < Duration::from_millis(7_600), "{seen:?}");
        for _ in 0..6 {
            follow(&mut est, Duration::from_millis(200));
        }
        let (seen, _) = follow(&mut est, Duration::from_millis(200));
        assert!(seen < Duration::from_millis(300), "{seen:?}");
    }

    #[test]
    fn fixed_interval_is_kept() {
        let est = Estimator::default();
        let every = Duration::from_secs(5);
        assert_eq!(est.next_age(Schedule::Fixed(every), None), every);
        assert_eq!(est.next_age(Schedule::Fixed(every), Some(every)), every * 2);
    }
}
