//! Wiring: the one place that knows every crate. It builds the engine's registry from the steps,
//! loads the workflow definitions, and runs the API, the worker, the scheduler and the webhook
//! relay on one runtime until a shutdown signal.

mod prometheus;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;
use prometheus::PrometheusRecorder;

/// What the running parts share.
pub struct Wiring {
    /// The database.
    pub pool: PgPool,
    /// The registry of handlers, polls, conditions and signals.
    pub registry: Arc<engine::Registry>,
    /// The loaded, validated workflow definitions.
    pub definitions: Arc<engine::Definitions>,
    /// The master keys.
    pub keyring: Arc<store::secrets::Keyring>,
}

/// The provider the steps call: its URL, and the marketplace's own credentials there.
pub struct ProviderSettings {
    /// SUMIT's base URL (the sandbox's in development).
    pub base_url: String,
    /// The marketplace's CompanyID.
    pub company_id: i64,
    /// The marketplace's APIKey.
    pub api_key: secrecy::SecretString,
    /// How long one request may take.
    pub request_timeout: std::time::Duration,
    /// Whether the provider is the sandbox (enables its documented extensions, such as the
    /// terminal-status poll and the company lookup).
    pub sandbox_extensions: bool,
}

/// Builds the registry and loads the definitions from `workflows_dir`.
pub fn build(
    pool: PgPool,
    keyring: store::secrets::Keyring,
    provider: ProviderSettings,
    workflows_dir: &Path,
) -> anyhow::Result<Wiring> {
    let keyring = Arc::new(keyring);
    let client = providers::sumit::SumitClient::new(
        &provider.base_url,
        providers::sumit::ClientConfig {
            sandbox_extensions: provider.sandbox_extensions,
            request_timeout: provider.request_timeout,
            ..providers::sumit::ClientConfig::default()
        },
    )
    .context("VENDORFLOW_PROVIDER_URL: cannot build the SUMIT client")?;
    let steps = Arc::new(steps::StepsConfig {
        provider: client,
        marketplace_credentials: providers::sumit::Credentials::new(
            provider.company_id,
            provider.api_key.expose_secret().to_owned(),
        ),
        keyring: keyring.clone(),
        sandbox_extensions: provider.sandbox_extensions,
    });
    let mut registry = engine::Registry::new();
    steps::register(&mut registry, steps);
    let definitions =
        engine::Definitions::load_dir(workflows_dir, &registry).with_context(|| {
            format!(
                "loading workflow definitions from {}",
                workflows_dir.display()
            )
        })?;
    Ok(Wiring {
        pool,
        registry: Arc::new(registry),
        definitions: Arc::new(definitions),
        keyring,
    })
}

