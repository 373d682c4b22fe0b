//! The rules of the API's input fields, declared once. Each rule checks a value (for the
//! domain's `validate`) and describes itself as a JSON Schema (for the OpenAPI document, through
//! `#[schemars(schema_with = ...)]`), so the document says exactly what the server enforces and
//! the two cannot drift apart.
//!
//! Text lengths count characters (Unicode scalar values, as JSON Schema's `maxLength` does) of
//! the value as sent; a required text must hold something other than whitespace.

use std::sync::LazyLock;

use schemars::{json_schema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

use super::validation::{is_bidi_control, is_hidden_format, is_valid_id, Validation};

/// The regex class body (`\u0000-\u001f…`) of the characters `pick` selects, derived from the
/// same predicates and tables the validators use, so a pattern cannot drift from its check.
/// Scans up to U+FFFF: every character these rules name lies there.
fn class_of(pick: impl Fn(char) -> bool) -> String {
    let mut class = String::new();
    let mut run: Option<(char, char)> = None;
    let close = |run: (char, char), class: &mut String| {
        class.push_str(&format!("\\u{:04x}", run.0 as u32));
        if run.1 != run.0 {
            class.push_str(&format!("-\\u{:04x}", run.1 as u32));
        }
    };
    for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
        match (pick(c), run) {
            (true, Some((first, last))) if last as u32 + 1 == c as u32 => run = Some((first, c)),
            (true, _) => {
                if let Some(done) = run.replace((c, c)) {
                    close(done, &mut class);
                }
            }
            (false, Some(done)) => {
                close(done, &mut class);
                run = None;
            }
            (false, None) => {}
        }
    }
    if let Some(done) = run {
        close(done, &mut class);
    }
    class
}

/// Characters no single-line text may hold (see [`Validation::text`]).
fn single_line_forbidden() -> &'static str {
    static CLASS: LazyLock<String> =
        LazyLock::new(|| class_of(|c| c.is_control() || is_hidden_format(c)));
    &CLASS
}

/// Characters free text may not hold (see [`Validation::free_text`]).
fn free_text_forbidden() -> &'static str {
    static CLASS: LazyLock<String> = LazyLock::new(|| {
        class_of(|c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_bidi_control(c))
    });
    &CLASS
}

/// Whitespace as `str::trim` knows it.
fn whitespace() -> &'static str {
    static CLASS: LazyLock<String> = LazyLock::new(|| class_of(char::is_whitespace));
    &CLASS
}

/// Single-line text or free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Names, address lines, categories: no control or invisible formatting characters.
    SingleLine,
    /// Messages, descriptions, reasons: line breaks and tabs allowed, NUL and bidirectional
    /// overrides not.
    Free,
}

/// A text field: `min..=max` characters (`min` is 0 or 1: 1 means "not blank").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    pub min: usize,
    pub max: usize,
    pub kind: TextKind,
}

impl TextRule {
    pub const fn line(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            kind: TextKind::SingleLine,
        }
    }

    pub const fn free(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            kind: TextKind::Free,
        }
    }

    /// Records what is wrong with `value`, if anything.
    pub fn check(&self, check: &mut Validation, field: &str, value: &str) {
        match self.kind {
            TextKind::SingleLine => check.text(field, value, self.min, self.max),
            TextKind::Free => check.free_text(field, value, self.min, self.max),
        }
    }

    /// The JSON Schema of the rule.
    pub fn schema(&self) -> Schema {
        let forbidden = match self.kind {
            TextKind::SingleLine => single_line_forbidden(),
            TextKind::Free => free_text_forbidden(),
        };
        let pattern = if self.min > 0 {
            let whitespace = whitespace();
            format!("^[^{forbidden}]*[^{forbidden}{whitespace}][^{forbidden}]*$")
        } else {
            format!("^[^{forbidden}]*$")
        };
        let mut schema = json_schema!({
            "type": "string",
            "maxLength": self.max,
            "pattern": pattern,
        });
        if self.min > 0 {
            schema.insert("minLength".into(), self.min.into());
        }
        schema
    }
}

