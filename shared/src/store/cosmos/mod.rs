//! The Azure Cosmos DB (NoSQL API) store: every storage port, with the SQLite store's behaviour,
//! on the official `azure_data_cosmos` SDK.
//!
//! # Data model
//!
//! Two containers in one database (`COSMOS_DATABASE`):
//!
//! - **`tenantdata`**, hierarchical partition key `[/tenantId, /scope]`. Every document is a
//!   [`doc::Doc`] envelope (`id` = `{type}:{record id}`, `tenantId`, `scope`, `type`,
//!   `version` = the ETag clients see, `sortKey`, optional `ttl`, `body` = the domain record).
//!   The scope decides what can change together in one transactional batch:
//!   - `customer:{customerId}`: the profile, the customer's orders (items and status history
//!     embedded), notifications to the customer, idempotency keys (scoped per ordering
//!     customer), erasure requests, processed-event markers and the audit entries about the
//!     customer. An erasure is single-partition work; an order, its idempotency key, its audit
//!     entry and the customer's last activity are one batch. The customer's payments live
//!     here too, with the per-order lock, key and webhook-marker documents written in their
//!     batches (see `payments/mod.rs`).
//!   - `catalog`: the tenant's products and their audit entries. Stock for every line of an
//!     order is reserved in one batch (if-match on each product).
//!   - `tenant`: notifications to a staff role and audit entries about no customer.
//!
//!   Container default TTL is "on, no default" (`-1`): notifications carry `ttl` = 90 days, or
//!   the longest notification retention configured if longer ([`CosmosOptions::notification_ttl`]),
//!   idempotency keys (orders' and payments') 1 day, payment webhook markers 30 days,
//!   processed-event markers 14 days (Service Bus keeps a message up to
//!   14 days, so a redelivery within that is still recognised), outbox records
//!   [`CosmosOptions::outbox_ttl`]; marking a notification read sets its remaining time (Cosmos
//!   counts TTL from the last write).
//! - **`jobs`**, partition key `/jobName`: each job's lease (with its checkpoint) and run reports.
//!
//! # Outbox
//!
//! Every message the app sends is an outbox document (`type` = `outbox`, see `outbox.rs`)
//! created in the same transactional batch, hence the same logical partition, as the change
//! it announces: an order's creation and status changes and an erasure request in the
//! customer's partition, a dispatched event's outbound messages with its processed-event
//! marker. `OutboxRelay` reads them from the change feed; Cosmos's TTL removes the ones it
//! never acknowledged.
//!
//! Listings are single-tenant queries (a prefix of the hierarchical key) ordered by
//! `(sortKey, id)` with our own keyset continuation tokens; nothing relies on cross-partition
//! aggregates. Creating an order spans two partitions (catalogue, customer): stock is reserved
//! first and released again if the order cannot be written (a compensating step, see
//! `orders.rs`).
//!
//! # Calls
//!
//! Every call is bounded by `COSMOS_TIMEOUT_MS` (the SDK's end-to-end latency policy and a
//! timer around it); 429 answers are retried after the server's retry-after, at most
//! `COSMOS_THROTTLE_RETRIES` times, then surface as [`StoreError::Throttled`]. Every throttled
//! attempt is counted ([`CosmosStore::throttled_requests`]) for the job reports.

mod audit;
mod consents;
mod customers;
mod dispatch;
mod doc;
mod erasure;
mod erp;
#[cfg(test)]
mod fixtures;
mod jobs;
mod notifications;
mod ops;
mod orders;
mod outbox;
mod payments;
mod preferences;
mod products;
mod security;
mod shipments;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{
    ContainerProperties, IndexingPolicy, PartitionKeyDefinition, TimeToLive,
};
use azure_data_cosmos::options::{
    EndToEndOperationLatencyPolicy, OperationOptions, OperationOptionsBuilder, Region,
    ThrottlingRetryOptionsBuilder,
};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClient, CosmosClientBuilder, RoutingStrategy,
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

