//! The erasure's report: ids, counts, rule version, timings, and `sha256` of the canonical JSON
//! of everything else (recompute it without the `sha256` field to verify). Ids and counts only:
//! no personal data.

use serde_json::{json, Value};

use crate::domain::gdpr::ErasureRecord;
use crate::domain::masking::{sha256_of, Masker, RULES_VERSION};
use crate::store::ErasureProgress;

/// The report of the erasure `record` whose steps ended at `progress`, on the store `backend`.
pub fn build_report(
    backend: &str,
    record: &ErasureRecord,
    masker: &Masker,
    progress: &ErasureProgress,
) -> Value {
    let completed_at = crate::domain::now();
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
