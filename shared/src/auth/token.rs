//! Getting a token out of a request and looking at it before trusting it.
//!
//! [`bearer_token`] parses the `Authorization` header. [`inspect`] reads the unverified header
//! and `iss`: just enough to refuse any algorithm but RS256 and to pick the issuer and key.
//! Nothing read here is trusted until the signature has been verified with that key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::error::AuthError;

/// Longest token accepted; Entra tokens are a few KiB, so this only stops abuse.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let token = bearer_credentials(header)?;
    check_token_syntax(token)?;
    Ok(token)
}

/// What follows `Bearer ` in an `Authorization` header, not yet checked character by character
/// (see [`check_token_syntax`]).
pub(crate) fn bearer_credentials(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::MissingToken)?.trim();
    let (scheme, token) = value
        .split_once([' ', '\t'])
        .ok_or(AuthError::MalformedHeader)?;
    let token = token.trim_start_matches([' ', '\t']);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// A token's length and its RFC 6750 `b64token` characters.
pub(crate) fn check_token_syntax(token: &str) -> Result<(), AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken);
    }
    if !token.bytes().all(|b| B64TOKEN_BYTES[usize::from(b)]) {
        return Err(AuthError::MalformedHeader);
    }
    Ok(())
}

/// RFC 6750 `b64token` characters: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" / "="`.
const fn is_b64token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// [`is_b64token_byte`] as a table: every request checks a token of a kilobyte or more, and
/// one load per byte is several times cheaper than the comparisons.
static B64TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = is_b64token_byte(byte as u8);
        byte += 1;
    }
    table
};

/// What the unverified token claims about who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unverified {
    pub kid: String,
    pub issuer: String,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct RawIssuer {
    iss: Option<serde_json::Value>,
}

/// Reads the header and `iss` of a compact JWS, refusing every `alg` but RS256 first.
pub(crate) fn inspect(token: &str) -> Result<Unverified, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken);
    };
    let header: RawHeader = decode_part(header)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    let kid = header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or(AuthError::MissingKeyId)?;
    let issuer = match decode_part::<RawIssuer>(payload)?.iss {
        Some(serde_json::Value::String(iss)) => iss,
        None | Some(serde_json::Value::Null) => return Err(AuthError::missing_claim("iss")),
        Some(_) => return Err(AuthError::invalid_claim("iss")),
    };
    Ok(Unverified { kid, issuer })
}

/// Decodes one base64url part of the token as JSON.
fn decode_part<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::MalformedToken)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", part(header), part(payload))
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(
            bearer_token(Some("bearer  abc.def.ghi ")),
            Ok("abc.def.ghi")
        );
        assert_eq!(bearer_token(Some("BEARER abc")), Ok("abc"));
    }

    #[test]
    fn other_headers_are_refused() {
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwdw==",
            "Bearerabc",
            "Bearer a b",
            "Bearer a\"b",
        ] {
            assert_eq!(
                bearer_token(Some(value)),
                Err(AuthError::MalformedHeader),
                "{value:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(bearer_token(Some(&long)), Err(AuthError::MalformedToken));
    }

    #[test]
    fn inspect_reads_kid_and_issuer() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"https://i"}"#,
        );
        assert_eq!(
            inspect(&t),
            Ok(Unverified {
                kid: "k1".into(),
                issuer: "https://i".into()
            })
        );
    }

    #[test]
    fn inspect_refuses_other_algorithms_before_anything_else() {
        for alg in [
            r#""none""#,
            r#""HS256""#,
            r#""RS384""#,
            r#""rs256""#,
            "null",
        ] {
            let t = token(
                &format!(r#"{{"alg":{alg},"kid":"k1"}}"#),
                r#"{"iss":"https://i"}"#,
            );
            assert_eq!(inspect(&t), Err(AuthError::UnsupportedAlgorithm), "{alg}");
        }
    }

    #[test]
    fn inspect_refuses_malformed_tokens() {
        assert_eq!(inspect("a.b"), Err(AuthError::MalformedToken));
        assert_eq!(inspect("a.b.c.d.e"), Err(AuthError::MalformedToken));
        assert_eq!(inspect("!!.e30.c2ln"), Err(AuthError::MalformedToken));
        let no_kid = token(r#"{"alg":"RS256"}"#, r#"{"iss":"https://i"}"#);
        assert_eq!(inspect(&no_kid), Err(AuthError::MissingKeyId));
        let no_iss = token(r#"{"alg":"RS256","kid":"k"}"#, r#"{}"#);
        assert_eq!(inspect(&no_iss), Err(AuthError::missing_claim("iss")));
        let bad_iss = token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"iss":7}"#);
        assert_eq!(inspect(&bad_iss), Err(AuthError::invalid_claim("iss")));
    }
}
