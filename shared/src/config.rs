//! Settings: every value the app reads, from the environment (Azure app settings) or from
//! `local.settings.json` (`Values`), validated once at start-up.
//!
//! The environment wins over `local.settings.json`, as with the Functions host. Every setting
//! is listed in `local.settings.example.json` and described in the README. An invalid value
//! stops start-up with one line naming the setting and the fix ([`ConfigError`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::tenant::TenantId;
use crate::erp::{ErpAuth, ErpConfig, SoapVersion, UsernameToken};
use crate::outbound::Secret;

mod shipping;
pub use shipping::{ShippingSettings, DEFAULT_TRACKING_SCHEDULE};

/// A setting that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting {name}={value:?}: {problem}; fix: {fix}")]
    Invalid {
        name: &'static str,
        value: String,
        problem: String,
        fix: String,
    },
    #[error("cannot read {path}: {reason}; fix: correct the file or remove it to use defaults")]
    SettingsFile { path: String, reason: String },
}

/// Where raw setting values come from: the process environment over `local.settings.json`.
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    values: HashMap<String, String>,
}

impl SettingsSource {
    /// The environment, over the `Values` of `local.settings.json` in `app_dir` if it exists.
    pub fn from_environment(app_dir: &Path) -> Result<Self, ConfigError> {
        let mut source = Self::from_local_settings(&app_dir.join("local.settings.json"))?;
        source.values.extend(std::env::vars());
        Ok(source)
    }

    /// Only the given pairs (tests, and tools that build settings by hand).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn from_local_settings(path: &Path) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        struct LocalSettings {
            #[serde(rename = "Values", default)]
            values: HashMap<String, serde_json::Value>,
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default())
            }
            Err(error) => {
                return Err(ConfigError::SettingsFile {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })
            }
        };
        let parsed: LocalSettings =
            serde_json::from_str(&text).map_err(|error| ConfigError::SettingsFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        let values = parsed
            .values
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect();
        Ok(Self { values })
    }

    /// The same source with `name` set to `value`, over the environment and the settings file
    /// (command-line flags such as `handler local --port`).
    pub fn with_value(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    /// A setting's value; empty counts as unset (Azure and local.settings.json use "").
    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    /// Whether the handler runs under the Functions host (it sets this port).
    pub fn custom_handler_port(&self) -> Result<Option<u16>, ConfigError> {
        self.get("FUNCTIONS_CUSTOMHANDLER_PORT")
            .map(|value| {
                parse_number(
                    "FUNCTIONS_CUSTOMHANDLER_PORT",
                    value,
                    "a TCP port, 1-65535",
                    "let the Functions host set it",
                )
            })
            .transpose()
    }
}

/// Which store holds the app's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite database in `DATA_DIR` (the default, and local mode).
    Sqlite,
    /// Azure Cosmos DB (NoSQL API).
    Cosmos,
}

/// Where archives go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Folder,
    Blob,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines under the Functions host, readable lines otherwise.
    Auto,
    Json,
    Text,
}

/// Identity providers whose tokens the API accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    pub entra_issuer: Option<String>,
    pub entra_audience: Option<String>,
    pub external_issuer: Option<String>,
    pub external_audience: Option<String>,
    /// The token claim that names the tenant.
    pub tenant_claim: String,
    /// The claim of client tokens that names their customer record.
    pub customer_claim: String,
    /// Shortest time between two key fetches of one issuer (a token with an unknown `kid`
    /// triggers one).
    pub key_refetch_interval: Duration,
}

/// Retention periods, with per-tenant overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub notification_days: u32,
    pub read_notification_days: u32,
    pub inactive_customer_years: u32,
    pub audit_years: u32,
    pub tenant_overrides: BTreeMap<String, RetentionOverride>,
}

impl RetentionSettings {
    /// The longest any notification is kept, read or not, over every tenant's periods.
    pub fn longest_notification_days(&self) -> u32 {
        let overrides = self
            .tenant_overrides
            .values()
            .flat_map(|tenant| [tenant.notification_days, tenant.read_notification_days])
            .flatten();
        overrides.fold(
            self.notification_days.max(self.read_notification_days),
            u32::max,
        )
    }
}

/// A tenant's own retention periods; what is unset falls back to the global ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionOverride {
    pub notification_days: Option<u32>,
    pub read_notification_days: Option<u32>,
    pub inactive_customer_years: Option<u32>,
    pub audit_years: Option<u32>,
}

/// How housekeeping jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    pub max_runtime: Duration,
    pub batch_size: u32,
    pub dry_run: bool,
}

/// The transactional outbox and its relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// How long a record lives unrelayed before it expires (`OUTBOX_TTL_SECONDS`).
    pub ttl: Duration,
    /// Readiness is `degraded` when the oldest unrelayed record is older than this
    /// (`OUTBOX_LAG_DEGRADED_SECONDS`).
    pub lag_degraded_after: Duration,
    /// `DatabaseMaintenance` re-announces erasure requests still `accepted` this long after
    /// they were queued (`ERASURE_REQUEUE_AFTER_MINUTES`).
    pub erasure_requeue_after: Duration,
    /// The Service Bus namespace the relay publishes to
    /// (`ServiceBusConnection__fullyQualifiedNamespace`, the setting the triggers use).
    pub service_bus_namespace: Option<String>,
}

