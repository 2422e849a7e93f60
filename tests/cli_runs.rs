//! End-to-end tests of `vendorflow runs …` against a fresh database: runs of a small test
//! workflow are enqueued and driven step by step by an in-process worker, and the binary lists,
//! shows and acts on them. The actions' effects are checked in the database.

use std::process::{Command, Output};
use std::sync::Arc;

use engine::{
    Definitions, ErrorEnvelope, NewRun, Registry, StepOutcome, Worker, WorkerConfig, handler_fn,
};
use serde_json::{Value, json};
use testkit::TestDatabase;
use uuid::Uuid;

/// Prepare, wait for `go_ahead`, finish. `prepare` fails for good when the input says so.
const WORKFLOW: &str = r#"
name = "cli_test"
version = 1
[defaults]
retry = { max_attempts = 1, initial_backoff = "1s", max_backoff = "1s", on_exhaustion = "fail" }
[[steps]]
name = "prepare"
action = "prepare"
[[steps]]
name = "await_approval"
wait = "go_ahead"
[[steps]]
name = "finish"
action = "finish"
"#;

struct Setup {
    db: TestDatabase,
    marketplace: Uuid,
    definitions: Arc<Definitions>,
    worker: Worker,
}

impl Setup {
    async fn new() -> Setup {
        let db = TestDatabase::create().await;
        let mut registry = Registry::new();
        registry
            .handler(
                "prepare",
                handler_fn(|ctx| async move {
                    if ctx.input.get("fail").and_then(Value::as_bool) == Some(true) {
                        StepOutcome::Fatal(ErrorEnvelope::fatal(
                            "refused",
                            "the provider refused the vendor",
                        ))
                    } else {
                        StepOutcome::success(json!({ "prepared": true }))
                    }
                }),
            )
            .handler(
                "finish",
                handler_fn(|_ctx| async move { StepOutcome::success(json!({})) }),
            )
            .signal("go_ahead");
        let definitions =
            Arc::new(Definitions::from_sources([("cli_test.toml", WORKFLOW)], &registry).unwrap());
        let worker = Worker::new(
            db.pool.clone(),
            Arc::new(registry),
            definitions.clone(),
            WorkerConfig::default(),
        )
        .unwrap();
        let mut conn = db.pool.acquire().await.unwrap();
        let marketplace = store::marketplaces::insert(&mut conn, "Shuk")
            .await
            .unwrap()
            .id;
        Setup {
            db,
            marketplace,
            definitions,
            worker,
        }
    }

    /// Enqueues a run of the test workflow for a new vendor of the marketplace.
    async fn enqueue(&self, input: Value) -> Uuid {
        self.enqueue_for(&format!("seller-{}", Uuid::now_v7().simple()), input)
            .await
    }

    /// Enqueues a run of the test workflow for a new vendor with this external id.
    async fn enqueue_for(&self, external_id: &str, input: Value) -> Uuid {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let external_id = external_id.to_owned();
        let vendor = store::vendors::insert(
            &mut conn,
            &store::vendors::NewVendor {
                marketplace_id: self.marketplace,
                external_id,
                legal_name: "Avi Print".to_owned(),
                corporate_number: "515555555".to_owned(),
                business_type: "company".to_owned(),
                email: "avi@example.co.il".to_owned(),
                phone_e164: "+97231234567".to_owned(),
                mode: "documents_only".to_owned(),
                bank_account_checked: None,
                bank_account_last4: None,
            },
        )
        .await
        .unwrap();
        let mut new = NewRun::new("cli_test", input);
        new.marketplace_id = Some(self.marketplace);
        new.subject_id = Some(vendor.id);
        engine::enqueue(&mut conn, new, &self.definitions)
            .await
            .unwrap()
            .0
    }

    async fn run(&self, id: Uuid) -> store::runs::RunRow {
        let mut conn = self.db.pool.acquire().await.unwrap();
        store::runs::get(&mut conn, id).await.unwrap().unwrap()
    }

