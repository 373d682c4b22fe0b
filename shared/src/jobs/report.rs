//! The job report: what one run did (or, in a dry run, would do), per tenant and per kind,
//! whether it finished, and what it left for the next run. Ids and counts only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Everything due was done.
    Finished,
    /// The run time budget ran out; the rest is left for the next run (see `left`).
    Partial,
    /// Another run holds the lease; this one did nothing.
    Yielded,
    /// The lease was taken over (this run stalled past its expiry); it stopped at once.
    LeaseLost,
    /// An error stopped the run (see `error`); the checkpoint keeps what was done.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Partial => "partial",
            Self::Yielded => "yielded",
            Self::LeaseLost => "leaseLost",
            Self::Failed => "failed",
        }
    }
}

/// Where a run resumed a previous, unfinished one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    pub run_id: String,
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// One run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    pub job: String,
    pub run_id: String,
    /// `timer` or `cli`.
    pub trigger: String,
    pub dry_run: bool,
    /// The timer fired late (the app was down at the scheduled time).
    pub is_past_due: bool,
    pub outcome: Outcome,
    pub finished: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Counts per tenant, then per kind (`notificationsDeleted`, ...). In a dry run: what
    /// would have changed.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Counts per kind over every tenant.
    pub totals: BTreeMap<String, u64>,
    /// What is still due after this run, per kind (empty when it finished).
    pub left: BTreeMap<String, u64>,
    /// What the run found and reports without changing (maintenance).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub findings: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resumed: Option<Resumed>,
    /// The lease holder this run yielded to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub yielded_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Requests the store answered "too many requests" (429) while the run went on: the SDK
    /// retried them after the server's wait, or gave up. The store counts for its whole process,
    /// so API calls served meanwhile are in it too. Absent when there were none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub throttled_requests: Option<u64>,
    /// The run failed because the store kept throttling after its retries (`error` says
    /// where); the checkpoint keeps what was done, the next run resumes there.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub stopped_by_throttling: bool,
}

impl JobReport {
    /// Adds `count` of `kind` for `tenant` (and to the totals).
    pub fn add(&mut self, tenant: &str, kind: &str, count: u64) {
        if count == 0 {
            return;
        }
        *self
            .counts
            .entry(tenant.to_owned())
            .or_default()
            .entry(kind.to_owned())
            .or_insert(0) += count;
        *self.totals.entry(kind.to_owned()).or_insert(0) += count;
    }

    /// Adds `count` still due of `kind`.
    pub fn leave(&mut self, kind: &str, count: u64) {
        if count > 0 {
            *self.left.entry(kind.to_owned()).or_insert(0) += count;
        }
    }

    /// Notes the throttled requests (429) the store met during the run.
    pub(crate) fn note_throttled_requests(&mut self, count: u64) {
        self.throttled_requests = (count > 0).then_some(count);
    }

    /// One line for logs and the reply's `Logs`.
    pub fn summary(&self) -> String {
        let totals = if self.totals.is_empty() {
            "nothing to do".to_owned()
        } else {
            self.totals
                .iter()
                .map(|(kind, count)| format!("{kind}={count}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let left = if self.left.is_empty() {
            String::new()
        } else {
            format!(
                "; left for the next run: {}",
                self.left
                    .iter()
                    .map(|(kind, count)| format!("{kind}={count}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let throttled = match (self.stopped_by_throttling, self.throttled_requests) {
            (true, Some(count)) => {
                format!("; stopped: the store kept throttling ({count} requests answered 429)")
            }
            (true, None) => "; stopped: the store kept throttling (429)".to_owned(),
            (false, Some(count)) => format!("; {count} requests throttled (429)"),
            (false, None) => String::new(),
        };
        format!(
            "{} run {} {}{}{} in {} ms: {totals}{left}{throttled}",
            self.job,
            self.run_id,
            self.outcome.as_str(),
            if self.dry_run { " (dry run)" } else { "" },
            if self.is_past_due { " (past due)" } else { "" },
            self.duration_ms
        )
    }
}
