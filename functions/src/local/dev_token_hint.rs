//! A hint for the most common 401 of local mode: a dev token minted with another `DATA_DIR`.
//!
//! `handler dev-token` signs with the key in its `DATA_DIR`, and `handler local` trusts only
//! the key in its own, so a token minted in another folder (or before the folder was wiped) is
//! refused as signed by a key its issuer does not publish. When a refused token names the dev
//! issuer but another key id, the local runtime says so: in the problem's `detail` and in a
//! warning. Only the token's header and `iss` are read (unverified, to choose the hint); the
//! token itself is never logged or echoed.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::auth::{bearer_token, DevIssuer, DEV_ISSUER, DEV_KEY_FILE};
use shared::config::Settings;

/// Largest problem document rewritten (a 401 body is a few hundred bytes).
const MAX_PROBLEM_BYTES: usize = 16 * 1024;

/// The hint for `authorization`, if it holds a dev token signed by another folder's key.
pub fn foreign_dev_token(
    authorization: Option<&HeaderValue>,
    settings: &Settings,
) -> Option<String> {
    let header = authorization.and_then(|value| value.to_str().ok());
    let token = bearer_token(header).ok()?;
    let (kid, issuer) = unverified_kid_and_issuer(token)?;
    if issuer != DEV_ISSUER {
        return None;
    }
    let key_path = settings.data_dir.join(DEV_KEY_FILE);
    if !key_path.exists() {
        return None;
    }
    let ours = DevIssuer::load_or_create(&settings.data_dir).ok()?;
    (kid != ours.key_id()).then(|| {
        format!(
            "this dev token was signed by the dev key of another DATA_DIR, not by {}; fix: mint it with the DATA_DIR that `handler local` uses (DATA_DIR={} handler dev-token ...), or start `handler local --data-dir` with the folder the token came from",
            key_path.display(),
            settings.data_dir.display()
        )
    })
}

/// The `kid` of the token's header and the `iss` of its payload, without verifying anything.
fn unverified_kid_and_issuer(token: &str) -> Option<(String, String)> {
    let mut parts = token.split('.');
    let decode = |part: Option<&str>| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part?).ok()?).ok()
    };
    let header = decode(parts.next())?;
    let payload = decode(parts.next())?;
    Some((
        header.get("kid")?.as_str()?.to_owned(),
        payload.get("iss")?.as_str()?.to_owned(),
    ))
}

/// `response` (a 401 problem) with `hint` added to its `detail`; unchanged if it is not a
/// JSON object.
pub async fn with_hint(response: Response, hint: &str) -> Response {
    tracing::warn!("a request was refused (401): {hint}");
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = http_body_util::Limited::new(body, MAX_PROBLEM_BYTES)
        .collect()
        .await
    else {
        return problem_without_body(hint);
    };
    let bytes = collected.to_bytes();
    let Ok(Value::Object(mut problem)) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let detail = problem
        .get("detail")
        .and_then(Value::as_str)
        .map_or_else(|| hint.to_owned(), |detail| format!("{detail}; {hint}"));
    problem.insert("detail".to_owned(), Value::String(detail));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(Value::Object(problem).to_string()))
}

fn problem_without_body(hint: &str) -> Response {
    let mut response = Response::new(Body::from(
        serde_json::json!({"title": "Unauthorized", "status": 401, "detail": hint}).to_string(),
    ));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn reads_kid_and_issuer_without_verifying() {
        let token = format!(
            "{}.{}.c2ln",
            part(&serde_json::json!({"alg": "RS256", "kid": "k1"})),
            part(&serde_json::json!({"iss": DEV_ISSUER}))
        );
        assert_eq!(
            unverified_kid_and_issuer(&token),
            Some(("k1".to_owned(), DEV_ISSUER.to_owned()))
        );
        assert_eq!(unverified_kid_and_issuer("not-a-token"), None);
    }

    #[tokio::test]
    async fn the_hint_is_added_to_the_detail_and_the_rest_is_kept() {
        let mut response = Response::new(Body::from(
            r#"{"title":"Unauthorized","status":401,"detail":"the token is signed with a key its issuer does not publish"}"#,
        ));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("104"));
        let hinted = with_hint(response, "hint; fix: it").await;
        assert_eq!(hinted.status(), StatusCode::UNAUTHORIZED);
        assert!(hinted.headers().get(header::CONTENT_LENGTH).is_none());
        let body = hinted.into_body().collect().await.unwrap().to_bytes();
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            problem["detail"],
            "the token is signed with a key its issuer does not publish; hint; fix: it"
        );
        assert_eq!(problem["title"], "Unauthorized");
    }
}
