//! From verified claims to a [`Principal`]: subject, tenant, and roles or customer binding.
//!
//! Runs only after the signature, issuer, audience and lifetime have been checked. Errors name
//! the claim that is missing or wrong, never its value.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::config::ROLES_CLAIM;
use super::error::AuthError;
use super::principal::{is_valid_customer_id, AppRole, Principal, PrincipalKind, Role};
use crate::domain::tenant::TenantId;

/// Longest subject id accepted (`oid` is a GUID, `sub` a short opaque string).
const MAX_SUBJECT_LEN: usize = 256;

/// Which kind of principal an issuer's tokens make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    Employee,
    Client,
    /// The dev issuer: a client when the customer claim is present, else an employee.
    PerToken,
}

/// How one issuer's claims are read.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub binding: Binding,
    pub tenant_claim: String,
    pub customer_claim: String,
}

impl ClaimRules {
    /// The principal these verified claims describe.
    pub(crate) fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let subject = subject(claims)?;
        let tenant = tenant(claims, &self.tenant_claim)?;
        let customer = customer_id(claims, &self.customer_claim)?;
        let kind = match (self.binding, customer) {
            (Binding::Employee, _) | (Binding::PerToken, None) if is_app_only(claims) => {
                PrincipalKind::App {
                    roles: app_roles(claims),
                }
            }
            (Binding::Employee, _) | (Binding::PerToken, None) => PrincipalKind::Employee {
                roles: roles(claims),
            },
            (Binding::Client | Binding::PerToken, Some(customer_id)) => {
                PrincipalKind::Client { customer_id }
            }
            (Binding::Client, None) => return Err(AuthError::missing_claim(&self.customer_claim)),
        };
        Ok(Principal {
            subject,
            tenant,
            kind,
        })
    }
}

/// `oid` when present (stable across applications in Entra), else `sub`.
fn subject(claims: &Map<String, Value>) -> Result<String, AuthError> {
    let claim = if claims.contains_key("oid") {
        "oid"
    } else {
        "sub"
    };
    match claims.get(claim) {
        Some(Value::String(id)) if is_valid_subject(id) => Ok(id.clone()),
        None | Some(Value::Null) => Err(AuthError::missing_claim("sub")),
        Some(_) => Err(AuthError::invalid_claim(claim)),
    }
}

fn is_valid_subject(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_SUBJECT_LEN && !id.chars().any(char::is_control)
}

fn tenant(claims: &Map<String, Value>, claim: &str) -> Result<TenantId, AuthError> {
    match claims.get(claim) {
        Some(Value::String(id)) => {
            TenantId::new(id.as_str()).map_err(|_| AuthError::invalid_claim(claim))
        }
        None | Some(Value::Null) => Err(AuthError::missing_claim(claim)),
        Some(_) => Err(AuthError::invalid_claim(claim)),
    }
}

/// The customer id, if the claim is present; a present but malformed one is an error.
fn customer_id(claims: &Map<String, Value>, claim: &str) -> Result<Option<String>, AuthError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_valid_customer_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(AuthError::invalid_claim(claim)),
    }
}

/// Whether a workforce token was issued to an application itself (client credentials), not to
/// a user: Entra ID's optional `idtyp` claim says `app`, or (when that claim is not configured)
/// the token has no delegated scopes (`scp`) and its `oid` is its `sub`, which only holds for
/// app-only tokens.
fn is_app_only(claims: &Map<String, Value>) -> bool {
    if let Some(Value::String(kind)) = claims.get("idtyp") {
        return kind == "app";
    }
    let oid = claims.get("oid").and_then(Value::as_str);
    !claims.contains_key("scp") && oid.is_some() && oid == claims.get("sub").and_then(Value::as_str)
}

