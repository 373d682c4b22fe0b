//! Running the housekeeping jobs: from their timer functions (`DataRetentionCleanup`,
//! `NotificationCleanup`, `DatabaseMaintenance`) and from the command line
//! (`handler jobs run <Name> [--dry-run]`, with a progress bar when stderr is a terminal).
//!
//! Both build the same [`JobContext`] ([`job_context`]) and print or return the same
//! [`JobReport`]: the timer reply's `ReturnValue` is the report, the command prints it as JSON.

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Subcommand;
use shared::archive::ArchiveStore;
use shared::config::{Settings, SettingsSource};
use shared::erasure::ErasureContext;
use shared::jobs::{
    run_job, JobContext, JobName, JobReport, Outcome, Progress, RunOptions, Trigger,
};
use shared::protocol::{InvocationRequest, InvocationResponse, TimerInfo};
use shared::store::Store;

use crate::app::{open_cosmos, AppState, StartError};
use crate::invoke::FunctionError;
use crate::registry::TIMER_BINDING;

/// `handler jobs ...`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run a job now and print its report (JSON): DataRetentionCleanup, NotificationCleanup, DatabaseMaintenance.
    Run {
        /// The job (its function name).
        name: String,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// What `handler jobs` reports as one line.
#[derive(Debug, thiserror::Error)]
pub enum JobsCliError {
    #[error(
        "no job named {0:?}; jobs: DataRetentionCleanup, NotificationCleanup, DatabaseMaintenance"
    )]
    UnknownJob(String),
    #[error(transparent)]
    Config(#[from] shared::config::ConfigError),
    /// Opening the database, Cosmos DB or the archive failed (the same lines as at start-up).
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the job run {outcome}: {reason} (report printed above)")]
    RunFailed {
        outcome: &'static str,
        reason: String,
    },
}

/// The jobs' context: the store, the configured archive (`ARCHIVE`: the folder at `ARCHIVE_DIR`
/// or the Blob container, see [`shared::archive::open`]), the settings, and what the GDPR
/// erasure of long-inactive customers needs (`erasure`).
pub fn job_context(
    store: Arc<dyn Store>,
    archive: Arc<dyn ArchiveStore>,
    settings: Arc<Settings>,
    erasure: ErasureContext,
) -> JobContext {
    JobContext::new(
        store,
        archive,
        settings.retention.clone(),
        settings.jobs.clone(),
        erasure,
    )
}

/// A timer function's body: run `job`, reply with the report as `ReturnValue` (plus the
/// `timer` input it ran for); a failed run fails the invocation, so the host records a failure.
pub async fn run_timer(
    state: AppState,
    request: InvocationRequest,
    job: JobName,
) -> Result<InvocationResponse, FunctionError> {
    let timer = TimerInfo::from_request(&request, TIMER_BINDING)?;
    let context = job_context(
        state.store.clone(),
        state.archive.clone(),
        state.settings.clone(),
        state.erasure.clone(),
    );
    let options = RunOptions {
        trigger: Trigger::Timer,
        dry_run: state.settings.jobs.dry_run,
        is_past_due: timer.is_past_due,
    };
    let report = run_job(job, &context, options).await;
    if report.outcome == Outcome::Failed {
        return Err(FunctionError::Failed(format!(
            "{}: {}",
            report.summary(),
            report.error.as_deref().unwrap_or("unknown error")
        )));
    }
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "timer".to_owned(),
            serde_json::to_value(&timer).unwrap_or_default(),
        );
    }
    Ok(InvocationResponse::empty()
        .log(report.summary())
        .with_return_value(value))
}

/// `handler jobs ...`: runs the command on the configured data (`DATA_DIR`) and archive (`ARCHIVE`).
pub async fn run(source: SettingsSource, command: JobsCommand) -> Result<(), JobsCliError> {
    let JobsCommand::Run { name, dry_run } = command;
    let job = JobName::parse(&name).ok_or(JobsCliError::UnknownJob(name))?;
    let settings = Settings::load(&source)?;
    shared::telemetry::init(settings.log_format, false);
    let db = shared::store::sqlite::Db::open(&settings.sqlite_path()).map_err(|error| {
        // SQLite's "unable to open database file" names no setting; DATA_DIR is the usual cause.
        match settings.check_data_dir() {
            Err(config) => JobsCliError::Config(config),
            Ok(()) => JobsCliError::Start(error.into()),
        }
    })?;
    // The local runtime's queue in DATA_DIR is scrubbed as `handler local` does.
    let erasure = ErasureContext::new(&settings).with_queued_messages(Arc::new(
        crate::local::storage::LocalStorage::new(db.clone()),
    ));
    let store: Arc<dyn Store> = match open_cosmos(&settings).await? {
        Some((cosmos, _)) => cosmos,
        None => Arc::new(db),
    };
    let archive = shared::archive::open(&settings)
        .map_err(StartError::Archive)?
        .store;
    let options = RunOptions {
        trigger: Trigger::Cli,
        dry_run: dry_run || settings.jobs.dry_run,
        is_past_due: false,
    };
    let mut context = job_context(store, archive, Arc::new(settings), erasure);
    if std::io::stderr().is_terminal() {
        context = context.with_progress(Arc::new(Bar::new()));
    }
    let report = run_job(job, &context, options).await;
    print_report(&report);
    match report.outcome {
        Outcome::Failed | Outcome::LeaseLost => Err(JobsCliError::RunFailed {
            outcome: report.outcome.as_str(),
            reason: report.error.unwrap_or_default(),
        }),
        Outcome::Finished | Outcome::Partial | Outcome::Yielded => Ok(()),
    }
}

fn print_report(report: &JobReport) {
    match serde_json::to_string_pretty(report) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: cannot print the report: {error}"),
    }
}

/// A progress bar on stderr: one bar per step, with its total when counted.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        Self { bar }
    }
}

impl Progress for Bar {
    fn wants_totals(&self) -> bool {
        true
    }

    fn step(&self, step: &str, total: Option<u64>) {
        let template = match total {
            Some(_) => "{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
            None => "{msg:>24} {spinner} {pos} ({per_sec})",
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(step.to_owned());
    }

    fn advance(&self, count: u64) {
        self.bar.inc(count);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
