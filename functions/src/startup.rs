//! Start-up: the app's state, opened the same way by every command (`serve`, `local`, `invoke`,
//! `jobs run`).
//!
//! - [`Backends::open`] opens where the data lives: the SQLite database (created and migrated),
//!   the archive (`ARCHIVE`), then, with `STORE=cosmos`, Cosmos DB in place of SQLite
//!   ([`Backends::with_configured_store`], async: it connects).
//! - [`AppState::open`] adds what the HTTP functions need: token validation (the dev issuer too
//!   in local mode) and the sealing key of continuation tokens.
//! - [`AppState::prefetch_signing_keys`] fetches the issuers' OpenID configuration and keys in the
//!   background, so the first authenticated request does not wait for the identity provider.

use std::sync::Arc;

use shared::archive::ArchiveStore;
use shared::auth::{AuthConfig, Authenticator, DevIssuer, IssuerConfig};
use shared::config::PaymentSettings;
use shared::config::{Settings, StoreKind};
use shared::domain::masking::PseudonymKey;
use shared::outbound::{OutboundRegistry, Secret};
use shared::outbox::service_bus::{ServiceBusOptions, ServiceBusRestPublisher};
use shared::outbox::{MessagePublisher, OutboxStore, Unconfigured};
use shared::payments::paypal::{PayPalGateway, PayPalSetup};
use shared::payments::PaymentGateway;
use shared::store::cosmos::{CosmosAuth, CosmosOptions, CosmosStore};
use shared::store::sqlite::Db;
use shared::store::{
    AuditStore, CustomerStore, DispatchStore, ErasureStore, HealthCheck, NotificationStore,
    OrderStore, ProductStore, Store,
};

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
    #[error("invalid setting PAYPAL_BASE_URL: {0}; fix: check PAYPAL_BASE_URL, PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET")]
    Payments(shared::outbound::OutboundError),
    #[error("invalid setting ERP_BASE_URL: {0}; fix: check ERP_BASE_URL (the ERP service's endpoint URL)")]
    Erp(shared::erp::ErpError),
    #[error("invalid setting CARRIER_BASE_URL: {0}; fix: check CARRIER_BASE_URL (https://api.easypost.com) and CARRIER_API_KEY")]
    Carrier(shared::shipping::CarrierError),
    #[error("invalid setting STORE=cosmos: {0}; fix: check COSMOS_ENDPOINT, COSMOS_DATABASE and AZURE_CLIENT_ID (or COSMOS_KEY for an emulator), or set STORE=sqlite")]
    Cosmos(#[from] shared::store::cosmos::CosmosSetupError),
}

/// Where the app's data lives, opened from the settings.
#[derive(Clone)]
pub struct Backends {
    /// The SQLite database (also the local runtime's queue and timer state).
    pub db: Db,
    /// The app's data, behind the storage ports (the SQLite database, or Cosmos DB).
    pub store: Arc<dyn Store>,
    /// Where the housekeeping jobs archive (`ARCHIVE`: a folder, or a Blob container).
    pub archive: Arc<dyn ArchiveStore>,
    /// What `GET /api/health/ready` checks.
    pub health_checks: Vec<Arc<dyn HealthCheck>>,
}

impl Backends {
    /// Opens the archive, then creates and migrates the SQLite database (last, so that a setting
    /// found invalid leaves no database). The store is SQLite until
    /// [`Backends::with_configured_store`].
    pub fn open(settings: &Settings) -> Result<Self, StartError> {
        let archive = shared::archive::open(settings).map_err(StartError::Archive)?;
        let db = Db::open(&settings.sqlite_path())?;
        db.set_outbox_ttl(settings.outbox.ttl);
        Ok(Self {
            store: Arc::new(db.clone()),
            health_checks: vec![Arc::new(db.clone()), archive.health],
            db,
            archive: archive.store,
        })
    }

    /// Replaces the SQLite store by the one `STORE` selects (Cosmos DB needs a network
    /// round-trip to connect, so this step is async); with `STORE=sqlite` nothing changes.
    /// Readiness then checks Cosmos DB in place of SQLite (which only keeps the local
    /// runtime's queue and timer state).
    pub async fn with_configured_store(mut self, settings: &Settings) -> Result<Self, StartError> {
        if let Some((store, health)) = open_cosmos(settings).await? {
            let sqlite = HealthCheck::backend(&self.db);
            for check in &mut self.health_checks {
                if check.backend() == sqlite {
                    *check = Arc::clone(&health);
                }
            }
            self.store = store;
        }
        Ok(self)
    }
}

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

