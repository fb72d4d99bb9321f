//! Progress events, for progress bars and logs.

use std::time::Duration;

use crate::ids::InstanceId;

/// Something that happened during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started with this many distinct instances.
    Started { total: usize },
    /// A call for a chunk is about to be sent.
    ChunkStarted { chunk: usize, instances: usize, attempt: u32 },
    /// A chunk's call returned.
    ChunkFinished { chunk: usize, bound: usize, failed: usize, unknown: usize, retrying: usize },
    /// A retry is scheduled after `delay`.
    RetryScheduled { chunk: usize, instances: usize, attempt: u32, delay: Duration, reason: String },
    /// Instances with a final outcome so far.
    InstancesDone { done: usize, total: usize },
    /// One instance reached its outcome.
    InstanceFinished { instance: InstanceId, bound: bool },
    /// The run stops sending (cancelled); started work is still followed.
    Stopping { reason: String },
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
