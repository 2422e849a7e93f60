//! End-to-end test of `vendorflow demo`: the real binary serves (API, worker, scheduler) against a
//! fresh database and an in-process SUMIT sandbox, and `vendorflow demo` onboards vendors through
//! its HTTP API until every one is ready. The sandbox approves no terminal by itself here, so the
//! clearing vendors become ready only because the demo sends `terminal_approved`.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::Poll;
use secrecy::ExposeSecret;
use testkit::TestDatabase;

/// Kills the server it holds when dropped, so a failed assertion leaves no process behind.
struct Server {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
        let _ignored = std::fs::remove_file(&self.log);
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `vendorflow` with `args` and nothing of the environment but PATH, off the runtime's
/// threads (the sandbox serves on them meanwhile), in an empty folder: no checkout, so no
/// development token of `make run` is found.
async fn vendorflow(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let elsewhere = common::TempDir::new();
        Command::new(env!("CARGO_BIN_EXE_vendorflow"))
            .args(&args)
            .current_dir(&elsewhere.path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VENDORFLOW_LOG", "warn")
            .output()
            .expect("run vendorflow")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_onboards_vendors_through_a_running_instance_until_all_are_ready() {
    let db = TestDatabase::create().await;
    let sandbox = sandbox::spawn(sandbox::SandboxConfig {
        terminal_approval: sandbox::TerminalApproval::Manual,
        ..sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Demo")
        .await
        .unwrap();
    let token = store::tokens::create(
        &mut conn,
        marketplace.id,
        store::tokens::Role::Backend,
        "demo",
    )
    .await
    .unwrap()
    .token;
    drop(conn);

    let listen = free_address();
    let log = std::env::temp_dir().join(format!("vendorflow-demo-{}.log", uuid::Uuid::new_v4()));
    let child = Command::new(env!("CARGO_BIN_EXE_vendorflow"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("VENDORFLOW_LISTEN", &listen)
        .env("VENDORFLOW_LOG", "warn")
        .env(
            "VENDORFLOW_MASTER_KEY",
            store::secrets::MasterKey::generate()
                .to_base64()
                .expose_secret(),
        )
        .env("VENDORFLOW_PROVIDER_URL", &sandbox.base_url)
        .env("VENDORFLOW_PROVIDER_COMPANY_ID", "1000")
        .env(
            "VENDORFLOW_PROVIDER_API_KEY",
            "vendorflow-sandbox-marketplace-key",
        )
        .env("VENDORFLOW_PROVIDER_SANDBOX_EXTENSIONS", "true")
        .env(
            "VENDORFLOW_WORKFLOWS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start vendorflow serve");
    let server = Server { child, log };

    // Ready within a bound: the server binds and answers /readyz once it reaches the database.
    let api = format!("http://{listen}");
    let client = reqwest::Client::new();
    let mut poll = Poll::every(Duration::from_millis(100), Duration::from_secs(30));
    while !client
        .get(format!("{api}/readyz"))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        if poll.expired() {
            panic!("the server never became ready:\n{}", server.log());
        }
        poll.tick("the server becomes ready").await;
    }

    let demo = vendorflow(vec![
        "demo".into(),
        "--api".into(),
        api.clone(),
        "--token".into(),
        token.expose_secret().to_owned(),
        "--vendors".into(),
        "3".into(),
        "--timeout".into(),
        "90s".into(),
    ])
    .await;
    assert!(
        demo.status.success(),
        "{}\nserver log:\n{}",
        describe(&demo),
        server.log()
    );
    let out = String::from_utf8_lossy(&demo.stdout);
    assert!(
        out.contains("approving terminal as the acquirer would"),
        "{out}"
    );
    assert!(out.contains("3 of 3 vendor(s) ready"), "{out}");

    // Every vendor is ready, with exactly one organization at the provider; the two clearing
    // vendors' terminals were requested once each.
    let vendors: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT corporate_number, mode, onboarding_state, provider_company_id
         FROM vendorflow.vendors ORDER BY external_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(vendors.len(), 3);
    let ledger = sandbox.ledger();
    for (corporate_number, mode, state, company) in &vendors {
        assert_eq!(state, "ready");
        assert_eq!(
            ledger
                .companies_with_corporate_number(corporate_number)
                .len(),
            1
        );
        let terminal = ledger.terminal(company.expect("an organization id"));
        assert_eq!(terminal.is_some(), mode == "clearing", "{mode}");
        if let Some(terminal) = terminal {
            assert_eq!(terminal.requests, 1);
        }
    }
    assert_eq!(
        vendors
            .iter()
            .filter(|(_, mode, ..)| mode == "clearing")
            .count(),
        2
    );
}

#[tokio::test]
async fn the_demo_names_what_is_missing_when_it_cannot_start() {
    let no_token = vendorflow(vec![
        "demo".into(),
        "--api".into(),
        "http://127.0.0.1:9".into(),
    ])
    .await;
    assert!(!no_token.status.success());
    assert!(
        String::from_utf8_lossy(&no_token.stderr)
            .contains("--token: a backend or operator token is required: run `make run` first"),
        "{}",
        describe(&no_token)
    );

    let closed = free_address();
    let unreachable = vendorflow(vec![
        "demo".into(),
        "--api".into(),
        format!("http://{closed}"),
        "--token".into(),
        "vf_backend_x".into(),
    ])
    .await;
    assert!(!unreachable.status.success());
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("--api: cannot reach"),
        "{}",
        describe(&unreachable)
    );
}