/// The storage ports, each a handle on the configured store: a function uses the ports of its
/// capability (`state.ports.orders`), so a new capability adds a port and its two adapters
/// without touching the others.
#[derive(Clone)]
pub struct Ports {
    pub customers: Arc<dyn CustomerStore>,
    pub products: Arc<dyn ProductStore>,
    pub orders: Arc<dyn OrderStore>,
    pub notifications: Arc<dyn NotificationStore>,
    pub audit: Arc<dyn AuditStore>,
    pub consents: Arc<dyn shared::store::ConsentStore>,
    pub preferences: Arc<dyn shared::store::PreferenceStore>,
    pub security: Arc<dyn shared::store::SecurityEventStore>,
    pub erasure: Arc<dyn ErasureStore>,
    pub dispatch: Arc<dyn DispatchStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub payments: Arc<dyn shared::store::PaymentStore>,
    pub shipments: Arc<dyn shared::store::ShipmentStore>,
}

impl Ports {
    /// Every port of `store`.
    pub fn of(store: &Arc<dyn Store>) -> Self {
        Self {
            customers: store.clone(),
            products: store.clone(),
            orders: store.clone(),
            notifications: store.clone(),
            audit: store.clone(),
            consents: store.clone(),
            preferences: store.clone(),
            security: store.clone(),
            erasure: store.clone(),
            dispatch: store.clone(),
            outbox: store.clone(),
            payments: store.clone(),
            shipments: store.clone(),
        }
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    /// The SQLite database (also the local runtime's queue and timer state).
    pub db: Db,
    /// The storage ports the functions use.
    pub ports: Ports,
    /// The whole store, for the housekeeping jobs (which work across the ports) and for
    /// replacing it in a test ([`AppState::set_store`]).
    pub store: Arc<dyn Store>,
    pub authenticator: Arc<Authenticator>,
    /// Where the housekeeping jobs archive (`ARCHIVE`: a folder, or a Blob container).
    pub archive: Arc<dyn ArchiveStore>,
    /// The backends `GET /api/health/ready` checks.
    pub health_checks: Arc<Vec<Arc<dyn HealthCheck>>>,
    /// Seals the continuation tokens of the API's listings.
    pub page_tokens: crate::api::PageTokens,
    /// Breach detection's rules and their windows (this instance's).
    pub watch: Arc<crate::api::watch::Watch>,
    /// What the GDPR erasure needs (local mode adds its queue's scrubber).
    pub erasure: shared::erasure::ErasureContext,
    /// Where `OutboxRelay` sends messages: Service Bus in Azure, the embedded queue in local
    /// mode ([`crate::local::LocalRuntime::new`]).
    pub publisher: Arc<dyn MessagePublisher>,
    /// The payment gateway and the other remote services' clients.
    pub outbound: Outbound,
    /// Carrier answers reused for a while (rate quotes, trackers).
    pub shipping_cache: Arc<shared::shipping::ShippingCache>,
}

/// The remote services the app calls: the payment gateway and the ERP (`None` when not
/// configured), and every outbound client's breaker for readiness.
#[derive(Clone, Default)]
pub struct Outbound {
    pub payments: Option<Arc<dyn PaymentGateway>>,
    pub erp: Option<shared::erp::ErpClient>,
    /// The shipping carrier (`None` when `CARRIER_BASE_URL` is unset).
    pub carrier: Option<Arc<dyn shared::shipping::Carrier>>,
    pub registry: OutboundRegistry,
}

impl Outbound {
    /// PayPal from the settings (`PAYPAL_BASE_URL` and its credentials), with extra trusted
    /// certificate origins (a local sandbox's); nothing when `PAYPAL_BASE_URL` is unset.
    pub fn from_settings(
        settings: &PaymentSettings,
        extra_cert_origins: Vec<String>,
    ) -> Result<Self, StartError> {
        let (Some(base_url), Some(client_id), Some(secret)) = (
            &settings.base_url,
            &settings.client_id,
            &settings.client_secret,
        ) else {
            return Ok(Self::default());
        };
        let (gateway, client) = PayPalGateway::connect(PayPalSetup {
            base_url: base_url.clone(),
            client_id: client_id.clone(),
            client_secret: Secret::new(secret.clone()),
            webhook_ids: settings.webhook_ids.clone(),
            webhook_tolerance: settings.webhook_tolerance,
            extra_cert_origins,
            timeout: settings.timeout,
            breaker_open_for: settings.breaker_open_for,
        })
        .map_err(StartError::Payments)?;
        let mut registry = OutboundRegistry::new();
        registry.register(client);
        Ok(Self {
            payments: Some(Arc::new(gateway)),
            erp: None,
            carrier: None,
            registry,
        })
    }

    /// Adds the ERP client from the settings (`ERP_BASE_URL` and its credentials); unchanged
    /// when `ERP_BASE_URL` is unset.
    pub fn with_erp(mut self, settings: &shared::config::ErpSettings) -> Result<Self, StartError> {
        let Some(config) = settings.client_config() else {
            return Ok(self);
        };
        let client = shared::erp::ErpClient::new(config).map_err(StartError::Erp)?;
        self.registry.register(client.outbound().clone());
        self.erp = Some(client);
        Ok(self)
    }

