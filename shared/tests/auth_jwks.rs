//! Bearer-token validation against a real identity provider stand-in: a small OpenID
//! configuration + JWKS server on loopback, serving keys this test signs with.
//!
//! Covers the accepted tokens (employee with roles, client with customer), every refusal
//! (signature, lifetime, audience, issuer, algorithm, claims, header), key rotation with its
//! rate limit, concurrent first requests, and an unreachable or failing key endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use shared::auth::{
    AuthConfig, AuthError, Authenticator, IssuerConfig, Principal, PrincipalKind, Role,
};
use shared::domain::tenant::TenantId;

#[path = "fixtures/fake_idp.rs"]
mod fake_idp;
use fake_idp::{b64_json, key_a, key_b, key_c, merge, now, sign, FakeIdp, TestKey};

const AUDIENCE: &str = "api://platform";

// ---------------------------------------------------------------------------------------------
// Accepted tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_employee_token_yields_its_tenant_subject_and_known_roles() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let claims = json!({"roles": ["admin", "order-manager", "Admin", "auditor"]});
    let principal = auth
        .authenticate(Some(&idp.bearer(&key_a(), claims)))
        .await
        .expect("accepted");

    assert_eq!(
        principal,
        Principal {
            subject: "oid-employee-1".into(),
            tenant: TenantId::new("contoso").expect("tenant"),
            kind: PrincipalKind::Employee {
                roles: [Role::Admin, Role::OrderManager].into()
            },
        }
    );
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    // Cached: a second request fetches nothing.
    let again = auth
        .authenticate(Some(&idp.bearer(&key_a(), json!({}))))
        .await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn a_client_token_is_bound_to_its_customer() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = Authenticator::new(
        AuthConfig::default().with_issuer(IssuerConfig::client(idp.issuer(), AUDIENCE)),
    )
    .expect("valid config");
    let claims = json!({"extension_customerId": "cust-42", "roles": ["admin"]});
    let principal = auth
        .authenticate(Some(&idp.bearer(&key_a(), claims)))
        .await
        .expect("accepted");
    assert_eq!(
        principal.kind,
        PrincipalKind::Client {
            customer_id: "cust-42".into()
        }
    );
    assert!(
        !principal.has_role(Role::Admin),
        "a client never has employee roles"
    );

    let without_customer = idp.bearer(&key_a(), json!({"extension_customerId": null}));
    assert_eq!(
        auth.authenticate(Some(&without_customer)).await,
        Err(AuthError::MissingClaim {
            claim: "extension_customerId".into()
        })
    );
}

#[tokio::test]
async fn claim_names_and_jwks_uri_are_configurable() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let issuer = IssuerConfig::client(idp.issuer(), AUDIENCE)
        .with_tenant_claim("extension_tenant")
        .with_customer_claim("extension_0a1b_customerId")
        .with_jwks_uri(idp.jwks_uri());
    let auth = Authenticator::new(AuthConfig::default().with_issuer(issuer)).expect("valid config");
    let claims = json!({"tenant_id": null, "extension_tenant": "fabrikam",
                        "extension_0a1b_customerId": "c-9", "oid": null, "sub": "sub-9"});
    let principal = auth
        .authenticate(Some(&idp.bearer(&key_a(), claims)))
        .await
        .expect("accepted");
    assert_eq!(principal.tenant.as_str(), "fabrikam");
    assert_eq!(principal.customer_id(), Some("c-9"));
    assert_eq!(
        principal.subject, "sub-9",
        "sub is the subject when there is no oid"
    );
    assert_eq!(
        (idp.discovery_fetches(), idp.jwks_fetches()),
        (0, 1),
        "no discovery needed"
    );
}

#[tokio::test]
async fn employees_and_clients_of_several_issuers_are_told_apart_by_iss() {
    let workforce = FakeIdp::serving(&[key_a()]).await;
    let customers = FakeIdp::serving(&[key_b()]).await;
    let auth = Authenticator::new(
        AuthConfig::default()
            .with_issuer(IssuerConfig::employee(workforce.issuer(), AUDIENCE))
            .with_issuer(IssuerConfig::client(customers.issuer(), AUDIENCE)),
    )
    .expect("valid config");
    let claims = json!({"extension_customerId": "c1", "roles": ["admin"]});
    let employee = auth
        .authenticate(Some(&workforce.bearer(&key_a(), claims.clone())))
        .await;
    assert!(employee.expect("employee").has_role(Role::Admin));
    let client = auth
        .authenticate(Some(&customers.bearer(&key_b(), claims)))
        .await;
    assert_eq!(client.expect("client").customer_id(), Some("c1"));

    // A key of one issuer does not vouch for the other issuer's tokens.
    let crossed = customers.bearer(&key_a(), json!({"extension_customerId": "c1"}));
    assert_eq!(
        auth.authenticate(Some(&crossed)).await,
        Err(AuthError::UnknownKey)
    );
}

