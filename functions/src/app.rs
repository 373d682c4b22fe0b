//! The custom handler's HTTP surface: what the Functions host (or the local runtime) calls.
//!
//! - `GET /`: answered at once; the host polls it to learn the handler is up.
//! - `POST /{FunctionName}`: an invocation envelope for a timer, Service Bus, or enveloped HTTP
//!   function.
//! - `/api/...`: forwarded HTTP requests, served by the HTTP functions' routes.
//!
//! Every request runs in a `tracing` span carrying the function name, the host's invocation id
//! (`X-Azure-Functions-InvocationId`) and the W3C trace id (`traceparent`, or a new one).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use shared::archive::ArchiveStore;
use shared::auth::{AuthConfig, Authenticator, DevIssuer, IssuerConfig};
use shared::config::{Settings, StoreKind};
use shared::domain::masking::PseudonymKey;
use shared::store::cosmos::{CosmosAuth, CosmosOptions, CosmosStore};
use shared::store::sqlite::Db;
use shared::store::{HealthCheck, Store};

use crate::invoke::{ready_probe, run_envelope};
use crate::problem::Problem;
use crate::registry::{self, Code, FUNCTIONS};

/// The header carrying the host's id for one invocation.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// Largest invocation envelope accepted (Service Bus Premium allows messages up to 100 MB; the
/// envelope adds little). HTTP API bodies have their own, smaller limit (`HTTP_BODY_LIMIT_BYTES`).
const ENVELOPE_LIMIT_BYTES: usize = 128 * 1024 * 1024;

/// What every function can reach: settings, backends, token validation ([`AppParts`], read
/// through `Deref`). Cloned for every request, so it is one shared pointer.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl AppState {
    /// The parts, to replace one (at start-up, or in a test); copies them if the state is shared.
    pub fn parts_mut(&mut self) -> &mut AppParts {
        Arc::make_mut(&mut self.0)
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    /// The SQLite database (also the local runtime's queue and timer state).
    pub db: Db,
    /// The app's data, behind the storage ports.
    pub store: Arc<dyn Store>,
    pub authenticator: Arc<Authenticator>,
    /// Where the housekeeping jobs archive (`ARCHIVE`: a folder, or a Blob container).
    pub archive: Arc<dyn ArchiveStore>,
    /// The backends `GET /api/health/ready` checks.
    pub health_checks: Arc<Vec<Arc<dyn HealthCheck>>>,
    /// Seals the continuation tokens of the API's listings.
    pub page_tokens: crate::api::PageTokens,
    /// What the GDPR erasure needs (local mode adds its queue's scrubber).
    pub erasure: shared::erasure::ErasureContext,
}

/// Where the app runs: under the Functions host, or in local mode (which also trusts the
/// local dev token issuer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Azure,
    Local,
}

