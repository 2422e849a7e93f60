//! PostgreSQL access for vendorflow, through sqlx: one documented function per statement.
//!
//! This crate owns the `vendorflow` schema's queries: marketplaces, vendors, API tokens, runs and
//! their order keys, attempts, history, outbox, idempotency keys, encrypted secrets, webhook
//! delivery state, provider records and the admin's tables, with the retention statements of the
//! growing ones; and opening the pool, waiting for PostgreSQL when a long-running process asks to.
//! It must not call providers or other services, must not decide workflow logic (that is the
//! engine's), and must never log or return secret values in clear text.

pub mod admin;
pub mod attempts;
pub mod history;
pub mod idempotency;
pub mod marketplaces;
pub mod observability;
pub mod order_keys;
pub mod outbox;
pub mod provider_records;
pub mod run_queries;
pub mod runs;
pub mod secrets;
pub mod signals;
pub mod tokens;
pub mod vendors;
pub mod webhooks;

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

/// The migrations under `/migrations`, embedded in the binary so `vendorflow migrate` needs no files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of this crate. Database errors keep their source for logging; they are never shown to
/// API clients as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database answered with an error, or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that must exist was not found.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated (the name of the constraint).
    #[error("conflict on {0}")]
    Conflict(String),
    /// PostgreSQL did not answer within the time [`connect_waiting`] was allowed to wait.
    #[error("PostgreSQL was not reachable after {tries} tries over {waited:?}")]
    GaveUp {
        /// Connection attempts made.
        tries: u32,
        /// How long they took.
        waited: Duration,
        /// The last attempt's error.
        #[source]
        last: sqlx::Error,
    },
}

impl StoreError {
    /// Maps a unique violation to [`StoreError::Conflict`] naming its constraint, and any other
    /// error to [`StoreError::Database`].
    pub fn from_insert(error: sqlx::Error) -> Self {
        if let Some(db) = error.as_database_error()
            && db.is_unique_violation()
        {
            return StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned());
        }
        StoreError::Database(error)
    }
}

/// Opens a pool to `database_url` with at most `max_connections` connections.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(database_url)
        .await?;
    Ok(pool)
}

/// How a long-running process waits for PostgreSQL at start-up: capped exponential backoff
/// between connection attempts, forever or for a bounded time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRetry {
    /// The pause after the first failed attempt; each later pause doubles it.
    pub first_delay: Duration,
    /// The longest pause between two attempts.
    pub max_delay: Duration,
    /// Give up once this long has passed since the first attempt; `None` waits forever.
    pub give_up_after: Option<Duration>,
}

impl Default for ConnectRetry {
    /// 0.5 s doubling to 10 s, forever.
    fn default() -> Self {
        ConnectRetry {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            give_up_after: None,
        }
    }
}

impl ConnectRetry {
    /// The pause after failed attempt number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// How long one connection attempt of [`connect_waiting`] may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a failed connection attempt is worth repeating: the server is unreachable, starting
/// up, shutting down or out of connections. Anything else (a refused password, a missing database,
/// a bad URL or TLS setting) will not fix itself and is returned at once.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot
            // connect now (starting up); 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Opens a pool like [`connect`], but first waits for PostgreSQL to answer, for long-running
/// processes started while the database is down or still starting: each failed attempt is
/// logged (a warning with the attempt number, the pause before the next and the error, never the
/// URL) and followed by a pause from `retry`. Errors that will not fix themselves are returned at
/// once; [`StoreError::GaveUp`] when `retry.give_up_after` has passed.
pub async fn connect_waiting(
    database_url: &str,
    max_connections: u32,
    retry: ConnectRetry,
) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = database_url.parse()?;
    let started = Instant::now();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, async {
            let probe = PgConnection::connect_with(&options).await?;
            let _closed = probe.close().await;
            PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
        })
        .await
        {
            Ok(Ok(pool)) => {
                if tries > 1 {
                    tracing::info!(
                        tries,
                        waited_ms = millis(started.elapsed()),
                        "PostgreSQL is reachable; carrying on"
                    );
                }
                return Ok(pool);
            }
            Ok(Err(error)) if !is_transient(&error) => return Err(error.into()),
            Ok(Err(error)) => error,
            Err(_elapsed) => sqlx::Error::PoolTimedOut,
        };
        let waited = started.elapsed();
        let mut delay = retry.delay(tries);
        if let Some(limit) = retry.give_up_after {
            if waited >= limit {
                return Err(StoreError::GaveUp {
                    tries,
                    waited,
                    last: error,
                });
            }
            delay = delay.min(limit - waited);
        }
        tracing::warn!(
            attempt = tries,
            retry_in_ms = millis(delay),
            host = options.get_host(),
            port = options.get_port(),
            error = %error,
            "PostgreSQL is not reachable yet; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Applies every migration not yet applied.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_between_attempts_doubles_up_to_its_cap() {
        let retry = ConnectRetry::default();
        let pauses: Vec<u128> = (1..=8).map(|n| retry.delay(n).as_millis()).collect();
        assert_eq!(
            pauses,
            [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
        assert_eq!(retry.delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn only_an_unreachable_or_starting_server_is_worth_another_try() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&sqlx::Error::Io(refused)));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::Configuration("bad url".into())));
    }
}
