//! `make run` twice: the real binary's `vendorflow dev`, killed and started again on the same
//! `.data/` folder and database, still charges for a vendor made ready before the restart (the
//! sandbox's state file kept the vendor's organization, keys and terminal), and still onboards
//! new vendors (new organization ids do not collide with the kept ones).

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Api, Poll, Server, TempDir, corporate_number, fast_workflows, free_port};
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::TestDatabase;

/// A running `vendorflow dev`, with what it printed at start.
struct Dev {
    base: String,
    token: SecretString,
    /// The banner's `sandbox state:` line.
    sandbox_state: String,
    http: reqwest::Client,
    _server: Server,
}

impl Dev {
    /// Starts `vendorflow dev` in `dir` (where it keeps `.data/`) on the database at `url`, and
    /// waits until it has printed its tokens and its API is ready.
    async fn start(dir: &Path, url: &str, workflows: &Path, log: &Path) -> Dev {
        let port = free_port().await;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vendorflow"))
            .arg("dev")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", url)
            .env("VENDORFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("VENDORFLOW_WORKFLOWS_DIR", workflows)
            .env("VENDORFLOW_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start vendorflow dev");
        let stdout = child.stdout.take().unwrap();
        let server = Server::new(child);
        // The banner is read on a thread of its own, which keeps draining stdout afterwards.
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let banner = async {
            let mut token = None;
            let mut sandbox_state = None;
            while let Some(line) = lines.recv().await {
                if let Some(rest) = line.trim().strip_prefix("backend token:") {
                    // `TOKEN   (`name`)`: the token is the first word.
                    token = rest.split_whitespace().next().map(str::to_owned);
                }
                if let Some(rest) = line.trim().strip_prefix("sandbox state:") {
                    sandbox_state = Some(rest.trim().to_owned());
                }
                if line.starts_with("Press Ctrl-C") {
                    break;
                }
            }
            (token, sandbox_state)
        };
        let (token, sandbox_state) = tokio::time::timeout(Duration::from_secs(60), banner)
            .await
            .expect("vendorflow dev prints its banner within a minute");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(30));
        while !http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            poll.tick("vendorflow dev becomes ready").await;
        }
        Dev {
            base,
            token: SecretString::from(token.expect("the banner names a backend token")),
            sandbox_state: sandbox_state.expect("the banner names the sandbox state"),
            http,
            _server: server,
        }
    }

    fn api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            base: &self.base,
            token: &self.token,
        }
    }
}

fn clearing_vendor(n: usize) -> Value {
    json!({
        "external_id": format!("seller-{n}"),
        "legal_name": format!("Seller {n} Ltd"),
        "corporate_number": corporate_number(n),
        "business_type": "company",
        "email": format!("seller{n}@example.co.il"),
        "phone": "052-123-4567",
        "mode": "clearing",
        "bank_account": {"bank": 12, "branch": 571, "account": "041116"},
    })
}

/// Charges the vendor for `order` and polls the run until it ends; returns the run.
async fn charge(api: &Api<'_>, vendor_id: &str, order: &str) -> Value {
    let (status, accepted) = api
        .post(
            &format!("/v1/vendors/{vendor_id}/charges"),
            Some(order),
            &json!({"order_id": order, "amount_agorot": 5782,
                    "single_use_token": format!("tok_approve_{order}"),
                    "customer": {"name": "Noa Levi", "email": "noa@example.com"},
                    "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        let run = api.get(&format!("/v1/runs/{run_id}")).await;
        if ["succeeded", "failed", "paused", "cancelled"].contains(&run["status"].as_str().unwrap())
        {
            return run;
        }
        poll.tick("the charge run ends").await;
    }
}

#[tokio::test]
async fn a_vendor_made_ready_before_a_restart_of_dev_charges_after_it() {
    let db = TestDatabase::create().await;
    let dir = TempDir::new();
    let workflows = fast_workflows();
    let log = dir.path.join("dev.log");

    let first = Dev::start(&dir.path, &db.url, &workflows.path, &log).await;
    assert!(
        first.sandbox_state.contains("(0 vendor organizations"),
        "{}",
        first.sandbox_state
    );
    let ready = first
        .api()
        .onboard_to_ready("onboard-1", clearing_vendor(1))
        .await;
    let before = charge(&first.api(), &ready.vendor_id, "order-before").await;
    assert_eq!(before["status"], "succeeded", "{before}");
    let state = dir.path.join(".data/sandbox/state.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Killed, not stopped: what the sandbox did is on disk before it answered.
    drop(first);

    let second = Dev::start(&dir.path, &db.url, &workflows.path, &log).await;
    assert!(
        second.sandbox_state.contains("(1 vendor organizations"),
        "{}",
        second.sandbox_state
    );
    let after = charge(&second.api(), &ready.vendor_id, "order-after").await;
    assert_eq!(
        (&after["status"], &after["outcome"]),
        (&json!("succeeded"), &json!("completed")),
        "{after}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // New vendors still onboard and charge: their organizations take new ids.
    let newcomer = second
        .api()
        .onboard_to_ready("onboard-2", clearing_vendor(2))
        .await;
    let charged = charge(&second.api(), &newcomer.vendor_id, "order-new").await;
    assert_eq!(charged["outcome"], "completed", "{charged}");
    let mut organizations = Vec::new();
    for vendor in [&ready.vendor_id, &newcomer.vendor_id] {
        let view = second.api().get(&format!("/v1/vendors/{vendor}")).await;
        organizations.push(view["provider_company_id"].as_i64().unwrap());
    }
    assert!(organizations[1] > organizations[0], "{organizations:?}");
}
