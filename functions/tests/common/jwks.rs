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

// Test-only RSA-2048 keys (openssl genpkey, PKCS#8). Never used outside these tests.

pub const KEY_A: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VAJa9UO48h13
LvgEwq8LXm7J96pH20nizGCb4S6dhX0X9OeHbghgBGx0yb7h+CrRXgQfINe8hPUA
F0cD0tg2z+yqTyJWO/GDcf+N8+wTu/LtURunnH4DnL71PNBM7VcfUtQsWgf+LJzY
3nXeUIoIF0wln3tDY4YFf/AEok7eYYHA8ywTa/7EM2zdWXM910TDgGTty8o7Mw9t
cANjS3QZEuCHuPGHVgFPRgo/RWyTPyZSCmSgHzGMiT1vQuqVi5M5tqDRuLhICbke
5QqwFKJ5YTMcLjcNKtib/twfWyD6peAkOXT5v9F0K6w9+lzr2rqW0eTmyzJ217Xf
hFABwcZpAgMBAAECggEACPh5C+bInVHP1iokQ6MYi5J0Ovz+lSYTy9X2buSJzU6M
CuKGF1rOMR3pHS8fklXmZAQM7bouhpc13dEfjBfz1W0f09iKCAfjFQS3pJI4nQnQ
NGvgx4YjlTPzg44r2fE4LbZzVWPi09nKUYrWqWShNYm7EmaomhWpIHiL04b7wKOk
5rVeoPXAT6XkSlwrYu9PKbIgbGdLSjxIzD8fXJaANixDCuvTiMgqAaJ1ldTi6Clp
CSPzbP3vMo8vHuE4akoz07oXTDrz22mKHFHfLO5xlgTR9tpMYUIUhFDNFb7ClcJM
yfnMU3rBMaQaxX+kQULEtcM5Z5yh6Vgn/2WmHW7WgQKBgQDxXK6C19jgAhw4L6tT
hYiIXf6udnQbT2L5SYMxUD1qZCz9LmJpai6Qb6NkrAvDFMHa99PuSmhwyIz+7xKw
iVU7aYQ86iu63ThSO/9OF64UzT9llCTRnFWZQb4oaL2t2voWrT55SJ6M+kfkwZzt
152JXY+69uP8zTWYsRHavWlFgQKBgQDGsGm1IBhYFIL8fxDQk9bw7YCkggfr+Xrn
Q+B0K1AgbisDE0eBgg0e+PIMXHu5qV6t0IMSgcYINkP9z1Cd7i9B2ItM7SDMph5F
OB65eyhs8fREbV9IF01RWPErFqrM5q7KfhSFVI+RWES2hVWsl2nNwXJG6HzElj6U
bwdyQJuE6QKBgCPhwnPjQPO0fJuBwres/2o+hxFKvOIegDlNS3q2UhsR/3o4Phsr
1PZWEnVx+mGrIVK7Sz9+wl4aApQX2LB0Cj7F5gnkSlICd1AKaV8juBaRmN4yEvMy
ias6EdoSEDjbeBiM8t+3AxM0ViHVAs59Iod8aFTERYqcu14S3POm+xKBAoGAf7Us
fKsgepzUhI73s9kSstE1eofJp7c3dCaAwqqEWhP1uYhO0cNRw7KngaKANBnVLUt0
tBSNwQGAOkdiveA2p9AT2WIhTukHU956gSXUGhJ6uvDB6YhwvfS5LsTnC8TKXIUl
k32Cuh1OLTMOmlzIOOQ6G7GbYJBhsO6cjqdQTuECgYEA6uloUlNc1s5IdyeLNkUR
xsr+w5ID/zCgayW21R5KcQeFGqwSom/M3cnEwhgkIVkv7aGdjVwrPAG/wpdEB3M+
Ri+r9kWWR1H7M/INctYXDc3FXEnsOBx+MezGsdyVz58YvMqJ0ITZCQXLrRwnJSrQ
qpbjFy7BRwkI5RGrK8UtDM0=
-----END PRIVATE KEY-----
";