/// A whole number in `min..=max`. `1.0` counts as the whole number 1, as in JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRule {
    pub min: i64,
    pub max: i64,
}

impl IntRule {
    pub fn check(&self, check: &mut Validation, field: &str, value: i64) {
        check.range(field, value, self.min, self.max);
    }

    pub fn schema(&self) -> Schema {
        json_schema!({ "type": "integer", "minimum": self.min, "maximum": self.max })
    }
}

/// A string of a fixed form, checked by a function and described by an equivalent pattern.
#[derive(Debug, Clone, Copy)]
pub struct FormRule {
    /// The JSON Schema (ECMA-262) pattern, anchored.
    pub pattern: &'static str,
    pub max_length: usize,
    pub is_valid: fn(&str) -> bool,
    /// What the error says the value must be.
    pub expected: &'static str,
    pub example: &'static str,
}

impl FormRule {
    pub fn check(&self, check: &mut Validation, field: &str, value: &str) {
        if !(self.is_valid)(value) {
            check.error(field, format!("must be {}", self.expected));
        }
    }

    pub fn schema(&self) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "description": self.expected,
            "examples": [self.example],
        })
    }
}

/// An id of the form the store issues and accepts.
pub const ID: FormRule = FormRule {
    pattern: "^[A-Za-z0-9_-]{1,64}$",
    max_length: 64,
    is_valid: is_valid_id,
    expected: "an id: 1 to 64 letters, digits, '-' or '_'",
    example: "6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c",
};

/// A stock-keeping unit, as the ERP names a product: 1 to 40 letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit (case kept: the ERP's `KET-001` is not `ket-001`).
pub const SKU: FormRule = FormRule {
    pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
    max_length: 40,
    is_valid: is_valid_sku,
    expected: "a SKU: 1 to 40 letters, digits, '-', '_' or '.', starting with a letter or digit",
    example: "KET-001",
};

fn is_valid_sku(value: &str) -> bool {
    let mut chars = value.chars();
    value.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// ISO 3166-1 alpha-2 country code.
pub(crate) const COUNTRY: FormRule = FormRule {
    pattern: "^[A-Z]{2}$",
    max_length: 2,
    is_valid: |value| value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()),
    expected: "an ISO 3166-1 alpha-2 code, like DE",
    example: "DE",
};

/// ISO 4217 currency code.
pub(crate) const CURRENCY: FormRule = FormRule {
    pattern: "^[A-Z]{3}$",
    max_length: 3,
    is_valid: |value| value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()),
    expected: "an ISO 4217 code, like EUR",
    example: "EUR",
};

/// The schema of a phone number: E.164, the form it is stored in. Input may also be formatted
/// (`+44 20 7946 0001`), and either way the number must exist in its country's numbering plan
/// (`domain::phone`, with libphonenumber's metadata), which no pattern can say: the check is
/// [`Validation::phone`], and this only describes it.
fn phone_schema() -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 16,
        "pattern": "^\\+[0-9]{8,15}$",
        "description": "a phone number with its country code, stored in E.164 like +442079460001 \
                        (spaces, dashes, dots and parentheses are accepted on input; the number \
                        must exist in its country's numbering plan)",
        "examples": ["+442079460001"],
    })
}

/// The email pattern: one `@`, something before it, a dot inside the domain (not first, not
/// last), no whitespace, control or invisible formatting characters.
fn email_pattern() -> String {
    let no = format!("@{}{}", single_line_forbidden(), whitespace());
    format!("^[^{no}]+@[^{no}.][^{no}]*\\.[^{no}]*[^{no}.]$")
}

/// An email address (see [`Validation::email`]), at most 254 characters.
pub(crate) fn email_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 254,
        "pattern": email_pattern(),
        "examples": ["ada@example.org"],
    })
}

