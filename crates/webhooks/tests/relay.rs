//! The relay against a real database and a real HTTP receiver on 127.0.0.1, driven tick by tick.
//! Retries are made due by moving `next_attempt_at` in SQL, never by sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use store::outbox::{self, NewOutboxEvent};
use store::secrets::{Keyring, MasterKey};
use store::webhooks::{self as wstore, DeliveryFilter, DeliveryStatus, Page};
use uuid::Uuid;
use webhooks::{
    DEFAULT_TOLERANCE, EgressPolicy, Relay, RelayConfig, RetrySchedule, WebhookSecret, verify,
};

/// One request the receiver got.
#[derive(Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn webhook_id(&self) -> String {
        self.headers["webhook-id"]
            .to_str()
            .expect("ascii id")
            .to_owned()
    }
}

/// A scripted answer: status and extra headers.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
    }
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("script").extend(replies);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }
}

async fn handle(State(rx): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    rx.received.lock().expect("received").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let next = rx
        .script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or_else(|| reply(200));
    let mut response = StatusCode::from_u16(next.status)
        .expect("status")
        .into_response();
    for (name, value) in next.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

/// Starts a receiver on 127.0.0.1 on a free port; returns its base URL.
async fn start_receiver() -> (String, Receiver) {
    let rx = Receiver::default();
    let app = Router::new().fallback(handle).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), rx)
}

struct World {
    pool: PgPool,
    keyring: Arc<Keyring>,
    marketplace: Uuid,
}

async fn world(pool: PgPool) -> World {
    let marketplace = add_marketplace(&pool, "Dana's market").await;
    World {
        pool,
        keyring: Arc::new(Keyring::single(MasterKey::generate())),
        marketplace,
    }
}

async fn add_marketplace(pool: &PgPool, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO vendorflow.marketplaces (id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .expect("marketplace");
    id
}

impl World {
    fn relay_with(&self, schedule: RetrySchedule) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.keyring.clone(),
            RelayConfig {
                batch_size: 50,
                request_timeout: Duration::from_secs(10),
                schedule,
                egress: EgressPolicy::Unrestricted,
                ..RelayConfig::default()
            },
        )
        .expect("relay")
    }

    fn relay(&self) -> Relay {
        self.relay_with(RetrySchedule::standard())
    }

    async fn endpoint(&self, url: &str, types: Option<&[&str]>) -> (Uuid, WebhookSecret) {
        let types: Option<Vec<String>> = types.map(|t| t.iter().map(|s| (*s).to_owned()).collect());
        let mut conn = self.pool.acquire().await.expect("conn");
        let created = wstore::create_endpoint(
            &mut conn,
            &self.keyring,
            self.marketplace,
            url,
            types.as_deref(),
        )
        .await
        .expect("endpoint");
        let secret = WebhookSecret::from_secret_string(&created.secret).expect("whsec secret");
        (created.id, secret)
    }

    async fn event(&self, event_type: &str, payload: Value) -> Uuid {
        let mut conn = self.pool.acquire().await.expect("conn");
        insert_event(&mut conn, self.marketplace, event_type, payload).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> Vec<wstore::Delivery> {
        let mut conn = self.pool.acquire().await.expect("conn");
        wstore::list_deliveries(
            &mut conn,
            self.marketplace,
            &filter,
            Page {
                limit: 100,
                before: None,
            },
        )
        .await
        .expect("list")
        .items
    }

    async fn only_delivery(&self) -> wstore::Delivery {
        let mut all = self.deliveries(DeliveryFilter::default()).await;
        assert_eq!(all.len(), 1, "exactly one delivery");
        all.remove(0)
    }

    /// Makes every pending delivery due now, as if its retry delay had passed.
    async fn make_due(&self) {
        sqlx::query(
            "UPDATE vendorflow.webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'",
        )
        .execute(&self.pool)
        .await
        .expect("make due");
    }

    /// Seconds between the last attempt and the next one of a delivery.
    async fn scheduled_gap(&self, delivery: Uuid) -> f64 {
        sqlx::query_scalar(
            "SELECT extract(epoch FROM next_attempt_at - last_attempt_at)::float8
             FROM vendorflow.webhook_deliveries WHERE id = $1",
        )
        .bind(delivery)
        .fetch_one(&self.pool)
        .await
        .expect("gap")
    }
}