/// The payment gateway (PayPal). Without `PAYPAL_BASE_URL` no gateway is configured in Azure;
/// `handler local` starts its PayPal sandbox and points the app at it.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentSettings {
    /// `https://api-m.sandbox.paypal.com`, `https://api-m.paypal.com` (`PAYPAL_BASE_URL`).
    pub base_url: Option<String>,
    /// The REST app's client id and secret (`PAYPAL_CLIENT_ID`, `PAYPAL_CLIENT_SECRET`; Key
    /// Vault references in Azure).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The webhook ids whose signatures are accepted (`PAYPAL_WEBHOOK_IDS`, comma-separated:
    /// two during a rotation).
    pub webhook_ids: Vec<String>,
    /// How far a webhook's transmission time may be from now (`PAYPAL_WEBHOOK_TOLERANCE_SECONDS`).
    pub webhook_tolerance: Duration,
    /// How long a payment may stay pending, unknown or authorized (or a refund pending or
    /// unknown) before `PaymentReconciliation` settles it (`PAYMENT_SETTLE_AFTER_SECONDS`).
    pub settle_after: Duration,
    /// How long one call to PayPal may take, retries included (`PAYPAL_TIMEOUT_SECONDS`); a
    /// call sent and not answered by then leaves its payment `unknown` for reconciliation.
    pub timeout: Duration,
    /// How long PayPal's circuit breaker stays open before a probe (`PAYPAL_BREAKER_OPEN_SECONDS`).
    pub breaker_open_for: Duration,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("webhook_ids", &self.webhook_ids)
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("settle_after", &self.settle_after)
            .field("timeout", &self.timeout)
            .field("breaker_open_for", &self.breaker_open_for)
            .finish()
    }
}

/// The legacy ERP's SOAP service. Without `ERP_BASE_URL` no ERP is configured in Azure;
/// `handler local` starts its fake ERP and points the app at it.
#[derive(Clone, PartialEq, Eq)]
pub struct ErpSettings {
    /// The service's endpoint URL, the WSDL's `soap:address` (`ERP_BASE_URL`).
    pub base_url: Option<String>,
    /// `1.1` or `1.2` (`ERP_SOAP_VERSION`).
    pub soap_version: SoapVersion,
    /// HTTP Basic or a WS-Security UsernameToken (`ERP_AUTH` = `basic` | `wsse`).
    pub auth: ErpAuthKind,
    /// `ERP_USERNAME`, `ERP_PASSWORD` (a Key Vault reference in Azure).
    pub username: Option<String>,
    pub password: Option<String>,
    /// How long one call to the ERP may take (`ERP_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// The tenants whose catalogue the ERP feeds (`ERP_TENANTS`, comma-separated; none by
    /// default: `handler local` with its fake ERP uses `contoso`).
    pub tenants: Vec<TenantId>,
    /// How long the ERP's breaker stays open once it opened (`ERP_BREAKER_OPEN_SECONDS`).
    pub breaker_open_for: Duration,
    /// Stock levels asked for per `GetStockChanges` page (`ERP_STOCK_PAGE_SIZE`).
    pub stock_page_size: u32,
    /// NCRONTAB schedules of the two timers (`ERP_INVENTORY_SYNC_SCHEDULE`,
    /// `ERP_PRODUCT_SYNC_SCHEDULE`); their function.json names the settings (`%...%`).
    pub inventory_sync_schedule: String,
    pub product_sync_schedule: String,
}

impl Settings {
    /// The value of an app setting a function.json names as `%NAME%` (a timer's schedule), as
    /// the Functions host resolves it; `None` for a name the app does not read that way.
    pub fn binding_setting(&self, name: &str) -> Option<&str> {
        match name {
            "ERP_INVENTORY_SYNC_SCHEDULE" => Some(&self.erp.inventory_sync_schedule),
            "ERP_PRODUCT_SYNC_SCHEDULE" => Some(&self.erp.product_sync_schedule),
            "SHIPMENT_TRACKING_SCHEDULE" => Some(&self.shipping.tracking_schedule),
            _ => None,
        }
    }
}

/// `ErpInventorySync`'s schedule when `ERP_INVENTORY_SYNC_SCHEDULE` is unset: every 15 minutes.
pub const DEFAULT_INVENTORY_SYNC_SCHEDULE: &str = "0 */15 * * * *";
/// `ErpProductSync`'s schedule when `ERP_PRODUCT_SYNC_SCHEDULE` is unset: nightly, 00:45 UTC.
pub const DEFAULT_PRODUCT_SYNC_SCHEDULE: &str = "0 45 0 * * *";

/// How the app authenticates to the ERP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErpAuthKind {
    Basic,
    WsSecurity,
}

impl ErpSettings {
    /// The client's configuration, when an ERP is configured (with its credentials).
    pub fn client_config(&self) -> Option<ErpConfig> {
        let (Some(endpoint), Some(username), Some(password)) =
            (&self.base_url, &self.username, &self.password)
        else {
            return None;
        };
        let token = UsernameToken {
            username: username.clone(),
            password: Secret::new(password.clone()),
        };
        Some(ErpConfig {
            endpoint: endpoint.clone(),
            version: self.soap_version,
            auth: match self.auth {
                ErpAuthKind::Basic => ErpAuth::Basic(token),
                ErpAuthKind::WsSecurity => ErpAuth::WsSecurity(token),
            },
            timeout: self.timeout,
            breaker_open_for: Some(self.breaker_open_for),
        })
    }
}

