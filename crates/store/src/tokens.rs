//! API tokens: bearer tokens per marketplace and role, stored as SHA-256 hashes.
//!
//! A token is shown once, when created. Only its hash, a short prefix and its name (whom it was
//! made for, shown wherever it acts) are stored, so a database leak does not leak usable tokens. Tokens are high-entropy random strings, so a plain
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

/// Creates a token named `name` for `marketplace_id` with `role` and returns its clear text once.
pub async fn create(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    role: Role,
    name: &str,
) -> Result<CreatedToken, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}_{}", role.as_str(), hex::encode(bytes));
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO vendorflow.api_tokens (id, marketplace_id, role, name, token_hash, token_prefix)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(marketplace_id)
    .bind(role.as_str())
    .bind(name)
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

/// Revokes every live token of `marketplace_id` named `name`; returns how many were revoked.
pub async fn revoke_named(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    name: &str,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE vendorflow.api_tokens SET revoked_at = now()
         WHERE marketplace_id = $1 AND name = $2 AND revoked_at IS NULL",
    )
    .bind(marketplace_id)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// The names of the tokens among `ids` that have one (revoked tokens included: what a token did
/// stays attributed to it).
pub async fn names(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let rows = sqlx::query_as(
        "SELECT id, name FROM vendorflow.api_tokens WHERE id = ANY($1) AND name <> ''",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// The token named by a run history actor id of the form `token:<uuid>` (how the API and the
/// dashboard record who acted), if it is one.
pub fn token_of_actor(actor_id: &str) -> Option<Uuid> {
    actor_id
        .strip_prefix("token:")
        .and_then(|id| Uuid::try_parse(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketplaces;

    #[sqlx::test(migrations = "../../migrations")]
    async fn tokens_are_known_by_name_and_revoked_by_name_within_their_marketplace(
        pool: sqlx::PgPool,
    ) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        let other = marketplaces::insert(&mut conn, "o").await.unwrap();
        let old = create(&mut conn, market.id, Role::Backend, "dev")
            .await
            .unwrap();
        let older = create(&mut conn, market.id, Role::Operator, "dev")
            .await
            .unwrap();
        let kept = create(&mut conn, market.id, Role::Operator, "dana")
            .await
            .unwrap();
        let elsewhere = create(&mut conn, other.id, Role::Operator, "dev")
            .await
            .unwrap();

        let mut named = names(&mut conn, &[old.id, kept.id, Uuid::now_v7()])
            .await
            .unwrap();
        named.sort();
        let mut expected = vec![(old.id, "dev".to_owned()), (kept.id, "dana".to_owned())];
        expected.sort();
        assert_eq!(named, expected);

        assert_eq!(revoke_named(&mut conn, market.id, "dev").await.unwrap(), 2);
        for (token, live) in [
            (&old.token, false),
            (&older.token, false),
            (&kept.token, true),
            (&elsewhere.token, true),
        ] {
            assert_eq!(
                authenticate(&mut conn, token).await.unwrap().is_some(),
                live
            );
        }
        // A revoked token keeps its name: what it did stays attributed to it.
        assert_eq!(names(&mut conn, &[old.id]).await.unwrap().len(), 1);
    }

    #[test]
    fn a_history_actor_names_a_token_only_in_the_token_form() {
        let id = Uuid::now_v7();
        assert_eq!(token_of_actor(&format!("token:{id}")), Some(id));
        assert_eq!(token_of_actor("dana"), None);
        assert_eq!(token_of_actor("token:nope"), None);
    }
}
