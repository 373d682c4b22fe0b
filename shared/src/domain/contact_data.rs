//! Finding contact data where none may be: the audit intake (`POST /audit/logs`) takes ids
//! only, and refuses a body holding anything that looks like an email address or a phone
//! number, so such data never reaches the trail or the logs.
//!
//! - An email address: an `@` with an address character right before it and a domain right
//!   after it (a letter or digit, then a dot inside it, then at least two letters).
//! - A phone number: 8 to 15 digits standing on their own (no letter, digit, `_`, `-`, `:` or
//!   `.` right before or after), written with a leading `+` or `00`, or in groups split by
//!   spaces, dashes, dots, slashes or parentheses (`+44 20 7946 0001`, `030 1234 5678`,
//!   `(030) 123-4567`), or as 10 to 15 bare digits starting with a trunk `0`. Bare digits that do
//!   not start with `0` count as a number id, not a phone number, and an id such as a UUID never
//!   stands on its own because letters or dashes touch its digit groups.

/// Whether `text` holds something that looks like an email address.
pub fn contains_email(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'@'
            && at > 0
            && is_local_byte(bytes[at - 1])
            && looks_like_domain(&bytes[at + 1..])
    })
}

fn is_local_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// A domain at the start of `rest`: labels of letters, digits and dashes split by dots, with at
/// least one dot and a last label of two letters or more.
fn looks_like_domain(rest: &[u8]) -> bool {
    let length = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        .count();
    let domain = &rest[..length];
    let Some(dot) = domain.iter().rposition(|&b| b == b'.') else {
        return false;
    };
    let first_ok = domain.first().is_some_and(u8::is_ascii_alphanumeric);
    let last = &domain[dot + 1..];
    first_ok && dot > 0 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

/// Whether `text` holds something that looks like a phone number.
pub fn contains_phone_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if starts_run(bytes, start) {
            let end = run_end(bytes, start);
            if stands_alone(bytes, start, end) && looks_like_phone(&bytes[start..end]) {
                return true;
            }
            start = end.max(start + 1);
        } else {
            start += 1;
        }
    }
    false
}

fn starts_run(bytes: &[u8], at: usize) -> bool {
    matches!(bytes[at], b'+' | b'(') || bytes[at].is_ascii_digit()
}

fn is_separator(byte: u8) -> bool {
    matches!(byte, b' ' | b'-' | b'.' | b'/' | b'(' | b')')
}

/// Where the run of digits and separators from `start` ends (trailing separators excluded; at
/// most two separators in a row, as in `) `).
fn run_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start + 1;
    let mut last_digit = if bytes[start].is_ascii_digit() {
        start + 1
    } else {
        start
    };
    let mut separators = 0;
    while end < bytes.len() {
        let byte = bytes[end];
        if byte.is_ascii_digit() {
            separators = 0;
            last_digit = end + 1;
        } else if is_separator(byte) && separators < 2 {
            separators += 1;
        } else {
            break;
        }
        end += 1;
    }
    if bytes[start] == b'(' {
        last_digit.max(start + 1)
    } else {
        last_digit
    }
}

fn touches(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b':' | b'.')
}

fn stands_alone(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = start == 0 || !touches(bytes[start - 1]);
    let after = end >= bytes.len() || !touches(bytes[end]);
    before && after
}

fn looks_like_phone(run: &[u8]) -> bool {
    let digits: Vec<u8> = run.iter().copied().filter(u8::is_ascii_digit).collect();
    if !(8..=15).contains(&digits.len()) {
        return false;
    }
    let grouped = run.iter().any(|&b| is_separator(b));
    let international = run.first() == Some(&b'+') || digits.starts_with(b"00");
    let trunk = digits.first() == Some(&b'0') && digits.len() >= 10;
    international || grouped || trunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_found_anywhere() {
        for text in [
            "ada@example.org",
            r#"{"targetId":"x","note":"mail ada.l+x@mail.example.co.uk now"}"#,
            "A@B.CD",
        ] {
            assert!(contains_email(text), "{text}");
        }
        for text in [
            "@example.org",
            "ada@",
            "ada@localhost",
            "a@b.c",
            "order@12",
            "user@1.2",
        ] {
            assert!(!contains_email(text), "{text}");
        }
    }

    #[test]
    fn phone_numbers_are_found_in_their_usual_layouts() {
        for text in [
            "+442079460001",
            "+44 20 7946 0001",
            "call 0049 30 1234567",
            "030 1234 5678",
            "(030) 123-4567",
            "01511234567",
            r#"{"targetId":"+49-151-1234-5678"}"#,
        ] {
            assert!(contains_phone_number(text), "{text}");
        }
    }

    #[test]
    fn ids_times_and_short_numbers_are_not_phone_numbers() {
        for text in [
            "6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c",
            "12345678-1234-4234-8234-123456789012",
            "order-12345678",
            "inv_0301234567",
            "2026-12-03T01:50:24Z",
            "2026-12-03 01:50:24",
            "123456789012",
            "1234567",
            "+1234567",
            "invoice.issue",
        ] {
            assert!(!contains_phone_number(text), "{text}");
        }
    }
}