/// Start-up failures of the app's state.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] shared::store::sqlite::OpenError),
    #[error("invalid setting AUTH_ENTRA_ISSUER=\"\": no token issuer is configured, so every API call would be refused; fix: set AUTH_ENTRA_ISSUER and AUTH_ENTRA_AUDIENCE (employees) and/or AUTH_EXTERNAL_ISSUER and AUTH_EXTERNAL_AUDIENCE (clients)")]
    NoIssuer,
    #[error("token validation cannot be set up: {0}")]
    Auth(shared::auth::AuthConfigError),
    #[error("the local dev token key cannot be used: {0}")]
    DevKey(#[from] shared::auth::DevKeyError),
    #[error("invalid setting GDPR_PSEUDONYM_KEY: {0}; fix: set GDPR_PSEUDONYM_KEY to a random secret of at least 16 characters (in Azure, the Key Vault reference to the secret gdpr-pseudonym-key)")]
    PseudonymKey(String),
    #[error("invalid setting ARCHIVE=blob: {0}; fix: check ARCHIVE_BLOB_ENDPOINT, ARCHIVE_CONTAINER and AZURE_CLIENT_ID, or set ARCHIVE=folder")]
    Archive(shared::archive::ArchiveError),
    #[error("invalid setting STORE=cosmos: {0}; fix: check COSMOS_ENDPOINT, COSMOS_DATABASE and AZURE_CLIENT_ID (or COSMOS_KEY for an emulator), or set STORE=sqlite")]
    Cosmos(#[from] shared::store::cosmos::CosmosSetupError),
}

impl AppState {
    /// Sets up token validation for `mode` and opens the configured backends (creating and
    /// migrating the SQLite database last, so that a setting found invalid leaves no database).
    pub fn open(settings: Settings, mode: Mode) -> Result<Self, StartError> {
        let authenticator =
            Authenticator::new(auth_config(&settings, mode)?).map_err(|error| match error {
                shared::auth::AuthConfigError::NoIssuers => StartError::NoIssuer,
                other => StartError::Auth(other),
            })?;
        let page_tokens = crate::api::PageTokens::new(&pseudonym_key(&settings, mode)?);
        let archive = shared::archive::open(&settings).map_err(StartError::Archive)?;
        let db = Db::open(&settings.sqlite_path())?;
        let health_checks: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(db.clone()), archive.health];
        Ok(Self(Arc::new(AppParts {
            erasure: shared::erasure::ErasureContext::new(&settings),
            settings: Arc::new(settings),
            store: Arc::new(db.clone()),
            db,
            authenticator: Arc::new(authenticator),
            archive: archive.store,
            health_checks: Arc::new(health_checks),
            page_tokens,
        })))
    }
}

impl AppState {
    /// Replaces the SQLite store by the one `STORE` selects (Cosmos DB needs a network
    /// round-trip to connect, so this step is async); with `STORE=sqlite` nothing changes.
    /// Readiness then checks Cosmos DB in place of SQLite (which only keeps the local
    /// runtime's queue and timer state).
    pub async fn with_configured_store(mut self) -> Result<Self, StartError> {
        if let Some((store, health)) = open_cosmos(&self.settings).await? {
            let sqlite = HealthCheck::backend(&self.db);
            let checks = self
                .health_checks
                .iter()
                .map(|check| {
                    if check.backend() == sqlite {
                        Arc::clone(&health)
                    } else {
                        Arc::clone(check)
                    }
                })
                .collect();
            let parts = self.parts_mut();
            parts.store = store;
            parts.health_checks = Arc::new(checks);
        }
        Ok(self)
    }
}

/// The Cosmos DB store when `STORE=cosmos`, `None` otherwise.
pub async fn open_cosmos(
    settings: &Settings,
) -> Result<Option<(Arc<dyn Store>, Arc<dyn HealthCheck>)>, StartError> {
    if settings.store != StoreKind::Cosmos {
        return Ok(None);
    }
    let endpoint = settings.cosmos_endpoint.clone().unwrap_or_default();
    let options = CosmosOptions {
        endpoint: endpoint.clone(),
        database: settings.cosmos_database.clone(),
        auth: match &settings.cosmos_key {
            Some(key) => CosmosAuth::Key(key.clone()),
            None => CosmosAuth::ManagedIdentity {
                client_id: settings.azure_client_id.clone(),
            },
        },
        region: settings.cosmos_region.clone(),
        timeout: settings.cosmos_timeout,
        throttle_retries: settings.cosmos_throttle_retries,
        notification_ttl: std::time::Duration::from_secs(
            u64::from(settings.retention.longest_notification_days()) * 24 * 3600,
        ),
    };
    let store = if endpoint == shared::config::MEMORY_ENDPOINT {
        shared::store::cosmos::open_in_memory(options).await?
    } else {
        CosmosStore::connect(options).await?
    };
    tracing::info!(database = %settings.cosmos_database, "Cosmos DB store opened");
    let health: Arc<dyn HealthCheck> = Arc::new(store.clone());
    Ok(Some((Arc::new(store), health)))
}

