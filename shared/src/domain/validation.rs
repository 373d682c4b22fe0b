//! Field-by-field input validation: every problem with a request is collected, so a client
//! learns about all bad fields at once (the API turns them into a 400 problem document).

use serde::Serialize;

/// One bad field: where (`items[2].quantity`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects field errors; [`Validation::finish`] turns them into a result.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<FieldError>,
}

/// The input was invalid; every bad field is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", summary(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Single-line text of `min..=max` characters (names, cities, categories): no
    /// control characters at all and no invisible formatting characters (see
    /// [`is_hidden_format`]).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value.chars().any(char::is_control) {
            self.error(field, "must not contain control characters");
            return;
        }
        if value.chars().any(is_hidden_format) {
            self.error(
                field,
                "must not contain invisible formatting characters (such as U+200B or U+202E)",
            );
            return;
        }
        self.length(field, value, min, max);
    }

    /// Free text of `min..=max` characters (messages, descriptions, reasons): line
    /// breaks and tabs are allowed; other control characters (NUL among them) and the
    /// bidirectional overrides, embeddings and isolates, which can make text read differently
    /// from what it is, are not.
    pub(crate) fn free_text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.error(
                field,
                "must not contain control characters other than line breaks and tabs",
            );
            return;
        }
        if value.chars().any(is_bidi_control) {
            self.error(
                field,
                "must not contain bidirectional override or isolate characters (U+202A to \
                 U+202E, U+2066 to U+2069)",
            );
            return;
        }
        self.length(field, value, min, max);
    }

    /// At most `max` characters as sent; with `min` > 0, not blank (`min` is 0 or 1).
    fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if min > 0 && value.trim().is_empty() {
            self.error(field, "must not be empty");
        } else if value.chars().count() > max {
            self.error(field, format!("must be at most {max} characters"));
        }
    }

    /// An email address of a plausible shape (one `@`, a dot in the domain, no spaces, no
    /// control or invisible formatting characters).
    pub fn email(&mut self, field: &str, value: &str) {
        let valid = value.chars().count() <= 254
            && !value.contains(char::is_whitespace)
            && !value.chars().any(|c| c.is_control() || is_hidden_format(c))
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !valid {
            self.error(field, "must be an email address");
        }
    }

    /// A phone number with its country code, formatted as people write it (see
    /// [`super::phone`]).
    pub fn phone(&mut self, field: &str, value: &str) {
        if let Err(error) = super::phone::normalise(value) {
            self.error(field, error.to_string());
        }
    }

    /// A whole number in a range.
    pub fn range(&mut self, field: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.error(field, format!("must be from {min} to {max}"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

/// The bidirectional embeddings and overrides (U+202A to U+202E) and isolates (U+2066 to
/// U+2069): they reorder how text is displayed. Inclusive ranges.
pub(crate) const BIDI_CONTROLS: &[(char, char)] =
    &[('\u{202A}', '\u{202E}'), ('\u{2066}', '\u{2069}')];

/// Formatting characters that do not show (Unicode category Cf) and have no place in a name,
/// an address or an email, besides [`BIDI_CONTROLS`]: soft hyphen, Arabic letter mark,
/// Mongolian vowel separator, zero-width space, direction marks, word joiner and invisible
/// operators, the byte-order mark, interlinear annotation marks. The zero-width joiner and
/// non-joiner (U+200C, U+200D) are allowed: some scripts (Persian, Indic) and emoji sequences
/// need them in ordinary names. Inclusive ranges.
pub(crate) const HIDDEN_FORMATS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200B}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

/// One of [`BIDI_CONTROLS`].
pub(crate) fn is_bidi_control(c: char) -> bool {
    in_ranges(BIDI_CONTROLS, c)
}

/// One of [`HIDDEN_FORMATS`] or [`BIDI_CONTROLS`].
pub(crate) fn is_hidden_format(c: char) -> bool {
    in_ranges(HIDDEN_FORMATS, c) || is_bidi_control(c)
}

/// 1 to 64 letters, digits, `-` or `_`.
pub fn is_valid_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new id for a stored document: a UUIDv7, time-ordered (milliseconds, then a counter, then
/// random bits), so a new row lands at the end of the B-tree keyed on it instead of on a random
/// page. With random ids every insert (an order, its audit entry, each employee read's audit
/// entry) dirtied a page of its own, which SQLite wrote to its WAL on commit and again at the
/// checkpoint. The creation time it reveals is in every document anyway.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_bad_field() {
        let mut check = Validation::new();
        check.text("name", "  ", 1, 10);
        check.email("email", "no-at-sign");
        check.phone("phone", "12345");
        check.range("quantity", 0, 1, 1000);
        check.error("productId", "must be an id");
        let Invalid(errors) = check.finish().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "phone", "quantity", "productId"]);
        assert_eq!(errors[0].message, "must not be empty");
    }

    #[test]
    fn accepts_good_values() {
        let mut check = Validation::new();
        check.text("name", "Ada", 1, 10);
        check.email("email", "ada@example.org");
        check.phone("phone", "+4915112345678");
        check.range("quantity", 3, 1, 1000);
        assert!(check.finish().is_ok());
    }

    #[test]
    fn single_line_text_refuses_controls_and_hidden_formatting() {
        for bad in [
            "a\0b",
            "a\nb",
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{2066}b",
        ] {
            let mut check = Validation::new();
            check.text("name", bad, 1, 10);
            assert!(!check.is_empty(), "{bad:?}");
        }
        for good in ["Zoë", "Ñandú", "محمد\u{200C}رضا", "👩\u{200D}💻"] {
            let mut check = Validation::new();
            check.text("name", good, 1, 10);
            assert!(check.is_empty(), "{good:?}");
        }
    }

    #[test]
    fn free_text_allows_line_breaks_but_not_nul_or_bidi_overrides() {
        let mut check = Validation::new();
        check.free_text("message", "line one\nline two\tend", 1, 100);
        assert!(check.is_empty());
        for bad in ["a\0b", "a\u{202E}b", "a\u{2067}b", "a\u{7}b"] {
            let mut check = Validation::new();
            check.free_text("message", bad, 1, 100);
            assert!(!check.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn email_edge_cases() {
        for bad in [
            "a@b",
            "@b.c",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "a@b@c.d",
            "a\0@b.c",
            "a\u{202E}@b.c",
            "a\u{200B}@b.c",
        ] {
            let mut check = Validation::new();
            check.email("e", bad);
            assert!(!check.is_empty(), "{bad}");
        }
    }
}
