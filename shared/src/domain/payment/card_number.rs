//! Finding card numbers (PANs) where none may be: the payments API takes only the gateway's
//! payment-source id, and refuses a request body that holds anything that looks like a card
//! number (13 to 19 digits that pass the Luhn check, written together, or in the groups cards
//! are printed in, split by spaces or dashes), so card data never reaches the store or the logs.
//!
//! Grouped digits count only in a card's layout (groups of four, the last one shorter, or
//! American Express's 4-6-5 and Diners' 4-6-4) and only as a token of their own (no letter or
//! digit right before or after): a UUID such as `12345678-1234-4234-8234-…` or a hex id with
//! digit-only segments is not a card number, while `4111 1111 1111 1111` and
//! `5555-5555-5555-4444` are.

/// Whether `text` holds a card number (see the module doc) whose Luhn check passes.
pub fn contains_card_number(text: &str) -> bool {
    digit_runs(text).any(|run| {
        (13..=19).contains(&run.digits.len())
            && (run.groups.len() == 1 || (run.stands_alone && card_layout(&run.groups)))
            && luhn_valid(&run.digits)
    })
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

/// Whether group lengths are a printed card's: fours with a shorter last group, 4-6-5, 4-6-4.
fn card_layout(groups: &[usize]) -> bool {
    let Some((last, fours)) = groups.split_last() else {
        return false;
    };
    let in_fours = fours.iter().all(|&length| length == 4) && (1..=4).contains(last);
    in_fours || groups == [4, 6, 5] || groups == [4, 6, 4]
}

/// A run of digits with single spaces or dashes between groups.
struct DigitRun {
    digits: Vec<u8>,
    /// The length of each group.
    groups: Vec<usize>,
    /// No letter or digit touches the run on either side.
    stands_alone: bool,
}

/// The runs of digits in `text`; one space or dash between two digits does not end a run.
fn digit_runs(text: &str) -> impl Iterator<Item = DigitRun> + '_ {
    let bytes = text.as_bytes();
    let mut position = 0;
    std::iter::from_fn(move || {
        while position < bytes.len() && !bytes[position].is_ascii_digit() {
            position += 1;
        }
        if position >= bytes.len() {
            return None;
        }
        let starts_alone = position == 0 || !bytes[position - 1].is_ascii_alphanumeric();
        let mut run = DigitRun {
            digits: Vec::new(),
            groups: vec![0],
            stands_alone: false,
        };
        while position < bytes.len() {
            let byte = bytes[position];
            if byte.is_ascii_digit() {
                run.digits.push(byte - b'0');
                if let Some(group) = run.groups.last_mut() {
                    *group += 1;
                }
                position += 1;
            } else if matches!(byte, b' ' | b'-')
                && bytes.get(position + 1).is_some_and(u8::is_ascii_digit)
            {
                run.groups.push(0);
                position += 1;
            } else {
                break;
            }
        }
        let ends_alone = bytes
            .get(position)
            .is_none_or(|byte| !byte.is_ascii_alphanumeric());
        run.stands_alone = starts_alone && ends_alone;
        Some(run)
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
            r#"{"amex":"3782 822463 10005"}"#,
            r#"{"visa19":"4111-1111-1111-1111-003"}"#,
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
            // UUIDs with digit-only segments whose digits pass Luhn (16 and 17 digits).
            r#"{"orderId":"12345678-1234-4236-a234-b23456789012"}"#,
            r#"{"orderId":"abcd1234-5678-4234-8234-0f11db6be63c"}"#,
        ] {
            assert!(!contains_card_number(body), "{body}");
        }
    }

    #[test]
    fn the_uuid_examples_would_pass_luhn_as_plain_digits() {
        for digits in ["1234567812344236", "12345678423482340"] {
            let values: Vec<u8> = digits.bytes().map(|byte| byte - b'0').collect();
            assert!(luhn_valid(&values), "{digits}");
            assert!(contains_card_number(digits), "{digits}");
        }
    }

    #[test]
    fn luhn_matches_the_standard_examples() {
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 0]));
    }
}
