//! Authentication and authorisation of the API over real HTTP on loopback, with the whole app
//! in local mode and real token issuers played by small OpenID providers on loopback.
//!
//! Proves: no token is 401 with a bearer challenge on every API; every kind of bad token
//! (tampered, forged, expired, not yet valid, `alg: none`, HS256 signed with the public key,
//! unknown issuer, wrong audience, no `kid`) is 401 with a problem document that names the
//! problem and never echoes the token; the issuers configured by app settings sign in
//! employees (roles) and clients (bound to a customer); a role that may not do something gets
//! 403 and changes nothing; key rotation at an issuer is followed without restarting the app.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::jwks::{self, b64_json, key_a, key_b, key_c, sign, FakeIdp, AUDIENCE};
use common::{ApiApp, Reply};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;
use shared::auth::{AuthConfig, Authenticator, IssuerConfig, Role};

/// Every API's collection route.
const COLLECTIONS: [&str; 5] = [
    "/customers",
    "/orders",
    "/products",
    "/notifications",
    "/audit/logs",
];

/// The app with `idp` as its employees' (Entra ID) issuer.
async fn app_trusting(idp: &FakeIdp) -> ApiApp {
    let issuer = idp.issuer();
    ApiApp::start(&[
        ("AUTH_ENTRA_ISSUER", issuer.as_str()),
        ("AUTH_ENTRA_AUDIENCE", AUDIENCE),
    ])
    .await
}

async fn get_with(app: &ApiApp, path: &str, authorization: &str) -> Reply {
    Reply::read(
        app.request(Method::GET, path, None)
            .header("authorization", authorization),
    )
    .await
}

/// A 401 problem with this `code`, an `invalid_token` challenge, and no trace of `token`.
fn assert_refused(reply: &Reply, code: &str, token: &str, case: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{case}"
    );
    assert_eq!(
        reply.body["title"], "Unauthorized",
        "{case}: {}",
        reply.text
    );
    assert_eq!(reply.body["code"], code, "{case}: {}", reply.text);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{case}: {challenge}"
    );
    let mut pieces: Vec<&str> = token.split('.').filter(|piece| piece.len() > 8).collect();
    pieces.push(token);
    for piece in pieces {
        assert!(
            !reply.text.contains(piece),
            "{case}: the problem echoes the token: {}",
            reply.text
        );
        assert!(
            !challenge.contains(piece),
            "{case}: the challenge echoes the token: {challenge}"
        );
    }
}

