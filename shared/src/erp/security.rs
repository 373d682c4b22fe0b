//! WS-Security UsernameToken (OASIS Username Token Profile 1.0, `PasswordText`): the SOAP
//! header some ERPs want instead of HTTP Basic authentication. Only ever sent over TLS (the
//! settings refuse plain http except on loopback). The password is a [`Secret`]: `Debug`
//! prints `***`, and nothing logs the header.

use serde::{Deserialize, Serialize, Serializer};

use super::protocol::SoapVersion;
use crate::outbound::Secret;

const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// A user name and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password: Secret,
}

/// `<wsse:Security soap:mustUnderstand="1">` as written.
#[derive(Serialize)]
pub(super) struct SecurityOut<'a> {
    #[serde(rename = "@xmlns:wsse", serialize_with = "wsse_namespace")]
    ns: (),
    #[serde(rename = "@soap:mustUnderstand")]
    must_understand: &'static str,
    #[serde(rename = "wsse:UsernameToken")]
    token: TokenOut<'a>,
}

#[derive(Serialize)]
struct TokenOut<'a> {
    #[serde(rename = "wsse:Username")]
    username: &'a str,
    #[serde(rename = "wsse:Password")]
    password: PasswordOut<'a>,
}

#[derive(Serialize)]
struct PasswordOut<'a> {
    #[serde(rename = "@Type")]
    kind: &'static str,
    #[serde(rename = "$text")]
    value: &'a str,
}

impl<'a> SecurityOut<'a> {
    pub(super) fn new(version: SoapVersion, token: &'a UsernameToken) -> Self {
        Self {
            ns: (),
            must_understand: match version {
                SoapVersion::V11 => "1",
                SoapVersion::V12 => "true",
            },
            token: TokenOut {
                username: &token.username,
                password: PasswordOut {
                    kind: PASSWORD_TEXT,
                    value: token.password.expose(),
                },
            },
        }
    }
}

/// `Security` as read (by local names).
#[derive(Deserialize)]
pub(super) struct SecurityIn {
    #[serde(rename = "UsernameToken")]
    token: TokenIn,
}

#[derive(Deserialize)]
struct TokenIn {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Password")]
    password: PasswordIn,
}

#[derive(Deserialize)]
struct PasswordIn {
    #[serde(rename = "$text", default)]
    value: String,
}

impl From<SecurityIn> for UsernameToken {
    fn from(security: SecurityIn) -> Self {
        Self {
            username: security.token.username.trim().to_owned(),
            password: Secret::new(security.token.password.value),
        }
    }
}

fn wsse_namespace<S: Serializer>(_: &(), serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(WSSE_NS)
}
