//! Continuation tokens are tamper-evident and bound to their tenant and listing, over real HTTP
//! on loopback with the whole app in local mode: a token edited to start elsewhere, or replayed
//! by another tenant with the same filters, is a 400 problem naming `continuation`, never a
//! page read from somewhere else.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{ApiApp, Reply};
use reqwest::Method;

async fn first_token(app: &ApiApp, tenant: &str) -> String {
    let reply = app.get("/products?limit=1", &app.admin(tenant)).await;
    reply.body["continuation"]
        .as_str()
        .unwrap_or_else(|| panic!("a second page: {}", reply.text))
        .to_owned()
}

/// The token with the last character of its `"i":"…"` (the id the page starts after) changed,
/// whatever wraps it: what a client editing a token to jump elsewhere sends.
fn with_edited_position(token: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("tokens are base64url");
    let marker = b"\"i\":\"";
    let start = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the token names the last id")
        + marker.len();
    let end = start
        + bytes[start..]
            .iter()
            .position(|byte| *byte == b'"')
            .expect("closing quote");
    let last = end - 1;
    bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn page_with(app: &ApiApp, tenant: &str, token: &str) -> Reply {
    Reply::read(
        app.request(Method::GET, "/products", Some(&app.admin(tenant)))
            .query(&[("limit", "1"), ("continuation", token)]),
    )
    .await
}

#[tokio::test]
async fn an_edited_or_foreign_continuation_token_is_refused() {
    let app = ApiApp::start(&[]).await;
    for tenant in ["t1", "t2"] {
        for name in ["Anvil", "Bolt", "Chisel"] {
            app.create_product(tenant, name, "tools", 1).await;
        }
    }
    let t1_token = first_token(&app, "t1").await;
    page_with(&app, "t1", &t1_token).await.expect_status(200);

    let t2_token = first_token(&app, "t2").await;
    let edited = with_edited_position(&t1_token);
    for (case, token) in [
        ("another tenant's token", t2_token.as_str()),
        ("an edited token", edited.as_str()),
    ] {
        let reply = page_with(&app, "t1", token).await;
        let problem = reply.expect_problem(400);
        assert_eq!(
            problem["title"], "Invalid Continuation Token",
            "{case}: {}",
            reply.text
        );
        assert_eq!(reply.error_fields(), ["continuation"], "{case}");
    }
}
