//! Amounts as PayPal writes them (`{"currency_code":"USD","value":"12.34"}`), kept as exact
//! minor units: no floats anywhere.

use serde_json::{json, Value};

/// The currencies PayPal's REST API accepts.
const CURRENCIES: &[&str] = &[
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN",
    "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
];

/// An amount in one currency, in its minor unit (cents for USD, yen for JPY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub currency: String,
    pub minor: i64,
}

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the currency code is not three upper-case letters")]
    CurrencySyntax,
    #[error("the currency is not supported")]
    CurrencyNotSupported,
    #[error("the value is not a decimal number")]
    ValueSyntax,
    #[error("the value has more decimal places than the currency allows")]
    DecimalPrecision,
}

/// Decimal places of `currency` (PayPal: none for HUF, JPY and TWD).
fn exponent(currency: &str) -> u32 {
    match currency {
        "HUF" | "JPY" | "TWD" => 0,
        _ => 2,
    }
}

impl Money {
    /// Parses a `currency_code` and a `value` such as `"12.34"` or `"-1.5"`.
    pub fn parse(currency: &str, value: &str) -> Result<Self, MoneyError> {
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::CurrencySyntax);
        }
        if !CURRENCIES.contains(&currency) {
            return Err(MoneyError::CurrencyNotSupported);
        }
        let minor = parse_minor(value, exponent(currency))?;
        Ok(Self {
            currency: currency.to_owned(),
            minor,
        })
    }

    /// The same currency with another amount.
    pub fn with_minor(&self, minor: i64) -> Self {
        Self {
            currency: self.currency.clone(),
            minor,
        }
    }

    /// The value as PayPal writes it, with the currency's decimal places.
    pub fn value(&self) -> String {
        let places = exponent(&self.currency);
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        if places == 0 {
            return format!("{sign}{magnitude}");
        }
        let unit = 10u64.pow(places);
        let width = places as usize;
        format!(
            "{sign}{}.{:0width$}",
            magnitude / unit,
            magnitude % unit,
            width = width
        )
    }

    /// `{"currency_code": ..., "value": ...}`.
    pub fn to_json(&self) -> Value {
        json!({"currency_code": self.currency, "value": self.value()})
    }
}

/// `value` in minor units of a currency with `places` decimal places.
fn parse_minor(value: &str, places: u32) -> Result<i64, MoneyError> {
    if value.is_empty() || value.len() > 32 {
        return Err(MoneyError::ValueSyntax);
    }
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(whole.is_empty() && fraction.is_empty())
        && !(digits.contains('.') && fraction.is_empty());
    if !well_formed {
        return Err(MoneyError::ValueSyntax);
    }
    if fraction.len() > places as usize {
        return Err(MoneyError::DecimalPrecision);
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| MoneyError::ValueSyntax)?
    };
    let padded = format!("{fraction:0<width$}", width = places as usize);
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| MoneyError::ValueSyntax)?
    };
    let minor = whole
        .checked_mul(10i64.pow(places))
        .and_then(|units| units.checked_add(fraction))
        .ok_or(MoneyError::ValueSyntax)?;
    Ok(if negative { -minor } else { minor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_exact_minor_units() {
        let money = Money::parse("USD", "12.3").unwrap();
        assert_eq!(money.minor, 1230);
        assert_eq!(money.value(), "12.30");
        assert_eq!(Money::parse("JPY", "500").unwrap().value(), "500");
        assert_eq!(Money::parse("USD", ".5").unwrap().minor, 50);
        assert_eq!(Money::parse("USD", "-0.01").unwrap().value(), "-0.01");
    }

    #[test]
    fn refuses_what_paypal_refuses() {
        assert_eq!(
            Money::parse("USD", "1.234"),
            Err(MoneyError::DecimalPrecision)
        );
        assert_eq!(
            Money::parse("JPY", "1.5"),
            Err(MoneyError::DecimalPrecision)
        );
        assert_eq!(Money::parse("USD", "1,00"), Err(MoneyError::ValueSyntax));
        assert_eq!(Money::parse("USD", "1."), Err(MoneyError::ValueSyntax));
        assert_eq!(Money::parse("usd", "1"), Err(MoneyError::CurrencySyntax));
        assert_eq!(
            Money::parse("XYZ", "1"),
            Err(MoneyError::CurrencyNotSupported)
        );
    }
}
