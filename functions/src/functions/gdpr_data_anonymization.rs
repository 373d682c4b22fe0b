//! `GDPRDataAnonymization`: erases a customer across all data, on messages from the
//! `gdpr-requests` queue ([`ErasureRequest`], sent by `DELETE /api/v1/customers/{id}` or by an
//! operator).
//!
//! What it does, in order, each step in bounded batches committed with a durable progress
//! marker on the erasure request ([`ErasureStep::ALL`]): masks the customer's orders (shipping
//! address, status-change actors and reasons; amounts, items and dates kept), deletes their
//! idempotency keys, notifications and processed-event markers, pseudonymises the audit
//! trail (HMAC-SHA256 under `GDPR_PSEUDONYM_KEY`), deletes local queue messages about the
//! customer, and finally masks the profile (status `erased`). The rules come from
//! [`shared::domain::masking::RULES`]. It ends with a report (counts per store and table, the
//! rule version, timings, the SHA-256 of the report's canonical JSON) stored on the request
//! (its status URL shows it) and an audit entry `gdpr.erasure.completed` (ids only).
//!
//! - The same request again, or a request for a customer already erased: no effect, no second
//!   report, success (the message is completed).
//! - A crash mid-way: the next delivery resumes after the last committed batch.
//! - A malformed message, a customer that does not exist, a request id naming another
//!   customer: bad input (400), so the message is retried and then dead-lettered with the reason.
//! - A request without a stored record (sent by an operator): the record is created.
//!
//! The pseudonym key: `GDPR_PSEUDONYM_KEY` (a Key Vault reference in Azure, where start-up
//! refuses to run without it); in local mode, when unset, a random key generated once and kept
//! in `DATA_DIR/gdpr-pseudonym.key` (mode 0600).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use shared::config::Settings;
use shared::domain::audit::AuditEntry;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{sha256_of, Masker, PseudonymKey, RULES_VERSION};
use shared::domain::messages::ErasureRequest;
use shared::domain::tenant::TenantId;
use shared::domain::validation::is_valid_id;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::store::{ErasureProgress, ErasureStart, ErasureStep, Store, StoreError};

use crate::invoke::MESSAGE_BINDING;
use crate::invoke::{FunctionError, InvokeFuture};
use crate::startup::AppState;

/// The function's name, and the actor of what it writes (`system:GDPRDataAnonymization`).
pub const FUNCTION: &str = "GDPRDataAnonymization";
const ACTOR: &str = "system:GDPRDataAnonymization";

/// The local key file in `DATA_DIR`.
pub const KEY_FILE: &str = "gdpr-pseudonym.key";

/// Why an erasure could not run.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("customer {customer_id} does not exist in tenant {tenant}; nothing to erase (check the request)")]
    CustomerMissing { tenant: String, customer_id: String },
    #[error("erasure request {request_id} cannot be processed: {reason}")]
    Conflict { request_id: String, reason: String },
    #[error("the GDPR pseudonym key is unusable: {0}")]
    Key(String),
    #[error("erasure request {request_id} failed at step {step}: {source}")]
    Store {
        request_id: String,
        step: &'static str,
        #[source]
        source: StoreError,
    },
}

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

/// What handling one request did.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureOutcome {
    /// Erased now (possibly resuming an earlier attempt); the completed record with its report.
    Completed(ErasureRecord),
    /// This request had completed before: nothing done.
    AlreadyCompleted(ErasureRecord),
    /// Another request erased the customer: nothing done.
    CustomerAlreadyErased { erased_by: Option<String> },
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
        &state.settings,
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
        report: None,
    }
}

/// Erases the customer of `request` (see the module doc); also what retention runs for
/// inactive customers ([`RetentionEraser`]).
pub async fn erase_customer(
    store: &dyn Store,
    settings: &Settings,
    tenant: &TenantId,
    request: ErasureRecord,
    correlation_id: &str,
) -> Result<ErasureOutcome, ErasureError> {
    let request_id = request.id.clone();
    let customer_id = request.customer_id.clone();
    let key = pseudonym_key(settings)?;
    let start = store
        .start_erasure(tenant, request)
        .await
        .map_err(|source| match source {
            StoreError::NotFound => ErasureError::CustomerMissing {
                tenant: tenant.to_string(),
                customer_id: customer_id.clone(),
            },
            StoreError::Conflict(reason) => ErasureError::Conflict {
                request_id: request_id.clone(),
                reason,
            },
            source => ErasureError::Store {
                request_id: request_id.clone(),
                step: "start",
                source,
            },
        })?;
    let (record, progress) = match start {
        ErasureStart::Run { record, progress } => (record, progress),
        ErasureStart::AlreadyCompleted(record) => {
            return Ok(ErasureOutcome::AlreadyCompleted(record))
        }
        ErasureStart::CustomerAlreadyErased { erased_by } => {
            return Ok(ErasureOutcome::CustomerAlreadyErased { erased_by })
        }
    };
    let masker = Masker::new(key, tenant.as_str(), &customer_id, &[]);
    let progress = run_steps(store, settings, tenant, &record.id, &masker, progress).await?;
    let report = build_report(store.backend(), &record, &masker, &progress);
    let audit = AuditEntry::now(
        tenant.as_str(),
        ACTOR,
        "gdpr.erasure.completed",
        "erasureRequest",
        &record.id,
        correlation_id,
    )
    .about_customer(&masker.customer_pseudonym());
    let (completed, first) = store
        .finish_erasure(tenant, &record.id, report, audit)
        .await
        .map_err(|source| ErasureError::Store {
            request_id: record.id.clone(),
            step: "finish",
            source,
        })?;
    tracing::info!(request_id = %completed.id, tenant = %tenant, first, "erasure completed");
    Ok(if first {
        ErasureOutcome::Completed(completed)
    } else {
        ErasureOutcome::AlreadyCompleted(completed)
    })
}