impl std::fmt::Debug for ErpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpSettings")
            .field("base_url", &self.base_url)
            .field("soap_version", &self.soap_version)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tenants", &self.tenants)
            .field("breaker_open_for", &self.breaker_open_for)
            .field("stock_page_size", &self.stock_page_size)
            .field("inventory_sync_schedule", &self.inventory_sync_schedule)
            .field("product_sync_schedule", &self.product_sync_schedule)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The local runtime (`handler local`): what plays the Functions host on a laptop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    pub port: u16,
    pub timers_enabled: bool,
    /// Whether the local change feed feeds `OutboxRelay` (`LOCAL_RELAY`; `handler local
    /// --no-relay` turns it off: records wait in the outbox until a run with the relay).
    pub relay_enabled: bool,
    /// The port of the PayPal sandbox (`LOCAL_PAYPAL_PORT`; 0, the default, picks a free one: the log says which), started when
    /// `PAYPAL_BASE_URL` is not set.
    pub paypal_sandbox_port: u16,
    /// The port of the fake ERP (`LOCAL_ERP_PORT`; 0, the default, picks a free one), started
    /// when `ERP_BASE_URL` is not set.
    pub erp_sandbox_port: u16,
    pub max_delivery_count: u32,
    pub lock_duration: Duration,
    pub retry_delay: Duration,
}

/// `COSMOS_ENDPOINT` value selecting the SDK's in-memory emulator (feature `cosmos-emulator`).
pub const MEMORY_ENDPOINT: &str = "memory:";

/// Every setting the app reads, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreKind,
    pub data_dir: PathBuf,
    pub archive: ArchiveKind,
    pub archive_dir: PathBuf,
    /// `https://{account}.documents.azure.com`, or `memory:` for the SDK's in-memory emulator
    /// (builds with the `cosmos-emulator` feature only).
    pub cosmos_endpoint: Option<String>,
    pub cosmos_database: String,
    /// An account key, for emulators only; in Azure the managed identity authenticates.
    pub cosmos_key: Option<String>,
    /// The preferred region (`eastus`, `westeurope`, ...): the SDK routes to the nearest one.
    pub cosmos_region: String,
    /// Upper bound of one Cosmos DB call, retries included.
    pub cosmos_timeout: Duration,
    /// How often a throttled (429) call is retried, waiting the server's retry-after each time.
    pub cosmos_throttle_retries: u32,
    pub archive_blob_endpoint: Option<String>,
    pub archive_container: String,
    /// A SAS token for the Blob archive, for emulators (Azurite) only; in Azure the managed
    /// identity authenticates and this is not set.
    pub archive_blob_sas: Option<String>,
    /// Client id of a user-assigned managed identity; `None` means system-assigned.
    pub azure_client_id: Option<String>,
    pub auth: AuthSettings,
    pub gdpr_pseudonym_key: Option<String>,
    pub retention: RetentionSettings,
    pub jobs: JobSettings,
    pub http_body_limit_bytes: usize,
    pub log_format: LogFormat,
    pub outbox: OutboxSettings,
    pub payments: PaymentSettings,
    /// Breach detection's thresholds (`SECURITY_*`).
    pub security: crate::security::Thresholds,
    pub erp: ErpSettings,
    /// The shipping carrier (`CARRIER_*`, `SHIPPING_*`).
    pub shipping: ShippingSettings,
    pub local: LocalSettings,
}

