//! `CustomersApi`: customer profiles and GDPR rights under `/api/v1/customers` (HTTP trigger,
//! route `v1/customers/{*path}`; erasure requests leave through the outbox to the queue
//! `gdpr-requests`).
//!
//! Employees (`admin`, `customer-service`) manage their tenant's customers; a client sees and
//! changes only their own record (any other id answers 404, like a missing one).
//!
//! - `GET /customers` (paged), `POST /customers`, `GET /customers/{id}`,
//!   `PUT /customers/{id}` (`If-Match` honoured: 412 when stale).
//! - `GET /customers/{id}/orders` (paged).
//! - `POST /customers/{id}/gdpr/export`: everything held about the customer (profile, consents
//!   with their history, notification preferences, orders, payments with their refunds, notifications, audit trail).
//! - `GET /customers/{id}/consents`, `PUT /customers/{id}/consents/{purpose}` (handled by
//!   [`consents`]).
//! - `GET /customers/{id}/preferences`, `PUT /customers/{id}/preferences`: notification
//!   preferences per event type and channel (handled by [`preferences`]).
//! - `DELETE /customers/{id}`: records an erasure request and, in the same transaction, its
//!   message for `gdpr-requests` in the outbox; answers `202` with its status URL,
//!   `GET /customers/{id}/gdpr/erasure/{requestId}` (which shows `queuedAt`: when its message
//!   was last queued, by the request or by `DatabaseMaintenance` re-announcing it).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Json;
use serde_json::json;
use shared::auth::Role;
use shared::domain::customer::{Customer, CustomerInput, CustomerStatus};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::notification::Recipient;
use shared::domain::order::Order;
use shared::domain::validation::new_id;
use shared::store::{AuditFilter, OrderFilter, PageRequest, PaymentFilter, MAX_PAGE_SIZE};

use crate::api::openapi::{self, Access, Operation};
use crate::api::reads::{record_read, Read};
use crate::api::{etag_header, if_match, ApiError, Caller, JsonBody, PageResponse, QueryParams};
use crate::startup::AppState;
use shared::security::Rule;

mod consents;
mod preferences;

/// Staff roles that manage customers.
const CUSTOMER_ROLES: &[Role] = &[Role::Admin, Role::CustomerService];

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    const READ: Access = Access::SignedIn("employees; a client only for their own customer id");
    const WRITE: Access =
        Access::SignedIn("admin, customer-service; a client only for their own customer id");
    const PAGE: &[(&str, &str)] = &[
        ("limit", "page size, 1 to 100 (default 20)"),
        ("continuation", "the token from the previous page"),
    ];
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/customers",
            "listCustomers",
            "List customers (a client gets only their own)",
            get(list),
        )
        .access(READ)
        .query(PAGE)
        .returns::<PageResponse<Customer>>(200, "A page of customers, oldest first"),
        Operation::new(
            Method::POST,
            "/api/v1/customers",
            "createCustomer",
            "Create a customer",
            post(create),
        )
        .access(Access::SignedIn("admin, customer-service"))
        .body::<CustomerInput>()
        .example(customer_example)
        .returns::<Customer>(201, "Created; Location and ETag headers are set")
        .links(CUSTOMER_LINKS)
        .errors(&[400, 401, 403, 413, 415]),
        Operation::new(
            Method::GET,
            "/api/v1/customers/{id}",
            "getCustomer",
            "Read a customer",
            get(read),
        )
        .access(READ)
        .returns::<Customer>(200, "The customer; ETag header set"),
        Operation::new(
            Method::PUT,
            "/api/v1/customers/{id}",
            "updateCustomer",
            "Replace a customer's profile",
            put(update),
        )
        .access(WRITE)
        .headers(&[("If-Match", "the ETag you read; 412 when it changed since")])
        .body::<CustomerInput>()
        .example(customer_example)
        .returns::<Customer>(200, "Updated; new ETag")
        .errors(&[400, 401, 403, 404, 409, 412, 413, 415]),
        Operation::new(
            Method::DELETE,
            "/api/v1/customers/{id}",
            "requestErasure",
            "Request erasure of the customer (GDPR)",
            delete(request_erasure),
        )
        .access(WRITE)
        .returns::<ErasureAccepted>(202, "Recorded and queued; Location is the status URL")
        .links(&[(
            "getErasure",
            &[
                ("id", "$request.path.id"),
                ("request_id", "$response.body#/requestId"),
            ],
        )]),
        Operation::new(
            Method::GET,
            "/api/v1/customers/{id}/orders",
            "listCustomerOrders",
            "The customer's orders",
            get(orders),
        )
        .access(READ)
        .query(PAGE)
        .returns::<PageResponse<Order>>(200, "A page of orders, newest first"),
        Operation::new(
            Method::POST,
            "/api/v1/customers/{id}/gdpr/export",
            "exportCustomer",
            "Everything held about the customer (GDPR access)",
            post(export),
        )
        .access(WRITE)
        .returns::<CustomerExport>(
            200,
            "Profile, consents with their history, notification preferences, orders, payments, notifications and audit trail",
        ),
        Operation::new(
            Method::GET,
            "/api/v1/customers/{id}/gdpr/erasure/{request_id}",
            "getErasure",
            "Progress of an erasure request",
            get(erasure_status),
        )
        .access(READ)
        .returns::<ErasureRecord>(200, "The erasure request"),
    ]
    .into_iter()
    .chain(consents::operations())
    .chain(preferences::operations())
    .map(|operation| operation.tag("customers"))
    .collect()
}

