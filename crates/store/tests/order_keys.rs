//! Order keys of runs against a real database: the unique index admits one run per
//! (marketplace, vendor, workflow, order key) whatever the order of inserts, its violation is
//! recognised and the holder is found through it; and migration 0008 fills the key of runs that
//! existed before it from their input.

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use store::runs::{DefinitionSource, NewRunRow};
use uuid::Uuid;

const SOURCE: &str = "name = \"w\"\nversion = 1\n";

fn definition(workflow: &str) -> DefinitionSource<'_> {
    DefinitionSource {
        workflow,
        version: 1,
        content_hash: "0000000000000000000000000000000000000000000000000000000000000000",
        file_name: "w.toml",
        source: SOURCE,
    }
}

async fn vendor(conn: &mut PgConnection, marketplace_id: Uuid, external_id: &str) -> Uuid {
    store::vendors::insert(
        conn,
        &store::vendors::NewVendor {
            marketplace_id,
            external_id: external_id.to_owned(),
            legal_name: "Dana Ceramics Ltd".to_owned(),
            corporate_number: "515555555".to_owned(),
            business_type: "company".to_owned(),
            email: "dana@example.co.il".to_owned(),
            phone_e164: "+972521234567".to_owned(),
            mode: "documents_only".to_owned(),
            bank_account_checked: None,
            bank_account_last4: None,
        },
    )
    .await
    .unwrap()
    .id
}

async fn insert(
    conn: &mut PgConnection,
    workflow: &str,
    marketplace_id: Uuid,
    subject_id: Uuid,
    order_key: Option<&str>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    store::runs::insert_runs(
        conn,
        &definition(workflow),
        "first",
        &[NewRunRow {
            id,
            marketplace_id: Some(marketplace_id),
            subject_id: Some(subject_id),
            input: json!({}),
            delay_ms: 0,
            order_key: order_key.map(str::to_owned),
        }],
        "system",
        "test",
    )
    .await?;
    Ok(id)
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_run_per_order_key_is_enforced_by_the_database(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let market = store::marketplaces::insert(&mut conn, "Orders market")
        .await
        .unwrap()
        .id;
    let dana = vendor(&mut conn, market, "dana").await;
    let avi = vendor(&mut conn, market, "avi").await;

    let first = insert(&mut conn, "vendor_charge", market, dana, Some("order-7"))
        .await
        .unwrap();
    let error = insert(&mut conn, "vendor_charge", market, dana, Some("order-7"))
        .await
        .unwrap_err();
    assert!(store::order_keys::is_taken(&error), "{error:?}");
    assert_eq!(
        store::order_keys::find_run(&mut conn, market, dana, "vendor_charge", "order-7")
            .await
            .unwrap(),
        Some(first)
    );

    // The key is per vendor and per workflow, and runs without a key never collide.
    insert(&mut conn, "vendor_charge", market, avi, Some("order-7"))
        .await
        .unwrap();
    insert(&mut conn, "vendor_document", market, dana, Some("order-7"))
        .await
        .unwrap();
    for _ in 0..2 {
        insert(&mut conn, "vendor_onboarding", market, dana, None)
            .await
            .unwrap();
    }
    assert_eq!(
        store::order_keys::find_run(&mut conn, market, dana, "vendor_charge", "order-8")
            .await
            .unwrap(),
        None
    );
    // Another unique violation is not an order key taken.
    let duplicate_id = store::runs::insert_runs(
        &mut conn,
        &definition("vendor_charge"),
        "first",
        &[NewRunRow {
            id: first,
            marketplace_id: Some(market),
            subject_id: Some(dana),
            input: json!({}),
            delay_ms: 0,
            order_key: Some("order-9".to_owned()),
        }],
        "system",
        "test",
    )
    .await
    .unwrap_err();
    assert!(!store::order_keys::is_taken(&duplicate_id));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_insert_waits_for_the_first_and_fails_once_it_commits(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let market = store::marketplaces::insert(&mut conn, "Race market")
        .await
        .unwrap()
        .id;
    let dana = vendor(&mut conn, market, "dana").await;
    drop(conn);

    // The first insert is not committed yet when the second starts: the second waits on the
    // index entry, then fails when the first commits. No lock or lookup in our code does this.
    let mut first = pool.begin().await.unwrap();
    let first_id = insert(&mut first, "vendor_charge", market, dana, Some("order-1"))
        .await
        .unwrap();
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            insert(&mut tx, "vendor_charge", market, dana, Some("order-1")).await
        }
    });
    // Commit only once the second insert is seen waiting for the first transaction's lock.
    let mut look = tokio::time::interval(std::time::Duration::from_millis(10));
    for looks in 0.. {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(looks < 1000, "the second insert waits for the first");
        look.tick().await;
    }
    first.commit().await.unwrap();
    let error = second.await.unwrap().unwrap_err();
    assert!(store::order_keys::is_taken(&error), "{error:?}");
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        store::order_keys::find_run(&mut conn, market, dana, "vendor_charge", "order-1")
            .await
            .unwrap(),
        Some(first_id)
    );
}

