//! The in-operation window: at most N instances in operations at once
//! (Huawei: 10 VMs), shared by every run of one binder. A slot is held until
//! its instance is known idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a call waits for more slots after the first, so that slots freed
/// together go out in one call.
const COALESCE: Duration = Duration::from_millis(50);

/// A binder's window of instances in operation.
#[derive(Debug)]
pub(crate) struct Window {
    slots: Arc<Semaphore>,
    /// One call gathers slots at a time, so freed slots are not split.
    gather: tokio::sync::Mutex<()>,
}

/// One instance's slot; dropping it frees the slot.
pub(crate) type Slot = OwnedSemaphorePermit;

impl Window {
    pub fn new(size: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(size.max(1))), gather: tokio::sync::Mutex::new(()) }
    }

    /// Waits for one slot, then takes the slots freed within a short moment, up to `max`.
    pub async fn acquire(&self, max: usize) -> Vec<Slot> {
        let _turn = self.gather.lock().await;
        let Ok(first) = self.slots.clone().acquire_owned().await else { return Vec::new() };
        let mut slots = vec![first];
        let until = Instant::now() + COALESCE;
        while slots.len() < max {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                slots.push(slot);
                continue;
            }
            match tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await {
                Ok(Ok(slot)) => slots.push(slot),
                _ => break,
            }
        }
        slots
    }
}
