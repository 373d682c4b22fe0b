//! What an erasure works with besides the store: where its pseudonym key comes from, its batch
//! size, and the hook that scrubs queued messages (local mode only).

use std::path::PathBuf;
use std::sync::Arc;

use super::{ErasureError, QueuedMessageScrubber};
use crate::config::Settings;
use crate::domain::masking::PseudonymKey;

/// What an erasure works with besides the store; cheap to clone.
#[derive(Clone)]
pub struct ErasureContext {
    /// `GDPR_PSEUDONYM_KEY`, when set.
    secret: Option<String>,
    /// Where the local key file is kept when the setting is not set.
    data_dir: PathBuf,
    /// Records per committed batch (`JOB_BATCH_SIZE`).
    batch_size: usize,
    queued_messages: Option<Arc<dyn QueuedMessageScrubber>>,
}

impl ErasureContext {
    /// The key and batch size from `settings`; no queued-message scrubber.
    pub fn new(settings: &Settings) -> Self {
        Self {
            secret: settings.gdpr_pseudonym_key.clone(),
            data_dir: settings.data_dir.clone(),
            batch_size: usize::try_from(settings.jobs.batch_size)
                .unwrap_or(1000)
                .max(1),
            queued_messages: None,
        }
    }

    /// Erasures also delete queued messages about the customer through `scrubber`.
    pub fn with_queued_messages(mut self, scrubber: Arc<dyn QueuedMessageScrubber>) -> Self {
        self.queued_messages = Some(scrubber);
        self
    }

    /// The pseudonym key (see [`super::key`]), read when an erasure starts.
    pub fn pseudonym_key(&self) -> Result<PseudonymKey, ErasureError> {
        super::key::key_from(self.secret.as_deref(), &self.data_dir)
    }

    pub(crate) fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The queued-message scrubber, if one is installed.
    pub(crate) fn queued_messages(&self) -> Option<&dyn QueuedMessageScrubber> {
        self.queued_messages.as_deref()
    }
}
