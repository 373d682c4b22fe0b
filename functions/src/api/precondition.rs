//! HTTP preconditions (RFC 9110, section 13): `If-Match` on writes, compared strongly, and
//! `If-None-Match` on reads, answered with `304 Not Modified` by [`NotModifiedLayer`].
//!
//! - `If-Match` absent or `*`: any stored version will do. A list of entity tags: the stored
//!   version must be one of its strong tags; a weak tag (`W/"…"`) never matches, and an empty
//!   header matches nothing (it is not the same as no header). A value that is not `*` or a
//!   list of quoted tags is a 400.
//! - `If-None-Match` on `GET`/`HEAD`: when a 200 answer's `ETag` matches one of the listed tags
//!   (weak comparison, as RFC 9110 asks for this header) or the header is `*`, the answer is a
//!   304 with the `ETag` and no body.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use shared::domain::etag::ETag;
use shared::store::IfMatch;

use super::ApiError;

/// The request's `If-Match` precondition.
pub fn if_match(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
    let Some(value) = combined(headers, header::IF_MATCH) else {
        return Ok(IfMatch::Any);
    };
    let malformed = || {
        ApiError::BadRequest(
            "If-Match must be * or a list of quoted entity tags, like \"abc\" (the ETag you read)"
                .into(),
        )
    };
    if value.trim() == "*" {
        return Ok(IfMatch::Any);
    }
    let tags = entity_tags(&value).ok_or_else(malformed)?;
    Ok(IfMatch::OneOf(
        tags.into_iter()
            .filter(|tag| !tag.weak)
            .map(|tag| ETag::new(tag.opaque))
            .collect(),
    ))
}

/// `If-Match` is required (428 without it): for writes whose blind overwrite would lose a
/// concurrent change (a product's stock).
pub fn required_if_match(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
    match if_match(headers)? {
        IfMatch::Any if !headers.contains_key(header::IF_MATCH) => Err(ApiError::PreconditionRequired(
            "send If-Match with the ETag you read (GET the resource first); without it a change \
             made in between, such as stock reserved by an order, would be overwritten"
                .into(),
        )),
        precondition => Ok(precondition),
    }
}

/// All values of `name`, joined into one list as RFC 9110 allows (`None` without the header).
fn combined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    Some(
        values
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// One entity tag of a list.
#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The opaque tag, without its quotes.
    opaque: &'a str,
}

/// The entity tags of a comma-separated list (empty elements allowed, as RFC 9110's list
/// syntax does); `None` when an element is not `"…"` or `W/"…"`.
fn entity_tags(value: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(tags);
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = quoted.strip_prefix('"')?;
        let end = inner.find('"')?;
        let opaque = &inner[..end];
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80)
        {
            return None;
        }
        tags.push(EntityTag { weak, opaque });
        rest = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
}

/// Whether a `GET` answered with `etag` is not modified for this `If-None-Match` value (weak
/// comparison: `W/"a"` and `"a"` match).
fn not_modified(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    let Some(current) = etag.to_str().ok().and_then(|value| entity_tags(value)) else {
        return false;
    };
    let Some(current) = current.first() else {
        return false;
    };
    entity_tags(list).is_some_and(|tags| tags.iter().any(|tag| tag.opaque == current.opaque))
}

/// Answers `304 Not Modified` to a `GET` or `HEAD` whose `If-None-Match` matches the `ETag` of
/// its 200 answer. A request without the header passes untouched (no allocation).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotModifiedLayer;

impl<S> tower::Layer<S> for NotModifiedLayer {
    type Service = NotModified<S>;

    fn layer(&self, inner: S) -> NotModified<S> {
        NotModified { inner }
    }
}

/// The service of [`NotModifiedLayer`].
#[derive(Debug, Clone)]
pub struct NotModified<S> {
    inner: S,
}

impl<S> tower::Service<axum::extract::Request> for NotModified<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = NotModifiedFuture<S::Future>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
        let if_none_match = is_read
            .then(|| request.headers().get(header::IF_NONE_MATCH).cloned())
            .flatten();
        NotModifiedFuture {
            inner: self.inner.call(request),
            if_none_match,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`NotModified`].
    pub struct NotModifiedFuture<F> {
        #[pin]
        inner: F,
        if_none_match: Option<HeaderValue>,
    }
}

impl<F, E> std::future::Future for NotModifiedFuture<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, E>>,
{
    type Output = Result<axum::response::Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(context))?;
        let Some(if_none_match) = this.if_none_match.take() else {
            return std::task::Poll::Ready(Ok(response));
        };
        let unchanged = response.status() == StatusCode::OK
            && response
                .headers()
                .get(header::ETAG)
                .is_some_and(|etag| not_modified(&if_none_match, etag));
        if !unchanged {
            return std::task::Poll::Ready(Ok(response));
        }
        let mut not_modified = axum::response::Response::new(axum::body::Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
            if let Some(value) = response.headers().get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        std::task::Poll::Ready(Ok(not_modified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn tags(precondition: IfMatch) -> Vec<String> {
        match precondition {
            IfMatch::OneOf(tags) => tags.iter().map(|tag| tag.as_str().to_owned()).collect(),
            IfMatch::Any => vec!["*".to_owned()],
        }
    }

    #[test]
    fn if_match_is_any_without_the_header_or_with_a_star() {
        assert_eq!(if_match(&headers(&[])).unwrap(), IfMatch::Any);
        assert_eq!(if_match(&headers(&["*"])).unwrap(), IfMatch::Any);
    }

    #[test]
    fn if_match_lists_keep_strong_tags_only_and_an_empty_one_matches_nothing() {
        assert_eq!(tags(if_match(&headers(&["\"a\""])).unwrap()), ["a"]);
        assert_eq!(
            tags(if_match(&headers(&["W/\"a\", \"b\" ,\"c,d\""])).unwrap()),
            ["b", "c,d"]
        );
        assert_eq!(
            tags(if_match(&headers(&["\"a\"", "\"b\""])).unwrap()),
            ["a", "b"]
        );
        assert!(tags(if_match(&headers(&["W/\"a\""])).unwrap()).is_empty());
        assert!(tags(if_match(&headers(&[""])).unwrap()).is_empty());
        assert!(!IfMatch::OneOf(Vec::new()).matches("a"));
    }

    #[test]
    fn malformed_if_match_values_are_refused() {
        for bad in ["abc", "\"a", "\"a\" x", "W/a", "\"a\"\"b\""] {
            assert!(if_match(&headers(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let value = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(not_modified(&value("\"a\""), &value("\"a\"")));
        assert!(not_modified(&value("W/\"a\""), &value("\"a\"")));
        assert!(not_modified(&value("\"x\", \"a\""), &value("\"a\"")));
        assert!(not_modified(&value("*"), &value("\"a\"")));
        assert!(!not_modified(&value("\"b\""), &value("\"a\"")));
        assert!(!not_modified(&value("garbage"), &value("\"a\"")));
    }
}
