//! Envelope-encrypted secrets: provider API keys, marketplace credentials, bank details and
//! webhook signing secrets, stored in `vendorflow.secrets`.
//!
//! Each value is encrypted with XChaCha20-Poly1305 under its own random 32-byte data key (DEK),
//! and the DEK is encrypted ("wrapped") under a master key named by id. Both layers carry
//! associated data that binds the owner table, owner row and name (the "column"), and the wrap
//! also binds the master key's id, so a ciphertext copied into another row does not decrypt.
//! Rotating the master key re-wraps the DEKs only; values are never re-encrypted.
//!
//! The master key is never used directly: three sub-keys are derived from it with HMAC-SHA256
//! (one wraps DEKs, one keys the display fingerprints, one names the key), so that one key is
//! never used by two different algorithms. The key's id is derived from the key itself, which
//! makes it impossible to configure a key under the wrong id.
//!
//! In memory, values are `secrecy` types; errors and `Debug` output never contain a value or a
//! key, only the owner's table, id and name.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngExt;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretSlice, SecretString};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The environment variable that holds the current master key (base64 of 32 bytes).
pub const MASTER_KEY_VAR: &str = "VENDORFLOW_MASTER_KEY";
/// The environment variable that holds older master keys, comma-separated, kept so that rows not
/// yet re-wrapped still decrypt until `vendorflow keys rotate` has run.
pub const PREVIOUS_MASTER_KEYS_VAR: &str = "VENDORFLOW_PREVIOUS_MASTER_KEYS";

/// The envelope format written by this module; part of the associated data of both layers.
const FORMAT: i16 = 1;
/// How many rows `rotate` re-wraps per transaction.
pub const DEFAULT_ROTATE_BATCH: i64 = 500;
/// Values of at least this many characters show their last four; shorter ones (a bank account
/// number, a PIN-like code) would reveal too much of themselves.
const LAST4_MIN_CHARS: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// Errors of the secrets module. None of them carries a secret value or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The database answered with an error, or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The owner table or name is not a lower-case identifier.
    #[error("invalid secret reference: {0}")]
    InvalidRef(&'static str),
    /// The row's data key is wrapped by a master key that is not configured.
    #[error(
        "secret {name} of {owner_table} {owner_id} is wrapped by master key {key_id}, which is not \
         configured (set it in {PREVIOUS_MASTER_KEYS_VAR})"
    )]
    UnknownKey {
        owner_table: String,
        owner_id: Uuid,
        name: String,
        key_id: String,
    },
    /// Authentication failed: the master key is wrong, or the row was altered or moved.
    #[error(
        "secret {name} of {owner_table} {owner_id} could not be decrypted (wrong master key, or the \
         row was altered or copied from another row)"
    )]
    Decrypt {
        owner_table: String,
        owner_id: Uuid,
        name: String,
    },
    /// The value was stored as bytes that are not UTF-8 text; read it with [`get_bytes`].
    #[error("secret {name} of {owner_table} {owner_id} is not UTF-8 text")]
    NotText {
        owner_table: String,
        owner_id: Uuid,
        name: String,
    },
    /// The cipher refused to encrypt (only possible for absurdly long values).
    #[error("encryption failed")]
    Encrypt,
}

/// A master key value from configuration is unusable. The message names the variable and never
/// repeats the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable} must be the base64 encoding of exactly 32 bytes: {reason}")]
pub struct MasterKeyError {
    /// The configuration variable that holds the bad value.
    pub variable: &'static str,
    /// What is wrong with it (never the value itself).
    pub reason: &'static str,
}

/// The id of a master key, derived from the key: `mk_` and 16 hex digits. Safe to show and log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id as stored in `secrets.key_id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// A 32-byte master key (key-encryption key) and the sub-keys derived from it.
pub struct MasterKey {
    id: KeyId,
    raw: SecretBox<[u8; 32]>,
    wrap_key: SecretBox<[u8; 32]>,
    fingerprint_key: SecretBox<[u8; 32]>,
}

