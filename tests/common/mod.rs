//! The end-to-end harness: a fresh database, the sandbox in-process, the real `vendorflow serve`
//! binary, a marketplace with a backend token, and a webhook receiver that verifies signatures.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use sandbox::{FaultPlan, SandboxConfig, SandboxHandle, TerminalApproval};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use testkit::TestDatabase;

/// Kills the server when the test ends, however it ends.
pub struct Server(Child);

impl Server {
    /// Takes charge of `child`: it is killed when the value is dropped.
    pub fn new(child: Child) -> Server {
        Server(child)
    }

    /// The exit status, once the process has ended by itself.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().expect("the server's status")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Interrupts the process as Ctrl-C would (SIGINT) and waits, at most `bound`, for it to
    /// end; returns its exit status.
    pub async fn interrupt(&mut self, bound: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT {}", self.id());
        let mut poll = Poll::every(Duration::from_millis(50), bound);
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            poll.tick("the process ends after Ctrl-C").await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _killed = self.0.kill();
        let _reaped = self.0.wait();
    }
}

/// What the webhook receiver got.
#[derive(Default)]
pub struct Received {
    /// (event type, data) of every delivery whose signature verified.
    pub verified: Vec<(String, Value)>,
    /// The raw bodies of every delivery.
    pub bodies: Vec<String>,
    /// Deliveries whose signature did not verify.
    pub rejected: usize,
}

/// A folder removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("vendorflow-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _removed = std::fs::remove_dir_all(&self.path);
    }
}

/// A running system under test.
pub struct Harness {
    pub db: TestDatabase,
    pub sandbox: SandboxHandle,
    pub keyring: store::secrets::Keyring,
    pub token: SecretString,
    pub base: String,
    pub http: reqwest::Client,
    pub received: Arc<Mutex<Received>>,
    /// The server's log file (JSON lines, debug level).
    pub log_path: PathBuf,
    _workflows: TempDir,
    _server: Server,
}

/// Bounded polling, the one way these tests wait for the system: each `tick` fails the test once
/// `bound` has passed, and otherwise lets one poll interval go by before the next look.
pub struct Poll {
    started: Instant,
    bound: Duration,
    interval: tokio::time::Interval,
}

impl Poll {
    /// Looks every `period`, for at most `bound`.
    pub fn every(period: Duration, bound: Duration) -> Poll {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Poll {
            started: Instant::now(),
            bound,
            interval,
        }
    }

    /// Whether the bound has passed (for a caller that fails with more context than `tick`).
    pub fn expired(&self) -> bool {
        self.started.elapsed() >= self.bound
    }

    /// Fails with "`what` within …" once the bound has passed; otherwise waits for the next look.
    pub async fn tick(&mut self, what: &str) {
        assert!(
            self.started.elapsed() < self.bound,
            "{what} within {:?}",
            self.bound
        );
        self.interval.tick().await;
    }
}

/// What driving one onboarding to `ready` saw.
pub struct Onboarded {
    pub run_id: String,
    pub vendor_id: String,
    /// Every API answer received on the way, as JSON text.
    pub answers: Vec<String>,
}

/// A valid nine-digit corporate number (ח"פ of a company, prefix 51) numbered `n`.
pub fn corporate_number(n: usize) -> String {
    let first_eight = format!("51{:06}", 100_000 + n);
    let check = domain::israeli_id::israeli_id_check_digit(&first_eight).unwrap();
    format!("{first_eight}{check}")
}

/// Workflow definitions as shipped, with backoffs shortened so tests finish in seconds.
pub fn fast_workflows() -> TempDir {
    let dir = TempDir::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = shorten(
                &shorten(&text, "initial_backoff", "100ms"),
                "max_backoff",
                "1s",
            );
            std::fs::write(dir.path.join(path.file_name().unwrap()), text).unwrap();
        }
    }
    dir
}