async fn insert_event(
    conn: &mut sqlx::PgConnection,
    marketplace: Uuid,
    event_type: &str,
    payload: Value,
) -> Uuid {
    let id = Uuid::now_v7();
    outbox::insert(
        conn,
        &NewOutboxEvent {
            id,
            marketplace_id: Some(marketplace),
            run_id: None,
            event_type: event_type.to_owned(),
            payload,
        },
    )
    .await
    .expect("outbox insert");
    id
}

fn assert_verifies(received: &Received, secret: &WebhookSecret) {
    verify(
        &received.headers,
        &received.body,
        secret,
        Utc::now(),
        DEFAULT_TOLERANCE,
    )
    .expect("the signature verifies");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_delivered_event_carries_a_valid_signature_over_the_exact_body(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (_, secret) = w.endpoint(&format!("{base}/hooks"), None).await;
    let event = w
        .event(
            "vendor.ready",
            json!({"vendor_id": "v-1", "status": "active"}),
        )
        .await;
    let relay = w.relay();

    let report = relay.tick_once().await.expect("tick");
    assert_eq!(report.events_fanned_out, 1);
    assert_eq!(report.deliveries_created, 1);
    assert_eq!(report.delivered, 1);

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.webhook_id(), event.to_string());
    assert_eq!(request.headers["content-type"], "application/json");
    assert_verifies(request, &secret);
    let body: Value = serde_json::from_slice(&request.body).expect("json body");
    assert_eq!(body["type"], "vendor.ready");
    assert_eq!(
        body["data"],
        json!({"vendor_id": "v-1", "status": "active"})
    );
    let stamp = body["timestamp"].as_str().expect("timestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{stamp}"
    );

    // A verifier holding another secret refuses the same request.
    let other = WebhookSecret::parse(secrecy::ExposeSecret::expose_secret(
        &store::secrets::generate_webhook_secret(),
    ))
    .expect("other secret");
    assert!(
        verify(
            &request.headers,
            &request.body,
            &other,
            Utc::now(),
            DEFAULT_TOLERANCE
        )
        .is_err()
    );

    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "delivered");
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.last_status_code, Some(200));

    // Nothing is sent twice.
    let again = relay.tick_once().await.expect("tick");
    assert_eq!(again.attempted, 0);
    assert_eq!(again.events_fanned_out, 0);
    assert_eq!(rx.received().len(), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_500_then_200_is_delivered_on_the_second_attempt_after_its_scheduled_delay(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (_, secret) = w.endpoint(&format!("{base}/hooks"), None).await;
    w.event("charge.failed", json!({"run_id": "r-1"})).await;
    rx.answer_next([reply(500)]);
    let relay = w.relay();

    let first = relay.tick_once().await.expect("tick");
    assert_eq!(first.retried, 1);
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "pending");
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.last_status_code, Some(500));
    assert_eq!(delivery.last_error.as_deref(), Some("HTTP 500"));
    // The standard schedule's first retry: 5 s with ±15% jitter.
    let gap = w.scheduled_gap(delivery.id).await;
    assert!((4.2..7.0).contains(&gap), "gap {gap}");

    // Not due yet: the next tick leaves it alone.
    let early = relay.tick_once().await.expect("tick");
    assert_eq!(early.attempted, 0);
    assert_eq!(rx.received().len(), 1);

    w.make_due().await;
    let second = relay.tick_once().await.expect("tick");
    assert_eq!(second.delivered, 1);
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "delivered");
    assert_eq!(delivery.attempt, 2);
    assert!(delivery.delivered_at.is_some());

    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].webhook_id(), got[1].webhook_id());
    assert_eq!(got[0].body, got[1].body);
    for request in &got {
        assert_verifies(request, &secret);
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn retry_after_on_429_and_503_sets_the_next_attempt(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    w.event("vendor.ready", json!({})).await;
    rx.answer_next([Reply {
        status: 429,
        headers: vec![("retry-after", "120".to_owned())],
    }]);
    let relay = w.relay();

    relay.tick_once().await.expect("tick");
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.last_status_code, Some(429));
    let gap = w.scheduled_gap(delivery.id).await;
    assert!((120.0..125.0).contains(&gap), "gap {gap}");

    // An HTTP date an hour ahead, on 503.
    let later = (Utc::now() + chrono::Duration::hours(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    rx.answer_next([Reply {
        status: 503,
        headers: vec![("retry-after", later)],
    }]);
    w.make_due().await;
    relay.tick_once().await.expect("tick");
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.attempt, 2);
    assert_eq!(delivery.last_status_code, Some(503));
    let gap = w.scheduled_gap(delivery.id).await;
    assert!((3590.0..3610.0).contains(&gap), "gap {gap}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_last_failed_attempt_makes_a_dead_letter_and_replay_resends_the_same_webhook_id(
    pool: PgPool,
) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (_, secret) = w.endpoint(&format!("{base}/hooks"), None).await;
    let event = w.event("vendor.ready", json!({"n": 1})).await;
    rx.answer_next([reply(500), reply(502), reply(504)]);
    let relay = w.relay_with(RetrySchedule::new(
        vec![Duration::from_secs(1), Duration::from_secs(1)],
        0.0,
    ));

    relay.tick_once().await.expect("first");
    w.make_due().await;
    relay.tick_once().await.expect("second");
    w.make_due().await;
    let last = relay.tick_once().await.expect("third");
    assert_eq!(last.dead, 1);
    let dead = w.only_delivery().await;
    assert_eq!(dead.status, "dead");
    assert_eq!(dead.attempt, 3);
    assert_eq!(dead.last_status_code, Some(504));
    assert!(dead.next_attempt_at.is_none());

    // A dead letter is never picked up again by itself.
    w.make_due().await;
    assert_eq!(relay.tick_once().await.expect("tick").attempted, 0);
    assert_eq!(rx.received().len(), 3);
    let letters = w
        .deliveries(DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            ..DeliveryFilter::default()
        })
        .await;
    assert_eq!(letters.len(), 1);

    // Replay is scoped by marketplace.
    let mut conn = w.pool.acquire().await.expect("conn");
    let stranger = add_marketplace(&w.pool, "Another market").await;
    assert!(
        !wstore::replay(&mut conn, dead.id, stranger)
            .await
            .expect("replay")
    );
    assert!(
        wstore::replay(&mut conn, dead.id, w.marketplace)
            .await
            .expect("replay")
    );
    let replayed = relay.tick_once().await.expect("tick");
    assert_eq!(replayed.delivered, 1);
    let got = rx.received();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.webhook_id() == event.to_string()));
    assert_verifies(&got[3], &secret);
    let delivered = w.only_delivery().await;
    assert_eq!(delivered.status, "delivered");
    assert_eq!(delivered.attempt, 1);
    // A delivery that is pending cannot be replayed; a delivered one can be re-sent.
    assert!(
        wstore::replay(&mut conn, delivered.id, w.marketplace)
            .await
            .expect("replay")
    );
    assert!(
        !wstore::replay(&mut conn, delivered.id, w.marketplace)
            .await
            .expect("replay pending")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rolled_back_event_is_never_delivered_and_a_late_committed_one_is(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    let relay = w.relay();

    // An event whose transaction rolls back.
    let mut doomed = w.pool.begin().await.expect("begin");
    let rolled_back = insert_event(&mut doomed, w.marketplace, "vendor.ready", json!({})).await;
    // An event written earlier than the next one but committed after it.
    let mut slow = w.pool.begin().await.expect("begin");
    let late = insert_event(&mut slow, w.marketplace, "vendor.ready", json!({})).await;
    let prompt = w.event("vendor.ready", json!({})).await;
    assert!(late < prompt);

    let first = relay.tick_once().await.expect("tick");
    assert_eq!(first.delivered, 1);
    doomed.rollback().await.expect("rollback");
    slow.commit().await.expect("commit");
    let second = relay.tick_once().await.expect("tick");
    assert_eq!(second.delivered, 1);
    relay.tick_once().await.expect("tick");

    let ids: Vec<String> = rx.received().iter().map(Received::webhook_id).collect();
    assert_eq!(ids, vec![prompt.to_string(), late.to_string()]);
    assert!(!ids.contains(&rolled_back.to_string()));
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_endpoint_receives_only_the_event_types_it_subscribed_to(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (only_ready, _) = w
        .endpoint(&format!("{base}/ready"), Some(&["vendor.ready"]))
        .await;
    let (everything, _) = w.endpoint(&format!("{base}/all"), None).await;
    w.event("vendor.ready", json!({})).await;
    w.event("charge.failed", json!({})).await;
    // An event of another marketplace reaches none of these endpoints.
    let other = add_marketplace(&w.pool, "Another market").await;
    let mut conn = w.pool.acquire().await.expect("conn");
    insert_event(&mut conn, other, "vendor.ready", json!({})).await;

    let report = w.relay().tick_once().await.expect("tick");
    assert_eq!(report.events_fanned_out, 3);
    assert_eq!(report.deliveries_created, 3);
    assert_eq!(report.delivered, 3);

    let got = rx.received();
    let types_at = |path: &str| {
        let mut types: Vec<String> = got
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).expect("json");
                body["type"].as_str().expect("type").to_owned()
            })
            .collect();
        types.sort();
        types
    };
    assert_eq!(types_at("/ready"), vec!["vendor.ready"]);
    assert_eq!(types_at("/all"), vec!["charge.failed", "vendor.ready"]);
    let by_endpoint = |id| DeliveryFilter {
        endpoint_id: Some(id),
        ..DeliveryFilter::default()
    };
    assert_eq!(w.deliveries(by_endpoint(only_ready)).await.len(), 1);
    assert_eq!(w.deliveries(by_endpoint(everything)).await.len(), 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_410_disables_the_endpoint_and_dead_letters_its_pending_deliveries(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (endpoint, _) = w.endpoint(&format!("{base}/gone"), None).await;
    w.event("vendor.ready", json!({})).await;
    w.event("vendor.ready", json!({})).await;
    rx.answer_next([reply(410)]);
    let relay = w.relay();
    // One delivery per tick, so the second is still pending when the first answers 410.
    let relay_one = Relay::new(
        w.pool.clone(),
        w.keyring.clone(),
        RelayConfig {
            batch_size: 1,
            egress: EgressPolicy::Unrestricted,
            ..RelayConfig::default()
        },
    )
    .expect("relay");
    wstore::fan_out(&w.pool, 10, Duration::from_secs(3600))
        .await
        .expect("fan out both events");
    let report = relay_one.tick_once().await.expect("tick");
    assert_eq!(report.attempted, 1);
    assert_eq!(report.dead, 1);
    assert_eq!(rx.received().len(), 1);
    let all = w.deliveries(DeliveryFilter::default()).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|d| d.status == "dead"), "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|d| d.last_status_code == Some(410))
            .count(),
        1
    );
    assert!(
        all.iter()
            .any(|d| d.last_error.as_deref() == Some("endpoint disabled: it answered 410 Gone"))
    );

    let mut conn = w.pool.acquire().await.expect("conn");
    let endpoints = wstore::list_endpoints(&mut conn, w.marketplace)
        .await
        .expect("endpoints");
    let gone = endpoints
        .iter()
        .find(|e| e.id == endpoint)
        .expect("endpoint");
    assert!(!gone.enabled);
    assert!(
        gone.disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("410"))
    );

    // New events are not fanned out to a disabled endpoint, and replay is refused while it is
    // disabled.
    w.event("vendor.ready", json!({})).await;
    let report = relay.tick_once().await.expect("tick");
    assert_eq!(report.events_fanned_out, 1);
    assert_eq!(report.deliveries_created, 0);
    assert!(
        !wstore::replay(&mut conn, all[0].id, w.marketplace)
            .await
            .expect("replay")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/moved"), None).await;
    w.event("vendor.ready", json!({})).await;
    rx.answer_next([Reply {
        status: 302,
        headers: vec![("location", format!("{base}/elsewhere"))],
    }]);

    let report = w.relay().tick_once().await.expect("tick");
    assert_eq!(report.retried, 1);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/moved");
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "pending");
    assert_eq!(delivery.last_status_code, Some(302));
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_relays_running_at_once_send_each_event_once(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    let mut events = Vec::new();
    for i in 0..30 {
        events.push(w.event("vendor.ready", json!({"i": i})).await);
    }
    let config = RelayConfig {
        batch_size: 7,
        egress: EgressPolicy::Unrestricted,
        ..RelayConfig::default()
    };
    let a = Relay::new(w.pool.clone(), w.keyring.clone(), config.clone()).expect("relay a");
    let b = Relay::new(w.pool.clone(), w.keyring.clone(), config).expect("relay b");
    // Bounded: 30 events at 7 per tick per relay need a handful of rounds.
    for _ in 0..20 {
        let (ra, rb) = tokio::join!(a.tick_once(), b.tick_once());
        let (ra, rb) = (ra.expect("tick a"), rb.expect("tick b"));
        if ra == Default::default() && rb == Default::default() {
            break;
        }
    }
    let mut ids: Vec<String> = rx.received().iter().map(Received::webhook_id).collect();
    ids.sort();
    let mut expected: Vec<String> = events.iter().map(Uuid::to_string).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let delivered = w
        .deliveries(DeliveryFilter {
            status: Some(DeliveryStatus::Delivered),
            ..DeliveryFilter::default()
        })
        .await;
    assert_eq!(delivered.len(), 30);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_default_egress_policy_refuses_a_loopback_endpoint_without_sending(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    w.event("vendor.ready", json!({})).await;
    let strict =
        Relay::new(w.pool.clone(), w.keyring.clone(), RelayConfig::default()).expect("relay");

    let report = strict.tick_once().await.expect("tick");
    assert_eq!(report.dead, 1);
    assert!(rx.received().is_empty());
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "dead");
    let error = delivery.last_error.expect("error");
    assert!(error.contains("https"), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_relay_whose_claim_expired_cannot_record_over_the_new_claim(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    w.event("vendor.ready", json!({})).await;
    let relay = w.relay();
    // Fan out only: claim nothing yet (the receiver would answer 200).
    wstore::fan_out(&w.pool, 10, Duration::from_secs(3600))
        .await
        .expect("fan out");
    let stale = wstore::claim_due(&w.pool, 10, Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(stale.len(), 1);
    // The lease runs out (the first relay stalled); another relay claims and delivers.
    w.make_due().await;
    assert_eq!(relay.tick_once().await.expect("tick").delivered, 1);
    assert_eq!(rx.received().len(), 1);

    let recorded = wstore::record_attempt(
        &w.pool,
        &wstore::AttemptRecord {
            delivery_id: stale[0].id,
            claim_token: stale[0].claim_token,
            outcome: wstore::AttemptOutcome::Dead,
            status_code: Some(500),
            error: Some("HTTP 500".to_owned()),
            duration_ms: 1,
        },
    )
    .await
    .expect("record");
    assert!(!recorded);
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "delivered");
    assert_eq!(delivery.attempt, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn disabling_an_endpoint_dead_letters_its_pending_deliveries_until_it_is_enabled(
    pool: PgPool,
) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (endpoint, _) = w.endpoint(&format!("{base}/hooks"), None).await;
    w.event("vendor.ready", json!({})).await;
    wstore::fan_out(&w.pool, 10, Duration::from_secs(3600))
        .await
        .expect("fan out");
    let mut conn = w.pool.acquire().await.expect("conn");
    assert!(
        wstore::set_endpoint_enabled(&mut conn, w.marketplace, endpoint, false, "maintenance")
            .await
            .expect("disable")
    );

    let report = w.relay().tick_once().await.expect("tick");
    assert_eq!(report.swept, 1);
    assert_eq!(report.attempted, 0);
    let delivery = w.only_delivery().await;
    assert_eq!(delivery.status, "dead");
    assert_eq!(delivery.last_error.as_deref(), Some("endpoint disabled"));
    assert!(
        !wstore::replay(&mut conn, delivery.id, w.marketplace)
            .await
            .expect("replay")
    );

    assert!(
        wstore::set_endpoint_enabled(&mut conn, w.marketplace, endpoint, true, "")
            .await
            .expect("enable")
    );
    assert!(
        wstore::replay(&mut conn, delivery.id, w.marketplace)
            .await
            .expect("replay")
    );
    assert_eq!(w.relay().tick_once().await.expect("tick").delivered, 1);
    assert_eq!(rx.received().len(), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn deliveries_are_listed_newest_first_in_pages_scoped_to_the_marketplace(pool: PgPool) {
    let w = world(pool).await;
    let (base, _rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    for _ in 0..5 {
        w.event("vendor.ready", json!({})).await;
    }
    wstore::fan_out(&w.pool, 10, Duration::from_secs(3600))
        .await
        .expect("fan out");
    let mut conn = w.pool.acquire().await.expect("conn");
    let first = wstore::list_deliveries(
        &mut conn,
        w.marketplace,
        &DeliveryFilter::default(),
        Page {
            limit: 2,
            before: None,
        },
    )
    .await
    .expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert!(first.items[0].id > first.items[1].id);
    let mut seen: Vec<Uuid> = first.items.iter().map(|d| d.id).collect();
    let mut cursor = first.next_cursor;
    while let Some(before) = cursor {
        let page = wstore::list_deliveries(
            &mut conn,
            w.marketplace,
            &DeliveryFilter::default(),
            Page {
                limit: 2,
                before: Some(before),
            },
        )
        .await
        .expect("page");
        seen.extend(page.items.iter().map(|d| d.id));
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5);

    let stranger = add_marketplace(&w.pool, "Another market").await;
    let theirs = wstore::list_deliveries(
        &mut conn,
        stranger,
        &DeliveryFilter::default(),
        Page {
            limit: 10,
            before: None,
        },
    )
    .await
    .expect("other marketplace");
    assert!(theirs.items.is_empty());
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_endpoint_secret_is_stored_encrypted_and_shown_only_at_creation(pool: PgPool) {
    let w = world(pool).await;
    let mut conn = w.pool.acquire().await.expect("conn");
    let created = wstore::create_endpoint(
        &mut conn,
        &w.keyring,
        w.marketplace,
        "https://example.co.il/hooks",
        None,
    )
    .await
    .expect("create");
    let shown: &SecretString = &created.secret;
    let clear = secrecy::ExposeSecret::expose_secret(shown).to_owned();
    assert!(clear.starts_with("whsec_"));
    assert!(!format!("{created:?}").contains(&clear));

    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM (
             SELECT row_to_json(e)::text AS t FROM vendorflow.webhook_endpoints e
             UNION ALL SELECT row_to_json(s)::text FROM vendorflow.secrets s) rows",
    )
    .fetch_one(&w.pool)
    .await
    .expect("dump");
    assert!(!dump.contains(&clear["whsec_".len()..]), "{dump}");

    let stored = wstore::endpoint_secret(&mut conn, &w.keyring, created.id)
        .await
        .expect("secret")
        .expect("stored");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), clear);

    let refused = wstore::create_endpoint(&mut conn, &w.keyring, w.marketplace, "ftp://x", None)
        .await
        .expect_err("bad url");
    assert!(matches!(refused, wstore::WebhookStoreError::InvalidUrl(_)));
}

async fn watermark(pool: &PgPool) -> Uuid {
    sqlx::query_scalar("SELECT fanout_watermark FROM vendorflow.webhook_relay_state")
        .fetch_one(pool)
        .await
        .expect("watermark")
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_fanout_watermark_never_passes_an_event_another_relay_still_holds(pool: PgPool) {
    let w = world(pool).await;
    let (base, _rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    let held = w.event("vendor.ready", json!({})).await;
    let after = w.event("vendor.ready", json!({})).await;

    // Another relay is in the middle of fanning out `held`: it holds the row's lock.
    let mut other = w.pool.begin().await.expect("begin");
    sqlx::query("SELECT id FROM vendorflow.outbox WHERE id = $1 FOR UPDATE")
        .bind(held)
        .execute(&mut *other)
        .await
        .expect("lock");

    // With no look-back at all, the watermark would jump to the present if it ignored `held`.
    let report = wstore::fan_out(&w.pool, 10, Duration::ZERO)
        .await
        .expect("fan out");
    assert_eq!(report.events, 1);
    let mark = watermark(&w.pool).await;
    assert!(
        mark <= held,
        "the watermark passed an event not fanned out yet"
    );

    // The other relay dies without fanning out; the event is still found.
    other.rollback().await.expect("rollback");
    let report = wstore::fan_out(&w.pool, 10, Duration::ZERO)
        .await
        .expect("fan out");
    assert_eq!(report.events, 1);
    let mark = watermark(&w.pool).await;
    assert!(
        mark > after,
        "caught up, the watermark moves past fanned-out events"
    );
    let fanned: i64 = sqlx::query_scalar("SELECT count(*) FROM vendorflow.webhook_fanout")
        .fetch_one(&w.pool)
        .await
        .expect("count");
    assert_eq!(fanned, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn run_delivers_in_the_background_and_stops_when_cancelled(pool: PgPool) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    w.endpoint(&format!("{base}/hooks"), None).await;
    let relay = Arc::new(
        Relay::new(
            w.pool.clone(),
            w.keyring.clone(),
            RelayConfig {
                poll_interval: Duration::from_millis(20),
                egress: EgressPolicy::Unrestricted,
                ..RelayConfig::default()
            },
        )
        .expect("relay"),
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let relay = relay.clone();
        let shutdown = shutdown.clone();
        async move { relay.run(shutdown).await }
    });
    let event = w.event("vendor.ready", json!({})).await;

    // Poll, with a bound, for the background loop to deliver.
    let mut delivered = false;
    for _ in 0..500 {
        if rx.received().len() == 1 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(delivered, "the relay delivered within the bound");
    assert_eq!(rx.received()[0].webhook_id(), event.to_string());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop ends after cancellation")
        .expect("no panic");
}

fn signatures(received: &Received) -> usize {
    received.headers["webhook-signature"]
        .to_str()
        .expect("ascii")
        .split_ascii_whitespace()
        .count()
}

#[sqlx::test(migrations = "../../migrations")]
async fn during_a_rotation_overlap_either_secret_verifies_and_after_it_only_the_new_one(
    pool: PgPool,
) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (endpoint, old) = w.endpoint(&format!("{base}/hooks"), None).await;
    let mut conn = w.pool.acquire().await.expect("conn");
    let rotated = wstore::rotate_secret(
        &mut conn,
        &w.keyring,
        w.marketplace,
        endpoint,
        wstore::DEFAULT_OVERLAP,
    )
    .await
    .expect("rotate")
    .expect("the endpoint exists");
    let expires = rotated.previous_expires_at.expect("an overlap");
    assert!(expires > Utc::now() + chrono::Duration::hours(23));
    let new = WebhookSecret::from_secret_string(&rotated.secret).expect("whsec secret");
    let shown = wstore::get_endpoint(&mut conn, w.marketplace, endpoint)
        .await
        .expect("get")
        .expect("endpoint");
    assert_eq!(shown.previous_secret_expires_at, Some(expires));
    assert!(shown.secret_rotated_at.is_some());

    w.event("vendor.ready", json!({"n": 1})).await;
    assert_eq!(w.relay().tick_once().await.expect("tick").delivered, 1);
    let during = rx.received().remove(0);
    assert_eq!(signatures(&during), 2);
    assert_verifies(&during, &new);
    assert_verifies(&during, &old);

    assert!(
        wstore::end_secret_overlap(&mut conn, w.marketplace, endpoint)
            .await
            .expect("end overlap")
    );
    w.event("vendor.ready", json!({"n": 2})).await;
    assert_eq!(w.relay().tick_once().await.expect("tick").delivered, 1);
    let after = rx.received().remove(1);
    assert_eq!(signatures(&after), 1);
    assert_verifies(&after, &new);
    assert_eq!(
        verify(
            &after.headers,
            &after.body,
            &old,
            Utc::now(),
            DEFAULT_TOLERANCE
        ),
        Err(webhooks::VerifyError::NoValidSignature)
    );

    // A rotation without overlap switches at once; an overlap longer than a week is refused.
    let rotated = wstore::rotate_secret(
        &mut conn,
        &w.keyring,
        w.marketplace,
        endpoint,
        Duration::ZERO,
    )
    .await
    .expect("rotate")
    .expect("endpoint");
    assert_eq!(rotated.previous_expires_at, None);
    let newest = WebhookSecret::from_secret_string(&rotated.secret).expect("whsec secret");
    w.event("vendor.ready", json!({"n": 3})).await;
    assert_eq!(w.relay().tick_once().await.expect("tick").delivered, 1);
    let last = rx.received().remove(2);
    assert_eq!(signatures(&last), 1);
    assert_verifies(&last, &newest);
    assert!(matches!(
        wstore::rotate_secret(
            &mut conn,
            &w.keyring,
            w.marketplace,
            endpoint,
            wstore::MAX_OVERLAP + Duration::from_secs(1),
        )
        .await,
        Err(wstore::WebhookStoreError::OverlapTooLong)
    ));
    // Another marketplace's endpoint is not found.
    let other = add_marketplace(&w.pool, "Another market").await;
    assert!(
        wstore::rotate_secret(
            &mut conn,
            &w.keyring,
            other,
            endpoint,
            wstore::DEFAULT_OVERLAP
        )
        .await
        .expect("rotate")
        .is_none()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_disabled_endpoint_gets_no_new_deliveries_and_a_deleted_one_loses_its_pending_ones(
    pool: PgPool,
) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let (disabled, _) = w.endpoint(&format!("{base}/disabled"), None).await;
    let (deleted, _) = w.endpoint(&format!("{base}/deleted"), None).await;
    let (kept, _) = w.endpoint(&format!("{base}/kept"), None).await;
    let mut conn = w.pool.acquire().await.expect("conn");
    w.event("vendor.ready", json!({"n": 1})).await;
    wstore::fan_out(&w.pool, 10, Duration::from_secs(3600))
        .await
        .expect("fan out");
    assert!(
        wstore::set_endpoint_enabled(&mut conn, w.marketplace, disabled, false, "maintenance")
            .await
            .expect("disable")
    );
    let gone = wstore::delete_endpoint(&mut conn, w.marketplace, deleted)
        .await
        .expect("delete")
        .expect("it existed");
    assert_eq!(
        gone,
        wstore::DeletedEndpoint {
            pending: 1,
            deliveries: 1
        }
    );
    // Its secret went with it.
    assert!(
        wstore::endpoint_secret(&mut conn, &w.keyring, deleted)
            .await
            .expect("secret")
            .is_none()
    );
    assert!(
        wstore::get_endpoint(&mut conn, w.marketplace, deleted)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        wstore::delete_endpoint(&mut conn, w.marketplace, deleted)
            .await
            .expect("delete again")
            .is_none()
    );

    // A new event after the change reaches only the enabled endpoint.
    w.event("vendor.ready", json!({"n": 2})).await;
    let report = w.relay().tick_once().await.expect("tick");
    assert_eq!(report.deliveries_created, 1);
    assert_eq!(report.swept, 1, "the disabled endpoint's pending delivery");
    assert_eq!(report.delivered, 2);
    let paths: Vec<String> = rx.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/kept".to_owned(), "/kept".to_owned()]);
    let by_endpoint = |id| DeliveryFilter {
        endpoint_id: Some(id),
        ..DeliveryFilter::default()
    };
    let on_disabled = w.deliveries(by_endpoint(disabled)).await;
    assert_eq!(on_disabled.len(), 1);
    assert_eq!(on_disabled[0].status, "dead");
    assert!(w.deliveries(by_endpoint(deleted)).await.is_empty());
    assert_eq!(w.deliveries(by_endpoint(kept)).await.len(), 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_event_filter_naming_an_unknown_type_is_refused_and_a_filter_can_be_changed(
    pool: PgPool,
) {
    let w = world(pool).await;
    let (base, rx) = start_receiver().await;
    let mut conn = w.pool.acquire().await.expect("conn");
    let unknown = vec!["vendor.ready".to_owned(), "vendor.redy".to_owned()];
    assert!(matches!(
        wstore::create_endpoint(&mut conn, &w.keyring, w.marketplace, &format!("{base}/x"), Some(&unknown)).await,
        Err(wstore::WebhookStoreError::UnknownEventTypes(names)) if names == ["vendor.redy"]
    ));
    assert!(
        wstore::list_endpoints(&mut conn, w.marketplace)
            .await
            .expect("list")
            .is_empty()
    );
    let (endpoint, _) = w
        .endpoint(&format!("{base}/hooks"), Some(&["charge.succeeded"]))
        .await;
    assert!(matches!(
        wstore::set_event_types(&mut conn, w.marketplace, endpoint, Some(&unknown)).await,
        Err(wstore::WebhookStoreError::UnknownEventTypes(_))
    ));
    let ready = vec!["vendor.ready".to_owned()];
    assert!(
        wstore::set_event_types(&mut conn, w.marketplace, endpoint, Some(&ready))
            .await
            .expect("set")
    );
    w.event("charge.succeeded", json!({})).await;
    w.event("vendor.ready", json!({})).await;
    assert_eq!(w.relay().tick_once().await.expect("tick").delivered, 1);
    let body: Value = serde_json::from_slice(&rx.received()[0].body).expect("json");
    assert_eq!(body["type"], "vendor.ready");
}
