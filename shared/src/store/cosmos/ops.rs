//! The Cosmos DB calls every adapter module uses: point reads and writes, queries and
//! transactional batches, each bounded by the store's timeout, with the SDK's errors turned
//! into [`StoreError`]s and throttling counted for the job reports.

use std::future::Future;
use std::time::Duration;

use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{BatchResponse, ItemResponse};
use azure_data_cosmos::options::{BatchOptions, ItemReadOptions, ItemWriteOptions, QueryOptions};
use azure_data_cosmos::{CosmosError, FeedScope, PartitionKey, Query, TransactionalBatch};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{CosmosStore, BACKEND};
use crate::domain::etag::ETag;
use crate::store::{StoreError, StoreResult};

/// A transactional batch that the service refused as a whole (Cosmos answers 207 Multi-Status:
/// the failing operation has its own status, every other one 424).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRefused {
    /// Position of the operation that failed.
    pub index: usize,
    /// Its HTTP status (409 conflict, 412 precondition failed, 404 not found, ...).
    pub status: u16,
}

/// The outcome of a batch: applied (with each operation's new `_etag`), or refused.
pub type BatchOutcome = Result<Vec<Option<String>>, BatchRefused>;

/// A query parameter: its name (`@tenant`) and JSON value.
pub type Param = (&'static str, Value);

impl CosmosStore {
    /// Runs `call` within the store's timeout; a call that outlives it is `Unavailable`.
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, CosmosError>>,
    ) -> StoreResult<T> {
        let limit = self.inner.timeout + Duration::from_millis(250);
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.map_error(what, &error)),
            Err(_) => Err(StoreError::Unavailable {
                backend: BACKEND,
                reason: format!("{what}: no answer within {limit:?}"),
            }),
        }
    }

    /// Reads one document; `None` when it does not exist.
    pub(crate) async fn read_doc<T: DeserializeOwned>(
        &self,
        container: &ContainerClient,
        pk: PartitionKey,
        id: &str,
    ) -> StoreResult<Option<T>> {
        let result = self
            .bounded(
                "read",
                container.read_item(pk, id, Some(self.read_options())),
            )
            .await;
        match result {
            Ok(response) => {
                self.note_diagnostics(&response);
                response
                    .into_model::<T>()
                    .map(Some)
                    .map_err(|error| self.decode_error("read", &error))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Creates a document; `Conflict` when one with this id exists in the partition.
    pub(crate) async fn create_doc<T: Serialize + Send + Sync>(
        &self,
        container: &ContainerClient,
        pk: PartitionKey,
        id: &str,
        doc: &T,
    ) -> StoreResult<String> {
        let response = self
            .bounded(
                "create",
                container.create_item(pk, id, doc, Some(self.write_options(None))),
            )
            .await?;
        Ok(self.written_etag(&response))
    }

    /// Replaces a document, only if its `_etag` is still `cosmos_etag` (when given).
    pub(crate) async fn replace_doc<T: Serialize + Send + Sync>(
        &self,
        container: &ContainerClient,
        pk: PartitionKey,
        id: &str,
        doc: &T,
        cosmos_etag: Option<&str>,
    ) -> StoreResult<String> {
        let response = self
            .bounded(
                "replace",
                container.replace_item(pk, id, doc, Some(self.write_options(cosmos_etag))),
            )
            .await?;
        Ok(self.written_etag(&response))
    }

    /// Creates or replaces a document, only if its `_etag` is still `cosmos_etag` (when given).
    pub(crate) async fn upsert_doc<T: Serialize + Send + Sync>(
        &self,
        container: &ContainerClient,
        pk: PartitionKey,
        id: &str,
        doc: &T,
        cosmos_etag: Option<&str>,
    ) -> StoreResult<String> {
        let response = self
            .bounded(
                "upsert",
                container.upsert_item(pk, id, doc, Some(self.write_options(cosmos_etag))),
            )
            .await?;
        Ok(self.written_etag(&response))
    }

    /// Deletes a document; `false` when it did not exist.
    pub(crate) async fn delete_doc(
        &self,
        container: &ContainerClient,
        pk: PartitionKey,
        id: &str,
        cosmos_etag: Option<&str>,
    ) -> StoreResult<bool> {
        match self
            .bounded(
                "delete",
                container.delete_item(pk, id, Some(self.write_options(cosmos_etag))),
            )
            .await
        {
            Ok(response) => {
                self.note_diagnostics(&response);
                Ok(true)
            }
            Err(StoreError::NotFound) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Runs a query in `scope` and collects every result (queries carry their own `TOP`). Each
    /// page is bounded by the store's timeout, not the whole query: a job's scan over a large
    /// tenant reads many pages, each of which must answer in time.
    pub(crate) async fn query_docs<T: DeserializeOwned + Send + 'static>(
        &self,
        container: &ContainerClient,
        scope: FeedScope,
        sql: &str,
        params: Vec<Param>,
    ) -> StoreResult<Vec<T>> {
        let mut query = Query::from(sql.to_owned());
        for (name, value) in params {
            query = query
                .with_parameter(name, value)
                .map_err(|error| self.decode_error("query parameter", &error))?;
        }
        let options = QueryOptions::default().with_operation_options(self.operation_options());
        let mut pages = self
            .bounded(
                "query",
                container.query_items::<T>(query, scope, Some(options)),
            )
            .await?
            .into_pages();
        let mut items = Vec::new();
        while let Some(page) = self
            .bounded("query page", async { Ok(pages.next().await) })
            .await?
        {
            let page = page.map_err(|error| self.map_error("query page", &error))?;
            self.count_throttled(&page.diagnostics());
            items.extend(page.into_items());
        }
        Ok(items)
    }

    /// Runs a transactional batch: every operation or none.
    pub(crate) async fn run_batch(
        &self,
        container: &ContainerClient,
        batch: TransactionalBatch,
    ) -> StoreResult<BatchOutcome> {
        let response: BatchResponse = self
            .bounded(
                "batch",
                container.execute_transactional_batch(
                    batch,
                    Some(BatchOptions::default().with_operation_options(self.operation_options())),
                ),
            )
            .await?;
        self.count_throttled(&response.diagnostics());
        let applied = response.status().is_success()
            && response.status().status_code() != azure_core::http::StatusCode::MultiStatus;
        let model = response
            .into_model()
            .map_err(|error| self.decode_error("batch", &error))?;
        let results = model.results();
        if applied && results.iter().all(|result| result.is_success()) {
            return Ok(Ok(results
                .iter()
                .map(|result| result.etag().map(str::to_owned))
                .collect()));
        }
        let failed = results
            .iter()
            .enumerate()
            .find(|(_, result)| !result.is_success() && result.status_code() != 424);
        match failed {
            Some((_, result)) if result.status_code() == 429 => Err(StoreError::Throttled {
                backend: BACKEND,
                attempts: 1,
                retry_after: result.retry_after(),
            }),
            Some((index, result)) => Ok(Err(BatchRefused {
                index,
                status: result.status_code(),
            })),
            None => Err(StoreError::Unavailable {
                backend: BACKEND,
                reason: "a transactional batch failed without saying which operation".into(),
            }),
        }
    }

    /// A batch builder error (serialising a document) as a store error.
    pub(crate) fn batch_error(&self, error: CosmosError) -> StoreError {
        self.decode_error("batch", &error)
    }

    fn read_options(&self) -> ItemReadOptions {
        ItemReadOptions::default().with_operation_options(self.operation_options())
    }

    fn write_options(&self, cosmos_etag: Option<&str>) -> ItemWriteOptions {
        let options = ItemWriteOptions::default().with_operation_options(self.operation_options());
        match cosmos_etag {
            Some(etag) => options.with_precondition(
                azure_data_cosmos::options::Precondition::if_match(etag.to_owned()),
            ),
            None => options,
        }
    }

    fn written_etag(&self, response: &ItemResponse) -> String {
        self.note_diagnostics(response);
        response
            .headers()
            .etag()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn note_diagnostics(&self, response: &ItemResponse) {
        self.count_throttled(&response.diagnostics());
    }

    /// Maps an SDK error: 404, 409, 412 and 429 keep their meaning, the rest is `Unavailable`.
    fn map_error(&self, what: &str, error: &CosmosError) -> StoreError {
        if let Some(diagnostics) = error.diagnostics() {
            self.count_throttled(&diagnostics);
        }
        let status = error.status();
        if status.is_not_found() {
            StoreError::NotFound
        } else if status.is_conflict() {
            StoreError::Conflict(format!("{what}: a document with this id exists"))
        } else if status.is_precondition_failed() {
            StoreError::PreconditionFailed {
                current: ETag::new(""),
            }
        } else if status.is_throttled() {
            let attempts = error
                .diagnostics()
                .map_or(1, |diagnostics| diagnostics.request_count());
            let retry_after = error
                .response()
                .and_then(|response| response.headers().retry_after_ms)
                .map(Duration::from_millis);
            tracing::warn!(what, attempts, "cosmos kept throttling");
            StoreError::Throttled {
                backend: BACKEND,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                retry_after,
            }
        } else {
            StoreError::Unavailable {
                backend: BACKEND,
                reason: format!("{what}: {error}"),
            }
        }
    }

    fn decode_error(&self, what: &str, error: &CosmosError) -> StoreError {
        StoreError::Unavailable {
            backend: BACKEND,
            reason: format!("{what}: unexpected document shape: {error}"),
        }
    }
}
