//! Progress events, for progress bars and logs.

use std::time::Duration;

use crate::ids::InstanceId;

/// Something that happened during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started.
    Started {
        /// Distinct instances.
        total: usize,
    },
    /// A call for a chunk is about to be sent.
    ChunkStarted {
        /// The chunk's number.
        chunk: usize,
        /// Instances in the call.
        instances: usize,
        /// 0 for the first attempt.
        attempt: u32,
    },
    /// A chunk's call returned.
    ChunkFinished {
        /// The chunk's number.
        chunk: usize,
        /// Instances confirmed.
        bound: usize,
        /// Instances that failed.
        failed: usize,
        /// Instances left ambiguous.
        unknown: usize,
        /// Instances to be re-issued.
        retrying: usize,
    },
    /// A retry is scheduled after `delay`.
    RetryScheduled {
        /// The chunk's number.
        chunk: usize,
        /// Instances to re-issue.
        instances: usize,
        /// Re-issues so far.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why.
        reason: String,
    },
    /// Instances with a final outcome so far.
    InstancesDone {
        /// Instances with an outcome.
        done: usize,
        /// Distinct instances.
        total: usize,
    },
    /// One instance reached its outcome.
    InstanceFinished {
        /// The instance.
        instance: InstanceId,
        /// Whether it ended in the requested state.
        bound: bool,
    },
    /// The run stops sending (cancelled); started work is still followed.
    Stopping {
        /// Why.
        reason: String,
    },
}

/// Receives [`ProgressEvent`]s; called from the run's tasks, so keep it quick.
pub trait ProgressObserver: Send + Sync {
    /// Called for every event.
    fn on_event(&self, event: &ProgressEvent);
}

impl<F> ProgressObserver for F
where
    F: Fn(&ProgressEvent) + Send + Sync,
{
    fn on_event(&self, event: &ProgressEvent) {
        self(event)
    }
}
