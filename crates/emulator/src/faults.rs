//! Faults the emulator injects: by rate (seeded) and by scripted sequence.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::inventory::Cloud;

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the cloud's throttling code and `Retry-After`.
    Throttle,
    /// A 5xx with the cloud's internal-error code, before anything is applied.
    ServerError,
    /// The connection is dropped before anything is applied.
    DropBeforeApply,
    /// The request is applied, then the connection is dropped without an answer.
    DropAfterApply,
    /// The request is applied, then the gateway answers 502 (backend unavailable).
    BadGatewayAfterApply,
    /// The request is applied, then the gateway answers 504 (backend timeout).
    GatewayTimeoutAfterApply,
    /// The answer is delayed by this much.
    Slow(Duration),
    /// Volcengine: every instance of the call answers `FlowLimitExceeded`.
    InstanceThrottle,
    /// Volcengine: the call is applied, and its answer (and every replay of
    /// it under the same `ClientToken`) leaves the first instance out of
    /// `OperationDetails`.
    OmitFirstInstance,
    /// Huawei: a batch is delivered, and the first item of its answer says
    /// `SUCCESS` without a `task_id` (its task runs all the same).
    DeliveredWithoutTaskId,
}

/// Fault rates; each request draws at most one fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRates {
    /// Share of calls throttled.
    pub throttle: f64,
    /// Share of calls failing with a 5xx.
    pub server_error: f64,
    /// Share of calls dropped before applying.
    pub drop_before: f64,
    /// Share of calls dropped after applying.
    pub drop_after: f64,
    /// Share of calls applied, then answered 502 or 504 by the gateway (half each).
    pub gateway_after: f64,
    /// Share of calls slowed down.
    pub slow: f64,
    /// How much a slow call is slowed down.
    pub slow_by: Duration,
    /// Share of Volcengine instances throttled one by one.
    pub instance_throttle: f64,
    /// The `Retry-After` sent with throttling.
    pub retry_after: Duration,
    /// Extra latency per call, uniform in `[0, jitter]`.
    pub jitter: Duration,
}

impl Default for FaultRates {
    fn default() -> Self {
        Self {
            throttle: 0.0,
            server_error: 0.0,
            drop_before: 0.0,
            drop_after: 0.0,
            gateway_after: 0.0,
            slow: 0.0,
            slow_by: Duration::from_secs(2),
            instance_throttle: 0.0,
            retry_after: Duration::from_secs(1),
            jitter: Duration::ZERO,
        }
    }
}

/// Why a fault spec could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid fault spec `{spec}`: {reason}")]
pub struct FaultSpecError {
    spec: String,
    reason: String,
}

impl FromStr for FaultRates {
    type Err = FaultSpecError;

    /// `throttle=0.3,server-error=0.05,drop-before=0.02,drop-after=0.02,gateway-after=0.02,slow=0.1,slow-by=2s,instance-throttle=0.1,retry-after=1s,jitter=20ms`
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultSpecError { spec: spec.to_string(), reason };
        let mut rates = FaultRates::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| err(format!("`{part}` is not key=value")))?;
            let rate = || -> Result<f64, FaultSpecError> {
                let r: f64 = value.parse().map_err(|_| err(format!("`{value}` is not a number")))?;
                if (0.0..=1.0).contains(&r) { Ok(r) } else { Err(err(format!("rate {r} is not within 0..=1"))) }
            };
            let duration = || humantime::parse_duration(value).map_err(|e| err(format!("`{value}`: {e}")));
            match key.trim() {
                "throttle" => rates.throttle = rate()?,
                "server-error" | "error" => rates.server_error = rate()?,
                "drop-before" => rates.drop_before = rate()?,
                "drop-after" => rates.drop_after = rate()?,
                "gateway-after" => rates.gateway_after = rate()?,
                "slow" => rates.slow = rate()?,
                "slow-by" => rates.slow_by = duration()?,
                "instance-throttle" => rates.instance_throttle = rate()?,
                "retry-after" => rates.retry_after = duration()?,
                "jitter" => rates.jitter = duration()?,
                other => return Err(err(format!("unknown fault `{other}`"))),
            }
        }
        let total = rates.throttle
            + rates.server_error
            + rates.drop_before
            + rates.drop_after
            + rates.gateway_after
            + rates.slow;
        if total > 1.0 {
            return Err(err(format!("call fault rates add up to {total}, over 1")));
        }
        Ok(rates)
    }
}

