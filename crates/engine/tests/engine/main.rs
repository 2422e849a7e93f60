//! The engine's tests against a real PostgreSQL (`#[sqlx::test]`: a fresh migrated database per
//! test). They drive workers step by step with `run_once`, move time by updating
//! `next_run_at` / `lease_expires_at` with SQL, and never sleep to wait for something.

mod definitions;
mod durability;
mod logs;
mod observability;
mod operations;
mod races;
mod randomized;
mod retention;
mod runs;
mod shutdown;
mod support;
mod waits;
