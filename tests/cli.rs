//! End-to-end tests of the `vendorflow` binary's foundation commands, against a fresh database.

use std::process::{Command, Output};

use testkit::TestDatabase;

fn vendorflow(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vendorflow"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run vendorflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn migrate_then_create_a_marketplace_and_a_token_that_authenticates() {
    let db = TestDatabase::create().await;
    let migrated = vendorflow(&db.url, &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");

    let created = vendorflow(&db.url, &["marketplaces", "create", "Shuk"]);
    assert!(created.status.success(), "{created:?}");
    let marketplace = stdout(&created);

    let token = vendorflow(
        &db.url,
        &[
            "tokens",
            "create",
            "--marketplace",
            &marketplace,
            "--role",
            "backend",
            "--name",
            "shop backend",
        ],
    );
    assert!(token.status.success(), "{token:?}");
    let token = secrecy::SecretString::from(stdout(&token));

    let mut conn = db.pool.acquire().await.unwrap();
    let owner = store::tokens::authenticate(&mut conn, &token)
        .await
        .unwrap()
        .expect("the printed token authenticates");
    assert_eq!(owner.marketplace_id.to_string(), marketplace);
    assert_eq!(owner.role, store::tokens::Role::Backend);
    assert_eq!(
        store::tokens::names(&mut conn, &[owner.token_id])
            .await
            .unwrap(),
        vec![(owner.token_id, "shop backend".to_owned())]
    );
}

#[tokio::test]
async fn a_bad_role_is_refused_naming_the_flag_and_nothing_is_stored() {
    let db = TestDatabase::create().await;
    let created = vendorflow(&db.url, &["marketplaces", "create", "Shuk"]);
    let marketplace = stdout(&created);
    let refused = vendorflow(
        &db.url,
        &[
            "tokens",
            "create",
            "--marketplace",
            &marketplace,
            "--role",
            "admin",
            "--name",
            "dana",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--role"), "{stderr}");
    // A token says whom it is for: without a name, or with a blank one, none is made.
    for name in [None, Some("  ")] {
        let mut args = vec![
            "tokens",
            "create",
            "--marketplace",
            &marketplace,
            "--role",
            "operator",
        ];
        args.extend(name.map(|name| ["--name", name]).into_iter().flatten());
        let refused = vendorflow(&db.url, &args);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("--name"), "{stderr}");
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM vendorflow.api_tokens")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
}

#[test]
fn a_bad_setting_fails_at_start_up_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_vendorflow"))
        .arg("migrate")
        .env("VENDORFLOW_LISTEN", "nowhere")
        .output()
        .expect("run vendorflow");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VENDORFLOW_LISTEN"), "{stderr}");
}

#[tokio::test]
async fn keys_rotate_rewraps_every_secret_under_the_new_master_key() {
    let db = TestDatabase::create().await;
    let generate = |db_url: &str| {
        let output = vendorflow(db_url, &["keys", "generate"]);
        assert!(output.status.success(), "{output:?}");
        stdout(&output)
    };
    let old_key = generate(&db.url);
    let new_key = generate(&db.url);
    assert_ne!(old_key, new_key);

    // A secret stored under the old key.
    let old = store::secrets::Keyring::from_config(&old_key, None).unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let owner = uuid::Uuid::new_v4();
    let reference = store::secrets::SecretRef::new("vendors", owner, "provider_api_key");
    let value = secrecy::SecretString::from("rotation-canary-0001".to_owned());
    store::secrets::put(&mut conn, &old, &reference, &value)
        .await
        .unwrap();

    let rotate = |current: &str, previous: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vendorflow"));
        command
            .args(["keys", "rotate"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("VENDORFLOW_MASTER_KEY", current);
        if let Some(previous) = previous {
            command.env("VENDORFLOW_PREVIOUS_MASTER_KEYS", previous);
        }
        command.output().expect("run vendorflow")
    };
    // Without the old key the rotation cannot read the secret, and says what to set.
    let refused = rotate(&new_key, None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("VENDORFLOW_PREVIOUS_MASTER_KEYS"),
        "{refused:?}"
    );
    let rotated = rotate(&new_key, Some(&old_key));
    assert!(rotated.status.success(), "{rotated:?}");

    // The new key alone now reads it; the old key alone no longer does.
    let new = store::secrets::Keyring::from_config(&new_key, None).unwrap();
    let read = store::secrets::get(&mut conn, &new, &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&read),
        "rotation-canary-0001"
    );
    assert!(
        store::secrets::get(&mut conn, &old, &reference)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_revoked_token_no_longer_authenticates_and_a_second_revoke_fails() {
    let db = TestDatabase::create().await;
    let marketplace = stdout(&vendorflow(&db.url, &["marketplaces", "create", "Shuk"]));
    let created = vendorflow(
        &db.url,
        &[
            "tokens",
            "create",
            "--marketplace",
            &marketplace,
            "--role",
            "operator",
            "--label",
            "dana",
        ],
    );
    assert!(created.status.success(), "{created:?}");
    let token = secrecy::SecretString::from(stdout(&created));
    let stderr = String::from_utf8_lossy(&created.stderr);
    let id = stderr
        .split_whitespace()
        .find_map(|word| uuid::Uuid::try_parse(word).ok())
        .expect("the token id is printed")
        .to_string();

    let revoked = vendorflow(&db.url, &["tokens", "revoke", &id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        store::tokens::authenticate(&mut conn, &token)
            .await
            .unwrap(),
        None
    );

    let again = vendorflow(&db.url, &["tokens", "revoke", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains(&id));
}
