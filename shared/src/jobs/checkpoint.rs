//! A job's checkpoint: where its last committed batch ended. Stored with that batch (in the
//! same transaction), read by the next run to resume there.

use serde::{Deserialize, Serialize};

use crate::store::jobs::Cursor;

/// The resumable position of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The run that started the work this checkpoint belongs to.
    pub run_id: String,
    /// The step (one of [`super::Job::steps`]).
    pub step: String,
    /// The tenant being processed, for per-tenant steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The last item done (items after it are next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// For archiving steps: the day (`yyyy-mm-dd`) and part number the next batch writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// For a job that follows a remote feed: the remote's continuation token (the ERP's
    /// `nextToken`), kept across runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Checkpoint {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value).map_err(|error| error.to_string())
    }
}
