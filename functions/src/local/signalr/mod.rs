//! A SignalR-compatible service inside `handler local`, standing in for Azure SignalR Service in
//! serverless mode, so the official `@microsoft/signalr` client connects to it unchanged:
//!
//! - the `signalRConnectionInfo` input binding: [`LocalSignalR::connection_info`] mints the
//!   service URL (`http://127.0.0.1:7071/signalr/client/?hub=notifications`) and a short-lived
//!   access token for the user ([`token`]), which the local host passes to the negotiate
//!   function in the envelope shape the Functions host uses;
//! - the service's own negotiate (`POST /signalr/client/negotiate?hub=...`) and the JSON hub
//!   protocol over WebSocket (`GET /signalr/client/?hub=...&id=...`): handshake, invocations,
//!   a ping every 15 seconds, close ([`service`]);
//! - the `signalR` output binding: [`LocalSignalR::apply_output`] applies group actions and
//!   delivers messages to users, groups or connections ([`hub`]).
//!
//! - the live view: a page at `/live` to watch one's notifications arrive ([`live_view`]).
//!
//! The key that signs tokens is new at every start and never leaves the process.

pub mod hub;
mod live_view;
mod service;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::protocol::{SignalRAction, SignalRConnectionInfo};

pub use live_view::routes as live_view_routes;
pub use service::routes;

/// Where the service's client endpoint lives on the local server.
pub const CLIENT_PATH: &str = "/signalr/client/";

/// How long a negotiated connection may wait to be opened (as long as the client's token
/// lives); older ones are forgotten, so clients that negotiate and never connect cost nothing.
const PENDING_LIFETIME: Duration = Duration::from_secs(token::TOKEN_LIFETIME_SECONDS as u64);

/// A connection negotiated but not opened yet: its id and its user.
#[derive(Debug, Clone)]
struct Pending {
    connection_id: String,
    user_id: String,
}

struct Inner {
    key: token::TokenKey,
    hub: hub::Hub,
    /// `http://127.0.0.1:<port>`, set when the server knows its address.
    base_url: OnceLock<String>,
    default_base_url: String,
    /// connection token -> the connection it opens, and when it was negotiated
    pending: Mutex<HashMap<String, (Pending, Instant)>>,
}

/// The local SignalR service (cheap to clone, shared).
#[derive(Clone)]
pub struct LocalSignalR {
    inner: Arc<Inner>,
}

impl LocalSignalR {
    /// A service that answers on `default_base_url` until [`Self::set_base_url`] says otherwise.
    pub fn new(default_base_url: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: token::TokenKey::random(),
                hub: hub::Hub::default(),
                base_url: OnceLock::new(),
                default_base_url,
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The address the server listens on (once; later calls change nothing).
    pub fn set_base_url(&self, base_url: String) {
        let _ = self.inner.base_url.set(base_url);
    }

    fn base_url(&self) -> &str {
        self.inner
            .base_url
            .get()
            .unwrap_or(&self.inner.default_base_url)
    }

    /// The client URL of `hub` (lowercased, as the service does): the tokens' audience.
    pub fn service_url(&self, hub: &str) -> String {
        format!(
            "{}{CLIENT_PATH}?hub={}",
            self.base_url(),
            hub.to_ascii_lowercase()
        )
    }

    /// What the `signalRConnectionInfo` binding gives a negotiate function for `user_id`.
    pub fn connection_info(
        &self,
        hub: &str,
        user_id: &str,
    ) -> Result<SignalRConnectionInfo, token::TokenError> {
        let url = self.service_url(hub);
        let access_token = self
            .inner
            .key
            .mint(&url, user_id, chrono::Utc::now().timestamp())?;
        Ok(SignalRConnectionInfo { url, access_token })
    }

    /// Applies a `signalR` output value (one item or an array); returns the connections that
    /// messages reached. Items that are not valid actions are logged and skipped.
    pub fn apply_output(&self, function: &str, value: &Value) -> usize {
        let mut reached = 0;
        for item in SignalRAction::from_output(value) {
            match item {
                Ok(action) => reached += self.inner.hub.apply(&action),
                Err(reason) => {
                    tracing::warn!(function, %reason, "signalR output item skipped: not a message or group action");
                }
            }
        }
        reached
    }

    /// How many WebSocket connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.hub.connection_count()
    }

    fn hub(&self) -> &hub::Hub {
        &self.inner.hub
    }

    fn key(&self) -> &token::TokenKey {
        &self.inner.key
    }

    fn remember(&self, connection_token: String, pending: Pending) {
        self.remember_at(connection_token, pending, Instant::now());
    }

    /// Keeps `pending` under its token, and forgets those negotiated longer ago than
    /// [`PENDING_LIFETIME`].
    fn remember_at(&self, connection_token: String, pending: Pending, now: Instant) {
        let mut map = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.retain(|_, (_, at)| now.saturating_duration_since(*at) < PENDING_LIFETIME);
        map.insert(connection_token, (pending, now));
    }

    /// The connection a token opens, once, if it was negotiated within [`PENDING_LIFETIME`].
    fn take_pending(&self, connection_token: &str) -> Option<Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(connection_token)
            .filter(|(_, at)| at.elapsed() < PENDING_LIFETIME)
            .map(|(pending, _)| pending)
    }

    #[cfg(test)]
    fn pending_count(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(user: &str) -> Pending {
        Pending {
            connection_id: format!("c-{user}"),
            user_id: user.to_owned(),
        }
    }

    #[test]
    fn negotiated_connections_never_opened_are_forgotten_after_their_lifetime() {
        let service = LocalSignalR::new("http://127.0.0.1:1".into());
        let negotiated = Instant::now();
        let after_its_lifetime = negotiated + PENDING_LIFETIME + Duration::from_secs(1);
        service.remember_at("old".into(), pending("a"), negotiated);
        service.remember_at("recent".into(), pending("b"), after_its_lifetime);
        assert_eq!(service.pending_count(), 1, "the stale one is gone");
        assert!(service.take_pending("old").is_none());
        let opened = service
            .take_pending("recent")
            .expect("the recent one opens");
        assert_eq!(opened.user_id, "b");
        assert!(
            service.take_pending("recent").is_none(),
            "a token opens once"
        );
    }
}
