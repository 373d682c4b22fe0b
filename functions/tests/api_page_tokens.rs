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
/// whatever wraps it: what a client editing a token to jump elsewhere sends. The store's token
/// is base64url JSON; a wrapper may put bytes before it (a seal), so the JSON is looked for
/// both in the token and in what follows a 16-byte prefix.
fn with_edited_position(token: &str) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(token).expect("tokens are base64url");
    if let Some(edited) = edit_last_id(&bytes) {
        return URL_SAFE_NO_PAD.encode(edited);
    }
    let (prefix, inner) = bytes.split_at(16);
    let inner = URL_SAFE_NO_PAD
        .decode(inner)
        .expect("the wrapped store token is base64url");
    let edited = edit_last_id(&inner).expect("the store token names the last id");
    let mut wrapped = prefix.to_vec();
    wrapped.extend_from_slice(URL_SAFE_NO_PAD.encode(edited).as_bytes());
    URL_SAFE_NO_PAD.encode(wrapped)
}

/// `json` with the last character of its `"i":"…"` value changed, if it has one.
fn edit_last_id(json: &[u8]) -> Option<Vec<u8>> {
    let marker = b"\"i\":\"";
    let start = json
        .windows(marker.len())
        .position(|window| window == marker)?
        + marker.len();
    let end = start + json[start..].iter().position(|byte| *byte == b'"')?;
    let mut edited = json.to_vec();
    edited[end - 1] = if edited[end - 1] == b'0' { b'1' } else { b'0' };
    Some(edited)
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
