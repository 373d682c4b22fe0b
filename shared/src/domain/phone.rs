//! Phone numbers as people write them, stored as E.164.
//!
//! A number is accepted with its country code (`+44 20 7946 0001`, `+1 (555) 010-0200`,
//! `+49 151.1234.5678`): spaces, dashes, dots, slashes and parentheses are formatting and are
//! dropped. The number must be a possible number of its country by the `phonenumber` crate's
//! copy of Google's libphonenumber metadata; what is kept is its E.164 form (`+442079460001`).
//! A number without a country code is refused: without knowing the country, `020 7946 0001`
//! could be anywhere.

use phonenumber::Mode;

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PhoneError {
    /// A letter, an extension or another character that is not a digit or formatting.
    #[error("must be a phone number with its country code, like +44 20 7946 0001: digits, with spaces, dashes, dots, slashes or parentheses between them (no letters or extensions)")]
    Characters,
    /// No leading `+` and country code.
    #[error("must start with + and the country code, like +44 20 7946 0001")]
    NoCountryCode,
    /// Not a number of any country's numbering plan.
    #[error(
        "is not a valid number for its country code; expected a phone number like +44 20 7946 0001"
    )]
    Invalid,
}

/// The E.164 form of `text` (`+442079460001`), or why it is not a phone number.
pub(crate) fn normalise(text: &str) -> Result<String, PhoneError> {
    let text = text.trim();
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '/' | '(' | ')'))
    {
        return Err(PhoneError::Characters);
    }
    if !text.starts_with('+') || text.matches('+').count() != 1 {
        return Err(PhoneError::NoCountryCode);
    }
    let number = phonenumber::parse(None, text).map_err(|_| PhoneError::Invalid)?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid);
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

/// Deserialises an optional phone number in its E.164 form when it is one, and as written
/// otherwise, so that validation can name the field and say what was expected.
pub(crate) fn deserialize_normalised<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    Ok(raw.map(|text| normalise(&text).unwrap_or(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formatting_is_accepted_and_stored_as_e164() {
        for (written, stored) in [
            ("+44 20 7946 0001", "+442079460001"),
            ("+442079460001", "+442079460001"),
            ("+44 (0)20 7946 0001", "+442079460001"),
            ("+1 (202) 555-0143", "+12025550143"),
            ("+49 151.1234.5678", "+4915112345678"),
            ("+4915112345678", "+4915112345678"),
            ("  +33 1 23 45 67 89 ", "+33123456789"),
        ] {
            assert_eq!(normalise(written).as_deref(), Ok(stored), "{written}");
        }
    }

    #[test]
    fn numbers_without_country_code_letters_or_impossible_digits_are_refused() {
        assert_eq!(normalise("020 7946 0001"), Err(PhoneError::NoCountryCode));
        assert_eq!(normalise("12345"), Err(PhoneError::NoCountryCode));
        assert_eq!(normalise("+1 800 FLOWERS"), Err(PhoneError::Characters));
        assert_eq!(
            normalise("+44 20 7946 0001 ext. 2"),
            Err(PhoneError::Characters)
        );
        assert_eq!(normalise("+44 12"), Err(PhoneError::Invalid));
        assert_eq!(normalise("+999 1234 5678"), Err(PhoneError::Invalid));
        assert_eq!(normalise("+44 +20 7946"), Err(PhoneError::NoCountryCode));
    }

    #[test]
    fn deserialising_keeps_what_is_not_a_number_for_validation_to_report() {
        #[derive(serde::Deserialize)]
        struct Input {
            #[serde(default, deserialize_with = "deserialize_normalised")]
            phone: Option<String>,
        }
        let parse = |json: &str| serde_json::from_str::<Input>(json).unwrap().phone;
        assert_eq!(
            parse(r#"{"phone": "+44 20 7946 0001"}"#).as_deref(),
            Some("+442079460001")
        );
        assert_eq!(parse(r#"{"phone": "12345"}"#).as_deref(), Some("12345"));
        assert_eq!(parse(r#"{"phone": null}"#), None);
        assert_eq!(parse("{}"), None);
    }
}
