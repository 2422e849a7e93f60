//! A vendor's state where an onboarding run really paused and waits (driven by a real engine
//! worker, `support::admin`): the marketplace API, the admin API, the dashboard (in English and
//! Hebrew) and the vendor webhook events all name it the same, `action_required` with why and
//! what to do, then `awaiting_approval`.

mod support;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use sqlx::PgPool;
use support::admin::Harness;
use uuid::Uuid;

/// Signs in to the dashboard with `token` and answers the session cookie.
async fn sign_in(h: &Harness, token: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{}/admin/login", h.base))
        .send()
        .await
        .unwrap();
    let login_cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let nonce = &html[start..start + html[start..].find('"').unwrap()];
    let response = client
        .post(format!("{}/admin/login", h.base))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&token={}",
            utf8_percent_encode(nonce, NON_ALPHANUMERIC),
            utf8_percent_encode(token, NON_ALPHANUMERIC)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("vf_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn page(h: &Harness, cookie: &str, path: &str) -> String {
    let response = h
        .client
        .get(format!("{}{path}", h.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// The payloads of the outbox events of `run` of type `event_type`.
async fn events(h: &Harness, run: Uuid, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM vendorflow.outbox WHERE run_id = $1 AND event_type = $2 ORDER BY id",
    )
    .bind(run)
    .bind(event_type)
    .fetch_all(&h.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_paused_onboarding_is_action_required_everywhere(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (vendor, run) = h.paused_run(h.a.id, "seller-7").await;
    let ready_vendor = h.vendor(h.a.id, "seller-8", "Avi Shoes").await;
    sqlx::query("UPDATE vendorflow.vendors SET onboarding_state = 'ready' WHERE id = $1")
        .bind(ready_vendor)
        .execute(&h.pool)
        .await
        .unwrap();

    let (status, read) = h.get(&format!("/v1/vendors/{vendor}"), &h.a.backend).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["state"], "action_required", "{read}");
    assert_eq!(read["state_reason"]["code"], "api_keys_required");
    let reason = read["state_reason"]["message"].as_str().unwrap().to_owned();
    assert!(!reason.is_empty());
    assert_eq!(read["run_id"], run.to_string());

    let (_, admin) = h.get("/v1/admin/vendors?q=seller-7", &h.a.viewer).await;
    assert_eq!(admin["vendors"][0]["state"], "action_required", "{admin}");
    // The admin API filters by the same states it shows, as the dashboard does.
    let (_, admin) = h
        .get("/v1/admin/vendors?state=action_required", &h.a.viewer)
        .await;
    let listed: Vec<&str> = admin["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["external_id"].as_str())
        .collect();
    assert!(listed.contains(&"seller-7"), "{admin}");
    assert!(!listed.contains(&"seller-8"), "{admin}");
    let (status, problem) = h.get("/v1/admin/vendors?state=pending", &h.a.viewer).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "state");
    let (_, admin) = h
        .get(&format!("/v1/admin/vendors/{vendor}"), &h.a.viewer)
        .await;
    assert_eq!(admin["state"], "action_required", "{admin}");
    assert_eq!(admin["state_reason"]["message"], reason.as_str());

    let paused = events(&h, run, "vendor.onboarding_paused").await;
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0]["state"], "action_required", "{}", paused[0]);

    let cookie = sign_in(&h, &h.a.viewer).await;
    let list = page(&h, &cookie, "/admin/vendors?state=action_required&lang=en").await;
    assert!(list.contains("seller-7"), "the paused vendor is listed");
    assert!(!list.contains("seller-8"), "the ready vendor is not");
    assert!(list.contains("data-state=\"action_required\""));
    let hebrew = page(&h, &cookie, "/admin/vendors?lang=he").await;
    assert!(
        hebrew.contains("נדרשת פעולה"),
        "the Hebrew label of action_required"
    );
    assert!(hebrew.contains("פעיל"), "the Hebrew label of ready");
    let detail = page(&h, &cookie, &format!("/admin/vendors/{vendor}?lang=en")).await;
    assert!(detail.contains("data-state=\"action_required\""));
    assert!(detail.contains("api_keys_required"));
    assert!(detail.contains(&format!("/admin/runs/{run}")));

    // Resumed with keys, the run waits for the acquirer: the vendor is awaiting approval.
    let (vendor, _) = h.waiting_run(h.a.id, "seller-9").await;
    let (_, read) = h.get(&format!("/v1/vendors/{vendor}"), &h.a.viewer).await;
    assert_eq!(read["state"], "awaiting_approval", "{read}");
    assert_eq!(read["state_reason"]["code"], "terminal_approval_pending");
    let (_, listed) = h
        .get("/v1/vendors?state=awaiting_approval", &h.a.viewer)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["id"], vendor.to_string());
}
