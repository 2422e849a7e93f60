//! Runs the engine benchmark against a fresh database on the PostgreSQL of `DATABASE_URL`, so
//! the figures are not disturbed by other data, then drops that database.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:55432/vendorflow \
//!     cargo run --release -p engine --example bench -- [workflows] [workers] [concurrency]
//! ```

use std::time::Duration;

use engine::bench::{BenchOptions, run};
use sqlx::{Connection, PgConnection};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL must name the PostgreSQL to measure")?;
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mut options = BenchOptions::default();
    if let Some(n) = args.next() {
        options.workflows = n?;
    }
    if let Some(n) = args.next() {
        options.workers = n?;
    }
    if let Some(n) = args.next() {
        options.concurrency = n?;
    }

    let name = format!("vendorflow_bench_{}", std::process::id());
    let (base, _) = url
        .rsplit_once('/')
        .ok_or("DATABASE_URL has no database name")?;
    let mut admin = PgConnection::connect(&format!("{base}/postgres")).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let result = async {
        let pool = store::connect(&format!("{base}/{name}"), 16).await?;
        store::migrate(&pool).await?;
        let report = run(pool.clone(), options).await?;
        pool.close().await;
        Ok::<_, Box<dyn std::error::Error>>(report)
    }
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    println!("{}", result?);
    Ok(())
}
