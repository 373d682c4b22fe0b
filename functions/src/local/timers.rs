//! Timer triggers, locally: each timer function fires on its NCRONTAB schedule (UTC) with a
//! `TimerInfo` whose `ScheduleStatus` (Last/Next/LastUpdated) is kept in the local runtime's
//! storage ([`super::storage`]), so it
//! survives restarts. A timer whose next occurrence passed while the app was down fires at
//! start-up with `IsPastDue = true`, as the host's schedule monitor does.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::json;
use shared::protocol::{InvocationResponse, ScheduleStatus, TimerInfo};
use shared::store::sqlite::Db;
use shared::store::StoreError;

use super::host::{InvocationFailure, LocalHost, Reason};
use super::ncrontab::Schedule;
use super::storage::LocalStorage;
use crate::registry::FunctionDef;

/// A run this much later than scheduled counts as past due.
const PAST_DUE_TOLERANCE: chrono::Duration = chrono::Duration::seconds(5);

/// The timers' `ScheduleStatus`, by function name.
#[derive(Clone)]
pub struct TimerStatusStore {
    storage: LocalStorage,
}

impl TimerStatusStore {
    pub fn new(db: Db) -> Self {
        Self {
            storage: LocalStorage::new(db),
        }
    }

    pub async fn load(&self, function: &str) -> Result<Option<ScheduleStatus>, StoreError> {
        let function = function.to_owned();
        let row = self
            .storage
            .db()
            .await?
            .read(move |conn| {
                conn.query_row(
                    "SELECT last, next, last_updated FROM local_timer_status WHERE function_name = ?1",
                    [function],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
                )
                .optional()
            })
            .await?;
        Ok(row.and_then(|(last, next, updated)| {
            Some(ScheduleStatus {
                last: parse(&last)?,
                next: parse(&next)?,
                last_updated: parse(&updated)?,
            })
        }))
    }

    pub async fn save(&self, function: &str, status: ScheduleStatus) -> Result<(), StoreError> {
        let function = function.to_owned();
        self.storage
            .db()
            .await?
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO local_timer_status (function_name, last, next, last_updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (function_name) DO UPDATE SET last = ?2, next = ?3, last_updated = ?4",
                    params![function, status.last.to_rfc3339(), status.next.to_rfc3339(), status.last_updated.to_rfc3339()],
                )
            })
            .await?;
        Ok(())
    }
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// When a timer fires next, given its stored status: the stored `Next`, or the schedule's next
/// occurrence when the timer never ran.
pub fn next_due(
    schedule: &Schedule,
    status: Option<ScheduleStatus>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match status {
        Some(status) => Some(status.next),
        None => schedule.next_after(now),
    }
}

/// The `TimerInfo` for a run that was due at `due` and starts at `now`.
pub fn timer_input(
    status: Option<ScheduleStatus>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TimerInfo {
    TimerInfo {
        schedule: json!({ "AdjustForDST": true }),
        schedule_status: status,
        is_past_due: now - due > PAST_DUE_TOLERANCE,
    }
}

/// Runs one timer function forever: sleep until due, fire, record the status.
pub async fn run_timer(
    host: LocalHost,
    statuses: TimerStatusStore,
    def: &'static FunctionDef,
    schedule: Schedule,
) {
    loop {
        let status = match statuses.load(def.name).await {
            Ok(status) => status,
            Err(error) => {
                tracing::error!(function = def.name, %error, "cannot read the timer status; retrying in a minute");
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                continue;
            }
        };
        let Some(due) = next_due(&schedule, status, Utc::now()) else {
            tracing::warn!(
                function = def.name,
                "the schedule has no future occurrence; the timer stops"
            );
            return;
        };
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tracing::debug!(function = def.name, due = %due, "timer waiting");
        tokio::time::sleep(wait).await;
        let _outcome = fire(&host, &statuses, def, &schedule, status, due).await;
    }
}

/// Fires one occurrence and records the new status (also when the run failed: timers are not
/// retried, as with the host). Returns the run's outcome.
pub async fn fire(
    host: &LocalHost,
    statuses: &TimerStatusStore,
    def: &'static FunctionDef,
    schedule: &Schedule,
    status: Option<ScheduleStatus>,
    due: DateTime<Utc>,
) -> Result<InvocationResponse, InvocationFailure> {
    let now = Utc::now();
    let input = timer_input(status, due, now);
    let outcome = host.invoke_timer(def, &Reason::Timer(due), &input).await;
    match &outcome {
        Ok(_) => tracing::info!(
            function = def.name,
            is_past_due = input.is_past_due,
            "timer run succeeded"
        ),
        Err(error) => tracing::error!(function = def.name, %error, "timer run failed"),
    }
    let finished = Utc::now();
    if let Some(next) = schedule.next_after(finished.max(due)) {
        let new_status = ScheduleStatus {
            last: due,
            next,
            last_updated: finished,
        };
        if let Err(error) = statuses.save(def.name, new_status).await {
            tracing::error!(function = def.name, %error, "cannot record the timer status");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_timer_that_never_ran_waits_for_its_next_occurrence() {
        let schedule = Schedule::parse("0 0 2 * * *").unwrap();
        assert_eq!(
            next_due(&schedule, None, at("2026-11-21T10:00:00Z")),
            Some(at("2026-11-22T02:00:00Z"))
        );
    }

    #[test]
    fn a_missed_occurrence_is_due_at_once_and_past_due() {
        let schedule = Schedule::parse("0 0 2 * * *").unwrap();
        let status = ScheduleStatus {
            last: at("2026-11-19T02:00:00Z"),
            next: at("2026-11-20T02:00:00Z"),
            last_updated: at("2026-11-19T02:00:01Z"),
        };
        let now = at("2026-11-21T10:00:00Z");
        let due = next_due(&schedule, Some(status), now).unwrap();
        assert_eq!(due, at("2026-11-20T02:00:00Z"));
        let input = timer_input(Some(status), due, now);
        assert!(input.is_past_due);
        assert_eq!(input.schedule_status, Some(status));
    }

    #[test]
    fn an_on_time_run_is_not_past_due() {
        let input = timer_input(
            None,
            at("2026-11-21T02:00:00Z"),
            at("2026-11-21T02:00:00.300Z"),
        );
        assert!(!input.is_past_due);
        assert_eq!(input.schedule_status, None);
    }
}
