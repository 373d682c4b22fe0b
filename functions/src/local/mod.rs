//! Local mode: the whole app on a laptop with no Azure, as `func start` would run it.
//!
//! `handler local` serves `http://127.0.0.1:7071`: HTTP functions at their `/api/...` routes,
//! timers on their schedules, Service Bus functions fed by an embedded durable queue in the
//! same SQLite database, output-binding messages routed to the functions bound to them, and
//! the host's admin API (`POST /admin/functions/{name}`) plus queue and dead-letter admin
//! routes. Every invocation goes through the custom-handler protocol to the same routes Azure
//! calls ([`host::LocalHost`]).

pub mod host;
pub mod ncrontab;
pub mod queue;
mod server;
pub mod timers;
mod workers;

use std::net::{Ipv4Addr, SocketAddr};

use shared::protocol::{InvocationResponse, OutgoingMessage, TimerInfo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::app::{handler_router, AppState};
use crate::registry::{self, Trigger, FUNCTIONS};
use host::{InvocationFailure, LocalHost};
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
    #[error("no function named {0:?}; `handler functions list` shows them")]
    UnknownFunction(String),
    #[error("{0} is an HTTP function: call its route instead (for example with curl against `handler local`)")]
    HttpFunction(&'static str),
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

/// The local runtime: the handler, the host stand-in, the queue and the timer state.
#[derive(Clone)]
pub struct LocalRuntime {
    pub state: AppState,
    pub host: LocalHost,
    pub timer_status: TimerStatusStore,
}

impl LocalRuntime {
    pub fn new(state: AppState) -> Self {
        let local = &state.settings.local;
        let queue = LocalQueue::new(
            state.db.clone(),
            QueueOptions {
                max_delivery_count: local.max_delivery_count,
                lock_duration: local.lock_duration,
                retry_delay: local.retry_delay,
            },
        );
        let host = LocalHost::new(handler_router(state.clone()), queue);
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
        match def.trigger {
            Trigger::Http { .. } => Err(LocalError::HttpFunction(def.name)),
            Trigger::Timer { .. } => {
                let status = self.timer_status.load(def.name).await?;
                let timer = TimerInfo {
                    schedule: serde_json::json!({"AdjustForDST": true}),
                    schedule_status: status,
                    is_past_due: false,
                };
                Ok(self.host.invoke_timer(def, &timer).await?)
            }
            Trigger::Queue { .. } | Trigger::Subscription { .. } => {
                let message = OutgoingMessage::first_delivery(input.unwrap_or_default());
                let request = message.to_host_request(def.trigger_binding, def.name);
                Ok(self.host.invoke(def, &request).await?)
            }
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
                Trigger::Timer { .. } | Trigger::Http { .. } => {}
            }
        }
        Ok(tasks)
    }
}
