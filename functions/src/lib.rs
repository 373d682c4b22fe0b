//! The function app: everything the `handler` binary runs.
//!
//! - [`registry`]: the one declaration of the app's functions (triggers, bindings, code).
//! - [`startup`]: the app's state, opened the same way by every command.
//! - [`app`]: the handler's HTTP surface, what the Functions host calls.
//! - [`api`]: what the API functions share (caller, JSON bodies, paging, problem mapping).
//! - [`invoke`]: what a function's code works with as an invocation (function errors, output sink, binding names).
//! - [`envelope`]: running one invocation envelope.
//! - [`invocation_span`]: the log span around every request.
//! - [`functions`]: one module per Azure Function.
//! - [`timer_jobs`]: the timer functions that run a housekeeping job.
//! - [`local`]: local mode, the runtime that plays the Functions host on a laptop.
//! - [`cli`]: the `handler` command line.

pub mod api;
pub mod app;
pub mod cli;
pub mod envelope;
pub mod functions;
pub mod invocation_span;
pub mod invoke;
pub mod jobs_cli;
pub mod local;
pub mod problem;
pub mod realtime;
pub mod registry;
pub mod startup;
pub mod timer_jobs;

/// Resolves on Ctrl-C or SIGTERM (what the Functions host sends to stop the handler).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
