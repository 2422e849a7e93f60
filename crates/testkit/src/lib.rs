//! Test support for vendorflow (a dev-dependency only): a fresh, migrated PostgreSQL database per
//! test for tests that need a URL rather than a pool (end-to-end tests of the binary), and, as
//! they arrive, the sandbox, factories and app spawning.
//!
//! It must never be a normal dependency of a shipped crate. Unit and store tests use
//! `#[sqlx::test]`, which gives each test its own database without this crate.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// A database created for one test and dropped when the value is dropped.
pub struct TestDatabase {
    /// The URL of the test's own database.
    pub url: String,
    /// A pool on it.
    pub pool: PgPool,
    admin_url: String,
    name: String,
}

/// The cluster's URL: `DATABASE_URL`, as `make test` exports it.
///
/// # Panics
/// Panics with instructions when `DATABASE_URL` is not set, because no database test can run.
pub fn cluster_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the tests with `make test`, or `make db/start` and export \
         DATABASE_URL=$(make -s db/url)",
    )
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database path");
    format!("{base}/{database}")
}

impl TestDatabase {
    /// Creates a fresh database named after a random uuid, and migrates it.
    ///
    /// # Panics
    /// Panics when the cluster cannot be reached or the migrations fail: the test cannot go on.
    pub async fn create() -> TestDatabase {
        let cluster = cluster_url();
        let name = format!("vf_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = with_database(&cluster, "postgres");
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test cluster");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = with_database(&cluster, &name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await
            .expect("connect to the test database");
        store::migrate(&pool)
            .await
            .expect("migrate the test database");
        TestDatabase {
            url,
            pool,
            admin_url,
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Dropping the database needs async IO; a drop cannot await, so a short-lived thread
        // with its own runtime does it. A failure only leaves a stray database behind.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _joined = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                // `WITH (FORCE)` ends the pool's sessions: closing the pool here instead would wait
                // on the test's runtime, which is blocked in this drop.
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ignored = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}
