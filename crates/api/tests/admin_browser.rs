//! The dashboard in a real headless Chromium (`support::browser`, driven over WebDriver by
//! Debian's `chromedriver`): sign in, filter runs, open a paused run, resume it with a reason and see its
//! history and audit entry update; a forged form without the CSRF token is refused; a viewer sees
//! no actions and is refused when it forges one; the Hebrew pages are right to left.
//!
//! Screenshots are written to the target directory, and also to `$VENDORFLOW_SCREENSHOT_DIR` when
//! it is set (how `docs/dashboard.png` is made).

mod support;

use serde_json::json;
use sqlx::PgPool;
use support::admin::Harness;
use support::browser::Browser;

/// The dashboard's own steps.
impl Browser {
    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/admin/login")).await;
        self.type_into("#token", token).await;
        self.click("#sign-in").await;
        self.find("#runs").await;
    }

    async fn sign_out(&self) {
        self.click("header form button").await;
        self.find("#token").await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_operator_signs_in_filters_runs_and_resumes_a_paused_run_in_chromium(pool: PgPool) {
    let h = Harness::start(pool).await;
    let (_, paused) = h.paused_run(h.a.id, "seller-1042").await;
    let (_, second_paused) = h.paused_run(h.a.id, "seller-2077").await;
    for i in 0..4 {
        h.pending_run(h.a.id, &format!("seller-30{i}")).await;
    }
    h.waiting_run(h.a.id, "seller-5150").await;
    let (keys_vendor, keys_run) = h.paused_run(h.a.id, "seller-6060").await;
    let delivery = h.dead_delivery(h.a.id).await;
    let (_, other_market) = h.paused_run(h.b.id, "seller-of-b").await;

    let browser = Browser::start().await;
    let base = &h.base;

    // Without a session the dashboard sends you to sign in.
    browser.goto(&format!("{base}/admin/runs")).await;
    browser.wait_for_url("/admin/login").await;
    browser.sign_in(base, &h.a.operator).await;
    let whoami = browser.text("#whoami").await;
    assert!(
        whoami.contains("operator") && whoami.contains("dana"),
        "{whoami}"
    );
    assert_eq!(browser.text("#count-all").await, "8");
    assert_eq!(browser.text("#count-paused").await, "3");
    assert_eq!(browser.text("#count-waiting").await, "1");
    browser.screenshot("dashboard.png").await;

    // Filter: paused runs only; marketplace B's paused run is never listed.
    browser.click("#filter-status option[value=paused]").await;
    browser.click("#apply-filters").await;
    browser.wait_for_url("status=paused").await;
    let rows = browser
        .script(
            "return Array.from(document.querySelectorAll('#runs tbody tr')).map(r => [r.dataset.runId, r.dataset.status]);",
            json!([]),
        )
        .await;
    let mut listed: Vec<(String, String)> = serde_json::from_value(rows).unwrap();
    listed.sort();
    let mut expected = vec![
        (paused.to_string(), "paused".to_owned()),
        (second_paused.to_string(), "paused".to_owned()),
        (keys_run.to_string(), "paused".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    let html = browser
        .script("return document.documentElement.outerHTML", json!([]))
        .await;
    assert!(!html.as_str().unwrap().contains(&other_market.to_string()));

    // The vendor filter narrows it to one run; open it.
    browser.type_into("#filter-vendor", "seller-1042").await;
    browser.click("#apply-filters").await;
    browser.wait_for_url("vendor=seller-1042").await;
    assert_eq!(browser.all("#runs tbody tr").await.len(), 1);
    browser.click("#runs a.run-link").await;
    browser.wait_for_url(&format!("/admin/runs/{paused}")).await;
    assert!(browser.text("#run-status").await.contains("paused"));
    assert!(
        browser
            .text("#status-reason")
            .await
            .contains("API keys are unknown")
    );
    let timeline = browser.text("#timeline").await;
    assert!(timeline.contains("provider_unavailable"), "{timeline}");
    assert!(timeline.contains("SUMIT answered 503"), "{timeline}");
    assert!(browser.text("#next-step").await.contains("vendor's page"));
    browser
        .post("/window/rect", json!({"width": 1366, "height": 1700}))
        .await;
    browser.screenshot("dashboard-run.png").await;
    browser
        .post("/window/rect", json!({"width": 1366, "height": 900}))
        .await;

    // Resume it with a reason: the history and the audit entries update.
    browser
        .type_into(
            "#form-resume input[name=reason]",
            "keys verified with SUMIT support",
        )
        .await;
    browser.click("#form-resume button").await;
    browser.wait_for_url("done=resume").await;
    assert!(browser.text("#flash").await.contains("resume"));
    assert!(browser.text("#run-status").await.contains("pending"));
    let last_event = browser
        .script(
            "const rows = document.querySelectorAll('#history tbody tr'); const r = rows[rows.length - 1]; return [r.dataset.kind, r.innerText];",
            json!([]),
        )
        .await;
    assert_eq!(last_event[0], "resumed");
    assert!(
        last_event[1]
            .as_str()
            .unwrap()
            .contains("keys verified with SUMIT support")
    );
    let audit = browser
        .text("table.audit tbody tr[data-action=resume]")
        .await;
    assert!(
        audit.contains("keys verified with SUMIT support"),
        "{audit}"
    );
    assert!(
        audit.contains("dana (operator)") && audit.contains("dashboard"),
        "{audit}"
    );
    // The history names the operator too, not a token id.
    assert!(
        last_event[1].as_str().unwrap().contains("dana"),
        "{last_event}"
    );
    assert_eq!(h.status(paused).await, "pending");

    // The audit log page lists it too.
    browser.click("header a[href='/admin/audit']").await;
    assert!(
        browser
            .text("#audit")
            .await
            .contains("keys verified with SUMIT support")
    );

    // Lost keys: entered once, encrypted at once, shown afterwards only by fingerprint; the
    // vendor's paused onboarding resumes.
    browser
        .goto(&format!("{base}/admin/vendors/{keys_vendor}"))
        .await;
    assert!(browser.text("#api-key-mask").await.contains("not stored"));
    let secret_key = "5f0c9a7e-1b2d-4c3e-8f9a-0b1c2d3e4f5a";
    browser
        .type_into("#supply-keys input[name=company_id]", "7000001")
        .await;
    browser
        .type_into("#supply-keys input[name=api_key]", secret_key)
        .await;
    browser
        .type_into(
            "#supply-keys input[name=api_public_key]",
            "pk-0a1b2c3d4e5f6a7b8c9d",
        )
        .await;
    browser
        .type_into(
            "#supply-keys input[name=reason]",
            "keys read out by SUMIT support",
        )
        .await;
    browser.click("#supply-keys button").await;
    browser.wait_for_url("done=supply_api_keys").await;
    let mask = browser.text("#api-key-mask").await;
    assert!(
        mask.contains("fingerprint") && mask.contains("4f5a"),
        "{mask}"
    );
    let html = browser
        .script("return document.documentElement.outerHTML", json!([]))
        .await;
    assert!(!html.as_str().unwrap().contains(secret_key));
    assert_eq!(h.status(keys_run).await, "pending");
    browser.screenshot("dashboard-vendor.png").await;

    // A dead webhook delivery is replayed from the webhooks page.
    browser.goto(&format!("{base}/admin/webhooks")).await;
    browser
        .type_into(
            &format!("tr[data-delivery-id='{delivery}'] input[name=reason]"),
            "endpoint fixed",
        )
        .await;
    browser
        .click(&format!("tr[data-delivery-id='{delivery}'] button"))
        .await;
    browser.wait_for_url("done=replay").await;
    browser
        .find(&format!("tr[data-delivery-id='{delivery}'] .d-pending"))
        .await;

    // A forged form without the CSRF token is refused, and changes nothing.
    browser
        .goto(&format!("{base}/admin/runs/{second_paused}"))
        .await;
    browser
        .type_into("#form-resume input[name=reason]", "forged")
        .await;
    browser
        .script(
            "document.querySelector('#form-resume input[name=csrf]').remove();",
            json!([]),
        )
        .await;
    browser.click("#form-resume button").await;
    assert!(browser.text("#error-status").await.starts_with("403"));
    assert!(browser.text("#error-message").await.contains("CSRF"));
    assert_eq!(h.status(second_paused).await, "paused");

    // In Hebrew the dashboard is right to left.
    browser
        .goto(&format!("{base}/admin/runs/{second_paused}?lang=he"))
        .await;
    let dir = browser
        .script("return document.documentElement.dir", json!([]))
        .await;
    assert_eq!(dir, "rtl");
    assert!(browser.text("h2").await.contains("מה לעשות עכשיו"));
    browser.goto(&format!("{base}/admin/runs")).await;
    assert_eq!(browser.text("h1").await, "הרצות");
    browser.screenshot("dashboard-he.png").await;
    browser.goto(&format!("{base}/admin/runs?lang=en")).await;

    // A viewer sees the run but no action, and a post it forges with its own session's CSRF
    // token is refused.
    browser.sign_out().await;
    browser.sign_in(base, &h.a.viewer).await;
    assert!(browser.text("#whoami").await.contains("viewer"));
    browser
        .goto(&format!("{base}/admin/runs/{second_paused}"))
        .await;
    browser.find("#viewer-notice").await;
    assert!(browser.all("#actions").await.is_empty());
    assert!(browser.all("#form-resume").await.is_empty());
    browser
        .script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
             const c = document.querySelector('header form input[name=csrf]').cloneNode();
             const r = document.createElement('input'); r.name = 'reason'; r.value = 'viewer tries';
             f.append(c, r); document.body.append(f); f.submit();",
            json!([format!("/admin/runs/{second_paused}/resume")]),
        )
        .await;
    assert!(browser.text("#error-status").await.starts_with("403"));
    assert!(browser.text("#error-message").await.contains("viewers"));
    assert_eq!(h.status(second_paused).await, "paused");
    browser.quit().await;
}
