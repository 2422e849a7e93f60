//! The dashboard in a real headless Chromium, driven over the W3C WebDriver protocol by Debian's
//! `chromedriver`: sign in, filter runs, open a paused run, resume it with a reason and see its
//! history and audit entry update; a forged form without the CSRF token is refused; a viewer sees
//! no actions and is refused when it forges one; the Hebrew pages are right to left.
//!
//! The WebDriver client is the few commands below over `reqwest` (already a dev-dependency):
//! fantoccini would bring a second `http`, `cookie`, `base64` and the whole ICU 1.x tree.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install -y chromium
//! chromium-driver`); `CHROMEDRIVER` and `CHROMIUM` override the paths. Screenshots are written to
//! the target directory, and also to `$VENDORFLOW_SCREENSHOT_DIR` when it is set (how
//! `docs/dashboard.png` is made).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::admin::Harness;

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A Chromium driven through chromedriver. The chromedriver process is killed on drop.
struct Browser {
    child: Child,
    http: reqwest::Client,
    session: String,
    _profile: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver ends the browser it started (a child of its process group is
        // reaped with it); the profile directory is removed after.
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }
}

fn binary(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} is missing: the dashboard is tested in a real headless Chromium. Install it with \
         `apt-get install -y chromium chromium-driver` (or set {variable})",
        path.display()
    );
    path
}

impl Browser {
    async fn start() -> Browser {
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let profile = TempDir(std::env::temp_dir().join(format!(
            "vendorflow-chromium-{}",
            uuid::Uuid::new_v4().simple()
        )));
        std::fs::create_dir_all(&profile.0).unwrap();
        let log = std::fs::File::create(profile.0.join("chromedriver.log")).unwrap();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1366,900".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--user-data-dir={}", profile.0.join("profile").display()),
        ];
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {answer}"))
            .to_owned();
        Browser {
            child,
            http,
            session: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"].get("error") {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_owned()
    }

    /// The elements matching `css` now.
    async fn all(&self, css: &str) -> Vec<String> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first element matching `css`, waiting for it at most ten seconds.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(first) = self.all(css).await.into_iter().next() {
                return first;
            }
            assert!(
                Instant::now() < deadline,
                "no element `{css}` on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await;
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{element}/text"))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Waits (at most ten seconds) until the page's URL contains `part`.
    async fn wait_for_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.url().await.contains(part) {
            assert!(
                Instant::now() < deadline,
                "the URL never contained `{part}`: {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = base64::engine::general_purpose::STANDARD
            .decode(self.get("/screenshot").await.as_str().unwrap())
            .unwrap();
        let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR"))];
        if let Some(dir) = std::env::var_os("VENDORFLOW_SCREENSHOT_DIR") {
            dirs.push(PathBuf::from(dir));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(Path::new(&dir).join(name), &png).unwrap();
        }
    }

    async fn quit(&self) {
        let _ignored = self.http.delete(&self.session).send().await;
    }

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
