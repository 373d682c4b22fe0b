//! Input bindings the local host resolves before an invocation, as the Functions host does:
//! `signalRConnectionInfo` takes its user id from a binding expression over the request's
//! headers (`{headers.x-ms-signalr-userid}`) and gets the connection info from the local
//! SignalR service. The value goes into `Data` as the host sends it: a JSON string holding the
//! object. A binding that cannot be resolved fails the invocation (the host answers 500).

use axum::http::HeaderMap;
use serde_json::Value;
use shared::protocol::InvocationRequest;

use super::LocalRuntime;
use crate::registry::{FunctionDef, InputBinding};

/// Why an input binding could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("binding `{binding}`: the request has no `{header}` header for its user id (in Azure, API Management sets it from the token; locally, send it yourself: {hint})")]
    MissingHeader {
        binding: &'static str,
        header: String,
        hint: &'static str,
    },
    #[error("binding `{binding}`: the user id expression {expression:?} is not one the local host resolves (`{{headers.<name>}}`)")]
    UnsupportedExpression {
        binding: &'static str,
        expression: &'static str,
    },
    #[error("binding `{binding}`: no token could be minted: {source}")]
    Token {
        binding: &'static str,
        #[source]
        source: super::signalr::token::TokenError,
    },
    #[error("binding `{0}`: the local host has no SignalR service")]
    NoService(&'static str),
}

/// Puts the value of each of `def`'s input bindings into `envelope.Data`.
pub fn resolve_inputs(
    runtime: &LocalRuntime,
    def: &'static FunctionDef,
    headers: &HeaderMap,
    envelope: &mut InvocationRequest,
) -> Result<(), BindingError> {
    for input in def.inputs {
        let InputBinding::SignalRConnectionInfo { name, hub, user_id } = *input;
        let header = header_of_expression(user_id).ok_or(BindingError::UnsupportedExpression {
            binding: name,
            expression: user_id,
        })?;
        let user = headers
            .get(header)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| BindingError::MissingHeader {
                binding: name,
                header: header.to_owned(),
                hint: "<tenant>:customer:<customer id> for a client, <tenant>:employee:<oid> for an employee",
            })?;
        let signalr = runtime
            .host
            .signalr()
            .ok_or(BindingError::NoService(name))?;
        let info = signalr
            .connection_info(hub, user)
            .map_err(|source| BindingError::Token {
                binding: name,
                source,
            })?;
        // The host's form: the object serialised into a JSON string.
        let text = serde_json::to_string(&info).unwrap_or_default();
        envelope.data.insert(name.to_owned(), Value::String(text));
    }
    Ok(())
}

/// `x-name` of `{headers.x-name}`.
fn header_of_expression(expression: &str) -> Option<&str> {
    expression
        .strip_prefix("{headers.")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_expressions_name_their_header() {
        assert_eq!(
            header_of_expression("{headers.x-ms-signalr-userid}"),
            Some("x-ms-signalr-userid")
        );
        assert_eq!(header_of_expression("{query.user}"), None);
        assert_eq!(header_of_expression("{headers.}"), None);
    }
}
