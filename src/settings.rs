//! One typed settings struct, read from an optional TOML file and then `VENDORFLOW_*` environment
//! variables (the environment wins). A missing or bad value fails at start-up naming the variable.
//!
//! This is the only module of vendorflow that reads configuration or the environment; every other
//! part receives the values it needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::SecretString;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "human" | "text" | "pretty" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected `human` or `json`, got `{other}`")),
        }
    }
}

/// Everything vendorflow can be configured with.
#[derive(Debug)]
pub struct Settings {
    /// The PostgreSQL URL (`VENDORFLOW_DATABASE_URL`, or `DATABASE_URL`). It may hold a password,
    /// so it is a secret. `None` lets `vendorflow dev` start the local cluster.
    pub database_url: Option<SecretString>,
    /// Maximum database connections of this process (`VENDORFLOW_DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// How long `serve`, `api`, `worker` and `dev` wait for PostgreSQL at start-up, retrying
    /// with capped exponential backoff (`VENDORFLOW_DATABASE_WAIT`: a duration, or `forever`, the
    /// default); `None` waits forever. One-shot commands never wait.
    pub database_wait: Option<Duration>,
    /// Whether the database is the checkout's development cluster (`make run`'s), so its
    /// development master key belongs to it. Not configured: set by `local::complete`.
    pub development_database: bool,
    /// Where the HTTP API listens (`VENDORFLOW_LISTEN`).
    pub listen: SocketAddr,
    /// Whether `VENDORFLOW_LISTEN` (or the file's `listen`) was given, rather than the default.
    pub listen_is_set: bool,
    /// Log format (`VENDORFLOW_LOG_FORMAT`: `human` or `json`).
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (`VENDORFLOW_LOG`, e.g. `info,vendorflow=debug`).
    pub log_filter: String,
    /// Whether `VENDORFLOW_LOG` (or the file's `log`) was given, rather than the default filter.
    pub log_filter_is_set: bool,
    /// The provider's base URL (`VENDORFLOW_PROVIDER_URL`); `None` in `dev` starts the sandbox.
    pub provider_url: Option<String>,
    /// The marketplace's own SUMIT CompanyID (`VENDORFLOW_PROVIDER_COMPANY_ID`).
    pub provider_company_id: Option<i64>,
    /// The marketplace's own SUMIT API key (`VENDORFLOW_PROVIDER_API_KEY`).
    pub provider_api_key: Option<SecretString>,
    /// The master key that wraps data keys of encrypted secrets (`VENDORFLOW_MASTER_KEY`, base64 of 32 bytes).
    pub master_key: Option<SecretString>,
    /// Older master keys still accepted for reading until `keys rotate` has run
    /// (`VENDORFLOW_PREVIOUS_MASTER_KEYS`, comma-separated).
    pub previous_master_keys: Option<SecretString>,
    /// How long one provider request may take (`VENDORFLOW_PROVIDER_TIMEOUT`, e.g. `30s`); past it
    /// a mutating call has an unknown outcome and is reconciled.
    pub provider_timeout: Duration,
    /// Whether the provider is the sandbox, whose documented extensions may then be used
    /// (`VENDORFLOW_PROVIDER_SANDBOX_EXTENSIONS`, `true`/`false`; `dev` sets it).
    pub provider_sandbox_extensions: bool,
    /// Whether webhooks may go to private and loopback addresses
    /// (`VENDORFLOW_WEBHOOKS_ALLOW_PRIVATE`; off in production as an SSRF defence, on in `dev`).
    pub webhooks_allow_private: bool,
    /// How many steps one process runs at once, shared by its worker loops, one per core
    /// (`VENDORFLOW_WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// How long in-flight steps may finish after SIGTERM (`VENDORFLOW_SHUTDOWN_GRACE`, e.g. `30s`).
    pub shutdown_grace: Duration,
    /// How long a worker's claim on a run lasts without a heartbeat (`VENDORFLOW_WORKER_LEASE`,
    /// at least `1s`): a dead worker's runs are rescued this long after its last heartbeat.
    pub worker_lease: Duration,
    /// The folder of workflow definitions (`VENDORFLOW_WORKFLOWS_DIR`).
    pub workflows_dir: PathBuf,
    /// A bearer token for the commands that call a running instance over HTTP, such as
    /// `vendorflow demo` (`VENDORFLOW_TOKEN`; `--token` wins).
    pub api_token: Option<SecretString>,
    /// Who is at the command line, recorded as the actor of operators' actions taken with the
    /// CLI when `--actor` is not given (the operating system's `USER`, or `LOGNAME`).
    pub os_user: Option<String>,
    /// Serve `GET /metrics` (Prometheus, no token) on the API's own port
    /// (`VENDORFLOW_METRICS_ON_API`, `true`/`false`, default off: put the port behind a proxy
    /// that keeps `/metrics` internal before turning it on).
    pub metrics_on_api: bool,
    /// Serve `GET /metrics` (and nothing else, no token) on this separate address, meant for an
    /// internal interface; the only way to scrape a `worker` process (`VENDORFLOW_METRICS_LISTEN`,
    /// e.g. `10.0.0.5:9464`; unset by default).
    pub metrics_listen: Option<SocketAddr>,
    /// The scheduler's retention jobs: for each, how long rows are kept and how often the job
    /// runs (`VENDORFLOW_RETENTION_<JOB>_KEEP` and `VENDORFLOW_RETENTION_<JOB>_EVERY`, where
    /// `<JOB>` is `FINISHED_RUNS`, `IDEMPOTENCY_KEYS`, `WEBHOOK_DELIVERIES` or `OUTBOX`).
    pub retention: engine::RetentionPolicy,
    /// The most one charge or document may be for, and each of its lines, in agorot
    /// (`VENDORFLOW_MAX_AMOUNT_AGOROT`, at least 1; default 1000000000, ₪10,000,000).
    pub max_amount_agorot: i64,
}

