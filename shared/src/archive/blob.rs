//! The Blob Storage adapter of [`ArchiveStore`]: one block blob per object in one container
//! (`ARCHIVE_BLOB_ENDPOINT`, `ARCHIVE_CONTAINER`), through `azure_storage_blob` 1.x.
//!
//! Authentication is a managed identity in Azure ([`BlobAuth::ManagedIdentity`]: system-assigned,
//! or user-assigned by client id, `AZURE_CLIENT_ID`), or a SAS token for emulators and tests
//! ([`BlobAuth::Sas`], `ARCHIVE_BLOB_SAS`, never set in Azure). Every call is bounded by a
//! timeout ([`BlobArchiveOptions::call_timeout`]); retries can be switched off, as the tests do,
//! because Azurite answers features it does not support with 500, which retries turn into hangs.
//!
//! Overwrites and immutability: a put replaces the current blob, because a job that crashed
//! after writing rewrites the same archive on its next run. The Bicep account enables blob
//! versioning with version-level time-based immutability, so an overwrite (or a delete) only
//! makes the previous content a non-current *version*, and that version stays immutable for the
//! retention days; nothing written can be altered or lost early. The jobs never delete archives
//! (only tests do); a delete in Azure removes the current version only, the data stays retained.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, RetryOptions, StatusCode, Url};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, StorageErrorCode};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient, BlobServiceClientOptions};
use futures::TryStreamExt;

use super::{check_key, ArchiveError, ArchiveStore};

const BACKEND: &str = "blob";

/// How the adapter authenticates.
#[derive(Clone)]
pub enum BlobAuth {
    /// A managed identity: `None` is system-assigned, `Some(client_id)` user-assigned.
    ManagedIdentity { client_id: Option<String> },
    /// A SAS token (the query string, without `?`), for emulators and tests only.
    Sas(String),
}

impl std::fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            Self::Sas(_) => f.write_str("Sas(<redacted>)"),
        }
    }
}

/// Per-adapter tuning.
#[derive(Debug, Clone)]
pub struct BlobArchiveOptions {
    /// The longest one archive call (including the SDK's own retries) may take.
    pub call_timeout: Duration,
    /// `false` switches the SDK's retry policy off (tests against Azurite).
    pub retries: bool,
    /// Objects per page when listing.
    pub page_size: i32,
    /// Create the container on the first write that finds it missing (emulators: Bicep creates
    /// it in Azure, and the app's identity may not create containers there).
    pub create_container: bool,
}

impl Default for BlobArchiveOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(60),
            retries: true,
            page_size: 1000,
            create_container: false,
        }
    }
}

/// Archives as block blobs in one container.
pub struct BlobArchive {
    container: BlobContainerClient,
    name: String,
    options: BlobArchiveOptions,
}

impl std::fmt::Debug for BlobArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobArchive")
            .field("container", &self.name)
            .field("options", &self.options)
            .finish()
    }
}

impl BlobArchive {
    /// A client for `container` at the account `endpoint` (`https://{account}.blob.core.windows.net`,
    /// or Azurite's `http://127.0.0.1:{port}/devstoreaccount1`). Makes no request.
    pub fn new(
        endpoint: &str,
        container: &str,
        auth: BlobAuth,
        options: BlobArchiveOptions,
    ) -> Result<Self, ArchiveError> {
        let mut url = Url::parse(endpoint).map_err(|error| {
            setup(format!(
                "ARCHIVE_BLOB_ENDPOINT {endpoint:?} is not a URL: {error}"
            ))
        })?;
        let credential = match auth {
            BlobAuth::ManagedIdentity { client_id } => Some(managed_identity(client_id)?),
            BlobAuth::Sas(token) => {
                url.set_query(Some(token.trim_start_matches('?')));
                None
            }
        };
        let mut client_options = ClientOptions::default();
        if !options.retries {
            client_options.retry = RetryOptions::none();
        }
        let service_options = BlobServiceClientOptions {
            client_options,
            ..Default::default()
        };
        let service = BlobServiceClient::new(url, credential, Some(service_options))
            .map_err(|error| setup(format!("ARCHIVE_BLOB_ENDPOINT {endpoint:?}: {error}")))?;
        Ok(Self {
            container: service.blob_container_client(container),
            name: container.to_owned(),
            options,
        })
    }

    /// The container name.
    pub fn container_name(&self) -> &str {
        &self.name
    }