#[tokio::test]
async fn a_request_without_a_token_is_401_with_a_bearer_challenge_on_every_api() {
    let app = ApiApp::start(&[]).await;
    for path in COLLECTIONS {
        let reply = Reply::read(app.request(Method::GET, path, None)).await;
        let problem = reply.expect_problem(401);
        assert_eq!(problem["code"], "missing_token", "{path}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
    }
    // Writes too, before the body is even looked at.
    for path in ["/customers", "/orders", "/products", "/notifications"] {
        let write = Reply::read(app.request(Method::POST, path, None).json(&json!({}))).await;
        assert_eq!(
            write.expect_problem(401)["code"],
            "missing_token",
            "POST {path}"
        );
    }
    let basic = get_with(&app, "/products", "Basic dXNlcjpwYXNz").await;
    assert_eq!(
        basic.expect_problem(401)["code"],
        "malformed_authorization_header"
    );
    assert!(!basic.text.contains("dXNlcjpwYXNz"), "{}", basic.text);
}

#[tokio::test]
async fn every_kind_of_bad_token_is_401_naming_the_problem_without_echoing_the_token() {
    let idp = FakeIdp::start("entra", &[key_a()]).await;
    let app = app_trusting(&idp).await;
    let admin = json!({"roles": ["admin"]});

    // The issuer works: a good token is accepted, so each refusal below is about its change.
    let good = idp.token(&key_a(), admin.clone());
    get_with(&app, "/customers", &format!("Bearer {good}"))
        .await
        .expect_status(200);

    let (header, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let raised = format!(
        "{header}.{}.{signature}",
        b64_json(&idp.claims(json!({"roles": ["admin"], "tenant_id": "t2"})))
    );
    let mut flipped_signature = good.clone().into_bytes();
    let middle = good.len() - 20;
    flipped_signature[middle] = if flipped_signature[middle] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let flipped_signature = String::from_utf8(flipped_signature).unwrap();
    let forged = sign(&key_b().with_kid("key-a"), &idp.claims(admin.clone()));
    let expired = idp.token(&key_a(), json!({"roles": ["admin"], "iat": jwks::now() - 7200, "nbf": jwks::now() - 7200, "exp": jwks::now() - 3600}));
    let not_yet = idp.token(
        &key_a(),
        json!({"roles": ["admin"], "nbf": jwks::now() + 3600, "exp": jwks::now() + 7200}),
    );
    let alg_none = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT", "kid": "key-a"})),
        b64_json(&idp.claims(admin.clone()))
    );
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some("key-a".into());
    let hs256_public_key = jsonwebtoken::encode(
        &hs256,
        &idp.claims(admin.clone()),
        &EncodingKey::from_secret(key_a().public_pem().as_bytes()),
    )
    .unwrap();
    let unknown_issuer = idp.token(
        &key_a(),
        json!({"roles": ["admin"], "iss": "https://login.microsoftonline.com/attacker/v2.0"}),
    );
    let wrong_audience = idp.token(
        &key_a(),
        json!({"roles": ["admin"], "aud": "api://someone-else"}),
    );
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &idp.claims(admin.clone()),
        &key_a().encoding(),
    )
    .unwrap();
    let no_tenant = idp.token(&key_a(), json!({"roles": ["admin"], "tenant_id": null}));

    let cases = [
        (
            "claims changed under the original signature",
            raised,
            "invalid_signature",
        ),
        (
            "one signature character changed",
            flipped_signature,
            "invalid_signature",
        ),
        (
            "signed by another key under the published kid",
            forged,
            "invalid_signature",
        ),
        ("expired an hour ago", expired, "token_expired"),
        ("valid only from in an hour", not_yet, "token_not_yet_valid"),
        ("alg none", alg_none, "unsupported_algorithm"),
        (
            "HS256 with the issuer's public key as secret",
            hs256_public_key,
            "unsupported_algorithm",
        ),
        (
            "from an issuer the app does not trust",
            unknown_issuer,
            "unknown_issuer",
        ),
        ("for another audience", wrong_audience, "wrong_audience"),
        ("without a kid", no_kid, "missing_key_id"),
        ("without a tenant", no_tenant, "missing_claim"),
        (
            "not a JWT at all",
            "not-a-jwt".to_owned(),
            "malformed_token",
        ),
    ];
    // Customers are enveloped by the host stand-in, products are forwarded: both paths.
    for (case, token, code) in &cases {
        for path in ["/customers", "/products"] {
            let reply = get_with(&app, path, &format!("Bearer {token}")).await;
            assert_refused(&reply, code, token, &format!("{case} on {path}"));
        }
    }
    // Nothing was written by any of them.
    let customers = app.get("/customers", &good).await;
    assert_eq!(customers.expect_status(200).body["items"], json!([]));
}

