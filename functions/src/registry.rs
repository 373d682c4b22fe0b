//! The one declaration of the app's functions: names, triggers, output bindings and code.
//!
//! Everything else is derived from [`FUNCTIONS`]: the `function.json` files under `functions/`
//! (written by `handler functions write`, checked by a test), the handler's routes, and what the
//! local runtime triggers (timers, queues, HTTP routes). Add a function here and nowhere else.

use serde_json::{json, Value};

use shared::jobs::Job;

use crate::api::openapi::Operation;
use crate::functions;
use crate::invoke::{
    InvokeFn, DOCUMENTS_BINDING, HTTP_OUTPUT_BINDING, HTTP_TRIGGER_BINDING, MESSAGE_BINDING,
    TIMER_BINDING,
};

/// Name of the app setting prefix holding the Service Bus connection
/// (`ServiceBusConnection__fullyQualifiedNamespace` for identity-based connections).
pub const SERVICE_BUS_CONNECTION: &str = "ServiceBusConnection";

/// What starts a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An HTTP request on `/api/{route}` (route template syntax of the host: `{name}`,
    /// `{*rest}` for the remainder of the path).
    Http {
        route: &'static str,
        methods: &'static [&'static str],
        auth_level: AuthLevel,
    },
    /// An NCRONTAB schedule (6 fields, UTC), or `%SETTING%`: the app setting holding it (the
    /// host resolves it; locally [`resolve_schedule`] does).
    Timer { schedule: &'static str },
    /// Messages on a Service Bus queue.
    Queue { queue: &'static str },
    /// Messages on a Service Bus topic subscription.
    Subscription {
        topic: &'static str,
        subscription: &'static str,
    },
    /// The change feed of a Cosmos DB container (`cosmosDBTrigger`), with the host's leases in
    /// `lease_container` under `lease_prefix`. Failed batches are retried without end (the
    /// function.json `retry` policy): without it the host checkpoints a failed batch and its
    /// changes are never seen again. Locally the runtime feeds the SQLite outbox in commit order.
    ChangeFeed {
        container: &'static str,
        lease_container: &'static str,
        lease_prefix: &'static str,
    },
}

/// Name of the app setting prefix holding the Cosmos DB connection of change-feed triggers
/// (`CosmosConnection__accountEndpoint` for identity-based connections).
pub const COSMOS_CONNECTION: &str = "CosmosConnection";

/// Who may call an HTTP function directly on the function app (APIM calls with the function key;
/// health probes need none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    Anonymous,
    Function,
}

impl AuthLevel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Function => "function",
        }
    }
}

/// Where an output binding sends messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTarget {
    Queue(&'static str),
    Topic(&'static str),
    /// An Azure SignalR Service hub (the `signalR` output binding, serverless mode): messages
    /// to users or groups, and group actions. Locally the runtime's own hub.
    SignalR {
        hub: &'static str,
    },
}

impl MessageTarget {
    /// The queue's, topic's or hub's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queue(name) | Self::Topic(name) | Self::SignalR { hub: name } => name,
        }
    }

    /// Whether Service Bus carries it (a queue or a topic).
    pub fn is_service_bus(self) -> bool {
        matches!(self, Self::Queue(_) | Self::Topic(_))
    }
}

/// Name of the app setting prefix holding the SignalR Service connection
/// (`AzureSignalRConnectionString__serviceUri` for identity-based connections).
pub const SIGNALR_CONNECTION: &str = "AzureSignalRConnectionString";

/// The SignalR hub of the app's live notifications (lowercase: the service lowercases it).
pub const NOTIFICATIONS_HUB: &str = "notifications";

/// An input binding the host resolves before the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputBinding {
    /// `signalRConnectionInfo`: the service URL and an access token for `user_id` (a binding
    /// expression, such as `{headers.x-ms-signalr-userid}`) on `hub`.
    SignalRConnectionInfo {
        name: &'static str,
        hub: &'static str,
        user_id: &'static str,
    },
}

