//! Starting and stopping the fake ERP: [`ErpSandbox::start`] binds a loopback port and serves
//! the SOAP endpoint and the admin routes until [`RunningErp::shutdown`] (or until dropped).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use shared::config::ErpSettings;
use shared::erp::UsernameToken;

use super::context::{ErpSandboxConfig, ErpState, Shared};
use super::state::Store;
use super::{admin, soap};
use crate::local::sandbox::listener::{bind_loopback, Outage, ServeError, Served};

/// The endpoint's path (the WSDL's `soap:address` path).
pub const ENDPOINT_PATH: &str = "/sap/inventory/v1";

/// Why the fake ERP could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ErpSandboxError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}; fix: set LOCAL_ERP_PORT to a free port (0 for any)")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The fake ERP's entry point.
pub struct ErpSandbox;

impl ErpSandbox {
    /// Binds `127.0.0.1:{config.port}` and serves.
    pub async fn start(config: ErpSandboxConfig) -> Result<RunningErp, ErpSandboxError> {
        let port = config.port;
        let (listener, address) = bind_loopback(port)
            .await
            .map_err(|source| ErpSandboxError::Listen { port, source })?;
        let state = Arc::new(ErpState {
            config,
            memory: Store::seeded(),
            outage: Outage::default(),
        });
        let served = Served::start(listener, router(state.clone()));
        tracing::info!(%address, "fake ERP listening");
        Ok(RunningErp {
            address,
            state,
            served,
        })
    }
}

/// A started fake ERP. Dropping it stops the server too.
pub struct RunningErp {
    address: SocketAddr,
    state: Shared,
    served: Served,
}

impl RunningErp {
    /// `http://127.0.0.1:{port}/sap/inventory/v1`: the endpoint to give the client.
    pub fn endpoint(&self) -> String {
        format!("http://{}{ENDPOINT_PATH}", self.address)
    }

    /// `http://127.0.0.1:{port}`: where the admin routes are.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The user name and password it accepts.
    pub fn credentials(&self) -> &UsernameToken {
        &self.state.config.credentials
    }

    /// `base` (version, auth, timeout) pointed at this fake: its endpoint and credentials.
    pub fn erp_settings(&self, base: &ErpSettings) -> ErpSettings {
        let mut settings = base.clone();
        settings.base_url = Some(self.endpoint());
        settings.username = Some(self.credentials().username.clone());
        settings.password = Some(self.credentials().password.expose().to_owned());
        settings
    }

    /// Stops accepting, lets requests in flight finish.
    pub async fn shutdown(self) -> Result<(), ErpSandboxError> {
        Ok(self.served.shutdown().await?)
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route(ENDPOINT_PATH, get(soap::wsdl).post(soap::call))
        .merge(admin::router())
        .with_state(state)
}