/// Runs every step not done yet, batch by batch.
async fn run_steps(
    store: &dyn Store,
    settings: &Settings,
    tenant: &TenantId,
    request_id: &str,
    masker: &Masker,
    mut progress: ErasureProgress,
) -> Result<ErasureProgress, ErasureError> {
    let batch_size = usize::try_from(settings.jobs.batch_size)
        .unwrap_or(1000)
        .max(1);
    for step in ErasureStep::ALL {
        while !progress.is_done(step) {
            progress = store
                .erase_batch(tenant, request_id, step, masker, batch_size)
                .await
                .map_err(|source| ErasureError::Store {
                    request_id: request_id.to_owned(),
                    step: step.as_str(),
                    source,
                })?;
        }
        tracing::debug!(request_id, step = step.as_str(), "erasure step done");
    }
    Ok(progress)
}

/// The report: ids, counts, rule version, timings, and `sha256` of the canonical JSON of
/// everything else (recompute it without the `sha256` field to verify).
pub fn build_report(
    backend: &str,
    record: &ErasureRecord,
    masker: &Masker,
    progress: &ErasureProgress,
) -> Value {
    let completed_at = shared::domain::now();
    let steps: serde_json::Map<String, Value> = progress
        .steps
        .iter()
        .map(|(step, done)| (step.as_str().to_owned(), json!({ "batches": done.batches, "elapsedMs": round_ms(done.elapsed_ms), "counts": done.counts })))
        .collect();
    let working_ms: f64 = progress.steps.values().map(|step| step.elapsed_ms).sum();
    let mut report = json!({
        "requestId": record.id,
        "tenantId": record.tenant_id,
        "customerPseudonym": masker.customer_pseudonym(),
        "rulesVersion": RULES_VERSION,
        "counts": { backend: progress.counts() },
        "steps": steps,
        "attempts": progress.attempts,
        "startedAt": progress.started_at,
        "completedAt": completed_at,
        "durationMs": (completed_at - progress.started_at).num_milliseconds(),
        "workingMs": round_ms(working_ms),
    });
    let digest = sha256_of(&report);
    report["sha256"] = Value::String(digest);
    report
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
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

// --- retention eraser (wires the GDPR erasure into DataRetentionCleanup) ---
/// The GDPR erasure as `DataRetentionCleanup` runs it for long-inactive customers: the same
/// rules, steps, report and audit entry, under a request id fixed per customer (so a resumed
/// job run continues the same request), requested by `system:DataRetentionCleanup`.
pub struct RetentionEraser {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
}

impl RetentionEraser {
    pub fn new(store: Arc<dyn Store>, settings: Arc<Settings>) -> Self {
        Self { store, settings }
    }
}

#[async_trait::async_trait]
impl shared::jobs::InactiveCustomerEraser for RetentionEraser {
    async fn erase(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> Result<shared::jobs::InactiveErasure, String> {
        let at = shared::domain::now();
        let request = ErasureRecord {
            id: request_id.to_owned(),
            tenant_id: tenant.as_str().to_owned(),
            customer_id: customer_id.to_owned(),
            requested_by: shared::jobs::erasure::RETENTION_REQUESTER.to_owned(),
            status: ErasureStatus::Accepted,
            requested_at: at,
            updated_at: at,
            report: None,
        };
        match erase_customer(
            self.store.as_ref(),
            &self.settings,
            tenant,
            request,
            request_id,
        )
        .await
        {
            Ok(ErasureOutcome::Completed(_)) => Ok(shared::jobs::InactiveErasure::Erased),
            Ok(
                ErasureOutcome::AlreadyCompleted(_) | ErasureOutcome::CustomerAlreadyErased { .. },
            ) => Ok(shared::jobs::InactiveErasure::AlreadyErased),
            Err(error) => Err(error.to_string()),
        }
    }
}
// --- end retention eraser ---

/// The pseudonym key: the setting, or in its absence (local mode; Azure refuses to start
/// without it) the key file in `DATA_DIR`, created on first use.
pub fn pseudonym_key(settings: &Settings) -> Result<PseudonymKey, ErasureError> {
    let secret = match &settings.gdpr_pseudonym_key {
        Some(secret) => secret.clone(),
        None => load_or_create_key_file(&settings.data_dir).map_err(|error| {
            ErasureError::Key(format!(
                "{}: {error}",
                settings.data_dir.join(KEY_FILE).display()
            ))
        })?,
    };
    PseudonymKey::new(&secret).map_err(|error| ErasureError::Key(error.to_string()))
}

/// Reads `dir/gdpr-pseudonym.key`, creating it (mode 0600) with a random key if missing. Two
/// processes creating it at once agree: the key is written to a private temporary file and
/// linked into place, and the loser reads the winner's.
pub fn load_or_create_key_file(dir: &Path) -> io::Result<String> {
    let path = dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(secret) => return Ok(secret.trim().to_owned()),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    fs::create_dir_all(dir)?;
    let secret = PseudonymKey::generate_secret();
    match shared::files::write_new_private_file(&path, secret.as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated the local GDPR pseudonym key");
            Ok(secret)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Ok(fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key_file(dir.path()).unwrap();
        let second = load_or_create_key_file(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
