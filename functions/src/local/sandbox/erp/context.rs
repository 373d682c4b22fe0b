//! What the fake ERP's routes share ([`ErpState`], behind [`Shared`]): its configuration, its
//! memory and the outage switch.

use std::sync::Arc;

use shared::erp::UsernameToken;

use super::state::Store;
use crate::local::sandbox::listener::Outage;

/// How to start the fake ERP.
#[derive(Debug, Clone)]
pub struct ErpSandboxConfig {
    /// 0: any free port.
    pub port: u16,
    /// The user name and password it accepts (HTTP Basic or WS-Security).
    pub credentials: UsernameToken,
}

impl ErpSandboxConfig {
    /// Any free port, user `handler-local` with a password made up at start.
    pub fn generated() -> Self {
        Self {
            port: 0,
            credentials: UsernameToken {
                username: "handler-local".into(),
                password: uuid::Uuid::new_v4().simple().to_string().into(),
            },
        }
    }
}

/// What the routes share.
pub struct ErpState {
    pub config: ErpSandboxConfig,
    pub memory: Store,
    pub outage: Outage,
}

pub type Shared = Arc<ErpState>;
