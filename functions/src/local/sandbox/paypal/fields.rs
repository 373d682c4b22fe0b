//! Reading request bodies the way PayPal validates them: JSON objects, optional strings with
//! maximum lengths and amounts, each refusal naming its field by JSON pointer.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::errors::{Api, ApiError, Detail};
use super::money::{Money, MoneyError};

/// The body as a JSON object; an empty body reads as `{}`.
pub fn object(body: &Bytes, api: Api) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(ApiError::malformed_json(api)),
    }
}

/// `400 MISSING_REQUIRED_PARAMETER` at `field`.
pub fn missing(api: Api, field: &str) -> ApiError {
    ApiError::invalid(
        api,
        Detail::body(
            field,
            None,
            "MISSING_REQUIRED_PARAMETER",
            "A required field / parameter is missing.",
        ),
    )
}

/// `400 INVALID_PARAMETER_VALUE` at `field`.
pub fn invalid_value(api: Api, field: &str, value: &str) -> ApiError {
    ApiError::invalid(
        api,
        Detail::body(
            field,
            Some(value),
            "INVALID_PARAMETER_VALUE",
            "The value of a field is invalid.",
        ),
    )
}

/// An optional string of at most `max` characters at `parent[key]`.
pub fn text(
    parent: &Value,
    key: &str,
    pointer: &str,
    max: usize,
    api: Api,
) -> Result<Option<String>, ApiError> {
    let field = format!("{pointer}/{key}");
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() > max => Err(ApiError::invalid(
            api,
            Detail::body(
                &field,
                Some(text),
                "INVALID_STRING_MAX_LENGTH",
                &format!("The value of a field is too long. Maximum length is {max}."),
            ),
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::invalid(
            api,
            Detail::body(
                &field,
                Some(&other.to_string()),
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
            ),
        )),
    }
}

/// The amount at `parent.amount` (`pointer` is the parent's JSON pointer), if present.
pub fn amount(parent: &Value, pointer: &str, api: Api) -> Result<Option<Money>, ApiError> {
    let field = format!("{pointer}/amount");
    let amount = match parent.get("amount") {
        None | Some(Value::Null) => return Ok(None),
        Some(amount @ Value::Object(_)) => amount,
        Some(other) => return Err(invalid_value(api, &field, &other.to_string())),
    };
    let currency_field = format!("{field}/currency_code");
    let value_field = format!("{field}/value");
    let currency = text(amount, "currency_code", &field, 3, api)?
        .ok_or_else(|| missing(api, &currency_field))?;
    let value =
        text(amount, "value", &field, 32, api)?.ok_or_else(|| missing(api, &value_field))?;
    let money = Money::parse(&currency, &value).map_err(|error| match error {
        MoneyError::CurrencySyntax => invalid_value(api, &currency_field, &currency),
        MoneyError::CurrencyNotSupported => ApiError::unprocessable(
            api,
            Detail::body(
                &currency_field,
                Some(&currency),
                "CURRENCY_NOT_SUPPORTED",
                "Currency code is unsupported.",
            ),
        ),
        MoneyError::ValueSyntax => ApiError::invalid(
            api,
            Detail::body(
                &value_field,
                Some(&value),
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
            ),
        ),
        MoneyError::DecimalPrecision => ApiError::unprocessable(
            api,
            Detail::body(
                &value_field,
                Some(&value),
                "DECIMAL_PRECISION",
                "If the currency supports decimals, only two decimal place precision is supported.",
            ),
        ),
    })?;
    if money.minor <= 0 {
        return Err(ApiError::unprocessable(
            api,
            Detail::body(
                &value_field,
                Some(&value),
                "CANNOT_BE_ZERO_OR_NEGATIVE",
                "Must be greater than zero. If the currency supports decimals, only two decimal place precision is supported.",
            ),
        ));
    }
    Ok(Some(money))
}
