//! `POST /v2/checkout/orders` with a vaulted payment source, processed at once as PayPal does
//! (the authorization or the capture is inside the order it returns), and
//! `GET /v2/checkout/orders/{id}`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::auth::Authorized;
use super::context::{Sandbox, Shared};
use super::errors::{Api, ApiError, Detail};
use super::fields;
use super::idempotency::{self, Effects, Post};
use super::ids;
use super::money::Money;
use super::payments;
use super::render;
use super::sources::{Behaviour, Instrument};
use super::state::{Authorization, AuthorizationStatus, Inner, Intent, Labels, Order, Outcome};
use super::webhooks;

/// How long an authorization can be captured (PayPal: 29 days).
const AUTHORIZATION_VALIDITY_DAYS: i64 = 29;

/// A create-order body that passed validation.
struct CreateOrder {
    intent: Intent,
    labels: Labels,
    amount: Money,
    instrument: Instrument,
    vault_id: String,
}

/// `POST /v2/checkout/orders`.
pub async fn create(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = fields::object(&body, Api::Orders)?;
    let request = parse(&body)?;
    let post = Post::new("orders".into(), &headers, body, Api::Orders);
    if post.request_id.is_none() {
        return Err(ApiError::invalid(
            Api::Orders,
            Detail::at(
                "header",
                "PayPal-Request-Id",
                None,
                "PAYPAL_REQUEST_ID_REQUIRED",
            ),
        ));
    }
    let behaviour = Behaviour::of(&request.vault_id);
    Ok(idempotency::run(
        &sandbox,
        post,
        |_| behaviour,
        move |inner, sandbox| process(inner, sandbox, request),
    )
    .await)
}

/// `GET /v2/checkout/orders/{id}`.
pub async fn show(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = sandbox.memory.lock();
    let order = inner
        .orders
        .get(&id)
        .ok_or_else(|| ApiError::not_found(Api::Orders, &id))?;
    Ok(Json(render::order(&sandbox.base_url, &inner, order)))
}

fn parse(body: &Value) -> Result<CreateOrder, ApiError> {
    let api = Api::Orders;
    let intent = match body.get("intent").and_then(Value::as_str) {
        Some("AUTHORIZE") => Intent::Authorize,
        Some("CAPTURE") => Intent::Capture,
        Some(other) => return Err(fields::invalid_value(api, "/intent", other)),
        None => return Err(fields::missing(api, "/intent")),
    };
    let units = body
        .get("purchase_units")
        .and_then(Value::as_array)
        .filter(|units| !units.is_empty())
        .ok_or_else(|| fields::missing(api, "/purchase_units"))?;
    if units.len() > 1 {
        return Err(ApiError::invalid(
            api,
            Detail::body(
                "/purchase_units",
                None,
                "INVALID_ARRAY_MAX_ITEMS",
                "The number of items in an array parameter is too large (this sandbox takes one purchase unit).",
            ),
        ));
    }
    let unit = &units[0];
    let pointer = "/purchase_units/0";
    let amount = fields::amount(unit, pointer, api)?
        .ok_or_else(|| fields::missing(api, "/purchase_units/0/amount"))?;
    let labels = Labels {
        reference_id: fields::text(unit, "reference_id", pointer, 256, api)?,
        custom_id: fields::text(unit, "custom_id", pointer, 127, api)?,
        invoice_id: fields::text(unit, "invoice_id", pointer, 127, api)?,
    };
    let (instrument, vault_id) = vault(body)?;
    Ok(CreateOrder {
        intent,
        labels,
        amount,
        instrument,
        vault_id,
    })
}

/// The vaulted instrument of `payment_source` (`card.vault_id` or `paypal.vault_id`).
fn vault(body: &Value) -> Result<(Instrument, String), ApiError> {
    let api = Api::Orders;
    let source = body
        .get("payment_source")
        .ok_or_else(|| fields::missing(api, "/payment_source"))?;
    for instrument in [Instrument::Card, Instrument::PayPal] {
        if let Some(entry) = source.get(instrument.key()) {
            let pointer = format!("/payment_source/{}", instrument.key());
            let vault_id = fields::text(entry, "vault_id", &pointer, 36, api)?
                .ok_or_else(|| fields::missing(api, &format!("{pointer}/vault_id")))?;
            return Ok((instrument, vault_id));
        }
    }
    Err(fields::missing(api, "/payment_source/card/vault_id"))
}