pub const KEY_B: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDHLFQyUJSmhCe6
IuIWJjqpF0TL8ZJo5HZHjvqlVNowF1FWy3Gq99G82Dm7Fh0jSK1yluLsEq4gamHp
QBivbFRe7aIVeRWvzSCT2stejb2bpSC1MLhpmH8gJB/ja7BN5AVntaCZO/Kh8b67
u1R9gfj6MXf87vJiZQU/SxdYSNbrklCGCOwgK/+MgZUMnkTNkvvGpPzrokvW4S/2
fccT0ZD0p4EMv3dQqBD07rYWKVrk4MUImdH+Pjb6075SMYRG9IF0PP4emelBENLV
tVEMftcoIdWwT5MyKyBvHDcfaEJdj8gEqXINuhyEC/e0raljlhZWmKk1GRHKvP/U
wrkbu1RdAgMBAAECggEAMLP4xLLqnos7Uas9ALCJcJaVho9EP2z6NUZTqQEGN3NE
OwaVfXqK6XQwLbzbFCkt7JLT22k39go9dfVr8914BhxyoXCR6oKs4CrExxK+1iP7
SwMmXP/iuh/LQmevXWSQI8uIgV/k1U/RVYOZxfT1xmw5THq7f273aQI6K6boEwMu
NMNl5E+Km/Lzc4nL3uH7bSjv1IKC/ArtKkcP5yzFoMBmBoO7ZQlzpe2bu8G47XTz
TKBzKi0tg2ard4YlAIBAWxeug7hzyImCftYoTf8mVYfroytFV09u3UxYsKed+mja
ob5TCv/FZCbURU6y3EnQ0+Lm2EJw8SsQqeI/k1CLawKBgQDqsbJXhwZUDQW2m4TD
9DRkBEcdVbo+PBJAS99EdIjPfzIRemAwt63ndd6a7+I0XithRlYqZ+h6I0cLse1z
1zbKQc7OQ+6JiWs7p/EN/zvkxnPeepfZbH8tmv/6HH1tVOoD+X5C6QzxKQKuSEEb
LjDZ0lhFVmj/GzThqgX1dwlixwKBgQDZQR+Hm4tdeHI0tmSqPHxjbKQ5tPCFDbDQ
GPe5pIl6zZT1CE7fEfyehQ6oY/0AcKZQSN6or/4XHu/YidwcBhDA6XleDdo2EF1g
ilIY/QYso0htxX1xQSJv2X+TgWov43guiU3qjSkwgCpjJfoQM5yJ1IUZ1VJ3iggH
VxN7kLFruwKBgGcvhWeyN/gQWai1q6Oz5KzsrI+bN21RX/zg3uLsEZKZK9w/X7dL
qqwPSLX6Lgw0MwJruEqgsLeydvQPYIUD5FT8pf5OI7xYrMrnxbYPt7eYAS2Z3NV9
PFVCxrSifgrpwJHKydaFPGlzTHhv0CAxKM08DA9ANJ2kypVE+aW4lmnVAoGACZmn
Gwb0kZzQ7yNgL2Wc2YfjeelU94wzU/7Gc52htZuACZPkaFcTIq4eh7Jja7GOp92Q
eUPNppfnYVo2L8bU1rF6e32BNwJiHfH+zrvfmfldKfygHnESZH7n9EyztIoItYW7
u7GhMFN5jAgRlMWzFSQe/ZU/n6ip0ik24y7xqCECgYBurYfl990YfUmpHd89KRR/
e3Xd6DQc9l86EiD0nEOYdS789RmJvYisd9aP5iwc0rtiLH3fRgYHxgjZf33Ln2o9
1zwVNzpJ3k1PKbzgMJzRuUALAAHmA0QOg4YTKo8P7sj7IGGqL3zJMfFg/lvCvFcJ
qQksxDuzG7mp8WjcxlFlXg==
-----END PRIVATE KEY-----
";

