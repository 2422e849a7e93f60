//! The `vendorflow` binary: the command line, configuration, telemetry, and the wiring of every
//! crate. It is the only place that knows everything: it reads settings, registers the steps'
//! handlers with the engine, mounts the API, and starts the sandbox in development.

mod settings;
mod telemetry;

use std::path::PathBuf;
use std::process::Command;

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
    /// Development mode: a local PostgreSQL under .data/ when no database URL is set, migrations,
    /// a development marketplace and token.
    Dev,
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
    },
    /// Manage marketplaces.
    #[command(subcommand)]
    Marketplaces(MarketplaceCommands),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokenCommands),
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
        /// A label to recognise the token by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (printed when it was created).
        id: uuid::Uuid,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    telemetry::init(settings.log_format, &settings.log_filter);
    match cli.command {
        Commands::Migrate => {
            let pool = connect(&settings).await?;
            store::migrate(&pool).await.context("migrating")?;
            println!("migrations applied");
        }
        Commands::Dev => dev(settings).await?,
        Commands::Sandbox {
            listen,
            terminal_approval,
            seed,
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
                ..sandbox::SandboxConfig::default()
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("--listen: cannot bind {listen}"))?;
            println!("SUMIT sandbox listening on http://{listen}");
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
            label,
        }) => {
            let Some(role) = store::tokens::Role::parse(&role) else {
                bail!("--role: expected backend, viewer or operator, got `{role}`");
            };
            let pool = connect(&settings).await?;
            let mut conn = pool.acquire().await?;
            if store::marketplaces::find(&mut conn, marketplace)
                .await?
                .is_none()
            {
                bail!("--marketplace: no marketplace with id {marketplace}");
            }
            let created = store::tokens::create(&mut conn, marketplace, role, &label).await?;
            eprintln!(
                "token id {} (keep the token below; it is shown once)",
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
    Ok(())
}

/// Connects to the configured database, failing with the variable to set.
async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let Some(url) = &settings.database_url else {
        bail!(
            "VENDORFLOW_DATABASE_URL (or DATABASE_URL) is not set; `make db/start` starts a local \
             PostgreSQL and `make db/url` prints its URL"
        );
    };
    store::connect(url.expose_secret(), settings.database_max_connections)
        .await
        .context("connecting to PostgreSQL (VENDORFLOW_DATABASE_URL)")
}

/// Starts the local development cluster through `scripts/pg.sh` and returns its URL.
fn start_local_postgres() -> anyhow::Result<String> {
    let script = PathBuf::from("scripts/pg.sh");
    if !script.exists() {
        bail!("no database URL is set and scripts/pg.sh is not here: run from the repository root");
    }
    let status = Command::new("bash")
        .arg(&script)
        .arg("start")
        .status()
        .context("running scripts/pg.sh start")?;
    if !status.success() {
        bail!("scripts/pg.sh start failed");
    }
    let output = Command::new("bash").arg(&script).arg("url").output()?;
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// `vendorflow dev`: everything on development defaults.
async fn dev(mut settings: Settings) -> anyhow::Result<()> {
    if settings.database_url.is_none() {
        settings.database_url = Some(SecretString::from(start_local_postgres()?));
    }
    let pool = connect(&settings).await?;
    store::migrate(&pool).await.context("migrating")?;

    let mut conn = pool.acquire().await?;
    let marketplace =
        match store::marketplaces::find_by_name(&mut conn, "Development marketplace").await? {
            Some(existing) => existing,
            None => store::marketplaces::insert(&mut conn, "Development marketplace").await?,
        };
    let backend = store::tokens::create(
        &mut conn,
        marketplace.id,
        store::tokens::Role::Backend,
        "dev",
    )
    .await?;
    drop(conn);

    println!("vendorflow development instance");
    println!("  database:     migrated");
    println!("  marketplace:  {}", marketplace.id);
    println!(
        "  backend token (shown once): {}",
        backend.token.expose_secret()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