/// Runs the API on `listener` (when given) and, when `run_workers`, one worker, the scheduler
/// and the webhook relay, until `shutdown` is cancelled; in-flight steps get the grace period.
pub async fn serve(
    wiring: &Wiring,
    listener: Option<TcpListener>,
    run_workers: bool,
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)> = Vec::new();
    let render = install_metrics(settings)?
        .map(|recorder| -> api::MetricsRender { Arc::new(move || recorder.render()) });
    if let Some(render) = &render {
        let state = api::AppState {
            pool: wiring.pool.clone(),
            definitions: wiring.definitions.clone(),
            keyring: wiring.keyring.clone(),
            metrics: Some(render.clone()),
            max_amount_agorot: settings.max_amount_agorot,
        };
        if let Some(address) = settings.metrics_listen {
            let listener = TcpListener::bind(address).await.with_context(|| {
                format!("VENDORFLOW_METRICS_LISTEN: cannot listen on {address}")
            })?;
            let router = api::metrics_router(state);
            let stop = shutdown.clone();
            tasks.push((
                "the metrics listener",
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await?;
                    Ok(())
                }),
            ));
        }
    }
    if let Some(listener) = listener {
        let router = api::router(api::AppState {
            pool: wiring.pool.clone(),
            definitions: wiring.definitions.clone(),
            keyring: wiring.keyring.clone(),
            metrics: render.filter(|_| settings.metrics_on_api),
            max_amount_agorot: settings.max_amount_agorot,
        });
        let stop = shutdown.clone();
        tasks.push((
            "the API server",
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await?;
                Ok(())
            }),
        ));
    }
    if run_workers {
        // One apalis worker polls its runs in flight on one task, so a process runs one worker
        // per core, sharing the configured concurrency, to use every core.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let loops = cores.min(settings.worker_concurrency).max(1);
        for n in 0..loops {
            let worker = engine::Worker::new(
                wiring.pool.clone(),
                wiring.registry.clone(),
                wiring.definitions.clone(),
                engine::WorkerConfig {
                    concurrency: settings.worker_concurrency / loops
                        + usize::from(n < settings.worker_concurrency % loops),
                    grace_period: settings.shutdown_grace,
                    lease_duration: settings.worker_lease,
                    ..engine::WorkerConfig::default()
                },
            )?;
            let stop = shutdown.clone();
            tasks.push((
                "a worker",
                tokio::spawn(async move { Ok(worker.run(stop).await?) }),
            ));
        }
        let scheduler = engine::Scheduler::new(
            wiring.pool.clone(),
            engine::SchedulerConfig {
                retention: Some(settings.retention.clone()),
                ..engine::SchedulerConfig::default()
            },
        );
        let stop = shutdown.clone();
        tasks.push((
            "the scheduler",
            tokio::spawn(async move { Ok(scheduler.run(stop).await?) }),
        ));
        let relay = webhooks::Relay::new(
            wiring.pool.clone(),
            wiring.keyring.clone(),
            webhooks::RelayConfig {
                egress: if settings.webhooks_allow_private {
                    webhooks::EgressPolicy::Unrestricted
                } else {
                    webhooks::EgressPolicy::PublicHttpsOnly
                },
                ..webhooks::RelayConfig::default()
            },
        )?;
        let stop = shutdown.clone();
        tasks.push((
            "the webhook relay",
            tokio::spawn(async move {
                relay.run(stop).await;
                Ok(())
            }),
        ));
    }

    // Whichever part stops first stops the others; report which one failed.
    let mut failures = Vec::new();
    let waits = tasks.into_iter().map(|(name, task)| {
        let shutdown = shutdown.clone();
        async move {
            let result = task.await;
            shutdown.cancel();
            (name, result)
        }
    });
    for (name, result) in futures::future::join_all(waits).await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(format!("{name} failed: {error:#}")),
            Err(join) => failures.push(format!("{name} stopped: {join}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(failures.join("; "))
    }
}

/// The process's Prometheus recorder: installed at most once (the recorder is global).
static METRICS: OnceLock<PrometheusRecorder> = OnceLock::new();

/// Installs the Prometheus recorder when a setting serves `/metrics` (`VENDORFLOW_METRICS_ON_API`
/// or `VENDORFLOW_METRICS_LISTEN`), with the histogram buckets of each duration metric and the
/// descriptions of every metric; returns it, to render. Without such a setting nothing is
/// installed and every metric call in the libraries stays a no-op.
fn install_metrics(settings: &Settings) -> anyhow::Result<Option<PrometheusRecorder>> {
    if !settings.metrics_on_api && settings.metrics_listen.is_none() {
        return Ok(None);
    }
    if let Some(recorder) = METRICS.get() {
        return Ok(Some(recorder.clone()));
    }
    let recorder = PrometheusRecorder::builder()
        .buckets(
            engine::observability::STEP_DURATION,
            engine::observability::STEP_DURATION_BUCKETS,
        )?
        .buckets(
            providers::observability::PROVIDER_REQUEST_DURATION,
            providers::observability::PROVIDER_REQUEST_BUCKETS,
        )?
        .build();
    metrics::set_global_recorder(recorder.clone())
        .context("installing the Prometheus metrics recorder")?;
    engine::observability::describe();
    providers::observability::describe();
    webhooks::observability::describe();
    api::observability::describe();
    Ok(Some(METRICS.get_or_init(|| recorder).clone()))
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(signal) => signal,
                    Err(_) => {
                        let _result = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _result = ctrl_c.await;
        }
        tracing::info!("shutting down: no new work is claimed; in-flight steps may finish");
        token.cancel();
    });
}

/// Binds the API's address, naming the setting on failure.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("VENDORFLOW_LISTEN: cannot listen on {address}"))
}
