//! Progress of a running job, for a progress bar (`handler jobs run`). Jobs call it; the
//! default does nothing.

/// Receives a job's progress.
pub trait Progress: Send + Sync {
    /// Whether the job should count what is due before each step (costs a query per tenant).
    fn wants_totals(&self) -> bool {
        false
    }
    /// A step starts; `total` items are due (when counted).
    fn step(&self, _step: &str, _total: Option<u64>) {}
    /// `count` more items were processed.
    fn advance(&self, _count: u64) {}
}

/// No progress display.
pub struct NoProgress;

impl Progress for NoProgress {}