// ---------------------------------------------------------------------------------------------
// Refused tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let token = idp.token(&key_a(), json!({"roles": ["customer-service"]}));
    let (header, rest) = token.split_once('.').expect("compact JWS");
    let (_, signature) = rest.split_once('.').expect("compact JWS");

    // Same header and signature, claims raised to admin.
    let payload = idp.claims(json!({"roles": ["admin"]}));
    let raised = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    assert_eq!(
        auth.authenticate(Some(&bearer(&raised))).await,
        Err(AuthError::InvalidSignature)
    );

    // One flipped signature byte.
    let mut sig = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    sig[10] ^= 0x01;
    let flipped = format!(
        "{}.{}",
        &token[..token.rfind('.').expect("dot")],
        URL_SAFE_NO_PAD.encode(sig)
    );
    assert_eq!(
        auth.authenticate(Some(&bearer(&flipped))).await,
        Err(AuthError::InvalidSignature)
    );

    // A valid signature by another key, under the published key's kid.
    let forged = sign(&key_b().with_kid(&key_a().kid), &idp.claims(json!({})));
    assert_eq!(
        auth.authenticate(Some(&bearer(&forged))).await,
        Err(AuthError::InvalidSignature)
    );

    // The untouched token still passes: the refusals above are about the changes.
    assert!(auth.authenticate(Some(&bearer(&token))).await.is_ok());
}

#[tokio::test]
async fn token_lifetime_is_checked_with_the_allowed_clock_skew() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default()); // 60 s leeway
    let now = now();
    let cases = [
        (json!({"exp": now - 120}), Err(AuthError::Expired)),
        (json!({"exp": now - 30}), Ok(())),
        (json!({"nbf": now + 300}), Err(AuthError::NotYetValid)),
        (json!({"nbf": now + 30}), Ok(())),
        (
            json!({"exp": null}),
            Err(AuthError::MissingClaim {
                claim: "exp".into(),
            }),
        ),
    ];
    for (claims, expected) in cases {
        let result = auth
            .authenticate(Some(&idp.bearer(&key_a(), claims.clone())))
            .await;
        assert_eq!(result.map(|_| ()), expected, "claims {claims}");
    }

    let strict = idp.employee_authenticator(AuthConfig {
        leeway: Duration::ZERO,
        ..AuthConfig::default()
    });
    let just_expired = idp.bearer(&key_a(), json!({"exp": now - 30}));
    assert_eq!(
        strict.authenticate(Some(&just_expired)).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let other = idp.bearer(&key_a(), json!({"aud": "api://someone-else"}));
    assert_eq!(
        auth.authenticate(Some(&other)).await,
        Err(AuthError::WrongAudience)
    );
    let none = idp.bearer(&key_a(), json!({"aud": null}));
    assert_eq!(
        auth.authenticate(Some(&none)).await,
        Err(AuthError::MissingClaim {
            claim: "aud".into()
        })
    );
    let listed = idp.bearer(&key_a(), json!({"aud": ["api://someone-else", AUDIENCE]}));
    assert!(
        auth.authenticate(Some(&listed)).await.is_ok(),
        "an aud list naming us is fine"
    );
}

#[tokio::test]
async fn a_token_from_an_unknown_issuer_is_refused_without_fetching_keys() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let lookalike = format!("{}/", idp.issuer());
    for iss in [
        json!("https://login.microsoftonline.com/attacker/v2.0"),
        json!(lookalike),
    ] {
        let token = idp.bearer(&key_a(), json!({"iss": iss}));
        assert_eq!(
            auth.authenticate(Some(&token)).await,
            Err(AuthError::UnknownIssuer),
            "{iss}"
        );
    }
    assert_eq!(idp.jwks_fetches() + idp.discovery_fetches(), 0);
}