/// Reads a whole number, accepting a JSON number with a zero fraction (`2.0`) as JSON Schema's
/// `integer` does; `2.5` and numbers beyond `i64` are refused.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Ok(value as i64),
        _ => Err(serde::de::Error::custom(format!(
            "invalid type: {number} is not a whole number"
        ))),
    }
}

/// [`whole_number`] of an optional field (use with `#[serde(default)]`; `null` is `None`).
pub fn optional_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => whole_number(number)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// [`phone_schema`] where the macros below expect a rule.
struct Phone;

impl Phone {
    fn schema(&self) -> Schema {
        phone_schema()
    }
}

/// `schema_with` functions for the fields of the domain's inputs: one per rule.
macro_rules! schema_fns {
    ($($name:ident => $rule:expr;)*) => {
        $(
            pub fn $name(_: &mut SchemaGenerator) -> Schema {
                $rule.schema()
            }
        )*
    };
}

/// The same for an optional field, which also takes `null`.
macro_rules! optional_schema_fns {
    ($($name:ident => $rule:expr;)*) => {
        $(
            pub fn $name(_: &mut SchemaGenerator) -> Schema {
                let mut schema = $rule.schema();
                schema.insert("type".into(), serde_json::json!(["string", "null"]));
                schema
            }
        )*
    };
}

pub mod rules {
    //! The rule of each input field.
    use super::{IntRule, TextRule};

    pub(crate) const CUSTOMER_NAME: TextRule = TextRule::line(1, 200);
    pub(crate) const ADDRESS_LINE1: TextRule = TextRule::line(1, 200);
    pub(crate) const ADDRESS_LINE2: TextRule = TextRule::line(0, 200);
    pub(crate) const CITY: TextRule = TextRule::line(1, 100);
    pub(crate) const POSTAL_CODE: TextRule = TextRule::line(1, 20);
    pub(crate) const PRODUCT_NAME: TextRule = TextRule::line(1, 200);
    pub(crate) const CATEGORY: TextRule = TextRule::line(1, 100);
    pub(crate) const DESCRIPTION: TextRule = TextRule::free(0, 4000);
    pub(crate) const TITLE: TextRule = TextRule::line(1, 200);
    pub(crate) const MESSAGE: TextRule = TextRule::free(1, 4000);
    pub const REASON: TextRule = TextRule::free(0, 500);
    pub(crate) const PRICE_CENTS: IntRule = IntRule {
        min: 0,
        max: 10_000_000_000,
    };
    pub(crate) const STOCK: IntRule = IntRule {
        min: 0,
        max: 1_000_000_000,
    };
    pub(crate) const QUANTITY: IntRule = IntRule {
        min: 1,
        max: 10_000,
    };
    /// A refund: at most 11 digits (just under a billion in major units, far above what any
    /// gateway takes in one payment), so no amount is ever 13 to 19 digits long and mistaken
    /// for a card number by the payments API's card-data check.
    pub const REFUND_CENTS: IntRule = IntRule {
        min: 1,
        max: 99_999_999_999,
    };
}

schema_fns! {
    id_schema => ID;
    country_schema => COUNTRY;
    currency_schema => CURRENCY;
    customer_name_schema => rules::CUSTOMER_NAME;
    address_line1_schema => rules::ADDRESS_LINE1;
    city_schema => rules::CITY;
    postal_code_schema => rules::POSTAL_CODE;
    product_name_schema => rules::PRODUCT_NAME;
    category_schema => rules::CATEGORY;
    title_schema => rules::TITLE;
    message_schema => rules::MESSAGE;
    price_cents_schema => rules::PRICE_CENTS;
    stock_schema => rules::STOCK;
    quantity_schema => rules::QUANTITY;
}

/// The optional refund amount: an integer within [`rules::REFUND_CENTS`], or `null`.
pub fn optional_refund_cents_schema(_: &mut SchemaGenerator) -> Schema {
    let mut schema = rules::REFUND_CENTS.schema();
    schema.insert("type".into(), serde_json::json!(["integer", "null"]));
    schema.insert("format".into(), serde_json::json!("int64"));
    schema
}

