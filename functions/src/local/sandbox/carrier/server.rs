//! Starting and stopping the sandbox carrier: [`CarrierSandbox::start`] binds a loopback port
//! and serves EasyPost's routes and the admin routes until [`RunningCarrier::shutdown`] (or
//! until dropped).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use shared::config::ShippingSettings;

pub use super::context::CarrierSandboxConfig;
use super::context::{CarrierState, Shared};
use super::state::Store;
use super::{admin, api};
use crate::local::sandbox::listener::{bind_loopback, Outage, ServeError, Served};

/// Why the sandbox carrier could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum CarrierSandboxError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}; fix: set LOCAL_CARRIER_PORT to a free port (0 for any)")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The sandbox carrier's entry point.
pub struct CarrierSandbox;

impl CarrierSandbox {
    /// Binds `127.0.0.1:{config.port}` and serves.
    pub async fn start(
        config: CarrierSandboxConfig,
    ) -> Result<RunningCarrier, CarrierSandboxError> {
        let port = config.port;
        let (listener, address) = bind_loopback(port)
            .await
            .map_err(|source| CarrierSandboxError::Listen { port, source })?;
        let state = Arc::new(CarrierState {
            config,
            base_url: format!("http://{address}"),
            memory: Store::default(),
            outage: Outage::default(),
        });
        let served = Served::start(listener, router(state.clone()));
        tracing::info!(%address, "sandbox carrier listening");
        Ok(RunningCarrier {
            address,
            state,
            served,
        })
    }
}

/// A started sandbox carrier. Dropping it stops the server too.
pub struct RunningCarrier {
    address: SocketAddr,
    state: Shared,
    served: Served,
}

impl RunningCarrier {
    /// `http://127.0.0.1:{port}`: the base URL of its API and of its admin routes.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    /// `base` pointed at this sandbox: its URL and API key.
    pub fn shipping_settings(&self, base: &ShippingSettings) -> ShippingSettings {
        let mut settings = base.clone();
        settings.base_url = Some(self.base_url());
        settings.api_key = Some(self.api_key().to_owned());
        settings
    }

    /// Stops accepting, lets requests in flight finish.
    pub async fn shutdown(self) -> Result<(), CarrierSandboxError> {
        Ok(self.served.shutdown().await?)
    }
}

fn router(state: Shared) -> Router {
    api::router().merge(admin::router()).with_state(state)
}
