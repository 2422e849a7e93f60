//! The scheduler's retention jobs against a real database: each deletes what is older than its
//! rule and keeps what is not, in batches smaller than the backlog; nothing still to be delivered
//! (an outbox event not fanned out, a pending delivery, an event with a pending delivery or a dead
//! letter) is ever deleted; and a running scheduler applies retention by itself. Ages are moved
//! with SQL, never waited for.

use std::time::Duration;

use engine::{
    RetentionJob, RetentionPolicy, RetentionReport, RetentionRule, Scheduler, SchedulerConfig,
};
use serde_json::json;
use sqlx::PgPool;
use store::idempotency::{Claim, KeyedRequest};
use store::outbox::NewOutboxEvent;
use store::secrets::{Keyring, MasterKey};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{definitions, enqueue, registry};

const ONE_STEP: &str = r#"
name = "kept"
version = 1

[[steps]]
name = "one"
action = "first"
"#;

const DAY: Duration = Duration::from_secs(86_400);

/// Every job keeps rows for ten days (idempotency keys for one), in batches of two rows.
fn scheduler(pool: &PgPool) -> Scheduler {
    let rule = RetentionRule::hourly(10 * DAY);
    Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            batch_size: 2,
            retention: Some(RetentionPolicy {
                finished_runs: rule,
                idempotency_keys: RetentionRule::hourly(DAY),
                webhook_deliveries: rule,
                outbox: rule,
            }),
            ..SchedulerConfig::default()
        },
    )
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM vendorflow.{table}"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn exec(pool: &PgPool, sql: &'static str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(pool).await.unwrap();
}

/// Finished runs: three that ended 20 days ago (deleted with their history), one that ended
/// yesterday and one started 20 days ago and still pending (both kept).
async fn runs(pool: &PgPool) -> Vec<Uuid> {
    let registry = registry(&Default::default());
    let definitions = definitions(&registry, &[("kept.toml", ONE_STEP)]);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(enqueue(pool, &definitions, "kept", json!({})).await.0);
    }
    for (id, ended) in [(ids[0], 20), (ids[1], 20), (ids[2], 20), (ids[3], 1)] {
        sqlx::query(
            "UPDATE vendorflow.runs SET status = 'succeeded', outcome = 'completed',
                    next_run_at = NULL, created_at = now() - make_interval(days => $2),
                    finished_at = now() - make_interval(days => $2)
             WHERE id = $1",
        )
        .bind(id)
        .bind(ended)
        .execute(pool)
        .await
        .unwrap();
    }
    exec(
        pool,
        "UPDATE vendorflow.runs SET created_at = now() - interval '20 days' WHERE id = $1",
        ids[4],
    )
    .await;
    ids
}

