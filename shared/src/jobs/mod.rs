//! Housekeeping jobs: `DataRetentionCleanup`, `NotificationCleanup`, `DatabaseMaintenance`,
//! the payment reconciliations, and the ERP syncs (`ErpInventorySync`, `ErpProductSync`).
//!
//! Every job runs the same way ([`run_job`]):
//! - it takes a lease ([`lease`]) so a second, overlapping run yields instead of processing the
//!   same items;
//! - it works in bounded batches (`JOB_BATCH_SIZE`); each batch commits together with the job's
//!   checkpoint ([`Checkpoint`]) and a lease extension, so a run killed at any moment is resumed
//!   by the next one with nothing lost and nothing done twice;
//! - what it archives is written, read back and verified before anything is deleted, at keys
//!   fixed by the checkpoint, so a resumed batch rewrites the same archive object;
//! - it stops when its time budget (`JOB_MAX_RUNTIME_SECONDS`) is spent and says what is left;
//! - a dry run (`--dry-run`, `JOB_DRY_RUN`) walks the same batches and changes nothing;
//! - it ends with a [`JobReport`], kept with the run and in the audit trail (ids and counts).

mod archive_step;
mod checkpoint;
pub mod erasure;
mod erp_inventory;
mod erp_products;
mod erp_sync;
pub mod lease;
mod maintenance;
mod notification_cleanup;
mod outbox_upkeep;
mod payment_comparison;
mod payment_reconciliation;
pub mod policy;
pub mod progress;
pub mod report;
mod retention;
mod run;
mod shipment_tracking;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use checkpoint::Checkpoint;
pub use payment_comparison::{day_window, previous_day, Mismatch};
pub use progress::{NoProgress, Progress};
pub use report::{JobReport, Outcome};

use crate::archive::{ArchiveError, ArchiveStore};
use crate::config::{JobSettings, RetentionSettings};
use crate::erasure::ErasureContext;
use crate::payments::PaymentGateway;
use crate::store::{Store, StoreError};

/// A housekeeping job: its name (the name of the timer function that runs it), its steps, and
/// its body. The app's function registry declares which jobs run and when; `handler jobs run`
/// finds them there.
pub struct Job {
    name: &'static str,
    steps: &'static [&'static str],
    body: JobStep<StepEnd>,
    count_left: JobStep<()>,
    /// The checkpoint outlives a finished run (a feed's position), instead of being cleared.
    keeps_checkpoint: bool,
}

/// A future of a job's body, borrowing its run.
type StepFuture<'r, T> = Pin<Box<dyn Future<Output = Result<T, JobError>> + Send + 'r>>;
/// A job's body (or its count of what is left), driving one run.
type JobStep<T> = for<'r, 'a> fn(&'r mut run::Run<'a>) -> StepFuture<'r, T>;

