//! PostgreSQL access for vendorflow, through sqlx: one documented function per statement.
//!
//! This crate owns the `vendorflow` schema's queries: marketplaces, vendors, API tokens, and (as
//! later modules arrive) runs, attempts, history, outbox, idempotency keys and encrypted secrets.
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

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

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

/// Applies every migration not yet applied.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
