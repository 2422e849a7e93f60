//! `vendorflow chaos`: the chaos proof, run from the repository root (`make chaos`).
//!
//! It starts a production topology on this machine — a durable PostgreSQL cluster of its own
//! (`scripts/pg.sh` with another data folder and port, never the development cluster), `vendorflow
//! api`, three `vendorflow worker` processes and `vendorflow sandbox` as the provider, with faults
//! on (commit-then-drop on organization create, terminal open and charge among them) — then sends
//! onboardings and charges through the HTTP API with idempotency probes, SIGKILLs a random worker
//! every few seconds and restarts it, restarts PostgreSQL once, turns the faults off, waits
//! (bounded) for the runs to settle, and prints what the sandbox's ledger and the database say:
//! duplicates, lost and stuck runs, paused runs with their reasons, the webhook backlog, and
//! canary secrets found in the processes' logs, the webhooks received and a plain `pg_dump`.
//! The exit status is non-zero when a duplicate, an idempotency violation, a lost or stuck run,
//! or a canary is found.
//!
//! This module owns the chaos driver only. It must not change how the engine, the store or the
//! API behave, hold business rules, or print a secret (canaries are named by kind, never shown).
//! Every loop is bounded in count and time, all traffic stays on 127.0.0.1, and every process
//! it starts and its PostgreSQL cluster are stopped on the way out, however the run ends.

mod cluster;
mod processes;
mod provider;
mod receiver;
mod report;
mod traffic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use cluster::Cluster;
use processes::Topology;
use provider::Provider;
use traffic::{Api, Book};

/// Arguments of `chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The short form: fewer runs and kills, about two minutes after the build (CI runs it).
    #[arg(long)]
    pub short: bool,
    /// Seed of the driver's choices (requests, probes, kills) and of the sandbox's faults.
    #[arg(long, default_value_t = 9)]
    pub seed: u64,
    /// Where the run keeps its PostgreSQL cluster, logs and dump (under the repository root).
    #[arg(long, default_value = ".data/chaos")]
    pub dir: PathBuf,
}

/// How much load and chaos a run applies, and its time bounds.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    name: &'static str,
    onboardings: usize,
    charges: usize,
    /// The requests are spread evenly over this long.
    load: Duration,
    /// Workers are killed during this long (from the first request).
    chaos: Duration,
    /// Milliseconds between two kills, drawn from this range.
    kill_gap_ms: (u64, u64),
    max_kills: usize,
    /// When PostgreSQL is restarted (from the first request).
    pg_restart_at: Duration,
    /// How long the system may take to settle once faults are off. A killed worker's runs come
    /// back at lease expiry (60 s), so this must exceed a minute.
    settle: Duration,
    /// The whole run, start-up to report, after which it is abandoned (and cleaned up).
    bound: Duration,
}

impl Profile {
    fn full() -> Profile {
        Profile {
            name: "full",
            onboardings: 250,
            charges: 300,
            load: Duration::from_secs(150),
            chaos: Duration::from_secs(160),
            kill_gap_ms: (2_500, 5_000),
            max_kills: 50,
            pg_restart_at: Duration::from_secs(70),
            settle: Duration::from_secs(240),
            bound: Duration::from_secs(15 * 60),
        }
    }

    fn short() -> Profile {
        Profile {
            name: "short",
            onboardings: 60,
            charges: 60,
            load: Duration::from_secs(40),
            chaos: Duration::from_secs(45),
            kill_gap_ms: (3_000, 5_000),
            max_kills: 10,
            pg_restart_at: Duration::from_secs(20),
            settle: Duration::from_secs(100),
            bound: Duration::from_secs(5 * 60),
        }
    }
}

/// The number of `vendorflow worker` processes.
const WORKERS: usize = 3;

