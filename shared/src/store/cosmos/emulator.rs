//! The store on the SDK's in-memory Cosmos DB emulator (`azure_data_cosmos_driver`, feature
//! `cosmos-emulator`): the tests' backend and `COSMOS_ENDPOINT=memory:` on a laptop. Data lives
//! in the process only. Fault-injection rules (throttling, unavailability) sit below the SDK's
//! retry policy, so the store's real retry and error handling is what a test sees.

use std::sync::Arc;

use azure_data_cosmos::fault_injection::FaultInjectionRule;
use azure_data_cosmos::options::Region;
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClientBuilder, CosmosRuntimeBuilder, RoutingStrategy,
};
use azure_data_cosmos_driver::in_memory_emulator::{
    ConsistencyLevel, InMemoryEmulatorHttpClient, VirtualAccountConfig, VirtualRegion,
};

use super::{operation_defaults, CosmosAuth, CosmosOptions, CosmosSetupError, CosmosStore};

/// The emulator's (never contacted) gateway address.
const EMULATOR_URL: &str = "https://eastus.emulator.local";
/// The emulator accepts any well-formed key.
const EMULATOR_KEY: &str = "ZW11bGF0b3Ita2V5";

impl CosmosOptions {
    /// Options for the in-memory emulator: database `platform`, a 5 s call bound, 2 throttling
    /// retries (tests and `COSMOS_ENDPOINT=memory:` adjust what they need).
    pub fn for_emulator() -> Self {
        Self {
            endpoint: crate::config::MEMORY_ENDPOINT.to_owned(),
            database: "platform".into(),
            auth: CosmosAuth::Key(EMULATOR_KEY.into()),
            region: "eastus".into(),
            timeout: std::time::Duration::from_secs(5),
            throttle_retries: 2,
            notification_ttl: std::time::Duration::from_secs(90 * 24 * 3600),
            outbox_ttl: crate::outbox::DEFAULT_TTL,
        }
    }
}

/// A store on a fresh in-memory emulator, and the emulator (for inspection).
pub struct InMemoryCosmos {
    pub store: CosmosStore,
    pub emulator: Arc<InMemoryEmulatorHttpClient>,
}

/// Starts an emulator, provisions the database and containers through the SDK (as against a
/// real account with a key) and opens the store on it. `options.endpoint` and `auth` are
/// ignored; `faults` are injected into every call.
pub async fn in_memory(
    options: CosmosOptions,
    faults: Vec<Arc<FaultInjectionRule>>,
) -> Result<InMemoryCosmos, CosmosSetupError> {
    let url = azure_core::http::Url::parse(EMULATOR_URL)
        .map_err(|error| CosmosSetupError::Client(error.to_string()))?;
    let config = VirtualAccountConfig::new(vec![VirtualRegion::new("East US", url)])
        .map_err(|error| CosmosSetupError::Client(error.to_string()))?
        .with_consistency(ConsistencyLevel::Session);
    let emulator = Arc::new(InMemoryEmulatorHttpClient::new(config));
    let runtime = CosmosRuntimeBuilder::from(emulator.runtime_builder())
        .build()
        .await
        .map_err(|error| CosmosSetupError::Client(error.to_string()))?;
    let endpoint: AccountEndpoint =
        EMULATOR_URL
            .parse()
            .map_err(|error| CosmosSetupError::Endpoint {
                endpoint: EMULATOR_URL.into(),
                reason: format!("{error}"),
            })?;
    let account = AccountReference::with_authentication_key(
        endpoint,
        azure_core::credentials::Secret::new(EMULATOR_KEY),
    );
    let mut builder = CosmosClientBuilder::new()
        .with_runtime(runtime)
        .with_default_operation_options(operation_defaults(&options));
    if !faults.is_empty() {
        builder = builder
            .with_fault_injection_rules(faults)
            .map_err(|error| CosmosSetupError::Client(error.to_string()))?;
    }
    let client = builder
        .build(account, RoutingStrategy::ProximityTo(Region::EAST_US))
        .await
        .map_err(|error| CosmosSetupError::Client(error.to_string()))?;
    let options = CosmosOptions {
        auth: CosmosAuth::Key(EMULATOR_KEY.into()),
        ..options
    };
    let store = CosmosStore::open(&client, options, true).await?;
    Ok(InMemoryCosmos { store, emulator })
}

#[cfg(test)]
mod tests {

    use azure_data_cosmos::{FeedScope, PartitionKey, TransactionalBatch};
    use serde_json::json;

    use super::*;
    use crate::store::cosmos::doc::{kind, Doc, CATALOG_SCOPE};
    use crate::store::HealthCheck;

    #[tokio::test]
    async fn documents_round_trip_through_the_emulator() {
        let cosmos = in_memory(CosmosOptions::for_emulator(), Vec::new())
            .await
            .unwrap();
        let store = cosmos.store;
        store.ping().await.unwrap();
        let pk = PartitionKey::from(("t1", CATALOG_SCOPE));
        let doc = Doc::new(
            kind::PRODUCT,
            "p1",
            "t1",
            CATALOG_SCOPE,
            "2026",
            json!({"stock": 3}),
        )
        .with_version("v1");
        let etag = store
            .create_doc(store.data(), pk.clone(), &doc.id, &doc)
            .await
            .unwrap();
        assert!(!etag.is_empty());
        let read: Doc<serde_json::Value> = store
            .read_doc(store.data(), pk.clone(), "product:p1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.body["stock"], 3);
        assert_eq!(read.cosmos_etag.as_deref(), Some(etag.as_str()));
        assert!(store
            .read_doc::<Doc<serde_json::Value>>(store.data(), pk.clone(), "product:nope")
            .await
            .unwrap()
            .is_none());
        let stale = store
            .replace_doc(store.data(), pk.clone(), &doc.id, &doc, Some("\"stale\""))
            .await;
        assert!(
            matches!(
                stale,
                Err(crate::store::StoreError::PreconditionFailed { .. })
            ),
            "{stale:?}"
        );
        let found: Vec<Doc<serde_json::Value>> = store
            .query_docs(
                store.data(),
                FeedScope::partition(PartitionKey::from("t1")),
                "SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.sortKey DESC, c.id DESC",
                vec![("@t", json!("t1"))],
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        let doc2 = Doc::new(
            kind::PRODUCT,
            "p2",
            "t1",
            CATALOG_SCOPE,
            "2026",
            json!({"stock": 1}),
        );
        let batch = TransactionalBatch::new(pk.clone())
            .create_item(&doc2)
            .unwrap()
            .create_item(&doc)
            .unwrap();
        let outcome = store.run_batch(store.data(), batch).await.unwrap();
        assert_eq!(
            outcome,
            Err(crate::store::cosmos::BatchRefused {
                index: 1,
                status: 409
            })
        );
        assert!(
            store
                .read_doc::<Doc<serde_json::Value>>(store.data(), pk, "product:p2")
                .await
                .unwrap()
                .is_none(),
            "the batch was atomic"
        );
    }
}
