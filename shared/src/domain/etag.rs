//! Versions of stored documents: every update carries the version it was read at (optimistic
//! concurrency), as an HTTP `ETag` and a Cosmos `_etag`.

use std::fmt;

/// An opaque version tag of a stored document (HTTP `ETag`, Cosmos `_etag`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HTTP header form: the tag in double quotes.
    pub fn to_header(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new random ETag value (the version of a document just created or changed).
pub fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_header_form_is_the_tag_in_quotes() {
        assert_eq!(ETag::new("0f3a9c").to_header(), "\"0f3a9c\"");
    }
}
