//! Envelope encryption against a real database: round trips, rows that must not decrypt,
//! rotation, and that no clear text reaches a column, an error or a Debug output.

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sqlx::{PgPool, Row};
use store::secrets::{self, Keyring, MasterKey, SecretRef, SecretsError};
use uuid::Uuid;

const CANARY: &str = "sk_live_CANARY_5ecret_4242";

fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

async fn key_ids(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT key_id FROM vendorflow.secrets ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("key ids")
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_secret_round_trips_and_an_update_replaces_it(pool: PgPool) {
    let ring = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let vendor = Uuid::now_v7();
    let r = SecretRef::new("vendors", vendor, "provider_api_key");

    assert!(
        secrets::get(&mut conn, &ring, &r)
            .await
            .expect("get")
            .is_none()
    );
    let meta = secrets::put(&mut conn, &ring, &r, &secret(CANARY))
        .await
        .expect("put");
    assert_eq!(meta.last4.as_deref(), Some("4242"));
    assert_eq!(meta.fingerprint.len(), 8);
    assert_eq!(meta.key_id, ring.current().id().as_str());

    let value = secrets::get(&mut conn, &ring, &r)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(value.expose_secret(), CANARY);
    assert_eq!(
        secrets::meta(&mut conn, &r).await.expect("meta"),
        Some(meta.clone())
    );

    let replaced = secrets::put(&mut conn, &ring, &r, &secret("sk_live_another_value_9999"))
        .await
        .expect("update");
    assert_eq!(replaced.last4.as_deref(), Some("9999"));
    assert_ne!(replaced.fingerprint, meta.fingerprint);
    let value = secrets::get(&mut conn, &ring, &r).await.expect("get");
    assert_eq!(
        value.expect("stored").expose_secret(),
        "sk_live_another_value_9999"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM vendorflow.secrets")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);

    assert!(secrets::delete(&mut conn, &r).await.expect("delete"));
    assert!(!secrets::delete(&mut conn, &r).await.expect("delete again"));
    assert!(
        secrets::get(&mut conn, &ring, &r)
            .await
            .expect("get")
            .is_none()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn bytes_round_trip_and_equal_values_have_equal_fingerprints(pool: PgPool) {
    let ring = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, 1];
    let a = SecretRef::new("vendors", Uuid::now_v7(), "bank_account");
    let b = SecretRef::new("vendors", Uuid::now_v7(), "bank_account");
    let meta_a = secrets::put(&mut conn, &ring, &a, &SecretSlice::from(bytes.clone()))
        .await
        .expect("put a");
    let meta_b = secrets::put(&mut conn, &ring, &b, &SecretSlice::from(bytes.clone()))
        .await
        .expect("put b");
    assert_eq!(meta_a.fingerprint, meta_b.fingerprint);
    assert_eq!(meta_a.last4, None);

    let back = secrets::get_bytes(&mut conn, &ring, &a)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(back.expose_secret(), bytes.as_slice());
    let as_text = secrets::get(&mut conn, &ring, &a).await;
    assert!(matches!(as_text, Err(SecretsError::NotText { .. })));

    // Two rows with the same value still have different data keys and ciphertexts.
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT ciphertext) + count(DISTINCT wrapped_dek) FROM vendorflow.secrets",
    )
    .fetch_one(&pool)
    .await
    .expect("distinct");
    assert_eq!(distinct, 4);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_ciphertext_copied_to_another_row_or_name_does_not_decrypt(pool: PgPool) {
    let ring = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let owner = Uuid::now_v7();
    let source = SecretRef::new("vendors", owner, "provider_api_key");
    secrets::put(&mut conn, &ring, &source, &secret(CANARY))
        .await
        .expect("put");

    let other_owner = Uuid::now_v7();
    let targets = [
        ("vendors", other_owner, "provider_api_key"),
        ("vendors", owner, "marketplace_api_key"),
        ("marketplaces", owner, "provider_api_key"),
    ];
    for (table, id, name) in targets {
        sqlx::query(
            "INSERT INTO vendorflow.secrets (id, owner_table, owner_id, name, format, key_id,
                 dek_nonce, wrapped_dek, nonce, ciphertext, fingerprint, last4)
             SELECT $1, $2, $3, $4, format, key_id, dek_nonce, wrapped_dek, nonce, ciphertext,
                    fingerprint, last4
             FROM vendorflow.secrets WHERE owner_id = $5 AND name = 'provider_api_key'
               AND owner_table = 'vendors'",
        )
        .bind(Uuid::now_v7())
        .bind(table)
        .bind(id)
        .bind(name)
        .bind(owner)
        .execute(&pool)
        .await
        .expect("copy the row's columns");
        let moved = SecretRef::new(table, id, name);
        let result = secrets::get(&mut conn, &ring, &moved).await;
        match result {
            Err(err @ SecretsError::Decrypt { .. }) => {
                assert!(!err.to_string().contains(CANARY));
            }
            other => panic!("a moved ciphertext must not decrypt, got {other:?}"),
        }
    }

    // Swapping only the value's ciphertext and nonce between two rows fails too, even though
    // each data key still unwraps.
    let second = SecretRef::new("vendors", other_owner, "bank_account");
    secrets::put(&mut conn, &ring, &second, &secret("another secret value"))
        .await
        .expect("put second");
    sqlx::query(
        "UPDATE vendorflow.secrets t SET nonce = s.nonce, ciphertext = s.ciphertext
         FROM vendorflow.secrets s
         WHERE t.owner_id = $1 AND t.name = 'bank_account'
           AND s.owner_id = $2 AND s.name = 'provider_api_key' AND s.owner_table = 'vendors'",
    )
    .bind(other_owner)
    .bind(owner)
    .execute(&pool)
    .await
    .expect("swap");
    assert!(matches!(
        secrets::get(&mut conn, &ring, &second).await,
        Err(SecretsError::Decrypt { .. })
    ));

    // The original still decrypts.
    let original = secrets::get(&mut conn, &ring, &source).await.expect("get");
    assert_eq!(original.expect("stored").expose_secret(), CANARY);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_wrong_master_key_fails_cleanly_without_revealing_anything(pool: PgPool) {
    let right = Keyring::single(MasterKey::generate());
    let wrong = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let r = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    secrets::put(&mut conn, &right, &r, &secret(CANARY))
        .await
        .expect("put");

    let err = secrets::get(&mut conn, &wrong, &r)
        .await
        .expect_err("an unknown key id");
    assert!(matches!(err, SecretsError::UnknownKey { .. }));
    assert!(err.to_string().contains(right.current().id().as_str()));

    // A wrong key presented under the stored id (as if configuration were tampered with) fails
    // authentication rather than returning garbage.
    sqlx::query("UPDATE vendorflow.secrets SET key_id = $1")
        .bind(wrong.current().id().as_str())
        .execute(&pool)
        .await
        .expect("relabel");
    let err = secrets::get(&mut conn, &wrong, &r)
        .await
        .expect_err("authentication fails");
    assert!(matches!(err, SecretsError::Decrypt { .. }));
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(CANARY), "{shown}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn rotation_rewraps_every_row_in_batches_and_is_idempotent(pool: PgPool) {
    let old = MasterKey::generate();
    let old_b64 = old.to_base64();
    let old_ring = Keyring::single(old);
    let mut conn = pool.acquire().await.expect("connection");
    let mut refs = Vec::new();
    for i in 0..5 {
        let owner = Uuid::now_v7();
        refs.push((owner, format!("sk_live_rotation_value_{i:04}")));
    }
    for (owner, value) in &refs {
        let r = SecretRef::new("vendors", *owner, "provider_api_key");
        secrets::put(&mut conn, &old_ring, &r, &secret(value))
            .await
            .expect("put");
    }
    let ciphertexts_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM vendorflow.secrets ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("ciphertexts");

    let new = MasterKey::generate();
    let new_b64 = new.to_base64();
    let new_id = new.id().as_str().to_owned();
    let ring = Keyring::from_config(new_b64.expose_secret(), Some(old_b64.expose_secret()))
        .expect("keyring");

    // Before rotation, rows under the old key still decrypt through the new keyring.
    for (owner, value) in &refs {
        let r = SecretRef::new("vendors", *owner, "provider_api_key");
        let got = secrets::get(&mut conn, &ring, &r).await.expect("get");
        assert_eq!(got.expect("stored").expose_secret(), value);
    }
    assert!(key_ids(&pool).await.iter().all(|id| id != &new_id));

    // A write made before rotation with the new keyring already uses the new key.
    let fresh = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    let fresh_meta = secrets::put(&mut conn, &ring, &fresh, &secret(&refs[0].1))
        .await
        .expect("put fresh");

    let report = secrets::rotate_in_batches(&pool, &ring, 2)
        .await
        .expect("rotate");
    assert_eq!(report.rewrapped, 5);
    assert!(report.is_complete());
    assert_eq!(report.key_id, new_id);
    assert!(key_ids(&pool).await.iter().all(|id| id == &new_id));

    // Only the data keys were re-wrapped; the values' ciphertexts are untouched.
    let ciphertexts_after: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT ciphertext FROM vendorflow.secrets WHERE owner_id <> $1 ORDER BY id",
    )
    .bind(fresh.owner_id)
    .fetch_all(&pool)
    .await
    .expect("ciphertexts");
    assert_eq!(ciphertexts_before, ciphertexts_after);

    // After rotation the old key is no longer needed, and fingerprints are comparable again.
    let only_new = Keyring::from_config(new_b64.expose_secret(), None).expect("keyring");
    for (owner, value) in &refs {
        let r = SecretRef::new("vendors", *owner, "provider_api_key");
        let got = secrets::get(&mut conn, &only_new, &r).await.expect("get");
        assert_eq!(got.expect("stored").expose_secret(), value);
    }
    let first = SecretRef::new("vendors", refs[0].0, "provider_api_key");
    let first_meta = secrets::meta(&mut conn, &first)
        .await
        .expect("meta")
        .expect("stored");
    assert_eq!(first_meta.fingerprint, fresh_meta.fingerprint);

    let again = secrets::rotate(&pool, &ring).await.expect("rotate again");
    assert_eq!(again.rewrapped, 0);
    assert!(again.is_complete());
}

#[sqlx::test(migrations = "../../migrations")]
async fn rotation_reports_rows_under_an_unconfigured_key_and_continues(pool: PgPool) {
    let stray = Keyring::single(MasterKey::generate());
    let ring = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let stray_ref = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    secrets::put(&mut conn, &stray, &stray_ref, &secret("stray value"))
        .await
        .expect("put stray");
    let other_key = MasterKey::generate();
    let other_b64 = other_key.to_base64();
    let other = Keyring::single(other_key);
    let other_ref = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    secrets::put(&mut conn, &other, &other_ref, &secret("other value"))
        .await
        .expect("put other");
    let ring_with_other = Keyring::new(
        MasterKey::from_base64(
            ring.current().to_base64().expose_secret(),
            secrets::MASTER_KEY_VAR,
        )
        .expect("same key"),
        vec![
            MasterKey::from_base64(other_b64.expose_secret(), secrets::MASTER_KEY_VAR)
                .expect("same key"),
        ],
    );

    let report = secrets::rotate(&pool, &ring_with_other)
        .await
        .expect("rotate");
    assert_eq!(report.rewrapped, 1);
    assert_eq!(report.unknown_key.len(), 1);
    assert_eq!(report.unknown_key[0].1, stray.current().id().as_str());
    assert!(!report.is_complete());
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_put_in_a_rolled_back_transaction_leaves_nothing(pool: PgPool) {
    let ring = Keyring::single(MasterKey::generate());
    let r = SecretRef::new("vendors", Uuid::now_v7(), "bank_account");
    let mut tx = pool.begin().await.expect("begin");
    secrets::put(&mut tx, &ring, &r, &secret("12-571-041116"))
        .await
        .expect("put");
    tx.rollback().await.expect("rollback");
    let mut conn = pool.acquire().await.expect("connection");
    assert!(secrets::meta(&mut conn, &r).await.expect("meta").is_none());
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_clear_text_never_appears_in_any_column(pool: PgPool) {
    let ring = Keyring::single(MasterKey::generate());
    let mut conn = pool.acquire().await.expect("connection");
    let r = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    secrets::put(&mut conn, &ring, &r, &secret(CANARY))
        .await
        .expect("put");

    let row = sqlx::query(
        "SELECT row_to_json(s)::text AS json, dek_nonce, wrapped_dek, nonce, ciphertext
         FROM vendorflow.secrets s",
    )
    .fetch_one(&pool)
    .await
    .expect("row");
    let json: String = row.get("json");
    assert!(!json.contains(CANARY), "{json}");
    assert!(!json.contains(&CANARY[8..]), "{json}");
    let canary = CANARY.as_bytes();
    for column in ["dek_nonce", "wrapped_dek", "nonce", "ciphertext"] {
        let bytes: Vec<u8> = row.get(column);
        assert!(
            !bytes.windows(8).any(|w| canary.windows(8).any(|c| c == w)),
            "{column} holds part of the clear text"
        );
        assert!(!hex::encode(&bytes).contains(&hex::encode(canary)));
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn debug_output_of_every_secrets_type_is_redacted(pool: PgPool) {
    let key = MasterKey::generate();
    let encoded = key.to_base64();
    let ring = Keyring::single(key);
    let mut conn = pool.acquire().await.expect("connection");
    let r = SecretRef::new("vendors", Uuid::now_v7(), "provider_api_key");
    let meta = secrets::put(&mut conn, &ring, &r, &secret(CANARY))
        .await
        .expect("put");
    let value = secrets::get(&mut conn, &ring, &r).await.expect("get");
    let bytes = secrets::get_bytes(&mut conn, &ring, &r)
        .await
        .expect("get bytes");
    let report = secrets::rotate(&pool, &ring).await.expect("rotate");
    let shown = [
        format!("{ring:?}"),
        format!("{:?}", ring.current()),
        format!("{encoded:?}"),
        format!("{meta:?}"),
        format!("{value:?}"),
        format!("{bytes:?}"),
        format!("{r:?}"),
        format!("{report:?}"),
        format!("{:?}", secrets::generate_webhook_secret()),
    ];
    for text in &shown {
        assert!(!text.contains(CANARY), "{text}");
        assert!(!text.contains(encoded.expose_secret()), "{text}");
        assert!(!text.contains("whsec_"), "{text}");
    }
    // The decrypted value's bytes are not printed as numbers either.
    let first_bytes = format!("{}, {}", CANARY.as_bytes()[0], CANARY.as_bytes()[1]);
    assert!(!shown[5].contains(&first_bytes), "{}", shown[5]);
}