impl InputBinding {
    /// The binding as function.json declares it.
    pub fn function_json(self) -> Value {
        match self {
            Self::SignalRConnectionInfo { name, hub, user_id } => json!({
                "type": "signalRConnectionInfo", "direction": "in", "name": name,
                "hubName": hub, "userId": user_id, "connectionStringSetting": SIGNALR_CONNECTION,
            }),
        }
    }

    /// The binding's name (its key in the envelope's `Data`).
    pub fn name(self) -> &'static str {
        match self {
            Self::SignalRConnectionInfo { name, .. } => name,
        }
    }
}

/// A Service Bus output binding: the handler sets `Outputs.{name}` to one message or an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBinding {
    pub name: &'static str,
    pub target: MessageTarget,
}

impl OutputBinding {
    /// The binding as function.json declares it.
    pub fn function_json(&self) -> Value {
        let (kind, connection_key, connection) = match self.target {
            MessageTarget::SignalR { .. } => {
                ("signalR", "connectionStringSetting", SIGNALR_CONNECTION)
            }
            MessageTarget::Queue(_) | MessageTarget::Topic(_) => {
                ("serviceBus", "connection", SERVICE_BUS_CONNECTION)
            }
        };
        let mut binding = json!({"type": kind, "direction": "out", "name": self.name});
        binding[connection_key] = json!(connection);
        match self.target {
            MessageTarget::Queue(queue) => binding["queueName"] = json!(queue),
            MessageTarget::Topic(topic) => binding["topicName"] = json!(topic),
            MessageTarget::SignalR { hub } => binding["hubName"] = json!(hub),
        }
        binding
    }
}