    /// Adds the carrier from the settings (`CARRIER_BASE_URL` and `CARRIER_API_KEY`); unchanged
    /// when `CARRIER_BASE_URL` is unset.
    pub fn with_carrier(
        mut self,
        settings: &shared::config::ShippingSettings,
    ) -> Result<Self, StartError> {
        let Some(config) = settings.client_config() else {
            return Ok(self);
        };
        let carrier =
            shared::shipping::easypost::EasyPost::new(config).map_err(StartError::Carrier)?;
        self.registry.register(
            shared::shipping::Carrier::outbound(&carrier)
                .cloned()
                .ok_or_else(|| {
                    StartError::Carrier(shared::shipping::CarrierError::Config(
                        "no outbound client".into(),
                    ))
                })?,
        );
        self.carrier = Some(Arc::new(carrier));
        Ok(self)
    }
}

impl AppState {
    /// Sets up token validation for `mode` and opens the backends ([`Backends::open`]; SQLite
    /// until [`AppState::with_configured_store`]).
    pub fn open(settings: Settings, mode: Mode) -> Result<Self, StartError> {
        let authenticator =
            Authenticator::new(auth_config(&settings, mode)?).map_err(|error| match error {
                shared::auth::AuthConfigError::NoIssuers => StartError::NoIssuer,
                other => StartError::Auth(other),
            })?;
        let key = pseudonym_key(&settings, mode)?;
        let page_tokens = crate::api::PageTokens::new(&key);
        let watch = crate::api::watch::Watch::new(settings.security.clone(), &key);
        let backends = Backends::open(&settings)?;
        let outbound = Outbound::from_settings(&settings.payments, Vec::new())?
            .with_erp(&settings.erp)?
            .with_carrier(&settings.shipping)?;
        Ok(Self::assemble(
            settings,
            backends,
            authenticator,
            (page_tokens, watch),
            outbound,
        ))
    }

    fn assemble(
        settings: Settings,
        backends: Backends,
        authenticator: Authenticator,
        (page_tokens, watch): (crate::api::PageTokens, crate::api::watch::Watch),
        outbound: Outbound,
    ) -> Self {
        let publisher = publisher(&settings);
        Self(Arc::new(AppParts {
            watch: Arc::new(watch),
            erasure: shared::erasure::ErasureContext::new(&settings),
            settings: Arc::new(settings),
            db: backends.db,
            ports: Ports::of(&backends.store),
            store: backends.store,
            authenticator: Arc::new(authenticator),
            archive: backends.archive,
            health_checks: Arc::new(backends.health_checks),
            page_tokens,
            publisher,
            outbound,
            shipping_cache: Arc::default(),
        }))
    }

    /// The parts, to replace one (at start-up, or in a test); copies them if the state is shared.
    pub fn parts_mut(&mut self) -> &mut AppParts {
        Arc::make_mut(&mut self.0)
    }

    /// The backends this state was opened with.
    pub fn backends(&self) -> Backends {
        Backends {
            db: self.db.clone(),
            store: self.store.clone(),
            archive: self.archive.clone(),
            health_checks: self.health_checks.as_ref().clone(),
        }
    }

    /// Replaces the SQLite store by the one `STORE` selects (see
    /// [`Backends::with_configured_store`]).
    pub async fn with_configured_store(mut self) -> Result<Self, StartError> {
        let backends = self
            .backends()
            .with_configured_store(&self.settings)
            .await?;
        self.set_store(backends.store);
        self.parts_mut().health_checks = Arc::new(backends.health_checks);
        Ok(self)
    }

    /// Replaces the store and every port with `store`.
    pub fn set_store(&mut self, store: Arc<dyn Store>) {
        let parts = self.parts_mut();
        parts.ports = Ports::of(&store);
        parts.store = store;
    }

    /// Fetches the remote issuers' OpenID configuration and signing keys in the background, so
    /// the first authenticated request finds them cached (a failure is logged; requests retry
    /// the fetch). Returns at once.
    pub fn prefetch_signing_keys(&self) {
        let authenticator = Arc::clone(&self.authenticator);
        tokio::spawn(async move {
            if let Err(error) = authenticator.prefetch_keys().await {
                tracing::warn!(error = %error, "the token issuers' signing keys could not be fetched at start; the first API call will retry");
            }
        });
    }
}

/// The relay's publisher from the settings: Service Bus (its REST API, with the managed
/// identity) when its namespace is set. Without it, or when it cannot be set up, every publish
/// fails as transient with the reason: the relay retries and readiness shows the lag.
fn publisher(settings: &Settings) -> Arc<dyn MessagePublisher> {
    let Some(namespace) = &settings.outbox.service_bus_namespace else {
        return Arc::new(Unconfigured);
    };
    match ServiceBusRestPublisher::managed_identity(
        namespace,
        settings.azure_client_id.clone(),
        ServiceBusOptions::default(),
    ) {
        Ok(publisher) => Arc::new(publisher),
        Err(error) => {
            tracing::error!(error = %error, "the Service Bus publisher cannot be set up; the outbox relay will keep retrying");
            Arc::new(Unconfigured)
        }
    }
}

/// The Cosmos DB store when `STORE=cosmos`, `None` otherwise.
async fn open_cosmos(
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
        outbox_ttl: settings.outbox.ttl,
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