optional_schema_fns! {
    optional_id_schema => ID;
    optional_phone_schema => Phone;
    optional_address_line2_schema => rules::ADDRESS_LINE2;
    optional_description_schema => rules::DESCRIPTION;
    optional_reason_schema => rules::REASON;
    optional_sku_schema => SKU;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(schema: &Schema) -> regex::Regex {
        regex::Regex::new(schema.get("pattern").and_then(|p| p.as_str()).unwrap()).unwrap()
    }

    /// The schema's pattern and length agree with the validator on a spread of values.
    #[test]
    fn text_schemas_say_what_the_validators_accept() {
        let samples = [
            "",
            " ",
            "Ada",
            " Ada ",
            "a\nb",
            "a\tb",
            "a\0b",
            "a\u{202E}b",
            "a\u{200B}b",
            "محمد\u{200C}رضا",
            "\u{00A0}",
            "\u{3000}x",
            "x\u{85}",
            "\u{FEFF}",
            "a\u{7}",
        ];
        for rule in [
            rules::CUSTOMER_NAME,
            rules::ADDRESS_LINE2,
            rules::MESSAGE,
            rules::REASON,
        ] {
            let schema = rule.schema();
            let regex = pattern(&schema);
            for sample in samples {
                let mut check = Validation::new();
                rule.check(&mut check, "f", sample);
                let by_schema = regex.is_match(sample)
                    && sample.chars().count() <= rule.max
                    && sample.chars().count() >= rule.min;
                assert_eq!(check.is_empty(), by_schema, "{rule:?} {sample:?}");
            }
        }
    }

    #[test]
    fn form_rules_match_their_patterns() {
        for (rule, samples) in [
            (ID, &["a", "A-1_b", "", "a/b", "é"][..]),
            (COUNTRY, &["DE", "de", "DEU", ""]),
            (CURRENCY, &["EUR", "eur", "EU"]),
            (
                SKU,
                &[
                    "KET-001",
                    "a.b_c",
                    "-x",
                    "",
                    "KET 001",
                    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                ],
            ),
        ] {
            let regex = pattern(&rule.schema());
            for sample in samples {
                assert_eq!(
                    (rule.is_valid)(sample),
                    regex.is_match(sample),
                    "{sample:?}"
                );
            }
        }
    }

    #[test]
    fn the_email_pattern_matches_the_email_validator() {
        let regex = pattern(&email_schema(&mut SchemaGenerator::default()));
        for sample in [
            "ada@example.org",
            "a@b.c",
            "a@b",
            "@b.c",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "a@b@c.d",
            "a\u{200B}@b.c",
            "zoë@exämple.de",
            "a@b..c",
        ] {
            let mut check = Validation::new();
            check.email("email", sample);
            assert_eq!(check.is_empty(), regex.is_match(sample), "{sample:?}");
        }
    }

    #[test]
    fn an_id_check_names_the_field() {
        let mut check = Validation::new();
        ID.check(&mut check, "productId", "a/b");
        ID.check(&mut check, "customerId", "6f1c2b9a-0d3e");
        let super::super::validation::Invalid(errors) = check.finish().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["productId"]);
    }

    #[test]
    fn derived_classes_hold_what_the_predicates_name() {
        assert!(single_line_forbidden().starts_with("\\u0000-\\u001f\\u007f-\\u009f\\u00ad"));
        assert!(free_text_forbidden().starts_with("\\u0000-\\u0008\\u000b-\\u000c\\u000e-\\u001f"));
        assert!(whitespace().contains("\\u2000-\\u200a"));
    }

    #[test]
    fn whole_numbers_accept_a_zero_fraction_only() {
        let read = |text: &str| whole_number(&mut serde_json::Deserializer::from_str(text));
        assert_eq!(read("2").unwrap(), 2);
        assert_eq!(read("2.0").unwrap(), 2);
        assert_eq!(read("-3.0e0").unwrap(), -3);
        assert!(read("2.5").is_err());
        assert!(read("1e300").is_err());
        assert!(read("\"2\"").is_err());
    }
}
