//! `GDPRDataAnonymization`: erases a customer across all data, on messages from the
//! `gdpr-requests` queue ([`ErasureRequest`], sent by `DELETE /api/v1/customers/{id}` or by an
//! operator).
//!
//! The erasure itself (its steps, rules, report, audit entry and pseudonym key) is the
//! library's: [`shared::erasure`]. This module parses the message, calls
//! [`shared::erasure::erase_customer`] and shapes the reply.
//!
//! - The same request again, or a request for a customer already erased: no effect, no second
//!   report, success (the message is completed).
//! - A crash mid-way: the next delivery resumes after the last committed batch.
//! - A malformed message, a customer that does not exist, a request id naming another
//!   customer: bad input (400), so the message is retried and then dead-lettered with the reason.
//! - A request without a stored record (sent by an operator): the record is created.

use serde_json::json;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::messages::ErasureRequest;
use shared::domain::tenant::TenantId;
use shared::domain::validation::is_valid_id;
use shared::erasure::{erase_customer, ErasureError, ErasureOutcome};
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};

use crate::invoke::MESSAGE_BINDING;
use crate::invoke::{FunctionError, InvokeFuture};
use crate::startup::AppState;

/// The function's name (the erasure writes as `system:GDPRDataAnonymization`).
pub const FUNCTION: &str = "GDPRDataAnonymization";

impl From<ErasureError> for FunctionError {
    fn from(error: ErasureError) -> Self {
        match error {
            ErasureError::CustomerMissing { .. } | ErasureError::Conflict { .. } => {
                Self::BadInput(error.to_string())
            }
            ErasureError::Key(_) | ErasureError::Store { .. } => Self::Failed(error.to_string()),
        }
    }
}

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<ErasureRequest>::from_request(&request, MESSAGE_BINDING)?;
    let body = &message.body;
    let tenant = checked_ids(body)?;
    let correlation = message
        .correlation_id
        .clone()
        .unwrap_or_else(|| body.request_id.clone());
    tracing::info!(request_id = %body.request_id, tenant = %tenant, customer_id = %body.customer_id, delivery = message.delivery_count, "erasure request received");
    let outcome = erase_customer(
        state.store.as_ref(),
        &state.erasure,
        &tenant,
        record_of(body),
        &correlation,
    )
    .await?;
    Ok(reply(body, &outcome))
}

/// The tenant of a request whose ids have the allowed form; bad input otherwise.
fn checked_ids(body: &ErasureRequest) -> Result<TenantId, FunctionError> {
    let tenant = TenantId::new(&body.tenant_id)
        .map_err(|error| FunctionError::BadInput(format!("tenantId: {error}")))?;
    for (field, value) in [
        ("requestId", &body.request_id),
        ("customerId", &body.customer_id),
    ] {
        if !is_valid_id(value) {
            return Err(FunctionError::BadInput(format!(
                "{field}: not a valid id (1 to 64 letters, digits, '-' or '_')"
            )));
        }
    }
    Ok(tenant)
}

fn record_of(body: &ErasureRequest) -> ErasureRecord {
    ErasureRecord {
        id: body.request_id.clone(),
        tenant_id: body.tenant_id.clone(),
        customer_id: body.customer_id.clone(),
        requested_by: body.requested_by.clone(),
        status: ErasureStatus::Accepted,
        requested_at: body.requested_at,
        updated_at: shared::domain::now(),
        queued_at: None,
        report: None,
    }
}

fn reply(body: &ErasureRequest, outcome: &ErasureOutcome) -> InvocationResponse {
    let (result, line, report) = match outcome {
        ErasureOutcome::Completed(record) => (
            "completed",
            format!("erasure request {} completed", record.id),
            record.report.clone(),
        ),
        ErasureOutcome::AlreadyCompleted(record) => (
            "alreadyCompleted",
            format!(
                "erasure request {} had completed before; nothing changed",
                record.id
            ),
            None,
        ),
        ErasureOutcome::CustomerAlreadyErased { erased_by } => (
            "customerAlreadyErased",
            format!(
                "customer {} was already erased (by request {}); nothing changed",
                body.customer_id,
                erased_by.as_deref().unwrap_or("unknown")
            ),
            None,
        ),
    };
    tracing::info!(request_id = %body.request_id, result, "erasure request handled");
    InvocationResponse::empty()
        .log(line)
        .with_return_value(json!({ "requestId": body.request_id, "result": result, "reportSha256": report.as_ref().and_then(|r| r.get("sha256").cloned()) }))
}