/// Where a new customer's id is used.
const CUSTOMER_LINKS: &[openapi::Link] = &[
    ("getCustomer", &[("id", "$response.body#/id")]),
    (
        "updateCustomer",
        &[
            ("id", "$response.body#/id"),
            ("header.If-Match", "$response.header.ETag"),
        ],
    ),
    ("listCustomerOrders", &[("id", "$response.body#/id")]),
    ("exportCustomer", &[("id", "$response.body#/id")]),
    ("getPreferences", &[("id", "$response.body#/id")]),
    ("putPreferences", &[("id", "$response.body#/id")]),
    ("requestErasure", &[("id", "$response.body#/id")]),
];

fn customer_example() -> serde_json::Value {
    json!({
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "phone": "+442079460001",
        "address": {"line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
        "preferences": {"inApp": true, "email": true, "sms": false}
    })
}

/// The answer to `DELETE /customers/{id}`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureAccepted {
    request_id: String,
    status: ErasureStatus,
    status_url: String,
}

/// The answer to `POST /customers/{id}/gdpr/export`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerExport {
    exported_at: chrono::DateTime<chrono::Utc>,
    customer: Customer,
    /// Every purpose's current state and every grant and withdrawal, oldest first.
    consents: shared::domain::consent::Consents,
    /// The notification preferences (the defaults, without `updatedAt`, when never set).
    preferences: shared::domain::preferences::Preferences,
    orders: Vec<Order>,
    /// The customer's payments, newest first, with their refunds, statuses, amounts and the
    /// payer as stored (after an erasure: no payer, and `erasure` says under which rules).
    payments: Vec<shared::domain::payment::Payment>,
    /// The customer's shipments, oldest first: carrier, tracking number, label URL (removed by
    /// an erasure), status.
    shipments: Vec<shared::domain::shipment::Shipment>,
    notifications: Vec<shared::domain::notification::Notification>,
    audit_trail: Vec<shared::domain::audit::AuditEntry>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    if let Some(own) = caller.principal.customer_id() {
        let customer = state
            .ports
            .customers
            .get_customer(caller.tenant(), own)
            .await?;
        return Ok(Json(json!({ "items": [customer] })).into_response());
    }
    caller.require_employee("list customers")?;
    let listing = state.page_tokens.listing(caller.tenant(), "customers:list");
    let page = state
        .ports
        .customers
        .list_customers(caller.tenant(), listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    caller.require_role(CUSTOMER_ROLES, "create customers")?;
    let input: CustomerInput = body.parse()?;
    input.validate()?;
    let now = shared::domain::now();
    let customer = Customer {
        id: new_id(),
        tenant_id: caller.tenant().to_string(),
        name: input.name.trim().to_owned(),
        email: input.email,
        phone: input.phone,
        address: input.address,
        preferences: input.preferences.unwrap_or_default(),
        status: CustomerStatus::Active,
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        etag: String::new(),
    };
    let audit = caller
        .audit("customer.create", "customer", &customer.id)
        .about_customer(&customer.id);
    let customer = state
        .ports
        .customers
        .create_customer(caller.tenant(), customer, audit)
        .await?;
    let mut response = with_etag(StatusCode::CREATED, &customer);
    if let Ok(location) = format!("/api/v1/customers/{}", customer.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_read(&caller, &id)?;
    let customer = load_for_read(&state, &caller, &id, "customer.read").await?;
    Ok(with_etag(StatusCode::OK, &customer))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_write(&caller, &id, "change customers")?;
    let if_match = if_match(&headers)?;
    let input: CustomerInput = body.parse()?;
    input.validate()?;
    let audit = caller
        .audit("customer.update", "customer", &id)
        .about_customer(&id);
    let customer = state
        .ports
        .customers
        .update_customer(caller.tenant(), &id, input, if_match, audit)
        .await?;
    Ok(with_etag(StatusCode::OK, &customer))
}

async fn orders(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    check_read(&caller, &id)?;
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    load_for_read(&state, &caller, &id, "customer.orders.read").await?;
    let filter = OrderFilter {
        customer_id: Some(id),
        ..OrderFilter::default()
    };
    let listing = state
        .page_tokens
        .listing(caller.tenant(), "customers:orders");
    let page = state
        .ports
        .orders
        .list_orders(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

/// Everything held about a customer, read page by page (bounded per kind).
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Err(refused) = check_write(&caller, &id, "export customer data") {
        crate::api::security::observe(&state, &caller, Rule::RefusedGdprRequest, &id).await;
        return Err(refused);
    }
    crate::api::security::observe(&state, &caller, Rule::BulkExport, &id).await;
    let tenant = caller.tenant().clone();
    let customer = state.ports.customers.get_customer(&tenant, &id).await?;
    let orders = collect_pages(|page| {
        state.ports.orders.list_orders(
            &tenant,
            OrderFilter {
                customer_id: Some(id.clone()),
                ..OrderFilter::default()
            },
            page,
        )
    })
    .await?;
    let payments = collect_pages(|page| {
        state.ports.payments.list_payments(
            &tenant,
            PaymentFilter {
                customer_id: Some(id.clone()),
                ..PaymentFilter::default()
            },
            page,
        )
    })
    .await?;
    let shipments = state
        .ports
        .shipments
        .customer_shipments(&tenant, &id)
        .await?;
    let recipients = [Recipient::Customer(id.clone())];
    let notifications = collect_pages(|page| {
        state
            .ports
            .notifications
            .list_notifications(&tenant, &recipients, page)
    })
    .await?;
    let audit_trail = collect_pages(|page| {
        state.ports.audit.list_audit(
            &tenant,
            AuditFilter {
                customer_id: Some(id.clone()),
                ..AuditFilter::default()
            },
            page,
        )
    })
    .await?;
    state
        .ports
        .audit
        .append_audit(
            &tenant,
            caller
                .audit("gdpr.export", "customer", &id)
                .about_customer(&id),
        )
        .await?;
    let consents = consents::consents(&state, &tenant, &id).await?;
    let preferences = preferences::preferences(&state, &tenant, &id).await?;
    Ok(Json(CustomerExport {
        exported_at: shared::domain::now(),
        customer,
        consents,
        preferences,
        orders,
        payments,
        shipments,
        notifications,
        audit_trail,
    })
    .into_response())
}

/// Most items of one kind an export gathers (100 pages of 100).
const EXPORT_PAGES: usize = 100;

async fn collect_pages<T, F, Fut>(mut next: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = shared::store::StoreResult<shared::store::Page<T>>>,
{
    let mut items = Vec::new();
    let mut continuation = None;
    for _ in 0..EXPORT_PAGES {
        let page = next(PageRequest::new(MAX_PAGE_SIZE, continuation)).await?;
        items.extend(page.items);
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => return Ok(items),
        }
    }
    Err(ApiError::Internal(
        "the export is larger than this endpoint returns at once".into(),
    ))
}

/// `DELETE /customers/{id}`: record the erasure request (the store queues it through the
/// outbox in the same transaction), answer 202.
async fn request_erasure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Err(refused) = check_write(&caller, &id, "request erasure of customers") {
        crate::api::security::observe(&state, &caller, Rule::RefusedGdprRequest, &id).await;
        return Err(refused);
    }
    let now = shared::domain::now();
    let record = ErasureRecord {
        id: new_id(),
        tenant_id: caller.tenant().to_string(),
        customer_id: id.clone(),
        requested_by: caller.principal.subject.clone(),
        status: ErasureStatus::Accepted,
        requested_at: now,
        updated_at: now,
        queued_at: None,
        report: None,
    };
    let audit = caller
        .audit("gdpr.erasure.request", "customer", &id)
        .about_customer(&id);
    let (record, _created) = state
        .ports
        .customers
        .request_erasure(caller.tenant(), record, audit)
        .await?;
    let status_url = format!("/api/v1/customers/{id}/gdpr/erasure/{}", record.id);
    let accepted = ErasureAccepted {
        request_id: record.id.clone(),
        status: record.status,
        status_url: status_url.clone(),
    };
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if let Ok(location) = status_url.parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn erasure_status(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, request_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_read(&caller, &id)?;
    let record = state
        .ports
        .customers
        .get_erasure(caller.tenant(), &id, &request_id)
        .await?;
    Ok(Json(record).into_response())
}

/// The customer `id`, for a read the caller was checked for: an employee's read is recorded in
/// the customer's GDPR trail as `action` (a client's read of their own record is not).
pub(super) async fn load_for_read(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<Customer, ApiError> {
    let customer = state
        .ports
        .customers
        .get_customer(caller.tenant(), id)
        .await?;
    let read = Read {
        action,
        target_type: "customer",
        target_id: id,
        customer_id: id,
        status: Some(customer.status),
    };
    record_read(state, caller, read).await?;
    Ok(customer)
}

/// Reading: a client only their own record, any employee every record of the tenant.
fn check_read(caller: &Caller, customer_id: &str) -> Result<(), ApiError> {
    caller.check_customer(customer_id)
}

/// Changing (and exporting, erasing): a client only their own record, employees with a
/// customer role.
fn check_write(caller: &Caller, customer_id: &str, action: &str) -> Result<(), ApiError> {
    caller.check_customer(customer_id)?;
    if caller.principal.is_employee() {
        caller.require_role(CUSTOMER_ROLES, action)?;
    }
    Ok(())
}

fn with_etag(status: StatusCode, customer: &Customer) -> Response {
    (status, [etag_header(&customer.etag)], Json(customer)).into_response()
}