    /// Drives the worker until run `id` has status `status`, within a bound of steps.
    async fn drive_until(&self, id: Uuid, status: &str) {
        for _ in 0..20 {
            if self.run(id).await.status == status {
                return;
            }
            self.worker.run_once().await.unwrap();
        }
        panic!("run {id} never became {status}: {:?}", self.run(id).await);
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vendorflow"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("VENDORFLOW_LOG", "warn")
            .output()
            .expect("run vendorflow")
    }

    async fn history(&self, id: Uuid) -> Vec<store::history::HistoryRow> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        store::history::list_for_run(&mut conn, id).await.unwrap()
    }

    /// The run's audit entries, oldest first: (action, result, actor, channel, reason).
    async fn audit(&self, id: Uuid) -> Vec<(String, String, String, String, String)> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let mut rows = store::admin::list_audit(
            &mut conn,
            self.marketplace,
            &store::admin::AuditFilter {
                target_id: Some(id),
                action: None,
            },
            None,
            100,
        )
        .await
        .unwrap();
        rows.reverse();
        rows.into_iter()
            .map(|row| {
                (
                    row.action,
                    row.result,
                    row.actor.unwrap_or_default(),
                    row.channel,
                    row.reason.unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: &Output) -> &Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
    output
}

fn refused<'a>(output: &'a Output, expected: &str) -> &'a Output {
    assert!(!output.status.success(), "{}", stdout(output));
    assert!(
        stderr(output).contains(expected),
        "stderr lacks `{expected}`:\n{}",
        stderr(output)
    );
    output
}