/// A run as it was stored before migration 0008, by SQL.
async fn old_run(
    pool: &PgPool,
    workflow: &str,
    market: Uuid,
    subject: Uuid,
    input: Value,
    age_days: i32,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO vendorflow.runs
             (id, workflow, workflow_version, content_hash, marketplace_id, subject_id, status,
              step_name, next_run_at, input, created_at)
         VALUES ($1, $2, 1, $3, $4, $5, 'pending', 'first', now(), $6,
                 now() - make_interval(days => $7))",
    )
    .bind(id)
    .bind(workflow)
    .bind(definition(workflow).content_hash)
    .bind(market)
    .bind(subject)
    .bind(input)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
    id
}

#[sqlx::test(migrations = false)]
async fn the_migration_fills_existing_runs_order_keys_from_their_input(pool: PgPool) {
    // Every migration before 0008, then runs as they were stored then.
    store::MIGRATOR.run_to(7, &pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let market = store::marketplaces::insert(&mut conn, "Old market")
        .await
        .unwrap()
        .id;
    let dana = vendor(&mut conn, market, "dana").await;
    for workflow in ["vendor_charge", "vendor_document", "vendor_onboarding"] {
        sqlx::query(
            "INSERT INTO vendorflow.workflow_definitions (workflow, content_hash, version, file_name, source)
             VALUES ($1, $2, 1, 'w.toml', $3)",
        )
        .bind(workflow)
        .bind(definition(workflow).content_hash)
        .bind(SOURCE)
        .execute(&pool)
        .await
        .unwrap();
    }
    drop(conn);
    let charge = old_run(
        &pool,
        "vendor_charge",
        market,
        dana,
        json!({"order_id": "o-1"}),
        3,
    )
    .await;
    // A second run of the same order, from before the API serialised them: the earliest keeps
    // the key, and the index can be built.
    let later = old_run(
        &pool,
        "vendor_charge",
        market,
        dana,
        json!({"order_id": "o-1"}),
        1,
    )
    .await;
    let document = old_run(
        &pool,
        "vendor_document",
        market,
        dana,
        json!({"reference": "o-1"}),
        1,
    )
    .await;
    let onboarding = old_run(
        &pool,
        "vendor_onboarding",
        market,
        dana,
        json!({"order_id": "x"}),
        1,
    )
    .await;

    store::migrate(&pool).await.unwrap();
    let keys: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, order_key FROM vendorflow.runs ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let key_of = |id: Uuid| {
        keys.iter()
            .find(|(run, _)| *run == id)
            .and_then(|(_, key)| key.clone())
    };
    assert_eq!(key_of(charge).as_deref(), Some("o-1"));
    assert_eq!(key_of(later), None);
    assert_eq!(key_of(document).as_deref(), Some("o-1"));
    assert_eq!(key_of(onboarding), None);

    let mut conn = pool.acquire().await.unwrap();
    let error = insert(&mut conn, "vendor_charge", market, dana, Some("o-1"))
        .await
        .unwrap_err();
    assert!(store::order_keys::is_taken(&error), "{error:?}");
}