/// Every `key = "…"` of `text` set to `value`.
pub fn shorten(text: &str, key: &str, value: &str) -> String {
    let pattern = format!("{key} = \"");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&pattern) {
        out.push_str(&rest[..at + pattern.len()]);
        rest = &rest[at + pattern.len()..];
        let end = rest.find('"').unwrap();
        out.push_str(value);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

pub async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

impl Harness {
    /// Starts everything with `faults` on the sandbox and terminals approved by hand.
    pub async fn start(faults: FaultPlan, seed: u64) -> Harness {
        Harness::start_with(faults, seed, fast_workflows()).await
    }

    /// As [`Harness::start`], with the workflow definitions in `workflows`.
    pub async fn start_with(faults: FaultPlan, seed: u64, workflows: TempDir) -> Harness {
        let db = TestDatabase::create().await;
        let sandbox = sandbox::spawn(SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            seed,
            faults,
            ..SandboxConfig::default()
        })
        .await
        .unwrap();

        let master_key = store::secrets::MasterKey::generate().to_base64();
        let keyring =
            store::secrets::Keyring::from_config(master_key.expose_secret(), None).unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver_url = format!("http://{}/hooks", receiver.local_addr().unwrap());
        let mut conn = db.pool.acquire().await.unwrap();
        let marketplace = store::marketplaces::insert(&mut conn, "E2E market")
            .await
            .unwrap();
        let token = store::tokens::create(
            &mut conn,
            marketplace.id,
            store::tokens::Role::Backend,
            "e2e",
        )
        .await
        .unwrap()
        .token;
        let endpoint = store::webhooks::create_endpoint(
            &mut conn,
            &keyring,
            marketplace.id,
            &receiver_url,
            None,
        )
        .await
        .unwrap();
        drop(conn);
        let secret =
            Arc::new(webhooks::WebhookSecret::from_secret_string(&endpoint.secret).unwrap());
        {
            let received = received.clone();
            let app = axum::Router::new().route(
                "/hooks",
                axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                    let received = received.clone();
                    let secret = secret.clone();
                    async move {
                        let verified = webhooks::verify(
                            &headers,
                            &body,
                            &secret,
                            chrono::Utc::now(),
                            webhooks::DEFAULT_TOLERANCE,
                        );
                        let mut received = received.lock().unwrap();
                        received
                            .bodies
                            .push(String::from_utf8_lossy(&body).into_owned());
                        match verified {
                            Ok(()) => {
                                let event: Value = serde_json::from_slice(&body).unwrap();
                                let kind = event["type"].as_str().unwrap_or_default().to_owned();
                                received.verified.push((kind, event["data"].clone()));
                            }
                            Err(_) => received.rejected += 1,
                        }
                        axum::http::StatusCode::NO_CONTENT
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(receiver, app).await });
        }

        let log_path = workflows.path.join("server.log");
        let log_file = std::fs::File::create(&log_path).unwrap();
        let port = free_port().await;
        let base = format!("http://127.0.0.1:{port}");
        let server = Server(
            Command::new(env!("CARGO_BIN_EXE_vendorflow"))
                .arg("serve")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", &db.url)
                .env("VENDORFLOW_LISTEN", format!("127.0.0.1:{port}"))
                .env("VENDORFLOW_MASTER_KEY", master_key.expose_secret())
                .env("VENDORFLOW_PROVIDER_URL", &sandbox.base_url)
                .env(
                    "VENDORFLOW_PROVIDER_COMPANY_ID",
                    sandbox.marketplace_company_id().to_string(),
                )
                .env("VENDORFLOW_PROVIDER_API_KEY", sandbox.marketplace_api_key())
                .env("VENDORFLOW_PROVIDER_TIMEOUT", "500ms")
                .env("VENDORFLOW_WEBHOOKS_ALLOW_PRIVATE", "true")
                .env("VENDORFLOW_WORKFLOWS_DIR", &workflows.path)
                .env(
                    "VENDORFLOW_LOG",
                    "debug,sqlx=warn,hyper=info,reqwest=info,h2=info",
                )
                .env("VENDORFLOW_LOG_FORMAT", "json")
                .env("VENDORFLOW_METRICS_ON_API", "true")
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("start vendorflow serve"),
        );
        let http = reqwest::Client::new();
        let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(30));
        while !http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            poll.tick("the server becomes ready").await;
        }
        Harness {
            db,
            sandbox,
            keyring,
            token,
            base,
            http,
            received,
            log_path,
            _workflows: workflows,
            _server: server,
        }
    }

    /// The system's API, as the marketplace's backend calls it.
    pub fn api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            base: &self.base,
            token: &self.token,
        }
    }

    /// GETs `path` with the backend token and returns the JSON body.
    pub async fn get(&self, path: &str) -> Value {
        self.api().get(path).await
    }

    /// POSTs `body` to `path` with the backend token; returns the status and the JSON body.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        self.api().post(path, key, body).await
    }

    /// See [`Api::onboard_to_ready`].
    pub async fn onboard_to_ready(&self, key: &str, vendor: Value) -> Onboarded {
        self.api().onboard_to_ready(key, vendor).await
    }
}

/// A running vendorflow API and a backend token: the calls the marketplace makes.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: &'a str,
    pub token: &'a SecretString,
}

impl Api<'_> {
    /// GETs `path` with the backend token and returns the JSON body.
    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// POSTs `body` to `path` with the backend token; returns the status and the JSON body.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Onboards `vendor` (the body's `vendor` object) with idempotency key `key`, sends
    /// `terminal_approved` when the run waits for it, and polls until the run has succeeded.
    /// A paused or failed run fails the test.
    pub async fn onboard_to_ready(&self, key: &str, vendor: Value) -> Onboarded {
        let (status, accepted) = self
            .post(
                "/v1/onboardings",
                Some(key),
                &serde_json::json!({ "vendor": vendor }),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        let run_id = accepted["run_id"].as_str().unwrap().to_owned();
        let vendor_id = accepted["vendor_id"].as_str().unwrap().to_owned();
        let mut answers = vec![accepted.to_string()];
        let mut signalled = false;
        let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
        loop {
            let run = self.get(&format!("/v1/runs/{run_id}")).await;
            answers.push(run.to_string());
            if run["status"] == "succeeded" {
                break;
            }
            assert!(
                run["status"] != "failed" && run["status"] != "paused",
                "{run}"
            );
            if run["status"] == "waiting" && !signalled {
                let (status, body) = self
                    .post(
                        &format!("/v1/runs/{run_id}/signals/terminal_approved"),
                        None,
                        &serde_json::json!({"reason": "approved"}),
                    )
                    .await;
                assert_eq!(status, 202);
                answers.push(body.to_string());
                signalled = true;
            }
            poll.tick("the onboarding run succeeds").await;
        }
        Onboarded {
            run_id,
            vendor_id,
            answers,
        }
    }
}