pub use ops::{BatchOutcome, BatchRefused, Param};

use super::{HealthCheck, StoreError};

/// The backend name in reports and errors.
pub(crate) const BACKEND: &str = "cosmos";
/// The container of every tenant's records.
pub(crate) const DATA_CONTAINER: &str = "tenantdata";
/// The container of job leases, checkpoints and run reports.
pub(crate) const JOBS_CONTAINER: &str = "jobs";

/// How the store authenticates.
#[derive(Clone)]
pub enum CosmosAuth {
    /// A managed identity: `None` is system-assigned, `Some(client_id)` user-assigned.
    ManagedIdentity { client_id: Option<String> },
    /// An account key: emulators and tests only.
    Key(String),
}

impl std::fmt::Debug for CosmosAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            Self::Key(_) => f.write_str("Key(..)"),
        }
    }
}

/// What the store connects to and how.
#[derive(Clone)]
pub struct CosmosOptions {
    pub endpoint: String,
    pub database: String,
    pub auth: CosmosAuth,
    pub region: String,
    /// Upper bound of one call, retries included.
    pub timeout: Duration,
    /// Retries of a throttled call before it fails.
    pub throttle_retries: u32,
    /// How long notifications live (document `ttl`): at least 90 days, and at least the longest
    /// notification retention configured, so the retention jobs act before Cosmos expires them.
    pub notification_ttl: Duration,
    /// How long an outbox record lives unacknowledged (document `ttl`; `OUTBOX_TTL_SECONDS`,
    /// [`crate::outbox::DEFAULT_TTL`] by default).
    pub outbox_ttl: Duration,
}

impl std::fmt::Debug for CosmosOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosOptions")
            .field("endpoint", &self.endpoint)
            .field("database", &self.database)
            .field("auth", &self.auth)
            .field("region", &self.region)
            .field("timeout", &self.timeout)
            .field("throttle_retries", &self.throttle_retries)
            .field("notification_ttl", &self.notification_ttl)
            .field("outbox_ttl", &self.outbox_ttl)
            .finish()
    }
}

/// Setting up the store failed.
#[derive(Debug, thiserror::Error)]
pub enum CosmosSetupError {
    #[error("cosmos endpoint {endpoint} is not usable: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cosmos managed identity: {0}")]
    Identity(String),
    #[error("cosmos client: {0}")]
    Client(String),
    #[error("cosmos provisioning of {what}: {reason}")]
    Provision { what: String, reason: String },
}

/// The Cosmos DB store; cheap to clone.
#[derive(Clone)]
pub struct CosmosStore {
    inner: Arc<Inner>,
}

struct Inner {
    data: ContainerClient,
    jobs: ContainerClient,
    timeout: Duration,
    throttle_retries: u32,
    notification_ttl_seconds: i64,
    outbox_ttl_seconds: i64,
    throttled_requests: AtomicU64,
}

impl CosmosStore {
    /// Connects to an account. With a key (emulators), the database and containers are created
    /// when missing; with a managed identity they must exist (Bicep provisions them: the data
    /// plane's Entra roles cannot create them).
    pub async fn connect(options: CosmosOptions) -> Result<Self, CosmosSetupError> {
        let endpoint: AccountEndpoint =
            options
                .endpoint
                .parse()
                .map_err(|error| CosmosSetupError::Endpoint {
                    endpoint: options.endpoint.clone(),
                    reason: format!("{error}"),
                })?;
        let (account, may_provision) = match &options.auth {
            CosmosAuth::Key(key) => (
                AccountReference::with_authentication_key(
                    endpoint,
                    azure_core::credentials::Secret::new(key.clone()),
                ),
                true,
            ),
            CosmosAuth::ManagedIdentity { client_id } => (
                AccountReference::with_credential(endpoint, managed_identity(client_id.clone())?),
                false,
            ),
        };
        let builder =
            CosmosClientBuilder::new().with_default_operation_options(operation_defaults(&options));
        let client = builder
            .build(
                account,
                RoutingStrategy::ProximityTo(Region::new(options.region.clone())),
            )
            .await
            .map_err(|error| CosmosSetupError::Client(error.to_string()))?;
        Self::open(&client, options, may_provision).await
    }

