//! The reads a marketplace backend needs, over real HTTP against a real PostgreSQL database: a
//! vendor by id or external id, the vendor list with filters and a keyset cursor, the vendor's
//! state (a paused onboarding is `action_required` with why and what to do), a vendor's charges
//! and documents by the marketplace's keys and page by page, the 409 of a used order key linking
//! to its read, and all of it in the OpenAPI document.
//!
//! The workflows here are test definitions that only wait: these tests are about the HTTP edge.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;
use uuid::Uuid;

const ONBOARDING_TEST_WORKFLOW: &str = r#"
name = "vendor_onboarding"
version = 1
[[steps]]
name = "capture_api_keys"
wait = "vendor_ready"
"#;

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

async fn start(pool: PgPool) -> Api {
    let definitions = support::waiting_definitions(
        &[
            ("vendor_onboarding.toml", ONBOARDING_TEST_WORKFLOW),
            ("vendor_charge.toml", CHARGE_TEST_WORKFLOW),
            ("vendor_document.toml", DOCUMENT_TEST_WORKFLOW),
        ],
        "vendor_ready",
    );
    Api::start(pool, definitions, support::keyring()).await
}

async fn vendor(api: &Api, market: Uuid, external_id: &str) -> Uuid {
    support::insert_vendor(
        &api.pool,
        market,
        external_id,
        "Dana Ceramics Ltd",
        "515555555".to_owned(),
        "dana@example.co.il".to_owned(),
    )
    .await
}

