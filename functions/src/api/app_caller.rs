//! [`AppCaller`]: a service of the platform calling with an app-only token (Entra ID client
//! credentials: no user) that holds the app role an operation needs. Every user token, an
//! admin's included, is 403 on such an operation; an app-only token is 403 everywhere else
//! (see [`super::Caller`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shared::auth::{AppRole, Principal};
use shared::domain::tenant::TenantId;

use super::ApiError;
use crate::startup::AppState;

/// The app role [`AppCaller`] requires: the operations for services need `audit.writer` today.
const REQUIRED: AppRole = AppRole::AuditWriter;

/// The authenticated service calling one request.
#[derive(Debug, Clone)]
pub struct AppCaller {
    pub principal: Principal,
    pub correlation_id: String,
}

impl FromRequestParts<AppState> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (principal, correlation_id) = super::caller::authenticated(parts, state).await?;
        if !principal.is_app() {
            return Err(ApiError::Forbidden(format!(
                "only services of the platform with an app-only token and the app role {REQUIRED} \
                 may call this; user tokens may not"
            )));
        }
        if !principal.has_app_role(REQUIRED) {
            return Err(ApiError::Forbidden(format!(
                "the calling app lacks the app role {REQUIRED}"
            )));
        }
        Ok(Self {
            principal,
            correlation_id,
        })
    }
}

impl AppCaller {
    pub fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }

    /// The actor id of this app in the audit trail: `app:<app id>`.
    pub fn actor_id(&self) -> String {
        format!("app:{}", self.principal.subject)
    }
}
