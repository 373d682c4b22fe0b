//! Finding card numbers (PANs) where none may be: the payments API takes only the gateway's
//! payment-source id, and refuses a request body that holds anything that looks like a card
//! number (13 to 19 digits, written together or in groups split by spaces or dashes, that pass
//! the Luhn check), so card data never reaches the store or the logs.

/// Whether `text` holds a run of 13 to 19 digits (single spaces or dashes allowed between
/// them) whose Luhn check passes.
pub fn contains_card_number(text: &str) -> bool {
    digit_runs(text).any(|digits| (13..=19).contains(&digits.len()) && luhn_valid(&digits))
}

/// The Luhn (mod 10) check of a digit sequence (ISO/IEC 7812-1).
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            let value = u32::from(digit);
            if position % 2 == 1 {
                let doubled = value * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                value
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// The runs of digits in `text`, as digit values; one space or dash between two digits does
/// not end a run (`4111 1111 1111 1111`, `4111-1111-1111-1111`).
fn digit_runs(text: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let bytes = text.as_bytes();
    let mut position = 0;
    std::iter::from_fn(move || {
        while position < bytes.len() && !bytes[position].is_ascii_digit() {
            position += 1;
        }
        if position >= bytes.len() {
            return None;
        }
        let mut digits = Vec::new();
        while position < bytes.len() {
            let byte = bytes[position];
            if byte.is_ascii_digit() {
                digits.push(byte - b'0');
                position += 1;
            } else if matches!(byte, b' ' | b'-')
                && bytes.get(position + 1).is_some_and(u8::is_ascii_digit)
            {
                position += 1;
            } else {
                break;
            }
        }
        Some(digits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_card_numbers_however_written() {
        for body in [
            r#"{"source":"4111111111111111"}"#,
            r#"{"note":"card 4111 1111 1111 1111 please"}"#,
            r#"{"n":5555-5555-5555-4444}"#,
            r#"{"amex":378282246310005}"#,
            r#"{"x":"6011111111111117"}"#,
        ] {
            assert!(contains_card_number(body), "{body}");
        }
    }

    #[test]
    fn leaves_ids_dates_and_numbers_that_fail_luhn() {
        for body in [
            r#"{"orderId":"ord-12345","amount":4200}"#,
            r#"{"n":"4111111111111112"}"#,
            r#"{"at":"2026-12-02T10:00:00Z"}"#,
            r#"{"long":"41111111111111111111111"}"#,
            r#"{"short":"424242424242"}"#,
        ] {
            assert!(!contains_card_number(body), "{body}");
        }
    }

    #[test]
    fn luhn_matches_the_standard_examples() {
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 0]));
    }
}
