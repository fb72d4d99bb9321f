//! A client-side limit on the calls a binder makes: after a burst of at most
//! N, no more than N calls in any second (or minute).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A call rate: `N/s` or `N/m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    calls: NonZeroU32,
    per_minute: bool,
}

impl RateLimit {
    /// At most `calls` calls a second.
    pub fn per_second(calls: NonZeroU32) -> Self {
        Self { calls, per_minute: false }
    }

    /// At most `calls` calls a minute.
    pub fn per_minute(calls: NonZeroU32) -> Self {
        Self { calls, per_minute: true }
    }

    pub(crate) fn limiter(&self) -> Arc<DefaultDirectRateLimiter> {
        let quota = if self.per_minute { Quota::per_minute(self.calls) } else { Quota::per_second(self.calls) };
        Arc::new(RateLimiter::direct(quota))
    }

    /// Evenly spaced calls, no burst: no window of the rate's length holds
    /// more than N, as a cloud that counts per second sees it.
    pub(crate) fn spaced(&self) -> DefaultDirectRateLimiter {
        let window = if self.per_minute { Duration::from_secs(60) } else { Duration::from_secs(1) };
        let quota = Quota::with_period(window / self.calls.get()).unwrap_or_else(|| Quota::per_second(self.calls));
        RateLimiter::direct(quota)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.calls, if self.per_minute { "m" } else { "s" })
    }
}

/// Why a rate could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate `{0}`: expected N/s or N/m with N at least 1, e.g. 5/s")]
pub struct RateLimitError(String);

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || RateLimitError(text.to_string());
        let (n, unit) = text.trim().split_once('/').ok_or_else(err)?;
        let calls: NonZeroU32 = n.trim().parse().map_err(|_| err())?;
        match unit.trim() {
            "s" | "sec" | "second" => Ok(Self::per_second(calls)),
            "m" | "min" | "minute" => Ok(Self::per_minute(calls)),
            _ => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("5/s".parse::<RateLimit>().unwrap().to_string(), "5/s");
        assert_eq!("200/m".parse::<RateLimit>().unwrap().to_string(), "200/m");
        for bad in ["0/s", "5", "5/h", "x/s", "-1/s", ""] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }
}
