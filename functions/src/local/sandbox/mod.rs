//! Sandboxes of the external systems the app calls, served by `handler local` on loopback
//! ports so that the whole app runs with no internet. Each one speaks its system's documented
//! contract (paths, fields, status codes, error bodies, webhooks) for the subset the app's
//! adapter uses, plus a few `/sandbox/...` admin routes for tests and drills.

pub mod paypal;

use std::time::Duration;

use crate::startup::{AppState, Outbound, StartError};
use paypal::{PayPalSandbox, RunningSandbox, SandboxConfig, SandboxError};

/// Why local mode could not start a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum LocalSandboxError {
    #[error("the PayPal sandbox cannot start: {0}; fix: set LOCAL_PAYPAL_PORT to a free port (0 for any)")]
    Start(#[from] SandboxError),
    #[error(transparent)]
    Connect(#[from] StartError),
}

/// Starts the PayPal sandbox on `LOCAL_PAYPAL_PORT` and points the app's payments at it, unless
/// `PAYPAL_BASE_URL` names a PayPal endpoint (then the app uses that one and nothing starts).
/// Its webhooks go to the local runtime's own webhook route. Keep the returned sandbox alive
/// as long as the app runs.
pub async fn start_paypal_for_local(
    state: &mut AppState,
) -> Result<Option<RunningSandbox>, LocalSandboxError> {
    if state.settings.payments.base_url.is_some() {
        return Ok(None);
    }
    let local = &state.settings.local;
    let mut config = SandboxConfig::generated();
    config.port = local.paypal_sandbox_port;
    config.webhook_url = Some(format!(
        "http://127.0.0.1:{}/api/v1/payments/webhooks/paypal",
        local.port
    ));
    config.slow_capture_delay = Duration::from_secs(5);
    let sandbox = PayPalSandbox::start(config).await?;
    let payments = sandbox.payment_settings(&state.settings.payments);
    let outbound = Outbound::from_settings(&payments, vec![sandbox.base_url().to_owned()])?;
    state.parts_mut().outbound = outbound;
    tracing::info!(base_url = %sandbox.base_url(), "PayPal sandbox started; payments go to it (test sources: sandbox-ok, sandbox-decline, sandbox-deny, sandbox-flaky, sandbox-timeout, sandbox-slow)");
    Ok(Some(sandbox))
}