#[tokio::test]
async fn issuers_from_the_settings_sign_in_employees_with_roles_and_clients_bound_to_a_customer() {
    let entra = FakeIdp::start("entra", &[key_a()]).await;
    let external = FakeIdp::start("external", &[key_b()]).await;
    let (entra_issuer, external_issuer) = (entra.issuer(), external.issuer());
    let app = ApiApp::start(&[
        ("AUTH_ENTRA_ISSUER", entra_issuer.as_str()),
        ("AUTH_ENTRA_AUDIENCE", AUDIENCE),
        ("AUTH_EXTERNAL_ISSUER", external_issuer.as_str()),
        ("AUTH_EXTERNAL_AUDIENCE", AUDIENCE),
    ])
    .await;

    // An Entra employee with the admin role creates two customers; the claim binding clients is
    // meaningless on an employee token.
    let admin = entra.token(
        &key_a(),
        json!({"roles": ["admin"], "extension_customerId": "whoever"}),
    );
    let ada = app
        .post(
            "/customers",
            &admin,
            &json!({"name": "Ada Lovelace", "email": "ada@example.org"}),
        )
        .await;
    let ada_id = ada.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = app
        .post(
            "/customers",
            &admin,
            &json!({"name": "Bob Builder", "email": "bob@example.org"}),
        )
        .await;
    let bob_id = bob.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get("/customers", &admin).await.expect_status(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The tenant comes from the token: the same employee in another tenant sees nothing.
    let other_tenant = entra.token(&key_a(), json!({"roles": ["admin"], "tenant_id": "t2"}));
    assert_eq!(
        app.get("/customers", &other_tenant)
            .await
            .expect_status(200)
            .body["items"],
        json!([])
    );
    // Unknown role strings give no rights.
    let auditor = entra.token(&key_a(), json!({"roles": ["auditor", "Admin"]}));
    app.post(
        "/customers",
        &auditor,
        &json!({"name": "Eve", "email": "eve@example.org"}),
    )
    .await
    .expect_problem(403);

    // A client of the External ID issuer sees their own record only, whatever roles it claims.
    let client = external.token(
        &key_b(),
        json!({"extension_customerId": ada_id, "roles": ["admin"], "oid": "oid-client-ada"}),
    );
    let own = app.get(&format!("/customers/{ada_id}"), &client).await;
    assert_eq!(own.expect_status(200).body["email"], "ada@example.org");
    app.get(&format!("/customers/{bob_id}"), &client)
        .await
        .expect_problem(404);
    app.get("/audit/logs", &client).await.expect_problem(403);
    // A client token without its customer claim is refused.
    let unbound = external.token(&key_b(), json!({}));
    assert_refused(
        &app.get("/customers", &unbound).await,
        "missing_claim",
        &unbound,
        "client without customer",
    );
    // One issuer's key does not vouch for the other issuer's tokens.
    let crossed = sign(
        &key_a(),
        &external.claims(json!({"extension_customerId": ada_id})),
    );
    assert_refused(
        &app.get("/customers", &crossed).await,
        "unknown_key",
        &crossed,
        "crossed issuer keys",
    );
}

#[tokio::test]
async fn a_role_that_may_not_do_something_gets_403_and_changes_nothing() {
    let app = ApiApp::start(&[]).await;
    let customer = app
        .create_customer("t1", "Ada Lovelace", "ada@example.org")
        .await;
    let customer_id = customer["id"].as_str().unwrap();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap();
    let order = app.post("/orders", &app.admin("t1"), &json!({"customerId": customer_id, "items": [{"productId": product_id, "quantity": 1}]})).await;
    let order_id = order.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let customer_service = app.employee("t1", &[Role::CustomerService]);
    let order_manager = app.employee("t1", &[Role::OrderManager]);
    let no_roles = app.employee("t1", &[]);
    let client = app.client_of("t1", customer_id);
    let new_product = json!({"name": "Gadget", "category": "tools", "priceCents": 100, "currency": "EUR", "stock": 1});
    let new_customer = json!({"name": "Bob", "email": "bob@example.org"});
    let message = json!({"customerId": customer_id, "title": "Hello", "message": "Hi"});
    let forbidden: Vec<(&str, Reply)> = vec![
        (
            "customer-service creates a product",
            app.post("/products", &customer_service, &new_product).await,
        ),
        (
            "customer-service updates a product",
            app.put(
                &format!("/products/{product_id}"),
                &customer_service,
                &new_product,
            )
            .await,
        ),
        (
            "client creates a product",
            app.post("/products", &client, &new_product).await,
        ),
        (
            "order-manager reads audit logs",
            app.get("/audit/logs", &order_manager).await,
        ),
        (
            "customer-service reads audit logs",
            app.get("/audit/logs", &customer_service).await,
        ),
        (
            "client lists audit logs",
            app.get("/audit/logs", &client).await,
        ),
        (
            "client reads their own GDPR audit trail",
            app.get(&format!("/audit/gdpr/{customer_id}"), &client)
                .await,
        ),
        (
            "order-manager creates a customer",
            app.post("/customers", &order_manager, &new_customer).await,
        ),
        (
            "an employee without roles creates a customer",
            app.post("/customers", &no_roles, &new_customer).await,
        ),
        (
            "order-manager sends a notification",
            app.post("/notifications", &order_manager, &message).await,
        ),
        (
            "client sends a notification",
            app.post("/notifications", &client, &message).await,
        ),
        (
            "customer-service confirms an order",
            app.put(
                &format!("/orders/{order_id}/status"),
                &customer_service,
                &json!({"status": "confirmed"}),
            )
            .await,
        ),
        (
            "order-manager requests a customer's erasure",
            app.delete(&format!("/customers/{customer_id}"), &order_manager)
                .await,
        ),
    ];
    for (case, reply) in &forbidden {
        assert_eq!(reply.status, 403, "{case}: {}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{case}"
        );
        assert_eq!(reply.body["title"], "Forbidden", "{case}: {}", reply.text);
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("may not")),
            "{case}: {}",
            reply.text
        );
    }

    // Nothing changed: one product with its stock less the order, one customer, a pending
    // order, no notification, no erasure.
    let admin = app.admin("t1");
    let products = app.get("/products", &admin).await;
    assert_eq!(
        products.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        products.text
    );
    assert_eq!(products.body["items"][0]["name"], "Widget");
    assert_eq!(products.body["items"][0]["stock"], 9);
    assert_eq!(
        app.get("/customers", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get(&format!("/orders/{order_id}"), &admin).await.body["status"],
        "pending"
    );
    assert_eq!(
        app.get("/notifications", &client).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/customers/{customer_id}"), &admin)
            .await
            .body["status"],
        "active"
    );
    assert!(app.messages_on("gdpr-requests").await.is_empty());
}

