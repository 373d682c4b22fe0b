//! The `handler` command line.
//!
//! With no command, `handler` serves the Functions host (it needs `FUNCTIONS_CUSTOMHANDLER_PORT`,
//! which the host sets). `handler local` runs the whole app locally. The other commands work on
//! the local app's data (`DATA_DIR`), whether or not `handler local` is running: SQLite lets
//! both use the database at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use shared::config::{Settings, SettingsSource};

use crate::app::handler_router;
use crate::local::queue::NewMessage;
use crate::local::LocalRuntime;
use crate::registry::{self, FUNCTIONS};
use crate::startup::{AppState, Mode};

#[derive(Parser)]
#[command(
    name = "handler",
    version,
    about = "Custom handler of the Customer Service & Order Management function app"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Functions host on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (the default command).
    Serve {
        /// Port to listen on (default: $FUNCTIONS_CUSTOMHANDLER_PORT).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the whole app locally on http://127.0.0.1:$LOCAL_PORT (7071): HTTP, timers, queues.
    Local {
        /// Port to listen on (overrides LOCAL_PORT; default 7071).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// Folder of the local data: database, queue, dev keys (overrides DATA_DIR; default ./.data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Do not relay the outbox (LOCAL_RELAY=false): messages wait in the outbox until a run
        /// without this flag sends them.
        #[arg(long)]
        no_relay: bool,
    },
    /// Run one timer or Service Bus function once, now, and print its reply.
    Invoke {
        /// Function name (`handler functions list`).
        name: String,
        /// File holding the message body: required for Service Bus functions, refused for timers ('-' for stdin).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// The embedded queue: send and look at messages.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Dead-lettered messages of the embedded queue.
    Deadletters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Print a token for local mode, signed by the local dev key (trusted only by `handler local`).
    DevToken {
        /// The tenant the token is scoped to.
        #[arg(long)]
        tenant: String,
        /// Employee role (repeat for several): admin, customer-service, order-manager.
        #[arg(long = "role", conflicts_with = "customer")]
        roles: Vec<String>,
        /// Make a client token bound to this customer id instead.
        #[arg(long)]
        customer: Option<String>,
        /// Make an app-only token of this service (client credentials, no user) instead.
        #[arg(long, conflicts_with_all = ["customer", "roles"])]
        app: Option<String>,
        /// App role of the --app token (repeat for several): audit.writer.
        #[arg(long = "app-role", requires = "app")]
        app_roles: Vec<String>,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// Print the API's OpenAPI document, or write it (for API Management: apim-policies/openapi.json).
    Openapi {
        /// Write the document to this file instead of printing it.
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
    /// Housekeeping jobs: `handler jobs run DataRetentionCleanup [--dry-run]` prints the report.
    Jobs {
        #[command(subcommand)]
        command: crate::jobs_cli::JobsCommand,
    },
    /// The app's functions.
    Functions {
        #[command(subcommand)]
        command: FunctionsCommand,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Send one message to a queue (`gdpr-requests`) or topic (`order-events`).
    Send {
        /// The queue (`gdpr-requests`) or topic (`order-events`) to send to.
        name: String,
        /// File holding the message body ('-' for stdin).
        #[arg(long)]
        data: PathBuf,
        /// The message's CorrelationId (default: none).
        #[arg(long)]
        correlation_id: Option<String>,
        /// The message's MessageId (default: a new random id).
        #[arg(long)]
        message_id: Option<String>,
    },
    /// List the active messages of a queue or subscription (`order-events/subscriptions/notifications`).
    Peek {
        /// The queue (`gdpr-requests`) or subscription (`order-events/subscriptions/notifications`).
        entity: String,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// List dead letters, of one queue or subscription or of all.
    List {
        /// Only this queue (`gdpr-requests`) or subscription (`order-events/subscriptions/notifications`).
        #[arg(long)]
        entity: Option<String>,
    },
    /// Put a dead letter back on its queue as a new message.
    Replay {
        /// The dead letter's sequenceNumber, as `handler deadletters list` shows it.
        sequence_number: i64,
    },
}

#[derive(Subcommand)]
enum FunctionsCommand {
    /// List the functions with their triggers.
    List,
    /// Write every functions/<Name>/function.json from the registry.
    Write {
        /// The folder holding one folder per function.
        #[arg(long, default_value = "functions")]
        dir: PathBuf,
    },
}

/// Errors the command line reports as one line.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] shared::config::ConfigError),
    #[error(transparent)]
    Start(#[from] crate::startup::StartError),
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    #[error(transparent)]
    Sandbox(#[from] crate::local::sandbox::LocalSandboxError),
    #[error(transparent)]
    Store(#[from] shared::store::StoreError),
    #[error("cannot read {path}: {source}")]
    ReadInput {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Functions host sets it; to run the app yourself use `handler local`")]
    NoHostPort,
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error("no queue or topic named {0:?}; fix: use one of {1}")]
    UnknownTarget(String, String),
    #[error("no dead letter with sequence number {0}; fix: use a sequenceNumber that `handler deadletters list` shows")]
    NoDeadLetter(i64),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the invocation failed: {0}")]
    InvocationFailed(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot make a dev token: {0}")]
    DevToken(#[from] shared::auth::DevKeyError),
}

/// Parses the command line, runs the command, and turns an error into one line and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return report(&CliError::Runtime(error)),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

/// One worker per core the process may use; on a single core, a single-threaded runtime: a
/// worker pool there adds cross-thread hand-offs (and the listener on its own thread) without
/// any parallelism. Blocking work (SQLite writes) still goes to the blocking pool either way.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

fn report(error: &CliError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

async fn run(command: Option<Command>) -> Result<(), CliError> {
    let source = SettingsSource::from_environment(Path::new("."))?;
    let host_port = source.custom_handler_port()?;
    match command {
        None => serve(source, host_port.ok_or(CliError::NoHostPort)?).await,
        Some(Command::Serve { port }) => {
            serve(source, port.or(host_port).ok_or(CliError::NoHostPort)?).await
        }
        Some(Command::Functions {
            command: FunctionsCommand::List,
        }) => {
            list_functions();
            Ok(())
        }
        Some(Command::Functions {
            command: FunctionsCommand::Write { dir },
        }) => write_function_json(&dir),
        Some(Command::Openapi { write }) => openapi(write.as_deref()),
        Some(Command::DevToken {
            tenant,
            roles,
            customer,
            app,
            app_roles,
            minutes,
        }) => match app {
            Some(app_id) => app_token(&source, &tenant, app_id, &app_roles, minutes),
            None => dev_token(&source, &tenant, &roles, customer, minutes),
        },
        Some(Command::Jobs { command }) => crate::jobs_cli::run(source, command)
            .await
            .map_err(|error| CliError::Usage(error.to_string())),
        Some(Command::Local {
            port,
            data_dir,
            no_relay,
        }) => {
            let mut source = source;
            if no_relay {
                source = source.with_value("LOCAL_RELAY", "false");
            }
            if let Some(port) = port {
                source = source.with_value("LOCAL_PORT", port.to_string());
            }
            if let Some(dir) = data_dir {
                source = source.with_value("DATA_DIR", dir.to_string_lossy());
            }
            let command = Command::Local {
                port: None,
                data_dir: None,
                no_relay: false,
            };
            run_local_command(source, command).await
        }
        Some(command) => run_local_command(source, command).await,
    }
}

/// The app's state for `mode`, with a start-up failure caused by `DATA_DIR` (SQLite's
/// "unable to open database file", "File exists" from a key file) explained as a setting.
async fn open_state(settings: Settings, mode: Mode) -> Result<AppState, CliError> {
    let checked = settings.clone();
    let state = AppState::open(settings, mode).map_err(|error| explain_start(error, &checked))?;
    Ok(state.with_configured_store().await?)
}

fn explain_start(error: crate::startup::StartError, settings: &Settings) -> CliError {
    use crate::startup::StartError;
    let about_data_dir = match &error {
        StartError::Open(_) | StartError::DevKey(_) => true,
        StartError::PseudonymKey(_) => settings.gdpr_pseudonym_key.is_none(),
        _ => false,
    };
    match settings.check_data_dir() {
        Err(config) if about_data_dir => CliError::Config(config),
        _ => CliError::Start(error),
    }
}

/// Azure mode: the handler alone, for the Functions host.
async fn serve(source: SettingsSource, port: u16) -> Result<(), CliError> {
    let settings = Settings::load(&source)?;
    shared::telemetry::init(settings.log_format, true);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| CliError::Listen { address, source })?;
    let state = open_state(settings, Mode::Azure).await?;
    state.prefetch_signing_keys();
    tracing::info!(%address, "handler listening for the Functions host");
    axum::serve(listener, handler_router(state))
        .with_graceful_shutdown(crate::shutdown_signal())
        .await
        .map_err(CliError::Serve)
}

async fn run_local_command(source: SettingsSource, command: Command) -> Result<(), CliError> {
    let settings = Settings::load(&source)?;
    shared::telemetry::init(settings.log_format, false);
    let mut state = open_state(settings, Mode::Local).await?;
    let _paypal = match command {
        Command::Local { .. } => crate::local::sandbox::start_paypal_for_local(&mut state).await?,
        _ => None,
    };
    let _erp = match command {
        Command::Local { .. } => crate::local::sandbox::start_erp_for_local(&mut state).await?,
        _ => None,
    };
    let _carrier = match command {
        Command::Local { .. } => crate::local::sandbox::start_carrier_for_local(&mut state).await?,
        _ => None,
    };
    let runtime = LocalRuntime::new(state);
    match command {
        Command::Local { .. } => {
            runtime.state.prefetch_signing_keys();
            Ok(runtime.run().await?)
        }
        Command::Invoke { name, data } => invoke(&runtime, &name, data.as_deref()).await,
        Command::Queue {
            command:
                QueueCommand::Send {
                    name,
                    data,
                    correlation_id,
                    message_id,
                },
        } => {
            let target = registry::target_named(&name)
                .ok_or_else(|| CliError::UnknownTarget(name.clone(), target_names()))?;
            let message = NewMessage {
                body: read_input(&data)?,
                message_id,
                correlation_id,
                content_type: Some("application/json".into()),
                application_properties: serde_json::Map::new(),
            };
            let numbers = runtime.host.queue().send(target, message).await?;
            print_json(&json!({ "sequenceNumbers": numbers }));
            Ok(())
        }
        Command::Queue {
            command: QueueCommand::Peek { entity },
        } => {
            let entity = crate::local::check_entity(&entity)?;
            print_json(&json!(runtime.host.queue().peek(entity).await?));
            Ok(())
        }
        Command::Deadletters {
            command: DeadLetterCommand::List { entity },
        } => {
            let entity = entity
                .as_deref()
                .map(crate::local::check_entity)
                .transpose()?;
            print_json(&json!(runtime.host.queue().dead_letters(entity).await?));
            Ok(())
        }
        Command::Deadletters {
            command: DeadLetterCommand::Replay { sequence_number },
        } => {
            let new_number = match runtime.host.queue().replay(sequence_number).await {
                Err(shared::store::StoreError::NotFound) => {
                    return Err(CliError::NoDeadLetter(sequence_number))
                }
                other => other?,
            };
            print_json(&json!({ "replayed": sequence_number, "sequenceNumber": new_number }));
            Ok(())
        }
        Command::Serve { .. }
        | Command::Jobs { .. }
        | Command::Functions { .. }
        | Command::DevToken { .. }
        | Command::Openapi { .. } => Ok(()),
    }
}

/// `handler invoke`: runs the function once and prints its reply; for a timer that never fired,
/// says on stderr why `scheduleStatus` is null.
async fn invoke(runtime: &LocalRuntime, name: &str, data: Option<&Path>) -> Result<(), CliError> {
    let input = data.map(read_input).transpose()?;
    let never_fired = runtime.timer_never_fired(name).await?;
    match runtime.invoke_now(name, input).await {
        Ok(reply) => print_json(&json!(reply)),
        Err(crate::local::LocalError::Invocation(failure)) => {
            return Err(CliError::InvocationFailed(failure.to_string()))
        }
        Err(error) => return Err(error.into()),
    }
    if never_fired {
        eprintln!("note: scheduleStatus is null because {name} has not fired on its schedule yet (`handler local` fires it, with LOCAL_TIMERS=true); a one-off run does not advance the schedule");
    }
    Ok(())
}

/// Prints a dev token (to stdout, nothing else, so `TOKEN=$(handler dev-token ...)` works).
fn dev_token(
    source: &SettingsSource,
    tenant: &str,
    roles: &[String],
    customer: Option<String>,
    minutes: u64,
) -> Result<(), CliError> {
    use shared::auth::{DevSubject, Role};
    let settings = Settings::load(source)?;
    let tenant = shared::domain::tenant::TenantId::new(tenant)
        .map_err(|error| CliError::Usage(format!("--tenant: {error}")))?;
    let subject =
        match customer {
            Some(customer_id) => DevSubject::Client { customer_id },
            None if roles.is_empty() => return Err(CliError::Usage(
                "give --role admin|customer-service|order-manager (or --customer ID for a client)"
                    .into(),
            )),
            None => {
                let roles = roles
                    .iter()
                    .map(|role| {
                        role.parse::<Role>().map_err(|_| {
                            CliError::Usage(format!(
                            "unknown role {role:?}; use admin, customer-service or order-manager"
                        ))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                DevSubject::Employee { roles }
            }
        };
    print_dev_token(&settings, &tenant, subject, minutes)
}

/// Prints an app-only dev token of the service `app_id` with `roles` (`audit.writer`).
fn app_token(
    source: &SettingsSource,
    tenant: &str,
    app_id: String,
    roles: &[String],
    minutes: u64,
) -> Result<(), CliError> {
    use shared::auth::{AppRole, DevSubject};
    let settings = Settings::load(source)?;
    let tenant = shared::domain::tenant::TenantId::new(tenant)
        .map_err(|error| CliError::Usage(format!("--tenant: {error}")))?;
    let roles = roles
        .iter()
        .map(|role| {
            AppRole::ALL
                .into_iter()
                .find(|known| known.as_str() == role)
                .ok_or_else(|| {
                    CliError::Usage(format!("unknown app role {role:?}; use audit.writer"))
                })
        })
        .collect::<Result<_, _>>()?;
    print_dev_token(
        &settings,
        &tenant,
        DevSubject::App { app_id, roles },
        minutes,
    )
}

/// Signs a dev token for `subject` with the data folder's dev key and prints it.
fn print_dev_token(
    settings: &Settings,
    tenant: &shared::domain::tenant::TenantId,
    subject: shared::auth::DevSubject,
    minutes: u64,
) -> Result<(), CliError> {
    use shared::auth::DevIssuer;
    let issuer = DevIssuer::load_or_create(&settings.data_dir).map_err(|error| {
        match settings.check_data_dir() {
            Err(config) => CliError::Config(config),
            Ok(()) => CliError::DevToken(error),
        }
    })?;
    println!(
        "{}",
        issuer.token(
            tenant,
            subject,
            std::time::Duration::from_secs(minutes.max(1) * 60)
        )?
    );
    Ok(())
}

fn target_names() -> String {
    registry::known_targets()
        .iter()
        .map(|target| target.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_input(path: &Path) -> Result<String, CliError> {
    let read = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| CliError::ReadInput {
        path: path.display().to_string(),
        source,
    })
}

/// Prints JSON to stdout; a closed pipe (`handler ... | head`) ends the output quietly instead
/// of panicking.
fn print_json(value: &serde_json::Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn list_functions() {
    for def in FUNCTIONS {
        let trigger = match def.trigger {
            registry::Trigger::Http { route, .. } => format!("http  /api/{route}"),
            registry::Trigger::Timer { schedule } => format!("timer {schedule}"),
            registry::Trigger::Queue { queue } => format!("queue {queue}"),
            registry::Trigger::Subscription {
                topic,
                subscription,
            } => format!("topic {topic} / {subscription}"),
            registry::Trigger::ChangeFeed { container, .. } => format!("changes of {container}"),
        };
        println!("{:<24} {trigger}", def.name);
    }
}

/// Prints the OpenAPI document, or writes it to `path`.
fn openapi(path: Option<&Path>) -> Result<(), CliError> {
    let text = crate::api::openapi::document_text(&registry::api_document());
    match path {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, text).map_err(|source| CliError::Write {
                path: path.display().to_string(),
                source,
            })?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Writes `dir/<Name>/function.json` for every function, from the registry.
fn write_function_json(dir: &Path) -> Result<(), CliError> {
    for def in FUNCTIONS {
        let folder = dir.join(def.name);
        let path = folder.join("function.json");
        let write_error = |source| CliError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&folder).map_err(write_error)?;
        std::fs::write(&path, registry::function_json_text(def)).map_err(write_error)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