fn onboarding(external_id: &str) -> Value {
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

fn charge(order_id: &str) -> Value {
    json!({
        "order_id": order_id,
        "amount_agorot": 5782,
        "single_use_token": "og-token-from-payments-js",
        "customer": {"name": "Noa Levi"},
        "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
    })
}

fn document(reference: &str) -> Value {
    json!({
        "reference": reference,
        "document_type": "invoice",
        "customer": {"name": "Noa Levi"},
        "items": [{"name": "Workshop", "quantity": 1, "unit_price_agorot": 30000}]
    })
}

/// The `field`s of a 422 problem.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|error| error["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every page of `path` (which has a `?`), following `next_cursor`, as the ids of `data`.
async fn walk(api: &Api, path: &str, token: &str, id: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = path.to_owned();
    for _ in 0..20 {
        let (status, page) = api.get(&next, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item[id].as_str().unwrap().to_owned())
                .collect(),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}&cursor={cursor}"),
            None => return pages,
        }
    }
    panic!("more than 20 pages");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_paused_onboarding_shows_action_required_with_why_and_what_to_do(pool: PgPool) {
    let api = start(pool).await;
    let (status, accepted) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            None,
            &onboarding("seller-7"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let vendor_id = accepted["vendor_id"].as_str().unwrap().to_owned();
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();

    let (status, vendor) = api
        .get(&format!("/v1/vendors/{vendor_id}"), &api.a.viewer)
        .await;
    assert_eq!(status, StatusCode::OK, "{vendor}");
    assert_eq!(vendor["state"], "onboarding");
    assert_eq!(vendor["state_reason"], Value::Null);
    assert_eq!(vendor["run_id"], run_id.as_str());
    assert_eq!(vendor["links"]["run"], format!("/v1/runs/{run_id}"));
    assert_eq!(vendor["mode"], "clearing");

    let mut conn = api.pool.acquire().await.unwrap();
    let operator = engine::Actor::new(engine::ActorKind::Operator, "dana");
    let reason = "SUMIT refused the vendor's API keys";
    engine::ops::pause(
        &mut conn,
        engine::RunId(run_id.parse().unwrap()),
        &operator,
        reason,
    )
    .await
    .unwrap();
    drop(conn);

    let (_, vendor) = api
        .get(&format!("/v1/vendors/{vendor_id}"), &api.a.backend)
        .await;
    assert_eq!(vendor["state"], "action_required", "{vendor}");
    assert_eq!(vendor["state_reason"]["code"], "api_keys_required");
    assert_eq!(
        vendor["state_reason"]["message"],
        format!("paused by operator dana: {reason}")
    );
    assert!(
        vendor["state_reason"]["action"]
            .as_str()
            .unwrap()
            .contains("API keys"),
        "{vendor}"
    );
    // The onboarding still reads `pending` in the stored progress; the state is what tells.
    assert_eq!(vendor["onboarding_state"], "pending");

    let (_, needing) = api
        .get("/v1/vendors?state=action_required", &api.a.viewer)
        .await;
    assert_eq!(needing["data"][0]["id"], vendor_id.as_str(), "{needing}");
    assert_eq!(
        needing["data"][0]["state_reason"]["code"],
        "api_keys_required"
    );
    let (_, ready) = api.get("/v1/vendors?state=ready", &api.a.viewer).await;
    assert_eq!(ready["data"], json!([]));

    let (status, _) = api
        .get(&format!("/v1/vendors/{vendor_id}"), &api.b.operator)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../../migrations")]
async fn vendors_are_found_by_external_id_and_listed_page_by_page(pool: PgPool) {
    let api = start(pool).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            vendor(&api, api.a.id, &format!("seller-{n}"))
                .await
                .to_string(),
        );
    }
    vendor(&api, api.b.id, "seller-3").await;

    let (status, found) = api
        .get("/v1/vendors?external_id=seller-3", &api.a.backend)
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["data"][0]["id"], ids[3].as_str());
    assert_eq!(found["data"][0]["external_id"], "seller-3");
    assert_eq!(
        found["data"][0]["bank_account"],
        json!({"last4": "1116", "checked": true})
    );
    assert_eq!(found["next_cursor"], Value::Null);
    let (_, none) = api
        .get("/v1/vendors?external_id=seller-9", &api.a.backend)
        .await;
    assert_eq!(none, json!({"data": [], "next_cursor": null}));

    let pages = walk(&api, "/v1/vendors?limit=2", &api.a.viewer, "id").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(pages.concat(), newest_first);

    let (_, clearing) = api
        .get("/v1/vendors?mode=clearing&state=onboarding", &api.a.viewer)
        .await;
    assert_eq!(clearing["data"].as_array().unwrap().len(), 5, "{clearing}");
    let (_, documents_only) = api
        .get("/v1/vendors?mode=documents_only", &api.a.viewer)
        .await;
    assert_eq!(documents_only["data"], json!([]));
    let (_, later) = api
        .get(
            "/v1/vendors?created_after=2999-01-01T00:00:00Z",
            &api.a.viewer,
        )
        .await;
    assert_eq!(later["data"], json!([]));
    let (_, earlier) = api
        .get(
            "/v1/vendors?created_before=2999-01-01T00:00:00Z&limit=100",
            &api.a.viewer,
        )
        .await;
    assert_eq!(earlier["data"].as_array().unwrap().len(), 5);
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_filters_answer_422_naming_the_parameter_and_no_token_401(pool: PgPool) {
    let api = start(pool).await;
    let vendor_id = vendor(&api, api.a.id, "seller-1").await;
    for (query, field) in [
        ("state=pending", "state"),
        ("mode=both", "mode"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("external_id=seller%001", "external_id"),
    ] {
        let (status, problem) = api
            .get(&format!("/v1/vendors?{query}"), &api.a.viewer)
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(fields(&problem), [field], "{query}");
    }
    // An empty parameter is no filter, as for every list.
    let (status, page) = api
        .get("/v1/vendors?external_id=&state=", &api.a.viewer)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, problem) = api.get("/v1/vendors?state=x&limit=0", &api.a.viewer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["state", "limit"], "all at once");
    for resource in ["charges", "documents"] {
        let (status, problem) = api
            .get(
                &format!("/v1/vendors/{vendor_id}/{resource}?limit=500&cursor=x"),
                &api.a.viewer,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(fields(&problem), ["limit", "cursor"]);
    }
    let (status, problem) = api
        .get(
            &format!("/v1/vendors/{vendor_id}/charges/order%001"),
            &api.a.viewer,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    for path in [
        "/v1/vendors".to_owned(),
        format!("/v1/vendors/{vendor_id}/charges"),
        format!("/v1/vendors/{vendor_id}/documents/r-1"),
    ] {
        let status = api
            .client
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn charges_and_documents_are_read_by_their_keys_and_listed(pool: PgPool) {
    let api = start(pool).await;
    let vendor_id = vendor(&api, api.a.id, "seller-1").await;
    let charges = format!("/v1/vendors/{vendor_id}/charges");
    let documents = format!("/v1/vendors/{vendor_id}/documents");
    let mut runs = Vec::new();
    for order_id in ["order-1", "order/2 ש", "order-3"] {
        let (status, accepted) = api
            .post(&charges, &api.a.backend, None, &charge(order_id))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        runs.push(accepted["run_id"].as_str().unwrap().to_owned());
    }

    let (status, read) = api.get(&format!("{charges}/order-1"), &api.a.viewer).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["order_id"], "order-1");
    assert_eq!(read["status"], "pending");
    assert_eq!(read["amount_agorot"], 5782);
    assert_eq!(read["currency"], "ILS");
    assert_eq!(read["run_id"], runs[0].as_str());
    assert_eq!(read["payment"], Value::Null);
    assert_eq!(read["links"]["self"], format!("{charges}/order-1"));
    assert_eq!(read["links"]["run"], format!("/v1/runs/{}", runs[0]));
    assert!(!read.to_string().contains("og-token"), "{read}");

    // A key with a slash and Hebrew reads back through its percent-encoded link.
    let (_, listed) = api.get(&format!("{charges}?limit=3"), &api.a.viewer).await;
    let link = listed["data"][1]["links"]["self"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(link, format!("{charges}/order%2F2%20%D7%A9"));
    let (status, read) = api.get(&link, &api.a.backend).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["order_id"], "order/2 ש");

    // The provider's references show once the run holds them; the card token never does.
    sqlx::query(
        "UPDATE vendorflow.runs SET status = 'succeeded', outcome = 'completed', finished_at = now(),
             attempt = 1, retry_base = 0,
             context = '{\"charge\": {\"result\": \"approved\", \"payment_id\": 901, \"auth_number\": \"0042\",
                          \"card_last4\": \"4242\", \"amount_agorot\": 5782, \"document_id\": 77,
                          \"document_number\": 40001, \"document_url\": \"https://sumit.example/d/77\"}}'
         WHERE id = $1::uuid",
    )
    .bind(&runs[2])
    .execute(&api.pool)
    .await
    .unwrap();
    let (_, read) = api.get(&format!("{charges}/order-3"), &api.a.backend).await;
    assert_eq!(read["status"], "succeeded", "{read}");
    assert_eq!(
        read["payment"],
        json!({"payment_id": 901, "auth_number": "0042", "card_last4": "4242", "amount_agorot": 5782})
    );
    assert_eq!(
        read["document"],
        json!({"document_id": 77, "document_number": 40001, "url": "https://sumit.example/d/77"})
    );
    assert_eq!(read["decline"], Value::Null);

    let pages = walk(
        &api,
        &format!("{charges}?limit=2"),
        &api.a.viewer,
        "order_id",
    )
    .await;
    assert_eq!(pages, [vec!["order-3", "order/2 ש"], vec!["order-1"]]);

    // A second request for a used order id is a 409 linking to the run and to the read.
    let (status, problem) = api
        .post(&charges, &api.a.backend, None, &charge("order-1"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["run_id"], runs[0].as_str());
    assert_eq!(problem["links"]["run"], format!("/v1/runs/{}", runs[0]));
    let (status, linked) = api
        .get(problem["links"]["charge"].as_str().unwrap(), &api.a.backend)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked["run_id"], runs[0].as_str());

    let (status, accepted) = api
        .post(&documents, &api.a.operator, None, &document("invoice-7"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (status, problem) = api
        .post(&documents, &api.a.operator, None, &document("invoice-7"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, read) = api
        .get(
            problem["links"]["document"].as_str().unwrap(),
            &api.a.viewer,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["reference"], "invoice-7");
    assert_eq!(read["document_type"], "invoice");
    assert_eq!(read["status"], "pending");
    assert_eq!(read["run_id"], accepted["run_id"]);
    let (_, listed) = api.get(&documents, &api.a.viewer).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["next_cursor"], Value::Null);

    // Charges are not documents, and another marketplace sees neither.
    let (status, _) = api
        .get(&format!("{documents}/order-1"), &api.a.viewer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        format!("{charges}/order-1"),
        charges.clone(),
        documents.clone(),
    ] {
        let (status, _) = api.get(&path, &api.b.backend).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_reads_are_in_the_openapi_document_with_their_enums(pool: PgPool) {
    let api = start(pool).await;
    let spec = api.openapi().await;
    let paths = &spec["paths"];
    for (path, methods) in [
        ("/v1/vendors", &["get"][..]),
        ("/v1/vendors/{id}", &["get"]),
        ("/v1/vendors/{id}/charges", &["get", "post"]),
        ("/v1/vendors/{id}/charges/{order_id}", &["get"]),
        ("/v1/vendors/{id}/documents", &["get", "post"]),
        ("/v1/vendors/{id}/documents/{reference}", &["get"]),
    ] {
        for method in methods {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} is missing");
            if *method == "get" {
                for status in ["200", "401", "404"] {
                    if path == "/v1/vendors" && status == "404" {
                        continue;
                    }
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(paths["/v1/vendors"]["get"]["responses"]["422"].is_object());
    // The cursor's documented form is what `next_cursor` gives, so a generated one parses.
    let cursor = paths["/v1/vendors"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cursor")
        .unwrap();
    assert_eq!(
        cursor["schema"]["pattern"],
        store::run_queries::RunCursor::PATTERN
    );
    let schemas = &spec["components"]["schemas"];
    let states: Vec<&str> = schemas["VendorStateName"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|state| state.as_str().unwrap())
        .collect();
    let domain_states: Vec<&str> = domain::vendor_state::VendorState::ALL
        .iter()
        .map(|state| state.as_str())
        .collect();
    assert_eq!(states, domain_states);
    let statuses: Vec<&str> = schemas["OrderStatusName"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status.as_str().unwrap())
        .collect();
    let domain_statuses: Vec<&str> = domain::order_status::OrderStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    assert_eq!(statuses, domain_statuses);
    let codes: Vec<&str> = schemas["StateReasonCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let domain_codes: Vec<&str> = domain::vendor_state::ReasonCode::ALL
        .iter()
        .map(|code| code.as_str())
        .collect();
    assert_eq!(codes, domain_codes);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_used_external_id_is_a_409_linking_to_the_vendor_that_has_it(pool: PgPool) {
    let api = start(pool).await;
    let (status, accepted) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("k-1"),
            &onboarding("dup"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (status, problem) = api
        .post(
            "/v1/onboardings",
            &api.a.operator,
            Some("k-2"),
            &onboarding("dup"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["vendor_id"], accepted["vendor_id"]);
    assert_eq!(problem["run_id"], accepted["run_id"]);
    assert_eq!(problem["links"], accepted["links"]);
    let (status, vendor) = api
        .get(problem["links"]["vendor"].as_str().unwrap(), &api.a.backend)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vendor["external_id"], "dup");
    // The refused request stored nothing, not even its idempotency key.
    assert_eq!(api.count("runs").await, 1);
    assert_eq!(api.count("idempotency_keys").await, 1);
    // Another marketplace's same external id is its own vendor.
    let (status, _) = api
        .post("/v1/onboardings", &api.b.backend, None, &onboarding("dup"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
