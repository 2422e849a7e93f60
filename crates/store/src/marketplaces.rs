//! Marketplaces: the tenants of vendorflow. Every other row belongs to one.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A marketplace as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Marketplace {
    /// The marketplace's id.
    pub id: Uuid,
    /// Its display name.
    pub name: String,
}

/// Inserts a marketplace named `name` and returns it.
pub async fn insert(conn: &mut PgConnection, name: &str) -> Result<Marketplace, StoreError> {
    let marketplace = sqlx::query_as::<_, Marketplace>(
        "INSERT INTO vendorflow.marketplaces (id, name) VALUES ($1, $2) RETURNING id, name",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .fetch_one(conn)
    .await
    .map_err(StoreError::from_insert)?;
    Ok(marketplace)
}

/// Finds the marketplace with this id.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<Marketplace>, StoreError> {
    let found = sqlx::query_as::<_, Marketplace>(
        "SELECT id, name FROM vendorflow.marketplaces WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(found)
}

/// Finds the marketplace with this exact name (names are not unique; the oldest wins).
pub async fn find_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Marketplace>, StoreError> {
    let found = sqlx::query_as::<_, Marketplace>(
        "SELECT id, name FROM vendorflow.marketplaces WHERE name = $1 ORDER BY created_at, id LIMIT 1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(found)
}

/// The oldest `limit` marketplaces, oldest first; the CLI uses it to pick the only marketplace
/// when no `--marketplace` is given (asking for two tells "exactly one" from "several").
pub async fn list(conn: &mut PgConnection, limit: i64) -> Result<Vec<Marketplace>, StoreError> {
    let found = sqlx::query_as::<_, Marketplace>(
        "SELECT id, name FROM vendorflow.marketplaces ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(found)
}
