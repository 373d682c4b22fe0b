//! Transaction Search v1 (`GET /v1/reporting/transactions`), every page of a date range.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use crate::outbound::OutboundRequest;

use super::client::PayPalClient;
use super::error::PayPalError;
use super::types::Transaction;
use super::wire::Amount;

/// PayPal searches at most 31 days at a time.
const MAX_RANGE_DAYS: i64 = 31;
const PAGE_SIZE: u32 = 500;
/// A bound on the pages followed (500 × 200 = 100,000 transactions in one range).
const MAX_PAGES: u32 = 200;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    transaction_details: Vec<Detail>,
    #[serde(default)]
    total_pages: u32,
}

#[derive(Deserialize)]
struct Detail {
    transaction_info: Info,
}

#[derive(Deserialize)]
struct Info {
    transaction_id: String,
    transaction_event_code: Option<String>,
    transaction_status: Option<String>,
    transaction_amount: Option<Amount>,
    invoice_id: Option<String>,
    custom_field: Option<String>,
    transaction_initiation_date: Option<String>,
}

impl PayPalClient {
    /// Transactions initiated in `[start, end]` (at most 31 days), all pages.
    pub async fn transactions(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Transaction>, PayPalError> {
        if end <= start || end - start > chrono::Duration::days(MAX_RANGE_DAYS) {
            return Err(PayPalError::InvalidRange(format!(
                "from {start} to {end}: the end must follow the start, at most {MAX_RANGE_DAYS} days later"
            )));
        }
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let request = OutboundRequest::get("/v1/reporting/transactions")
                .query(
                    "start_date",
                    start.to_rfc3339_opts(SecondsFormat::Secs, true),
                )
                .query("end_date", end.to_rfc3339_opts(SecondsFormat::Secs, true))
                .query("fields", "transaction_info")
                .query("page_size", PAGE_SIZE.to_string())
                .query("page", page.to_string());
            let body: Page = self.call(request).await?;
            for detail in body.transaction_details {
                out.push(transaction(detail.transaction_info)?);
            }
            if page >= body.total_pages || page >= MAX_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }
}

fn transaction(info: Info) -> Result<Transaction, PayPalError> {
    Ok(Transaction {
        amount: info
            .transaction_amount
            .as_ref()
            .map(Amount::to_money)
            .transpose()?,
        id: info.transaction_id,
        event_code: info.transaction_event_code,
        status: info.transaction_status,
        invoice_id: info.invoice_id,
        custom_field: info.custom_field,
        initiated_at: info
            .transaction_initiation_date
            .as_deref()
            .and_then(paypal_time),
    })
}

/// PayPal's report times: `2014-07-11T04:03:52+0000` (no colon in the offset) or RFC 3339.
pub(crate) fn paypal_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_are_read_with_or_without_offset_colon() {
        let expected = "2014-07-11T04:03:52Z".parse::<DateTime<Utc>>().ok();
        assert_eq!(paypal_time("2014-07-11T04:03:52+0000"), expected);
        assert_eq!(paypal_time("2014-07-11T06:03:52+02:00"), expected);
        assert_eq!(paypal_time("yesterday"), None);
    }
}
