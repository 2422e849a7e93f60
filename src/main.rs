//! The `vendorflow` binary: the command line, configuration, telemetry, and the wiring of every
//! crate. It is the only place that knows everything: it reads settings, registers the steps'
//! handlers with the engine, mounts the API, and starts the sandbox in development.

mod app;
mod chaos;
mod cli;
mod local;
mod settings;
mod telemetry;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use settings::Settings;

/// Durable vendor onboarding, charges and documents for Israeli marketplaces.
#[derive(Debug, Parser)]
#[command(name = "vendorflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Apply the database migrations.
    Migrate,
    /// Run everything: the HTTP API, a worker, the scheduler and the webhook relay.
    Serve,
    /// Run the HTTP API only.
    Api,
    /// Run a worker, the scheduler and the webhook relay (no HTTP API).
    Worker,
    /// Benchmark the engine: five-step workflows with no-op handlers against the database.
    Bench {
        /// Workflows in the load phase.
        #[arg(long, default_value_t = 20_000)]
        workflows: usize,
        /// Worker loops.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Manage the master keys of encrypted secrets.
    #[command(subcommand)]
    Keys(KeyCommands),
    /// Manage webhook endpoints of a marketplace.
    #[command(subcommand)]
    Webhooks(cli::webhooks::WebhookCommands),
    /// Development mode: a local PostgreSQL under .data/ when no database URL is set, migrations,
    /// a development marketplace and token.
    Dev,
    /// Print the OpenAPI document the API serves at /openapi.json (for client generators).
    Openapi,
    /// Run the SUMIT sandbox (the local provider simulator) alone; see docs/sandbox.md.
    Sandbox {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// Terminals approve themselves after this long (`manual` waits for a control call).
        #[arg(long, default_value = "5s")]
        terminal_approval: String,
        /// Seed of the fault injector's random choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep the state (organizations, keys, terminals, payments, ...) in this JSON file across
        /// restarts; without it the sandbox starts empty each time.
        #[arg(long, value_name = "FILE")]
        state: Option<std::path::PathBuf>,
    },
    /// Manage marketplaces.
    #[command(subcommand)]
    Marketplaces(MarketplaceCommands),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokenCommands),
    /// See runs and act on them: list, show, retry, resume, cancel, pause, signal.
    #[command(subcommand)]
    Runs(cli::runs::RunCommands),
    /// Manage vendors.
    #[command(subcommand)]
    Vendors(VendorCommands),
    /// Onboard sample vendors into a running instance (`make run`) over HTTP and show their
    /// progress live, approving clearing vendors' terminals as the acquirer would.
    Demo(cli::demo::DemoArgs),
    /// The chaos proof (`make chaos`): a production topology on this machine under provider
    /// faults, worker kills and a PostgreSQL restart; reports duplicates, lost or stuck runs and
    /// leaked canaries, and exits non-zero when it finds any.
    Chaos(chaos::ChaosArgs),
}

