//! What the sandbox's routes and background tasks share ([`Sandbox`], behind [`Shared`]):
//! its settings, its memory, the outage switch, the webhook signer and an HTTP client.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use super::config::SandboxConfig;
use super::signing::Signer;
use super::state::Memory;
use crate::local::sandbox::listener::Outage;

/// Everything the routes and background tasks share.
pub struct Sandbox {
    pub config: SandboxConfig,
    pub base_url: String,
    pub memory: Memory,
    pub outage: Arc<Outage>,
    pub signer: Signer,
    pub http: reqwest::Client,
    pub(super) tasks: Mutex<JoinSet<()>>,
}

pub type Shared = Arc<Sandbox>;

impl Sandbox {
    /// Runs `task` in the background (webhook deliveries, late completions); stopped with the
    /// sandbox.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub(super) fn abort_tasks(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .abort_all();
    }
}