impl Settings {
    /// Reads and validates every setting; the first invalid one is the error.
    pub fn load(source: &SettingsSource) -> Result<Self, ConfigError> {
        let reader = Reader { source };
        let settings = Self {
            store: reader.choice(
                "STORE",
                &[("sqlite", StoreKind::Sqlite), ("cosmos", StoreKind::Cosmos)],
                StoreKind::Sqlite,
            )?,
            data_dir: reader.path("DATA_DIR", "./.data"),
            archive: reader.choice(
                "ARCHIVE",
                &[("folder", ArchiveKind::Folder), ("blob", ArchiveKind::Blob)],
                ArchiveKind::Folder,
            )?,
            archive_dir: reader.path("ARCHIVE_DIR", "./.data/archive"),
            cosmos_endpoint: reader.cosmos_endpoint()?,
            cosmos_database: reader.text("COSMOS_DATABASE", "platform"),
            cosmos_key: reader.optional("COSMOS_KEY"),
            cosmos_region: reader.text("COSMOS_REGION", "eastus"),
            cosmos_timeout: Duration::from_millis(reader.number(
                "COSMOS_TIMEOUT_MS",
                10_000,
                100..=120_000,
            )?),
            cosmos_throttle_retries: reader.number("COSMOS_THROTTLE_RETRIES", 5, 0..=50)?,
            archive_blob_endpoint: reader.url("ARCHIVE_BLOB_ENDPOINT")?,
            archive_container: reader.text("ARCHIVE_CONTAINER", "audit-archive"),
            archive_blob_sas: reader.optional("ARCHIVE_BLOB_SAS"),
            azure_client_id: reader.optional("AZURE_CLIENT_ID"),
            auth: AuthSettings {
                entra_issuer: reader.url("AUTH_ENTRA_ISSUER")?,
                entra_audience: reader.optional("AUTH_ENTRA_AUDIENCE"),
                external_issuer: reader.url("AUTH_EXTERNAL_ISSUER")?,
                external_audience: reader.optional("AUTH_EXTERNAL_AUDIENCE"),
                tenant_claim: reader.text("AUTH_TENANT_CLAIM", "tenant_id"),
                customer_claim: reader.text("AUTH_CUSTOMER_CLAIM", "extension_customerId"),
                key_refetch_interval: Duration::from_secs(reader.number(
                    "AUTH_KEY_REFETCH_SECONDS",
                    300,
                    1..=86_400,
                )?),
            },
            gdpr_pseudonym_key: reader.optional("GDPR_PSEUDONYM_KEY"),
            retention: RetentionSettings {
                notification_days: reader.number("RETENTION_NOTIFICATION_DAYS", 90, 1..=36_500)?,
                read_notification_days: reader.number(
                    "RETENTION_READ_NOTIFICATION_DAYS",
                    30,
                    1..=36_500,
                )?,
                inactive_customer_years: reader.number(
                    "RETENTION_INACTIVE_CUSTOMER_YEARS",
                    7,
                    1..=100,
                )?,
                audit_years: reader.number("RETENTION_AUDIT_YEARS", 10, 1..=100)?,
                tenant_overrides: reader.json(
                    "RETENTION_TENANT_OVERRIDES",
                    r#"{"tenant-a": {"notificationDays": 30}}"#,
                )?,
            },
            jobs: JobSettings {
                max_runtime: Duration::from_secs(reader.number(
                    "JOB_MAX_RUNTIME_SECONDS",
                    240,
                    1..=86_400,
                )?),
                batch_size: reader.number("JOB_BATCH_SIZE", 5000, 1..=100_000)?,
                dry_run: reader.flag("JOB_DRY_RUN", false)?,
            },
            http_body_limit_bytes: reader.number(
                "HTTP_BODY_LIMIT_BYTES",
                262_144,
                1_024..=104_857_600,
            )?,
            log_format: reader.choice(
                "LOG_FORMAT",
                &[
                    ("auto", LogFormat::Auto),
                    ("json", LogFormat::Json),
                    ("text", LogFormat::Text),
                ],
                LogFormat::Auto,
            )?,
            outbox: OutboxSettings {
                ttl: Duration::from_secs(reader.number(
                    "OUTBOX_TTL_SECONDS",
                    604_800,
                    3_600..=2_592_000,
                )?),
                lag_degraded_after: Duration::from_secs(reader.number(
                    "OUTBOX_LAG_DEGRADED_SECONDS",
                    60,
                    1..=86_400,
                )?),
                erasure_requeue_after: Duration::from_secs(
                    60 * reader.number("ERASURE_REQUEUE_AFTER_MINUTES", 30, 1..=10_080)?,
                ),
                service_bus_namespace: reader
                    .optional("ServiceBusConnection__fullyQualifiedNamespace"),
            },
            payments: PaymentSettings {
                base_url: reader.optional("PAYPAL_BASE_URL"),
                client_id: reader.optional("PAYPAL_CLIENT_ID"),
                client_secret: reader.optional("PAYPAL_CLIENT_SECRET"),
                webhook_ids: comma_list(reader.optional("PAYPAL_WEBHOOK_IDS")),
                webhook_tolerance: Duration::from_secs(reader.number(
                    "PAYPAL_WEBHOOK_TOLERANCE_SECONDS",
                    300,
                    10..=3_600,
                )?),
                settle_after: Duration::from_secs(reader.number(
                    "PAYMENT_SETTLE_AFTER_SECONDS",
                    300,
                    0..=86_400,
                )?),
                timeout: Duration::from_secs(reader.number(
                    "PAYPAL_TIMEOUT_SECONDS",
                    10,
                    1..=120,
                )?),
                breaker_open_for: Duration::from_secs(reader.number(
                    "PAYPAL_BREAKER_OPEN_SECONDS",
                    30,
                    1..=600,
                )?),
            },
            security: reader.security()?,
            erp: ErpSettings {
                base_url: reader.url("ERP_BASE_URL")?,
                soap_version: reader.choice(
                    "ERP_SOAP_VERSION",
                    &[("1.1", SoapVersion::V11), ("1.2", SoapVersion::V12)],
                    SoapVersion::V11,
                )?,
                auth: reader.choice(
                    "ERP_AUTH",
                    &[
                        ("basic", ErpAuthKind::Basic),
                        ("wsse", ErpAuthKind::WsSecurity),
                    ],
                    ErpAuthKind::Basic,
                )?,
                username: reader.optional("ERP_USERNAME"),
                password: reader.optional("ERP_PASSWORD"),
                timeout: Duration::from_secs(reader.number("ERP_TIMEOUT_SECONDS", 30, 1..=300)?),
                tenants: reader.tenants("ERP_TENANTS")?,
                breaker_open_for: Duration::from_secs(reader.number(
                    "ERP_BREAKER_OPEN_SECONDS",
                    30,
                    1..=600,
                )?),
                stock_page_size: reader.number("ERP_STOCK_PAGE_SIZE", 200, 1..=1000)?,
                inventory_sync_schedule: reader.erp_schedules().0,
                product_sync_schedule: reader.erp_schedules().1,
            },
            shipping: reader.shipping()?,
            local: LocalSettings {
                port: reader.number("LOCAL_PORT", 7071, 1..=65_535)?,
                timers_enabled: reader.flag("LOCAL_TIMERS", true)?,
                relay_enabled: reader.flag("LOCAL_RELAY", true)?,
                paypal_sandbox_port: reader.number("LOCAL_PAYPAL_PORT", 0, 0..=65_535)?,
                erp_sandbox_port: reader.number("LOCAL_ERP_PORT", 0, 0..=65_535)?,
                max_delivery_count: reader.number(
                    "LOCAL_QUEUE_MAX_DELIVERY_COUNT",
                    10,
                    1..=2_000,
                )?,
                lock_duration: Duration::from_secs(reader.number(
                    "LOCAL_QUEUE_LOCK_SECONDS",
                    60,
                    1..=300,
                )?),
                retry_delay: Duration::from_millis(reader.number(
                    "LOCAL_QUEUE_RETRY_DELAY_MS",
                    1000,
                    0..=600_000,
                )?),
            },
        };
        reader.log_filter("RUST_LOG")?;
        settings.check_combination()?;
        Ok(settings)
    }

