//! The API's operations, declared once: each [`Operation`] carries its route (the axum
//! handler) and its documentation. The routers of the API functions and the OpenAPI 3.1
//! document (`GET /api/v1/openapi.json`, also written to `apim-policies/openapi.json` for API
//! Management) are both built from these declarations, so they cannot drift apart; a test
//! checks the served document against the live routes as well.

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

use crate::startup::AppState;

/// The served document, built on first use from the operations the router was built from
/// (handed to the `ApiDefinition` function as a request extension by [`crate::app`]).
#[derive(Clone)]
pub struct ApiDocument {
    operations: fn() -> Vec<Operation>,
    built: std::sync::Arc<std::sync::OnceLock<Value>>,
}

impl ApiDocument {
    pub fn new(operations: fn() -> Vec<Operation>) -> Self {
        Self {
            operations,
            built: std::sync::Arc::default(),
        }
    }

    /// The document (built on the first call).
    pub fn get(&self) -> &Value {
        self.built.get_or_init(|| document((self.operations)()))
    }
}

/// Produces the schema of one type, registering its definitions in the generator.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// An OpenAPI link: the target operation id and its parameters' runtime expressions.
pub type Link = (&'static str, &'static [(&'static str, &'static str)]);

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Anonymous,
    /// A valid token; what the caller sees is scoped by tenant (and, for clients, customer).
    SignedIn(&'static str),
}

/// One API operation: method, path, handler, and what the document says about it.
pub struct Operation {
    pub method: Method,
    /// The axum path, under `/api` (`/api/v1/orders/{id}`).
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
    pub query: &'static [(&'static str, &'static str)],
    pub headers: &'static [(&'static str, &'static str)],
    /// The headers of [`Operation::headers`] that must be sent.
    pub required_headers: &'static [&'static str],
    pub request: Option<SchemaFn>,
    /// An example request body.
    pub example: Option<fn() -> Value>,
    /// OpenAPI links from the success response: the operation id, and each of its parameters
    /// with the runtime expression giving its value (like `$response.body#/id`).
    pub links: &'static [Link],
    pub success: (u16, &'static str, Option<SchemaFn>),
    /// Other success statuses answering with the same body (`202` still settling, `200` a replay).
    pub other_successes: &'static [(u16, &'static str)],
    pub errors: &'static [u16],
    pub route: MethodRouter<AppState>,
}

impl Operation {
    /// An operation answering `status` with no documented body yet; chain the rest.
    pub fn new(
        method: Method,
        path: &'static str,
        operation_id: &'static str,
        summary: &'static str,
        route: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            operation_id,
            summary,
            tag: "",
            access: Access::SignedIn("any signed-in caller of the tenant"),
            query: &[],
            headers: &[],
            required_headers: &[],
            request: None,
            example: None,
            links: &[],
            success: (200, "OK", None),
            other_successes: &[],
            errors: &[400, 401, 403, 404],
            route,
        }
    }

    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    pub fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }

    pub fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Marks headers of [`Operation::headers`] as required.
    pub fn require_headers(mut self, names: &'static [&'static str]) -> Self {
        self.required_headers = names;
        self
    }

    /// An example of the request body.
    pub fn example(mut self, example: fn() -> Value) -> Self {
        self.example = Some(example);
        self
    }

    /// Links from the success response to the operations that use what it returns.
    pub fn links(mut self, links: &'static [Link]) -> Self {
        self.links = links;
        self
    }

    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema_of::<T>);
        self
    }

    pub fn returns<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.success = (status, description, Some(schema_of::<T>));
        self
    }

    /// Other success statuses with the body of [`Operation::returns`] (no links).
    pub fn also_returns(mut self, statuses: &'static [(u16, &'static str)]) -> Self {
        self.other_successes = statuses;
        self
    }

    pub fn returns_nothing(mut self, status: u16, description: &'static str) -> Self {
        self.success = (status, description, None);
        self
    }

    pub fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }

    /// The path as the document has it: relative to the Functions route prefix `/api`.
    pub fn document_path(&self) -> &'static str {
        self.path.strip_prefix("/api").unwrap_or(self.path)
    }
}

/// The router of a list of operations.
pub fn router(operations: Vec<Operation>) -> Router<AppState> {
    operations
        .into_iter()
        .fold(Router::new(), |router, operation| {
            router.route(operation.path, operation.route)
        })
}

/// The OpenAPI 3.1 document of `operations` (the app's: [`crate::registry::api_document`]).
pub fn document(operations: Vec<Operation>) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator();
    let problem = generator.subschema_for::<crate::problem::Problem>();
    let mut paths: Map<String, Value> = Map::new();
    for operation in operations {
        let entry = paths
            .entry(operation.document_path())
            .or_insert_with(|| json!({}));
        entry[operation.method.as_str().to_ascii_lowercase()] =
            describe(&operation, &mut generator, &problem);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Customer Service & Order Management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Multi-tenant customers, orders, products, notifications and audit. Errors are RFC 9457 problem documents (application/problem+json). Lists page with an opaque continuation token."
        },
        "servers": [{ "url": "/api" }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Entra ID (employees) or Entra External ID (clients) access token, RS256" }
            }
        }
    })
}

/// A document as the file API Management imports: compact JSON with a trailing newline (Bicep's
/// `loadTextContent` takes at most 131,072 characters).
pub fn document_text(document: &Value) -> String {
    let mut text = serde_json::to_string(document).unwrap_or_default();
    text.push('\n');
    text
}

