//! API tokens: bearer tokens per marketplace and role, stored as SHA-256 hashes.
//!
//! A token is shown once, when created. Only its hash and a short prefix are stored, so a
//! database leak does not leak usable tokens. Tokens are high-entropy random strings, so a plain
//! (unsalted) SHA-256 is enough: there is nothing to brute-force.

use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The marketplace's backend: enqueue work, read status, send signals.
    Backend,
    /// An operator who may only look.
    Viewer,
    /// An operator who may act: retry, resume, cancel, signal, supply keys.
    Operator,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// Parses a role name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "backend" => Some(Role::Backend),
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A token that was just created: the only moment its clear text exists.
#[derive(Debug)]
pub struct CreatedToken {
    /// The token's id (safe to show and log).
    pub id: Uuid,
    /// The bearer token itself, shown to the person who created it once.
    pub token: SecretString,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner {
    /// The token's id.
    pub token_id: Uuid,
    /// The marketplace every request made with it is scoped to.
    pub marketplace_id: Uuid,
    /// What it may do.
    pub role: Role,
}

const TOKEN_PREFIX: &str = "vf_";

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token for `marketplace_id` with `role` and returns its clear text once.
pub async fn create(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    role: Role,
    label: &str,
) -> Result<CreatedToken, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}_{}", role.as_str(), hex::encode(bytes));
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO vendorflow.api_tokens (id, marketplace_id, role, label, token_hash, token_prefix)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(marketplace_id)
    .bind(role.as_str())
    .bind(label)
    .bind(hash_token(&token))
    .bind(&token[..TOKEN_PREFIX.len() + role.as_str().len() + 5])
    .execute(conn)
    .await
    .map_err(StoreError::from_insert)?;
    Ok(CreatedToken {
        id,
        token: SecretString::from(token),
    })
}

/// Finds the owner of a presented bearer token, if it exists and is not revoked.
pub async fn authenticate(
    conn: &mut PgConnection,
    token: &SecretString,
) -> Result<Option<TokenOwner>, StoreError> {
    let row: Option<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT id, marketplace_id, role FROM vendorflow.api_tokens
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_token(token.expose_secret()))
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(token_id, marketplace_id, role)| {
        Role::parse(&role).map(|role| TokenOwner {
            token_id,
            marketplace_id,
            role,
        })
    }))
}

/// Revokes the token with this id; returns whether a live token was revoked.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE vendorflow.api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