    /// Backends that are chosen but cannot work with what else is set.
    fn check_combination(&self) -> Result<(), ConfigError> {
        let pairs = [
            (
                "AUTH_ENTRA_ISSUER",
                &self.auth.entra_issuer,
                "AUTH_ENTRA_AUDIENCE",
                &self.auth.entra_audience,
            ),
            (
                "AUTH_EXTERNAL_ISSUER",
                &self.auth.external_issuer,
                "AUTH_EXTERNAL_AUDIENCE",
                &self.auth.external_audience,
            ),
        ];
        for (issuer_name, issuer, audience_name, audience) in pairs {
            if let (Some(issuer), None) = (issuer, audience) {
                return Err(ConfigError::Invalid {
                    name: audience_name,
                    value: String::new(),
                    problem: format!("{issuer_name} is set to {issuer} but its audience is not"),
                    fix: format!("set {audience_name} to the API's application id URI (api://...)"),
                });
            }
        }
        if self.store == StoreKind::Cosmos {
            self.check_cosmos_store()?;
        }
        if self.archive == ArchiveKind::Blob {
            self.check_blob_archive()?;
        }
        self.check_payments()?;
        self.check_erp()?;
        self.shipping.check()
    }

    /// A PayPal endpoint needs its credentials; a secret still in Key Vault reference form was
    /// not resolved by the platform.
    fn check_payments(&self) -> Result<(), ConfigError> {
        let Some(base_url) = &self.payments.base_url else {
            return Ok(());
        };
        check_remote(
            ("PAYPAL_BASE_URL", base_url),
            &[
                ("PAYPAL_CLIENT_ID", &self.payments.client_id),
                ("PAYPAL_CLIENT_SECRET", &self.payments.client_secret),
            ],
            "PayPal",
            "https://api-m.sandbox.paypal.com or https://api-m.paypal.com",
        )
    }

    /// An ERP endpoint needs its user name and password, and TLS (the password travels in
    /// every request).
    fn check_erp(&self) -> Result<(), ConfigError> {
        let Some(base_url) = &self.erp.base_url else {
            return Ok(());
        };
        check_remote(
            ("ERP_BASE_URL", base_url),
            &[
                ("ERP_USERNAME", &self.erp.username),
                ("ERP_PASSWORD", &self.erp.password),
            ],
            "The ERP",
            "https://... (the ERP service's endpoint, the WSDL's soap:address)",
        )
    }

    /// `STORE=cosmos` needs an endpoint; a key only goes to emulators (`memory:` or plain http),
    /// as in Azure the managed identity authenticates.
    fn check_cosmos_store(&self) -> Result<(), ConfigError> {
        let Some(endpoint) = &self.cosmos_endpoint else {
            return Err(ConfigError::Invalid {
                name: "COSMOS_ENDPOINT",
                value: String::new(),
                problem: "STORE=cosmos but no Cosmos DB endpoint is set".into(),
                fix: "set COSMOS_ENDPOINT to https://{account}.documents.azure.com (or memory: for the in-memory emulator), or set STORE=sqlite".into(),
            });
        };
        if endpoint == MEMORY_ENDPOINT && !cfg!(feature = "cosmos-emulator") {
            return Err(ConfigError::Invalid {
                name: "COSMOS_ENDPOINT",
                value: endpoint.clone(),
                problem: "the in-memory Cosmos DB emulator is not in this build".into(),
                fix: "build with `--features cosmos-emulator`, or point COSMOS_ENDPOINT at a real account".into(),
            });
        }
        if endpoint != MEMORY_ENDPOINT
            && self.cosmos_key.is_none()
            && !endpoint.starts_with("https://")
        {
            return Err(ConfigError::Invalid {
                name: "COSMOS_ENDPOINT",
                value: endpoint.clone(),
                problem: "the managed identity needs an https endpoint".into(),
                fix: "use https://{account}.documents.azure.com, or set COSMOS_KEY for an emulator"
                    .into(),
            });
        }
        Ok(())
    }

    /// `ARCHIVE=blob` needs an endpoint; without a SAS (emulators) it must be https, as the
    /// managed identity's token is only sent over TLS.
    fn check_blob_archive(&self) -> Result<(), ConfigError> {
        let Some(endpoint) = &self.archive_blob_endpoint else {
            return Err(ConfigError::Invalid {
                name: "ARCHIVE_BLOB_ENDPOINT",
                value: String::new(),
                problem: "ARCHIVE=blob but no Blob endpoint is set".into(),
                fix: "set ARCHIVE_BLOB_ENDPOINT to https://{account}.blob.core.windows.net (and ARCHIVE_CONTAINER), or set ARCHIVE=folder".into(),
            });
        };
        if self.archive_blob_sas.is_none() && !endpoint.starts_with("https://") {
            return Err(ConfigError::Invalid {
                name: "ARCHIVE_BLOB_ENDPOINT",
                value: endpoint.clone(),
                problem: "the managed identity needs an https endpoint".into(),
                fix: "use the account's https:// Blob endpoint (ARCHIVE_BLOB_SAS with http is for emulators only)".into(),
            });
        }
        Ok(())
    }

    /// The SQLite database file inside `DATA_DIR`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("app.db")
    }

    /// What is wrong with `DATA_DIR`, if anything: a file where the folder should be, or a
    /// folder (or the nearest existing parent of a missing one) that cannot be written. Meant
    /// for explaining a failure to open the database or a key file in it, which otherwise
    /// reads "unable to open database file" or "File exists"; it writes (and removes) one
    /// probe file, so call it after such a failure, not before every start.
    pub fn check_data_dir(&self) -> Result<(), ConfigError> {
        check_data_dir(&self.data_dir)
    }
}