fn describe(operation: &Operation, generator: &mut SchemaGenerator, problem: &Schema) -> Value {
    let mut parameters: Vec<Value> = path_parameters(operation.path)
        .into_iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_parameter_schema(name) }))
        .collect();
    parameters.extend(operation.query.iter().map(|(name, description)| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": query_parameter_schema(operation.tag, name) })));
    parameters.extend(operation.headers.iter().map(|(name, description)| json!({ "name": name, "in": "header", "required": operation.required_headers.contains(name), "description": description, "schema": header_schema(name) })));
    let (status, description, schema) = operation.success;
    let mut success = json!({ "description": description });
    if let Some(schema) = schema {
        success["content"] =
            json!({ "application/json": { "schema": schema(generator).to_value() } });
    }
    if !operation.links.is_empty() {
        let links: Map<String, Value> = operation
            .links
            .iter()
            .map(|(target, parameters)| {
                let parameters: Map<String, Value> = parameters
                    .iter()
                    .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
                    .collect();
                (
                    (*target).to_owned(),
                    json!({ "operationId": target, "parameters": parameters }),
                )
            })
            .collect();
        success["links"] = Value::Object(links);
    }
    let mut responses = Map::new();
    for (other, description) in operation.other_successes {
        let mut response = json!({ "description": description });
        if let Some(content) = success.get("content") {
            response["content"] = content.clone();
        }
        responses.insert(other.to_string(), response);
    }
    responses.insert(status.to_string(), success);
    for error in operation.errors {
        responses.insert(
            error.to_string(),
            json!({ "description": error_description(*error), "content": { "application/problem+json": { "schema": problem.as_value() } } }),
        );
    }
    let mut described = json!({
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": parameters,
        "responses": responses,
    });
    match operation.access {
        Access::Anonymous => described["security"] = json!([]),
        Access::SignedIn(who) => {
            described["security"] = json!([{ "bearer": [] }]);
            described["description"] = json!(format!("Who may call it: {who}."));
        }
    }
    if let Some(request) = operation.request {
        let mut media = json!({ "schema": request(generator).to_value() });
        if let Some(example) = operation.example {
            media["example"] = example();
        }
        described["requestBody"] =
            json!({ "required": true, "content": { "application/json": media } });
    }
    described
}

/// The schema of a path parameter: the health check's name, else an id.
fn path_parameter_schema(name: &str) -> Value {
    match name {
        "check" => json!({ "type": "string", "enum": ["live", "ready"] }),
        "purpose" => {
            json!({ "type": "string", "enum": shared::domain::consent::Purpose::ALL.map(|purpose| purpose.as_str()) })
        }
        _ => shared::domain::field_rules::ID.schema().to_value(),
    }
}

/// The schema of a query parameter of an operation tagged `tag`, from the rules the handlers
/// apply to it (`status` is a payment status for payments, else an order status).
pub(crate) fn query_parameter_schema(tag: &str, name: &str) -> Value {
    match name {
        "status" if tag == "payments" => {
            json!({ "type": "string", "enum": shared::domain::payment::PaymentStatus::ALL.map(|status| status.as_str()) })
        }
        "limit" => {
            json!({ "type": "integer", "minimum": 1, "maximum": shared::store::MAX_PAGE_SIZE })
        }
        "continuation" => {
            json!({ "type": "string", "minLength": 1, "description": "opaque: only a token this listing returned" })
        }
        "status" => {
            json!({ "type": "string", "enum": shared::domain::order::OrderStatus::ALL.map(|status| status.as_str()) })
        }
        "createdFrom" | "createdTo" | "from" | "to" => {
            json!({ "type": "string", "format": "date-time" })
        }
        "customerId" | "targetId" | "orderId" => {
            shared::domain::field_rules::ID.schema().to_value()
        }
        text if super::query::TEXT_FILTERS
            .iter()
            .any(|(name, _)| *name == text) =>
        {
            super::query::text_filter_rule(text).schema().to_value()
        }
        // Every parameter the API declares has a rule above (a test checks it).
        _ => json!({ "type": "string" }),
    }
}

/// `*`, or a list of entity tags (`"…"` or `W/"…"`), as `api::precondition` reads it.
const IF_MATCH_PATTERN: &str = "^[ \\t]*(\\*|(W/)?\"[!#-~\\x80-\\uffff]*\"([ \\t]*,[ \\t]*(W/)?\"[!#-~\\x80-\\uffff]*\")*)[ \\t]*$";

/// The schema of a request header.
fn header_schema(name: &str) -> Value {
    match name {
        "Idempotency-Key" => json!({ "type": "string", "pattern": "^[!-~]{1,128}$" }),
        "If-Match" => {
            json!({ "type": "string", "pattern": IF_MATCH_PATTERN, "examples": ["\"3f2a9c\"", "*"] })
        }
        _ => json!({ "type": "string" }),
    }
}

/// `{id}` and `{request_id}` of `/api/v1/customers/{id}/gdpr/erasure/{request_id}`.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| {
            segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
        })
        .collect()
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Invalid request: the problem's `errors` lists each bad field",
        401 => "Missing or invalid bearer token",
        403 => "The caller's role may not do this",
        404 => {
            "Not found in the caller's tenant (another tenant's or customer's data looks the same)"
        }
        409 => "Conflicts with the current state (stock, order status, customer status, an order without a shipping address)",
        412 => "If-Match does not match the current ETag",
        413 => "The request body is too large",
        415 => "The body is not application/json",
        422 => "Refers to unknown products, or reuses an Idempotency-Key with another request",
        502 => "A remote service (the shipping carrier) refused the request or answered something unreadable",
        503 => "A backend or the token issuer is unavailable; retry later",
        _ => "Error",
    }
}