#[tokio::test]
async fn runs_are_listed_with_counts_per_status_and_filters() {
    let setup = Setup::new().await;
    let waiting = setup.enqueue(json!({})).await;
    setup.drive_until(waiting, "waiting").await;
    let pending = setup.enqueue(json!({})).await;

    let listed = setup.cli(&["runs", "list"]);
    let text = stdout(succeeded(&listed));
    for expected in [
        "id",
        "workflow",
        "status",
        "step",
        "attempt",
        "updated",
        "reason",
        &waiting.to_string(),
        &pending.to_string(),
        "await_approval",
        "by status: pending 1, waiting 1",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }

    let json_list = setup.cli(&["runs", "list", "--status", "waiting", "--json"]);
    let page: Value = serde_json::from_str(&stdout(succeeded(&json_list))).unwrap();
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{page}");
    assert_eq!(runs[0]["id"], waiting.to_string());
    assert_eq!(runs[0]["step"], "await_approval");
    // Counts ignore the status filter: they show where every run stands.
    assert_eq!(page["counts"]["pending"], 1);
    assert_eq!(page["counts"]["waiting"], 1);
    assert_eq!(page["marketplace_id"], setup.marketplace.to_string());

    let by_step = setup.cli(&["runs", "list", "--step", "prepare", "--json"]);
    let page: Value = serde_json::from_str(&stdout(succeeded(&by_step))).unwrap();
    assert_eq!(page["runs"][0]["id"], pending.to_string());
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);

    let vendor = setup.run(waiting).await.subject_id.unwrap().to_string();
    let by_vendor = setup.cli(&["runs", "list", "--vendor", &vendor, "--json"]);
    let page: Value = serde_json::from_str(&stdout(succeeded(&by_vendor))).unwrap();
    assert_eq!(page["runs"][0]["id"], waiting.to_string());
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    assert_eq!(page["runs"][0]["vendor_id"], vendor);
    // The vendor may be named by the marketplace's external id, as the dashboard takes it.
    let named = setup
        .enqueue_for("seller-1042", json!({ "fail": true }))
        .await;
    let by_external_id = setup.cli(&["runs", "list", "--vendor", "seller-1042", "--json"]);
    let page: Value = serde_json::from_str(&stdout(succeeded(&by_external_id))).unwrap();
    assert_eq!(page["runs"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["runs"][0]["id"], named.to_string());
    refused(
        &setup.cli(&["runs", "list", "--vendor", "seller-404"]),
        "--vendor: marketplace",
    );

    refused(
        &setup.cli(&["runs", "list", "--status", "asleep"]),
        "--status",
    );

    // With a second marketplace, the CLI no longer guesses which one is meant.
    let mut conn = setup.db.pool.acquire().await.unwrap();
    store::marketplaces::insert(&mut conn, "Other")
        .await
        .unwrap();
    // The refusal lists the marketplaces to choose from.
    refused(
        &setup.cli(&["runs", "list"]),
        &format!(
            "--marketplace ID is required: there is more than one marketplace: {}",
            setup.marketplace
        ),
    );
    let scoped = setup.cli(&[
        "runs",
        "list",
        "--marketplace",
        &setup.marketplace.to_string(),
        "--json",
    ]);
    let page: Value = serde_json::from_str(&stdout(succeeded(&scoped))).unwrap();
    assert_eq!(page["runs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn show_gives_the_steps_the_history_and_the_signal_to_send() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({})).await;
    setup.drive_until(id, "waiting").await;

    let shown = setup.cli(&["runs", "show", &id.to_string()]);
    let text = stdout(succeeded(&shown));
    for expected in [
        "status     waiting at step await_approval",
        "1. prepare",
        "done",
        "attempt 1  succeeded",
        "2. await_approval",
        "current",
        "history",
        "created",
        "step_succeeded",
        "what to do next",
        "waits for the signal `go_ahead`",
        &format!("vendorflow runs signal {id} go_ahead --reason"),
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }

    let json_show = setup.cli(&["runs", "show", &id.to_string(), "--json"]);
    let detail: Value = serde_json::from_str(&stdout(succeeded(&json_show))).unwrap();
    assert_eq!(detail["run"]["status"], "waiting");
    assert_eq!(detail["steps"][0]["name"], "prepare");
    assert_eq!(detail["steps"][0]["state"], "done");
    assert_eq!(detail["steps"][0]["attempts"][0]["outcome"], "succeeded");
    assert_eq!(detail["steps"][1]["signal"], "go_ahead");
    assert_eq!(detail["steps"][2]["state"], "not_yet");
    assert!(
        detail["next"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hint| hint["command"]
                .as_str()
                .is_some_and(|c| c.contains("signal"))),
        "{detail}"
    );

    refused(
        &setup.cli(&["runs", "show", &Uuid::now_v7().to_string()]),
        "no run",
    );
    refused(&setup.cli(&["runs", "show", "not-a-uuid"]), "RUN");
}

#[tokio::test]
async fn a_signal_wakes_a_waiting_run_and_records_who_sent_it_and_why() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({})).await;
    setup.drive_until(id, "waiting").await;

    refused(
        &setup.cli(&["runs", "signal", &id.to_string(), "go_ahead"]),
        "--reason",
    );
    refused(
        &setup.cli(&[
            "runs",
            "signal",
            &id.to_string(),
            "go_ahaed",
            "--reason",
            "typo",
        ]),
        "it waits for: go_ahead",
    );
    refused(
        &setup.cli(&[
            "runs",
            "signal",
            &id.to_string(),
            "go_ahead",
            "--reason",
            "ok",
            "--payload",
            "{not json",
        ]),
        "--payload",
    );
    assert_eq!(setup.run(id).await.status, "waiting");

    let sent = setup.cli(&[
        "runs",
        "signal",
        &id.to_string(),
        "go_ahead",
        "--reason",
        "approved by the acquirer",
        "--actor",
        "dana",
        "--payload",
        r#"{"approval": "A-17"}"#,
    ]);
    assert!(stdout(succeeded(&sent)).contains("delivered"));
    assert_eq!(setup.run(id).await.status, "pending");
    let received = setup
        .history(id)
        .await
        .into_iter()
        .find(|event| event.kind == "signal_received")
        .expect("a signal_received event");
    assert_eq!(
        (received.actor_kind.as_str(), received.actor_id.as_str()),
        ("operator", "dana")
    );
    assert_eq!(received.reason.as_deref(), Some("approved by the acquirer"));

    setup.drive_until(id, "succeeded").await;
}

