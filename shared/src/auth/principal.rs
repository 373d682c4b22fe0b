//! Who is calling: the [`Principal`] an authenticated request acts as, and the employee
//! [`Role`]s the API authorises against.
//!
//! A principal is an employee (signed in through Entra ID, with app roles), a client (signed in
//! through Entra External ID, bound to exactly one customer record), or another service of the
//! platform calling with an app-only token (Entra ID client credentials: no user, app roles
//! such as `audit.writer`). All belong to one tenant, taken from the token, never from the
//! request.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::tenant::TenantId;

/// An employee app role, as it appears in the token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `admin`: everything, including audit logs.
    Admin,
    /// `customer-service`: customers and notifications.
    CustomerService,
    /// `order-manager`: orders and products.
    OrderManager,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 3] = [Role::Admin, Role::CustomerService, Role::OrderManager];

    /// The role's value in the `roles` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::CustomerService => "customer-service",
            Role::OrderManager => "order-manager",
        }
    }

    /// The role a claim value names, if any (exact, case-sensitive, as Entra ID emits it).
    pub(crate) fn from_claim(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use admin, customer-service or order-manager")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Role::from_claim(value).ok_or_else(|| UnknownRole(value.to_owned()))
    }
}

/// An app role of a service calling with an app-only token, as it appears in `roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AppRole {
    /// `audit.writer`: may send entries to the audit trail (`POST /audit/logs`).
    #[serde(rename = "audit.writer")]
    AuditWriter,
}

impl AppRole {
    /// Every app role, in a fixed order.
    pub const ALL: [AppRole; 1] = [AppRole::AuditWriter];

    /// The role's value in the `roles` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::AuditWriter => "audit.writer",
        }
    }

    /// The app role a claim value names, if any (exact, case-sensitive).
    pub(crate) fn from_claim(value: &str) -> Option<AppRole> {
        AppRole::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

impl fmt::Display for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's stable id: the token's `oid`, or `sub` when there is no `oid`.
    pub subject: String,
    /// The tenant every read and write of this request is scoped to.
    pub tenant: TenantId,
    /// Employee with roles, or client bound to a customer.
    pub kind: PrincipalKind,
}

/// The two kinds of caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Signed in through the workforce issuer (Entra ID). Unknown role strings are dropped.
    Employee { roles: BTreeSet<Role> },
    /// Signed in through the customer issuer (Entra External ID); sees only this customer.
    Client { customer_id: String },
    /// Another service of the platform with an app-only token (no user); the subject is the
    /// app's id. Unknown role strings are dropped.
    App { roles: BTreeSet<AppRole> },
}

impl Principal {
    /// True for an employee holding `role`; always false for a client.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles().is_some_and(|roles| roles.contains(&role))
    }

    /// True for an employee holding at least one of `roles`; always false for a client.
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.has_role(*role))
    }

    /// The employee's roles, or `None` for a client.
    pub fn roles(&self) -> Option<&BTreeSet<Role>> {
        match &self.kind {
            PrincipalKind::Employee { roles } => Some(roles),
            PrincipalKind::Client { .. } | PrincipalKind::App { .. } => None,
        }
    }

    /// True for an app-only caller holding `role`.
    pub fn has_app_role(&self, role: AppRole) -> bool {
        matches!(&self.kind, PrincipalKind::App { roles } if roles.contains(&role))
    }

    /// True for a service calling with an app-only token.
    pub fn is_app(&self) -> bool {
        matches!(self.kind, PrincipalKind::App { .. })
    }

    pub fn is_employee(&self) -> bool {
        matches!(self.kind, PrincipalKind::Employee { .. })
    }

    pub fn is_client(&self) -> bool {
        matches!(self.kind, PrincipalKind::Client { .. })
    }

    /// The customer a client is bound to, or `None` for an employee.
    pub fn customer_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Client { customer_id } => Some(customer_id),
            PrincipalKind::Employee { .. } | PrincipalKind::App { .. } => None,
        }
    }
}

/// Whether `id` has the form we accept for a customer id bound to a client token:
/// 1 to 128 ASCII letters, digits, `-` or `_` (GUIDs and our own ids both fit).
pub(crate) fn is_valid_customer_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employee(roles: &[Role]) -> Principal {
        Principal {
            subject: "u1".into(),
            tenant: TenantId::new("t1").expect("valid tenant"),
            kind: PrincipalKind::Employee {
                roles: roles.iter().copied().collect(),
            },
        }
    }

    #[test]
    fn roles_round_trip_through_their_claim_values() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!(Role::from_claim("superuser").is_none());
    }

    #[test]
    fn role_checks_distinguish_employees_and_clients() {
        let manager = employee(&[Role::OrderManager]);
        assert!(manager.has_role(Role::OrderManager));
        assert!(!manager.has_role(Role::Admin));
        assert!(manager.has_any_role(&[Role::Admin, Role::OrderManager]));
        assert!(manager.is_employee() && !manager.is_client());
        assert_eq!(manager.customer_id(), None);

        let client = Principal {
            kind: PrincipalKind::Client {
                customer_id: "c-42".into(),
            },
            ..manager
        };
        assert!(!client.has_role(Role::OrderManager));
        assert!(client.is_client());
        assert_eq!(client.customer_id(), Some("c-42"));
    }

    #[test]
    fn an_app_is_neither_employee_nor_client_and_has_only_app_roles() {
        let app = Principal {
            kind: PrincipalKind::App {
                roles: [AppRole::AuditWriter].into_iter().collect(),
            },
            ..employee(&[])
        };
        assert!(app.is_app() && !app.is_employee() && !app.is_client());
        assert!(app.has_app_role(AppRole::AuditWriter));
        assert!(!app.has_any_role(&Role::ALL));
        assert_eq!((app.roles(), app.customer_id()), (None, None));
        assert!(!employee(&[Role::Admin]).has_app_role(AppRole::AuditWriter));
        assert_eq!(
            AppRole::from_claim("audit.writer"),
            Some(AppRole::AuditWriter)
        );
        assert_eq!(AppRole::from_claim("Audit.Writer"), None);
    }

    #[test]
    fn customer_ids_are_bounded_ids() {
        assert!(is_valid_customer_id("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(!is_valid_customer_id(""));
        assert!(!is_valid_customer_id("a b"));
        assert!(!is_valid_customer_id(&"x".repeat(129)));
    }
}