pub const KEY_C: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCScYTvI67L2KKm
juw9rdG46ue7GZLZx5rXhGfPcpAh/5kiBW0709Zm/get5gJ64KGApO6LHmwTmB20
SJ7h5AA6R+hSQ41Q4TzKQdO3u31M7lFppJN9O8ULI3mbELfu3dGPJO+G32B2lXuW
90eJt8qktZDS0oOmhtPODywx2915WzHKhzfhWrPDx5SHuLuqJEPiaru2Dy4In0gv
OanEjrS9b1MUpRJG/8R89ylmLEue1xqIPi3U3fEQ7RWCljOrAQKZdeFv68UmwiEE
+6e+pvI9zGMwaEYlWrsr6nesEkaU87VTXHLGWADsku+SfNj26AhJlvc0+01K6p4j
e3OXZhGhAgMBAAECggEAJcdpXvQapPX3R/a5FVRhNU5Mh+UaEFrBJHZA/bB1ZH/2
9mLmAjgtKJbCTmd3HlIS+AgUjglEIm3sw9S0QFw8fsyML6TDsSjaMOd4gf65XX5h
vFo7vmQL+kqllY5jlRjedgo2TNoVnaIEpzaV2v5yJbm9adXrJqvDunYJlbc91I+B
P0qsMW/BlPFA4OmGX0PJ21exHWwq09OLEckHZRNs1V7saY3i/SVyYMqQo0nJY/tO
hXIxDk0bJvmU8+d9iPeZp4/1ldnDGB4ZBIuR9MiI5LLgZImjiUU9UpW2qJF2CugP
F6p1inbEZWIuGb/oV+2TkqM/bJiiyh0XC7R1MoWfrQKBgQDHmAcbJv0Clj+q3uoC
rNPFx8M9Z0RDQyRY9g+Z6yASYVrg1QcDcH6/1aroiDrLVkTldVmm1yKqKr/1rGbi
J/MHLXf29sKnBPlVHEryHwInSjrxnowYuxziwoVP/v0Z7dqP6k8LND/MpPau49uh
7hfaKUIg4hDDyZBYNwc1XPmQ1wKBgQC71DrNL+00VuaBYFVboRWLVgBSk7Kzp+cn
SbKPrHLzckQdkbIgqL1CRsVKD2ecY9DHuXhsZRnnywvjt4gKt77bh/L/HT7YyPXi
5j5aIeKD25o1kn7btkVv/1uJTiSIsXveqFYNFdZis6cKlQKLTNxsFSy53CTjIe6F
zzU5mF2KRwKBgQCdggWpkbz8O6GGsF8vOT/txlT2sfWWtveKFLP/HSO0HYvf/XyJ
ZE9CB9XVpxvutuerxE25cfDzJMVTlHekZS5OLb2L8PNvZmd0mN0z8PB8HQIjBqE8
Kv0Cncsic/E8cw2VoKw8BUGLt2rMXRhH02KTURfUZ1Ifj4MPem1/2R1BBQKBgHEy
ybFppfJ6QPdN4IOVhE9yKEWcIAHoOgZSgxvVmX2gqu6LJShLqawszLACsrXs7iHA
ZJQnJkKs+2Bk9sdGz+6sc0VPEdZC3vW9P2zAqSxAiCKrRGsT4atK4ZbRknETTgz1
tM60D31yukRFY8AiNWGqLUdiJpUAmSjppTEt44n3AoGAHE6rRcvB+7Z8Ld70q/oo
6UFwI1gFiSWZMKWvtX+YI3D+pRdAdwaJIUjIOY9PkMQudqmIPAwcAUzdT4jR4i6i
3ZxdcTU+x3H86dDLGOcQ1IKbc0/ENmS7V2WGn3Y8+mG/QPESrrT6bxT4RuZ4FL0z
PN4+rEdzMsyWHEF/nO7ocEQ=
-----END PRIVATE KEY-----
";
/// The local dev issuer's key in the API tests (see [`install_dev_key`]).
pub const DEV_KEY: &str = KEY_C;