/// How the handler runs a function.
#[derive(Clone, Copy)]
pub enum Code {
    /// HTTP functions: their operations (axum routes under `/api` with their OpenAPI
    /// description), reached by forwarded requests or, for functions with output bindings,
    /// through the `req` envelope.
    Http(fn() -> Vec<Operation>),
    /// Timer and Service Bus functions: an envelope in, a reply out.
    Invoke(InvokeFn),
    /// Timer functions that run a housekeeping job ([`shared::jobs`]); the reply's
    /// `ReturnValue` is its report, and `handler jobs run <Name>` runs the same job.
    Job(&'static Job),
}

/// One Azure Function of the app.
#[derive(Clone, Copy)]
pub struct FunctionDef {
    pub name: &'static str,
    pub trigger: Trigger,
    /// The trigger binding's name in function.json (`req`, `timer`, `message`).
    pub trigger_binding: &'static str,
    /// Input bindings beside the trigger (the host resolves them and passes their values in the
    /// envelope's `Data`).
    pub inputs: &'static [InputBinding],
    pub outputs: &'static [OutputBinding],
    pub code: Code,
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionDef")
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

/// Every method an API function takes: `head` wherever `get` is (axum answers it from the GET
/// route without the body).
const HTTP_METHODS: &[&str] = &["get", "head", "post", "put", "patch", "delete"];

/// The methods of read-only HTTP functions.
const READ_METHODS: &[&str] = &["get", "head"];

/// Every function of the app.
pub const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "Health",
        trigger: Trigger::Http {
            route: "health/{check}",
            methods: READ_METHODS,
            auth_level: AuthLevel::Anonymous,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::health::operations),
    },
    FunctionDef {
        name: "CustomersApi",
        trigger: Trigger::Http {
            route: "v1/customers/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::customers_api::operations),
    },
    FunctionDef {
        name: "OrdersApi",
        trigger: Trigger::Http {
            route: "v1/orders/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::orders_api::operations),
    },
    FunctionDef {
        name: "ProductsApi",
        trigger: Trigger::Http {
            route: "v1/products/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::products_api::operations),
    },
    // Before `NotificationsApi`: the host prefers this literal route over the catch-all.
    FunctionDef {
        name: "NotificationsNegotiate",
        trigger: Trigger::Http {
            route: "v1/notifications/negotiate",
            methods: &["post"],
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[InputBinding::SignalRConnectionInfo {
            name: functions::notifications_negotiate::CONNECTION_INFO_BINDING,
            hub: NOTIFICATIONS_HUB,
            user_id: "{headers.x-ms-signalr-userid}",
        }],
        outputs: &[OutputBinding {
            name: crate::realtime::push::SIGNALR_OUTPUT,
            target: MessageTarget::SignalR {
                hub: NOTIFICATIONS_HUB,
            },
        }],
        code: Code::Http(functions::notifications_negotiate::operations),
    },
    FunctionDef {
        name: "NotificationsApi",
        trigger: Trigger::Http {
            route: "v1/notifications/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::notifications_api::operations),
    },
    FunctionDef {
        name: "AuditApi",
        trigger: Trigger::Http {
            route: "v1/audit/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::audit_api::operations),
    },
    // Before `PaymentsApi`: the host prefers this literal route over the catch-all, and
    // `match_http_route` takes the first function whose route matches.
    FunctionDef {
        name: "PaymentWebhooks",
        trigger: Trigger::Http {
            route: "v1/payments/webhooks/{provider}",
            methods: &["post"],
            auth_level: AuthLevel::Anonymous,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::payments_api::webhook_operations),
    },
    FunctionDef {
        name: "PaymentsApi",
        trigger: Trigger::Http {
            route: "v1/payments/{*path}",
            methods: HTTP_METHODS,
            auth_level: AuthLevel::Function,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::payments_api::operations),
    },
    FunctionDef {
        name: "ApiDefinition",
        trigger: Trigger::Http {
            route: "v1/openapi.json",
            methods: READ_METHODS,
            auth_level: AuthLevel::Anonymous,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Http(functions::api_definition::operations),
    },
    FunctionDef {
        name: "DataRetentionCleanup",
        trigger: Trigger::Timer {
            schedule: "0 0 2 * * *",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::DATA_RETENTION_CLEANUP),
    },
    FunctionDef {
        name: "NotificationCleanup",
        trigger: Trigger::Timer {
            schedule: "0 0 1 * * *",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::NOTIFICATION_CLEANUP),
    },
    FunctionDef {
        name: "DatabaseMaintenance",
        trigger: Trigger::Timer {
            schedule: "0 0 3 * * 0",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::DATABASE_MAINTENANCE),
    },
    FunctionDef {
        name: "PaymentReconciliation",
        trigger: Trigger::Timer {
            schedule: "0 */5 * * * *",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::PAYMENT_RECONCILIATION),
    },
    FunctionDef {
        name: "ShipmentTracking",
        trigger: Trigger::Timer {
            // The host resolves `%NAME%` from the app settings; `handler local` from the
            // settings too (`SHIPMENT_TRACKING_SCHEDULE`, every 10 minutes by default).
            schedule: "%SHIPMENT_TRACKING_SCHEDULE%",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::SHIPMENT_TRACKING),
    },
    FunctionDef {
        name: "PaymentDailyReconciliation",
        trigger: Trigger::Timer {
            schedule: "0 30 1 * * *",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::PAYMENT_DAILY_RECONCILIATION),
    },
    FunctionDef {
        name: "ErpInventorySync",
        trigger: Trigger::Timer {
            schedule: "%ERP_INVENTORY_SYNC_SCHEDULE%",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::ERP_INVENTORY_SYNC),
    },
    FunctionDef {
        name: "ErpProductSync",
        trigger: Trigger::Timer {
            schedule: "%ERP_PRODUCT_SYNC_SCHEDULE%",
        },
        trigger_binding: TIMER_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Job(&shared::jobs::ERP_PRODUCT_SYNC),
    },
    FunctionDef {
        name: "GDPRDataAnonymization",
        trigger: Trigger::Queue {
            queue: "gdpr-requests",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::gdpr_data_anonymization::invoke),
    },
    FunctionDef {
        name: "OutboxRelay",
        trigger: Trigger::ChangeFeed {
            container: "tenantdata",
            lease_container: "leases",
            lease_prefix: "outbox-relay",
        },
        trigger_binding: DOCUMENTS_BINDING,
        inputs: &[],
        outputs: &[OutputBinding {
            name: crate::realtime::push::SIGNALR_OUTPUT,
            target: MessageTarget::SignalR {
                hub: NOTIFICATIONS_HUB,
            },
        }],
        code: Code::Invoke(functions::outbox_relay::invoke),
    },
    FunctionDef {
        name: "NotificationDispatch",
        trigger: Trigger::Subscription {
            topic: "order-events",
            subscription: "notifications",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::notification_dispatch::invoke),
    },
    FunctionDef {
        name: "PaymentOrderFlow",
        trigger: Trigger::Subscription {
            topic: "payment-events",
            subscription: "orders",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::payment_order_flow::invoke),
    },
    FunctionDef {
        name: "PaymentNotificationDispatch",
        trigger: Trigger::Subscription {
            topic: "payment-events",
            subscription: "notifications",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::payment_notification_dispatch::invoke),
    },
    FunctionDef {
        name: "CancelledOrderRefund",
        trigger: Trigger::Subscription {
            topic: "order-events",
            subscription: "payments",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::cancelled_order_refund::invoke),
    },
    FunctionDef {
        name: "ErpGoodsMovement",
        trigger: Trigger::Subscription {
            topic: "order-events",
            subscription: "erp",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::erp_goods_movement::invoke),
    },
    FunctionDef {
        name: "ShippingLabel",
        trigger: Trigger::Subscription {
            topic: "order-events",
            subscription: "shipping",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::shipping_label::invoke),
    },
    // The README's "How to add a function" example, built only with the `example-function`
    // feature (its test proves the section right).
    #[cfg(feature = "example-function")]
    FunctionDef {
        name: "ExampleGreetingsApi",
        trigger: Trigger::Http {
            route: "v1/example/greetings",
            methods: &["post"],
            auth_level: AuthLevel::Anonymous,
        },
        trigger_binding: HTTP_TRIGGER_BINDING,
        inputs: &[],
        outputs: &[OutputBinding {
            name: functions::example_greetings_api::GREETINGS_OUTPUT,
            target: MessageTarget::Queue("example-greetings"),
        }],
        code: Code::Http(functions::example_greetings_api::operations),
    },
    #[cfg(feature = "example-function")]
    FunctionDef {
        name: "ExampleGreeter",
        trigger: Trigger::Queue {
            queue: "example-greetings",
        },
        trigger_binding: MESSAGE_BINDING,
        inputs: &[],
        outputs: &[],
        code: Code::Invoke(functions::example_greeter::invoke),
    },
];

/// Every operation of the app's HTTP functions (their routes and documentation).
pub fn operations() -> Vec<Operation> {
    FUNCTIONS
        .iter()
        .filter_map(|def| match def.code {
            Code::Http(operations) => Some(operations()),
            Code::Invoke(_) | Code::Job(_) => None,
        })
        .flatten()
        .collect()
}

/// The app's OpenAPI 3.1 document (served by `ApiDefinition`, written for API Management).
pub fn api_document() -> Value {
    crate::api::openapi::document(operations())
}

/// The housekeeping job a timer function of that name runs (case-insensitive).
pub fn find_job(name: &str) -> Option<&'static Job> {
    match find(name)?.code {
        Code::Job(job) => Some(job),
        Code::Http(_) | Code::Invoke(_) => None,
    }
}

/// The names of the functions that run a housekeeping job.
pub fn job_names() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|def| matches!(def.code, Code::Job(_)))
        .map(|def| def.name)
        .collect()
}

/// Looks a function up by name, as the host does (case-insensitively).
pub fn find(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name))
}

impl FunctionDef {
    /// Whether the host forwards HTTP requests to this function as they are
    /// (`enableForwardingHttpRequest`): only when its sole bindings are the HTTP trigger and
    /// the HTTP output. Functions with more outputs get the `req` envelope instead.
    pub fn is_forwarded_http(&self) -> bool {
        matches!(self.trigger, Trigger::Http { .. }) && self.outputs.is_empty()
    }

    /// The queue or topic-subscription entity the function consumes, in Service Bus path form.
    pub fn consumed_entity(&self) -> Option<String> {
        match self.trigger {
            Trigger::Queue { queue } => Some(queue.to_owned()),
            Trigger::Subscription {
                topic,
                subscription,
            } => Some(subscription_path(topic, subscription)),
            Trigger::Http { .. } | Trigger::Timer { .. } | Trigger::ChangeFeed { .. } => None,
        }
    }

    /// The function's `function.json`, exactly as the host reads it.
    pub fn function_json(&self) -> Value {
        let mut bindings = vec![self.trigger_json()];
        if matches!(self.trigger, Trigger::Http { .. }) {
            bindings.push(json!({"type": "http", "direction": "out", "name": HTTP_OUTPUT_BINDING}));
        }
        bindings.extend(self.inputs.iter().map(|input| input.function_json()));
        bindings.extend(self.outputs.iter().map(|output| output.function_json()));
        let mut function = json!({ "bindings": bindings });
        if matches!(self.trigger, Trigger::ChangeFeed { .. }) {
            function["retry"] = json!({
                "strategy": "exponentialBackoff", "maxRetryCount": -1,
                "minimumInterval": "00:00:02", "maximumInterval": "00:05:00",
            });
        }
        function
    }

    fn trigger_json(&self) -> Value {
        let name = self.trigger_binding;
        match self.trigger {
            Trigger::Http {
                route,
                methods,
                auth_level,
            } => json!({
                "type": "httpTrigger", "direction": "in", "name": name,
                "authLevel": auth_level.as_str(), "route": route, "methods": methods,
            }),
            Trigger::Timer { schedule } => json!({
                "type": "timerTrigger", "direction": "in", "name": name,
                "schedule": schedule, "runOnStartup": false, "useMonitor": true,
            }),
            Trigger::Queue { queue } => json!({
                "type": "serviceBusTrigger", "direction": "in", "name": name,
                "queueName": queue, "connection": SERVICE_BUS_CONNECTION,
            }),
            Trigger::Subscription {
                topic,
                subscription,
            } => json!({
                "type": "serviceBusTrigger", "direction": "in", "name": name,
                "topicName": topic, "subscriptionName": subscription,
                "connection": SERVICE_BUS_CONNECTION,
            }),
            Trigger::ChangeFeed {
                container,
                lease_container,
                lease_prefix,
            } => json!({
                "type": "cosmosDBTrigger", "direction": "in", "name": name,
                "connection": COSMOS_CONNECTION, "databaseName": "%COSMOS_DATABASE%",
                "containerName": container, "leaseContainerName": lease_container,
                "leaseContainerPrefix": lease_prefix, "createLeaseContainerIfNotExists": false,
                "startFromBeginning": true, "maxItemsPerInvocation": 100, "feedPollDelay": 1000,
            }),
        }
    }
}

/// A timer's schedule with a `%SETTING%` reference resolved from `settings`, as the host does.
pub fn resolve_schedule<'s>(
    schedule: &'s str,
    settings: &'s shared::config::Settings,
) -> Option<&'s str> {
    match schedule
        .strip_prefix('%')
        .and_then(|rest| rest.strip_suffix('%'))
    {
        Some(name) => settings.binding_setting(name),
        None => Some(schedule),
    }
}

