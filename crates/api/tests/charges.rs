//! `POST /v1/vendors/{id}/charges` and `POST /v1/vendors/{id}/documents` over real HTTP against a
//! real PostgreSQL database: the accepted answer and the stored run input, field errors, card
//! numbers, marketplace scoping, one order per vendor, idempotency and roles.
//!
//! The workflows here are test definitions that only wait for the vendor (the real files' wait
//! step and signal): these tests are about the HTTP edge; the workflows themselves are tested in
//! the steps crate and end to end.

mod support;

use std::ops::Deref;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;
use uuid::Uuid;

const CHARGE_TEST_WORKFLOW: &str = r#"
name = "vendor_charge"
version = 1
[[steps]]
name = "await_vendor_ready"
wait = "vendor_ready"
"#;

const DOCUMENT_TEST_WORKFLOW: &str = r#"
name = "vendor_document"
version = 1
[[steps]]
name = "await_vendor_ready"
wait = "vendor_ready"
"#;

/// The shared application with three vendors.
struct TestApi {
    api: Api,
    /// A vendor of marketplace A.
    vendor_a: Uuid,
    /// Another vendor of marketplace A.
    vendor_a2: Uuid,
    /// A vendor of marketplace B.
    vendor_b: Uuid,
}

impl Deref for TestApi {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApi {
    async fn start(pool: PgPool) -> TestApi {
        let definitions = support::waiting_definitions(
            &[
                ("vendor_charge.toml", CHARGE_TEST_WORKFLOW),
                ("vendor_document.toml", DOCUMENT_TEST_WORKFLOW),
            ],
            "vendor_ready",
        );
        let api = Api::start(pool, definitions, support::keyring()).await;
        let vendor = |market: Uuid, external_id: &'static str| {
            support::insert_vendor(
                &api.pool,
                market,
                external_id,
                "Dana Ceramics Ltd",
                "515555555".to_owned(),
                "dana@example.co.il".to_owned(),
            )
        };
        TestApi {
            vendor_a: vendor(api.a.id, "seller-1").await,
            vendor_a2: vendor(api.a.id, "seller-2").await,
            vendor_b: vendor(api.b.id, "seller-1").await,
            api,
        }
    }