    /// Creates the container if it does not exist (emulators and tests; Bicep creates it in Azure).
    pub async fn create_container_if_missing(&self) -> Result<(), ArchiveError> {
        match self
            .bounded("create container", &self.name, self.container.create(None))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.http_status() == Some(StatusCode::Conflict) => Ok(()),
            Err(error) => Err(service_error("create container", &self.name)(error)),
        }
    }

    /// Succeeds when the container answers (for `GET /api/health/ready`).
    pub async fn ping(&self) -> Result<(), ArchiveError> {
        let exists = self
            .bounded("check", &self.name, self.container.exists())
            .await
            .map_err(service_error("check", &self.name))?;
        if exists {
            Ok(())
        } else {
            Err(ArchiveError::Missing {
                key: format!("container {}", self.name),
            })
        }
    }

    /// Runs `call` within the call timeout; a timeout becomes an `azure_core` error here and
    /// [`ArchiveError::Timeout`] at the edges.
    async fn bounded<T>(
        &self,
        action: &'static str,
        key: &str,
        call: impl std::future::Future<Output = azure_core::Result<T>>,
    ) -> Result<T, BoundedError> {
        match tokio::time::timeout(self.options.call_timeout, call).await {
            Ok(result) => result.map_err(BoundedError::Service),
            Err(_) => Err(BoundedError::Timeout(ArchiveError::Timeout {
                backend: BACKEND,
                action,
                key: key.to_owned(),
                after: self.options.call_timeout,
            })),
        }
    }

    async fn download(&self, key: &str) -> azure_core::Result<Vec<u8>> {
        let result = self.container.blob_client(key).download(None).await?;
        Ok(result.body.collect().await?.to_vec())
    }

    async fn list_all(&self, prefix: &str) -> azure_core::Result<Vec<String>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            maxresults: Some(self.options.page_size),
            ..Default::default()
        };
        // The pager follows NextMarker from page to page.
        let mut items = self.container.list_blobs(Some(options))?;
        let mut keys = Vec::new();
        while let Some(item) = items.try_next().await? {
            keys.extend(item.name);
        }
        Ok(keys)
    }
}

/// A bounded call's failure: the service's error, or the timeout already as an archive error.
enum BoundedError {
    Service(azure_core::Error),
    Timeout(ArchiveError),
}

impl BoundedError {
    fn http_status(&self) -> Option<StatusCode> {
        match self {
            Self::Service(error) => error.http_status(),
            Self::Timeout(_) => None,
        }
    }
}

fn is_container_missing(error: &BoundedError) -> bool {
    match error {
        BoundedError::Service(error) => matches!(
            error.kind(),
            ErrorKind::HttpResponse { error_code: Some(code), .. } if code == StorageErrorCode::ContainerNotFound.as_ref()
        ),
        BoundedError::Timeout(_) => false,
    }
}

fn service_error<'k>(
    action: &'static str,
    key: &'k str,
) -> impl FnOnce(BoundedError) -> ArchiveError + 'k {
    move |error| match error {
        BoundedError::Timeout(timeout) => timeout,
        BoundedError::Service(source) => ArchiveError::Service {
            backend: BACKEND,
            action,
            key: key.to_owned(),
            reason: describe(&source),
        },
    }
}

/// One line for an SDK error: `HTTP 404 ContainerNotFound` rather than the XML body.
fn describe(error: &azure_core::Error) -> String {
    match error.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            format!(
                "HTTP {} {}",
                u16::from(*status),
                error_code.as_deref().unwrap_or("(no error code)")
            )
        }
        _ => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn setup(reason: String) -> ArchiveError {
    ArchiveError::Setup {
        backend: BACKEND,
        reason,
    }
}

fn managed_identity(client_id: Option<String>) -> Result<Arc<dyn TokenCredential>, ArchiveError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(UserAssignedId::ClientId),
        ..Default::default()
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|error| setup(format!("managed identity: {error}")))?;
    Ok(credential)
}

#[async_trait::async_trait]
impl ArchiveStore for BlobArchive {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// One block blob upload: the service commits it whole or not at all.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        check_key(key)?;
        let blob = self.container.blob_client(key);
        let bytes = bytes::Bytes::from(bytes);
        match self
            .bounded("write", key, blob.upload(bytes.clone().into(), None))
            .await
        {
            Err(error) if self.options.create_container && is_container_missing(&error) => {
                self.create_container_if_missing().await?;
                self.bounded("write", key, blob.upload(bytes.into(), None))
                    .await
                    .map(drop)
                    .map_err(service_error("write", key))
            }
            result => result.map(drop).map_err(service_error("write", key)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        check_key(key)?;
        match self.bounded("read", key, self.download(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(error) => Err(service_error("read", key)(error)),
        }
    }

    /// A container that does not exist holds nothing, like a folder that does not (the readiness
    /// check reports it missing; a write fails on it unless the container may be created).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let mut keys = match self.bounded("list", prefix, self.list_all(prefix)).await {
            Ok(keys) => keys,
            Err(error) if is_container_missing(&error) => Vec::new(),
            Err(error) => return Err(service_error("list", prefix)(error)),
        };
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        check_key(key)?;
        let blob = self.container.blob_client(key);
        match self.bounded("delete", key, blob.delete(None)).await {
            Ok(_) => Ok(()),
            Err(error) if error.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(error) => Err(service_error("delete", key)(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sas_token_is_kept_in_the_url_and_never_printed() {
        let archive = BlobArchive::new(
            "http://127.0.0.1:10000/devstoreaccount1",
            "c1",
            BlobAuth::Sas("?sv=2026-04-06&sig=secret%2B".into()),
            BlobArchiveOptions::default(),
        )
        .unwrap();
        assert!(archive.container.url().as_str().contains("sig=secret%2B"));
        assert!(!format!("{archive:?}").contains("secret"));
        assert!(!format!("{:?}", BlobAuth::Sas("sig=secret".into())).contains("secret"));
    }

    #[test]
    fn a_token_credential_needs_https() {
        let error = BlobArchive::new(
            "http://example.test/",
            "c1",
            BlobAuth::ManagedIdentity { client_id: None },
            BlobArchiveOptions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("https"), "{error}");
        assert!(BlobArchive::new(
            "not a url",
            "c1",
            BlobAuth::Sas(String::new()),
            BlobArchiveOptions::default()
        )
        .is_err());
    }
}