/// Runs the chaos proof and reports; the exit code says whether it found a problem.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let profile = if args.short {
        Profile::short()
    } else {
        Profile::full()
    };
    let root = std::env::current_dir().context("reading the working directory")?;
    if !root.join("scripts/pg.sh").exists() || !root.join("workflows").is_dir() {
        bail!("run `vendorflow chaos` from the repository root (scripts/pg.sh and workflows/)");
    }
    let inside = args.dir.components().all(|part| {
        matches!(
            part,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if args.dir.is_absolute() || args.dir.components().count() == 0 || !inside {
        bail!("--dir: give a folder under the repository root, such as .data/chaos");
    }
    let work = root.join(&args.dir);
    let exe = std::env::current_exe().context("finding the vendorflow executable")?;
    println!(
        "vendorflow chaos ({}): {} onboardings and {} charges over {}s; a worker SIGKILLed every \
         {}-{}s for {}s (at most {}); PostgreSQL restarted once; settle bound {}s",
        profile.name,
        profile.onboardings,
        profile.charges,
        profile.load.as_secs(),
        profile.kill_gap_ms.0 / 1000,
        profile.kill_gap_ms.1.div_ceil(1000),
        profile.chaos.as_secs(),
        profile.max_kills,
        profile.settle.as_secs(),
    );
    println!("  logs, dump and cluster under {}", work.display());

    let started = Instant::now();
    let scenario = scenario(&root, &work, &exe, &profile, args.seed);
    let outcome = tokio::select! {
        result = tokio::time::timeout(profile.bound, scenario) => match result {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow!(
                "the chaos run passed its bound of {}s and was abandoned",
                profile.bound.as_secs()
            )),
        },
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // Leaving `scenario` dropped every process and stopped the cluster, whichever way it ended.
    let report = outcome?;
    print!("{}", report.text);
    println!(
        "chaos run ({}) took {}s",
        profile.name,
        started.elapsed().as_secs()
    );
    if report.failures.is_empty() {
        println!("PASS: no duplicate, idempotency violation, lost or stuck run, or canary");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAIL:");
        for failure in &report.failures {
            println!("  - {failure}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Start-up, load and chaos, settling, and the report. Every process and the cluster live in
/// values whose `Drop` stops them, so an error or an abandoned future leaves nothing running.
async fn scenario(
    root: &Path,
    work: &Path,
    exe: &Path,
    profile: &Profile,
    seed: u64,
) -> anyhow::Result<report::Report> {
    let logs = work.join("logs");
    let workflows = work.join("workflows");
    let dump_path = work.join("dump.sql");
    let cluster = Cluster::new(root, &work.join("pg"), &logs, free_port()?);
    // A previous run's cluster (an interrupted run leaves its data for a look) goes first.
    cluster.reset().await?;
    for old in [&logs, &workflows] {
        if old.exists() {
            std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    let _removed = std::fs::remove_file(&dump_path);
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    cluster.start().await?;
    let url = cluster.url();
    let pool = store::connect(&url, 4)
        .await
        .context("connecting to the chaos cluster")?;
    store::migrate(&pool)
        .await
        .context("migrating the chaos database")?;
    fast_workflows(&root.join("workflows"), &workflows)?;

    // The marketplace, its backend token and its webhook endpoint, as `marketplaces create`,
    // `tokens create` and `webhooks create` make them.
    let master_key = store::secrets::MasterKey::generate().to_base64();
    let keyring = store::secrets::Keyring::from_config(master_key.expose_secret(), None)?;
    let mut tasks = tokio::task::JoinSet::new();
    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the webhook receiver")?;
    let receiver_url = format!("http://{}/hooks", receiver_listener.local_addr()?);
    let mut conn = pool.acquire().await?;
    let marketplace = store::marketplaces::insert(&mut conn, "Chaos marketplace").await?;
    let token = store::tokens::create(
        &mut conn,
        marketplace.id,
        store::tokens::Role::Backend,
        "chaos",
    )
    .await?
    .token;
    let endpoint =
        store::webhooks::create_endpoint(&mut conn, &keyring, marketplace.id, &receiver_url, None)
            .await
            .context("registering the webhook receiver")?;
    drop(conn);
    let received = receiver::start(receiver_listener, &endpoint.secret, &mut tasks)?;

    // The processes.
    let sandbox_port = free_port()?;
    let api_port = free_port()?;
    let topology = Topology::start(processes::Plan {
        exe: exe.to_owned(),
        root: root.to_owned(),
        logs: logs.clone(),
        database_url: url.clone(),
        master_key: master_key.clone(),
        workflows: workflows.clone(),
        sandbox_port,
        api_port,
        workers: WORKERS,
        seed,
    })
    .await?;
    let provider = Provider::new(&format!("http://127.0.0.1:{sandbox_port}"))?;
    provider.set_faults(&provider::fault_plan()).await?;
    let api = Api::new(&format!("http://127.0.0.1:{api_port}"), token.clone())?;
    println!(
        "  started: PostgreSQL on 127.0.0.1:{}, sandbox on :{sandbox_port} (faults on), API on \
         :{api_port}, {WORKERS} workers",
        cluster.port()
    );

    // Load and chaos, then settling; the acquirer and the supervisor run until settled.
    let topology = tokio::sync::Mutex::new(topology);
    let book = Mutex::new(Book::default());
    let background = CancellationToken::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let traffic_rng = StdRng::seed_from_u64(rng.random());
    let chaos_rng = StdRng::seed_from_u64(rng.random());
    let load_and_settle = async {
        let load_started = Instant::now();
        let load_done = CancellationToken::new();
        let (((), chaos), max_lease_expired) = tokio::join!(
            async {
                let done = tokio::join!(
                    traffic::send(&api, profile, traffic_rng, &book),
                    chaos(&topology, &cluster, profile, chaos_rng),
                );
                load_done.cancel();
                done
            },
            watch_leases(&pool, &load_done),
        );
        let load_took = load_started.elapsed();
        provider
            .clear_faults()
            .await
            .context("turning the sandbox's faults off")?;
        println!(
            "  load and chaos done in {}s ({} kills, PostgreSQL restarted {}); faults off; settling",
            load_took.as_secs(),
            chaos.kills,
            if chaos.pg_restarted { "once" } else { "never" }
        );
        let mut settled = settle(&pool, profile.settle).await;
        settled.max_lease_expired = settled.max_lease_expired.max(max_lease_expired);
        background.cancel();
        anyhow::Ok((chaos, settled))
    };
    let (outcome, acquirer, supervisor) = tokio::join!(
        load_and_settle,
        traffic::approve_terminals(&api, &background, profile.bound),
        supervise(&topology, &background, profile.bound),
    );
    let (chaos, settled) = outcome?;

    // What the provider and the database say, then the dump, then everything stops.
    let ledger = provider.ledger().await.context("reading the ledger")?;
    let mut canaries = report::Canaries::default();
    canaries.add("the master key", master_key.expose_secret());
    canaries.add("the backend token", token.expose_secret());
    canaries.add(
        "the webhook signing secret",
        endpoint.secret.expose_secret(),
    );
    canaries.add(
        "the marketplace's provider API key",
        sandbox::DEV_MARKETPLACE_API_KEY,
    );
    for company in ledger
        .companies
        .iter()
        .filter(|c| c.created_by == Some(sandbox::DEV_MARKETPLACE_COMPANY_ID))
    {
        let keys = provider.keys(company.company_id).await?;
        canaries.add("a vendor's provider API key", &keys.api_key);
        canaries.add("a vendor's provider public key", &keys.api_public_key);
    }
    let book = book.into_inner().unwrap_or_else(|p| p.into_inner());
    for account in &book.bank_accounts {
        canaries.add_number("a vendor's bank account number", account);
    }
    let database = report::Database::read(&pool, marketplace.id, &book).await?;
    pool.close().await;
    cluster.dump(&dump_path).await?;
    let mut topology = topology.into_inner();
    topology.stop().await;
    cluster.stop().await?;
    tasks.shutdown().await;

    let mut places = topology.service_logs();
    places.push(dump_path.clone());
    let searched_files = places.len();
    let received = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let found = canaries.search(&places, &received.bodies)?;
    Ok(report::render(&report::Inputs {
        profile,
        book: &book,
        chaos: &chaos,
        acquirer: &acquirer,
        supervisor: &supervisor,
        settled: &settled,
        ledger: &ledger,
        database: &database,
        received: &received,
        canaries: &canaries,
        found: &found,
        searched_files,
        worker_starts: topology.worker_starts(),
    }))
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Copies the shipped workflow definitions into `to` with their backoffs shortened (first retry
/// after 200 ms, none longer than 2 s), so that runs retried under faults finish within the run's
/// minutes. Steps, timeouts, retry budgets and what happens on exhaustion stay as shipped.
fn fast_workflows(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)?;
            let text = set_all(
                &set_all(&text, "initial_backoff", "200ms"),
                "max_backoff",
                "2s",
            );
            let name = path.file_name().context("a workflow file without a name")?;
            std::fs::write(to.join(name), text)?;
        }
    }
    Ok(())
}

/// `text` with the quoted value of every `key = "…"` replaced by `value`.
fn set_all(text: &str, key: &str, value: &str) -> String {
    let pattern = format!("{key} = \"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&pattern) {
        out.push_str(&rest[..at + pattern.len()]);
        rest = &rest[at + pattern.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str(value);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// What the chaos schedule did.
#[derive(Debug, Default)]
pub(crate) struct ChaosReport {
    pub kills: usize,
    pub pg_restarted: bool,
    /// How long PostgreSQL was down.
    pub pg_down: Duration,
    /// Chaos actions that could not be carried out (a kill or restart that failed).
    pub errors: Vec<String>,
}

/// Kills a random worker every few seconds during the chaos window and restarts it after a
/// short pause, and restarts PostgreSQL once (fast stop, then start).
async fn chaos(
    topology: &tokio::sync::Mutex<Topology>,
    cluster: &Cluster,
    profile: &Profile,
    mut rng: StdRng,
) -> ChaosReport {
    let started = Instant::now();
    let mut report = ChaosReport::default();
    while started.elapsed() < profile.chaos && report.kills < profile.max_kills {
        let gap = rng.random_range(profile.kill_gap_ms.0..=profile.kill_gap_ms.1);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        if !report.pg_restarted && started.elapsed() >= profile.pg_restart_at {
            restart_postgres(cluster, &mut report).await;
            continue;
        }
        let worker = rng.random_range(0..WORKERS);
        let pause = Duration::from_millis(rng.random_range(200..=1_500));
        let mut topology = topology.lock().await;
        match topology.kill_worker(worker).await {
            Ok(()) => report.kills += 1,
            Err(error) => report.errors.push(format!("{error:#}")),
        }
        tokio::time::sleep(pause).await;
        if let Err(error) = topology.restart_worker(worker) {
            report.errors.push(format!("{error:#}"));
        }
    }
    if !report.pg_restarted {
        restart_postgres(cluster, &mut report).await;
    }
    report
}

async fn restart_postgres(cluster: &Cluster, report: &mut ChaosReport) {
    report.pg_restarted = true;
    match cluster.restart(Duration::from_secs(2)).await {
        Ok(down) => report.pg_down = down,
        Err(error) => report.errors.push(format!("{error:#}")),
    }
}

/// What the supervisor saw: services that exited without being killed, and were restarted.
#[derive(Debug, Default)]
pub(crate) struct SupervisorReport {
    pub unexpected_exits: Vec<String>,
}

/// Restarts any service that exited on its own (at most 100 times), once a second, until
/// `stop` is cancelled or `bound` has passed.
async fn supervise(
    topology: &tokio::sync::Mutex<Topology>,
    stop: &CancellationToken,
    bound: Duration,
) -> SupervisorReport {
    let started = Instant::now();
    let mut report = SupervisorReport::default();
    while !stop.is_cancelled() && started.elapsed() < bound {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if report.unexpected_exits.len() >= 100 {
            continue;
        }
        let exits = topology.lock().await.revive();
        report.unexpected_exits.extend(exits);
    }
    report
}

/// The most runs seen `running` with a lease expired more than 10 s earlier, looking every two
/// seconds until `done` (a look that fails, as while PostgreSQL restarts, is skipped).
async fn watch_leases(pool: &sqlx::PgPool, done: &CancellationToken) -> i64 {
    let mut most = 0;
    loop {
        tokio::select! {
            () = done.cancelled() => return most,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        if let Ok(backlog) = report::Backlog::read(pool).await {
            most = most.max(backlog.lease_expired);
        }
    }
}

/// Where the runs stood when settling ended.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub took: Duration,
    pub settled: bool,
    pub last: report::Backlog,
    /// The most runs seen `running` with a lease expired more than 10 s earlier, at any look.
    pub max_lease_expired: i64,
}

/// Waits, looking once a second for at most `bound`, until no run is pending or running, no
/// waiting run has a signal it has not consumed, no charge waits for a vendor that is ready,
/// and the webhook backlog is empty.
async fn settle(pool: &sqlx::PgPool, bound: Duration) -> Settled {
    let started = Instant::now();
    let mut settled = Settled::default();
    loop {
        match report::Backlog::read(pool).await {
            Ok(backlog) => {
                settled.max_lease_expired = settled.max_lease_expired.max(backlog.lease_expired);
                settled.settled = backlog.is_empty();
                settled.last = backlog;
            }
            Err(error) => tracing::warn!(error = %error, "reading the backlog"),
        }
        if settled.settled || started.elapsed() >= bound {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    settled.took = started.elapsed();
    settled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoffs_are_shortened_and_nothing_else_changes() {
        let text = "retry = { max_attempts = 8, initial_backoff = \"2s\", max_backoff = \"10m\" }\n\
                    timeout = \"30s\"\n";
        let fast = set_all(
            &set_all(text, "initial_backoff", "200ms"),
            "max_backoff",
            "2s",
        );
        assert_eq!(
            fast,
            "retry = { max_attempts = 8, initial_backoff = \"200ms\", max_backoff = \"2s\" }\n\
             timeout = \"30s\"\n"
        );
    }

    #[test]
    fn the_short_form_settles_past_a_lease() {
        for profile in [Profile::short(), Profile::full()] {
            assert!(profile.settle > Duration::from_secs(60), "{}", profile.name);
            assert!(profile.pg_restart_at < profile.chaos, "{}", profile.name);
            assert!(
                profile.load + profile.settle + Duration::from_secs(60) < profile.bound,
                "{}",
                profile.name
            );
        }
    }
}
