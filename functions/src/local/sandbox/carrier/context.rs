//! What the sandbox carrier's routes share ([`CarrierState`], behind [`Shared`]): its
//! configuration, its base URL, its memory and the outage switch.

use std::sync::Arc;
use std::time::Duration;

use super::state::Store;
use crate::local::sandbox::listener::Outage;

/// How to start the sandbox carrier.
#[derive(Debug, Clone)]
pub struct CarrierSandboxConfig {
    /// 0: any free port.
    pub port: u16,
    /// The API key it accepts (made up at start).
    pub api_key: String,
    /// Time between tracking steps.
    pub step: Duration,
}

impl CarrierSandboxConfig {
    /// Any free port, a key made up now, a step of `step`.
    pub fn generated(step: Duration) -> Self {
        Self {
            port: 0,
            api_key: format!("EZTKlocal{}", uuid::Uuid::new_v4().simple()),
            step,
        }
    }
}

/// What the routes share.
pub struct CarrierState {
    pub config: CarrierSandboxConfig,
    pub base_url: String,
    pub memory: Store,
    pub outage: Outage,
}

pub type Shared = Arc<CarrierState>;
