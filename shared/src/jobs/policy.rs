//! Retention policy: the cut-off times of each retention rule for one tenant, from the global
//! periods and the tenant's overrides (`RETENTION_TENANT_OVERRIDES`).

use chrono::{DateTime, Months, Utc};

use crate::config::RetentionSettings;

/// The retention periods that apply to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TenantRetention {
    pub notification_days: u32,
    pub read_notification_days: u32,
    pub inactive_customer_years: u32,
    pub audit_years: u32,
}

impl TenantRetention {
    /// The global periods, with the tenant's overrides on top.
    pub(crate) fn for_tenant(settings: &RetentionSettings, tenant: &str) -> Self {
        let global = Self {
            notification_days: settings.notification_days,
            read_notification_days: settings.read_notification_days,
            inactive_customer_years: settings.inactive_customer_years,
            audit_years: settings.audit_years,
        };
        let Some(own) = settings.tenant_overrides.get(tenant) else {
            return global;
        };
        Self {
            notification_days: own.notification_days.unwrap_or(global.notification_days),
            read_notification_days: own
                .read_notification_days
                .unwrap_or(global.read_notification_days),
            inactive_customer_years: own
                .inactive_customer_years
                .unwrap_or(global.inactive_customer_years),
            audit_years: own.audit_years.unwrap_or(global.audit_years),
        }
    }

    /// Notifications created before this are deleted.
    pub(crate) fn notifications_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        days_before(now, self.notification_days)
    }

    /// Read notifications created before this are removed (with a summary archived).
    pub(crate) fn read_notifications_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        days_before(now, self.read_notification_days)
    }

    /// Customers with no activity since this are anonymised.
    pub(crate) fn inactive_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        years_before(now, self.inactive_customer_years)
    }

    /// Audit entries before this are archived, then removed.
    pub(crate) fn audit_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        years_before(now, self.audit_years)
    }
}

fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// Calendar years (29 February goes back to 28 February).
fn years_before(now: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    now.checked_sub_months(Months::new(years.saturating_mul(12)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetentionOverride;

    fn settings() -> RetentionSettings {
        RetentionSettings {
            notification_days: 90,
            read_notification_days: 30,
            inactive_customer_years: 7,
            audit_years: 10,
            tenant_overrides: [(
                "t1".to_owned(),
                RetentionOverride {
                    notification_days: Some(10),
                    ..Default::default()
                },
            )]
            .into(),
        }
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let t1 = TenantRetention::for_tenant(&settings(), "t1");
        assert_eq!((t1.notification_days, t1.audit_years), (10, 10));
        assert_eq!(
            TenantRetention::for_tenant(&settings(), "t2").notification_days,
            90
        );
    }

    #[test]
    fn cut_offs_count_back_from_now() {
        let now = "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let policy = TenantRetention::for_tenant(&settings(), "t2");
        assert_eq!(
            policy.notifications_before(now).to_rfc3339(),
            "2025-12-01T00:00:00+00:00"
        );
        assert_eq!(
            policy.audit_before(now).to_rfc3339(),
            "2016-03-01T00:00:00+00:00"
        );
    }
}