    /// Opens the containers (creating the database and containers first if `provision`).
    async fn open(
        client: &CosmosClient,
        options: CosmosOptions,
        provision: bool,
    ) -> Result<Self, CosmosSetupError> {
        if provision {
            provision_database(client, &options.database).await?;
        }
        let database = client.database_client(options.database.as_str());
        let data = database
            .container_client(DATA_CONTAINER, None)
            .await
            .map_err(|error| {
                CosmosSetupError::Client(format!("container {DATA_CONTAINER}: {error}"))
            })?;
        let jobs = database
            .container_client(JOBS_CONTAINER, None)
            .await
            .map_err(|error| {
                CosmosSetupError::Client(format!("container {JOBS_CONTAINER}: {error}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                data,
                jobs,
                timeout: options.timeout,
                throttle_retries: options.throttle_retries,
                notification_ttl_seconds: i64::try_from(options.notification_ttl.as_secs())
                    .unwrap_or(i64::MAX)
                    .max(notifications::NOTIFICATION_TTL_SECONDS),
                // Cosmos takes a per-item TTL of 1 to 2^31 - 1 seconds.
                outbox_ttl_seconds: i64::try_from(options.outbox_ttl.as_secs())
                    .unwrap_or(i64::MAX)
                    .clamp(1, i64::from(i32::MAX)),
                throttled_requests: AtomicU64::new(0),
            }),
        })
    }

    /// The container of tenant records.
    pub fn data(&self) -> &ContainerClient {
        &self.inner.data
    }

    /// The container of job state.
    pub fn jobs(&self) -> &ContainerClient {
        &self.inner.jobs
    }

    /// Seconds a notification lives after it is created.
    pub(crate) fn notification_ttl_seconds(&self) -> i64 {
        self.inner.notification_ttl_seconds
    }

    /// Seconds an outbox record lives after it is written.
    pub(crate) fn outbox_ttl_seconds(&self) -> i64 {
        self.inner.outbox_ttl_seconds
    }

    /// How many requests the service answered with 429 since the store was opened (each one
    /// was retried after the server's retry-after, or surfaced as [`StoreError::Throttled`]).
    pub fn throttled_requests(&self) -> u64 {
        self.inner.throttled_requests.load(Ordering::Relaxed)
    }

    /// Adds the throttled attempts a call's diagnostics show.
    pub(crate) fn count_throttled(
        &self,
        diagnostics: &azure_data_cosmos::diagnostics::DiagnosticsContext,
    ) {
        let throttled = diagnostics
            .requests()
            .iter()
            .filter(|request| request.status().is_throttled())
            .count() as u64;
        if throttled > 0 {
            self.inner
                .throttled_requests
                .fetch_add(throttled, Ordering::Relaxed);
        }
    }

    /// The per-call options: the timeout and the throttling retry budget.
    fn operation_options(&self) -> OperationOptions {
        latency_and_throttling(self.inner.timeout, self.inner.throttle_retries)
    }
}

fn operation_defaults(options: &CosmosOptions) -> OperationOptions {
    latency_and_throttling(options.timeout, options.throttle_retries)
}

fn latency_and_throttling(timeout: Duration, throttle_retries: u32) -> OperationOptions {
    OperationOptionsBuilder::new()
        .with_end_to_end_latency_policy(EndToEndOperationLatencyPolicy::new(timeout))
        .with_throttling_retry_options(
            ThrottlingRetryOptionsBuilder::new()
                .with_max_retry_count(throttle_retries)
                .with_max_retry_wait_time(timeout)
                .build(),
        )
        .build()
}