#[tokio::test]
async fn alg_none_is_refused_before_any_key_lookup() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let claims = idp.claims(json!({"roles": ["admin"]}));
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": key_a().kid});
        let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&claims));
        assert_eq!(
            auth.authenticate(Some(&bearer(&unsigned))).await,
            Err(AuthError::UnsupportedAlgorithm),
            "alg {alg}"
        );
    }
    assert_eq!(idp.jwks_fetches() + idp.discovery_fetches(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_before_any_key_lookup() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let claims = idp.claims(json!({"roles": ["admin"]}));
    let public_pem = key_a().public_pem();
    for secret in [public_pem.as_bytes(), public_pem.trim_end().as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_a().kid);
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .expect("HS256 token");
        assert_eq!(
            auth.authenticate(Some(&bearer(&token))).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
    assert_eq!(idp.jwks_fetches() + idp.discovery_fetches(), 0);

    // Also refused once the real key is cached (no confusion with the cached RSA key).
    assert!(auth
        .authenticate(Some(&idp.bearer(&key_a(), json!({}))))
        .await
        .is_ok());
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_a().kid);
    let secret = EncodingKey::from_secret(public_pem.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &secret).expect("HS256 token");
    assert_eq!(
        auth.authenticate(Some(&bearer(&token))).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[tokio::test]
async fn other_rsa_algorithms_are_refused_too() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let mut header = Header::new(alg);
        header.kid = Some(key_a().kid);
        let token = jsonwebtoken::encode(&header, &idp.claims(json!({})), &key_a().encoding())
            .expect("token");
        assert_eq!(
            auth.authenticate(Some(&bearer(&token))).await,
            Err(AuthError::UnsupportedAlgorithm),
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_or_malformed_tenant_claim_is_refused_without_echoing_it() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let missing = idp.bearer(&key_a(), json!({"tenant_id": null}));
    let error = auth
        .authenticate(Some(&missing))
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        AuthError::MissingClaim {
            claim: "tenant_id".into()
        }
    );
    assert_eq!(error.public_message(), "the token has no 'tenant_id' claim");

    let personal = "jane.doe@example.com";
    let malformed = idp.bearer(&key_a(), json!({"tenant_id": personal}));
    let error = auth
        .authenticate(Some(&malformed))
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        AuthError::InvalidClaim {
            claim: "tenant_id".into()
        }
    );
    for text in [
        error.to_string(),
        error.public_message(),
        format!("{error:?}"),
    ] {
        assert!(!text.contains(personal), "claim value echoed: {text}");
        assert!(!text.contains(&malformed[7..]), "token echoed: {text}");
    }
}

#[tokio::test]
async fn missing_or_garbage_authorization_headers_are_refused() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let token = idp.token(&key_a(), json!({}));
    let cases = [
        (None, AuthError::MissingToken),
        (Some(String::new()), AuthError::MalformedHeader),
        (Some("Bearer".into()), AuthError::MalformedHeader),
        (Some(format!("Basic {token}")), AuthError::MalformedHeader),
        (
            Some(format!("Bearer {token} extra")),
            AuthError::MalformedHeader,
        ),
        (Some(token.clone()), AuthError::MalformedHeader),
        (Some("Bearer not-a-jwt".into()), AuthError::MalformedToken),
        (Some("Bearer a.b.c".into()), AuthError::MalformedToken),
        (
            Some(format!("Bearer {token}.{token}")),
            AuthError::MalformedToken,
        ),
    ];
    for (header, expected) in cases {
        let result = auth.authenticate(header.as_deref()).await;
        assert_eq!(result, Err(expected), "header {header:?}");
        let error = result.expect_err("refused");
        assert!(!error.is_server_side());
        assert!(!error.public_message().contains(&token));
    }
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let header = format!("{scheme} {token}");
        assert!(
            auth.authenticate(Some(&header)).await.is_ok(),
            "scheme {scheme}"
        );
    }
    assert_eq!(idp.jwks_fetches(), 1, "only the valid tokens needed keys");
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &idp.claims(json!({})),
        &key_a().encoding(),
    )
    .expect("token");
    assert_eq!(
        auth.authenticate(Some(&bearer(&token))).await,
        Err(AuthError::MissingKeyId)
    );
}