/// Creates the order and its authorization or capture.
fn process(
    inner: &mut Inner,
    sandbox: &Sandbox,
    request: CreateOrder,
) -> Result<Effects, ApiError> {
    let api = Api::Orders;
    let pointer = format!("/payment_source/{}/vault_id", request.instrument.key());
    let behaviour = match Behaviour::of(&request.vault_id) {
        Some(Behaviour::Decline) => {
            return Err(ApiError::unprocessable(
                api,
                Detail::issue(
                    "INSTRUMENT_DECLINED",
                    "The instrument presented  was either declined by the processor or bank, or it can't be used for this payment.",
                ),
            ))
        }
        Some(behaviour) => behaviour,
        None => {
            return Err(ApiError::unprocessable(
                api,
                Detail::body(
                    &pointer,
                    Some(&request.vault_id),
                    "INVALID_RESOURCE_ID",
                    "Specified resource ID does not exist. Please check the resource ID and try again.",
                ),
            ))
        }
    };
    if let Some(invoice_id) = request
        .labels
        .invoice_id
        .as_ref()
        .filter(|_| sandbox.config.unique_invoice_ids)
    {
        if inner.orders.values().any(|order| {
            order.behaviour != Behaviour::Deny
                && order.labels.invoice_id.as_ref() == Some(invoice_id)
        }) {
            return Err(ApiError::unprocessable(
                api,
                Detail::issue(
                    "DUPLICATE_INVOICE_ID",
                    "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account setting requires that Invoice ID be unique for each transaction.",
                ),
            ));
        }
    }
    let now = Utc::now();
    let payer_id = inner
        .payers
        .entry(request.vault_id.clone())
        .or_insert_with(ids::payer_id)
        .clone();
    let order_id = ids::resource_id();
    let order = Order {
        id: order_id.clone(),
        intent: request.intent,
        behaviour,
        instrument: request.instrument,
        payer_id,
        labels: request.labels,
        amount: request.amount,
        authorization_id: None,
        capture_id: None,
        create_time: now,
        update_time: now,
    };
    let invoice_id = order.labels.invoice_id.clone();
    let amount = order.amount.clone();
    inner.orders.insert(order_id.clone(), order);
    let mut effects = Effects::new(Outcome::Order(order_id.clone()));
    match request.intent {
        Intent::Authorize => authorize(inner, sandbox, &order_id, behaviour, &mut effects),
        Intent::Capture => {
            let capture_id = payments::record_capture(
                inner, &order_id, None, amount, true, invoice_id, behaviour,
            );
            if let Some(order) = inner.orders.get_mut(&order_id) {
                order.capture_id = Some(capture_id.clone());
            }
            effects.events.extend(webhooks::record_capture(
                inner,
                &sandbox.base_url,
                &capture_id,
            ));
            if behaviour == Behaviour::Slow {
                effects.slow_capture = Some(capture_id);
            }
        }
    }
    Ok(effects)
}

/// The authorization of an `AUTHORIZE` order: `CREATED`, or `DENIED` for `sandbox-deny`.
fn authorize(
    inner: &mut Inner,
    sandbox: &Sandbox,
    order_id: &str,
    behaviour: Behaviour,
    effects: &mut Effects,
) {
    let Some(order) = inner.orders.get_mut(order_id) else {
        return;
    };
    let now = order.create_time;
    let id = ids::resource_id();
    order.authorization_id = Some(id.clone());
    let status = if behaviour == Behaviour::Deny {
        AuthorizationStatus::Denied
    } else {
        AuthorizationStatus::Created
    };
    let authorization = Authorization {
        id: id.clone(),
        order_id: order_id.to_owned(),
        amount: order.amount.clone(),
        status,
        captured_minor: 0,
        create_time: now,
        update_time: now,
        expiration_time: now + chrono::Duration::days(AUTHORIZATION_VALIDITY_DAYS),
    };
    let summary = format!(
        "A payment authorization was created for {} {}",
        authorization.amount.value(),
        authorization.amount.currency
    );
    inner.authorizations.insert(id, authorization.clone());
    if status == AuthorizationStatus::Created {
        let resource = render::authorization(&sandbox.base_url, inner, &authorization, true);
        effects.events.push(webhooks::record(
            inner,
            &sandbox.base_url,
            "PAYMENT.AUTHORIZATION.CREATED",
            "authorization",
            summary,
            resource,
        ));
    }
}