/// HMAC-SHA256 of `label` under `key`: a pseudo-random function used to derive independent
/// sub-keys from one master key (as HKDF-Expand does for one block).
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl MasterKey {
    /// Builds a master key from its 32 bytes, deriving its id and sub-keys.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let raw = SecretBox::new(Box::new(bytes));
        let key = raw.expose_secret();
        let id_bytes = derive(key, b"vendorflow master key id v1");
        let id = KeyId(format!("mk_{}", hex::encode(&id_bytes[..8])));
        let wrap_key = SecretBox::new(Box::new(derive(key, b"vendorflow data key wrapping v1")));
        let fingerprint_key = SecretBox::new(Box::new(derive(key, b"vendorflow fingerprint v1")));
        MasterKey {
            id,
            raw,
            wrap_key,
            fingerprint_key,
        }
    }

    /// A fresh random master key, for development and for generating a production key once.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill(&mut bytes[..]);
        MasterKey::from_bytes(*bytes)
    }

    /// Parses the base64 (standard alphabet, padded or not) of exactly 32 bytes. `variable` names
    /// the configuration variable in the error, which never contains the value.
    pub fn from_base64(value: &str, variable: &'static str) -> Result<MasterKey, MasterKeyError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(MasterKeyError {
                variable,
                reason: "it is empty",
            });
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD_INDIFFERENT
                .decode(trimmed)
                .map_err(|_| MasterKeyError {
                    variable,
                    reason: "it is not valid base64",
                })?,
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| MasterKeyError {
            variable,
            reason: "it does not decode to 32 bytes",
        })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key as padded standard base64, the form `VENDORFLOW_MASTER_KEY` takes.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(BASE64.encode(self.raw.expose_secret()))
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    fn wrap_cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.wrap_key.expose_secret().into())
    }

    /// The first 8 hex digits of HMAC-SHA256 of `value` under this key's fingerprint sub-key:
    /// enough to recognise a value, useless for guessing it without the master key.
    fn fingerprint(&self, value: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(self.fingerprint_key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(value);
        hex::encode(&mac.finalize().into_bytes()[..4])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// The configured master keys: the current one, which every write uses, and older ones that are
/// still accepted for reading until `rotate` has re-wrapped every row.
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring with `current` and older keys (a previous key equal to the current one is
    /// dropped, so listing the current key among the old ones is harmless).
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Keyring {
        let mut kept: Vec<MasterKey> = Vec::with_capacity(previous.len());
        for key in previous {
            if key.id != current.id && kept.iter().all(|k| k.id != key.id) {
                kept.push(key);
            }
        }
        Keyring {
            current,
            previous: kept,
        }
    }

    /// A keyring with one key.
    pub fn single(current: MasterKey) -> Keyring {
        Keyring::new(current, Vec::new())
    }

    /// Parses configuration values: `current` is the value of [`MASTER_KEY_VAR`], `previous` of
    /// [`PREVIOUS_MASTER_KEYS_VAR`] (comma-separated, may be empty).
    pub fn from_config(current: &str, previous: Option<&str>) -> Result<Keyring, MasterKeyError> {
        let current = MasterKey::from_base64(current, MASTER_KEY_VAR)?;
        let mut older = Vec::new();
        for part in previous.unwrap_or("").split(',') {
            if !part.trim().is_empty() {
                older.push(MasterKey::from_base64(part, PREVIOUS_MASTER_KEYS_VAR)?);
            }
        }
        Ok(Keyring::new(current, older))
    }

    /// Reads [`MASTER_KEY_VAR`] and [`PREVIOUS_MASTER_KEYS_VAR`] from the environment.
    pub fn from_env() -> Result<Keyring, MasterKeyError> {
        let current = std::env::var(MASTER_KEY_VAR).map_err(|_| MasterKeyError {
            variable: MASTER_KEY_VAR,
            reason: "it is not set",
        })?;
        let previous = std::env::var(PREVIOUS_MASTER_KEYS_VAR).ok();
        Keyring::from_config(&current, previous.as_deref())
    }

    /// The key every write uses.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The older keys, still accepted for reading.
    pub fn previous(&self) -> &[MasterKey] {
        &self.previous
    }

    /// The key named `id`, current or older.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id.as_str() == id)
    }
}

/// Where a secret belongs: the owner's table, the owner's row and the secret's name (its
/// "column"). All three are bound into the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretRef<'a> {
    /// The owner's table, for example `vendors` or `webhook_endpoints`.
    pub owner_table: &'a str,
    /// The owner's row id.
    pub owner_id: Uuid,
    /// What the secret is, for example `provider_api_key`, `bank_account`, `signing_secret`.
    pub name: &'a str,
}

