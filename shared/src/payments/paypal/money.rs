//! Amounts between our integer minor units and PayPal's decimal strings (`"12.34"`), exactly:
//! no floating point.
//!
//! Minor units follow ISO 4217 (cents; JPY has none). PayPal takes no decimals at all for HUF,
//! JPY and TWD, so a HUF or TWD amount must be a whole number of forints or dollars to be sent.

/// An amount in a currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units (cents); negative for money going out (transaction search).
    pub minor: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

/// An amount PayPal cannot take or sent in a form we cannot read exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("currency {0:?} is not one PayPal supports")]
    UnsupportedCurrency(String),
    #[error("{currency} amount {minor} (minor units) has a fraction PayPal does not take for {currency}")]
    NotWhole { minor: i64, currency: String },
    #[error("amount must be positive, got {0} minor units")]
    NotPositive(i64),
    #[error("amount {value:?} {currency} is not an exact decimal of at most {decimals} decimals")]
    Malformed {
        value: String,
        currency: String,
        decimals: u32,
    },
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// (ISO 4217 decimals, decimals PayPal takes) of a PayPal currency.
fn decimals(currency: &str) -> Result<(u32, u32), AmountError> {
    const TWO: &[&str] = &[
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN", "NZD", "NOK",
        "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
    ];
    match currency {
        "JPY" => Ok((0, 0)),
        "HUF" | "TWD" => Ok((2, 0)),
        c if TWO.contains(&c) => Ok((2, 2)),
        other => Err(AmountError::UnsupportedCurrency(other.to_owned())),
    }
}

impl Money {
    pub fn new(minor: i64, currency: impl Into<String>) -> Self {
        Self {
            minor,
            currency: currency.into(),
        }
    }

    /// PayPal's `value` for this amount (`1234` USD → `"12.34"`, `500` JPY → `"500"`).
    pub fn to_paypal_value(&self) -> Result<String, AmountError> {
        let (iso, paypal) = decimals(&self.currency)?;
        let scale = 10i64.pow(iso - paypal);
        if self.minor % scale != 0 {
            return Err(AmountError::NotWhole {
                minor: self.minor,
                currency: self.currency.clone(),
            });
        }
        let units = self.minor / scale;
        let sign = if units < 0 { "-" } else { "" };
        let abs = units.unsigned_abs();
        if paypal == 0 {
            return Ok(format!("{sign}{abs}"));
        }
        let div = 10u64.pow(paypal);
        Ok(format!(
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = paypal as usize
        ))
    }

    /// Reads PayPal's `{currency_code, value}` exactly (`"12.3"` USD → 1230 minor units).
    pub fn from_paypal(value: &str, currency: &str) -> Result<Self, AmountError> {
        let (iso, _) = decimals(currency)?;
        let malformed = || AmountError::Malformed {
            value: value.to_owned(),
            currency: currency.to_owned(),
            decimals: iso,
        };
        let (negative, digits) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(malformed());
        }
        let significant = fraction.trim_end_matches('0');
        if significant.len() > iso as usize || (digits.contains('.') && fraction.is_empty()) {
            return Err(malformed());
        }
        let overflow = || AmountError::Overflow(value.to_owned());
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut minor = whole.checked_mul(10i64.pow(iso)).ok_or_else(overflow)?;
        if !significant.is_empty() {
            let padded = format!("{significant:0<width$}", width = iso as usize);
            let part: i64 = padded.parse().map_err(|_| malformed())?;
            minor = minor.checked_add(part).ok_or_else(overflow)?;
        }
        Ok(Self::new(if negative { -minor } else { minor }, currency))
    }

    /// Refuses zero and negative amounts (what we send is always positive).
    pub(crate) fn positive(self) -> Result<Self, AmountError> {
        if self.minor > 0 {
            Ok(self)
        } else {
            Err(AmountError::NotPositive(self.minor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_exactly() {
        for (minor, currency, value) in [
            (1234, "USD", "12.34"),
            (5, "EUR", "0.05"),
            (-46500, "USD", "-465.00"),
            (500, "JPY", "500"),
            (100_000, "HUF", "1000"),
            (i64::MAX / 100 * 100, "USD", "92233720368547758.00"),
        ] {
            let money = Money::new(minor, currency);
            assert_eq!(money.to_paypal_value().unwrap(), value);
            assert_eq!(Money::from_paypal(value, currency).unwrap(), money);
        }
    }

    #[test]
    fn paypal_shorthands_are_read() {
        assert_eq!(Money::from_paypal("12.3", "USD").unwrap().minor, 1230);
        assert_eq!(Money::from_paypal("12", "USD").unwrap().minor, 1200);
        assert_eq!(Money::from_paypal(".5", "USD").unwrap().minor, 50);
        assert_eq!(Money::from_paypal("500.00", "JPY").unwrap().minor, 500);
    }

    #[test]
    fn inexact_or_odd_amounts_are_refused() {
        for (value, currency) in [
            ("12.345", "USD"),
            ("12.5", "JPY"),
            ("1e3", "USD"),
            ("", "USD"),
            ("12.", "USD"),
            ("--1", "USD"),
            ("99999999999999999999", "USD"),
            ("1", "XXX"),
        ] {
            assert!(
                Money::from_paypal(value, currency).is_err(),
                "{value} {currency}"
            );
        }
        assert!(Money::new(150, "HUF").to_paypal_value().is_err());
        assert!(Money::new(0, "USD").positive().is_err());
    }
}