/// The pseudonym key (`GDPR_PSEUDONYM_KEY`), read once at start: erasure pseudonymises the
/// audit trail with it and continuation tokens are sealed with a key derived from it. Azure must
/// have it (local mode generates one in `DATA_DIR` on first use), and a key that is set must be
/// usable.
fn pseudonym_key(settings: &Settings, mode: Mode) -> Result<PseudonymKey, StartError> {
    let invalid = |reason: String| StartError::PseudonymKey(reason);
    match (&settings.gdpr_pseudonym_key, mode) {
        (Some(secret), _) if secret.starts_with("@Microsoft.KeyVault(") => Err(invalid("the Key Vault reference was not resolved (check the app identity's access to the vault)".into())),
        (Some(secret), _) => PseudonymKey::new(secret).map_err(|error| invalid(error.to_string())),
        (None, Mode::Azure) => Err(invalid("not set, and GDPR erasure needs it".into())),
        (None, Mode::Local) => shared::erasure::pseudonym_key(settings)
            .map_err(|error| invalid(error.to_string())),
    }
}

/// The trusted issuers from the settings; in local mode the dev issuer too.
fn auth_config(settings: &Settings, mode: Mode) -> Result<AuthConfig, StartError> {
    let auth = &settings.auth;
    let mut config = AuthConfig {
        refetch_interval: auth.key_refetch_interval,
        ..AuthConfig::default()
    };
    if let (Some(issuer), Some(audience)) = (&auth.entra_issuer, &auth.entra_audience) {
        config = config.with_issuer(
            IssuerConfig::employee(issuer, audience).with_tenant_claim(&auth.tenant_claim),
        );
    }
    if let (Some(issuer), Some(audience)) = (&auth.external_issuer, &auth.external_audience) {
        config = config.with_issuer(
            IssuerConfig::client(issuer, audience)
                .with_tenant_claim(&auth.tenant_claim)
                .with_customer_claim(&auth.customer_claim),
        );
    }
    if mode == Mode::Local {
        config = config.with_dev_issuer(DevIssuer::load_or_create(&settings.data_dir)?.trust());
    }
    Ok(config)
}

/// The routes of every HTTP function (`/api/...`), with the API body limit.
pub fn api_router(state: AppState) -> Router {
    let body_limit = state.settings.http_body_limit_bytes;
    FUNCTIONS
        .iter()
        .filter_map(|def| match def.code {
            Code::Http(routes) => Some(routes()),
            Code::HttpReadsOf(_) | Code::Invoke(_) => None,
        })
        .fold(Router::new(), Router::merge)
        .fallback(|| async { Problem::not_found("no API route matches this path") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            )
            .detail("this path does not accept this method; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(crate::api::NotModifiedLayer)
        .layer(crate::api::caller::CorrelateLayer)
        .with_state(state)
}

/// What the envelope route needs, shared behind one `Arc` (one reference count per request).
struct Envelopes {
    state: AppState,
    api: Router,
}

/// The whole handler: probe, invocation envelopes and forwarded HTTP requests.
pub fn handler_router(state: AppState) -> Router {
    let api = api_router(state.clone());
    let envelopes = Router::new()
        .route("/{function}", post(invoke_function))
        .layer(DefaultBodyLimit::max(ENVELOPE_LIMIT_BYTES))
        .with_state(Arc::new(Envelopes {
            state,
            api: api.clone(),
        }));
    Router::new()
        .route("/", get(ready_probe))
        .merge(envelopes)
        .merge(api)
        .layer(crate::invocation_span::InvocationSpanLayer)
}

async fn invoke_function(
    State(envelopes): State<Arc<Envelopes>>,
    Path(function): Path<String>,
    body: Bytes,
) -> Response {
    match registry::find(&function) {
        Some(def) => run_envelope(&envelopes.state, &envelopes.api, def, &body).await,
        None => Problem::not_found(format!("no function named {function:?} in this app"))
            .into_response(),
    }
}