impl Job {
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// The steps of the job, in the order they run (the checkpoint names one).
    pub fn steps(&self) -> &'static [&'static str] {
        self.steps
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares a job whose module has `STEPS`, `run(&mut Run)` and `count_left(&mut Run)`.
macro_rules! job {
    ($(#[$doc:meta])* $job:ident, $name:literal, $module:ident) => {
        $(#[$doc])*
        pub static $job: Job = Job {
            name: $name,
            steps: $module::STEPS,
            body: |run| Box::pin($module::run(run)),
            count_left: |run| Box::pin($module::count_left(run)),
            keeps_checkpoint: $module::KEEPS_CHECKPOINT,
        };
    };
}

job!(
    /// Deletes old notifications, erases long-inactive customers, archives then removes old
    /// audit entries.
    DATA_RETENTION_CLEANUP,
    "DataRetentionCleanup",
    retention
);
job!(
    /// Deletes read and expired notifications past their retention.
    NOTIFICATION_CLEANUP,
    "NotificationCleanup",
    notification_cleanup
);
job!(
    /// Finds and repairs inconsistencies, reports storage statistics.
    DATABASE_MAINTENANCE,
    "DatabaseMaintenance",
    maintenance
);
job!(
    /// Settles unknown and stale payments and refunds by asking the gateway again with the
    /// same idempotency keys.
    PAYMENT_RECONCILIATION,
    "PaymentReconciliation",
    payment_reconciliation
);
job!(
    /// Polls the carrier's trackers of undelivered shipments; a delivered parcel delivers its
    /// order.
    SHIPMENT_TRACKING,
    "ShipmentTracking",
    shipment_tracking
);
job!(
    /// Compares the gateway's transactions of the previous day with the store.
    PAYMENT_DAILY_RECONCILIATION,
    "PaymentDailyReconciliation",
    payment_comparison
);

job!(
    /// Applies the ERP's stock changes since its last checkpoint to the linked products.
    ERP_INVENTORY_SYNC,
    "ErpInventorySync",
    erp_inventory
);
job!(
    /// Applies the ERP's product master data to the products linked by SKU (creating those
    /// of unknown SKUs).
    ERP_PRODUCT_SYNC,
    "ErpProductSync",
    erp_products
);

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Timer,
    Cli,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub trigger: Trigger,
    /// Report what would change, change nothing (`--dry-run`, or `JOB_DRY_RUN`).
    pub dry_run: bool,
    /// The timer's `IsPastDue`.
    pub is_past_due: bool,
}

/// What a job works with.
#[derive(Clone)]
pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub archive: Arc<dyn ArchiveStore>,
    pub retention: RetentionSettings,
    pub settings: JobSettings,
    /// What the GDPR erasure of inactive customers needs (the pseudonym key, the local queue's
    /// scrubber in local mode).
    pub erasure: ErasureContext,
    pub progress: Arc<dyn Progress>,
    /// How long a lease lasts without an extension.
    pub lease_ttl: Duration,
    /// How long an erasure request may stay `accepted` before maintenance announces it again.
    pub erasure_requeue_after: Duration,
    /// The payment gateway reconciliation asks (`None`: payments are not configured).
    pub payments: Option<Arc<dyn PaymentGateway>>,
    /// How long a payment may stay pending or authorized before reconciliation settles it.
    pub payment_settle_after: Duration,
    /// The UTC day `PaymentDailyReconciliation` compares (`None`: the previous day).
    pub comparison_day: Option<chrono::NaiveDate>,
    /// The ERP the two ERP syncs ask (`None`: not configured), the tenants it feeds and the
    /// page size of its stock changes.
    pub erp: Option<crate::erp::ErpClient>,
    pub erp_tenants: Vec<crate::domain::tenant::TenantId>,
    pub erp_page_size: u32,
    /// The shipping carrier `ShipmentTracking` asks (`None`: not configured).
    pub carrier: Option<Arc<dyn crate::shipping::Carrier>>,
}

impl JobContext {
    pub fn new(
        store: Arc<dyn Store>,
        archive: Arc<dyn ArchiveStore>,
        retention: RetentionSettings,
        settings: JobSettings,
        erasure: ErasureContext,
    ) -> Self {
        Self {
            store,
            archive,
            retention,
            settings,
            erasure,
            progress: Arc::new(NoProgress),
            lease_ttl: lease::DEFAULT_LEASE_TTL,
            erasure_requeue_after: Duration::from_secs(30 * 60),
            payments: None,
            payment_settle_after: Duration::from_secs(5 * 60),
            comparison_day: None,
            erp: None,
            erp_tenants: Vec::new(),
            erp_page_size: 200,
            carrier: None,
        }
    }

    /// The ERP syncs ask `client` for the catalogues of `settings.tenants`.
    pub fn with_erp(
        mut self,
        client: Option<crate::erp::ErpClient>,
        settings: &crate::config::ErpSettings,
    ) -> Self {
        self.erp = client;
        self.erp_tenants = settings.tenants.clone();
        self.erp_page_size = settings.stock_page_size;
        self
    }

    /// `ShipmentTracking` asks `carrier`.
    pub fn with_carrier(mut self, carrier: Option<Arc<dyn crate::shipping::Carrier>>) -> Self {
        self.carrier = carrier;
        self
    }

    /// Reconciliation asks `gateway`; a payment unsettled for `settle_after` is its to settle.
    pub fn with_payments(
        mut self,
        gateway: Option<Arc<dyn PaymentGateway>>,
        settle_after: Duration,
    ) -> Self {
        self.payments = gateway;
        self.payment_settle_after = settle_after;
        self
    }

    pub fn with_erasure_requeue_after(mut self, after: Duration) -> Self {
        self.erasure_requeue_after = after;
        self
    }

    /// `PaymentDailyReconciliation` compares `day` instead of the previous day.
    pub fn with_comparison_day(mut self, day: Option<chrono::NaiveDate>) -> Self {
        self.comparison_day = day;
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }
}

/// What stops a job step. The run turns it into the report's outcome.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("{step}: the store failed: {source}")]
    Store {
        step: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("{step}: the archive failed: {source}")]
    Archive {
        step: &'static str,
        #[source]
        source: ArchiveError,
    },
    #[error("the lease was taken over by another run; stopped")]
    LeaseLost,
    /// An inactive customer's erasure failed after retries; the run stops before it, so the
    /// next run completes it.
    #[error("tenant {tenant}: erasing customer {customer_id} failed: {reason}; the next run resumes with this customer")]
    Erasure {
        tenant: String,
        customer_id: String,
        reason: String,
    },
    /// The payment gateway could not answer (the run is retried by the next timer).
    #[error("{step}: the payment gateway failed: {reason}")]
    Gateway { step: &'static str, reason: String },
    #[error("the job's checkpoint cannot be read: {0}; fix: remove it (job_checkpoints row) to start over")]
    Checkpoint(String),
}

impl JobError {
    /// A store error in `step` (a lost lease is its own kind).
    pub fn store(step: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |source| {
            if crate::store::jobs::is_lease_lost(&source) {
                Self::LeaseLost
            } else {
                Self::Store { step, source }
            }
        }
    }

    pub fn archive(step: &'static str) -> impl FnOnce(ArchiveError) -> Self {
        move |source| Self::Archive { step, source }
    }
}

/// Whether a step ran to its end or stopped because the time budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepEnd {
    Done,
    OutOfTime,
}

/// Runs `job` once and reports. Errors end up in the report (`outcome: failed`).
pub async fn run_job(job: &'static Job, context: &JobContext, options: RunOptions) -> JobReport {
    run::Run::execute(job, context, options).await
}