/// A fault for the next matching call.
#[derive(Clone, Debug)]
pub struct ScriptedFault {
    /// Only calls to this cloud (any when `None`).
    pub cloud: Option<Cloud>,
    /// Only this action (`AttachKeyPair`, `BatchAssociateKeypair`, `ListKeypairTask`…).
    pub action: Option<String>,
    /// The fault.
    pub fault: Fault,
}

/// Decides each call's fault: the first matching scripted fault, else a draw.
pub(crate) struct Faults {
    rates: FaultRates,
    script: Mutex<Vec<ScriptedFault>>,
    rng: Mutex<StdRng>,
}

impl Faults {
    pub fn new(rates: FaultRates, script: Vec<ScriptedFault>, seed: u64) -> Self {
        Self { rates, script: Mutex::new(script), rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed_fa17)) }
    }

    pub fn rates(&self) -> &FaultRates {
        &self.rates
    }

    pub fn decide(&self, cloud: Cloud, action: &str) -> Option<Fault> {
        {
            let mut script = self.script.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pos) = script
                .iter()
                .position(|s| s.cloud.is_none_or(|c| c == cloud) && s.action.as_deref().is_none_or(|a| a == action))
            {
                return Some(script.remove(pos).fault);
            }
        }
        let r = &self.rates;
        let draw: f64 = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random();
        let mut edge = 0.0;
        for (rate, fault) in [
            (r.throttle, Fault::Throttle),
            (r.server_error, Fault::ServerError),
            (r.drop_before, Fault::DropBeforeApply),
            (r.drop_after, Fault::DropAfterApply),
            (r.gateway_after / 2.0, Fault::BadGatewayAfterApply),
            (r.gateway_after / 2.0, Fault::GatewayTimeoutAfterApply),
            (r.slow, Fault::Slow(r.slow_by)),
        ] {
            edge += rate;
            if draw < edge {
                return Some(fault);
            }
        }
        None
    }

    /// Whether one Volcengine instance is throttled on its own.
    pub fn instance_throttled(&self) -> bool {
        self.rates.instance_throttle > 0.0
            && self.rng.lock().unwrap_or_else(|e| e.into_inner()).random::<f64>() < self.rates.instance_throttle
    }

    pub fn jitter(&self) -> Duration {
        if self.rates.jitter.is_zero() {
            return Duration::ZERO;
        }
        let nanos = self.rates.jitter.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses() {
        let r: FaultRates =
            "throttle=0.3, server-error=0.05,drop-before=0.02,drop-after=0.02,retry-after=50ms,jitter=5ms"
                .parse()
                .unwrap();
        assert_eq!(r.throttle, 0.3);
        assert_eq!(r.retry_after, Duration::from_millis(50));
        assert!("throttle=2".parse::<FaultRates>().is_err());
        assert!("bogus=0.1".parse::<FaultRates>().is_err());
        assert!("throttle=0.6,server-error=0.6".parse::<FaultRates>().is_err());
        assert!("".parse::<FaultRates>().is_ok());
    }

    #[test]
    fn rates_are_roughly_honoured_and_seeded() {
        let rates: FaultRates = "throttle=0.3,server-error=0.1".parse().unwrap();
        let count = |seed| {
            let f = Faults::new(rates.clone(), vec![], seed);
            (0..10_000).filter(|_| f.decide(Cloud::Huawei, "x") == Some(Fault::Throttle)).count()
        };
        assert_eq!(count(1), count(1));
        assert!((2700..3300).contains(&count(1)), "{}", count(1));
    }

    #[test]
    fn script_goes_first_and_matches_action() {
        let script = vec![ScriptedFault {
            cloud: Some(Cloud::Volcengine),
            action: Some("AttachKeyPair".into()),
            fault: Fault::ServerError,
        }];
        let f = Faults::new(FaultRates::default(), script, 0);
        assert_eq!(f.decide(Cloud::Huawei, "AttachKeyPair"), None);
        assert_eq!(f.decide(Cloud::Volcengine, "DescribeInstances"), None);
        assert_eq!(f.decide(Cloud::Volcengine, "AttachKeyPair"), Some(Fault::ServerError));
        assert_eq!(f.decide(Cloud::Volcengine, "AttachKeyPair"), None);
    }
}
