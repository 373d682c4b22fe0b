//! The SignalR bindings of the custom-handler protocol (Azure SignalR Service, serverless mode).
//!
//! - [`SignalRConnectionInfo`]: the `signalRConnectionInfo` input binding's value, `{url,
//!   accessToken}`. The host passes it in `Data` as a JSON string holding the object (the
//!   extension serialises the value before the custom-handler channel sees it), and possibly as
//!   the object itself; key case varies (`url`/`Url`, `accessToken`/`AccessToken`). Both are
//!   accepted; see the fixtures in `functions/tests/fixtures/host/`.
//! - [`SignalRAction`]: one item of the `signalR` output binding: a message to a user, a group or
//!   a connection (`{target, arguments, userId | groupName | connectionId}`), or a group action
//!   (`{action: add | remove | removeAll, userId | connectionId, groupName}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{InvocationRequest, ProtocolError};

/// The `signalRConnectionInfo` input: where the client connects and with which token.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalRConnectionInfo {
    /// The service's client endpoint, with `?hub=<hub>`.
    pub url: String,
    /// A token for that endpoint (audience: the URL), naming the user.
    pub access_token: String,
}

impl std::fmt::Debug for SignalRConnectionInfo {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalRConnectionInfo")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SignalRConnectionInfo {
    /// Reads the binding `binding` of an envelope: an object, or a JSON string holding one.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, ProtocolError> {
        let value = request
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingBinding {
                binding: binding.to_owned(),
                present: request.data.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        Self::from_value(value).map_err(|reason| ProtocolError::InvalidBinding {
            binding: binding.to_owned(),
            expected: "SignalR connection info ({url, accessToken})",
            reason,
        })
    }

    /// The value in either form the host sends.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let parsed;
        let object = match value {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|error| format!("the string is not JSON: {error}"))?;
                match &parsed {
                    Value::String(_) => return Self::from_value(&parsed),
                    other => other,
                }
            }
            other => other,
        };
        let field = |name: &str| {
            object
                .as_object()
                .and_then(|map| {
                    map.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .and_then(|(_, value)| value.as_str())
                })
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("`{name}` is missing or not a string"))
        };
        Ok(Self {
            url: field("url")?,
            access_token: field("accessToken")?,
        })
    }
}

/// What a group action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupAction {
    Add,
    Remove,
    RemoveAll,
}

/// One item of the `signalR` output binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalRAction {
    /// Adds a user or connection to a group, removes it, or removes it from every group.
    Group {
        action: GroupAction,
        #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        #[serde(
            rename = "connectionId",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        connection_id: Option<String>,
        #[serde(rename = "groupName", default, skip_serializing_if = "Option::is_none")]
        group_name: Option<String>,
    },
    /// Invokes `target` with `arguments` on the clients of a user, a group or a connection
    /// (everyone on the hub when none is named).
    Message {
        target: String,
        arguments: Vec<Value>,
        #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        #[serde(rename = "groupName", default, skip_serializing_if = "Option::is_none")]
        group_name: Option<String>,
        #[serde(
            rename = "connectionId",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        connection_id: Option<String>,
    },
}

impl SignalRAction {
    /// A message invoking `target` with one argument on every connection of `user_id`.
    pub fn to_user(user_id: &str, target: &str, argument: Value) -> Self {
        Self::Message {
            target: target.to_owned(),
            arguments: vec![argument],
            user_id: Some(user_id.to_owned()),
            group_name: None,
            connection_id: None,
        }
    }

    /// A message invoking `target` with one argument on every connection in `group`.
    pub fn to_group(group: &str, target: &str, argument: Value) -> Self {
        Self::Message {
            target: target.to_owned(),
            arguments: vec![argument],
            user_id: None,
            group_name: Some(group.to_owned()),
            connection_id: None,
        }
    }

    /// Adds `user_id` to `group`.
    pub fn add_user_to_group(user_id: &str, group: &str) -> Self {
        Self::Group {
            action: GroupAction::Add,
            user_id: Some(user_id.to_owned()),
            connection_id: None,
            group_name: Some(group.to_owned()),
        }
    }

    /// The items of an output value: one object, an array of them, or a JSON string of either
    /// (items that are not valid actions are returned as errors, one per item).
    pub fn from_output(value: &Value) -> Vec<Result<Self, String>> {
        match value {
            Value::Array(items) => items.iter().flat_map(Self::from_output).collect(),
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(parsed) if !parsed.is_string() => Self::from_output(&parsed),
                _ => vec![Err("a string that is not a JSON action".to_owned())],
            },
            other => vec![serde_json::from_value(other.clone()).map_err(|error| error.to_string())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connection_info_is_read_as_an_object_or_a_json_string_in_any_key_case() {
        let object = json!({"url": "https://x.service.signalr.net/client/?hub=notifications", "accessToken": "t"});
        let string = json!(object.to_string());
        let pascal = json!({"Url": "https://u/?hub=h", "AccessToken": "t2"});
        assert_eq!(
            SignalRConnectionInfo::from_value(&object)
                .unwrap()
                .access_token,
            "t"
        );
        assert_eq!(
            SignalRConnectionInfo::from_value(&string).unwrap().url,
            "https://x.service.signalr.net/client/?hub=notifications"
        );
        assert_eq!(
            SignalRConnectionInfo::from_value(&pascal)
                .unwrap()
                .access_token,
            "t2"
        );
        assert!(SignalRConnectionInfo::from_value(&json!({"url": "u"})).is_err());
        assert!(SignalRConnectionInfo::from_value(&json!("not json")).is_err());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let info = SignalRConnectionInfo {
            url: "u".into(),
            access_token: "secret-token".into(),
        };
        assert!(!format!("{info:?}").contains("secret-token"));
    }

    #[test]
    fn output_items_are_messages_or_group_actions() {
        let items = SignalRAction::from_output(&json!([
            {"target": "notification", "arguments": [{"id": "n-1"}], "userId": "t:customer:c"},
            {"action": "add", "userId": "t:employee:e", "groupName": "t:role:admin"},
            {"nonsense": true}
        ]));
        assert_eq!(
            items[0].as_ref().unwrap(),
            &SignalRAction::to_user("t:customer:c", "notification", json!({"id": "n-1"}))
        );
        assert_eq!(
            items[1].as_ref().unwrap(),
            &SignalRAction::add_user_to_group("t:employee:e", "t:role:admin")
        );
        assert!(items[2].is_err());
    }
}