#[tokio::test]
async fn resume_from_runs_a_failed_run_again_from_the_named_step() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({ "fail": true })).await;
    setup.drive_until(id, "failed").await;

    let shown = stdout(succeeded(&setup.cli(&["runs", "show", &id.to_string()]))).to_owned();
    assert!(
        shown.contains(&format!("vendorflow runs resume {id} --from prepare")),
        "{shown}"
    );
    assert!(
        shown.contains("refused: the provider refused the vendor"),
        "{shown}"
    );

    refused(
        &setup.cli(&[
            "runs",
            "resume",
            &id.to_string(),
            "--from",
            "prepaer",
            "--reason",
            "typo",
        ]),
        "--from: workflow `cli_test` has no step `prepaer`; its steps are: prepare, await_approval, finish",
    );
    // A failed run is not paused: plain resume does not apply, and says what does.
    refused(
        &setup.cli(&["runs", "resume", &id.to_string(), "--reason", "again"]),
        &format!(
            "cannot resume a run that is failed; it has ended; what applies now: \
             vendorflow runs resume {id} --from prepare --reason '<why>'"
        ),
    );

    let resumed = setup.cli(&[
        "runs",
        "resume",
        &id.to_string(),
        "--from",
        "await_approval",
        "--reason",
        "checked by hand at the provider",
    ]);
    assert!(stdout(succeeded(&resumed)).contains("from step await_approval"));
    let run = setup.run(id).await;
    assert_eq!(
        (run.status.as_str(), run.step_name.as_str(), run.generation),
        ("pending", "await_approval", 1)
    );
    let event = setup
        .history(id)
        .await
        .into_iter()
        .find(|event| event.kind == "resumed_from")
        .expect("a resumed_from event");
    assert_eq!(
        event.reason.as_deref(),
        Some("checked by hand at the provider")
    );
    assert_eq!(event.actor_kind, "operator");
    // Without --actor and without an OS user in the environment, the actor is `cli`.
    assert_eq!(event.actor_id, "cli");
    setup.drive_until(id, "waiting").await;
}

#[tokio::test]
async fn pause_retry_resume_and_cancel_follow_the_engines_rules() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({})).await;
    let run_id = id.to_string();

    succeeded(&setup.cli(&["runs", "pause", &run_id, "--reason", "documents missing"]));
    assert_eq!(setup.run(id).await.status, "paused");
    let shown = stdout(succeeded(&setup.cli(&["runs", "show", &run_id]))).to_owned();
    assert!(shown.contains("documents missing"), "{shown}");
    assert!(
        shown.contains(&format!("vendorflow runs resume {run_id} --reason")),
        "{shown}"
    );

    refused(
        &setup.cli(&["runs", "resume", &run_id, "--reason", "  "]),
        "--reason: a reason is required",
    );
    refused(
        &setup.cli(&["runs", "resume", &run_id, "--reason", &"x".repeat(501)]),
        "--reason: the reason is longer than 500 characters",
    );

    // Retrying a paused run resumes it, which is what the operator means, and says so.
    let retried = setup.cli(&["runs", "retry", &run_id, "--reason", "documents arrived"]);
    assert!(
        stdout(succeeded(&retried)).contains("was paused, so it is resumed"),
        "{}",
        stdout(&retried)
    );
    assert_eq!(setup.run(id).await.status, "pending");
    let resumed = setup
        .history(id)
        .await
        .into_iter()
        .rfind(|event| event.kind == "resumed")
        .expect("a resumed event");
    assert_eq!(resumed.reason.as_deref(), Some("documents arrived"));

    // A refusal names what applies instead, as a command that works.
    refused(
        &setup.cli(&["runs", "resume", &run_id, "--reason", "again"]),
        &format!(
            "only a paused run can be resumed; what applies now: vendorflow runs pause {run_id} --reason"
        ),
    );

    let cancelled = setup.cli(&["runs", "cancel", &run_id, "--reason", "vendor withdrew"]);
    assert!(stdout(succeeded(&cancelled)).contains("cancelled"));
    let run = setup.run(id).await;
    assert_eq!(run.status, "cancelled");
    assert!(
        run.status_reason.unwrap().contains("vendor withdrew"),
        "the reason is kept on the run"
    );
    refused(
        &setup.cli(&["runs", "cancel", &run_id, "--reason", "again"]),
        "cannot cancel a run that is cancelled",
    );
    refused(&setup.cli(&["runs", "cancel", &run_id]), "--reason");
    refused(
        &setup.cli(&[
            "runs",
            "cancel",
            &Uuid::now_v7().to_string(),
            "--reason",
            "x",
        ]),
        "no run",
    );
    // Every action is in the audit log with its actor and reason, on the command line's
    // channel; refusals too, as the dashboard records them.
    let audit = setup.audit(id).await;
    let row = |action: &str, result: &str, reason: &str| {
        (
            action.to_owned(),
            result.to_owned(),
            "cli".to_owned(),
            "cli".to_owned(),
            reason.to_owned(),
        )
    };
    assert_eq!(
        audit,
        vec![
            row("pause", "ok", "documents missing"),
            row("resume", "ok", "documents arrived"),
            row("resume", "refused", "again"),
            row("cancel", "ok", "vendor withdrew"),
            row("cancel", "refused", "again"),
        ]
    );

    // A run is only found in the marketplace it belongs to, when one is named.
    let mut conn = setup.db.pool.acquire().await.unwrap();
    let other = store::marketplaces::insert(&mut conn, "Other")
        .await
        .unwrap();
    refused(
        &setup.cli(&[
            "runs",
            "show",
            &run_id,
            "--marketplace",
            &other.id.to_string(),
        ]),
        "no run",
    );
}