/// `topic/subscriptions/subscription`, as Service Bus names a subscription entity.
pub fn subscription_path(topic: &str, subscription: &str) -> String {
    format!("{topic}/subscriptions/{subscription}")
}

/// The entities a message sent to `target` lands in: a queue itself, or every subscription of
/// a topic that a function of this app consumes (a topic with no subscription drops it, as
/// Service Bus does).
pub fn entities_for(target: MessageTarget) -> Vec<String> {
    match target {
        MessageTarget::Queue(queue) => vec![queue.to_owned()],
        MessageTarget::SignalR { .. } => Vec::new(),
        MessageTarget::Topic(topic) => FUNCTIONS
            .iter()
            .filter_map(|def| match def.trigger {
                Trigger::Subscription {
                    topic: t,
                    subscription,
                } if t == topic => Some(subscription_path(t, subscription)),
                _ => None,
            })
            .collect(),
    }
}

/// Every queue and topic the app uses, by name, for the local runtime's `send` commands.
pub fn known_targets() -> Vec<MessageTarget> {
    let mut targets: Vec<MessageTarget> = Vec::new();
    let consumed = FUNCTIONS.iter().filter_map(|def| match def.trigger {
        Trigger::Queue { queue } => Some(MessageTarget::Queue(queue)),
        Trigger::Subscription { topic, .. } => Some(MessageTarget::Topic(topic)),
        _ => None,
    });
    let produced = FUNCTIONS
        .iter()
        .flat_map(|def| def.outputs.iter().map(|output| output.target))
        .filter(|target| target.is_service_bus());
    let relayed = shared::outbox::DESTINATIONS
        .iter()
        .filter_map(|name| target_of_destination(name));
    for target in consumed.chain(produced).chain(relayed) {
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// The entity an outbox destination names: a topic if a function of the app subscribes to it
/// under that name, else a queue (the relay's REST call is the same for both).
pub fn target_of_destination(name: &'static str) -> Option<MessageTarget> {
    let subscribed = FUNCTIONS
        .iter()
        .any(|def| matches!(def.trigger, Trigger::Subscription { topic, .. } if topic == name));
    Some(if subscribed {
        MessageTarget::Topic(name)
    } else {
        MessageTarget::Queue(name)
    })
}

/// Resolves a queue or topic name given on the command line or the admin API.
pub fn target_named(name: &str) -> Option<MessageTarget> {
    known_targets()
        .into_iter()
        .find(|target| target.name() == name)
}

/// A request path matched to an HTTP function, with the route parameters the host would pass.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub function: &'static FunctionDef,
    pub params: std::collections::BTreeMap<String, String>,
}

/// Finds the HTTP function whose route matches `path` (`/api/...`), as the host's router does:
/// literal segments case-insensitively, `{name}` one segment, `{*name}` the rest (maybe empty).
pub fn match_http_route(method: &str, path: &str) -> Option<RouteMatch> {
    let function = http_function_for(method, path)?;
    let Trigger::Http { route, .. } = function.trigger else {
        return None;
    };
    let mut params = std::collections::BTreeMap::new();
    walk_route(route, path.strip_prefix("/api/")?, |name, value| {
        params.insert(name.to_owned(), value.to_owned());
    });
    Some(RouteMatch { function, params })
}

/// The HTTP function [`match_http_route`] finds, without collecting the route parameters: no
/// allocation, for naming the function of every request.
pub fn http_function_for(method: &str, path: &str) -> Option<&'static FunctionDef> {
    let relative = path.strip_prefix("/api/")?;
    let on_route = FUNCTIONS.iter().filter(|def| match def.trigger {
        Trigger::Http { route, .. } => walk_route(route, relative, |_, _| {}),
        _ => false,
    });
    // The function that takes this method; else any on the route (it answers 405).
    let mut first = None;
    for def in on_route {
        if def.accepts_method(method) {
            return Some(def);
        }
        first.get_or_insert(def);
    }
    first
}