fn check_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let invalid = |problem: String, fix: &str| ConfigError::Invalid {
        name: "DATA_DIR",
        value: dir.display().to_string(),
        problem,
        fix: fix.to_owned(),
    };
    let Some(existing) = dir
        .ancestors()
        .find(|path| path.as_os_str().is_empty() || std::fs::symlink_metadata(path).is_ok())
    else {
        return Ok(());
    };
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    if !existing.is_dir() {
        let problem = if existing == dir {
            "it is a file, not a folder".to_owned()
        } else {
            format!("{} is a file, not a folder", existing.display())
        };
        return Err(invalid(
            problem,
            "set DATA_DIR to a folder (it is created if missing), or move the file away",
        ));
    }
    let probe = existing.join(format!(".handler-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) => Err(invalid(
            format!("{} is not writable ({error})", existing.display()),
            "set DATA_DIR to a folder this user can write to, or give the user write permission on it",
        )),
    }
}

/// The items of a comma-separated setting, trimmed, empty ones left out.
/// A remote service's endpoint (`base`) needs its credentials (`required`), resolved (not a
/// Key Vault reference the platform left as is), and https (plain http only on loopback).
fn check_remote(
    base: (&'static str, &str),
    required: &[(&'static str, &Option<String>)],
    service: &str,
    example: &str,
) -> Result<(), ConfigError> {
    let (base_name, base_url) = base;
    for &(name, value) in required {
        let unresolved = value
            .as_deref()
            .is_some_and(|value| value.starts_with("@Microsoft.KeyVault("));
        if value.is_none() || unresolved {
            return Err(ConfigError::Invalid {
                name,
                value: String::new(),
                problem: format!("{base_name} is set to {base_url} but {name} is missing or an unresolved Key Vault reference"),
                fix: format!("set {name} (in Azure: the Key Vault reference, with the app identity allowed to read the secret), or remove {base_name}"),
            });
        }
    }
    if !(base_url.starts_with("https://") || base_url.starts_with("http://127.0.0.1")) {
        return Err(ConfigError::Invalid {
            name: base_name,
            value: base_url.to_owned(),
            problem: format!(
                "{service} is reached over https (plain http only on loopback, for a sandbox)"
            ),
            fix: format!("set {base_name}={example}"),
        });
    }
    Ok(())
}

fn comma_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses raw values into typed ones, naming the setting in every error.
struct Reader<'a> {
    source: &'a SettingsSource,
}

impl Reader<'_> {
    /// The value, or `None` when unset or empty (see [`SettingsSource::get`]).
    fn optional(&self, name: &str) -> Option<String> {
        self.source.get(name).map(str::to_owned)
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    fn path(&self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.text(name, default))
    }

    fn choice<T: Copy>(
        &self,
        name: &'static str,
        options: &[(&str, T)],
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(label, _)| label.eq_ignore_ascii_case(value))
            .map(|(_, choice)| *choice)
            .ok_or_else(|| {
                let labels: Vec<&str> = options.iter().map(|(label, _)| *label).collect();
                ConfigError::Invalid {
                    name,
                    value: value.to_owned(),
                    problem: format!("expected one of {}", labels.join(", ")),
                    fix: format!("set {name}={} or remove it for the default", labels[0]),
                }
            })
    }

    fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.source.get(name) else {
            return Ok(default);
        };
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        let parsed: T = parse_number(name, value, &expected, &format!("set {name}={default}"))?;
        if range.contains(&parsed) {
            Ok(parsed)
        } else {
            Err(ConfigError::Invalid {
                name,
                value: value.to_owned(),
                problem: format!("expected {expected}"),
                fix: format!("set {name}={default}"),
            })
        }
    }

    /// Breach detection's thresholds (`SECURITY_*`).
    fn security(&self) -> Result<crate::security::Thresholds, ConfigError> {
        const COUNTS: std::ops::RangeInclusive<u32> = 1..=1_000_000;
        Ok(crate::security::Thresholds {
            window_seconds: self.number("SECURITY_WINDOW_SECONDS", 300, 10..=86_400)?,
            reads_admin: self.number("SECURITY_READS_ADMIN", 100, COUNTS)?,
            reads_customer_service: self.number("SECURITY_READS_CUSTOMER_SERVICE", 100, COUNTS)?,
            reads_order_manager: self.number("SECURITY_READS_ORDER_MANAGER", 50, COUNTS)?,
            failures: self.number("SECURITY_FAILURES", 20, COUNTS)?,
            exports: self.number("SECURITY_EXPORTS", 5, COUNTS)?,
        })
    }

    /// The schedules of `ErpInventorySync` and `ErpProductSync`.
    fn erp_schedules(&self) -> (String, String) {
        let inventory = self.text(
            "ERP_INVENTORY_SYNC_SCHEDULE",
            DEFAULT_INVENTORY_SYNC_SCHEDULE,
        );
        let product = self.text("ERP_PRODUCT_SYNC_SCHEDULE", DEFAULT_PRODUCT_SYNC_SCHEDULE);
        (inventory, product)
    }

    /// A comma-separated list of tenant ids (empty when unset).
    fn tenants(&self, name: &'static str) -> Result<Vec<TenantId>, ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(Vec::new());
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| {
                TenantId::new(id).map_err(|_| ConfigError::Invalid {
                    name,
                    value: value.to_owned(),
                    problem: format!("{id:?} is not a tenant id"),
                    fix: format!("set {name}=tenant-a,tenant-b (ids of letters, digits, '-', '_')"),
                })
            })
            .collect()
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                value: value.to_owned(),
                problem: "expected true or false".into(),
                fix: format!("set {name}={default}"),
            }),
        }
    }

    /// A `tracing` filter (`RUST_LOG`): checked here because the subscriber would otherwise
    /// drop a filter it cannot parse and log at `info` without a word.
    fn log_filter(&self, name: &'static str) -> Result<(), ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(());
        };
        tracing_subscriber::EnvFilter::builder()
            .parse(value)
            .map(drop)
            .map_err(|error| ConfigError::Invalid {
                name,
                value: value.to_owned(),
                problem: format!("not a log filter ({error})"),
                fix: format!(
                    "set {name} to a level (error, warn, info, debug, trace) or to level,target=level such as info,functions=debug; or unset it for info"
                ),
            })
    }

    /// `COSMOS_ENDPOINT`: a URL, or [`MEMORY_ENDPOINT`].
    fn cosmos_endpoint(&self) -> Result<Option<String>, ConfigError> {
        match self.source.get("COSMOS_ENDPOINT") {
            Some(MEMORY_ENDPOINT) => Ok(Some(MEMORY_ENDPOINT.to_owned())),
            _ => self.url("COSMOS_ENDPOINT"),
        }
    }

    fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(None);
        };
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(Some(value.trim_end_matches('/').to_owned()))
        } else {
            Err(ConfigError::Invalid {
                name,
                value: value.to_owned(),
                problem: "expected an absolute http(s) URL".into(),
                fix: format!("set {name}=https://... or leave it empty"),
            })
        }
    }

    fn json<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &'static str,
        example: &str,
    ) -> Result<T, ConfigError> {
        let Some(value) = self.source.get(name) else {
            return Ok(T::default());
        };
        serde_json::from_str(value).map_err(|error| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            problem: format!("not valid JSON for this setting ({error})"),
            fix: format!("use the form {example}, or {{}} for none"),
        })
    }
}

