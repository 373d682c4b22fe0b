//! Identity stand-ins for the API tests: fixed test RSA keys, RS256 tokens with any claims, a
//! small OpenID provider on loopback (discovery document + JWKS, counting fetches, keys
//! swappable at run time for rotation), and a fixed local dev signing key so the app does not
//! generate a fresh RSA key for every test.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// The audience the fake issuers' tokens are for (and the app is configured with).
pub const AUDIENCE: &str = "api://platform-tests";

/// A signing key with the `kid` an issuer publishes it under.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub private: RsaPrivateKey,
}

impl TestKey {
    pub fn from_pem(kid: &str, pem: &str) -> Self {
        Self { kid: kid.into(), private: RsaPrivateKey::from_pkcs8_pem(pem).expect("test key PEM") }
    }

    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.into();
        self
    }

    pub fn encoding(&self) -> EncodingKey {
        let der = self.private.to_pkcs1_der().expect("PKCS#1 DER");
        EncodingKey::from_rsa_der(der.as_bytes())
    }

    /// The public key in PEM (SPKI), as an attacker would find it published.
    pub fn public_pem(&self) -> String {
        self.private.to_public_key().to_public_key_pem(LineEnding::LF).expect("public key PEM")
    }

    /// The public key as a JWKS lists it (Entra style: `use`, no `alg`).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(self.private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(self.private.e().to_bytes_be()),
        })
    }
}

pub fn key_a() -> TestKey {
    TestKey::from_pem("key-a", KEY_A)
}

pub fn key_b() -> TestKey {
    TestKey::from_pem("key-b", KEY_B)
}

pub fn key_c() -> TestKey {
    TestKey::from_pem("key-c", KEY_C)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since_epoch.as_secs()).expect("seconds fit i64")
}

/// An RS256 token over `claims`, with `key`'s kid.
pub fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding()).expect("signed token")
}

/// base64url of a JSON value, as a JWS segment.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `base` with `overrides` merged in (`null` removes a claim).
pub fn merge(mut base: Value, overrides: Value) -> Value {
    let (Value::Object(map), Value::Object(overrides)) = (&mut base, overrides) else {
        panic!("claims are objects");
    };
    for (name, value) in overrides {
        if value.is_null() {
            map.remove(&name);
        } else {
            map.insert(name, value);
        }
    }
    base
}

/// Writes a fixed dev signing key into `data_dir` (owner-only), so the app and the test's
/// `DevIssuer` load it instead of generating a 2048-bit key per test.
pub fn install_dev_key(data_dir: &Path) {
    let path = data_dir.join(shared::auth::DEV_KEY_FILE);
    std::fs::write(&path, DEV_KEY).expect("write the dev key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod the dev key");
    }
}

/// What the fake identity provider serves, and what it has been asked.
struct IdpState {
    base: String,
    keys: Mutex<Vec<Value>>,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

/// An OpenID provider stand-in on 127.0.0.1: `{issuer}/.well-known/openid-configuration`
/// pointing at `{issuer}/keys`. Stops when dropped.
pub struct FakeIdp {
    state: Arc<IdpState>,
    path: String,
    server: tokio::task::JoinHandle<()>,
}

impl FakeIdp {
    /// An issuer at `http://127.0.0.1:{port}/{path}` publishing `keys`.
    pub async fn start(path: &str, keys: &[TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(IdpState {
            base,
            keys: Mutex::new(keys.iter().map(TestKey::jwk).collect()),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(&format!("/{path}/.well-known/openid-configuration"), get(discovery))
            .route(&format!("/{path}/keys"), get(jwks))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, path: path.to_owned(), server }
    }

    /// The `iss` of this provider's tokens (and the app setting naming it).
    pub fn issuer(&self) -> String {
        format!("{}/{}", self.state.base, self.path)
    }

    /// Valid claims (for [`AUDIENCE`], tenant `t1`, valid for ten minutes) with `overrides`.
    pub fn claims(&self, overrides: Value) -> Value {
        let now = now();
        let base = json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "sub": "sub-of-the-caller",
            "oid": "oid-employee-1",
            "tenant_id": "t1",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
        });
        merge(base, overrides)
    }

    /// A token signed by `key` with [`FakeIdp::claims`].
    pub fn token(&self, key: &TestKey, overrides: Value) -> String {
        sign(key, &self.claims(overrides))
    }

    /// Publishes `keys` from now on (rotation).
    pub fn set_keys(&self, keys: &[TestKey]) {
        *self.state.keys.lock().expect("keys lock") = keys.iter().map(TestKey::jwk).collect();
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(state): State<Arc<IdpState>>, uri: axum::http::Uri) -> Json<Value> {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let issuer_path = uri.path().trim_end_matches("/.well-known/openid-configuration");
    Json(json!({
        "issuer": format!("{}{issuer_path}", state.base),
        "jwks_uri": format!("{}{issuer_path}/keys", state.base),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = state.keys.lock().expect("keys lock").clone();
    Json(json!({ "keys": keys }))
}

// Test-only RSA-2048 keys (openssl genpkey, PKCS#8), shared with the auth tests of `shared`.
include!("../../../shared/tests/fixtures/test_keys.rs");

/// The local dev issuer's key in the API tests (see [`install_dev_key`]).
pub const DEV_KEY: &str = KEY_C;
