//! The marketplace API over real HTTP against a real PostgreSQL database: validation, tokens and
//! marketplace scoping, idempotency, malformed requests, and the OpenAPI document.
//!
//! The onboarding workflow here is a test definition that only waits for a signal: these tests
//! are about the HTTP edge; the workflows themselves are tested in the steps crate and end to end.

mod support;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;
use uuid::Uuid;

const ONBOARDING_TEST_WORKFLOW: &str = r#"
name = "vendor_onboarding"
version = 1
[[steps]]
name = "await_terminal_approval"
wait = "terminal_approved"
"#;

async fn start(pool: PgPool) -> Api {
    let definitions = support::waiting_definitions(
        &[("vendor_onboarding.toml", ONBOARDING_TEST_WORKFLOW)],
        "terminal_approved",
    );
    Api::start(pool, definitions, support::keyring()).await
}

fn vendor(external_id: &str) -> Value {
    json!({"vendor": {
        "external_id": external_id,
        "legal_name": "דנה קרמיקה בע\"מ",
        "corporate_number": "515555555",
        "business_type": "company",
        "email": "dana@example.co.il",
        "phone": "052-123-4567",
        "mode": "clearing",
        "bank_account": {"bank": 12, "branch": 571, "account": "041116"}
    }})
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_onboarding_is_accepted_with_the_contract_answer_and_stored_once(pool: PgPool) {
    let api = start(pool).await;
    let (status, body) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("k-1"),
            &vendor("seller-1042"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run_id = body["run_id"].as_str().unwrap();
    let vendor_id = body["vendor_id"].as_str().unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["links"]["run"], format!("/v1/runs/{run_id}"));
    assert_eq!(body["links"]["vendor"], format!("/v1/vendors/{vendor_id}"));

    let (status, vendor) = api
        .get(&format!("/v1/vendors/{vendor_id}"), &api.a.viewer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vendor["phone"], "+972521234567");
    assert_eq!(vendor["bank_account"]["last4"], "1116");
    assert_eq!(vendor["runs"][0]["id"], run_id);

    let (status, run) = api.get(&format!("/v1/runs/{run_id}"), &api.a.backend).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["workflow"], "vendor_onboarding");
    assert_eq!(run["vendor_id"], vendor_id);
    assert!(
        run["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "created"),
        "{run}"
    );

    // The account number is stored only encrypted: not in the vendor row, not in the run.
    let account_in_clear: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM vendorflow.vendors v WHERE v::text LIKE '%041116%')
              + (SELECT count(*) FROM vendorflow.runs r WHERE r::text LIKE '%041116%')
              + (SELECT count(*) FROM vendorflow.run_history e WHERE e::text LIKE '%041116%')
              + (SELECT count(*) FROM vendorflow.secrets s WHERE s::text LIKE '%041116%')",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(account_in_clear, 0);
    assert_eq!(api.count("secrets").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn invalid_fields_get_a_422_naming_each_field_and_nothing_is_stored(pool: PgPool) {
    let api = start(pool).await;
    let mut body = vendor("seller-1");
    body["vendor"]["corporate_number"] = json!("515555556");
    body["vendor"]["phone"] = json!("123");
    body["vendor"]["bank_account"]["account"] = json!("041117");
    let response = api
        .client
        .post(format!("{}/v1/onboardings", api.base))
        .bearer_auth(&api.a.backend)
        .header("Accept-Language", "he-IL")
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
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "vendor.corporate_number",
            "vendor.phone",
            "vendor.bank_account.account"
        ],
        "{problem}"
    );
    let bank_error = &problem["errors"][2];
    assert_eq!(bank_error["code"], "bank_check_failed");
    // Accept-Language: he gives Hebrew messages.
    assert!(
        bank_error["message"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| ('\u{05d0}'..='\u{05ea}').contains(&c)),
        "{bank_error}"
    );
    assert_eq!(api.count("vendors").await, 0);
    assert_eq!(api.count("runs").await, 0);
    assert_eq!(api.count("idempotency_keys").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_card_number_anywhere_is_refused_with_an_explanation(pool: PgPool) {
    let api = start(pool).await;
    let mut body = vendor("seller-1");
    body["vendor"]["notes"] = json!("card 4580 4580 4580 4580");
    let (status, problem) = api
        .post("/v1/onboardings", &api.a.backend, None, &body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "vendor.notes");
    assert_eq!(problem["errors"][0]["code"], "card_number_refused");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("token"),
        "{problem}"
    );
    assert!(
        !problem.to_string().contains("4580 4580"),
        "the number is not echoed"
    );
    assert_eq!(api.count("vendors").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_same_idempotency_key_replays_and_another_body_is_a_conflict(pool: PgPool) {
    let api = start(pool).await;
    let first = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("key-7"),
            &vendor("s-7"),
        )
        .await;
    let again = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("key-7"),
            &vendor("s-7"),
        )
        .await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    assert_eq!(again, first);
    let other = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("key-7"),
            &vendor("s-8"),
        )
        .await;
    assert_eq!(other.0, StatusCode::CONFLICT, "{}", other.1);
    assert_eq!(api.count("runs").await, 1);
    assert_eq!(api.count("vendors").await, 1);

    // Keys are per marketplace: B's identical key is B's own.
    let in_b = api
        .post(
            "/v1/onboardings",
            &api.b.backend,
            Some("key-7"),
            &vendor("s-7"),
        )
        .await;
    assert_eq!(in_b.0, StatusCode::ACCEPTED);
    assert_ne!(in_b.1["run_id"], first.1["run_id"]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_duplicates_create_one_run(pool: PgPool) {
    let api = Arc::new(start(pool).await);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.post(
                "/v1/onboardings",
                &api.a.backend,
                Some("same"),
                &vendor("s-1"),
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == StatusCode::ACCEPTED),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(_, body)| body["run_id"] == answers[0].1["run_id"])
    );
    assert_eq!(api.count("runs").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_onboarding_of_the_same_external_id_is_a_conflict(pool: PgPool) {
    let api = start(pool).await;
    assert_eq!(
        api.post("/v1/onboardings", &api.a.backend, None, &vendor("dup"))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let (status, problem) = api
        .post("/v1/onboardings", &api.a.backend, None, &vendor("dup"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("dup"));
    assert_eq!(api.count("runs").await, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_marketplace_cannot_read_or_act_on_anothers_runs(pool: PgPool) {
    let api = start(pool).await;
    let (_, accepted) = api
        .post("/v1/onboardings", &api.a.backend, None, &vendor("a-1"))
        .await;
    let run_id = accepted["run_id"].as_str().unwrap();
    let vendor_id = accepted["vendor_id"].as_str().unwrap();

    assert_eq!(
        api.get(&format!("/v1/runs/{run_id}"), &api.b.backend)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/v1/vendors/{vendor_id}"), &api.b.backend)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, page) = api.get("/v1/runs", &api.b.backend).await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 0);
    let (status, _) = api
        .post(
            &format!("/v1/runs/{run_id}/signals/terminal_approved"),
            &api.b.backend,
            None,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.count("signals").await, 0);

    // The owner can signal it.
    let (status, body) = api
        .post(
            &format!("/v1/runs/{run_id}/signals/terminal_approved"),
            &api.a.backend,
            Some("sig-1"),
            &json!({"reason": "approved by Upay"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(api.count("signals").await, 1);
    let (_, run) = api.get(&format!("/v1/runs/{run_id}"), &api.a.backend).await;
    assert!(
        run["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "signal_received" && e["reason"] == "approved by Upay"),
        "{run}"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn tokens_are_required_and_roles_are_enforced(pool: PgPool) {
    let api = start(pool).await;
    let no_token = api
        .client
        .post(format!("{}/v1/onboardings", api.base))
        .json(&vendor("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post("/v1/onboardings", "vf_backend_forged", None, &vendor("x"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post("/v1/onboardings", &api.a.viewer, None, &vendor("x"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.count("vendors").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_requests_get_clear_4xx_answers_never_500(pool: PgPool) {
    let api = start(pool).await;
    let url = format!("{}/v1/onboardings", api.base);
    let send = |body: reqwest::Body, content_type: &'static str| {
        api.client
            .post(&url)
            .bearer_auth(&api.a.backend)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Body, &str, StatusCode)> = vec![
        (
            "{not json".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        ("".into(), "application/json", StatusCode::BAD_REQUEST),
        (
            "[1,2]".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "null".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"vendor\": 5}".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "vendor=x".into(),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            vec![b' '; 200 * 1024].into(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, content_type, expected) in cases {
        let response = send(body, content_type).await.unwrap();
        assert_eq!(response.status(), expected, "{content_type}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let bad_key = api
        .client
        .post(&url)
        .bearer_auth(&api.a.backend)
        .header("Idempotency-Key", "x".repeat(300))
        .json(&vendor("k"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);

    let (status, _) = api.get("/v1/nowhere", &api.a.backend).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/v1/runs/not-a-uuid", &api.a.backend).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A bad query parameter is a 422 naming it.
    for (query, parameter) in [
        ("limit=100000", "limit"),
        ("status=exploded", "status"),
        ("cursor=zzz", "cursor"),
    ] {
        let (status, problem) = api.get(&format!("/v1/runs?{query}"), &api.a.backend).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem["errors"][0]["field"], parameter, "{query}");
    }
    let delete = api
        .client
        .delete(format!("{}/v1/onboardings", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(api.count("vendors").await, 0);
}

/// A valid corporate number (ת"ז check digit) built from `n`: one vendor each, since a
/// marketplace refuses a second vendor with a number it has.
fn corporate_number(n: u32) -> String {
    let body = format!("{n:08}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let product = u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 2 };
            if product > 9 { product - 9 } else { product }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

#[sqlx::test(migrations = "../../migrations")]
async fn runs_are_listed_newest_first_with_filters_and_a_cursor(pool: PgPool) {
    let api = start(pool).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut body = vendor(&format!("v-{n}"));
        body["vendor"]["corporate_number"] = json!(corporate_number(n + 1));
        let (_, body) = api
            .post("/v1/onboardings", &api.a.backend, None, &body)
            .await;
        ids.push(body["run_id"].as_str().unwrap().to_owned());
    }
    let (status, page1) = api
        .get("/v1/runs?limit=2&workflow=vendor_onboarding", &api.a.viewer)
        .await;
    assert_eq!(status, StatusCode::OK);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = api
        .get(&format!("/v1/runs?limit=2&cursor={cursor}"), &api.a.viewer)
        .await;
    let (_, page3) = api
        .get(
            &format!(
                "/v1/runs?limit=2&cursor={}",
                page2["next_cursor"].as_str().unwrap()
            ),
            &api.a.viewer,
        )
        .await;
    assert!(page3["next_cursor"].is_null());
    let listed: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|page| page["runs"].as_array().unwrap().iter())
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let (_, none) = api.get("/v1/runs?status=failed", &api.a.viewer).await;
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    let (_, other_workflow) = api
        .get("/v1/runs?workflow=vendor_charge", &api.a.viewer)
        .await;
    assert_eq!(other_workflow["runs"].as_array().unwrap().len(), 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_openapi_document_and_reference_page_describe_the_routes(pool: PgPool) {
    let api = start(pool).await;
    let spec = api.openapi().await;
    for path in [
        "/v1/onboardings",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/vendors/{id}",
        "/v1/runs/{id}/signals/{name}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing");
    }
    let page = reqwest::get(format!("{}/docs", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Drawn from the document in the browser (tests/docs.rs).
    assert!(page.contains("/openapi.json"));
    assert_eq!(
        reqwest::get(format!("{}/healthz", api.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", api.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let _unused = Uuid::nil();
}