fn parse_number<T: std::str::FromStr>(
    name: &'static str,
    value: &str,
    expected: &str,
    fix: &str,
) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        name,
        value: value.to_owned(),
        problem: format!("expected {expected}"),
        fix: fix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&SettingsSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_need_no_settings_at_all() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.store, StoreKind::Sqlite);
        assert_eq!(settings.sqlite_path(), PathBuf::from("./.data/app.db"));
        assert_eq!(settings.local.port, 7071);
        assert_eq!(settings.local.max_delivery_count, 10);
        assert_eq!(settings.retention.notification_days, 90);
    }

    #[test]
    fn an_invalid_value_names_the_setting_and_the_fix_on_one_line() {
        let message = load(&[("LOCAL_PORT", "seventy")]).unwrap_err().to_string();
        assert!(
            message.starts_with("invalid setting LOCAL_PORT=\"seventy\""),
            "{message}"
        );
        assert!(message.contains("fix: set LOCAL_PORT=7071"), "{message}");
        assert!(!message.contains('\n'));
        let message = load(&[("STORE", "postgres")]).unwrap_err().to_string();
        assert!(
            message.contains("expected one of sqlite, cosmos"),
            "{message}"
        );
        let message = load(&[("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "0")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("from 1 to 2000"), "{message}");
    }

    #[test]
    fn flags_say_true_or_false_as_the_documentation_does() {
        let message = load(&[("LOCAL_TIMERS", "maybe")]).unwrap_err().to_string();
        assert!(message.contains("expected true or false;"), "{message}");
        assert!(message.contains("fix: set LOCAL_TIMERS=true"), "{message}");
        assert!(
            !load(&[("LOCAL_TIMERS", "false")])
                .unwrap()
                .local
                .timers_enabled
        );
    }

    #[test]
    fn a_log_filter_that_cannot_be_parsed_is_refused_not_ignored() {
        assert!(load(&[("RUST_LOG", "info,functions::local=debug")]).is_ok());
        assert!(load(&[("RUST_LOG", "warn")]).is_ok());
        let message = load(&[("RUST_LOG", "info,functions=loud")])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("invalid setting RUST_LOG=\"info,functions=loud\"")
                && message.contains("fix: set RUST_LOG to a level"),
            "{message}"
        );
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "").unwrap();
        for data_dir in [file.clone(), file.join("below")] {
            let settings = load(&[("DATA_DIR", data_dir.to_str().unwrap())]).unwrap();
            let message = settings.check_data_dir().unwrap_err().to_string();
            assert!(
                message.starts_with("invalid setting DATA_DIR=")
                    && message.contains("is a file, not a folder")
                    && message.contains("fix: set DATA_DIR to a folder"),
                "{message}"
            );
        }
        let missing = dir.path().join("new/data");
        let settings = load(&[("DATA_DIR", missing.to_str().unwrap())]).unwrap();
        assert!(settings.check_data_dir().is_ok());
        assert!(!missing.exists(), "checking creates nothing");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the probe is removed"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let settings = load(&[("COSMOS_ENDPOINT", ""), ("LOCAL_PORT", " ")]).unwrap();
        assert_eq!(settings.cosmos_endpoint, None);
        assert_eq!(settings.local.port, 7071);
    }

    #[test]
    fn the_longest_notification_retention_counts_every_tenant() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.retention.longest_notification_days(), 90);
        let settings = load(&[(
            "RETENTION_TENANT_OVERRIDES",
            r#"{"t1":{"readNotificationDays":400},"t2":{"notificationDays":30}}"#,
        )])
        .unwrap();
        assert_eq!(settings.retention.longest_notification_days(), 400);
    }

    #[test]
    fn tenant_overrides_are_validated() {
        let settings = load(&[(
            "RETENTION_TENANT_OVERRIDES",
            r#"{"t1":{"notificationDays":30}}"#,
        )])
        .unwrap();
        assert_eq!(
            settings.retention.tenant_overrides["t1"].notification_days,
            Some(30)
        );
        let message = load(&[("RETENTION_TENANT_OVERRIDES", r#"{"t1":{"days":30}}"#)])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("RETENTION_TENANT_OVERRIDES") && message.contains("unknown field"),
            "{message}"
        );
    }

    #[test]
    fn the_cosmos_store_needs_an_endpoint_and_https_without_a_key() {
        let message = load(&[("STORE", "cosmos")]).unwrap_err().to_string();
        assert!(
            message.starts_with("invalid setting COSMOS_ENDPOINT")
                && message.contains("STORE=sqlite"),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
        let message = load(&[
            ("STORE", "cosmos"),
            ("COSMOS_ENDPOINT", "http://127.0.0.1:8081"),
        ])
        .unwrap_err()
        .to_string();
        assert!(message.contains("https"), "{message}");
        let settings = load(&[
            ("STORE", "cosmos"),
            ("COSMOS_ENDPOINT", "https://acct.documents.azure.com:443/"),
        ])
        .unwrap();
        assert_eq!(
            settings.cosmos_endpoint.as_deref(),
            Some("https://acct.documents.azure.com:443")
        );
        assert_eq!(
            (
                settings.cosmos_database.as_str(),
                settings.cosmos_throttle_retries
            ),
            ("platform", 5)
        );
        let settings = load(&[("STORE", "cosmos"), ("COSMOS_ENDPOINT", "memory:")]).unwrap();
        assert_eq!(settings.cosmos_endpoint.as_deref(), Some(MEMORY_ENDPOINT));
        let message = load(&[("COSMOS_ENDPOINT", "cosmos.example")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("absolute http(s) URL"), "{message}");
    }

    #[test]
    fn the_blob_archive_needs_an_endpoint_and_https_without_a_sas() {
        let message = load(&[("ARCHIVE", "blob")]).unwrap_err().to_string();
        assert!(
            message.starts_with("invalid setting ARCHIVE_BLOB_ENDPOINT")
                && message.contains("ARCHIVE=folder"),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
        let message = load(&[
            ("ARCHIVE", "blob"),
            (
                "ARCHIVE_BLOB_ENDPOINT",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(message.contains("https"), "{message}");
        let settings = load(&[
            ("ARCHIVE", "blob"),
            (
                "ARCHIVE_BLOB_ENDPOINT",
                "https://acct.blob.core.windows.net/",
            ),
        ])
        .unwrap();
        assert_eq!(settings.archive, ArchiveKind::Blob);
        assert_eq!(
            settings.archive_blob_endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert_eq!(settings.archive_container, "audit-archive");
        let settings = load(&[
            ("ARCHIVE", "blob"),
            (
                "ARCHIVE_BLOB_ENDPOINT",
                "http://127.0.0.1:1/devstoreaccount1",
            ),
            ("ARCHIVE_BLOB_SAS", "sv=x&sig=y"),
        ])
        .unwrap();
        assert_eq!(settings.archive_blob_sas.as_deref(), Some("sv=x&sig=y"));
    }

    #[test]
    fn the_erp_needs_credentials_and_https_and_gives_the_client_its_settings() {
        let settings = load(&[]).expect("defaults");
        assert_eq!(settings.erp.client_config().map(|c| c.endpoint), None);
        let endpoint = ("ERP_BASE_URL", "https://erp.example.com/sap/inventory/v1");
        let error = load(&[endpoint, ("ERP_USERNAME", "svc")]).expect_err("no password");
        assert!(error.to_string().contains("ERP_PASSWORD"), "{error}");
        let unresolved = (
            "ERP_PASSWORD",
            "@Microsoft.KeyVault(SecretUri=https://kv/secrets/erp)",
        );
        let error = load(&[endpoint, ("ERP_USERNAME", "svc"), unresolved]).expect_err("unresolved");
        assert!(
            error.to_string().contains("unresolved Key Vault reference"),
            "{error}"
        );
        let plain = ("ERP_BASE_URL", "http://erp.example.com/inventory");
        let error =
            load(&[plain, ("ERP_USERNAME", "svc"), ("ERP_PASSWORD", "pw")]).expect_err("http");
        assert!(error.to_string().contains("https"), "{error}");
        let error = load(&[("ERP_AUTH", "ntlm")]).expect_err("unknown auth");
        assert!(error.to_string().contains("basic, wsse"), "{error}");
        let settings = load(&[
            endpoint,
            ("ERP_USERNAME", "svc"),
            ("ERP_PASSWORD", "pw"),
            ("ERP_SOAP_VERSION", "1.2"),
            ("ERP_AUTH", "wsse"),
            ("ERP_TIMEOUT_SECONDS", "7"),
        ])
        .expect("valid");
        assert!(!format!("{:?}", settings.erp).contains("pw"));
        let config = settings.erp.client_config().expect("configured");
        assert_eq!(config.version, SoapVersion::V12);
        assert_eq!(config.timeout, Duration::from_secs(7));
        assert!(matches!(config.auth, ErpAuth::WsSecurity(ref token) if token.username == "svc"));
    }

    #[test]
    fn local_settings_file_is_read_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("local.settings.json"),
            r#"{"IsEncrypted": false, "Values": {"LOCAL_PORT": "7999", "JOB_BATCH_SIZE": 50}}"#,
        )
        .unwrap();
        let mut source =
            SettingsSource::from_local_settings(&dir.path().join("local.settings.json")).unwrap();
        assert_eq!(Settings::load(&source).unwrap().local.port, 7999);
        assert_eq!(Settings::load(&source).unwrap().jobs.batch_size, 50);
        source.values.insert("LOCAL_PORT".into(), "7100".into());
        assert_eq!(Settings::load(&source).unwrap().local.port, 7100);
    }

    #[test]
    fn a_broken_settings_file_is_an_error_not_a_silent_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("local.settings.json"), "{ not json").unwrap();
        let error = SettingsSource::from_environment(dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("local.settings.json"), "{error}");
    }
}