fn managed_identity(
    client_id: Option<String>,
) -> Result<Arc<dyn TokenCredential>, CosmosSetupError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(UserAssignedId::ClientId),
        ..Default::default()
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|error| CosmosSetupError::Identity(error.to_string()))?;
    Ok(credential)
}

/// The indexing policy of `tenantdata`: everything indexed, plus the composite indexes the
/// listings' multi-column `ORDER BY` needs on a real account (Bicep declares the same).
pub(crate) fn data_indexing_policy() -> serde_json::Value {
    serde_json::json!({
        "indexingMode": "consistent",
        "automatic": true,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": "/\"_etag\"/?"}],
        "compositeIndexes": [
            [{"path": "/sortKey", "order": "descending"}, {"path": "/id", "order": "descending"}],
            [{"path": "/sortKey", "order": "ascending"}, {"path": "/id", "order": "ascending"}],
            [{"path": "/at", "order": "ascending"}, {"path": "/id", "order": "ascending"}]
        ]
    })
}

/// Creates the database and both containers when they are missing (key auth only).
async fn provision_database(client: &CosmosClient, database: &str) -> Result<(), CosmosSetupError> {
    let provision_error =
        |what: &str, error: azure_data_cosmos::CosmosError| CosmosSetupError::Provision {
            what: what.to_owned(),
            reason: error.to_string(),
        };
    match client.create_database(database, None).await {
        Ok(_) => {}
        Err(error) if error.status().is_conflict() => {}
        Err(error) => return Err(provision_error(database, error)),
    }
    let indexing: IndexingPolicy =
        serde_json::from_value(data_indexing_policy()).map_err(|error| {
            CosmosSetupError::Provision {
                what: "indexing policy".into(),
                reason: error.to_string(),
            }
        })?;
    let containers = [
        ContainerProperties::new(
            DATA_CONTAINER,
            PartitionKeyDefinition::from(("/tenantId", "/scope")),
        )
        .with_default_ttl(TimeToLive::NoDefault)
        .with_indexing_policy(indexing),
        ContainerProperties::new(JOBS_CONTAINER, PartitionKeyDefinition::from("/jobName")),
    ];
    let database_client = client.database_client(database);
    for properties in containers {
        let name = properties.id.to_string();
        match database_client.create_container(properties, None).await {
            Ok(_) => {}
            Err(error) if error.status().is_conflict() => {}
            Err(error) => return Err(provision_error(&name, error)),
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl HealthCheck for CosmosStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn throttled_requests(&self) -> u64 {
        CosmosStore::throttled_requests(self)
    }

    /// Reads both containers' properties (works with Entra ID, unlike control-plane writes).
    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded("ping tenantdata", self.inner.data.read(None))
            .await?;
        self.bounded("ping jobs", self.inner.jobs.read(None))
            .await?;
        Ok(())
    }
}

/// The store on a fresh in-memory emulator (`COSMOS_ENDPOINT=memory:`), when this build has
/// it (feature `cosmos-emulator`).
pub async fn open_in_memory(options: CosmosOptions) -> Result<CosmosStore, CosmosSetupError> {
    #[cfg(feature = "cosmos-emulator")]
    {
        tracing::warn!("STORE=cosmos on the in-memory emulator: data lives in this process only");
        Ok(emulator::in_memory(options, Vec::new()).await?.store)
    }
    #[cfg(not(feature = "cosmos-emulator"))]
    {
        let _ = options;
        Err(CosmosSetupError::Client(
            "this build has no in-memory emulator (build with --features cosmos-emulator)".into(),
        ))
    }
}

#[cfg(feature = "cosmos-emulator")]
mod emulator;
#[cfg(feature = "cosmos-emulator")]
pub use emulator::{in_memory, InMemoryCosmos};
