//! The local service's access tokens: JWTs signed with HMAC-SHA256 by a key that lives only in
//! the running `handler local` (a new one each start), as Azure SignalR Service signs its own.
//! The audience is the service URL the token is for, `nameid` the user id (the claim the
//! service reads the user from), and they expire after [`TOKEN_LIFETIME_SECONDS`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a token is valid: long enough to connect, short enough to matter little if copied.
pub const TOKEN_LIFETIME_SECONDS: i64 = 15 * 60;

/// Why a token was refused (the reason is for logs and the 401's detail; never the token).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a JWT of three parts")]
    Malformed,
    #[error("the token's signature is not this service's")]
    Signature,
    #[error("the token was issued for another service URL")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the signing key is unusable")]
    Key,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    /// The user id (Azure SignalR Service's user claim).
    pub nameid: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks the local service's tokens.
#[derive(Clone)]
pub struct TokenKey {
    secret: [u8; 32],
}

impl TokenKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { secret }
    }

    fn mac(&self) -> Result<Hmac<Sha256>, TokenError> {
        // HMAC takes a key of any length: this does not fail.
        Hmac::<Sha256>::new_from_slice(&self.secret).map_err(|_| TokenError::Key)
    }

    /// A token for `user_id` on `audience`, valid from `now` (Unix seconds).
    pub fn mint(&self, audience: &str, user_id: &str, now: i64) -> Result<String, TokenError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = Claims {
            aud: audience.to_owned(),
            nameid: user_id.to_owned(),
            iat: now,
            exp: now + TOKEN_LIFETIME_SECONDS,
        };
        // A struct of strings and integers always serialises.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac()?;
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{signing_input}.{signature}"))
    }

    /// The claims of `token` if this key signed it for `audience` and it has not expired.
    pub fn verify(&self, token: &str, audience: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac()?;
        mac.update(format!("{header}.{payload}").as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.aud != audience {
            return Err(TokenError::Audience);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_for_its_audience_until_it_expires() {
        let key = TokenKey::random();
        let token = key
            .mint(
                "http://127.0.0.1:1/signalr/client/?hub=notifications",
                "t:customer:c",
                1000,
            )
            .unwrap();
        let claims = key
            .verify(
                &token,
                "http://127.0.0.1:1/signalr/client/?hub=notifications",
                1001,
            )
            .unwrap();
        assert_eq!(claims.nameid, "t:customer:c");
        assert_eq!(
            key.verify(&token, "http://127.0.0.1:1/signalr/client/?hub=other", 1001),
            Err(TokenError::Audience)
        );
        assert_eq!(
            key.verify(&token, &claims.aud, 1000 + TOKEN_LIFETIME_SECONDS),
            Err(TokenError::Expired)
        );
        assert_eq!(
            TokenKey::random().verify(&token, &claims.aud, 1001),
            Err(TokenError::Signature)
        );
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 3, 'x');
        assert!(key.verify(&tampered, &claims.aud, 1001).is_err());
        assert_eq!(
            key.verify("a.b", &claims.aud, 1001),
            Err(TokenError::Malformed)
        );
    }
}
