//! `NotificationsNegotiate` (HTTP `POST /api/v1/notifications/negotiate`, input binding
//! `signalRConnectionInfo`, output binding `signalR`): where a live view gets its connection to
//! the notifications hub (Azure SignalR Service in serverless mode; locally, the runtime's
//! SignalR-compatible service).
//!
//! The binding mints the connection for the user id in the `x-ms-signalr-userid` header, which
//! API Management sets from the validated token (and strips from the client's request). The
//! function authenticates the token itself too and refuses (403) a header that is not the
//! token's own user id ([`crate::realtime::user_id`]), so no one gets a connection for someone
//! else, whatever reaches the host. The answer is `{url, accessToken}`, which the
//! `@microsoft/signalr` client follows as a redirect. An employee is added to the groups of
//! their tenant's roles (group actions on the output), for role-addressed notifications.
//!
//! Having bindings beside HTTP, the function is not forwarded: it arrives as an envelope.

use axum::extract::Extension;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use shared::protocol::SignalRConnectionInfo;

use crate::api::openapi::Operation;
use crate::api::{ApiError, Caller};
use crate::invoke::{InputValues, OutputSink};
use crate::realtime::{self, push::SIGNALR_OUTPUT, USER_ID_HEADER};

/// The `signalRConnectionInfo` input binding.
pub const CONNECTION_INFO_BINDING: &str = "connectionInfo";

/// Where to connect: the SignalR client follows it as a redirect.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateResponse {
    /// The SignalR Service endpoint of the `notifications` hub.
    pub url: String,
    /// A short-lived token for that endpoint, naming the caller.
    pub access_token: String,
}

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    vec![Operation::new(
        Method::POST,
        "/api/v1/notifications/negotiate",
        "negotiateNotifications",
        "Connect to your live notifications (SignalR negotiate)",
        post(negotiate),
    )
    .tag("notifications")
    .headers(&[(
        USER_ID_HEADER,
        "your own user id: {tenant}:customer:{customerId} or {tenant}:employee:{oid}; API Management sets it from your token, and any other value is 403",
    )])
    .require_headers(&[USER_ID_HEADER])
    .returns::<NegotiateResponse>(200, "Where to connect, and the token to connect with")
    .errors(&[401, 403])]
}

async fn negotiate(
    caller: Caller,
    headers: HeaderMap,
    inputs: Option<Extension<InputValues>>,
    sink: Option<Extension<OutputSink>>,
) -> Result<Response, ApiError> {
    let expected = realtime::user_id(&caller.principal)
        .ok_or_else(|| ApiError::Forbidden("app-only callers have no live view".to_owned()))?;
    let claimed = headers
        .get(USER_ID_HEADER)
        .and_then(|value| value.to_str().ok());
    if claimed != Some(expected.as_str()) {
        tracing::warn!(tenant_id = %caller.tenant(), "negotiate refused: the SignalR user id is not the token's");
        return Err(ApiError::Forbidden(format!(
            "the {USER_ID_HEADER} header is not your own user id"
        )));
    }
    let info = connection_info(inputs)?;
    if let Some(Extension(sink)) = sink {
        for action in realtime::group_actions(&caller.principal) {
            let item = serde_json::to_value(action)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            sink.send(SIGNALR_OUTPUT, item);
        }
    }
    Ok(Json(NegotiateResponse {
        url: info.url,
        access_token: info.access_token,
    })
    .into_response())
}

/// The binding's value, or a 500 saying the function was not invoked with it.
fn connection_info(
    inputs: Option<Extension<InputValues>>,
) -> Result<SignalRConnectionInfo, ApiError> {
    let Some(Extension(InputValues(values))) = inputs else {
        return Err(ApiError::Internal(
            "NotificationsNegotiate was invoked without its signalRConnectionInfo binding".into(),
        ));
    };
    let value = values
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(CONNECTION_INFO_BINDING))
        .map(|(_, value)| value)
        .ok_or_else(|| {
            ApiError::Internal("the signalRConnectionInfo binding has no value".into())
        })?;
    SignalRConnectionInfo::from_value(value).map_err(|reason| {
        ApiError::Internal(format!("the signalRConnectionInfo binding: {reason}"))
    })
}
