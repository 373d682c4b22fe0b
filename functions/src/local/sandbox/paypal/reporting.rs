//! `GET /v1/reporting/transactions`: captures (`T0006`) and refunds (`T1107`, negative) whose
//! initiation date is in the range, at most 31 days, paged as PayPal pages them.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Map, Value};

use super::auth::Authorized;
use super::context::Shared;
use super::errors::{Api, ApiError, Detail};
use super::money::Money;
use super::state::Inner;

const API: Api = Api::Reporting;
const MAX_RANGE_DAYS: i64 = 31;
const MERCHANT_ACCOUNT: &str = "SANDBOXMERCHNT";

/// One row of the report before it is written out.
struct Row {
    id: String,
    event_code: &'static str,
    initiated: DateTime<Utc>,
    updated: DateTime<Utc>,
    amount: Money,
    status: &'static str,
    invoice_id: Option<String>,
    custom_id: Option<String>,
    payer_id: Option<String>,
    /// For a refund, the capture it refunds.
    reference_id: Option<String>,
}

/// The report's dates: `2026-12-02T18:33:00+0000`.
fn report_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

fn bad_query(field: &str, value: Option<&str>, issue: &str) -> ApiError {
    ApiError::invalid(API, Detail::at("query", field, value, issue))
}

/// `start_date` / `end_date`: RFC 3339 or PayPal's `2026-12-01T00:00:00-0700`.
fn date(query: &HashMap<String, String>, field: &str) -> Result<DateTime<Utc>, ApiError> {
    let value = query
        .get(field)
        .ok_or_else(|| bad_query(field, None, "MISSING_REQUIRED_PARAMETER"))?;
    DateTime::parse_from_rfc3339(value)
        .or_else(|_| DateTime::<FixedOffset>::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%z"))
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| bad_query(field, Some(value), "INVALID_PARAMETER_SYNTAX"))
}

/// A positive integer query parameter within `max`, or `default`.
fn number(
    query: &HashMap<String, String>,
    field: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match query.get(field) {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad_query(field, Some(value), "INVALID_PARAMETER_VALUE")),
    }
}

/// Every capture and refund, oldest first.
fn rows(inner: &Inner) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for capture in inner.captures.values() {
        let order = inner.orders.get(&capture.order_id);
        rows.push(Row {
            id: capture.id.clone(),
            event_code: "T0006",
            initiated: capture.create_time,
            updated: capture.update_time,
            amount: capture.amount.clone(),
            status: capture.status.report_code(),
            invoice_id: capture.invoice_id.clone(),
            custom_id: order.and_then(|o| o.labels.custom_id.clone()),
            payer_id: order.map(|o| o.payer_id.clone()),
            reference_id: None,
        });
    }
    for refund in inner.refunds.values() {
        let order = inner.orders.get(&refund.order_id);
        rows.push(Row {
            id: refund.id.clone(),
            event_code: "T1107",
            initiated: refund.create_time,
            updated: refund.create_time,
            amount: refund.amount.with_minor(-refund.amount.minor),
            status: "S",
            invoice_id: refund.invoice_id.clone(),
            custom_id: order.and_then(|o| o.labels.custom_id.clone()),
            payer_id: order.map(|o| o.payer_id.clone()),
            reference_id: Some(refund.capture_id.clone()),
        });
    }
    rows.sort_by(|a, b| a.initiated.cmp(&b.initiated).then(a.id.cmp(&b.id)));
    rows
}

fn row_json(row: &Row) -> Value {
    let mut info = Map::new();
    if let Some(payer_id) = &row.payer_id {
        info.insert("paypal_account_id".into(), json!(payer_id));
    }
    info.insert("transaction_id".into(), json!(row.id));
    if let Some(reference_id) = &row.reference_id {
        info.insert("paypal_reference_id".into(), json!(reference_id));
        info.insert("paypal_reference_id_type".into(), json!("TXN"));
    }
    info.insert("transaction_event_code".into(), json!(row.event_code));
    info.insert(
        "transaction_initiation_date".into(),
        json!(report_time(row.initiated)),
    );
    info.insert(
        "transaction_updated_date".into(),
        json!(report_time(row.updated)),
    );
    info.insert("transaction_amount".into(), row.amount.to_json());
    info.insert("transaction_status".into(), json!(row.status));
    if let Some(invoice_id) = &row.invoice_id {
        info.insert("invoice_id".into(), json!(invoice_id));
    }
    if let Some(custom_id) = &row.custom_id {
        info.insert("custom_field".into(), json!(custom_id));
    }
    json!({"transaction_info": Value::Object(info)})
}

/// `GET /v1/reporting/transactions`.
pub async fn transactions(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let start = date(&query, "start_date")?;
    let end = date(&query, "end_date")?;
    if end < start {
        return Err(bad_query(
            "end_date",
            query.get("end_date").map(String::as_str),
            "INVALID_DATE_RANGE",
        ));
    }
    if end - start > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::invalid(
            API,
            Detail {
                description: "Date range is greater than 31 days".into(),
                ..Detail::at(
                    "query",
                    "start_date",
                    query.get("start_date").map(String::as_str),
                    "INVALID_DATE_RANGE",
                )
            },
        ));
    }
    let page_size = number(&query, "page_size", 100, 500)?;
    let page = number(&query, "page", 1, usize::MAX)?;
    let matching: Vec<Row> = {
        let inner = sandbox.memory.lock();
        rows(&inner)
            .into_iter()
            .filter(|row| row.initiated >= start && row.initiated <= end)
            .collect()
    };
    let total = matching.len();
    let total_pages = total.div_ceil(page_size);
    let details: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(row_json)
        .collect();
    let self_href = format!(
        "{}/v1/reporting/transactions?start_date={}&end_date={}&page_size={page_size}&page={page}",
        sandbox.base_url,
        report_time(start).replace('+', "%2B"),
        report_time(end).replace('+', "%2B")
    );
    Ok(Json(json!({
        "transaction_details": details,
        "account_number": MERCHANT_ACCOUNT,
        "start_date": report_time(start),
        "end_date": report_time(end),
        "last_refreshed_datetime": report_time(Utc::now()),
        "page": page,
        "total_items": total,
        "total_pages": total_pages,
        "links": [{"href": self_href, "rel": "self", "method": "GET"}],
    })))
}