/// The methods the functions on `path`'s route take together, upper-case, for the `Allow`
/// header of a 405 (empty when no route matches).
pub fn allowed_methods(path: &str) -> Vec<String> {
    let Some(relative) = path.strip_prefix("/api/") else {
        return Vec::new();
    };
    let mut methods: Vec<String> = FUNCTIONS
        .iter()
        .filter_map(|def| match def.trigger {
            Trigger::Http { route, methods, .. } if walk_route(route, relative, |_, _| {}) => {
                Some(methods)
            }
            _ => None,
        })
        .flatten()
        .map(|method| method.to_ascii_uppercase())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// Whether `relative` (the path after `/api/`) matches the route `template`, handing each route
/// parameter's name and value to `param` on the way.
fn walk_route<'p>(template: &str, relative: &'p str, mut param: impl FnMut(&str, &'p str)) -> bool {
    // The part of the path not matched yet; `None` once every segment is.
    let mut rest = Some(relative.trim_end_matches('/'));
    for part in template.split('/') {
        if let Some(name) = part
            .strip_prefix("{*")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            param(name, rest.unwrap_or(""));
            return true;
        }
        let Some(remaining) = rest else { return false };
        let (segment, after) = match remaining.split_once('/') {
            Some((segment, after)) => (segment, Some(after)),
            None => (remaining, None),
        };
        if segment.is_empty() {
            return false;
        }
        match part
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name) => param(name.split(':').next().unwrap_or(name), segment),
            None if part.eq_ignore_ascii_case(segment) => {}
            None => return false,
        }
        rest = after;
    }
    rest.is_none()
}

