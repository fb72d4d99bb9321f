//! Retry policy: exponential backoff with full jitter, honouring `Retry-After`.

use std::time::Duration;

use rand::Rng;

use crate::report::{Failure, FailureKind};

/// Default allowance of retries after throttling.
pub const DEFAULT_THROTTLED_RETRIES: u32 = 20;

/// Longest `Retry-After` honoured; a larger (or hostile) value is clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often and how patiently to retry a retryable failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after errors other than throttling; 0 disables them.
    pub max_retries: u32,
    /// Retries after throttling: the cloud said "later", so nothing was
    /// applied and waiting is the cure. Bounded by the run deadline too.
    pub max_throttled_retries: u32,
    /// Ceiling of the first backoff.
    pub initial_backoff: Duration,
    /// Ceiling of any backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            max_throttled_retries: DEFAULT_THROTTLED_RETRIES,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_retries: 0, max_throttled_retries: 0, ..Self::default() }
    }

    /// Most attempts one call may take.
    pub fn max_attempts(&self) -> u32 {
        1 + self.max_retries + self.max_throttled_retries
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the number of retries after throttling.
    pub fn with_max_throttled_retries(mut self, retries: u32) -> Self {
        self.max_throttled_retries = retries;
        self
    }

    /// Sets the first backoff's ceiling and any backoff's.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// The wait before retry number `retry` (0-based): uniform in
    /// `[0, min(max_backoff, initial_backoff * 2^retry)]` ("full jitter"), and
    /// never shorter than what the cloud asked for.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let ceiling = self
            .initial_backoff
            .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let jitter = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64))
        };
        match retry_after {
            Some(wait) => jitter.max(wait.min(MAX_RETRY_AFTER)),
            None => jitter,
        }
    }
}

/// The allowances of one read asked again after failures (a listing page,
/// a provider's setup): throttling and other failures counted apart, as
/// for calls.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadRetries {
    tries: u32,
    throttled: u32,
}

impl ReadRetries {
    /// Counts `failure`; the wait before asking again, or `None` when its allowance is spent.
    pub(crate) fn after(&mut self, policy: &RetryPolicy, failure: &Failure) -> Option<Duration> {
        if failure.kind == FailureKind::Throttled {
            self.throttled += 1;
        } else {
            self.tries += 1;
        }
        if self.tries > policy.max_retries || self.throttled > policy.max_throttled_retries {
            return None;
        }
        Some(policy.delay(self.tries + self.throttled, failure.retry_after, &mut rand::rng()))
    }
}

impl RetryPolicy {
    /// A cloud binder's default: five retries from `first_backoff` (the
    /// cloud's own throttling pace), backing off to 20 s.
    pub fn cloud(first_backoff: Duration) -> Self {
        Self { max_retries: 5, initial_backoff: first_backoff, max_backoff: Duration::from_secs(20), ..Self::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn delay_stays_within_the_ceiling(retry in 0u32..100, seed: u64, after_ms in proptest::option::of(0u64..1_000_000)) {
            let policy = RetryPolicy::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let after = after_ms.map(Duration::from_millis);
            let d = policy.delay(retry, after, &mut rng);
            let ceiling = policy.max_backoff.max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
            prop_assert!(d <= ceiling);
            if let Some(a) = after {
                prop_assert!(d >= a.min(MAX_RETRY_AFTER));
            }
        }
    }

    #[test]
    fn ceiling_grows_exponentially() {
        let policy = RetryPolicy {
            max_retries: 5,
            max_throttled_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let max_of =
            |retry, rng: &mut rand::rngs::StdRng| (0..500).map(|_| policy.delay(retry, None, rng)).max().unwrap();
        assert!(max_of(0, &mut rng) <= Duration::from_millis(100));
        assert!(max_of(2, &mut rng) > Duration::from_millis(200));
        assert!(max_of(2, &mut rng) <= Duration::from_millis(400));
        assert!(max_of(30, &mut rng) <= Duration::from_secs(1));
    }
}