#[tokio::test]
async fn rotation_to_a_key_the_issuer_published_ahead_is_followed_without_a_restart() {
    // Entra ID publishes the next signing key in its JWKS before it signs with it. The app,
    // configured by settings only, takes both at its first fetch.
    let idp = FakeIdp::start("entra", &[key_a(), key_b()]).await;
    let app = app_trusting(&idp).await;
    let before = idp.token(&key_a(), json!({"roles": ["admin"]}));
    app.get("/products", &before).await.expect_status(200);

    // The issuer rotates: it signs with B and withdraws A.
    idp.set_keys(&[key_b()]);
    let after = idp.token(&key_b(), json!({"roles": ["admin"]}));
    app.get("/products", &after).await.expect_status(200);
    app.post("/products", &after, &json!({"name": "Gadget", "category": "tools", "priceCents": 100, "currency": "EUR", "stock": 1}))
        .await
        .expect_status(201);
    assert_eq!(idp.jwks_fetches(), 1, "both keys came with the first fetch");

    // A made-up kid right after a fetch is refused without asking the issuer again.
    let made_up = sign(
        &key_c().with_kid("made-up"),
        &idp.claims(json!({"roles": ["admin"]})),
    );
    assert_refused(
        &app.get("/products", &made_up).await,
        "unknown_key",
        &made_up,
        "made-up kid",
    );
    assert_refused(
        &app.get("/products", &made_up).await,
        "unknown_key",
        &made_up,
        "made-up kid again",
    );
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "an unknown kid within the refetch interval fetches nothing"
    );
}

#[tokio::test]
async fn a_token_with_a_new_kid_makes_the_app_refetch_the_issuers_keys_once_the_interval_allows() {
    // The refetch interval (5 minutes by default) is not an app setting, so this test builds
    // the app's authenticator as `AppState::open` does for AUTH_ENTRA_ISSUER/AUDIENCE, with a
    // one-second interval, and serves the whole app with it.
    let interval = Duration::from_secs(1);
    let idp = FakeIdp::start("entra", &[key_a()]).await;
    let issuer = idp.issuer();
    let app = ApiApp::start_with(
        &[
            ("AUTH_ENTRA_ISSUER", issuer.as_str()),
            ("AUTH_ENTRA_AUDIENCE", AUDIENCE),
        ],
        |state| {
            let config = AuthConfig {
                refetch_interval: interval,
                ..AuthConfig::default()
            }
            .with_issuer(
                IssuerConfig::employee(issuer.as_str(), AUDIENCE)
                    .with_tenant_claim(&state.settings.auth.tenant_claim),
            );
            state.parts_mut().authenticator =
                Arc::new(Authenticator::new(config).expect("valid auth config"));
        },
    )
    .await;
    let old = idp.token(&key_a(), json!({"roles": ["admin"]}));
    app.get("/products", &old).await.expect_status(200);
    assert_eq!(idp.jwks_fetches(), 1);

    // The issuer rotates to a new key with a new kid, withdrawing the old one.
    idp.set_keys(&[key_b()]);
    let new = idp.token(&key_b(), json!({"roles": ["admin"]}));
    tokio::time::sleep(interval + Duration::from_millis(200)).await;
    app.get("/products", &new).await.expect_status(200);
    app.get("/customers", &new).await.expect_status(200);
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "one refetch for the new kid, then cached"
    );

    // The withdrawn key went with the refetch: the old token, accepted before, is refused now.
    assert_refused(
        &app.get("/products", &old).await,
        "unknown_key",
        &old,
        "token of the withdrawn key",
    );
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "within the interval, no further fetch"
    );
}

