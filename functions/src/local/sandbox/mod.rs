//! Sandboxes of the external systems the app calls, served by `handler local` on loopback
//! ports so that the whole app runs with no internet. Each one speaks its system's documented
//! contract (paths, fields, status codes, error bodies, webhooks) for the subset the app's
//! adapter uses, plus a few `/sandbox/...` admin routes for tests and drills.

pub mod carrier;
pub mod erp;
pub mod listener;
pub mod paypal;

use std::time::Duration;

use crate::startup::{AppState, Outbound, StartError};
use carrier::{CarrierSandbox, CarrierSandboxConfig, CarrierSandboxError, RunningCarrier};
use erp::{ErpSandbox, ErpSandboxConfig, ErpSandboxError, RunningErp};
use paypal::{PayPalSandbox, RunningSandbox, SandboxConfig, SandboxError};
use shared::domain::tenant::TenantId;

/// Why local mode could not start a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum LocalSandboxError {
    #[error("the PayPal sandbox cannot start: {0}; fix: set LOCAL_PAYPAL_PORT to a free port (0 for any)")]
    Start(#[from] SandboxError),
    #[error("the fake ERP cannot start: {0}")]
    Erp(#[from] ErpSandboxError),
    #[error("the sandbox carrier cannot start: {0}")]
    Carrier(#[from] CarrierSandboxError),
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
    let outbound = Outbound::from_settings(&payments, vec![sandbox.base_url().to_owned()])?
        .with_erp(&state.settings.erp)?
        .with_carrier(&state.settings.shipping)?;
    state.parts_mut().outbound = outbound;
    tracing::info!(base_url = %sandbox.base_url(), "PayPal sandbox started; payments go to it (test sources: sandbox-ok, sandbox-decline, sandbox-deny, sandbox-flaky, sandbox-timeout, sandbox-slow)");
    Ok(Some(sandbox))
}

/// The tenant the fake ERP feeds when `ERP_TENANTS` is unset (the README tour's tenant).
pub const LOCAL_ERP_TENANT: &str = "contoso";

/// Starts the fake ERP on `LOCAL_ERP_PORT` and points the app's ERP client at it, unless
/// `ERP_BASE_URL` names an ERP (then the app uses that one and nothing starts). Keep the
/// returned fake alive as long as the app runs. With `ERP_TENANTS` unset, the fake feeds
/// [`LOCAL_ERP_TENANT`].
pub async fn start_erp_for_local(
    state: &mut AppState,
) -> Result<Option<RunningErp>, LocalSandboxError> {
    if state.settings.erp.base_url.is_some() {
        return Ok(None);
    }
    let mut config = ErpSandboxConfig::generated();
    config.port = state.settings.local.erp_sandbox_port;
    let erp = ErpSandbox::start(config).await?;
    let settings = erp.erp_settings(&state.settings.erp);
    let outbound = state.outbound.clone().with_erp(&settings)?;
    state.parts_mut().outbound = outbound;
    if state.settings.erp.tenants.is_empty() {
        let mut linked = (*state.settings).clone();
        linked.erp.tenants = TenantId::new(LOCAL_ERP_TENANT).into_iter().collect();
        state.parts_mut().settings = std::sync::Arc::new(linked);
        tracing::info!(
            tenant = LOCAL_ERP_TENANT,
            "ERP_TENANTS is unset: the fake ERP feeds the catalogue of tenant {LOCAL_ERP_TENANT}"
        );
    }
    tracing::info!(endpoint = %erp.endpoint(), wsdl = %format!("{}?wsdl", erp.endpoint()), "fake ERP started; the ERP client goes to it (SKUs KET-001, MUG-002, TEA-003, LMP-004, TST-005)");
    Ok(Some(erp))
}

/// Starts the sandbox carrier on `LOCAL_CARRIER_PORT` and points the app's carrier at it,
/// unless `CARRIER_BASE_URL` names a carrier (then the app uses that one and nothing starts).
/// Keep the returned sandbox alive as long as the app runs.
pub async fn start_carrier_for_local(
    state: &mut AppState,
) -> Result<Option<RunningCarrier>, LocalSandboxError> {
    let shipping = state.settings.shipping.clone();
    if shipping.base_url.is_some() {
        return Ok(None);
    }
    let mut config = CarrierSandboxConfig::generated(shipping.local_step);
    config.port = shipping.local_port;
    let carrier = CarrierSandbox::start(config).await?;
    let settings = carrier.shipping_settings(&shipping);
    let outbound = state.outbound.clone().with_carrier(&settings)?;
    state.parts_mut().outbound = outbound;
    tracing::info!(base_url = %carrier.base_url(), step_seconds = shipping.local_step.as_secs(), "sandbox carrier started; rates, labels and tracking go to it");
    Ok(Some(carrier))
}
