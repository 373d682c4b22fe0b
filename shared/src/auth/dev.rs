//! The local dev issuer: signs tokens with a key kept in the app's data folder, so the API can
//! be tried with curl in local mode (`handler dev-token ...`).
//!
//! The key is an RSA-2048 private key in PKCS#8 PEM, created on first use with mode 0600 in
//! the data folder (never in the repository) and reused afterwards. Its tokens look like
//! Entra ones (RS256 with a `kid`, `iss`, `aud`, `exp`, `nbf`, `tenant_id`, and `roles` or
//! `extension_customerId`) and go through exactly the same checks. The authenticator trusts
//! it only when handed its [`DevTrust`], which the app does in local mode only.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, RSAKeyParameters, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;

use super::error::DevKeyError;
use super::principal::{is_valid_customer_id, AppRole, Role};
use crate::domain::tenant::TenantId;

/// The dev issuer's `iss`, unless configured otherwise.
pub const DEV_ISSUER: &str = "http://127.0.0.1:7071/dev";
/// The dev issuer's `aud`.
pub const DEV_AUDIENCE: &str = "api://platform-local";
/// The key's file name inside the data folder.
pub const DEV_KEY_FILE: &str = "dev-signing-key.pem";
/// Subject of dev employee tokens (client tokens use `dev-client-{customer id}`).
pub const DEV_EMPLOYEE_SUBJECT: &str = "dev-employee";

const KEY_BITS: usize = 2048;

/// Who a dev token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevSubject {
    Employee {
        roles: BTreeSet<Role>,
    },
    Client {
        customer_id: String,
    },
    /// Another service with an app-only token: `sub` and `oid` are `app_id`, `idtyp` is `app`.
    App {
        app_id: String,
        roles: BTreeSet<AppRole>,
    },
}

/// Signs dev tokens. Holds the private key; never logged (its `Debug` shows no key material).
pub struct DevIssuer {
    issuer: String,
    kid: String,
    signing: EncodingKey,
    verifying: Arc<DecodingKey>,
    key_path: PathBuf,
    created: bool,
}

/// What the authenticator needs to trust the dev issuer: its `iss`, `aud`, `kid` and public key.
#[derive(Debug, Clone)]
pub struct DevTrust {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) kid: String,
    pub(crate) key: Arc<DecodingKey>,
}

