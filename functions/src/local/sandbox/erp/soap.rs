//! The fake ERP's SOAP endpoint: `GET ?wsdl`, and `POST` of an envelope: the outage and
//! failure drills, the version check, authentication, then the operation; every refusal is a
//! SOAP fault in the request's version.

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use shared::erp::{self, FaultSide, Incoming, Payload, SoapFault, SoapVersion, UsernameToken};

use super::context::Shared;
use super::operations;
use crate::local::sandbox::listener::ConnectionKill;

/// `GET {endpoint}?wsdl`: the contract.
pub async fn wsdl(RawQuery(query): RawQuery) -> Response {
    if query
        .as_deref()
        .is_some_and(|q| q.eq_ignore_ascii_case("wsdl"))
    {
        (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            erp::WSDL,
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            "GET answers the WSDL at ?wsdl; operations are POSTed",
        )
            .into_response()
    }
}

/// `POST {endpoint}`: one SOAP call.
pub async fn call(
    State(erp): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let unavailable = || (StatusCode::SERVICE_UNAVAILABLE, "ERP unavailable").into_response();
    if let Some(answer) = erp.outage.intercept(&connection, unavailable) {
        return answer;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(version) = SoapVersion::from_content_type(content_type) else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "SOAP 1.1 is text/xml, SOAP 1.2 application/soap+xml",
        )
            .into_response();
    };
    match handle(&erp, version, &headers, &body) {
        Ok(payload) => reply(version, StatusCode::OK, &payload),
        Err(fault) => fault_reply(version, &fault),
    }
}

/// Everything after the transport: the answer's payload or the fault.
fn handle(
    erp: &Shared,
    version: SoapVersion,
    headers: &HeaderMap,
    body: &str,
) -> Result<Payload, SoapFault> {
    let mut memory = erp.memory.lock();
    memory.calls += 1;
    if memory.fail_next > 0 {
        memory.fail_next -= 1;
        return Err(SoapFault::new(
            FaultSide::Service,
            "INTERNAL_ERROR",
            "simulated ERP failure (sandbox fail-next)",
        ));
    }
    let incoming = erp::decode(body).map_err(|error| {
        SoapFault::new(
            FaultSide::Caller,
            "INVALID_REQUEST",
            format!("unreadable request: {error}"),
        )
    })?;
    if incoming.version != version {
        return Err(SoapFault::new(
            FaultSide::Caller,
            "INVALID_REQUEST",
            format!(
                "a SOAP {} envelope sent as SOAP {}",
                incoming.version.label(),
                version.label()
            ),
        ));
    }
    if !authenticated(erp, headers, &incoming) {
        return Err(SoapFault::new(
            FaultSide::Caller,
            "AUTHENTICATION_FAILED",
            "user name or password not accepted",
        ));
    }
    match &incoming.payload {
        Payload::GetStockChanges(request) => operations::stock_changes(&memory, request),
        Payload::GetProducts(request) => operations::products(&memory, request),
        Payload::PostGoodsMovement(movement) => operations::post_movement(&mut memory, movement),
        other => Err(SoapFault::new(
            FaultSide::Caller,
            "INVALID_REQUEST",
            format!("{} is not an operation of this service", other.element()),
        )),
    }
}

/// HTTP Basic or a WS-Security UsernameToken with the configured credentials.
fn authenticated(erp: &Shared, headers: &HeaderMap, incoming: &Incoming) -> bool {
    let expected = &erp.config.credentials;
    if let Some(token) = &incoming.token {
        return token == expected;
    }
    basic_credentials(headers).is_some_and(|token| token == *expected)
}

fn basic_credentials(headers: &HeaderMap) -> Option<UsernameToken> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(UsernameToken {
        username: username.to_owned(),
        password: password.into(),
    })
}

fn fault_reply(version: SoapVersion, fault: &SoapFault) -> Response {
    let status = match version {
        SoapVersion::V12 if fault.is_caller_fault() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(version, status, &Payload::Fault(fault.to_xml(version)))
}

fn reply(version: SoapVersion, status: StatusCode, payload: &Payload) -> Response {
    let content_type = match version {
        SoapVersion::V11 => "text/xml; charset=utf-8",
        SoapVersion::V12 => "application/soap+xml; charset=utf-8",
    };
    match erp::encode(version, None, payload) {
        Ok(xml) => (status, [(header::CONTENT_TYPE, content_type)], xml).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
