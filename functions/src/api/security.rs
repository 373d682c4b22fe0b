//! Breach detection at the API's edge: what each request tells the rules of
//! [`shared::security`], and how a finding is raised: a `security event` log line (what the
//! Azure Monitor alert rule queries), and the event kept with its audit entry and its
//! `security-alerts` outbox record in one transaction. Ids and counts only, never personal data.
//!
//! - [`observe`]: one observation of a known principal (a read, an export, a refusal).
//! - [`watch_failures`]: a middleware counting `404`s of signed-in callers and `401`s
//!   (token failures, counted per pseudonymised client address in the `_platform` tenant).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use shared::auth::Role;
use shared::domain::audit::AuditEntry;
use shared::domain::tenant::TenantId;
use shared::outbox::OutboxMessage;
use shared::security::{Observation, Rule, SecurityEvent, PLATFORM_TENANT};

use super::caller::CorrelationId;
use super::watch::SeenCaller;
use super::Caller;
use crate::startup::AppState;

/// The actor of security events' audit entries.
const ACTOR: &str = "system:breach-detection";

/// Counts what `caller` did (`value`: the customer concerned) under `rule`, raising the finding
/// when it reaches its threshold.
pub async fn observe(state: &AppState, caller: &Caller, rule: Rule, customer_id: &str) {
    let roles: Vec<Role> = caller
        .principal
        .roles()
        .map_or_else(Vec::new, |roles| roles.iter().copied().collect());
    let observation = Observation {
        tenant_id: caller.tenant().as_str(),
        principal_id: &caller.principal.subject,
        roles: &roles,
        rule,
        value: Some(customer_id),
        correlation_id: &caller.correlation_id,
        at: shared::domain::now(),
    };
    if let Some(event) = state.watch.detector().observe(&observation) {
        raise(state, event).await;
    }
}

/// Logs the finding and keeps it with its audit entry and outbox record. A failure to keep it
/// is logged (the finding's log line is already out) and does not fail the request.
async fn raise(state: &AppState, event: SecurityEvent) {
    tracing::warn!(
        security_event = %event.id,
        rule = event.rule.as_str(),
        tenant = %event.tenant_id,
        principal = %event.principal_id,
        count = event.count,
        threshold = event.threshold,
        window_seconds = event.window_seconds,
        "security event"
    );
    let Ok(tenant) = TenantId::new(event.tenant_id.clone()) else {
        return;
    };
    let audit = AuditEntry::now(
        tenant.as_str(),
        ACTOR,
        &format!("security.{}", event.rule.as_str()),
        "principal",
        &event.principal_id,
        &event.correlation_id,
    );
    let message = OutboxMessage::security_alert(&event);
    let id = event.id.clone();
    if let Err(error) = state
        .ports
        .security
        .record_security_event(&tenant, event, audit, message)
        .await
    {
        tracing::error!(security_event = %id, %error, "a security event could not be kept");
    }
}

/// Counts `404`s of signed-in callers and `401`s per client (rule `failure-burst`).
pub async fn watch_failures(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let seen = SeenCaller::default();
    request.extensions_mut().insert(seen.clone());
    let correlation_id = request
        .extensions()
        .get::<CorrelationId>()
        .map(|CorrelationId(id)| id.clone())
        .unwrap_or_default();
    let address = client_address(request.headers());
    let response = next.run(request).await;
    match response.status() {
        StatusCode::NOT_FOUND => {
            if let Some((principal, correlation_id)) = seen.get() {
                let caller = Caller {
                    principal: principal.clone(),
                    correlation_id: correlation_id.clone(),
                };
                let sequence = shared::telemetry::fast_uuid_simple();
                observe(&state, &caller, Rule::FailureBurst, &sequence).await;
            }
        }
        StatusCode::UNAUTHORIZED => token_failure(&state, &address, &correlation_id).await,
        _ => {}
    }
    response
}

/// A token failure of the client at `address` (kept only as its pseudonym).
async fn token_failure(state: &AppState, address: &str, correlation_id: &str) {
    let principal = state.watch.address_pseudonym(address);
    let sequence = shared::telemetry::fast_uuid_simple();
    let observation = Observation {
        tenant_id: PLATFORM_TENANT,
        principal_id: &principal,
        roles: &[],
        rule: Rule::FailureBurst,
        value: Some(&sequence),
        correlation_id,
        at: shared::domain::now(),
    };
    if let Some(event) = state.watch.detector().observe(&observation) {
        raise(state, event).await;
    }
}

/// The client's address as API Management saw it (`X-Client-Address`, which its policy sets
/// over whatever the caller sent), or `unknown` (local mode, no API Management).
fn client_address(headers: &HeaderMap) -> String {
    headers
        .get("x-client-address")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}