impl DevTrust {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// Dev token claims; the claim names are the authenticator's defaults (`tenant_id`,
/// `extension_customerId`, `roles`), which it uses for the dev issuer.
#[derive(Serialize)]
struct DevClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    #[serde(rename = "tenant_id")]
    tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<&'static str>>,
    #[serde(
        rename = "extension_customerId",
        skip_serializing_if = "Option::is_none"
    )]
    customer_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idtyp: Option<&'static str>,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl DevIssuer {
    /// Loads `data_dir/dev-signing-key.pem`, or creates it (and `data_dir`) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, DevKeyError> {
        let key_path = data_dir.join(DEV_KEY_FILE);
        let (key, created) = load_or_create_key(&key_path)?;
        Self::from_key(&key, key_path, created)
    }

    /// Uses another `iss` (the default is [`DEV_ISSUER`]).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        DEV_AUDIENCE
    }

    /// The `kid` of the key: its RFC 7638 thumbprint.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// True when this load created the key file.
    pub fn created_key(&self) -> bool {
        self.created
    }

    /// What to hand [`super::AuthConfig::with_dev_issuer`] so the authenticator trusts this issuer.
    pub fn trust(&self) -> DevTrust {
        DevTrust {
            issuer: self.issuer.clone(),
            audience: DEV_AUDIENCE.to_owned(),
            kid: self.kid.clone(),
            key: Arc::clone(&self.verifying),
        }
    }

    /// A signed RS256 token for `subject` in `tenant`, valid from now for `ttl`.
    pub fn token(
        &self,
        tenant: &TenantId,
        subject: DevSubject,
        ttl: Duration,
    ) -> Result<String, DevKeyError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut app = None;
        let (sub, roles, customer_id) = match &subject {
            DevSubject::Employee { roles } => (
                DEV_EMPLOYEE_SUBJECT.to_owned(),
                Some(roles.iter().map(|role| role.as_str()).collect()),
                None,
            ),
            DevSubject::Client { customer_id } if is_valid_customer_id(customer_id) => (
                format!("dev-client-{customer_id}"),
                None,
                Some(customer_id.as_str()),
            ),
            DevSubject::Client { .. } => return Err(DevKeyError::InvalidCustomerId),
            DevSubject::App { app_id, roles } if is_valid_customer_id(app_id) => {
                app = Some(app_id.clone());
                (
                    app_id.clone(),
                    Some(roles.iter().map(|role| role.as_str()).collect()),
                    None,
                )
            }
            DevSubject::App { .. } => return Err(DevKeyError::InvalidAppId),
        };
        let claims = DevClaims {
            iss: &self.issuer,
            aud: DEV_AUDIENCE,
            sub,
            tenant: tenant.as_str(),
            roles,
            customer_id,
            idtyp: app.as_ref().map(|_| "app"),
            oid: app,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| DevKeyError::Sign {
            reason: e.to_string(),
        })
    }

    fn from_key(
        key: &RsaPrivateKey,
        key_path: PathBuf,
        created: bool,
    ) -> Result<Self, DevKeyError> {
        let invalid = |reason: String| DevKeyError::InvalidKey {
            path: key_path.clone(),
            reason,
        };
        let pkcs1 = key.to_pkcs1_der().map_err(|e| invalid(e.to_string()))?;
        let n = key.n().to_bytes_be();
        let e = key.e().to_bytes_be();
        Ok(Self {
            issuer: DEV_ISSUER.to_owned(),
            kid: thumbprint(&n, &e),
            signing: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            verifying: Arc::new(DecodingKey::from_rsa_raw_components(&n, &e)),
            key_path,
            created,
        })
    }
}

impl fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// RFC 7638 SHA-256 thumbprint of an RSA public key: a `kid` that changes with the key.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let jwk = Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: Default::default(),
            n: URL_SAFE_NO_PAD.encode(n),
            e: URL_SAFE_NO_PAD.encode(e),
        }),
    };
    jwk.thumbprint(ThumbprintHash::SHA256)
}

/// The key in `path`, or a new one written there; `true` when it was created.
fn load_or_create_key(path: &Path) -> Result<(RsaPrivateKey, bool), DevKeyError> {
    match fs::read_to_string(path) {
        Ok(pem) => parse_key(path, &pem).map(|key| (key, false)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create_key(path),
        Err(source) => Err(DevKeyError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_key(path: &Path, pem: &str) -> Result<RsaPrivateKey, DevKeyError> {
    warn_if_readable_by_others(path);
    let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| DevKeyError::InvalidKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if key.size() * 8 < KEY_BITS {
        return Err(DevKeyError::InvalidKey {
            path: path.to_owned(),
            reason: format!("{} bits, at least {KEY_BITS} needed", key.size() * 8),
        });
    }
    Ok(key)
}

/// Generates a key and writes it to `path` unless another process got there first, in which
/// case that process's key is used.
fn create_key(path: &Path) -> Result<(RsaPrivateKey, bool), DevKeyError> {
    let io_error = |action: &'static str| {
        move |source| DevKeyError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_error("create the folder of"))?;
    }
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS).map_err(|e| {
        DevKeyError::Generate {
            reason: e.to_string(),
        }
    })?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| DevKeyError::Generate {
            reason: e.to_string(),
        })?;
    match crate::files::write_new_private_file(path, pem.as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the dev signing key");
            Ok((key, true))
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let pem = fs::read_to_string(path).map_err(io_error("read"))?;
            parse_key(path, &pem).map(|key| (key, false))
        }
        Err(source) => Err(io_error("write")(source)),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the dev signing key is readable by other users; run chmod 600 on it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
