//! [`Detector`]: the rules of breach detection over sliding windows, with their
//! [`Thresholds`] (settings). It decides; raising a finding (audit trail, outbox, log) is the
//! caller's.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::event::{Rule, SecurityEvent};
use super::window::Windows;
use crate::auth::Role;

/// When each rule fires (`SECURITY_*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// The window of every rule (`SECURITY_WINDOW_SECONDS`).
    pub window_seconds: u64,
    /// Distinct customers one employee may read in the window, per role
    /// (`SECURITY_READS_ADMIN`, `SECURITY_READS_CUSTOMER_SERVICE`,
    /// `SECURITY_READS_ORDER_MANAGER`); an employee with several roles gets the highest.
    pub reads_admin: u32,
    pub reads_customer_service: u32,
    pub reads_order_manager: u32,
    /// `404`s or token failures of one caller in the window (`SECURITY_FAILURES`).
    pub failures: u32,
    /// Distinct customers one principal may export in the window (`SECURITY_EXPORTS`).
    pub exports: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window_seconds: 300,
            reads_admin: 100,
            reads_customer_service: 100,
            reads_order_manager: 50,
            failures: 20,
            exports: 5,
        }
    }
}

impl Thresholds {
    /// The read threshold of an employee holding `roles` (the highest of theirs).
    pub fn reads_for(&self, roles: &[Role]) -> u32 {
        roles
            .iter()
            .map(|role| match role {
                Role::Admin => self.reads_admin,
                Role::CustomerService => self.reads_customer_service,
                Role::OrderManager => self.reads_order_manager,
            })
            .max()
            .unwrap_or(self.reads_order_manager)
    }
}

/// One thing a principal did that a rule counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation<'a> {
    pub tenant_id: &'a str,
    pub principal_id: &'a str,
    /// The employee's roles (empty for clients and callers without a valid token).
    pub roles: &'a [Role],
    pub rule: Rule,
    /// What is counted distinctly (a customer id); `None` counts every observation. Kept in
    /// memory for the window only, never in an event.
    pub value: Option<&'a str>,
    pub correlation_id: &'a str,
    pub at: DateTime<Utc>,
}

/// The rules, over this instance's sliding windows.
#[derive(Debug)]
pub struct Detector {
    thresholds: Thresholds,
    windows: Mutex<Windows<(Rule, String, String)>>,
    /// Numbers observations without a distinct value, so each counts once.
    sequence: std::sync::atomic::AtomicU64,
}