#[tokio::test]
async fn key_rotation_with_an_unknown_kid_works_with_the_apps_own_settings() {
    let idp = FakeIdp::start("entra", &[key_a()]).await;
    let issuer = idp.issuer();
    let app = ApiApp::start(&[
        ("AUTH_ENTRA_ISSUER", issuer.as_str()),
        ("AUTH_ENTRA_AUDIENCE", AUDIENCE),
        ("AUTH_KEY_REFETCH_SECONDS", "1"),
    ])
    .await;
    let old = idp.token(&key_a(), json!({"roles": ["admin"]}));
    app.get("/products", &old).await.expect_status(200);

    idp.set_keys(&[key_b()]);
    let new = idp.token(
        &key_b(),
        json!({"roles": ["admin"], "exp": jwks::now() + 900}),
    );
    assert_refused(
        &app.get("/products", &new).await,
        "unknown_key",
        &new,
        "new kid within the interval",
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.get("/products", &new).await.expect_status(200);
    assert_eq!(idp.jwks_fetches(), 2);
}

/// An employee token without a known app role (no `roles` claim, an empty one, or only roles
/// this API does not know) reads and changes nothing: 403 on every operation, including the
/// reads of customers' personal data, and no order is placed.
#[tokio::test]
async fn an_employee_without_a_known_role_gets_403_on_every_operation() {
    let idp = FakeIdp::start("entra", &[key_a()]).await;
    let app = app_trusting(&idp).await;
    let customer = app
        .create_customer("t1", "Ada Lovelace", "ada@example.org")
        .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    let order = app
        .post(
            "/orders",
            &app.admin("t1"),
            &json!({"customerId": customer_id, "items": [{"productId": product_id, "quantity": 1}]}),
        )
        .await;
    let order_id = order.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let tokens = [
        ("no roles claim", idp.token(&key_a(), json!({}))),
        ("empty roles", idp.token(&key_a(), json!({"roles": []}))),
        (
            "unknown roles",
            idp.token(&key_a(), json!({"roles": ["superuser", "Admin", "ADMIN"]})),
        ),
        (
            "unknown single role",
            idp.token(&key_a(), json!({"roles": "root"})),
        ),
        ("dev token without roles", app.employee("t1", &[])),
    ];
    let new_order =
        json!({"customerId": customer_id, "items": [{"productId": product_id, "quantity": 1}]});
    for (case, token) in &tokens {
        let bearer = format!("Bearer {token}");
        let reads = [
            "/customers".to_owned(),
            format!("/customers/{customer_id}"),
            format!("/customers/{customer_id}/orders"),
            "/orders".to_owned(),
            format!("/orders/{order_id}"),
            format!("/orders/{order_id}/history"),
            "/products".to_owned(),
            format!("/products/{product_id}"),
            "/notifications".to_owned(),
            "/audit/logs".to_owned(),
        ];
        for path in &reads {
            let reply = get_with(&app, path, &bearer).await;
            assert_eq!(reply.status, 403, "{case}: GET {path}: {}", reply.text);
            assert!(
                !reply.text.contains("ada@example.org") && !reply.text.contains("Ada Lovelace"),
                "{case}: GET {path} leaks personal data: {}",
                reply.text
            );
        }
        let writes = [
            ("POST /orders", app.post("/orders", token, &new_order).await),
            (
                "POST /customers",
                app.post(
                    "/customers",
                    token,
                    &json!({"name": "Bob", "email": "bob@example.org"}),
                )
                .await,
            ),
            (
                "DELETE /customers/{id}",
                app.delete(&format!("/customers/{customer_id}"), token)
                    .await,
            ),
        ];
        for (operation, reply) in &writes {
            assert_eq!(reply.status, 403, "{case}: {operation}: {}", reply.text);
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{case}: {operation}"
            );
            assert!(
                reply.body["detail"]
                    .as_str()
                    .is_some_and(|detail| detail.contains("app roles")),
                "{case}: {operation}: {}",
                reply.text
            );
        }
    }

    // Nothing was placed: still the one order, and the stock less only that order.
    let admin = app.admin("t1");
    let orders = app.get("/orders", &admin).await;
    assert_eq!(
        orders.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        orders.text
    );
    let product = app.get(&format!("/products/{product_id}"), &admin).await;
    assert_eq!(product.body["stock"], 9, "{}", product.text);
}