    async fn charge(&self, vendor: Uuid, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/vendors/{vendor}/charges"),
            &self.a.backend,
            key,
            body,
        )
        .await
    }

    async fn order_key(&self, run_id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT order_key FROM vendorflow.runs WHERE id = $1")
            .bind(Uuid::parse_str(run_id).unwrap())
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn run_input(&self, run_id: &str) -> Value {
        sqlx::query_scalar("SELECT input FROM vendorflow.runs WHERE id = $1")
            .bind(Uuid::parse_str(run_id).unwrap())
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn charge(order_id: &str) -> Value {
    json!({
        "order_id": order_id,
        "amount_agorot": 5782,
        "single_use_token": "og-token-from-payments-js",
        "customer": {"name": "Noa Levi", "email": "noa@example.com"},
        "description": "Order 42",
        "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
    })
}

fn document(reference: &str) -> Value {
    json!({
        "reference": reference,
        "document_type": "invoice_and_receipt",
        "customer": {"name": "Noa Levi", "email": "noa@example.com"},
        "items": [{"name": "Workshop", "quantity": 2, "unit_price_agorot": 15000}],
        "payments": [{"method": "bank_transfer", "bank": 12, "branch": 571,
                      "reference": "TRX-9", "amount_agorot": 30000}],
        "description": "Ceramics workshop",
        "send_by_email": true
    })
}

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_owned(), code.to_owned())
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_charge_is_accepted_and_its_run_holds_the_typed_input_only(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let mut body = charge("order-42");
    // Members the input does not know are refused, named, and nothing is stored.
    body["internal_notes"] = json!("api key sk_live_do_not_store");
    body["vendor_id"] = json!(api.vendor_a);
    let (status, problem) = api.charge(api.vendor_a, Some("c-1"), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        vec![pair("internal_notes", "unknown_field")]
    );
    body.as_object_mut().unwrap().remove("internal_notes");
    let (status, answer) = api.charge(api.vendor_a, Some("c-1"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap();
    assert_eq!(
        answer,
        json!({
            "run_id": run_id,
            "vendor_id": api.vendor_a,
            "order_id": "order-42",
            "status": "pending",
            "links": {"run": format!("/v1/runs/{run_id}"),
                      "vendor": format!("/v1/vendors/{}", api.vendor_a)}
        })
    );

    assert_eq!(
        api.run_input(run_id).await,
        json!({
            "vendor_id": api.vendor_a,
            "order_id": "order-42",
            "amount_agorot": 5782,
            "currency": "ILS",
            "single_use_token": "og-token-from-payments-js",
            "customer": {"name": "Noa Levi", "email": "noa@example.com"},
            "description": "Order 42",
            "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}],
            "send_document_by_email": false
        })
    );
    // The order id is also the run's order key, the column the database keeps unique.
    assert_eq!(api.order_key(run_id).await.as_deref(), Some("order-42"));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM vendorflow.runs r WHERE r::text LIKE '%sk_live%')
              + (SELECT count(*) FROM vendorflow.run_history e WHERE e::text LIKE '%sk_live%')",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    let (status, run) = api.get(&format!("/v1/runs/{run_id}"), &api.a.viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["workflow"], "vendor_charge");
    assert_eq!(run["vendor_id"], json!(api.vendor_a));
    let (_, vendor) = api
        .get(&format!("/v1/vendors/{}", api.vendor_a), &api.a.viewer)
        .await;
    assert_eq!(vendor["runs"][0]["id"], run_id);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_document_is_accepted_by_an_operator_with_its_typed_input(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let (status, answer) = api
        .post(
            &format!("/v1/vendors/{}/documents", api.vendor_a),
            &api.a.operator,
            None,
            &document("invoice-2025-0007"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap();
    assert_eq!(answer["vendor_id"], json!(api.vendor_a));
    assert_eq!(answer["reference"], "invoice-2025-0007");
    assert_eq!(answer["status"], "pending");
    assert_eq!(answer["links"]["run"], format!("/v1/runs/{run_id}"));
    assert_eq!(
        api.order_key(run_id).await.as_deref(),
        Some("invoice-2025-0007")
    );
    let input = api.run_input(run_id).await;
    assert_eq!(input["vendor_id"], json!(api.vendor_a));
    assert_eq!(input["document_type"], "invoice_and_receipt");
    assert_eq!(input["vat_included"], true);
    assert_eq!(
        input["payments"],
        json!([{"method": "bank_transfer", "bank": 12, "branch": 571,
                "reference": "TRX-9", "amount_agorot": 30000}])
    );
    let (_, run) = api.get(&format!("/v1/runs/{run_id}"), &api.a.viewer).await;
    assert_eq!(run["workflow"], "vendor_document");
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_fields_get_a_422_at_their_json_paths_and_nothing_is_stored(pool: PgPool) {
    let api = TestApi::start(pool).await;

    // Validation reports every bad field at once.
    let mut body = charge("order-1");
    body["amount_agorot"] = json!(0);
    body["currency"] = json!("USD");
    body["items"][0]["quantity"] = json!(0);
    let (status, problem) = api.charge(api.vendor_a, Some("bad-1"), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        [
            pair("amount_agorot", "invalid_amount"),
            pair("currency", "unsupported_currency"),
            pair("items[0].quantity", "invalid_quantity"),
        ]
    );

    // A wrong-typed amount is named without quoting the value.
    let mut body = charge("order-1");
    body["amount_agorot"] = json!("57.82 shekels");
    let (status, problem) = api.charge(api.vendor_a, None, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), [pair("amount_agorot", "invalid_type")]);
    assert!(!problem.to_string().contains("shekels"), "{problem}");

    // A missing customer, and a missing member deeper down.
    let mut body = charge("order-1");
    body.as_object_mut().unwrap().remove("customer");
    let (_, problem) = api.charge(api.vendor_a, None, &body).await;
    assert_eq!(fields(&problem), [pair("customer", "required")]);
    let mut body = charge("order-1");
    body["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("unit_price_agorot");
    let (_, problem) = api.charge(api.vendor_a, None, &body).await;
    assert_eq!(
        fields(&problem),
        [pair("items[0].unit_price_agorot", "required")]
    );

    // A document of an unknown type, and a receipt without payments.
    let mut body = document("r-1");
    body["document_type"] = json!("napkin");
    let (status, problem) = api
        .post(
            &format!("/v1/vendors/{}/documents", api.vendor_a),
            &api.a.backend,
            None,
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), [pair("document_type", "invalid_value")]);
    let body = json!({"reference": "r-1", "document_type": "receipt", "customer": {"name": "Noa"}});
    let (_, problem) = api
        .post(
            &format!("/v1/vendors/{}/documents", api.vendor_a),
            &api.a.backend,
            None,
            &body,
        )
        .await;
    assert_eq!(fields(&problem), [pair("payments", "no_payments")]);

    // A vendor id in the body must be the path's.
    let mut body = charge("order-1");
    body["vendor_id"] = json!(api.vendor_a2);
    let (_, problem) = api.charge(api.vendor_a, None, &body).await;
    assert_eq!(fields(&problem), [pair("vendor_id", "vendor_mismatch")]);

    assert_eq!(api.count("runs").await, 0);
    assert_eq!(api.count("idempotency_keys").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_card_number_anywhere_is_refused_and_never_echoed(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let mut body = charge("order-1");
    body["customer"]["notes"] = json!("paid with 4580 4580 4580 4580");
    body["single_use_token"] = json!("4111111111111111");
    let response = api
        .client
        .post(format!("{}/v1/vendors/{}/charges", api.base, api.vendor_a))
        .bearer_auth(&api.a.backend)
        .header("Accept-Language", "he")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        fields(&problem),
        [
            pair("customer.notes", "card_number_refused"),
            pair("single_use_token", "card_number_refused"),
        ]
    );
    let text = problem.to_string();
    assert!(!text.contains("4580") && !text.contains("4111"), "{text}");
    // Hebrew, as asked.
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| ('\u{05d0}'..='\u{05ea}').contains(&c)),
        "{problem}"
    );

    // In a document's payment too; a UUID in the body is not a card number.
    let mut body = document("r-1");
    body["payments"][0] = json!({"method": "credit_card", "last4": "4580458045804580",
                                 "amount_agorot": 30000});
    body["vendor_id"] = json!(api.vendor_a);
    let (status, problem) = api
        .post(
            &format!("/v1/vendors/{}/documents", api.vendor_a),
            &api.a.backend,
            None,
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&problem),
        [pair("payments[0].last4", "card_number_refused")]
    );
    assert_eq!(api.count("runs").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn another_marketplaces_vendor_is_not_found(pool: PgPool) {
    let api = TestApi::start(pool).await;
    for vendor in [
        api.vendor_b.to_string(),
        Uuid::now_v7().to_string(),
        "not-a-uuid".to_owned(),
    ] {
        let (status, problem) = api
            .post(
                &format!("/v1/vendors/{vendor}/charges"),
                &api.a.backend,
                Some("k-404"),
                &charge("order-1"),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{vendor}: {problem}");
        let (status, _) = api
            .post(
                &format!("/v1/vendors/{vendor}/documents"),
                &api.a.backend,
                None,
                &document("r-1"),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{vendor}");
    }
    assert_eq!(api.count("runs").await, 0);
    // The refused request's key claim was rolled back with it.
    assert_eq!(api.count("idempotency_keys").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_order_with_the_same_key_for_a_vendor_is_a_conflict_naming_the_first_run(
    pool: PgPool,
) {
    let api = TestApi::start(pool).await;
    let (status, first) = api.charge(api.vendor_a, None, &charge("order-7")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let first_run = first["run_id"].as_str().unwrap();

    // Another amount, another idempotency key: still the same order.
    let mut again = charge("order-7");
    again["amount_agorot"] = json!(100);
    again.as_object_mut().unwrap().remove("items");
    let (status, problem) = api.charge(api.vendor_a, Some("other-key"), &again).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["run_id"], first_run);
    assert_eq!(problem["links"]["run"], format!("/v1/runs/{first_run}"));
    assert!(problem["detail"].as_str().unwrap().contains("order-7"));

    // The same order id is free for another vendor, and another order id for this one.
    let (status, _) = api.charge(api.vendor_a2, None, &charge("order-7")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = api.charge(api.vendor_a, None, &charge("order-8")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(api.count("runs").await, 3);

    // Documents: once per vendor and reference.
    let path = format!("/v1/vendors/{}/documents", api.vendor_a);
    let (status, first) = api
        .post(&path, &api.a.backend, None, &document("inv-1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, problem) = api
        .post(&path, &api.a.backend, None, &document("inv-1"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["run_id"], first["run_id"]);
    // A charge's order id does not collide with a document's reference.
    let (status, _) = api
        .post(&path, &api.a.backend, None, &document("order-7"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(api.count("runs").await, 5);
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_charges_of_one_order_under_different_keys_create_one_run(pool: PgPool) {
    let api = Arc::new(TestApi::start(pool).await);
    let mut tasks = Vec::new();
    for n in 0..6 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.charge(api.vendor_a, Some(&format!("key-{n}")), &charge("order-9"))
                .await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().0);
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((accepted, conflicts), (1, 5), "{statuses:?}");
    assert_eq!(api.count("runs").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_concurrent_charges_of_one_order_give_one_run_and_a_conflict_naming_it(pool: PgPool) {
    let api = Arc::new(TestApi::start(pool).await);
    // An open transaction holds the order's entry in the runs' order-key index, so that both
    // requests reach their insert and wait there at the same time: the database, not a lookup
    // before the insert, decides which one gets the order.
    let mut holder = api.pool.begin().await.unwrap();
    store::runs::insert_runs(
        &mut holder,
        &store::runs::DefinitionSource {
            workflow: "vendor_charge",
            version: 1,
            content_hash: "1111111111111111111111111111111111111111111111111111111111111111",
            file_name: "held.toml",
            source: "",
        },
        "await_vendor_ready",
        &[store::runs::NewRunRow {
            id: Uuid::now_v7(),
            marketplace_id: Some(api.a.id),
            subject_id: Some(api.vendor_a),
            input: json!({}),
            delay_ms: 0,
            order_key: Some("order-race".to_owned()),
        }],
        "system",
        "test",
    )
    .await
    .unwrap();
    let requests: Vec<_> = ["key-a", "key-b"]
        .into_iter()
        .map(|key| {
            let api = api.clone();
            tokio::spawn(async move {
                api.charge(api.vendor_a, Some(key), &charge("order-race"))
                    .await
            })
        })
        .collect();
    let mut look = tokio::time::interval(std::time::Duration::from_millis(10));
    for looks in 0.. {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&api.pool)
        .await
        .unwrap();
        if waiting == 2 {
            break;
        }
        assert!(looks < 1000, "both requests wait at the order key");
        look.tick().await;
    }
    holder.rollback().await.unwrap();

    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers.sort_by_key(|(status, _)| *status);
    let [(accepted, run), (conflict, problem)] = &answers[..] else {
        panic!("two answers: {answers:?}");
    };
    assert_eq!(
        (*accepted, *conflict),
        (StatusCode::ACCEPTED, StatusCode::CONFLICT),
        "{answers:?}"
    );
    assert_eq!(problem["run_id"], run["run_id"], "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("order-race"));
    assert_eq!(api.count("runs").await, 1);
    // The refused request's idempotency key was rolled back with it: only the winner's is kept.
    assert_eq!(api.count("idempotency_keys").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_same_idempotency_key_replays_and_another_body_is_a_conflict(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let first = api
        .post_full(
            &format!("/v1/vendors/{}/charges", api.vendor_a),
            &api.a.backend,
            Some("pay-1"),
            &charge("order-1"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The replay answers the stored 202, not the 409 of a second run for the order.
    let again = api
        .post_full(
            &format!("/v1/vendors/{}/charges", api.vendor_a),
            &api.a.backend,
            Some("pay-1"),
            &charge("order-1"),
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let (status, problem) = api
        .charge(api.vendor_a, Some("pay-1"), &charge("order-2"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    assert_eq!(api.count("runs").await, 1);
    assert_eq!(api.count("idempotency_keys").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_viewer_may_not_charge_or_issue_documents(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let (status, problem) = api
        .post(
            &format!("/v1/vendors/{}/charges", api.vendor_a),
            &api.a.viewer,
            None,
            &charge("order-1"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, _) = api
        .post(
            &format!("/v1/vendors/{}/documents", api.vendor_a),
            &api.a.viewer,
            None,
            &document("r-1"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .post(
            &format!("/v1/vendors/{}/charges", api.vendor_a),
            "vf_backend_forged",
            None,
            &charge("order-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.count("runs").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_openapi_document_describes_both_routes(pool: PgPool) {
    let api = TestApi::start(pool).await;
    let spec = api.openapi().await;
    for (path, request, answer) in [
        (
            "/v1/vendors/{id}/charges",
            "ChargeRequest",
            "ChargeAccepted",
        ),
        (
            "/v1/vendors/{id}/documents",
            "DocumentRequest",
            "DocumentAccepted",
        ),
    ] {
        let post = &spec["paths"][path]["post"];
        assert!(post.is_object(), "{path} missing");
        assert!(post["responses"].get("409").is_some(), "{path}");
        for schema in [request, answer] {
            assert!(
                spec["components"]["schemas"].get(schema).is_some(),
                "{schema} missing"
            );
        }
    }
}