/// Idempotency keys: three made two days ago (deleted), one made now (kept).
async fn keys(pool: &PgPool, marketplace_id: Uuid) {
    let mut conn = pool.acquire().await.unwrap();
    for key in ["old-1", "old-2", "old-3", "young"] {
        let claim = store::idempotency::claim(
            &mut conn,
            KeyedRequest {
                marketplace_id,
                key,
                method: "POST",
                path: "/v1/onboardings",
                request_hash: b"hash",
            },
        )
        .await
        .unwrap();
        assert_eq!(claim, Claim::Proceed);
    }
    sqlx::query(
        "UPDATE vendorflow.idempotency_keys SET created_at = now() - interval '2 days'
         WHERE idempotency_key LIKE 'old-%'",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The outbox events and deliveries, by what retention must do with them.
struct Webhooks {
    /// Fanned out 20 days ago to no endpoint: deleted.
    unsent: Uuid,
    /// Their only delivery was delivered (two events) or died 20 days ago: deleted with it.
    finished: [Uuid; 3],
    /// Its delivery is still pending, although 20 days old: both kept.
    pending: Uuid,
    /// Delivered yesterday: both kept.
    recent: Uuid,
    /// Made now, fanned out to no endpoint: kept.
    young: Uuid,
    /// Made 20 days ago and never fanned out (no relay ran since): kept, to be delivered.
    not_fanned_out: Uuid,
}

async fn webhooks(pool: &PgPool, marketplace_id: Uuid) -> Webhooks {
    let mut conn = pool.acquire().await.unwrap();
    let keyring = Keyring::single(MasterKey::generate());
    store::webhooks::create_endpoint(
        &mut conn,
        &keyring,
        marketplace_id,
        "https://hooks.example.com/vendorflow",
        Some(&["vendor.ready".to_owned()]),
    )
    .await
    .unwrap();
    let mut event = async |event_type: &str| {
        let id = Uuid::now_v7();
        store::outbox::insert(
            &mut conn,
            &NewOutboxEvent {
                id,
                marketplace_id: Some(marketplace_id),
                run_id: None,
                event_type: event_type.to_owned(),
                payload: json!({}),
            },
        )
        .await
        .unwrap();
        id
    };
    let webhooks = Webhooks {
        unsent: event("charge.failed").await,
        finished: [
            event("vendor.ready").await,
            event("vendor.ready").await,
            event("vendor.ready").await,
        ],
        pending: event("vendor.ready").await,
        recent: event("vendor.ready").await,
        young: event("charge.failed").await,
        not_fanned_out: Uuid::nil(),
    };
    let fanned = store::webhooks::fan_out(pool, 100, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((fanned.events, fanned.deliveries), (7, 5));
    let not_fanned_out = event("vendor.ready").await;

    let delivered = "UPDATE vendorflow.webhook_deliveries
                     SET status = 'delivered', delivered_at = now(), next_attempt_at = NULL
                     WHERE outbox_id = $1";
    for id in [webhooks.finished[0], webhooks.finished[1], webhooks.recent] {
        exec(pool, delivered, id).await;
    }
    exec(
        pool,
        "UPDATE vendorflow.webhook_deliveries SET status = 'dead', next_attempt_at = NULL,
                last_error = 'attempts exhausted'
         WHERE outbox_id = $1",
        webhooks.finished[2],
    )
    .await;
    sqlx::query(
        "UPDATE vendorflow.outbox SET created_at = now() - interval '20 days' WHERE id <> $1",
    )
    .bind(webhooks.young)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE vendorflow.webhook_deliveries SET updated_at = now() - interval '20 days'
         WHERE outbox_id <> $1",
    )
    .bind(webhooks.recent)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE vendorflow.webhook_deliveries SET updated_at = now() - interval '1 day'
         WHERE outbox_id = $1",
    )
    .bind(webhooks.recent)
    .execute(pool)
    .await
    .unwrap();
    Webhooks {
        not_fanned_out,
        ..webhooks
    }
}

async fn ids(pool: &PgPool, sql: &'static str) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
    ids.sort();
    ids
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_job_deletes_what_is_old_and_keeps_the_rest(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Retention market")
        .await
        .unwrap();
    drop(conn);
    let runs = runs(&pool).await;
    keys(&pool, marketplace.id).await;
    let hooks = webhooks(&pool, marketplace.id).await;

    let scheduler = scheduler(&pool);
    // Batches of two rows against backlogs of three and four: each job loops until it is done.
    let report = scheduler.tick_once().await.unwrap();
    assert_eq!(
        report.retention,
        RetentionReport {
            finished_runs: 3,
            idempotency_keys: 3,
            webhook_deliveries: 3,
            outbox: 4,
        }
    );
    for job in RetentionJob::ALL {
        assert!(report.retention.get(job) > 0, "{}", job.name());
    }

    let mut kept_runs = vec![runs[3], runs[4]];
    kept_runs.sort();
    assert_eq!(
        ids(&pool, "SELECT id FROM vendorflow.runs").await,
        kept_runs
    );
    // The deleted runs' history went with them.
    let orphans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vendorflow.run_history WHERE run_id <> ALL($1)")
            .bind(&kept_runs)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(orphans, 0);

    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM vendorflow.idempotency_keys")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(keys, ["young"]);

    let mut kept_events = vec![
        hooks.pending,
        hooks.recent,
        hooks.young,
        hooks.not_fanned_out,
    ];
    kept_events.sort();
    assert_eq!(
        ids(&pool, "SELECT id FROM vendorflow.outbox").await,
        kept_events
    );
    let mut delivered_to = vec![hooks.pending, hooks.recent];
    delivered_to.sort();
    assert_eq!(
        ids(&pool, "SELECT outbox_id FROM vendorflow.webhook_deliveries").await,
        delivered_to
    );
    // The fan-out markers of deleted events went with them (ON DELETE CASCADE).
    let mut marked = vec![hooks.pending, hooks.recent, hooks.young];
    marked.sort();
    assert_eq!(
        ids(&pool, "SELECT outbox_id FROM vendorflow.webhook_fanout").await,
        marked
    );
    for deleted in [hooks.unsent, hooks.finished[0]] {
        assert!(!marked.contains(&deleted));
    }

    // A second pass finds nothing more, and the relay fans out only the event it never saw:
    // nothing retention left behind looks new to it.
    assert_eq!(
        scheduler.tick_once().await.unwrap().retention,
        RetentionReport::default()
    );
    let fanned = store::webhooks::fan_out(&pool, 100, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((fanned.events, fanned.deliveries), (1, 1));
    assert_eq!(count(&pool, "webhook_deliveries").await, 3);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_dead_letter_or_a_replayed_delivery_keeps_its_event(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Replay market")
        .await
        .unwrap();
    drop(conn);
    let hooks = webhooks(&pool, marketplace.id).await;
    // Deliveries are kept for longer than events: the dead letter outlives the event's own age,
    // and so does its event, which a replay needs.
    let mut policy = RetentionPolicy {
        webhook_deliveries: RetentionRule::hourly(30 * DAY),
        outbox: RetentionRule::hourly(10 * DAY),
        ..RetentionPolicy::default()
    };
    let keep_deliveries = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            retention: Some(policy.clone()),
            ..SchedulerConfig::default()
        },
    );
    let report = keep_deliveries.retention_once().await.unwrap();
    assert_eq!((report.webhook_deliveries, report.outbox), (0, 1));
    let outbox = ids(&pool, "SELECT id FROM vendorflow.outbox").await;
    assert!(
        outbox.contains(&hooks.finished[2]),
        "the dead letter's event"
    );
    assert!(!outbox.contains(&hooks.unsent));

    // An operator replays the dead letter: it is pending again, so no age deletes it or its event.
    let delivery: Uuid =
        sqlx::query_scalar("SELECT id FROM vendorflow.webhook_deliveries WHERE outbox_id = $1")
            .bind(hooks.finished[2])
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        store::webhooks::replay(&mut conn, delivery, marketplace.id)
            .await
            .unwrap()
    );
    exec(
        &pool,
        "UPDATE vendorflow.webhook_deliveries SET updated_at = now() - interval '90 days'
         WHERE id = $1",
        delivery,
    )
    .await;
    policy.webhook_deliveries = RetentionRule::hourly(10 * DAY);
    let report = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            retention: Some(policy),
            ..SchedulerConfig::default()
        },
    )
    .retention_once()
    .await
    .unwrap();
    // The three other finished deliveries go, and then their events; the replayed one stays.
    assert_eq!((report.webhook_deliveries, report.outbox), (2, 2));
    let status: String =
        sqlx::query_scalar("SELECT status FROM vendorflow.webhook_deliveries WHERE id = $1")
            .bind(delivery)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");
    assert!(
        ids(&pool, "SELECT id FROM vendorflow.outbox")
            .await
            .contains(&hooks.finished[2])
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_running_scheduler_applies_retention_by_itself(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Running market")
        .await
        .unwrap();
    drop(conn);
    keys(&pool, marketplace.id).await;
    let scheduler = std::sync::Arc::new(scheduler(&pool));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let scheduler = scheduler.clone();
        let shutdown = shutdown.clone();
        async move { scheduler.run(shutdown).await }
    });
    // Every job runs when the scheduler starts; look until the old keys are gone (bounded).
    let mut look = tokio::time::interval(Duration::from_millis(20));
    for looks in 0.. {
        if count(&pool, "idempotency_keys").await == 1 {
            break;
        }
        assert!(looks < 500, "retention ran within 500 looks");
        look.tick().await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(count(&pool, "idempotency_keys").await, 1);
}