#[tokio::test]
async fn a_signal_to_a_paused_run_at_its_wait_is_kept_until_it_is_resumed_and_says_so() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({})).await;
    let run_id = id.to_string();
    setup.drive_until(id, "waiting").await;
    succeeded(&setup.cli(&["runs", "pause", &run_id, "--reason", "checking the vendor"]));

    let sent = setup.cli(&[
        "runs",
        "signal",
        &run_id,
        "go_ahead",
        "--reason",
        "approved by the acquirer",
        "--actor",
        "dana",
    ]);
    let said = stdout(succeeded(&sent)).to_owned();
    assert!(
        said.contains("is paused at its wait await_approval")
            && said.contains("as soon as it is resumed")
            && said.contains(&format!("vendorflow runs resume {run_id}")),
        "{said}"
    );
    assert!(!said.contains("not at its wait"), "{said}");
    assert_eq!(setup.run(id).await.status, "paused");

    // As said: resumed, the run takes the signal and finishes.
    succeeded(&setup.cli(&["runs", "resume", &run_id, "--reason", "checked"]));
    setup.drive_until(id, "succeeded").await;

    // The signal is audited with its sender and name (its payload stays in the run's history).
    let audit = setup.audit(id).await;
    assert_eq!(
        audit[1],
        (
            "signal".to_owned(),
            "ok".to_owned(),
            "dana".to_owned(),
            "cli".to_owned(),
            "approved by the acquirer".to_owned()
        )
    );

    // An ended run takes no signal.
    let late = setup.cli(&["runs", "signal", &run_id, "go_ahead", "--reason", "again"]);
    refused(&late, "has ended");
}

#[tokio::test]
async fn a_signal_before_the_wait_is_kept_until_the_run_gets_there() {
    let setup = Setup::new().await;
    let id = setup.enqueue(json!({})).await;
    let run_id = id.to_string();
    let sent = setup.cli(&["runs", "signal", &run_id, "go_ahead", "--reason", "early"]);
    let said = stdout(succeeded(&sent)).to_owned();
    assert!(
        said.contains("before its wait await_approval, and consumes the signal when it gets there"),
        "{said}"
    );

    // Past the wait, a second signal is kept but nothing takes it, and the command says so.
    for _ in 0..20 {
        if setup.run(id).await.step_name == "finish" {
            break;
        }
        setup.worker.run_once().await.unwrap();
    }
    succeeded(&setup.cli(&["runs", "pause", &run_id, "--reason", "hold"]));
    let again = setup.cli(&["runs", "signal", &run_id, "go_ahead", "--reason", "twice"]);
    let said = stdout(succeeded(&again)).to_owned();
    assert!(
        said.contains("nothing will consume it")
            && said.contains("past its wait await_approval (at step finish)"),
        "{said}"
    );
}