impl Detector {
    pub fn new(thresholds: Thresholds) -> Self {
        let seconds = i64::try_from(thresholds.window_seconds).unwrap_or(i64::MAX);
        Self {
            windows: Mutex::new(Windows::new(Duration::seconds(seconds))),
            thresholds,
            sequence: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Counts `observation`; the finding when its rule's threshold is reached in the window and
    /// it was not raised already within the window.
    pub fn observe(&self, observation: &Observation<'_>) -> Option<SecurityEvent> {
        let threshold = self.threshold(observation);
        let key = (
            observation.rule,
            observation.tenant_id.to_owned(),
            observation.principal_id.to_owned(),
        );
        let sequence;
        let value = match observation.value {
            Some(value) => value,
            None => {
                let next = self
                    .sequence
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                sequence = next.to_string();
                &sequence
            }
        };
        let count = {
            let mut windows = self
                .windows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            windows.observe(&key, value, observation.at, threshold)?
        };
        Some(SecurityEvent {
            id: crate::domain::validation::new_id(),
            tenant_id: observation.tenant_id.to_owned(),
            rule: observation.rule,
            principal_id: observation.principal_id.to_owned(),
            role: (!observation.roles.is_empty()).then(|| role_list(observation.roles)),
            count: count.count,
            threshold,
            window_seconds: self.thresholds.window_seconds,
            first_seen_at: count.first_seen_at,
            detected_at: observation.at,
            correlation_id: observation.correlation_id.to_owned(),
        })
    }

    fn threshold(&self, observation: &Observation<'_>) -> u32 {
        match observation.rule {
            Rule::BulkRead => self.thresholds.reads_for(observation.roles),
            Rule::FailureBurst => self.thresholds.failures,
            Rule::BulkExport => self.thresholds.exports,
            Rule::RefusedGdprRequest => 1,
        }
    }
}

/// Roles as the audit trail and events name them: `admin,customer-service`.
pub fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> Detector {
        Detector::new(Thresholds {
            window_seconds: 60,
            reads_admin: 5,
            reads_customer_service: 3,
            reads_order_manager: 2,
            failures: 4,
            exports: 2,
        })
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn seen<'a>(rule: Rule, roles: &'a [Role], value: Option<&'a str>, t: i64) -> Observation<'a> {
        Observation {
            tenant_id: "t-1",
            principal_id: "emp-1",
            roles,
            rule,
            value,
            correlation_id: "corr-1",
            at: at(t),
        }
    }

    #[test]
    fn bulk_read_fires_at_the_role_threshold_of_distinct_customers_and_not_below() {
        let detector = detector();
        let roles = [Role::CustomerService];
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("cust-1"), 0))
            .is_none());
        // The same customer again does not count twice.
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("cust-1"), 1))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("cust-2"), 2))
            .is_none());
        let event = detector
            .observe(&seen(Rule::BulkRead, &roles, Some("cust-3"), 3))
            .expect("the third distinct customer reaches the threshold");
        assert_eq!(
            (event.count, event.threshold, event.window_seconds),
            (3, 3, 60)
        );
        assert_eq!(event.role.as_deref(), Some("customer-service"));
        assert_eq!(event.first_seen_at, at(1));
        // "cust-" cannot occur by chance in the event's UUIDs or timestamps.
        assert!(!serde_json::to_string(&event).unwrap().contains("cust-3"));
    }

    #[test]
    fn a_finding_is_raised_once_per_window() {
        let detector = detector();
        let roles = [Role::OrderManager];
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-1"), 0))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-2"), 1))
            .is_some());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-3"), 2))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-4"), 30))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-5"), 61))
            .is_some());
    }

    #[test]
    fn reads_spread_over_more_than_the_window_do_not_fire() {
        let detector = detector();
        let roles = [Role::OrderManager];
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-1"), 0))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-2"), 61))
            .is_none());
    }

    #[test]
    fn an_employee_with_several_roles_gets_the_highest_read_threshold() {
        let thresholds = detector().thresholds().clone();
        assert_eq!(thresholds.reads_for(&[Role::OrderManager, Role::Admin]), 5);
    }

    #[test]
    fn failures_count_every_occurrence_up_to_the_threshold() {
        let detector = detector();
        for t in 0..3 {
            assert!(detector
                .observe(&seen(Rule::FailureBurst, &[], None, t))
                .is_none());
        }
        let event = detector
            .observe(&seen(Rule::FailureBurst, &[], None, 3))
            .unwrap();
        assert_eq!(
            (event.rule, event.count, event.role),
            (Rule::FailureBurst, 4, None)
        );
    }

    #[test]
    fn exports_fire_at_the_threshold_of_distinct_customers() {
        let detector = detector();
        assert!(detector
            .observe(&seen(Rule::BulkExport, &[], Some("c-1"), 0))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkExport, &[], Some("c-1"), 1))
            .is_none());
        assert!(detector
            .observe(&seen(Rule::BulkExport, &[], Some("c-2"), 2))
            .is_some());
    }

    #[test]
    fn one_refused_gdpr_request_is_a_finding_and_the_next_in_the_window_is_not() {
        let detector = detector();
        let event = detector.observe(&seen(Rule::RefusedGdprRequest, &[], Some("c-9"), 0));
        assert_eq!(event.map(|event| event.count), Some(1));
        assert!(detector
            .observe(&seen(Rule::RefusedGdprRequest, &[], Some("c-8"), 1))
            .is_none());
    }

    #[test]
    fn principals_and_tenants_are_counted_apart() {
        let detector = detector();
        let roles = [Role::OrderManager];
        let mut other = seen(Rule::BulkRead, &roles, Some("c-2"), 1);
        other.principal_id = "emp-2";
        assert!(detector
            .observe(&seen(Rule::BulkRead, &roles, Some("c-1"), 0))
            .is_none());
        assert!(detector.observe(&other).is_none());
        let mut other_tenant = seen(Rule::BulkRead, &roles, Some("c-3"), 2);
        other_tenant.tenant_id = "t-2";
        assert!(detector.observe(&other_tenant).is_none());
    }
}
