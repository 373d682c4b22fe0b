//! [`Caller`]: the authenticated principal of a request and its correlation id, extracted from
//! `Authorization: Bearer ...` (and `x-correlation-id` / `traceparent`). Every handler that
//! reads or writes data takes one, so there is no data access without a tenant.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shared::auth::{Principal, Role};
use shared::domain::audit::AuditEntry;
use shared::domain::tenant::TenantId;

use super::ApiError;
use crate::startup::AppState;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// `x-correlation-id` if the caller (or APIM) sent one, else the W3C trace id, else new.
    pub correlation_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (principal, correlation_id) = authenticated(parts, state).await?;
        refuse_apps(&principal)?;
        require_a_known_role(&principal)?;
        let caller = Self {
            principal,
            correlation_id,
        };
        if let Some(seen) = parts.extensions.get::<super::watch::SeenCaller>() {
            seen.set(&caller.principal, &caller.correlation_id);
        }
        Ok(caller)
    }
}

/// The principal of the request's `Authorization` header and the request's correlation id:
/// what every caller extractor ([`Caller`], [`super::AppCaller`]) starts from.
pub(super) async fn authenticated(
    parts: &Parts,
    state: &AppState,
) -> Result<(Principal, String), ApiError> {
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let principal = state.authenticator.authenticate(authorization).await?;
    let correlation_id = match parts.extensions.get::<CorrelationId>() {
        Some(CorrelationId(id)) => id.clone(),
        None => correlation_id(&parts.headers),
    };
    Ok((principal, correlation_id))
}

/// App-only tokens (services of the platform, no user) may call only the operations declared
/// for them ([`super::AppCaller`]): every operation that takes a [`Caller`] is 403 to them, so
/// no "any signed-in caller" or "not a client" check can let a service read personal data.
fn refuse_apps(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_app() {
        Err(ApiError::Forbidden(
            "an app-only token may only call the operations for services of the platform".into(),
        ))
    } else {
        Ok(())
    }
}

/// An employee must hold at least one of the app roles ([`Role::ALL`]) to do anything at all:
/// a token from the employees' issuer with no `roles` claim, or with only roles this API does
/// not know (`superuser`, `Admin`), is 403 on every operation, reads included. Without this,
/// "any employee" checks would let a role-less account of the organisation read every
/// customer's personal data.
fn require_a_known_role(principal: &Principal) -> Result<(), ApiError> {
    match principal.roles() {
        Some(roles) if roles.is_empty() => Err(ApiError::Forbidden(format!(
            "an employee without one of the app roles ({}) may not use this API; ask an \
             administrator to assign a role",
            Role::ALL.map(Role::as_str).join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The correlation id of an API request, decided once by [`CorrelateLayer`].
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

/// Gives every API request its correlation id (the caller's `x-correlation-id` if usable, else
/// the W3C trace id, else a new one), for the audit entries it writes, and echoes it back in the
/// response's `x-correlation-id` header, so a caller can find its request in the audit trail.
///
/// A plain tower layer rather than `middleware::from_fn`, which clones and boxes the inner
/// service and its future on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorrelateLayer;

impl<S> tower::Layer<S> for CorrelateLayer {
    type Service = Correlate<S>;

    fn layer(&self, inner: S) -> Correlate<S> {
        Correlate { inner }
    }
}

/// The service of [`CorrelateLayer`].
#[derive(Debug, Clone)]
pub struct Correlate<S> {
    inner: S,
}

impl<S> tower::Service<axum::extract::Request> for Correlate<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = Correlated<S::Future>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        let id = correlation_id(request.headers());
        let header = axum::http::HeaderValue::from_str(&id).ok();
        request.extensions_mut().insert(CorrelationId(id));
        Correlated {
            inner: self.inner.call(request),
            header,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Correlate`]: adds `x-correlation-id` to the response.
    pub struct Correlated<F> {
        #[pin]
        inner: F,
        header: Option<axum::http::HeaderValue>,
    }
}

impl<F, E> std::future::Future for Correlated<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, E>>,
{
    type Output = Result<axum::response::Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(context))?;
        if let Some(value) = this.header.take() {
            response.headers_mut().insert("x-correlation-id", value);
        }
        std::task::Poll::Ready(Ok(response))
    }
}

fn correlation_id(headers: &axum::http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("x-correlation-id")
        .filter(|id| is_valid_correlation_id(id))
        .map(str::to_owned)
        .or_else(|| {
            header("traceparent")
                .and_then(shared::telemetry::TraceParent::parse)
                .map(|trace| trace.trace_id)
        })
        .unwrap_or_else(shared::telemetry::fast_uuid_simple)
}

/// What API Management's correlation-id policy accepts and forwards: `[A-Za-z0-9._:-]{1,128}`.
fn is_valid_correlation_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl Caller {
    pub fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }

    /// Employees holding one of `roles` may go on; anyone else gets 403.
    pub fn require_role(&self, roles: &[Role], action: &str) -> Result<(), ApiError> {
        if self.principal.has_any_role(roles) {
            Ok(())
        } else {
            Err(ApiError::forbidden(action))
        }
    }

    /// Any employee may go on; a client gets 403.
    pub fn require_employee(&self, action: &str) -> Result<(), ApiError> {
        if self.principal.is_employee() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("clients may not {action}")))
        }
    }

    /// Whether this caller may see the customer `customer_id`: employees see every customer of
    /// their tenant, a client only their own.
    pub fn may_see_customer(&self, customer_id: &str) -> bool {
        self.principal
            .customer_id()
            .is_none_or(|own| own == customer_id)
    }

    /// 404 (never 403: another customer's data must look like missing data) unless the caller
    /// may see `customer_id`.
    pub fn check_customer(&self, customer_id: &str) -> Result<(), ApiError> {
        if self.may_see_customer(customer_id) {
            Ok(())
        } else {
            Err(ApiError::Store(shared::store::StoreError::NotFound))
        }
    }

    /// An audit entry for an action of this caller, now.
    pub fn audit(&self, action: &str, target_type: &str, target_id: &str) -> AuditEntry {
        AuditEntry::now(
            self.tenant().as_str(),
            &self.principal.subject,
            action,
            target_type,
            target_id,
            &self.correlation_id,
        )
    }
}
