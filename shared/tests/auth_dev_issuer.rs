//! The local dev issuer over the real authenticator: a generated key is kept (mode 0600) and
//! reused, its tokens verify only where it is trusted, and they make the principal they say.

use std::collections::BTreeSet;
use std::time::Duration;

use shared::auth::{
    AuthConfig, AuthError, Authenticator, DevIssuer, DevKeyError, DevSubject, IssuerConfig,
    PrincipalKind, Role, DEV_AUDIENCE, DEV_ISSUER, DEV_KEY_FILE,
};
use shared::domain::tenant::TenantId;

include!("fixtures/test_keys.rs");
/// A test-only key, written where a generated one would be, so that only one test pays for RSA
/// key generation in a debug build.
const FIXTURE_KEY: &str = KEY_A;
/// A second test-only key.
const OTHER_KEY: &str = KEY_B;

const HOUR: Duration = Duration::from_secs(3600);

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("valid tenant id")
}

fn authenticator_trusting(dev: &DevIssuer) -> Authenticator {
    Authenticator::new(AuthConfig::default().with_dev_issuer(dev.trust())).expect("valid config")
}

fn dir_with_key(pem: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(DEV_KEY_FILE), pem).expect("write fixture key");
    dir
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn employee(roles: &[Role]) -> DevSubject {
    DevSubject::Employee {
        roles: roles.iter().copied().collect(),
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("key file metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_key_is_created_once_with_mode_0600_and_reused() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_dir = data.path().join(".data");
    let first = DevIssuer::load_or_create(&data_dir).expect("created key");
    let key_path = data_dir.join(DEV_KEY_FILE);
    assert!(first.created_key());
    assert_eq!(first.key_path(), key_path);
    let pem = std::fs::read_to_string(&key_path).expect("key file");
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM expected"
    );
    #[cfg(unix)]
    assert_eq!(mode(&key_path), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(&data_dir).expect("data dir").collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the key file is left behind: {leftovers:?}"
    );

    let second = DevIssuer::load_or_create(&data_dir).expect("loaded key");
    assert!(!second.created_key());
    assert_eq!(second.key_id(), first.key_id());
    assert_eq!(
        std::fs::read_to_string(&key_path).expect("key file"),
        pem,
        "key rewritten"
    );

    // A token of the first instance verifies against the trust of the second: same key.
    let token = first
        .token(&tenant("t1"), employee(&[Role::Admin]), HOUR)
        .expect("token");
    let principal = authenticator_trusting(&second)
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("dev token accepted");
    assert!(principal.has_role(Role::Admin));
}

#[tokio::test]
async fn employee_and_client_dev_tokens_make_the_principal_they_describe() {
    let data = dir_with_key(FIXTURE_KEY);
    let dev = DevIssuer::load_or_create(data.path()).expect("fixture key loads");
    assert!(!dev.created_key());
    assert_eq!((dev.issuer(), dev.audience()), (DEV_ISSUER, DEV_AUDIENCE));
    let authenticator = authenticator_trusting(&dev);

    let roles = [Role::CustomerService, Role::OrderManager];
    let token = dev
        .token(&tenant("contoso"), employee(&roles), HOUR)
        .expect("employee token");
    let principal = authenticator
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("employee");
    assert_eq!(principal.tenant, tenant("contoso"));
    assert_eq!(
        principal.kind,
        PrincipalKind::Employee {
            roles: BTreeSet::from(roles)
        }
    );

    let client = DevSubject::Client {
        customer_id: "cust-7".into(),
    };
    let token = dev
        .token(&tenant("fabrikam"), client, HOUR)
        .expect("client token");
    let principal = authenticator
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("client");
    assert_eq!(principal.tenant, tenant("fabrikam"));
    assert_eq!(principal.customer_id(), Some("cust-7"));
    assert_eq!(principal.subject, "dev-client-cust-7");
}

#[tokio::test]
async fn an_expired_dev_token_is_refused() {
    let data = dir_with_key(FIXTURE_KEY);
    let dev = DevIssuer::load_or_create(data.path()).expect("fixture key loads");
    let config = AuthConfig {
        leeway: Duration::ZERO,
        ..AuthConfig::default()
    };
    let authenticator =
        Authenticator::new(config.with_dev_issuer(dev.trust())).expect("valid config");
    let token = dev
        .token(&tenant("t1"), employee(&[]), Duration::ZERO)
        .expect("token");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        authenticator.authenticate(Some(&bearer(&token))).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn dev_tokens_are_refused_where_the_dev_issuer_is_not_trusted() {
    let data = dir_with_key(FIXTURE_KEY);
    let dev = DevIssuer::load_or_create(data.path()).expect("fixture key loads");
    let token = dev
        .token(&tenant("t1"), employee(&[Role::Admin]), HOUR)
        .expect("token");
    // Production-like configuration: only a remote issuer (never contacted for this token).
    let production = Authenticator::new(AuthConfig::default().with_issuer(IssuerConfig::employee(
        "https://login.example/tenant/v2.0",
        "api://platform",
    )))
    .expect("valid config");
    assert_eq!(
        production.authenticate(Some(&bearer(&token))).await,
        Err(AuthError::UnknownIssuer)
    );
}

#[tokio::test]
async fn a_token_signed_by_another_dev_key_is_refused() {
    let trusted_dir = dir_with_key(FIXTURE_KEY);
    let trusted = DevIssuer::load_or_create(trusted_dir.path()).expect("fixture key loads");
    let other_dir = dir_with_key(OTHER_KEY);
    let other = DevIssuer::load_or_create(other_dir.path()).expect("other key loads");
    assert_ne!(other.key_id(), trusted.key_id());
    let authenticator = authenticator_trusting(&trusted);

    let token = other
        .token(&tenant("t1"), employee(&[Role::Admin]), HOUR)
        .expect("token");
    assert_eq!(
        authenticator.authenticate(Some(&bearer(&token))).await,
        Err(AuthError::UnknownKey)
    );

    // The trusted key's header (its kid) on the other key's claims and signature.
    let trusted_token = trusted
        .token(&tenant("t1"), employee(&[]), HOUR)
        .expect("token");
    let (trusted_header, _) = trusted_token.split_once('.').expect("compact JWS");
    let (_, claims_and_signature) = token.split_once('.').expect("compact JWS");
    let forged = format!("{trusted_header}.{claims_and_signature}");
    assert_eq!(
        authenticator.authenticate(Some(&bearer(&forged))).await,
        Err(AuthError::InvalidSignature)
    );
}

#[tokio::test]
async fn the_dev_issuer_url_is_configurable() {
    let data = dir_with_key(FIXTURE_KEY);
    let dev = DevIssuer::load_or_create(data.path())
        .expect("fixture key loads")
        .with_issuer("http://127.0.0.1:9999/dev");
    assert_eq!(dev.trust().issuer(), "http://127.0.0.1:9999/dev");
    let client = DevSubject::Client {
        customer_id: "c1".into(),
    };
    let token = dev.token(&tenant("t1"), client, HOUR).expect("token");
    let accepted = authenticator_trusting(&dev)
        .authenticate(Some(&bearer(&token)))
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");

    let default_dev = DevIssuer::load_or_create(data.path()).expect("fixture key loads");
    let refused = authenticator_trusting(&default_dev)
        .authenticate(Some(&bearer(&token)))
        .await;
    assert_eq!(refused, Err(AuthError::UnknownIssuer));
}

#[test]
fn a_malformed_customer_id_gets_no_token() {
    let data = dir_with_key(FIXTURE_KEY);
    let dev = DevIssuer::load_or_create(data.path()).expect("fixture key loads");
    let client = DevSubject::Client {
        customer_id: "a b".into(),
    };
    let result = dev.token(&tenant("t1"), client, HOUR);
    assert!(
        matches!(result, Err(DevKeyError::InvalidCustomerId)),
        "{result:?}"
    );
}

#[test]
fn a_corrupt_key_file_is_reported_with_its_path_and_kept() {
    let data = dir_with_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    let path = data.path().join(DEV_KEY_FILE);
    let error = DevIssuer::load_or_create(data.path()).expect_err("corrupt key refused");
    assert!(matches!(error, DevKeyError::InvalidKey { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    let kept = std::fs::read_to_string(&path).expect("file kept");
    assert_eq!(kept.lines().nth(1), Some("not a key"));
}