/// The known app roles of the `roles` claim of an app-only token; others are ignored.
fn app_roles(claims: &Map<String, Value>) -> BTreeSet<AppRole> {
    match claims.get(ROLES_CLAIM) {
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(Value::as_str)
            .filter_map(AppRole::from_claim)
            .collect(),
        Some(Value::String(value)) => AppRole::from_claim(value).into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

/// The known roles of the `roles` claim (an array, or a single string); others are ignored.
fn roles(claims: &Map<String, Value>) -> BTreeSet<Role> {
    match claims.get(ROLES_CLAIM) {
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(Value::as_str)
            .filter_map(Role::from_claim)
            .collect(),
        Some(Value::String(value)) => Role::from_claim(value).into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(binding: Binding) -> ClaimRules {
        ClaimRules {
            binding,
            tenant_claim: "tenant_id".into(),
            customer_claim: "extension_customerId".into(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("claims must be an object, got {other}"),
        }
    }

    #[test]
    fn employees_keep_known_roles_only() {
        let c = claims(json!({"sub": "s", "oid": "o-1", "tenant_id": "t1",
                              "roles": ["admin", "order-manager", "Admin", "root", 7]}));
        let principal = rules(Binding::Employee).principal(&c).expect("employee");
        assert_eq!(principal.subject, "o-1");
        assert_eq!(principal.tenant.as_str(), "t1");
        assert_eq!(
            principal.roles().cloned(),
            Some(BTreeSet::from([Role::Admin, Role::OrderManager]))
        );
    }

    #[test]
    fn an_employee_issuer_ignores_a_customer_claim() {
        let c = claims(json!({"sub": "s", "tenant_id": "t1", "extension_customerId": "c1"}));
        let principal = rules(Binding::Employee).principal(&c).expect("employee");
        assert!(principal.is_employee());
        assert_eq!(principal.subject, "s");
    }

    #[test]
    fn clients_need_a_well_formed_customer_claim() {
        let ok = claims(json!({"sub": "s", "tenant_id": "t1", "extension_customerId": "c1"}));
        assert_eq!(
            rules(Binding::Client)
                .principal(&ok)
                .expect("client")
                .customer_id(),
            Some("c1")
        );
        let missing = claims(json!({"sub": "s", "tenant_id": "t1"}));
        assert_eq!(
            rules(Binding::Client).principal(&missing),
            Err(AuthError::missing_claim("extension_customerId"))
        );
        let bad = claims(json!({"sub": "s", "tenant_id": "t1", "extension_customerId": "a/b"}));
        assert_eq!(
            rules(Binding::Client).principal(&bad),
            Err(AuthError::invalid_claim("extension_customerId"))
        );
    }

    #[test]
    fn the_dev_issuer_decides_the_kind_per_token() {
        let client = claims(json!({"sub": "s", "tenant_id": "t1", "extension_customerId": "c1"}));
        assert!(rules(Binding::PerToken)
            .principal(&client)
            .expect("client")
            .is_client());
        let employee = claims(json!({"sub": "s", "tenant_id": "t1", "roles": ["admin"]}));
        assert!(rules(Binding::PerToken)
            .principal(&employee)
            .expect("employee")
            .has_role(Role::Admin));
    }

    #[test]
    fn app_only_tokens_make_app_principals_with_app_roles_only() {
        let by_idtyp = claims(
            json!({"sub": "a-1", "oid": "a-1", "idtyp": "app", "tenant_id": "t1",
                                     "roles": ["audit.writer", "admin"]}),
        );
        let app = rules(Binding::Employee).principal(&by_idtyp).expect("app");
        assert!(app.is_app());
        assert!(app.has_app_role(AppRole::AuditWriter));
        assert!(
            !app.has_role(Role::Admin),
            "employee roles mean nothing to an app"
        );
        let by_oid = claims(json!({"sub": "a-1", "oid": "a-1", "tenant_id": "t1"}));
        assert!(rules(Binding::PerToken)
            .principal(&by_oid)
            .expect("app")
            .is_app());
        let user = claims(
            json!({"sub": "s-9", "oid": "o-1", "idtyp": "user", "tenant_id": "t1",
                                 "roles": ["admin"]}),
        );
        assert!(rules(Binding::Employee)
            .principal(&user)
            .expect("user")
            .has_role(Role::Admin));
        let delegated =
            claims(json!({"sub": "o-1", "oid": "o-1", "scp": "access", "tenant_id": "t1"}));
        assert!(rules(Binding::Employee)
            .principal(&delegated)
            .expect("user")
            .is_employee());
    }

    #[test]
    fn tenant_and_subject_are_required_and_checked() {
        let no_tenant = claims(json!({"sub": "s"}));
        assert_eq!(
            rules(Binding::Employee).principal(&no_tenant),
            Err(AuthError::missing_claim("tenant_id"))
        );
        let bad_tenant = claims(json!({"sub": "s", "tenant_id": "../other"}));
        assert_eq!(
            rules(Binding::Employee).principal(&bad_tenant),
            Err(AuthError::invalid_claim("tenant_id"))
        );
        let number_tenant = claims(json!({"sub": "s", "tenant_id": 5}));
        assert_eq!(
            rules(Binding::Employee).principal(&number_tenant),
            Err(AuthError::invalid_claim("tenant_id"))
        );
        let no_subject = claims(json!({"tenant_id": "t1"}));
        assert_eq!(
            rules(Binding::Employee).principal(&no_subject),
            Err(AuthError::missing_claim("sub"))
        );
        let empty_oid = claims(json!({"oid": "", "sub": "s", "tenant_id": "t1"}));
        assert_eq!(
            rules(Binding::Employee).principal(&empty_oid),
            Err(AuthError::invalid_claim("oid"))
        );
    }
}
