//! Local mode: the whole app on a laptop with no Azure, as `func start` would run it.
//!
//! `handler local` serves `http://127.0.0.1:7071`: HTTP functions at their `/api/...` routes,
//! timers on their schedules, Service Bus functions fed by an embedded durable queue in the
//! same SQLite database, output-binding messages routed to the functions bound to them, and
//! the host's admin API (`POST /admin/functions/{name}`) plus queue and dead-letter admin
//! routes, and a SignalR-compatible service for live pushes ([`signalr`]). Every invocation goes
//! through the custom-handler protocol to the same routes Azure
//! calls ([`host::LocalHost`]). The queue and the timers keep their state in the local
//! runtime's own tables ([`storage`]); GDPR erasures delete queued messages about their customer
//! through it (the scrubber [`LocalRuntime::new`] installs).

mod bindings;
pub mod change_feed;
mod dev_token_hint;
pub mod host;
pub mod ncrontab;
mod publisher;
pub mod queue;
pub mod sandbox;
mod server;
pub mod signalr;
pub mod storage;
pub mod timers;
mod workers;

use std::net::{Ipv4Addr, SocketAddr};

use shared::protocol::{InvocationResponse, OutgoingMessage, TimerInfo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::app::handler_router;
use crate::registry::{self, Trigger, FUNCTIONS};
use crate::startup::AppState;
use host::{InvocationFailure, LocalHost, Reason};
use ncrontab::Schedule;
use queue::{LocalQueue, QueueOptions};
use timers::TimerStatusStore;

/// What can stop local mode or a one-off invocation.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "cannot listen on {address}: {source}; fix: stop what uses the port or set LOCAL_PORT"
    )]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no function named {0:?}; fix: use a name that `handler functions list` shows")]
    UnknownFunction(String),
    #[error("{0} is an HTTP function; fix: call its route instead (for example with curl against `handler local`)")]
    HttpFunction(&'static str),
    #[error("{function} is triggered by Service Bus ({entity}), so it needs a message: --data is required; fix: give the message body with --data FILE (or --data - for stdin)")]
    MissingMessage {
        function: &'static str,
        entity: String,
    },
    #[error("{0} is triggered by the store's change feed; fix: run `handler local` (its change feed relays the outbox) instead of invoking it")]
    ChangeFeedFunction(&'static str),
    #[error("{0} is a timer function and takes no message, so --data would be ignored; fix: leave out --data (the timer's input is its schedule status)")]
    TimerTakesNoData(&'static str),
    #[error("no queue or subscription named {name:?}; fix: use one of {known}")]
    UnknownEntity { name: String, known: String },
    #[error("{function} has an invalid schedule: {source}")]
    Schedule {
        function: &'static str,
        #[source]
        source: ncrontab::ScheduleError,
    },
    #[error(transparent)]
    Invocation(#[from] InvocationFailure),
    #[error(transparent)]
    Store(#[from] shared::store::StoreError),
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Every queue and topic subscription of the embedded queue, by its Service Bus path.
pub fn known_entities() -> Vec<String> {
    let mut entities: Vec<String> = Vec::new();
    for entity in registry::known_targets()
        .into_iter()
        .flat_map(registry::entities_for)
    {
        if !entities.contains(&entity) {
            entities.push(entity);
        }
    }
    entities
}

/// `entity` if the app has a queue or subscription of that name; otherwise an error listing
/// the ones it has (a misspelt name would otherwise list nothing, as if it were empty).
pub fn check_entity(entity: &str) -> Result<&str, LocalError> {
    let known = known_entities();
    if known.iter().any(|name| name == entity) {
        Ok(entity)
    } else {
        Err(LocalError::UnknownEntity {
            name: entity.to_owned(),
            known: known.join(", "),
        })
    }
}

/// The local runtime: the handler, the host stand-in, the queue and the timer state.
#[derive(Clone)]
pub struct LocalRuntime {
    pub state: AppState,
    pub host: LocalHost,
    pub timer_status: TimerStatusStore,
}

impl LocalRuntime {
    /// The runtime over `state`, whose erasures now also scrub the local queue.
    pub fn new(mut state: AppState) -> Self {
        let erasure = storage::scrubbing_local_queue(state.erasure.clone(), &state.db);
        state.parts_mut().erasure = erasure;
        let local = &state.settings.local;
        let queue = LocalQueue::new(
            state.db.clone(),
            QueueOptions {
                max_delivery_count: local.max_delivery_count,
                lock_duration: local.lock_duration,
                retry_delay: local.retry_delay,
            },
        );
        state.parts_mut().publisher = std::sync::Arc::new(queue.clone());
        let signalr =
            signalr::LocalSignalR::new(format!("http://127.0.0.1:{}", state.settings.local.port));
        let host = LocalHost::new(handler_router(state.clone()), queue).with_signalr(signalr);
        let timer_status = TimerStatusStore::new(state.db.clone());
        Self {
            state,
            host,
            timer_status,
        }
    }

    /// Runs one non-HTTP function once, now, as the host's admin API does: a timer with its
    /// stored status (not advancing it), a Service Bus function with `input` as the message
    /// body (first delivery). Output messages go to the local queue.
    pub async fn invoke_now(
        &self,
        name: &str,
        input: Option<String>,
    ) -> Result<InvocationResponse, LocalError> {
        let def =
            registry::find(name).ok_or_else(|| LocalError::UnknownFunction(name.to_owned()))?;
        match (def.trigger, input) {
            (Trigger::Http { .. }, _) => Err(LocalError::HttpFunction(def.name)),
            (Trigger::ChangeFeed { .. }, _) => Err(LocalError::ChangeFeedFunction(def.name)),
            (Trigger::Timer { .. }, Some(_)) => Err(LocalError::TimerTakesNoData(def.name)),
            (Trigger::Timer { .. }, None) => {
                let status = self.timer_status.load(def.name).await?;
                let timer = TimerInfo {
                    schedule: serde_json::json!({"AdjustForDST": true}),
                    schedule_status: status,
                    is_past_due: false,
                };
                Ok(self
                    .host
                    .invoke_timer(def, &Reason::HostApi, &timer)
                    .await?)
            }
            (Trigger::Queue { .. } | Trigger::Subscription { .. }, None) => {
                Err(LocalError::MissingMessage {
                    function: def.name,
                    entity: def.consumed_entity().unwrap_or_default(),
                })
            }
            (Trigger::Queue { .. } | Trigger::Subscription { .. }, Some(input)) => {
                let message = OutgoingMessage::first_delivery(input);
                let request = message.to_host_request(def.trigger_binding, def.name);
                Ok(self.host.invoke(def, &Reason::HostApi, &request).await?)
            }
        }
    }

    /// Whether `name` is a timer function that has not fired on its schedule yet (so a one-off
    /// run gets `ScheduleStatus: null`, as the host would give it).
    pub async fn timer_never_fired(&self, name: &str) -> Result<bool, LocalError> {
        match registry::find(name).map(|def| def.trigger) {
            Some(Trigger::Timer { .. }) => Ok(self.timer_status.load(name).await?.is_none()),
            _ => Ok(false),
        }
    }

    /// Listens on `127.0.0.1:$LOCAL_PORT`, then runs as [`Self::serve`] until Ctrl-C / SIGTERM.
    pub async fn run(self) -> Result<(), LocalError> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.state.settings.local.port));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| LocalError::Listen { address, source })?;
        self.serve(listener, crate::shutdown_signal()).await
    }

    /// Starts timers and queue workers, then serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), LocalError> {
        let mut background = self.start_background()?;
        if let Ok(address) = listener.local_addr() {
            if let Some(signalr) = self.host.signalr() {
                signalr.set_base_url(format!("http://{address}"));
            }
            tracing::info!(%address, "local runtime listening; functions at http://{address}/api/...");
        }
        let served = axum::serve(listener, server::router(self.clone()))
            .with_graceful_shutdown(shutdown)
            .await;
        background.abort_all();
        served.map_err(LocalError::Serve)
    }

    /// Spawns a task per timer (if `LOCAL_TIMERS` is on) and per Service Bus function.
    pub fn start_background(&self) -> Result<JoinSet<()>, LocalError> {
        let mut tasks = JoinSet::new();
        for def in FUNCTIONS {
            match def.trigger {
                Trigger::Timer { schedule } if self.state.settings.local.timers_enabled => {
                    let schedule = resolve_schedule(schedule, &self.state.settings);
                    let schedule =
                        Schedule::parse(schedule).map_err(|source| LocalError::Schedule {
                            function: def.name,
                            source,
                        })?;
                    tasks.spawn(timers::run_timer(
                        self.host.clone(),
                        self.timer_status.clone(),
                        def,
                        schedule,
                    ));
                }
                Trigger::Queue { .. } | Trigger::Subscription { .. } => {
                    let entity = def.consumed_entity().unwrap_or_default();
                    tasks.spawn(workers::run_worker(self.host.clone(), def, entity));
                }
                Trigger::ChangeFeed { .. } if self.state.settings.local.relay_enabled => {
                    tasks.spawn(change_feed::run_feed(
                        self.host.clone(),
                        self.state.ports.outbox.clone(),
                        self.state.db.clone(),
                        def,
                        change_feed::FeedOptions::default(),
                    ));
                }
                Trigger::Timer { .. } | Trigger::Http { .. } | Trigger::ChangeFeed { .. } => {}
            }
        }
        Ok(tasks)
    }
}

/// A timer's schedule as the host would read it: `%NAME%` is the app setting `NAME` (only
/// `SHIPMENT_TRACKING_SCHEDULE` is used so), anything else the expression itself.
fn resolve_schedule<'a>(schedule: &'a str, settings: &'a shared::config::Settings) -> &'a str {
    match schedule {
        "%SHIPMENT_TRACKING_SCHEDULE%" => &settings.shipping.tracking_schedule,
        expression => expression,
    }
}