// ---------------------------------------------------------------------------------------------
// Keys: rotation, rate limit, sharing, outages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn key_rotation_is_picked_up_with_at_most_one_fetch_per_interval() {
    let interval = Duration::from_millis(1500);
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig {
        refetch_interval: interval,
        ..AuthConfig::default()
    });
    assert!(auth
        .authenticate(Some(&idp.bearer(&key_a(), json!({}))))
        .await
        .is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    // The issuer rotates to a new key with a new kid.
    idp.set_keys(&[key_b()]);
    let rotated = idp.bearer(&key_b(), json!({}));
    // Right after a fetch, an unknown kid does not fetch again (a flood of made-up kids
    // cannot hammer the issuer)...
    assert_eq!(
        auth.authenticate(Some(&rotated)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 1);

    // ...once the interval has passed, it does, and the new key is accepted without a restart.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let accepted = auth.authenticate(Some(&rotated)).await;
    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(idp.jwks_fetches(), 2);

    // A second unknown kid within the window: refused without another fetch.
    let unknown = idp.bearer(&key_c(), json!({}));
    assert_eq!(
        auth.authenticate(Some(&unknown)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(
        auth.authenticate(Some(&unknown)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 2);
    // The retired key went with the refetch.
    let retired = idp.bearer(&key_a(), json!({}));
    assert_eq!(
        auth.authenticate(Some(&retired)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 2);
    // The known key is still served from the cache.
    assert!(auth.authenticate(Some(&rotated)).await.is_ok());

    // After the window, the unknown kid may cause one more fetch (and is still unknown).
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    assert_eq!(
        auth.authenticate(Some(&unknown)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 3);
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "the discovered jwks_uri is reused"
    );
}

#[tokio::test]
async fn a_token_verified_before_is_refused_once_its_key_is_withdrawn() {
    let interval = Duration::from_millis(800);
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig {
        refetch_interval: interval,
        ..AuthConfig::default()
    });
    let old = idp.bearer(&key_a(), json!({}));
    assert!(auth.authenticate(Some(&old)).await.is_ok());
    assert!(
        auth.authenticate(Some(&old)).await.is_ok(),
        "a repeated token is accepted"
    );

    idp.set_keys(&[key_b()]);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    assert!(auth
        .authenticate(Some(&idp.bearer(&key_b(), json!({}))))
        .await
        .is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
    // The earlier verification of `old` no longer counts: key A is gone.
    assert_eq!(
        auth.authenticate(Some(&old)).await,
        Err(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn a_token_verified_before_still_expires() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig {
        leeway: Duration::ZERO,
        ..AuthConfig::default()
    });
    let short_lived = idp.bearer(&key_a(), json!({"exp": now() + 1}));
    assert!(auth.authenticate(Some(&short_lived)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        auth.authenticate(Some(&short_lived)).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    idp.set_jwks_delay(Duration::from_millis(300));
    let auth = Arc::new(idp.employee_authenticator(AuthConfig::default()));
    let header = idp.bearer(&key_a(), json!({"roles": ["admin"]}));
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (auth, header) = (Arc::clone(&auth), header.clone());
            tokio::spawn(async move { auth.authenticate(Some(&header)).await })
        })
        .collect();
    for request in requests {
        let principal = request.await.expect("task").expect("accepted");
        assert!(principal.has_role(Role::Admin));
    }
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn an_unreachable_key_endpoint_is_a_server_side_error() {
    let port = closed_port().await;
    let issuer = format!("http://127.0.0.1:{port}/idp");
    let auth = Authenticator::new(
        AuthConfig::default().with_issuer(IssuerConfig::employee(issuer.clone(), AUDIENCE)),
    )
    .expect("valid config");
    let token = sign(&key_a(), &base_claims(&issuer, json!({})));
    let error = auth
        .authenticate(Some(&bearer(&token)))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, AuthError::KeysUnavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_server_side());
    assert_eq!(error.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        error.to_string().contains(&issuer),
        "the log line names the issuer: {error}"
    );
    assert!(
        !error.public_message().contains(&port.to_string()),
        "no internals in the response"
    );
    assert_eq!(
        auth.prefetch_keys().await.map_err(|e| e.is_server_side()),
        Err(true)
    );
}

#[tokio::test]
async fn a_failing_key_endpoint_recovers_without_a_restart() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    idp.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    let interval = Duration::from_millis(400);
    let auth = idp.employee_authenticator(AuthConfig {
        refetch_interval: interval,
        ..AuthConfig::default()
    });
    let token = idp.bearer(&key_a(), json!({}));
    let error = auth.authenticate(Some(&token)).await.expect_err("refused");
    assert!(error.is_server_side(), "{error:?}");
    // Within the retry delay the failure is reported again, without hammering the issuer.
    let again = auth.authenticate(Some(&token)).await.expect_err("refused");
    assert!(again.is_server_side(), "{again:?}");
    assert_eq!(idp.discovery_fetches(), 1);

    idp.set_status(StatusCode::OK);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let accepted = auth.authenticate(Some(&token)).await;
    assert!(accepted.is_ok(), "{accepted:?}");
}

#[tokio::test]
async fn a_slow_key_endpoint_times_out() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    idp.set_jwks_delay(Duration::from_secs(5));
    let timeout = Duration::from_millis(300);
    let auth = idp.employee_authenticator(AuthConfig {
        fetch_timeout: timeout,
        ..AuthConfig::default()
    });
    let started = std::time::Instant::now();
    let error = auth
        .authenticate(Some(&idp.bearer(&key_a(), json!({}))))
        .await
        .expect_err("refused");
    assert!(error.is_server_side(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_withdrawn_key_goes_when_the_cache_ages_but_stale_keys_outlive_an_outage() {
    let max_age = Duration::from_millis(400);
    let idp = FakeIdp::serving(&[key_a(), key_b()]).await;
    let config = AuthConfig {
        key_max_age: max_age,
        refetch_interval: Duration::ZERO,
        ..AuthConfig::default()
    };
    let auth = idp.employee_authenticator(config);
    let with_a = idp.bearer(&key_a(), json!({}));
    let with_b = idp.bearer(&key_b(), json!({}));
    assert!(auth.authenticate(Some(&with_a)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    // The issuer is down once the cache is old: cached keys keep working.
    idp.set_status(StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(max_age + Duration::from_millis(100)).await;
    let during_outage = auth.authenticate(Some(&with_a)).await;
    assert!(during_outage.is_ok(), "{during_outage:?}");

    // The issuer is back and has withdrawn key A: the next request on the old cache drops it.
    idp.set_status(StatusCode::OK);
    idp.set_keys(&[key_b()]);
    assert_eq!(
        auth.authenticate(Some(&with_a)).await,
        Err(AuthError::UnknownKey)
    );
    assert!(auth.authenticate(Some(&with_b)).await.is_ok());
}

#[tokio::test]
async fn prefetching_fills_the_cache_before_the_first_request() {
    let idp = FakeIdp::serving(&[key_a()]).await;
    let auth = idp.employee_authenticator(AuthConfig::default());
    auth.prefetch_keys().await.expect("keys fetched");
    assert_eq!(idp.jwks_fetches(), 1);
    auth.prefetch_keys()
        .await
        .expect("fresh keys are not fetched again");
    assert_eq!(idp.jwks_fetches(), 1);
    assert!(auth
        .authenticate(Some(&idp.bearer(&key_a(), json!({}))))
        .await
        .is_ok());
    assert_eq!(idp.jwks_fetches(), 1);
}

// ---------------------------------------------------------------------------------------------
// Support: test keys, token signing, the fake identity provider
// ---------------------------------------------------------------------------------------------

/// Valid employee claims for `issuer`, with `overrides` merged in (`null` removes a claim).
fn base_claims(issuer: &str, overrides: Value) -> Value {
    let now = now();
    let claims = json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "sub-employee-1",
        "oid": "oid-employee-1",
        "tenant_id": "contoso",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
    });
    merge(claims, overrides)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}

/// This suite's use of the fake IdP: one issuer at `/idp`, employee claims of tenant `contoso`.
impl FakeIdp {
    async fn serving(keys: &[TestKey]) -> Self {
        Self::start("idp", keys).await
    }

    fn employee_authenticator(&self, config: AuthConfig) -> Authenticator {
        Authenticator::new(config.with_issuer(IssuerConfig::employee(self.issuer(), AUDIENCE)))
            .expect("valid config")
    }

    fn claims(&self, overrides: Value) -> Value {
        base_claims(&self.issuer(), overrides)
    }

    fn token(&self, key: &TestKey, overrides: Value) -> String {
        sign(key, &self.claims(overrides))
    }

    fn bearer(&self, key: &TestKey, overrides: Value) -> String {
        bearer(&self.token(key, overrides))
    }
}