#[derive(Debug, Subcommand)]
enum VendorCommands {
    /// Onboard the vendors of a CSV file, as POST /v1/onboardings would; exits 2 when some rows
    /// were rejected (see --help for the columns).
    Import(cli::import::ImportArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommands {
    /// Print a new random master key (base64) for VENDORFLOW_MASTER_KEY.
    Generate,
    /// Re-wrap every data key under the current master key (VENDORFLOW_MASTER_KEY); older keys
    /// are read from VENDORFLOW_PREVIOUS_MASTER_KEYS. Safe to re-run.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum MarketplaceCommands {
    /// Create a marketplace and print its id.
    Create {
        /// The marketplace's display name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommands {
    /// Create a token and print it once.
    Create {
        /// The marketplace the token acts for.
        #[arg(long)]
        marketplace: uuid::Uuid,
        /// `backend`, `viewer` or `operator`.
        #[arg(long)]
        role: String,
        /// Whom the token is for (a person, or a system such as `shop backend`): the audit log,
        /// the dashboard and run history show it wherever the token acts. `--label` is an alias.
        #[arg(long, visible_alias = "label")]
        name: String,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (printed when it was created).
        id: uuid::Uuid,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
    // The benchmark would print a line per finished run at `info`; it reports figures instead.
    let log_filter = match cli.command {
        Commands::Bench { .. } | Commands::Chaos(_) if !settings.log_filter_is_set => {
            "warn,sqlx=error"
        }
        _ => settings.log_filter.as_str(),
    };
    telemetry::init(settings.log_format, log_filter);
    // Run from the checkout, a command that needs the database (and the master key) finds
    // `make run`'s when its settings name none.
    if let Some(needs_key) = needs_database(&cli.command) {
        local::complete(&mut settings, needs_key)?;
    }
    match cli.command {
        Commands::Runs(command) => {
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            cli::runs::run(
                command,
                &mut conn,
                |flag| cli::actor(flag, &settings),
                settings.development_database,
            )
            .await?;
        }
        Commands::Vendors(VendorCommands::Import(args)) => {
            let pool = connect(&settings).await?;
            let actor = cli::actor(args.actor.as_deref(), &settings);
            let wiring = async || {
                // The same keyring and definitions as `serve`, so imported runs pin the very
                // definition the workers load and bank accounts are encrypted under its key.
                let keyring = keyring(&settings)?;
                // The import only enqueues: no provider is called, so its settings are optional
                // here (the handlers are registered only to validate the definitions).
                let provider = provider(&settings).unwrap_or_else(|_| app::ProviderSettings {
                    base_url: "http://provider-not-configured.invalid".to_owned(),
                    company_id: 0,
                    api_key: SecretString::from(String::new()),
                    sandbox_extensions: false,
                    request_timeout: settings.provider_timeout,
                });
                let wiring = app::build(pool.clone(), keyring, provider, &settings.workflows_dir)?;
                Ok((wiring.definitions, wiring.keyring))
            };
            return cli::import::run(args, pool.clone(), actor, wiring).await;
        }
        Commands::Chaos(args) => return chaos::run(args).await,
        Commands::Demo(args) => {
            let (api, token) = demo_target(&args, &settings)?;
            cli::demo::run(args, api, token).await?;
        }
        Commands::Migrate => {
            let pool = connect(&settings).await?;
            store::migrate(&pool).await.context("migrating")?;
            println!("migrations applied");
        }
        Commands::Dev => dev(settings).await?,
        Commands::Openapi => {
            println!("{:#}", api::openapi_document());
        }
        Commands::Serve => run_parts(settings, Parts::All).await?,
        Commands::Api => run_parts(settings, Parts::ApiOnly).await?,
        Commands::Worker => run_parts(settings, Parts::WorkerOnly).await?,
        Commands::Bench { workflows, workers } => bench(&settings, workflows, workers).await?,
        Commands::Keys(KeyCommands::Generate) => {
            println!(
                "{}",
                store::secrets::MasterKey::generate()
                    .to_base64()
                    .expose_secret()
            );
        }
        Commands::Keys(KeyCommands::Rotate) => {
            let keyring = keyring(&settings)?;
            let pool = connect(&settings).await?;
            let report = store::secrets::rotate(&pool, &keyring).await?;
            println!(
                "re-wrapped {} secret(s) under {}",
                report.rewrapped, report.key_id
            );
            if !report.is_complete() {
                bail!(
                    "{} secret(s) use an unknown master key and {} failed: set \
                     VENDORFLOW_PREVIOUS_MASTER_KEYS to the old keys and run again",
                    report.unknown_key.len(),
                    report.failed.len()
                );
            }
        }
        Commands::Webhooks(command) => {
            let keyring = if command.needs_master_key() {
                Some(keyring(&settings)?)
            } else {
                None
            };
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            cli::webhooks::run(
                command,
                &mut conn,
                keyring.as_ref(),
                |flag| cli::actor(flag, &settings),
                settings.development_database,
            )
            .await?;
        }
        Commands::Sandbox {
            listen,
            terminal_approval,
            seed,
            state,
        } => {
            let terminal_approval = match terminal_approval.as_str() {
                "manual" => sandbox::TerminalApproval::Manual,
                "immediate" | "0" | "0s" => sandbox::TerminalApproval::Immediate,
                delay => sandbox::TerminalApproval::AfterDelay(
                    settings::parse_duration(delay)
                        .context("--terminal-approval: use manual, immediate or a duration")?,
                ),
            };
            let config = sandbox::SandboxConfig {
                terminal_approval,
                seed,
                state_file: state.map(sandbox::StateFile::new),
                ..sandbox::SandboxConfig::default()
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("--listen: cannot bind {listen}"))?;
            println!("SUMIT sandbox listening on http://{listen}");
            if let Some(file) = &config.state_file {
                println!("  state kept in {}", file.path.display());
            }
            println!(
                "  marketplace credentials: CompanyID {} APIKey {}",
                config.marketplace_company_id, config.marketplace_api_key
            );
            sandbox::serve(listener, config, async {
                // Ctrl-C ends the sandbox; if the handler cannot be installed, run until killed.
                let _signal = tokio::signal::ctrl_c().await;
            })
            .await
            .context("running the sandbox")?;
        }
        Commands::Marketplaces(MarketplaceCommands::Create { name }) => {
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            let marketplace = store::marketplaces::insert(&mut conn, &name).await?;
            println!("{}", marketplace.id);
        }
        Commands::Tokens(TokenCommands::Create {
            marketplace,
            role,
            name,
        }) => {
            let Some(role) = store::tokens::Role::parse(&role) else {
                bail!("--role: expected backend, viewer or operator, got `{role}`");
            };
            let name = cli::token_name(&name)?;
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            if store::marketplaces::find(&mut conn, marketplace)
                .await?
                .is_none()
            {
                bail!("--marketplace: no marketplace with id {marketplace}");
            }
            let created = store::tokens::create(&mut conn, marketplace, role, &name).await?;
            eprintln!(
                "token id {} named {name} (keep the token below; it is shown once)",
                created.id
            );
            println!("{}", created.token.expose_secret());
        }
        Commands::Tokens(TokenCommands::Revoke { id }) => {
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            if !store::tokens::revoke(&mut conn, id).await? {
                bail!("no live token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Which commands use the database, and whether they also need the master key: those find
/// `make run`'s when run from the checkout with neither set ([`local::complete`]).
fn needs_database(command: &Commands) -> Option<bool> {
    match command {
        Commands::Migrate
        | Commands::Bench { .. }
        | Commands::Marketplaces(_)
        | Commands::Tokens(_)
        | Commands::Runs(_) => Some(false),
        Commands::Webhooks(command) => Some(command.needs_master_key()),
        Commands::Vendors(VendorCommands::Import(args)) => Some(!args.dry_run),
        Commands::Serve
        | Commands::Api
        | Commands::Worker
        | Commands::Keys(KeyCommands::Rotate) => Some(true),
        // `dev` starts and makes its own; the others use no database.
        Commands::Dev
        | Commands::Keys(KeyCommands::Generate)
        | Commands::Openapi
        | Commands::Sandbox { .. }
        | Commands::Demo(_)
        | Commands::Chaos(_) => None,
    }
}

/// The hint when no database URL is set (and none was found in a checkout).
const NO_DATABASE: &str = "VENDORFLOW_DATABASE_URL (or DATABASE_URL) is not set: set it to your \
     PostgreSQL URL, or run this from the vendorflow checkout while `make run` is up, where the \
     development database is found by itself";

/// Connects to the configured database, failing with the variable to set.
async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let Some(url) = &settings.database_url else {
        bail!(NO_DATABASE);
    };
    let connected = store::connect(url.expose_secret(), settings.database_max_connections).await;
    if settings.development_database {
        connected.context(
            "cannot reach the development database: start it with `make db/start` (or `make run`)",
        )
    } else {
        connected.context("connecting to PostgreSQL (VENDORFLOW_DATABASE_URL)")
    }
}

/// Connects to the configured database for a long-running command (`serve`, `api`, `worker`,
/// `dev`): while PostgreSQL is unreachable or starting up, it retries with capped exponential
/// backoff (0.5 s doubling to 10 s), logging each try, for `VENDORFLOW_DATABASE_WAIT` (default
/// forever). One-shot commands use [`connect`], which gives up after about ten seconds.
async fn connect_waiting(settings: &Settings) -> anyhow::Result<PgPool> {
    let Some(url) = &settings.database_url else {
        return connect(settings).await;
    };
    let retry = store::ConnectRetry {
        give_up_after: settings.database_wait,
        ..store::ConnectRetry::default()
    };
    store::connect_waiting(
        url.expose_secret(),
        settings.database_max_connections,
        retry,
    )
    .await
    .context("connecting to PostgreSQL (VENDORFLOW_DATABASE_URL; VENDORFLOW_DATABASE_WAIT bounds the wait)")
}

/// `vendorflow bench`: runs the engine benchmark in a database of its own, created next to the
/// configured one and dropped afterwards, so figures do not depend on what the configured
/// database already holds (old runs, dead rows) and the benchmark leaves nothing behind.
async fn bench(settings: &Settings, workflows: usize, workers: usize) -> anyhow::Result<()> {
    use sqlx::Connection;
    let Some(url) = &settings.database_url else {
        bail!(NO_DATABASE);
    };
    let url = url.expose_secret();
    let (base, _) = url
        .rsplit_once('/')
        .context("VENDORFLOW_DATABASE_URL has no database name")?;
    let base = base.to_owned();
    let name = format!("vendorflow_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .context("connecting to the cluster's `postgres` database to create the bench database")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .context("creating the bench database")?;
    let result = async {
        let pool = store::connect(&format!("{base}/{name}"), 16).await?;
        store::migrate(&pool).await.context("migrating")?;
        let options = engine::bench::BenchOptions {
            workflows,
            workers,
            ..engine::bench::BenchOptions::default()
        };
        let report = engine::bench::run(pool.clone(), options).await?;
        pool.close().await;
        anyhow::Ok(report)
    }
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .context("dropping the bench database")?;
    println!("{}", result?);
    Ok(())
}

/// The master keys from settings.
fn keyring(settings: &Settings) -> anyhow::Result<store::secrets::Keyring> {
    let Some(current) = &settings.master_key else {
        if settings.development_database {
            bail!(
                "VENDORFLOW_MASTER_KEY is not set and the development database has no development \
                 key yet ({} is missing): `make run` makes it, then run this again",
                local::MASTER_KEY_FILE
            );
        }
        bail!(
            "VENDORFLOW_MASTER_KEY is not set: set it to the master key the service runs with \
             (this database's secrets are encrypted under it; only a new installation makes one, \
             with `vendorflow keys generate`); run from the checkout, the development key of \
             `make run` is used with the development database by itself"
        );
    };
    let previous = settings
        .previous_master_keys
        .as_ref()
        .map(|keys| keys.expose_secret().to_owned());
    Ok(store::secrets::Keyring::from_config(
        current.expose_secret(),
        previous.as_deref(),
    )?)
}

/// Which parts of the service a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    All,
    ApiOnly,
    WorkerOnly,
}

/// The provider settings, failing with the variables to set.
fn provider(settings: &Settings) -> anyhow::Result<app::ProviderSettings> {
    let (Some(base_url), Some(company_id), Some(api_key)) = (
        &settings.provider_url,
        settings.provider_company_id,
        &settings.provider_api_key,
    ) else {
        bail!(
            "VENDORFLOW_PROVIDER_URL, VENDORFLOW_PROVIDER_COMPANY_ID and \
             VENDORFLOW_PROVIDER_API_KEY must be set (`vendorflow sandbox` runs the SUMIT \
             simulator to point them at; `make run` runs everything with it in development)"
        );
    };
    Ok(app::ProviderSettings {
        base_url: base_url.clone(),
        company_id,
        api_key: api_key.clone(),
        sandbox_extensions: settings.provider_sandbox_extensions,
        request_timeout: settings.provider_timeout,
    })
}

/// `serve`, `api` and `worker`.
async fn run_parts(settings: Settings, parts: Parts) -> anyhow::Result<()> {
    let keyring = keyring(&settings)?;
    let provider = provider(&settings)?;
    let pool = connect_waiting(&settings).await?;
    let wiring = app::build(pool, keyring, provider, &settings.workflows_dir)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    app::cancel_on_signal(shutdown.clone());
    let listener = match parts {
        Parts::WorkerOnly => None,
        Parts::All | Parts::ApiOnly => Some(app::bind(settings.listen).await?),
    };
    tracing::info!(?parts, listen = %settings.listen, "vendorflow starting");
    app::serve(
        &wiring,
        listener,
        parts != Parts::ApiOnly,
        &settings,
        shutdown,
    )
    .await
}

/// Where `vendorflow dev` keeps the sandbox's state (relative to the working directory, like the
/// rest of `.data/`); `make db/reset` deletes the folder with the database.
const DEV_SANDBOX_STATE: &str = ".data/sandbox/state.json";

/// Where `demo` sends its vendors and with which token: `--api` / `--token`, else
/// `VENDORFLOW_LISTEN` / `VENDORFLOW_TOKEN`, else what `make run` keeps in the checkout
/// (`.data/dev-tokens.json`), else the default address.
fn demo_target(
    args: &cli::demo::DemoArgs,
    settings: &Settings,
) -> anyhow::Result<(String, SecretString)> {
    let token_given = args.token.is_some() || settings.api_token.is_some();
    let api_given = args.api.is_some() || settings.listen_is_set;
    let kept = if token_given && api_given {
        None
    } else {
        local::read_tokens()?
    };
    let mut found = Vec::new();
    let token = match (&args.token, &settings.api_token, &kept) {
        (Some(token), _, _) => SecretString::from(token.clone()),
        (None, Some(token), _) => token.clone(),
        (None, None, Some(kept)) => {
            found.push(format!("the development token `{}`", kept.backend.name));
            kept.backend.token.clone()
        }
        (None, None, None) => bail!(
            "--token: a backend or operator token is required: run `make run` first (it keeps \
             its tokens in {} for this command), or pass --token or set VENDORFLOW_TOKEN",
            local::TOKENS_FILE
        ),
    };
    let api = match (&args.api, &kept) {
        (Some(api), _) => api.clone(),
        (None, Some(kept)) if !settings.listen_is_set => {
            found.push(format!("the API at {}", kept.api));
            kept.api.clone()
        }
        (None, _) => format!("http://{}", settings.listen),
    };
    if !found.is_empty() {
        eprintln!(
            "vendorflow: using {} from {} (make run's; --token and --api choose others)",
            found.join(" and "),
            local::TOKENS_FILE
        );
    }
    Ok((api, token))
}

/// `vendorflow dev`: everything on development defaults: the local PostgreSQL, the in-process
/// sandbox as the provider, a development master key, a marketplace with tokens, and `serve`.
async fn dev(mut settings: Settings) -> anyhow::Result<()> {
    if settings.database_url.is_none() {
        settings.database_url = Some(SecretString::from(local::start_cluster()?));
        settings.development_database = true;
    }
    if settings.master_key.is_none() {
        settings.master_key = Some(local::master_key_or_create()?);
    }
    let pool = connect_waiting(&settings).await?;
    store::migrate(&pool).await.context("migrating")?;

    let mut conn = pool.acquire().await?;
    let marketplace = match store::marketplaces::find_by_name(&mut conn, local::MARKETPLACE).await?
    {
        Some(existing) => existing,
        None => store::marketplaces::insert(&mut conn, local::MARKETPLACE).await?,
    };

    // The sandbox as the provider, unless a provider is configured.
    let dev_sandbox = if settings.provider_url.is_none() {
        // The database remembers its vendors' organizations and keys, so the sandbox must too:
        // it keeps its state in .data/sandbox/state.json, marked as this database's (by its
        // development marketplace), and loads it at each start. A file written next to another
        // database is set aside and the sandbox starts empty; `make db/reset` deletes both.
        // New organization ids continue after the saved ones, and never start below a floor
        // that moves with the clock, so they cannot collide with organizations the database
        // remembers but the file does not (a file deleted or set aside); each start also mints
        // its keys from a fresh seed.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let config = sandbox::SandboxConfig {
            seed: started.as_nanos() as u64,
            first_company_id: 100_001 + (started.as_secs() as i64 % 10_000_000) * 100,
            // The `terminal_approved` signal stands for the acquirer's approval in development,
            // so the sandbox approves at once (a terminal left pending in the file too) and a
            // charge right after the signal goes through.
            terminal_approval: sandbox::TerminalApproval::Immediate,
            state_file: Some(sandbox::StateFile {
                path: std::path::PathBuf::from(DEV_SANDBOX_STATE),
                owner: Some(format!(
                    "vendorflow development marketplace {}",
                    marketplace.id
                )),
            }),
            ..sandbox::SandboxConfig::default()
        };
        settings.provider_company_id = Some(config.marketplace_company_id);
        settings.provider_api_key = Some(SecretString::from(config.marketplace_api_key.clone()));
        settings.provider_sandbox_extensions = true;
        settings.webhooks_allow_private = true;
        settings.metrics_on_api = true;
        let handle = sandbox::spawn(config)
            .await
            .context("starting the sandbox")?;
        settings.provider_url = Some(handle.base_url.clone());
        Some(handle)
    } else {
        None
    };

    let base = format!("http://{}", settings.listen);
    // The same tokens at every start, kept in the checkout; new ones only when they are missing
    // or no longer work.
    let (tokens, minted) = local::dev_tokens(&mut conn, marketplace.id, &base).await?;
    drop(conn);
    let (backend, operator, viewer) = (&tokens.backend, &tokens.operator, &tokens.viewer);

    println!();
    println!("vendorflow is running (development mode)");
    println!("  API:            {base}   (reference: {base}/docs)");
    println!(
        "  provider:       SUMIT sandbox at {}",
        settings.provider_url.as_deref().unwrap_or("?")
    );
    if let Some(handle) = &dev_sandbox {
        // The marketplace's own organization is not a vendor's.
        let organizations = handle.ledger().companies.len().saturating_sub(1);
        println!(
            "  sandbox state:  {DEV_SANDBOX_STATE} ({organizations} vendor organizations from earlier runs)"
        );
    }
    println!("  marketplace:    {}", marketplace.id);
    println!(
        "  backend token:  {}   (`{}`)",
        backend.token.expose_secret(),
        backend.name
    );
    println!(
        "  operator token: {}   (`{}`)",
        operator.token.expose_secret(),
        operator.name
    );
    println!(
        "  viewer token:   {}   (`{}`)",
        viewer.token.expose_secret(),
        viewer.name
    );
    println!(
        "  tokens kept in: {} ({}; `vendorflow demo` reads them there)",
        local::TOKENS_FILE,
        if minted.is_empty() {
            "the same at every start".to_owned()
        } else {
            format!(
                "new {} token(s) minted",
                minted
                    .iter()
                    .map(|role| role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );
    println!("  dashboard:      {base}/admin   (sign in with the operator or viewer token)");
    println!("  metrics:        {base}/metrics");
    println!();
    println!("Try it (see README.md, \"Quick start\"):");
    println!("  export TOKEN={}", backend.token.expose_secret());
    println!("Press Ctrl-C to stop.");
    run_parts(settings, Parts::All).await
}