/// The shortest time idempotency keys may be kept: the API promises a replay for a day.
const MIN_IDEMPOTENCY_KEEP: Duration = Duration::from_secs(86_400);

/// Where values come from: the file's flat table, then the environment.
struct Sources {
    file: BTreeMap<String, toml::Value>,
    file_path: Option<PathBuf>,
    env: BTreeMap<String, String>,
}

impl Sources {
    /// The raw value of `key` (the environment variable `VENDORFLOW_<KEY>` or the file's `key`),
    /// with the name to blame if it is bad.
    fn raw(&self, key: &str) -> Option<(String, String)> {
        let variable = format!("VENDORFLOW_{}", key.to_ascii_uppercase());
        if let Some(value) = self.env.get(&variable) {
            return Some((value.clone(), variable));
        }
        let value = self.file.get(key)?;
        let text = match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            _ => String::from("<a table, array or date>"),
        };
        let file = self
            .file_path
            .as_deref()
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        Some((text, format!("`{key}` in {file}")))
    }

    fn parse<T: FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(key) {
            None => Ok(None),
            Some((text, origin)) => match text.trim().parse::<T>() {
                Ok(value) => Ok(Some(value)),
                Err(error) => bail!("{origin} has a bad value: {error}"),
            },
        }
    }

    /// The rule of retention job `job`: `retention_<job>_keep` and `retention_<job>_every`, each
    /// more than zero, or the defaults of `default`.
    fn retention_rule(
        &self,
        job: engine::RetentionJob,
        default: engine::RetentionRule,
    ) -> anyhow::Result<engine::RetentionRule> {
        let mut rule = default;
        for (suffix, slot) in [("keep", &mut rule.keep_for), ("every", &mut rule.every)] {
            let key = format!("retention_{}_{suffix}", job.name());
            if let Some(value) = self.duration(&key)? {
                if value.is_zero() {
                    let (_, origin) = self.raw(&key).unwrap_or_default();
                    bail!("{origin} must be more than zero");
                }
                *slot = value;
            }
        }
        Ok(rule)
    }

    /// The retention policy: each job's rule, from the defaults of [`engine::RetentionPolicy`].
    fn retention(&self) -> anyhow::Result<engine::RetentionPolicy> {
        use engine::RetentionJob;
        let defaults = engine::RetentionPolicy::default();
        let rule = |job| self.retention_rule(job, defaults.rule(job));
        let policy = engine::RetentionPolicy {
            finished_runs: rule(RetentionJob::FinishedRuns)?,
            idempotency_keys: rule(RetentionJob::IdempotencyKeys)?,
            webhook_deliveries: rule(RetentionJob::WebhookDeliveries)?,
            outbox: rule(RetentionJob::Outbox)?,
        };
        if policy.idempotency_keys.keep_for < MIN_IDEMPOTENCY_KEEP {
            bail!(
                "VENDORFLOW_RETENTION_IDEMPOTENCY_KEYS_KEEP must be at least 24h: the API promises \
                 to replay an idempotent request for a day"
            );
        }
        Ok(policy)
    }

    /// `forever` (`None`) or a duration.
    fn wait(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        match self.raw(key) {
            Some((text, _)) if text.trim() == "forever" => Ok(None),
            _ => self.duration(key),
        }
    }

    fn duration(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        match self.raw(key) {
            None => Ok(None),
            Some((text, origin)) => parse_duration(text.trim())
                .map(Some)
                .with_context(|| format!("{origin} has a bad value `{text}`")),
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `90d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .context("expected a number followed by ms, s, m, h or d")?;
    Ok(match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        other => bail!("unknown unit `{other}`: use ms, s, m, h or d"),
    })
}

impl Settings {
    /// Reads the settings from the process environment and the file named by
    /// `VENDORFLOW_CONFIG` (or `vendorflow.toml` in the working directory, if present).
    pub fn load() -> anyhow::Result<Settings> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Settings::from_env_map(env)
    }

    /// Reads the settings from `env` (a copy of the environment) and the file it names.
    pub fn from_env_map(env: BTreeMap<String, String>) -> anyhow::Result<Settings> {
        let file_path = match env.get("VENDORFLOW_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None if Path::new("vendorflow.toml").exists() => Some(PathBuf::from("vendorflow.toml")),
            None => None,
        };
        let file = match &file_path {
            None => BTreeMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "VENDORFLOW_CONFIG: cannot read the settings file {}",
                        path.display()
                    )
                })?;
                let table: toml::Table = toml::from_str(&text)
                    .with_context(|| format!("{} is not valid TOML", path.display()))?;
                table.into_iter().collect()
            }
        };
        let sources = Sources {
            file,
            file_path,
            env,
        };

        let database_url = sources
            .raw("database_url")
            .map(|(text, _)| text)
            .or_else(|| sources.env.get("DATABASE_URL").cloned())
            .filter(|url| !url.trim().is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!("VENDORFLOW_DATABASE_URL (or DATABASE_URL) must start with postgres://");
        }

        let provider_url: Option<String> = sources.parse("provider_url")?;
        if let Some(url) = &provider_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("VENDORFLOW_PROVIDER_URL must start with http:// or https://");
        }

        let worker_concurrency = sources.parse("worker_concurrency")?.unwrap_or(16);
        if worker_concurrency == 0 {
            bail!("VENDORFLOW_WORKER_CONCURRENCY must be at least 1");
        }

        let worker_lease = sources
            .duration("worker_lease")?
            .unwrap_or(Duration::from_secs(60));
        if worker_lease < Duration::from_secs(1) {
            bail!("VENDORFLOW_WORKER_LEASE must be at least 1s");
        }

        let max_amount_agorot = sources
            .parse("max_amount_agorot")?
            .unwrap_or(domain::orders::DEFAULT_MAX_AMOUNT_AGOROT);
        if max_amount_agorot < 1 {
            bail!("VENDORFLOW_MAX_AMOUNT_AGOROT must be at least 1");
        }

        Ok(Settings {
            max_amount_agorot,
            database_url: database_url.map(SecretString::from),
            database_max_connections: sources.parse("database_max_connections")?.unwrap_or(20),
            database_wait: sources.wait("database_wait")?,
            development_database: false,
            listen_is_set: sources.raw("listen").is_some(),
            listen: sources
                .parse("listen")?
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            log_format: sources.parse("log_format")?.unwrap_or(LogFormat::Human),
            log_filter_is_set: sources.raw("log").is_some(),
            log_filter: sources
                .parse("log")?
                .unwrap_or_else(|| "info,sqlx=warn".to_owned()),
            provider_url,
            provider_company_id: sources.parse("provider_company_id")?,
            provider_api_key: sources
                .raw("provider_api_key")
                .map(|(text, _)| SecretString::from(text)),
            master_key: sources
                .raw("master_key")
                .map(|(text, _)| SecretString::from(text)),
            previous_master_keys: sources
                .raw("previous_master_keys")
                .map(|(text, _)| SecretString::from(text)),
            provider_timeout: sources
                .duration("provider_timeout")?
                .unwrap_or(Duration::from_secs(30)),
            provider_sandbox_extensions: sources
                .parse("provider_sandbox_extensions")?
                .unwrap_or(false),
            webhooks_allow_private: sources.parse("webhooks_allow_private")?.unwrap_or(false),
            worker_concurrency,
            worker_lease,
            shutdown_grace: sources
                .duration("shutdown_grace")?
                .unwrap_or(Duration::from_secs(30)),
            workflows_dir: sources
                .parse("workflows_dir")?
                .unwrap_or_else(|| PathBuf::from("workflows")),
            api_token: sources
                .raw("token")
                .map(|(text, _)| text.trim().to_owned())
                .filter(|token| !token.is_empty())
                .map(SecretString::from),
            os_user: ["USER", "LOGNAME"]
                .iter()
                .filter_map(|name| sources.env.get(*name))
                .map(|user| user.trim().to_owned())
                .find(|user| !user.is_empty()),
            metrics_on_api: sources.parse("metrics_on_api")?.unwrap_or(false),
            metrics_listen: sources.parse("metrics_listen")?,
            retention: sources.retention()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::from_env_map(env(&[])).unwrap();
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(settings.log_format, LogFormat::Human);
        assert!(settings.database_url.is_none());
        assert!(!settings.metrics_on_api);
        assert!(settings.metrics_listen.is_none());
    }

    #[test]
    fn the_amount_ceiling_defaults_to_ten_million_shekels_and_must_be_positive() {
        let settings = Settings::from_env_map(env(&[])).unwrap();
        assert_eq!(settings.max_amount_agorot, 1_000_000_000);
        let settings =
            Settings::from_env_map(env(&[("VENDORFLOW_MAX_AMOUNT_AGOROT", "500000")])).unwrap();
        assert_eq!(settings.max_amount_agorot, 500_000);
        for bad in ["0", "-1", "ten"] {
            let error = Settings::from_env_map(env(&[("VENDORFLOW_MAX_AMOUNT_AGOROT", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("VENDORFLOW_MAX_AMOUNT_AGOROT"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = Settings::from_env_map(env(&[("VENDORFLOW_LISTEN", "not-an-address")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VENDORFLOW_LISTEN"), "{error}");

        let error = Settings::from_env_map(env(&[("VENDORFLOW_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VENDORFLOW_LOG_FORMAT"), "{error}");

        let error = Settings::from_env_map(env(&[("VENDORFLOW_SHUTDOWN_GRACE", "5 parsecs")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VENDORFLOW_SHUTDOWN_GRACE"), "{error}");

        let error = Settings::from_env_map(env(&[("VENDORFLOW_METRICS_LISTEN", "everywhere")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VENDORFLOW_METRICS_LISTEN"), "{error}");

        let error = Settings::from_env_map(env(&[("DATABASE_URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("vendorflow-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vendorflow.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nworker_concurrency = 4\n",
        )
        .unwrap();
        let settings = Settings::from_env_map(env(&[
            ("VENDORFLOW_CONFIG", path.to_str().unwrap()),
            ("VENDORFLOW_WORKER_CONCURRENCY", "8"),
        ]))
        .unwrap();
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(settings.worker_concurrency, 8);

        std::fs::write(&path, "worker_concurrency = \"many\"\n").unwrap();
        let error = Settings::from_env_map(env(&[("VENDORFLOW_CONFIG", path.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("worker_concurrency"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = Settings::from_env_map(env(&[
            ("VENDORFLOW_PROVIDER_API_KEY", "canary-key-8d1f"),
            ("VENDORFLOW_MASTER_KEY", "canary-master-77"),
            ("DATABASE_URL", "postgres://u:canary-password@h/db"),
            ("VENDORFLOW_TOKEN", "canary-token-5e2a"),
        ]))
        .unwrap();
        let shown = format!("{settings:?}");
        for canary in [
            "canary-key-8d1f",
            "canary-master-77",
            "canary-password",
            "canary-token-5e2a",
        ] {
            assert!(!shown.contains(canary), "{canary} leaked: {shown}");
        }
    }

    #[test]
    fn the_cli_actor_comes_from_the_os_user_and_the_token_from_its_variable() {
        let settings = Settings::from_env_map(env(&[
            ("LOGNAME", "dana"),
            ("VENDORFLOW_TOKEN", " vf_backend_x "),
        ]))
        .unwrap();
        assert_eq!(settings.os_user.as_deref(), Some("dana"));
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(settings.api_token.as_ref().unwrap()),
            "vf_backend_x"
        );
        let settings =
            Settings::from_env_map(env(&[("USER", "avi"), ("LOGNAME", "dana")])).unwrap();
        assert_eq!(settings.os_user.as_deref(), Some("avi"));
        assert!(Settings::from_env_map(env(&[])).unwrap().os_user.is_none());
    }

    #[test]
    fn each_retention_job_has_its_own_age_and_period() {
        let defaults = Settings::from_env_map(env(&[])).unwrap();
        assert_eq!(defaults.retention, engine::RetentionPolicy::default());

        let settings = Settings::from_env_map(env(&[
            ("VENDORFLOW_RETENTION_OUTBOX_KEEP", "3d"),
            ("VENDORFLOW_RETENTION_OUTBOX_EVERY", "10m"),
            ("VENDORFLOW_RETENTION_FINISHED_RUNS_KEEP", "365d"),
            ("VENDORFLOW_RETENTION_IDEMPOTENCY_KEYS_KEEP", "48h"),
            ("VENDORFLOW_RETENTION_WEBHOOK_DELIVERIES_EVERY", "2h"),
        ]))
        .unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(settings.retention.outbox.keep_for, 3 * day);
        assert_eq!(settings.retention.outbox.every, Duration::from_secs(600));
        assert_eq!(settings.retention.finished_runs.keep_for, 365 * day);
        assert_eq!(settings.retention.idempotency_keys.keep_for, 2 * day);
        assert_eq!(
            settings.retention.webhook_deliveries.every,
            Duration::from_secs(7200)
        );
        assert_eq!(
            settings.retention.webhook_deliveries.keep_for,
            engine::RetentionPolicy::default()
                .webhook_deliveries
                .keep_for
        );

        for (variable, value) in [
            ("VENDORFLOW_RETENTION_OUTBOX_KEEP", "0s"),
            ("VENDORFLOW_RETENTION_FINISHED_RUNS_EVERY", "soon"),
            ("VENDORFLOW_RETENTION_IDEMPOTENCY_KEYS_KEEP", "1h"),
        ] {
            let error = Settings::from_env_map(env(&[(variable, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(variable), "{variable}: {error}");
        }
    }

    #[test]
    fn the_database_wait_is_forever_unless_a_duration_bounds_it() {
        assert!(
            Settings::from_env_map(env(&[]))
                .unwrap()
                .database_wait
                .is_none()
        );
        let forever =
            Settings::from_env_map(env(&[("VENDORFLOW_DATABASE_WAIT", "forever")])).unwrap();
        assert!(forever.database_wait.is_none());
        let bounded = Settings::from_env_map(env(&[("VENDORFLOW_DATABASE_WAIT", "2m")])).unwrap();
        assert_eq!(bounded.database_wait, Some(Duration::from_secs(120)));
        let error = Settings::from_env_map(env(&[("VENDORFLOW_DATABASE_WAIT", "always")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VENDORFLOW_DATABASE_WAIT"), "{error}");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1w").is_err());
    }
}
