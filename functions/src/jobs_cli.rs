//! `handler jobs run <Name> [--dry-run]`: runs a housekeeping job from the command line, with
//! a progress bar when stderr is a terminal. The jobs are the registry's timer functions that
//! run one (`Code::Job`); the context and report are the timer's ([`crate::timer_jobs`]).

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Subcommand;
use shared::config::{Settings, SettingsSource};
use shared::erasure::ErasureContext;
use shared::jobs::{run_job, JobReport, Outcome, Progress, RunOptions, Trigger};

use crate::registry;
use crate::startup::{Backends, StartError};
use crate::timer_jobs::job_context;

/// `handler jobs ...`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run a job now and print its report (JSON); the jobs are the timer functions that
    /// `handler functions list` shows (DataRetentionCleanup, for example).
    Run {
        /// The job (its timer function's name).
        name: String,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// PaymentDailyReconciliation: the UTC day to compare (YYYY-MM-DD; default yesterday).
        #[arg(long, value_name = "YYYY-MM-DD")]
        day: Option<chrono::NaiveDate>,
    },
}

/// What `handler jobs` reports as one line.
#[derive(Debug, thiserror::Error)]
pub enum JobsCliError {
    #[error("no job named {0:?}; jobs: {1}")]
    UnknownJob(String, String),
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

/// `handler jobs ...`: runs the command on the configured data (`DATA_DIR`) and archive (`ARCHIVE`).
pub async fn run(source: SettingsSource, command: JobsCommand) -> Result<(), JobsCliError> {
    let JobsCommand::Run { name, dry_run, day } = command;
    let job = registry::find_job(&name)
        .ok_or_else(|| JobsCliError::UnknownJob(name, registry::job_names().join(", ")))?;
    let settings = Settings::load(&source)?;
    shared::telemetry::init(settings.log_format, false);
    let backends = Backends::open(&settings)
        .map_err(|error| {
            // SQLite's "unable to open database file" names no setting; DATA_DIR is the usual cause.
            match (&error, settings.check_data_dir()) {
                (StartError::Open(_), Err(config)) => JobsCliError::Config(config),
                _ => JobsCliError::Start(error),
            }
        })?
        .with_configured_store(&settings)
        .await?;
    // The local runtime's queue in DATA_DIR is scrubbed as `handler local` does.
    let erasure =
        crate::local::storage::scrubbing_local_queue(ErasureContext::new(&settings), &backends.db);
    let options = RunOptions {
        trigger: Trigger::Cli,
        dry_run: dry_run || settings.jobs.dry_run,
        is_past_due: false,
    };
    // PayPal when `PAYPAL_BASE_URL` is set, the ERP when `ERP_BASE_URL` is, the carrier when
    // `CARRIER_BASE_URL` is (the sandboxes live only inside `handler local`).
    let outbound = crate::startup::Outbound::from_settings(&settings.payments, Vec::new())?
        .with_erp(&settings.erp)?
        .with_carrier(&settings.shipping)?;
    let mut context = job_context(
        backends.store,
        backends.archive,
        Arc::new(settings),
        erasure,
        &outbound,
    )
    .with_comparison_day(day);
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
