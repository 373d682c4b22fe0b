//! What authentication can fail with: per request ([`AuthError`]), at start-up
//! ([`AuthConfigError`]), and for the local dev issuer ([`DevKeyError`]).
//!
//! Every request error has a short public message that says what is wrong without echoing the
//! token or any claim value (claim *names* and issuer URLs come from our own configuration and
//! are safe to show). [`AuthError::is_server_side`] separates "your token is bad" (401) from
//! "we cannot check tokens right now" (503).

use std::path::PathBuf;

use http::StatusCode;

/// Why a request could not be authenticated.
///
/// `Display` is meant for logs; [`AuthError::public_message`] for the response body. The two
/// differ only for server-side errors, whose log line names the issuer and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("the request has no bearer token; send 'Authorization: Bearer <token>'")]
    MissingToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("the Authorization header is not of the form 'Bearer <token>'")]
    MalformedHeader,
    /// Not a JWS compact token (three base64url parts with a JSON header and payload).
    #[error("the bearer token is not a well-formed JWT")]
    MalformedToken,
    /// Any `alg` other than RS256 (`none`, HS256, ...), refused before any key is looked up.
    #[error("the token is not signed with RS256, the only algorithm accepted")]
    UnsupportedAlgorithm,
    /// The header has no `kid`, so the signing key cannot be chosen.
    #[error("the token header has no 'kid' (key id)")]
    MissingKeyId,
    /// The `iss` claim is not one of the configured issuers.
    #[error("the token's issuer is not trusted by this API")]
    UnknownIssuer,
    /// The issuer does not publish a key with the token's `kid`, even after a refetch.
    #[error("the token is signed with a key its issuer does not publish")]
    UnknownKey,
    /// The signature does not verify with the issuer's key.
    #[error("the token's signature is invalid")]
    InvalidSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` does not name this API.
    #[error("the token is not meant for this API (wrong audience)")]
    WrongAudience,
    /// A claim this API needs is absent. `claim` is the claim's name, never its value.
    #[error("the token has no '{claim}' claim")]
    MissingClaim { claim: String },
    /// A claim has the wrong type or form. `claim` is the claim's name, never its value.
    #[error("the token's '{claim}' claim has an invalid value")]
    InvalidClaim { claim: String },
    /// The issuer's signing keys cannot be fetched (network, HTTP status, bad document).
    #[error("cannot fetch the signing keys of issuer {issuer}: {reason}")]
    KeysUnavailable { issuer: String, reason: String },
}

impl AuthError {
    /// True when the fault is ours or the identity provider's, not the caller's: answer 503
    /// (with `Retry-After`) rather than 401, so clients do not throw away a good token.
    pub fn is_server_side(&self) -> bool {
        matches!(self, Self::KeysUnavailable { .. })
    }

    /// The HTTP status this error should be answered with: 401, or 503 when server-side.
    pub fn status(&self) -> StatusCode {
        if self.is_server_side() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    /// What to tell the caller: what is wrong, with no token or claim value in it.
    pub fn public_message(&self) -> String {
        match self {
            Self::KeysUnavailable { .. } => {
                "the identity provider's signing keys cannot be fetched right now; try again later"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }

    /// A stable machine-readable code (for a problem document's extension member or metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::MalformedHeader => "malformed_authorization_header",
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::MissingKeyId => "missing_key_id",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim { .. } => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::KeysUnavailable { .. } => "signing_keys_unavailable",
        }
    }

    /// The `WWW-Authenticate` value for a 401 (RFC 6750 section 3); `None` for server-side errors.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::KeysUnavailable { .. } => None,
            Self::MissingToken => Some("Bearer".to_owned()),
            other => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quoted_string_body(&other.public_message())
            )),
        }
    }

    pub(crate) fn missing_claim(claim: &str) -> Self {
        Self::MissingClaim {
            claim: claim.to_owned(),
        }
    }

    pub(crate) fn invalid_claim(claim: &str) -> Self {
        Self::InvalidClaim {
            claim: claim.to_owned(),
        }
    }

    /// Maps a `jsonwebtoken` verification error (signature and registered claims) to ours.
    pub(crate) fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::InvalidSignature => Self::InvalidSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidIssuer => Self::UnknownIssuer,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                Self::UnsupportedAlgorithm
            }
            ErrorKind::MissingRequiredClaim(claim) => Self::missing_claim(claim),
            ErrorKind::InvalidClaimFormat(claim) => Self::invalid_claim(claim),
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => Self::MalformedToken,
            // A key that cannot verify anything (bad modulus, provider failure) means the
            // signature cannot be accepted.
            _ => Self::InvalidSignature,
        }
    }
}

/// Escapes `"` and `\` for use inside an HTTP quoted-string.
fn quoted_string_body(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// An authentication configuration that cannot be used; stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("no token issuer is configured; configure at least one employee or client issuer")]
    NoIssuers,
    #[error("issuer {issuer} is configured twice; each issuer URL may appear once")]
    DuplicateIssuer { issuer: String },
    #[error("issuer {issuer:?} cannot be used: {problem}")]
    InvalidIssuer { issuer: String, problem: String },
    #[error("invalid authentication setting {setting}: {problem}")]
    InvalidSetting {
        setting: &'static str,
        problem: String,
    },
    #[error("cannot build the HTTP client that fetches signing keys: {reason}")]
    HttpClient { reason: String },
}

/// What the local dev issuer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    #[error("cannot {action} the dev signing key {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the dev signing key {} is not an RSA private key in PKCS#8 PEM ({reason}); \
         delete it and a new one is created on next use",
        path.display()
    )]
    InvalidKey { path: PathBuf, reason: String },
    #[error("cannot generate the dev signing key: {reason}")]
    Generate { reason: String },
    #[error("invalid customer id for a dev token: use 1 to 128 letters, digits, '-' or '_'")]
    InvalidCustomerId,
    #[error("invalid app id for a dev token: use 1 to 128 letters, digits, '-' or '_'")]
    InvalidAppId,
    #[error("cannot sign the dev token: {reason}")]
    Sign { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_fetch_failures_are_server_side() {
        let down = AuthError::KeysUnavailable {
            issuer: "https://login.example/t/v2.0".into(),
            reason: "connection refused".into(),
        };
        assert!(down.is_server_side());
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(down.www_authenticate().is_none());
        assert!(!down.public_message().contains("connection refused"));
        assert!(!AuthError::Expired.is_server_side());
        assert_eq!(AuthError::Expired.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn www_authenticate_follows_rfc_6750() {
        assert_eq!(
            AuthError::MissingToken.www_authenticate().as_deref(),
            Some("Bearer")
        );
        let value = AuthError::missing_claim("tenant_id").www_authenticate();
        assert_eq!(
            value.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"the token has no 'tenant_id' claim\"")
        );
    }
}
