//! The JSON of each resource as PayPal returns it (and as webhooks carry it), always from the
//! current state, with HATEOAS links to this sandbox.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::sources::Instrument;
use super::state::{Authorization, Capture, CaptureStatus, Inner, Order, Refund};

/// PayPal's timestamps: RFC 3339, UTC, whole seconds (`2026-12-02T18:33:00Z`).
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn link(href: String, rel: &str, method: &str) -> Value {
    json!({"href": href, "rel": rel, "method": method})
}

/// Inserts `custom_id` / `invoice_id` when present.
fn labels(
    object: &mut Map<String, Value>,
    custom_id: Option<&String>,
    invoice_id: Option<&String>,
) {
    if let Some(custom_id) = custom_id {
        object.insert("custom_id".into(), json!(custom_id));
    }
    if let Some(invoice_id) = invoice_id {
        object.insert("invoice_id".into(), json!(invoice_id));
    }
}

fn seller_protection() -> Value {
    json!({"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]})
}

/// An authorization; `related` adds `supplementary_data` (the GET and webhook form).
pub fn authorization(base: &str, inner: &Inner, auth: &Authorization, related: bool) -> Value {
    let order = inner.order(&auth.order_id);
    let mut object = Map::new();
    object.insert("id".into(), json!(auth.id));
    object.insert("status".into(), json!(auth.status.as_str()));
    object.insert("amount".into(), auth.amount.to_json());
    labels(
        &mut object,
        order.and_then(|o| o.labels.custom_id.as_ref()),
        order.and_then(|o| o.labels.invoice_id.as_ref()),
    );
    object.insert("seller_protection".into(), seller_protection());
    object.insert("expiration_time".into(), json!(time(auth.expiration_time)));
    object.insert("create_time".into(), json!(time(auth.create_time)));
    object.insert("update_time".into(), json!(time(auth.update_time)));
    if related {
        object.insert(
            "supplementary_data".into(),
            json!({"related_ids": {"order_id": auth.order_id}}),
        );
    }
    let href = format!("{base}/v2/payments/authorizations/{}", auth.id);
    object.insert(
        "links".into(),
        json!([
            link(href.clone(), "self", "GET"),
            link(format!("{href}/capture"), "capture", "POST"),
            link(format!("{href}/void"), "void", "POST"),
            link(format!("{href}/reauthorize"), "reauthorize", "POST"),
            link(
                format!("{base}/v2/checkout/orders/{}", auth.order_id),
                "up",
                "GET"
            ),
        ]),
    );
    Value::Object(object)
}

/// A capture; `related` adds `supplementary_data` (the GET and webhook form).
pub fn capture(base: &str, inner: &Inner, capture: &Capture, related: bool) -> Value {
    let order = inner.order(&capture.order_id);
    let mut object = Map::new();
    object.insert("id".into(), json!(capture.id));
    object.insert("status".into(), json!(capture.status.as_str()));
    match capture.status {
        CaptureStatus::Pending => {
            object.insert("status_details".into(), json!({"reason": "PENDING_REVIEW"}));
        }
        CaptureStatus::Declined => {
            object.insert(
                "processor_response".into(),
                json!({"avs_code": "Y", "cvv_code": "M", "response_code": "5400"}),
            );
        }
        _ => {}
    }
    object.insert("amount".into(), capture.amount.to_json());
    object.insert("final_capture".into(), json!(capture.final_capture));
    object.insert("seller_protection".into(), seller_protection());
    object.insert("disbursement_mode".into(), json!("INSTANT"));
    labels(
        &mut object,
        order.and_then(|o| o.labels.custom_id.as_ref()),
        capture.invoice_id.as_ref(),
    );
    object.insert("create_time".into(), json!(time(capture.create_time)));
    object.insert("update_time".into(), json!(time(capture.update_time)));
    if related {
        let mut ids = json!({"order_id": capture.order_id});
        if let Some(authorization_id) = &capture.authorization_id {
            ids["authorization_id"] = json!(authorization_id);
        }
        object.insert("supplementary_data".into(), json!({"related_ids": ids}));
    }
    let href = format!("{base}/v2/payments/captures/{}", capture.id);
    let up = match &capture.authorization_id {
        Some(id) => format!("{base}/v2/payments/authorizations/{id}"),
        None => format!("{base}/v2/checkout/orders/{}", capture.order_id),
    };
    object.insert(
        "links".into(),
        json!([
            link(href.clone(), "self", "GET"),
            link(format!("{href}/refund"), "refund", "POST"),
            link(up, "up", "GET"),
        ]),
    );
    Value::Object(object)
}

/// A refund; `related` adds `supplementary_data` (the webhook form).
pub fn refund(base: &str, inner: &Inner, refund: &Refund, related: bool) -> Value {
    let order = inner.order(&refund.order_id);
    let mut object = Map::new();
    object.insert("id".into(), json!(refund.id));
    object.insert("status".into(), json!("COMPLETED"));
    object.insert("amount".into(), refund.amount.to_json());
    labels(
        &mut object,
        order.and_then(|o| o.labels.custom_id.as_ref()),
        refund.invoice_id.as_ref(),
    );
    object.insert("create_time".into(), json!(time(refund.create_time)));
    object.insert("update_time".into(), json!(time(refund.create_time)));
    if related {
        let mut ids = json!({"order_id": refund.order_id, "capture_id": refund.capture_id});
        if let Some(auth) = order.and_then(|o| o.authorization_id.as_ref()) {
            ids["authorization_id"] = json!(auth);
        }
        object.insert("supplementary_data".into(), json!({"related_ids": ids}));
    }
    object.insert(
        "links".into(),
        json!([
            link(
                format!("{base}/v2/payments/refunds/{}", refund.id),
                "self",
                "GET"
            ),
            link(
                format!("{base}/v2/payments/captures/{}", refund.capture_id),
                "up",
                "GET"
            ),
        ]),
    );
    Value::Object(object)
}

/// `payment_source` of an order: what PayPal shows of the vaulted instrument.
fn payment_source(order: &Order) -> Value {
    match order.instrument {
        Instrument::Card => {
            json!({"card": {"last_digits": "1111", "brand": "VISA", "type": "CREDIT"}})
        }
        Instrument::PayPal => json!({"paypal": {
            "email_address": "sandbox-buyer@example.com",
            "account_id": order.payer_id,
            "account_status": "VERIFIED",
            "name": {"given_name": "Sandbox", "surname": "Buyer"},
        }}),
    }
}

/// An order with its payments in their current states.
pub fn order(base: &str, inner: &Inner, order: &Order) -> Value {
    let mut unit = Map::new();
    if let Some(reference_id) = &order.labels.reference_id {
        unit.insert("reference_id".into(), json!(reference_id));
    }
    labels(
        &mut unit,
        order.labels.custom_id.as_ref(),
        order.labels.invoice_id.as_ref(),
    );
    unit.insert("amount".into(), order.amount.to_json());
    let mut payments = Map::new();
    if let Some(auth) = order
        .authorization_id
        .as_ref()
        .and_then(|id| inner.authorizations.get(id))
    {
        payments.insert(
            "authorizations".into(),
            json!([authorization(base, inner, auth, false)]),
        );
    }
    if let Some(found) = order
        .capture_id
        .as_ref()
        .and_then(|id| inner.captures.get(id))
    {
        payments.insert(
            "captures".into(),
            json!([capture(base, inner, found, false)]),
        );
    }
    if !payments.is_empty() {
        unit.insert("payments".into(), Value::Object(payments));
    }
    json!({
        "id": order.id,
        "status": "COMPLETED",
        "intent": order.intent.as_str(),
        "payment_source": payment_source(order),
        "purchase_units": [Value::Object(unit)],
        "payer": {
            "name": {"given_name": "Sandbox", "surname": "Buyer"},
            "email_address": "sandbox-buyer@example.com",
            "payer_id": order.payer_id,
        },
        "create_time": time(order.create_time),
        "update_time": time(order.update_time),
        "links": [link(format!("{base}/v2/checkout/orders/{}", order.id), "self", "GET")],
    })
}
