//! The local dev issuer over the real authenticator: a generated key is kept (mode 0600) and
//! reused, its tokens verify only where it is trusted, and they make the principal they say.

use std::collections::BTreeSet;
use std::time::Duration;

use shared::auth::{
    AuthConfig, AuthError, Authenticator, DevIssuer, DevKeyError, DevSubject, IssuerConfig,
    PrincipalKind, Role, DEV_AUDIENCE, DEV_ISSUER, DEV_KEY_FILE,
};
use shared::store::TenantId;

/// A test-only key (openssl genpkey, PKCS#8), written where a generated one would be, so that
/// only one test pays for RSA key generation in a debug build.
const FIXTURE_KEY: &str = "\
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

/// A second test-only key.
const OTHER_KEY: &str = "\
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
