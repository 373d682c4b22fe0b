//! Identity stand-ins for the API tests: fixed test RSA keys, RS256 tokens with any claims, a
//! small OpenID provider on loopback (discovery document + JWKS, counting fetches, keys
//! swappable at run time for rotation), and a fixed local dev signing key so the app does not
//! generate a fresh RSA key for every test.

#![allow(dead_code, unused_imports)]

use std::path::Path;

use serde_json::{json, Value};

#[path = "../../../shared/tests/fixtures/fake_idp.rs"]
mod fake_idp;
pub use fake_idp::{b64_json, key_a, key_b, key_c, merge, now, sign, FakeIdp, TestKey, KEY_C};

/// The audience the fake issuers' tokens are for (and the app is configured with).
pub const AUDIENCE: &str = "api://platform-tests";

/// Writes a fixed dev signing key into `data_dir` (owner-only), so the app and the test's
/// `DevIssuer` load it instead of generating a 2048-bit key per test.
pub fn install_dev_key(data_dir: &Path) {
    let path = data_dir.join(shared::auth::DEV_KEY_FILE);
    std::fs::write(&path, DEV_KEY).expect("write the dev key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the dev key");
    }
}

/// The API tests' claims: tenant `t1`, for [`AUDIENCE`].
impl FakeIdp {
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
}

/// The local dev issuer's key in the API tests (see [`install_dev_key`]).
pub const DEV_KEY: &str = KEY_C;
