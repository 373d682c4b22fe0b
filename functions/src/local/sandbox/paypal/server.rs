//! Starting and stopping the sandbox: [`PayPalSandbox::start`] binds a loopback port, makes
//! the signing key and certificate, and serves PayPal's routes and the admin routes until
//! [`RunningSandbox::shutdown`] (or until the handle is dropped).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::task::JoinSet;

use super::config::SandboxConfig;
use super::context::{Sandbox, Shared};
use super::errors::{Api, ApiError};
use super::signing::{Signer, SigningError};
use super::state::Memory;
use super::{admin, auth, orders, payments, refunds, reporting, webhooks};
use crate::local::sandbox::listener::{bind_loopback, ConnectionKill, Outage, ServeError, Served};

/// Why the sandbox could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {address}: {source}; fix: choose another port or 0 for any")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("a sandbox task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("the sandbox server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// The sandbox's entry point.
pub struct PayPalSandbox;

impl PayPalSandbox {
    /// Binds `127.0.0.1:{config.port}`, makes the signing key and certificate, and serves.
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
        let (listener, address) =
            bind_loopback(config.port)
                .await
                .map_err(|source| SandboxError::Listen {
                    address: SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)),
                    source,
                })?;
        let signer = tokio::task::spawn_blocking(Signer::generate).await??;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let sandbox = Arc::new(Sandbox {
            memory: Memory::new(config.token_lifetime),
            base_url: format!("http://{address}"),
            config,
            outage: Arc::new(Outage::default()),
            signer,
            http,
            tasks: Mutex::new(JoinSet::new()),
        });
        let served = Served::start(listener, router(sandbox.clone()));
        tracing::info!(%address, "PayPal sandbox listening");
        Ok(RunningSandbox {
            address,
            sandbox,
            served: Some(served),
        })
    }
}

/// A started sandbox. Dropping it stops the server too.
pub struct RunningSandbox {
    address: SocketAddr,
    sandbox: Shared,
    served: Option<Served>,
}

impl RunningSandbox {
    /// `base` (timeouts, tolerances) pointed at this sandbox: its URL, credentials and webhook id.
    pub fn payment_settings(
        &self,
        base: &shared::config::PaymentSettings,
    ) -> shared::config::PaymentSettings {
        let mut settings = base.clone();
        settings.base_url = Some(self.base_url().to_owned());
        settings.client_id = Some(self.config().client_id.clone());
        settings.client_secret = Some(self.config().client_secret.clone());
        settings.webhook_ids = vec![self.config().webhook_id.clone()];
        settings
    }

    /// `http://127.0.0.1:{port}`: the PayPal API base URL to give the adapter.
    pub fn base_url(&self) -> &str {
        &self.sandbox.base_url
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The config it runs with (client id, webhook id; the secret is not printed by `Debug`).
    pub fn config(&self) -> &SandboxConfig {
        &self.sandbox.config
    }

    /// The webhook signing certificate, PEM-encoded (also served at the cert URL).
    pub fn cert_pem(&self) -> &str {
        self.sandbox.signer.cert_pem()
    }

    /// Stops accepting, lets requests in flight finish (at most a second), stops deliveries.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        self.sandbox.abort_tasks();
        let Some(served) = self.served.take() else {
            return Ok(());
        };
        served.shutdown().await.map_err(|error| match error {
            ServeError::Serve(source) => SandboxError::Serve(source),
            ServeError::Task(join) => SandboxError::Task(join),
        })
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        // Dropping `served` stops the server.
        self.sandbox.abort_tasks();
    }
}

/// PayPal's routes behind the outage gate, and the admin routes beside them.
fn router(sandbox: Shared) -> Router {
    let paypal = Router::new()
        .route("/v1/oauth2/token", post(auth::token))
        .route("/v2/checkout/orders", post(orders::create))
        .route("/v2/checkout/orders/{id}", get(orders::show))
        .route(
            "/v2/payments/authorizations/{id}",
            get(payments::show_authorization),
        )
        .route(
            "/v2/payments/authorizations/{id}/capture",
            post(payments::capture),
        )
        .route(
            "/v2/payments/authorizations/{id}/void",
            post(payments::void),
        )
        .route("/v2/payments/captures/{id}", get(payments::show_capture))
        .route("/v2/payments/captures/{id}/refund", post(refunds::refund))
        .route("/v2/payments/refunds/{id}", get(refunds::show_refund))
        .route("/v1/reporting/transactions", get(reporting::transactions))
        .route("/v1/notifications/certs/{cert_id}", get(webhooks::cert))
        .route(
            "/v1/notifications/webhooks-events/{id}",
            get(webhooks::show),
        )
        .route(
            "/v1/notifications/webhooks-events/{id}/resend",
            post(webhooks::resend),
        )
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(sandbox.clone(), outage_gate));
    admin::router().merge(paypal).with_state(sandbox)
}

/// `503` for every PayPal route while the outage mode is `unavailable`; the connection
/// dropped unanswered while it is `refuse`.
async fn outage_gate(
    State(sandbox): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    request: Request,
    next: Next,
) -> Response {
    let unavailable = || ApiError::Unavailable.into_response();
    match sandbox.outage.intercept(&connection, unavailable) {
        Some(answer) => answer,
        None => next.run(request).await,
    }
}

async fn unknown_route() -> ApiError {
    ApiError::not_found(Api::Orders, "")
}