impl<'a> SecretRef<'a> {
    /// A reference to the secret `name` of row `owner_id` of `owner_table`.
    pub const fn new(owner_table: &'a str, owner_id: Uuid, name: &'a str) -> SecretRef<'a> {
        SecretRef {
            owner_table,
            owner_id,
            name,
        }
    }

    fn validate(&self) -> Result<(), SecretsError> {
        if !is_identifier(self.owner_table) {
            return Err(SecretsError::InvalidRef(
                "owner_table must be a lower-case identifier of at most 63 characters",
            ));
        }
        if !is_identifier(self.name) {
            return Err(SecretsError::InvalidRef(
                "name must be a lower-case identifier of at most 63 characters",
            ));
        }
        Ok(())
    }

    /// Associated data of the value's encryption. The parts are identifiers and a uuid, none of
    /// which can contain `|`, so the encoding is unambiguous.
    fn value_aad(&self) -> Vec<u8> {
        format!(
            "vendorflow.secrets|v{FORMAT}|value|{}|{}|{}",
            self.owner_table, self.owner_id, self.name
        )
        .into_bytes()
    }

    /// Associated data of the data key's wrapping: the value's binding plus the master key id.
    fn wrap_aad(&self, key_id: &str) -> Vec<u8> {
        format!(
            "vendorflow.secrets|v{FORMAT}|dek|{key_id}|{}|{}|{}",
            self.owner_table, self.owner_id, self.name
        )
        .into_bytes()
    }

    fn decrypt_error(&self) -> SecretsError {
        SecretsError::Decrypt {
            owner_table: self.owner_table.to_owned(),
            owner_id: self.owner_id,
            name: self.name.to_owned(),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A secret value that can be stored: [`SecretString`] or [`SecretSlice<u8>`].
pub trait SecretValue {
    /// The value's bytes, exposed only to encrypt them.
    fn expose_bytes(&self) -> &[u8];
}

impl SecretValue for SecretString {
    fn expose_bytes(&self) -> &[u8] {
        self.expose_secret().as_bytes()
    }
}

impl SecretValue for SecretSlice<u8> {
    fn expose_bytes(&self) -> &[u8] {
        self.expose_secret()
    }
}

/// What may be shown about a stored secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SecretMeta {
    /// Eight hex digits of a keyed hash of the value: equal values written under the same master
    /// key have equal fingerprints.
    pub fingerprint: String,
    /// The last four characters, for values of at least 12 characters; otherwise none.
    pub last4: Option<String>,
    /// The id of the master key that wraps the data key.
    pub key_id: String,
    /// When the value was last written.
    pub updated_at: DateTime<Utc>,
}

/// One envelope, as stored.
struct Envelope {
    key_id: String,
    dek_nonce: Vec<u8>,
    wrapped_dek: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn random_nonce() -> XNonce {
    let mut nonce = XNonce::default();
    rand::rng().fill(&mut nonce[..]);
    nonce
}

fn last4_of(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let count = text.chars().count();
    if count < LAST4_MIN_CHARS {
        return None;
    }
    Some(text.chars().skip(count - 4).collect())
}

/// Encrypts `value` for `r` under a fresh data key wrapped by `master`.
fn seal(master: &MasterKey, r: &SecretRef<'_>, value: &[u8]) -> Result<Envelope, SecretsError> {
    let mut dek = SecretBox::new(Box::new([0u8; 32]));
    rand::rng().fill(&mut dek.expose_secret_mut()[..]);
    let nonce = random_nonce();
    let ciphertext = XChaCha20Poly1305::new(dek.expose_secret().into())
        .encrypt(
            &nonce,
            Payload {
                msg: value,
                aad: &r.value_aad(),
            },
        )
        .map_err(|_| SecretsError::Encrypt)?;
    let (dek_nonce, wrapped_dek) = wrap(master, r, dek.expose_secret())?;
    Ok(Envelope {
        key_id: master.id.0.clone(),
        dek_nonce,
        wrapped_dek,
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

fn wrap(
    master: &MasterKey,
    r: &SecretRef<'_>,
    dek: &[u8; 32],
) -> Result<(Vec<u8>, Vec<u8>), SecretsError> {
    let nonce = random_nonce();
    let wrapped = master
        .wrap_cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: dek,
                aad: &r.wrap_aad(master.id.as_str()),
            },
        )
        .map_err(|_| SecretsError::Encrypt)?;
    Ok((nonce.to_vec(), wrapped))
}

fn unwrap_dek(
    keyring: &Keyring,
    r: &SecretRef<'_>,
    envelope: &Envelope,
) -> Result<SecretBox<[u8; 32]>, SecretsError> {
    let master = keyring
        .get(&envelope.key_id)
        .ok_or_else(|| SecretsError::UnknownKey {
            owner_table: r.owner_table.to_owned(),
            owner_id: r.owner_id,
            name: r.name.to_owned(),
            key_id: envelope.key_id.clone(),
        })?;
    let nonce = XNonce::try_from(envelope.dek_nonce.as_slice()).map_err(|_| r.decrypt_error())?;
    let plain = Zeroizing::new(
        master
            .wrap_cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: &envelope.wrapped_dek,
                    aad: &r.wrap_aad(&envelope.key_id),
                },
            )
            .map_err(|_| r.decrypt_error())?,
    );
    let dek: [u8; 32] = plain.as_slice().try_into().map_err(|_| r.decrypt_error())?;
    Ok(SecretBox::new(Box::new(dek)))
}

fn open(
    keyring: &Keyring,
    r: &SecretRef<'_>,
    envelope: &Envelope,
) -> Result<SecretSlice<u8>, SecretsError> {
    let dek = unwrap_dek(keyring, r, envelope)?;
    open_with(&dek, r, envelope)
}

fn open_with(
    dek: &SecretBox<[u8; 32]>,
    r: &SecretRef<'_>,
    envelope: &Envelope,
) -> Result<SecretSlice<u8>, SecretsError> {
    let nonce = XNonce::try_from(envelope.nonce.as_slice()).map_err(|_| r.decrypt_error())?;
    let plain = XChaCha20Poly1305::new(dek.expose_secret().into())
        .decrypt(
            &nonce,
            Payload {
                msg: &envelope.ciphertext,
                aad: &r.value_aad(),
            },
        )
        .map_err(|_| r.decrypt_error())?;
    Ok(SecretSlice::from(plain))
}

/// Stores (inserts or replaces) the secret `r` with `value` under the keyring's current master key
/// and a fresh data key, and returns what may be shown about it. Runs on the caller's connection,
/// so it can be part of the caller's transaction.
pub async fn put<V: SecretValue + ?Sized>(
    conn: &mut PgConnection,
    keyring: &Keyring,
    r: &SecretRef<'_>,
    value: &V,
) -> Result<SecretMeta, SecretsError> {
    r.validate()?;
    let bytes = value.expose_bytes();
    let master = keyring.current();
    let envelope = seal(master, r, bytes)?;
    let fingerprint = master.fingerprint(bytes);
    let last4 = last4_of(bytes);
    let meta = sqlx::query_as(
        "INSERT INTO vendorflow.secrets
             (id, owner_table, owner_id, name, format, key_id, dek_nonce, wrapped_dek, nonce,
              ciphertext, fingerprint, last4)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (owner_table, owner_id, name) DO UPDATE SET
             format = EXCLUDED.format, key_id = EXCLUDED.key_id, dek_nonce = EXCLUDED.dek_nonce,
             wrapped_dek = EXCLUDED.wrapped_dek, nonce = EXCLUDED.nonce,
             ciphertext = EXCLUDED.ciphertext, fingerprint = EXCLUDED.fingerprint,
             last4 = EXCLUDED.last4, updated_at = now()
         RETURNING fingerprint, last4, key_id, updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(r.owner_table)
    .bind(r.owner_id)
    .bind(r.name)
    .bind(FORMAT)
    .bind(&envelope.key_id)
    .bind(&envelope.dek_nonce)
    .bind(&envelope.wrapped_dek)
    .bind(&envelope.nonce)
    .bind(&envelope.ciphertext)
    .bind(&fingerprint)
    .bind(&last4)
    .fetch_one(&mut *conn)
    .await?;
    Ok(meta)
}

#[derive(sqlx::FromRow)]
struct EnvelopeRow {
    key_id: String,
    dek_nonce: Vec<u8>,
    wrapped_dek: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl From<EnvelopeRow> for Envelope {
    fn from(row: EnvelopeRow) -> Envelope {
        Envelope {
            key_id: row.key_id,
            dek_nonce: row.dek_nonce,
            wrapped_dek: row.wrapped_dek,
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        }
    }
}

async fn load(
    conn: &mut PgConnection,
    r: &SecretRef<'_>,
) -> Result<Option<Envelope>, SecretsError> {
    r.validate()?;
    let row: Option<EnvelopeRow> = sqlx::query_as(
        "SELECT key_id, dek_nonce, wrapped_dek, nonce, ciphertext FROM vendorflow.secrets
         WHERE owner_table = $1 AND owner_id = $2 AND name = $3 AND format = $4",
    )
    .bind(r.owner_table)
    .bind(r.owner_id)
    .bind(r.name)
    .bind(FORMAT)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Envelope::from))
}

/// Decrypts the secret `r` as bytes; `None` when there is none.
pub async fn get_bytes(
    conn: &mut PgConnection,
    keyring: &Keyring,
    r: &SecretRef<'_>,
) -> Result<Option<SecretSlice<u8>>, SecretsError> {
    match load(conn, r).await? {
        Some(envelope) => Ok(Some(open(keyring, r, &envelope)?)),
        None => Ok(None),
    }
}

/// Decrypts the secret `r` as text; `None` when there is none.
pub async fn get(
    conn: &mut PgConnection,
    keyring: &Keyring,
    r: &SecretRef<'_>,
) -> Result<Option<SecretString>, SecretsError> {
    let Some(bytes) = get_bytes(conn, keyring, r).await? else {
        return Ok(None);
    };
    match std::str::from_utf8(bytes.expose_secret()) {
        Ok(text) => Ok(Some(SecretString::from(text))),
        Err(_) => Err(SecretsError::NotText {
            owner_table: r.owner_table.to_owned(),
            owner_id: r.owner_id,
            name: r.name.to_owned(),
        }),
    }
}

/// What may be shown about the secret `r` (fingerprint, last digits); needs no key.
pub async fn meta(
    conn: &mut PgConnection,
    r: &SecretRef<'_>,
) -> Result<Option<SecretMeta>, SecretsError> {
    r.validate()?;
    let meta = sqlx::query_as(
        "SELECT fingerprint, last4, key_id, updated_at FROM vendorflow.secrets
         WHERE owner_table = $1 AND owner_id = $2 AND name = $3",
    )
    .bind(r.owner_table)
    .bind(r.owner_id)
    .bind(r.name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(meta)
}

/// Deletes the secret `r`; true when it existed.
pub async fn delete(conn: &mut PgConnection, r: &SecretRef<'_>) -> Result<bool, SecretsError> {
    r.validate()?;
    let done = sqlx::query(
        "DELETE FROM vendorflow.secrets WHERE owner_table = $1 AND owner_id = $2 AND name = $3",
    )
    .bind(r.owner_table)
    .bind(r.owner_id)
    .bind(r.name)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes every secret of one owner row (when the owner itself is deleted); returns how many.
pub async fn delete_owner(
    conn: &mut PgConnection,
    owner_table: &str,
    owner_id: Uuid,
) -> Result<u64, SecretsError> {
    let done =
        sqlx::query("DELETE FROM vendorflow.secrets WHERE owner_table = $1 AND owner_id = $2")
            .bind(owner_table)
            .bind(owner_id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected())
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// The master key id every re-wrapped row now uses.
    pub key_id: String,
    /// Rows whose data key was re-wrapped under the current master key in this run.
    pub rewrapped: u64,
    /// Rows whose data key is wrapped by a key that is not configured: (secret id, key id).
    pub unknown_key: Vec<(Uuid, String)>,
    /// Rows that did not decrypt under the key they name (altered rows, or a wrong key with a
    /// colliding id, which does not happen in practice): their secret ids.
    pub failed: Vec<Uuid>,
}

impl RotateReport {
    /// True when every row now uses the current master key.
    pub fn is_complete(&self) -> bool {
        self.unknown_key.is_empty() && self.failed.is_empty()
    }
}

#[derive(sqlx::FromRow)]
struct RotateRow {
    id: Uuid,
    owner_table: String,
    owner_id: Uuid,
    name: String,
    key_id: String,
    dek_nonce: Vec<u8>,
    wrapped_dek: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Re-wraps every data key that is not wrapped by the keyring's current master key, in batches of
/// [`DEFAULT_ROTATE_BATCH`] rows, each batch in its own transaction. See [`rotate_in_batches`].
pub async fn rotate(pool: &PgPool, keyring: &Keyring) -> Result<RotateReport, SecretsError> {
    rotate_in_batches(pool, keyring, DEFAULT_ROTATE_BATCH).await
}

/// Re-wraps every data key that is not wrapped by the current master key, `batch_size` rows per
/// transaction, walking the table once in id order. Values are not re-encrypted; each row's
/// fingerprint is recomputed under the new key so that fingerprints stay comparable.
///
/// Idempotent and safe to interrupt and re-run: a committed batch is done, rows already under the
/// current key are skipped, and writes made meanwhile by [`put`] already use the current key.
/// Rows that cannot be re-wrapped are reported, not fatal, so one bad row cannot block the rest.
pub async fn rotate_in_batches(
    pool: &PgPool,
    keyring: &Keyring,
    batch_size: i64,
) -> Result<RotateReport, SecretsError> {
    let current = keyring.current();
    let mut report = RotateReport {
        key_id: current.id.0.clone(),
        ..RotateReport::default()
    };
    let mut after = Uuid::nil();
    loop {
        let mut tx = pool.begin().await?;
        // Rows are locked (not skipped) so that a concurrent `put` finishes first and is then
        // seen with the current key, instead of being left behind under an old one.
        let rows: Vec<RotateRow> = sqlx::query_as(
            "SELECT id, owner_table, owner_id, name, key_id, dek_nonce, wrapped_dek, nonce, ciphertext
             FROM vendorflow.secrets
             WHERE id > $1 AND key_id <> $2
             ORDER BY id LIMIT $3 FOR UPDATE",
        )
        .bind(after)
        .bind(current.id.as_str())
        .bind(batch_size.max(1))
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.id;
        for row in rows {
            let r = SecretRef::new(&row.owner_table, row.owner_id, &row.name);
            let envelope = Envelope {
                key_id: row.key_id.clone(),
                dek_nonce: row.dek_nonce,
                wrapped_dek: row.wrapped_dek,
                nonce: row.nonce,
                ciphertext: row.ciphertext,
            };
            // The value is decrypted too, both to prove the row is intact before it is re-wrapped
            // and to recompute its fingerprint; it lives only in a zeroized buffer meanwhile.
            let opened = unwrap_dek(keyring, &r, &envelope)
                .and_then(|dek| open_with(&dek, &r, &envelope).map(|value| (dek, value)));
            let (dek, value) = match opened {
                Ok(pair) => pair,
                Err(SecretsError::UnknownKey { key_id, .. }) => {
                    report.unknown_key.push((row.id, key_id));
                    continue;
                }
                Err(_) => {
                    report.failed.push(row.id);
                    continue;
                }
            };
            let (dek_nonce, wrapped_dek) = wrap(current, &r, dek.expose_secret())?;
            let fingerprint = current.fingerprint(value.expose_secret());
            sqlx::query(
                "UPDATE vendorflow.secrets
                 SET key_id = $2, dek_nonce = $3, wrapped_dek = $4, fingerprint = $5
                 WHERE id = $1",
            )
            .bind(row.id)
            .bind(current.id.as_str())
            .bind(&dek_nonce)
            .bind(&wrapped_dek)
            .bind(&fingerprint)
            .execute(&mut *tx)
            .await?;
            report.rewrapped += 1;
        }
        tx.commit().await?;
    }
    tracing::info!(
        key_id = %report.key_id,
        rewrapped = report.rewrapped,
        unknown_key = report.unknown_key.len(),
        failed = report.failed.len(),
        "master key rotation finished"
    );
    Ok(report)
}

/// A random signing secret in the Standard Webhooks form: `whsec_` and the base64 of 32 random
/// bytes. Here rather than in the webhooks crate because endpoints are created in this crate.
pub fn generate_webhook_secret() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill(&mut bytes[..]);
    SecretString::from(format!("whsec_{}", BASE64.encode(&bytes[..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_key_survives_base64_and_keeps_its_id() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(key.to_base64().expose_secret(), MASTER_KEY_VAR)
            .expect("own encoding parses");
        assert_eq!(key.id(), again.id());
        assert!(key.id().as_str().starts_with("mk_"));
        assert_eq!(key.id().as_str().len(), 3 + 16);
        assert_ne!(key.id(), MasterKey::generate().id());
    }

    #[test]
    fn a_bad_master_key_names_the_variable_and_not_the_value() {
        let short = BASE64.encode([7u8; 31]);
        let err = MasterKey::from_base64(&short, MASTER_KEY_VAR).expect_err("31 bytes");
        let message = err.to_string();
        assert!(message.contains("VENDORFLOW_MASTER_KEY"), "{message}");
        assert!(message.contains("32 bytes"), "{message}");
        assert!(!message.contains(&short), "{message}");

        let err = MasterKey::from_base64("not base64 at all!", MASTER_KEY_VAR).expect_err("junk");
        assert_eq!(err.reason, "it is not valid base64");
        let err = MasterKey::from_base64("  ", MASTER_KEY_VAR).expect_err("blank");
        assert_eq!(err.reason, "it is empty");

        let good = MasterKey::generate();
        let err = Keyring::from_config(good.to_base64().expose_secret(), Some("abc"))
            .expect_err("bad previous key");
        assert_eq!(err.variable, PREVIOUS_MASTER_KEYS_VAR);
    }

    #[test]
    fn unpadded_base64_is_accepted_for_the_master_key() {
        let key = MasterKey::generate();
        let padded = key.to_base64();
        let unpadded = padded.expose_secret().trim_end_matches('=');
        let parsed = MasterKey::from_base64(unpadded, MASTER_KEY_VAR).expect("unpadded");
        assert_eq!(parsed.id(), key.id());
    }

    #[test]
    fn a_keyring_finds_current_and_previous_keys_and_drops_duplicates() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let config = format!(
            "{},{}",
            old.to_base64().expose_secret(),
            new.to_base64().expose_secret()
        );
        let ring = Keyring::from_config(new.to_base64().expose_secret(), Some(&config))
            .expect("valid keys");
        assert_eq!(ring.current().id(), new.id());
        assert_eq!(ring.previous().len(), 1);
        assert!(ring.get(old.id().as_str()).is_some());
        assert!(ring.get(new.id().as_str()).is_some());
        assert!(ring.get("mk_0000000000000000").is_none());
    }

    #[test]
    fn debug_output_of_keys_and_keyrings_is_redacted() {
        let key = MasterKey::from_bytes([0xAB; 32]);
        let encoded = key.to_base64();
        let ring = Keyring::new(
            MasterKey::from_bytes([0xAB; 32]),
            vec![MasterKey::generate()],
        );
        for shown in [
            format!("{key:?}"),
            format!("{ring:?}"),
            format!("{encoded:?}"),
        ] {
            assert!(!shown.contains(encoded.expose_secret()), "{shown}");
            // Neither as hex nor as decimal bytes.
            assert!(!shown.to_lowercase().contains("abababab"), "{shown}");
            assert!(!shown.contains("171, 171"), "{shown}");
        }
        assert!(format!("{key:?}").contains("[REDACTED]"));
    }

    #[test]
    fn only_long_values_show_their_last_four_characters() {
        assert_eq!(last4_of(b"sk_live_abcdefgh1234").as_deref(), Some("1234"));
        assert_eq!(last4_of(b"041116"), None);
        assert_eq!(
            last4_of("מפתח-סודי-ארוך-5678".as_bytes()).as_deref(),
            Some("5678")
        );
        assert_eq!(last4_of(&[0xff; 20]), None);
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_own_reference_and_key() {
        let ring = Keyring::single(MasterKey::generate());
        let owner = Uuid::now_v7();
        let r = SecretRef::new("vendors", owner, "bank_account");
        let envelope = seal(ring.current(), &r, b"12-571-041116").expect("seal");
        let opened = open(&ring, &r, &envelope).expect("open");
        assert_eq!(opened.expose_secret(), b"12-571-041116");

        let other_row = SecretRef::new("vendors", Uuid::now_v7(), "bank_account");
        assert!(matches!(
            open(&ring, &other_row, &envelope),
            Err(SecretsError::Decrypt { .. })
        ));
        let other_column = SecretRef::new("vendors", owner, "provider_api_key");
        assert!(open(&ring, &other_column, &envelope).is_err());
        let other_table = SecretRef::new("marketplaces", owner, "bank_account");
        assert!(open(&ring, &other_table, &envelope).is_err());

        let stranger = Keyring::single(MasterKey::generate());
        assert!(matches!(
            open(&stranger, &r, &envelope),
            Err(SecretsError::UnknownKey { .. })
        ));
    }

    #[test]
    fn webhook_secrets_have_the_standard_form() {
        let secret = generate_webhook_secret();
        let text = secret.expose_secret();
        let encoded = text.strip_prefix("whsec_").expect("prefix");
        assert_eq!(BASE64.decode(encoded).expect("base64").len(), 32);
        assert_ne!(text, generate_webhook_secret().expose_secret());
    }
}