impl FunctionDef {
    /// Whether an HTTP function accepts `method` (always false for other triggers).
    pub fn accepts_method(&self, method: &str) -> bool {
        match self.trigger {
            Trigger::Http { methods, .. } => methods
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(method)),
            _ => false,
        }
    }
}

/// The exact text of a `function.json` file (pretty JSON, trailing newline).
pub fn function_json_text(def: &FunctionDef) -> String {
    let mut text = serde_json::to_string_pretty(&def.function_json()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_the_host() {
        let health = match_http_route("GET", "/api/health/ready").unwrap();
        assert_eq!(health.function.name, "Health");
        assert_eq!(health.params["check"], "ready");
        assert!(match_http_route("GET", "/api/health").is_none());
        assert!(match_http_route("GET", "/api/health/ready/extra").is_none());

        let customers = match_http_route("POST", "/api/v1/customers").unwrap();
        assert_eq!(customers.function.name, "CustomersApi");
        assert_eq!(customers.params["path"], "");
        let nested = match_http_route("GET", "/api/V1/Customers/c-1/orders").unwrap();
        assert_eq!(nested.function.name, "CustomersApi");
        assert_eq!(nested.params["path"], "c-1/orders");

        assert!(match_http_route("GET", "/api/v2/customers").is_none());
        assert!(match_http_route("GET", "/health/ready").is_none());
    }

    #[test]
    fn route_templates_match_segments_parameters_and_the_rest() {
        let params = |template: &str, relative: &str| {
            let mut found = Vec::new();
            walk_route(template, relative, |name, value| {
                found.push(format!("{name}={value}"))
            })
            .then_some(found)
        };
        assert_eq!(
            params("v1/orders/{id}", "V1/Orders/o-1/"),
            Some(vec!["id=o-1".to_owned()])
        );
        assert_eq!(
            params("v1/orders/{id:guid}", "v1/orders/o-1"),
            Some(vec!["id=o-1".to_owned()]),
            "a constraint is not part of the name"
        );
        assert_eq!(params("v1/orders/{id}", "v1/orders"), None);
        assert_eq!(
            params("v1/orders/{id}", "v1/orders//status"),
            None,
            "an empty segment matches nothing"
        );
        assert_eq!(params("v1/orders/{id}", "v1/orders/o-1/status"), None);
        assert_eq!(
            params("files/{*rest}", "files/a/b/c"),
            Some(vec!["rest=a/b/c".to_owned()])
        );
        assert_eq!(
            params("files/{*rest}", "files"),
            Some(vec!["rest=".to_owned()])
        );
        assert_eq!(params("{*all}", ""), Some(vec!["all=".to_owned()]));
        assert_eq!(params("health/ready", ""), None);
    }

    #[test]
    fn naming_a_request_s_function_agrees_with_the_full_match() {
        for (method, path) in [
            ("GET", "/api/v1/orders/o-1"),
            ("PUT", "/api/v1/orders/o-1/status"),
            ("DELETE", "/api/v1/customers/c-1"),
            ("PATCH", "/api/v1/orders"),
            ("GET", "/api/v1/nothing"),
            ("GET", "/OrdersApi"),
        ] {
            assert_eq!(
                http_function_for(method, path).map(|def| def.name),
                match_http_route(method, path).map(|found| found.function.name),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_route_is_matched_with_its_method() {
        assert_eq!(
            match_http_route("GET", "/api/v1/orders/o-1")
                .unwrap()
                .function
                .name,
            "OrdersApi"
        );
        assert_eq!(
            match_http_route("put", "/api/v1/orders/o-1/status")
                .unwrap()
                .function
                .name,
            "OrdersApi"
        );
        assert_eq!(
            match_http_route("HEAD", "/api/v1/orders")
                .unwrap()
                .function
                .name,
            "OrdersApi"
        );
        // A method no function takes still finds the route (the function answers 405).
        let options = match_http_route("OPTIONS", "/api/v1/orders").unwrap();
        assert!(!options.function.accepts_method("OPTIONS"));
        assert_eq!(
            allowed_methods("/api/v1/orders"),
            ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]
        );
        assert!(allowed_methods("/api/v2/nothing").is_empty());
    }

    #[test]
    fn every_http_function_of_the_app_is_forwarded() {
        // Their messages leave through the outbox, so none has an output binding; only the
        // SignalR negotiate, whose input binding the host resolves, arrives as an envelope.
        for def in FUNCTIONS {
            if matches!(def.trigger, Trigger::Http { .. })
                && !def.name.starts_with("Example")
                && def.inputs.is_empty()
            {
                assert!(def.is_forwarded_http(), "{}", def.name);
            }
        }
        assert!(!find("DataRetentionCleanup").unwrap().is_forwarded_http());
    }

    #[test]
    fn topics_fan_out_to_the_subscriptions_the_app_consumes() {
        assert_eq!(
            entities_for(MessageTarget::Topic("order-events")),
            vec![
                "order-events/subscriptions/notifications".to_owned(),
                "order-events/subscriptions/payments".to_owned(),
                "order-events/subscriptions/erp".to_owned(),
                "order-events/subscriptions/shipping".to_owned()
            ]
        );
        assert_eq!(
            entities_for(MessageTarget::Topic("payment-events")),
            vec![
                "payment-events/subscriptions/orders".to_owned(),
                "payment-events/subscriptions/notifications".to_owned()
            ]
        );
        assert_eq!(
            entities_for(MessageTarget::Queue("gdpr-requests")),
            vec!["gdpr-requests".to_owned()]
        );
        assert_eq!(
            target_named("order-events"),
            Some(MessageTarget::Topic("order-events"))
        );
        assert_eq!(
            target_named("notifications-outbound"),
            Some(MessageTarget::Queue("notifications-outbound"))
        );
        assert_eq!(target_named("nope"), None);
    }

    #[test]
    fn every_timer_schedule_resolves_from_the_settings_and_parses() {
        let settings = shared::config::Settings::load(&shared::config::SettingsSource::from_pairs(
            [("ERP_PRODUCT_SYNC_SCHEDULE", "0 0 5 * * *")],
        ))
        .unwrap();
        for def in FUNCTIONS {
            let Trigger::Timer { schedule } = def.trigger else {
                continue;
            };
            let resolved = resolve_schedule(schedule, &settings)
                .unwrap_or_else(|| panic!("{}: {schedule} names no setting", def.name));
            assert!(
                crate::local::ncrontab::Schedule::parse(resolved).is_ok(),
                "{}: {resolved}",
                def.name
            );
        }
        let find = |name: &str| match find(name).map(|def| def.trigger) {
            Some(Trigger::Timer { schedule }) => resolve_schedule(schedule, &settings),
            _ => None,
        };
        assert_eq!(find("ErpInventorySync"), Some("0 */15 * * * *"));
        assert_eq!(find("ErpProductSync"), Some("0 0 5 * * *"));
        assert_eq!(resolve_schedule("%NO_SUCH_SETTING%", &settings), None);
    }

    #[test]
    fn names_are_unique_and_valid_for_the_host() {
        let mut seen = std::collections::BTreeSet::new();
        for def in FUNCTIONS {
            let name = def.name.to_ascii_lowercase();
            // The host's rule for function names (case-insensitive).
            let mut chars = name.chars();
            assert!(
                chars.next().is_some_and(|c| c.is_ascii_lowercase())
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && name.len() <= 128,
                "{}: not a valid function name",
                def.name
            );
            assert!(seen.insert(name), "{}: declared twice", def.name);
        }
    }

    /// A query parameter added to an operation without a rule would be documented as any
    /// string while the handler checks it: every declared one has its rule.
    #[test]
    fn every_query_parameter_is_described_by_its_rule() {
        for operation in operations() {
            for (name, _) in operation.query {
                assert_ne!(
                    crate::api::openapi::query_parameter_schema(operation.tag, name),
                    json!({ "type": "string" }),
                    "{} ?{name}",
                    operation.operation_id
                );
            }
        }
    }
}
