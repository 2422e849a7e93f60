//! The admin JSON API (`/v1/admin/...`) and the dashboard's HTTP rules, over real HTTP against a
//! real PostgreSQL: roles, required reasons, marketplace scoping, the audit log written with each
//! action, bulk dry runs and their cap, lost keys, webhook replay, sessions and CSRF.

mod support;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::admin::Harness;
use uuid::Uuid;

async fn post(h: &Harness, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    h.post(path, token, None, &body).await
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_viewer_reads_everything_but_every_action_answers_403_and_changes_nothing(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (vendor, run) = h.paused_run(h.a.id, "seller-1").await;

    let (status, page) = h.get("/v1/admin/runs?status=paused", &h.a.viewer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["runs"][0]["id"], run.to_string());
    assert_eq!(page["counts"]["paused"], 1);
    let (status, _) = h
        .get(&format!("/v1/admin/vendors/{vendor}"), &h.a.viewer)
        .await;
    assert_eq!(status, StatusCode::OK);

    for path in ["resume", "retry", "cancel", "pause"] {
        let (status, body) = post(
            &h,
            &format!("/v1/admin/runs/{run}/{path}"),
            &h.a.viewer,
            json!({"reason": "trying"}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = post(
        &h,
        "/v1/admin/runs/bulk/dry-run",
        &h.a.viewer,
        json!({"action": "cancel", "status": "paused"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.status(run).await, "paused");
    assert!(h.audit(run).await.is_empty());

    // The admin API is not for the marketplace's backend.
    let (status, _) = h.get("/v1/admin/runs", &h.a.backend).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.get("/v1/admin/runs", "vf_operator_not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_operator_resumes_a_paused_run_and_history_and_audit_say_who_and_why(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-2").await;

    let (status, body) = post(
        &h,
        &format!("/v1/admin/runs/{run}/resume"),
        &h.a.operator,
        json!({"reason": "keys checked with SUMIT support"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["detail"], "the run is now pending");
    assert_eq!(h.status(run).await, "pending");
    let history = h.history(run).await;
    let (kind, reason) = history.last().unwrap();
    assert_eq!(kind, "resumed");
    assert_eq!(reason.as_deref(), Some("keys checked with SUMIT support"));
    assert_eq!(
        h.audit(run).await,
        vec![(
            "resume".to_owned(),
            "ok".to_owned(),
            Some("keys checked with SUMIT support".to_owned())
        )]
    );

    // The run's page in the API shows the audit entry and the history event with the actor.
    let (status, detail) = h.get(&format!("/v1/admin/runs/{run}"), &h.a.viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["audit"][0]["action"], "resume");
    assert_eq!(detail["audit"][0]["channel"], "api");
    assert_eq!(detail["audit"][0]["actor"], "dana");
    assert_eq!(detail["audit"][0]["id"], body["audit_id"]);
    let event = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "resumed")
        .unwrap();
    assert!(
        event["actor"]
            .as_str()
            .unwrap()
            .starts_with("operator:token:"),
        "{event}"
    );
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["error"]["code"], "provider_unavailable");

    // The resumed run goes on and waits; an operator's signal wakes it.
    h.drive(run).await;
    assert_eq!(h.status(run).await, "waiting");
    let (status, body) = post(
        &h,
        &format!("/v1/admin/runs/{run}/signals/terminal_approved"),
        &h.a.operator,
        json!({"reason": "Upay approved the terminal by phone"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("received"),
        "{body}"
    );
    h.drive(run).await;
    assert_eq!(h.status(run).await, "succeeded");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_signal_sent_to_a_paused_run_says_it_waits_for_the_resume_and_is_consumed_after_it(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-9").await;
    let (status, body) = post(
        &h,
        &format!("/v1/admin/runs/{run}/signals/terminal_approved"),
        &h.a.operator,
        json!({"reason": "Upay approved the terminal by phone"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("paused") && detail.contains("resumed"),
        "{body}"
    );
    assert_eq!(h.status(run).await, "paused");

    let (status, body) = post(
        &h,
        &format!("/v1/admin/runs/{run}/resume"),
        &h.a.operator,
        json!({"reason": "keys checked"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.drive(run).await;
    assert_eq!(
        h.status(run).await,
        "succeeded",
        "the stored signal was consumed at the wait"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_action_without_a_reason_is_refused_with_422_naming_the_field_and_changes_nothing(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-3").await;
    for body in [
        json!({}),
        json!({"reason": "   "}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let (status, problem) = post(
            &h,
            &format!("/v1/admin/runs/{run}/cancel"),
            &h.a.operator,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "reason", "{problem}");
    }
    // In Hebrew when asked.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/admin/runs/{run}/cancel", h.base))
        .bearer_auth(&h.a.operator)
        .header("Accept-Language", "he")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("סיבה"),
        "{problem}"
    );
    assert_eq!(h.status(run).await, "paused");
    assert!(h.audit(run).await.is_empty());
}

#[sqlx::test(migrations = "../../migrations")]
async fn another_marketplaces_run_vendor_and_delivery_are_not_found_and_not_touched(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (vendor, run) = h.paused_run(h.a.id, "seller-4").await;
    let delivery = h.dead_delivery(h.a.id).await;

    let (status, _) = h.get(&format!("/v1/admin/runs/{run}"), &h.b.operator).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .get(&format!("/v1/admin/vendors/{vendor}"), &h.b.viewer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &h,
        &format!("/v1/admin/runs/{run}/resume"),
        &h.b.operator,
        json!({"reason": "not mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &h,
        &format!("/v1/admin/vendors/{vendor}/api-keys"),
        &h.b.operator,
        json!({"company_id": 1, "api_key": "k", "api_public_key": "p", "reason": "not mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &h,
        &format!("/v1/admin/webhooks/deliveries/{delivery}/replay"),
        &h.b.operator,
        json!({"reason": "not mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = h.get("/v1/admin/runs", &h.b.viewer).await;
    assert_eq!(page["runs"], json!([]));
    let (_, page) = h.get("/v1/admin/webhooks/deliveries", &h.b.viewer).await;
    assert_eq!(page["deliveries"], json!([]));

    assert_eq!(h.status(run).await, "paused");
    // The attempts are audited as refused, in marketplace B's log only.
    let (_, log_b) = h.get("/v1/admin/audit", &h.b.viewer).await;
    let refused: Vec<_> = log_b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("replay_delivery", "refused"),
            ("supply_api_keys", "refused"),
            ("resume", "refused")
        ]
    );
    let (_, log_a) = h.get("/v1/admin/audit", &h.a.viewer).await;
    assert_eq!(log_a["entries"], json!([]));
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_action_that_does_not_apply_is_rolled_back_and_audited_as_refused(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-5").await;
    let before = h.history(run).await.len();
    let (status, problem) = post(
        &h,
        &format!("/v1/admin/runs/{run}/retry"),
        &h.a.operator,
        json!({"reason": "try again"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("resume it instead"),
        "{problem}"
    );
    assert_eq!(h.history(run).await.len(), before);
    assert_eq!(
        h.audit(run).await,
        vec![(
            "retry_now".to_owned(),
            "refused".to_owned(),
            Some("try again".to_owned())
        )]
    );
    let (status, problem) = post(
        &h,
        &format!("/v1/admin/runs/{run}/resume-from"),
        &h.a.operator,
        json!({"reason": "redo", "step": "no_such_step"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "step");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bulk_dry_run_lists_at_most_500_runs_and_the_bulk_acts_on_exactly_the_listed_ones(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let mut runs = Vec::new();
    for i in 0..501 {
        runs.push(h.pending_run(h.a.id, &format!("bulk-{i}")).await.1);
    }
    let (_, other_market_run) = h.pending_run(h.b.id, "bulk-b").await;

    // Without a status the action applies to, there is no dry run.
    let (status, problem) = post(
        &h,
        "/v1/admin/runs/bulk/dry-run",
        &h.a.operator,
        json!({"action": "retry"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "status");

    let (status, dry) = post(
        &h,
        "/v1/admin/runs/bulk/dry-run",
        &h.a.operator,
        json!({"action": "cancel", "status": "pending"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["matching"], 501);
    assert_eq!(dry["cap"], 500);
    assert_eq!(dry["capped"], true);
    let listed: Vec<Uuid> = serde_json::from_value(dry["run_ids"].clone()).unwrap();
    assert_eq!(listed.len(), 500);
    // Oldest first: the newest run is the one left out.
    assert_eq!(listed[0], runs[0]);
    assert!(!listed.contains(&runs[500]));
    // The dry run changed nothing.
    assert_eq!(h.status(runs[0]).await, "pending");

    // More than the cap is refused; another marketplace's run in the list is refused alone.
    let mut too_many: Vec<Uuid> = listed.clone();
    too_many.push(runs[500]);
    let (status, _) = post(
        &h,
        "/v1/admin/runs/bulk",
        &h.a.operator,
        json!({"action": "cancel", "run_ids": too_many, "reason": "clean up"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let chosen = vec![listed[0], listed[1], other_market_run];
    let (status, result) = post(
        &h,
        "/v1/admin/runs/bulk",
        &h.a.operator,
        json!({"action": "cancel", "run_ids": chosen, "reason": "duplicate test vendors"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["done"], 2);
    assert_eq!(result["refused"], 1);
    assert_eq!(h.status(listed[0]).await, "cancelled");
    assert_eq!(h.status(listed[1]).await, "cancelled");
    assert_eq!(h.status(listed[2]).await, "pending");
    assert_eq!(h.status(other_market_run).await, "pending");
    let (kind, reason) = h.history(listed[0]).await.pop().unwrap();
    assert_eq!(
        (kind.as_str(), reason.as_deref()),
        ("cancelled", Some("duplicate test vendors"))
    );
    let batch: Uuid = sqlx::query_scalar(
        "SELECT (data->>'bulk')::uuid FROM vendorflow.admin_audit WHERE target_id = $1",
    )
    .bind(listed[1])
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(batch.to_string(), result["batch_id"].as_str().unwrap());
}

#[sqlx::test(migrations = "../../migrations")]
async fn lost_keys_are_stored_encrypted_shown_only_by_fingerprint_and_resume_the_onboarding(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let (vendor, run) = h.paused_run(h.a.id, "seller-6").await;
    let api_key = "8f2c1b9e-5d44-4a6b-9c1e-3f7a2b6d9e01";
    let public_key = "pk-4b7e9a2c1d6f8e3b5a7c9d1e";

    let (status, problem) = post(
        &h,
        &format!("/v1/admin/vendors/{vendor}/api-keys"),
        &h.a.operator,
        json!({"company_id": 7000001, "api_key": "", "api_public_key": public_key, "reason": "lost"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "api_key");

    let (status, body) = post(
        &h,
        &format!("/v1/admin/vendors/{vendor}/api-keys"),
        &h.a.operator,
        json!({"company_id": 7000001, "api_key": api_key, "api_public_key": public_key,
               "reason": "keys read out by SUMIT support"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("resumed 1"),
        "{body}"
    );
    assert_eq!(h.status(run).await, "pending");
    let (kind, reason) = h.history(run).await.pop().unwrap();
    assert_eq!(kind, "resumed");
    assert!(reason.unwrap().contains("keys read out by SUMIT support"));

    let (_, shown) = h
        .get(&format!("/v1/admin/vendors/{vendor}"), &h.a.viewer)
        .await;
    assert_eq!(shown["keys_state"], "unverified");
    assert_eq!(shown["provider_company_id"], 7000001);
    assert_eq!(shown["api_key"]["fingerprint"].as_str().unwrap().len(), 8);
    assert_eq!(shown["api_key"]["last4"], "9e01");
    let text = shown.to_string();
    assert!(!text.contains(api_key) && !text.contains(public_key));

    // Nowhere in clear: not in secrets, audit, history or runs.
    let clear: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM vendorflow.secrets s WHERE s::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM vendorflow.admin_audit a WHERE a::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM vendorflow.run_history e WHERE e::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM vendorflow.runs r WHERE r::text LIKE '%' || $1 || '%')",
    )
    .bind(&api_key[..20])
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    let audit = h.audit(vendor).await;
    assert_eq!(audit[0].0, "supply_api_keys");
    assert_eq!(audit[0].1, "ok");

    // The onboarding goes on with the keys.
    h.drive(run).await;
    assert_eq!(h.status(run).await, "waiting");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_dead_delivery_is_replayed_with_an_audit_entry_and_a_pending_one_is_not(pool: PgPool) {
    let h = Harness::start(pool).await;
    let delivery = h.dead_delivery(h.a.id).await;
    let (_, dead) = h
        .get("/v1/admin/webhooks/deliveries?status=dead", &h.a.viewer)
        .await;
    assert_eq!(dead["deliveries"][0]["id"], delivery.to_string());
    let (_, endpoints) = h.get("/v1/admin/webhooks/endpoints", &h.a.viewer).await;
    assert_eq!(endpoints[0]["dead"], 1);

    let (status, body) = post(
        &h,
        &format!("/v1/admin/webhooks/deliveries/{delivery}/replay"),
        &h.a.operator,
        json!({"reason": "the marketplace fixed its endpoint"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, pending) = h
        .get("/v1/admin/webhooks/deliveries?status=pending", &h.a.viewer)
        .await;
    assert_eq!(pending["deliveries"][0]["id"], delivery.to_string());
    assert_eq!(pending["deliveries"][0]["attempts"], 0);

    let (status, _) = post(
        &h,
        &format!("/v1/admin/webhooks/deliveries/{delivery}/replay"),
        &h.a.operator,
        json!({"reason": "again"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let audit = h.audit(delivery).await;
    assert_eq!(
        audit.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
        vec!["ok", "refused"]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_runs_list_filters_counts_sorts_and_pages_with_a_cursor(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, paused) = h.paused_run(h.a.id, "seller-7").await;
    let mut pending = Vec::new();
    for i in 0..3 {
        pending.push(h.pending_run(h.a.id, &format!("p-{i}")).await.1);
    }
    let (_, page) = h.get("/v1/admin/runs?limit=2", &h.a.viewer).await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 2);
    assert_eq!(page["runs"][0]["id"], pending[2].to_string());
    assert_eq!(page["counts"], json!({"paused": 1, "pending": 3}));
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = h
        .get(
            &format!("/v1/admin/runs?limit=2&cursor={cursor}"),
            &h.a.viewer,
        )
        .await;
    assert_eq!(next["runs"][0]["id"], pending[0].to_string());
    assert_eq!(next["runs"][1]["id"], paused.to_string());
    assert_eq!(next["next_cursor"], Value::Null);

    let (_, oldest) = h
        .get("/v1/admin/runs?sort=oldest&limit=1", &h.a.viewer)
        .await;
    assert_eq!(oldest["runs"][0]["id"], paused.to_string());
    let (_, by_vendor) = h.get("/v1/admin/runs?vendor=p-1", &h.a.viewer).await;
    assert_eq!(by_vendor["runs"][0]["id"], pending[1].to_string());
    assert_eq!(by_vendor["runs"].as_array().unwrap().len(), 1);
    let (_, by_step) = h
        .get("/v1/admin/runs?step=capture_api_keys", &h.a.viewer)
        .await;
    assert_eq!(by_step["runs"][0]["id"], paused.to_string());
    // Nothing has been unchanged for an hour yet.
    let (_, stuck) = h.get("/v1/admin/runs?stuck_minutes=60", &h.a.viewer).await;
    assert_eq!(stuck["runs"], json!([]));
    let (status, problem) = h.get("/v1/admin/runs?status=lost", &h.a.viewer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "status");
    // An empty parameter is no filter.
    let (status, _) = h.get("/v1/admin/runs?status=&step=", &h.a.viewer).await;
    assert_eq!(status, StatusCode::OK);
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_admin_api_is_in_the_openapi_document(pool: PgPool) {
    let h = Harness::start(pool).await;
    let spec = h.openapi().await;
    for path in [
        "/v1/admin/runs",
        "/v1/admin/runs/{id}",
        "/v1/admin/runs/{id}/resume",
        "/v1/admin/runs/{id}/resume-from",
        "/v1/admin/runs/{id}/signals/{name}",
        "/v1/admin/runs/bulk/dry-run",
        "/v1/admin/runs/bulk",
        "/v1/admin/vendors/{id}/api-keys",
        "/v1/admin/webhooks/deliveries/{id}/replay",
        "/v1/admin/audit",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is missing");
    }
}

// ----- The dashboard's HTTP rules (the browser test drives the same pages in Chromium). -----

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the form and returns the session cookie and a page's CSRF token.
async fn sign_in(h: &Harness, token: &str) -> (String, String) {
    let client = no_redirects();
    let form = client
        .get(format!("{}/admin/login", h.base))
        .send()
        .await
        .unwrap();
    let login_cookie = form
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = form.text().await.unwrap();
    let nonce = hidden(&html, "csrf");
    let response = client
        .post(format!("{}/admin/login", h.base))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[("csrf", nonce.as_str()), ("token", token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("vf_session="))
        .unwrap()
        .to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains(token));
    let cookie = session.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{}/admin/runs", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (cookie, hidden(&page, "csrf"))
}

/// An `application/x-www-form-urlencoded` body.
fn encode_form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("a hidden field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[sqlx::test(migrations = "../../migrations")]
async fn dashboard_posts_need_the_session_csrf_token_and_an_operator(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-8").await;
    let client = no_redirects();
    let url = format!("{}/admin/runs/{run}/resume", h.base);

    // Without a session: off to the sign-in page.
    let response = client
        .get(format!("{}/admin/runs", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/admin/login");

    let (viewer_cookie, viewer_csrf) = sign_in(&h, &h.a.viewer).await;
    let response = client
        .post(&url)
        .header("cookie", &viewer_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[
            ("csrf", viewer_csrf.as_str()),
            ("reason", "I am a viewer"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (cookie, csrf) = sign_in(&h, &h.a.operator).await;
    for form in [
        vec![("reason", "no token")],
        vec![
            ("csrf", viewer_csrf.as_str()),
            ("reason", "another session's token"),
        ],
    ] {
        let response = client
            .post(&url)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&form))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let response = client
        .post(&url)
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[
            ("csrf", csrf.as_str()),
            ("reason", "cross-site"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(h.status(run).await, "paused");

    let response = client
        .post(&url)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[
            ("csrf", csrf.as_str()),
            ("reason", "checked"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.status(run).await, "pending");

    // Signing out ends the session for good.
    let response = client
        .post(format!("{}/admin/logout", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = client
        .get(format!("{}/admin/runs", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sessions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, result FROM vendorflow.admin_audit WHERE target_kind = 'session' ORDER BY id",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    assert_eq!(sessions[2].0, "sign_out");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_backend_or_unknown_token_cannot_sign_in_and_a_revoked_token_ends_its_sessions(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let client = no_redirects();
    for token in [h.a.backend.as_str(), "vf_operator_unknown"] {
        let form = client
            .get(format!("{}/admin/login", h.base))
            .send()
            .await
            .unwrap();
        let cookie = form.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let nonce = hidden(&form.text().await.unwrap(), "csrf");
        let response = client
            .post(format!("{}/admin/login", h.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&[("csrf", nonce.as_str()), ("token", token)]))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{token}");
        assert!(
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("vf_session="))
        );
    }
    let (cookie, _) = sign_in(&h, &h.a.operator).await;
    let token_id: Uuid =
        sqlx::query_scalar("SELECT token_id FROM vendorflow.admin_sessions LIMIT 1")
            .fetch_one(&h.pool)
            .await
            .unwrap();
    let mut conn = h.pool.acquire().await.unwrap();
    store::tokens::revoke(&mut conn, token_id).await.unwrap();
    let response = client
        .get(format!("{}/admin/runs", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test(migrations = "../../migrations")]
async fn dashboard_forms_and_queries_with_control_characters_get_a_422_page(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, run) = h.paused_run(h.a.id, "seller-9").await;
    let client = no_redirects();
    let (cookie, csrf) = sign_in(&h, &h.a.operator).await;
    let response = client
        .post(format!("{}/admin/runs/{run}/resume", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[
            ("csrf", csrf.as_str()),
            ("reason", "fixed\u{0}it"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("reason"), "{page}");
    assert_eq!(h.status(run).await, "paused", "nothing was done");
    assert!(h.audit(run).await.is_empty(), "nothing was audited");

    for query in ["workflow=a%00b", "step=a%01b", "vendor=%7F", "q=a%00"] {
        for page in ["/admin/runs", "/admin/vendors", "/admin/audit"] {
            let response = client
                .get(format!("{}{page}?{query}", h.base))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{page}?{query}"
            );
        }
    }
    let response = client
        .get(format!("{}/admin/runs/a%00b", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
