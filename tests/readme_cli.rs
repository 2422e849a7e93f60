//! The README's command-line examples, run as printed, so the README cannot drift from the CLI.
//!
//! Every fenced block the README marks with `<!-- readme-cli: … runs every command … -->` is
//! read; each `cargo run [--release] -- …` line in it is expanded (optional `[…]` parts left out,
//! then all put in; `a | b` alternatives one by one), its placeholders (`ID`, `RUN_ID`, …) are
//! replaced by real ids, and it is run with the real binary, from a checkout where `make run`
//! (`vendorflow dev`, started as the README's `dev` line) is up: no `DATABASE_URL`, no master
//! key and no token in the environment, exactly as a new user types them. The CSV file the
//! README shows (`<!-- readme-cli: vendors.csv -->`) is the `vendors.csv` the import reads. A
//! `cargo run` line outside a marked block fails the test: every example is run.
//!
//! The checkout is a temporary folder: its `scripts/pg.sh` answers with this test's own database
//! (the real script always names the shared `vendorflow` database), `workflows/` is the
//! repository's, and `.data/` is what `dev` writes there. The few deviations, each needed to run
//! a command here at all, are in [`prepare`]: free ports instead of the fixed ones, a benchmark of
//! 100 workflows instead of 20,000, and the production settings `serve`, `api` and `worker` are
//! documented to need (with a database of their own, so they do not work the development runs).
//!
//! Also here: `make run` keeps its tokens across restarts, and the hints when the development
//! setup cannot be found.

mod common;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Poll, Server, TempDir};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use testkit::TestDatabase;
use uuid::Uuid;

const README: &str = include_str!("../README.md");
const RUN_MARK: &str =
    "<!-- readme-cli: tests/readme_cli.rs runs every command of the next block -->";
const CSV_MARK: &str = "<!-- readme-cli: vendors.csv -->";

// ----- Reading the README. -----

/// The fenced block that follows line `index` (the marker), as its lines.
fn block_after(lines: &[&str], index: usize) -> (usize, Vec<String>) {
    let open = index + 1;
    assert!(
        lines.get(open).is_some_and(|line| line.starts_with("```")),
        "README line {}: a readme-cli marker must be followed by a fenced block",
        index + 1
    );
    let close = (open + 1..lines.len())
        .find(|&i| lines[i].starts_with("```"))
        .expect("the fenced block is closed");
    let body = lines[open + 1..close]
        .iter()
        .map(|line| (*line).to_owned())
        .collect();
    (close, body)
}

/// The README's marked command lines (continuations joined) and its example CSV file.
fn readme_examples() -> (Vec<String>, String) {
    let lines: Vec<&str> = README.lines().collect();
    let mut commands = Vec::new();
    let mut csv = None;
    let mut covered = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        if line == RUN_MARK || line == CSV_MARK {
            let (close, body) = block_after(&lines, index);
            covered.push(index + 1..close);
            if line == CSV_MARK {
                csv = Some(body.join("\n") + "\n");
            } else {
                let mut joined = String::new();
                for text in body {
                    let text = text.trim();
                    if let Some(continued) = text.strip_suffix('\\') {
                        joined.push_str(continued);
                        joined.push(' ');
                        continue;
                    }
                    joined.push_str(text);
                    let command = std::mem::take(&mut joined);
                    if command.is_empty() || command.starts_with('#') {
                        continue;
                    }
                    assert!(
                        command.starts_with("cargo run") || command.starts_with("vendorflow "),
                        "a marked README block holds a line this test cannot run: {command}"
                    );
                    commands.push(command);
                }
            }
            index = close;
        }
        index += 1;
    }
    // Every example of the binary is in a marked block, so every one is run.
    for (number, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("cargo run") {
            assert!(
                covered.iter().any(|range| range.contains(&number)),
                "README line {}: `{}` is outside a block marked for tests/readme_cli.rs",
                number + 1,
                line.trim()
            );
        }
    }
    (commands, csv.expect("the README shows vendors.csv"))
}

/// Splits a command line as a POSIX shell would (quotes, backslashes), up to a `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let text = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    text.push(c);
                }
            }
            '"' => {
                let text = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => text.extend(chars.next()),
                        c => text.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// One part of a printed command: a word, an optional group, or alternatives.
enum Part {
    Word(String),
    Optional(Vec<String>),
    Either(Vec<String>),
}

/// The argument lists a printed command stands for: each alternative, with no optional part and
/// with all of them.
fn expand(line: &str) -> Vec<Vec<String>> {
    let words = shell_words(line);
    let rest = match words.iter().position(|w| w == "--") {
        Some(at) if words[0] == "cargo" => &words[at + 1..],
        _ if words[0] == "vendorflow" => &words[1..],
        _ => panic!("not a command of the binary: {line}"),
    };
    let mut parts: Vec<Part> = Vec::new();
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        if let Some(first) = word.strip_prefix('[') {
            let mut group = Vec::new();
            let mut current = first.to_owned();
            while !current.ends_with(']') {
                group.push(current);
                current = words.next().expect("a closed optional group").clone();
            }
            group.push(current.trim_end_matches(']').to_owned());
            parts.push(Part::Optional(group));
        } else if word == "|" {
            let next = words.next().expect("an alternative after |").clone();
            match parts.pop() {
                Some(Part::Word(previous)) => parts.push(Part::Either(vec![previous, next])),
                Some(Part::Either(mut all)) => {
                    all.push(next);
                    parts.push(Part::Either(all));
                }
                _ => panic!("`|` must stand between words: {line}"),
            }
        } else {
            parts.push(Part::Word(word.clone()));
        }
    }
    let alternatives = parts
        .iter()
        .find_map(|part| match part {
            Part::Either(all) => Some(all.len()),
            _ => None,
        })
        .unwrap_or(1);
    let has_optional = parts.iter().any(|part| matches!(part, Part::Optional(_)));
    let mut variants = Vec::new();
    for choice in 0..alternatives {
        for full in [false, true] {
            if full && !has_optional {
                continue;
            }
            let mut args = Vec::new();
            for part in &parts {
                match part {
                    Part::Word(word) => args.push(word.clone()),
                    Part::Optional(group) if full => args.extend(group.iter().cloned()),
                    Part::Optional(_) => {}
                    Part::Either(all) => args.push(all[choice].clone()),
                }
            }
            variants.push(args);
        }
    }
    variants
}

#[test]
fn printed_commands_expand_to_what_a_user_would_type() {
    assert_eq!(
        expand(r#"cargo run -- runs resume RUN_ID [--from STEP] --reason "keys entered"  # why"#),
        vec![
            vec!["runs", "resume", "RUN_ID", "--reason", "keys entered"],
            vec![
                "runs",
                "resume",
                "RUN_ID",
                "--from",
                "STEP",
                "--reason",
                "keys entered"
            ],
        ]
    );
    assert_eq!(
        expand("cargo run --release -- serve | api | worker   # all parts"),
        vec![vec!["serve"], vec!["api"], vec!["worker"]]
    );
    assert_eq!(
        shell_words(r#"a "b c" 'd e' f\ g # h"#),
        vec!["a", "b c", "d e", "f g"]
    );
}

// ----- The checkout and `make run`. -----

/// A checkout of vendorflow whose development database is `url`.
struct Checkout {
    dir: TempDir,
}

impl Checkout {
    fn new(url: &str) -> Checkout {
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.path.join("scripts")).unwrap();
        // Stands in for scripts/pg.sh: this test's database is the development one.
        std::fs::write(
            dir.path.join("scripts/pg.sh"),
            format!(
                "#!/usr/bin/env bash\n\
                 case \"$1\" in\n  \
                   url) echo '{url}' ;;\n  \
                   start|status) echo 'postgres: already running at {url}' ;;\n  \
                   *) echo \"usage: $0 start|url|status\" >&2; exit 2 ;;\n\
                 esac\n"
            ),
        )
        .unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
            dir.path.join("workflows"),
        )
        .unwrap();
        Checkout { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path.join(relative)
    }

    /// The command `vendorflow ARGS` typed in the checkout: only PATH from the environment.
    fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vendorflow"));
        command
            .args(args)
            .current_dir(&self.dir.path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VENDORFLOW_LOG", "warn");
        command
    }

    /// Runs `vendorflow ARGS` to its end, off the runtime's threads.
    async fn run(&self, args: &[String]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().expect("run vendorflow"))
            .await
            .unwrap()
    }

    /// Starts `vendorflow ARGS` with `env` added, its output in files named after `name`.
    fn spawn(&self, name: &str, args: &[String], env: &[(&str, String)]) -> Server {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let out = std::fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.path(&format!("{name}.err"))).unwrap();
        Server::new(
            command
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start vendorflow"),
        )
    }

    /// What a process started by [`Checkout::spawn`] printed.
    fn output_of(&self, name: &str) -> String {
        let read = |suffix: &str| {
            std::fs::read_to_string(self.path(&format!("{name}.{suffix}"))).unwrap_or_default()
        };
        format!("stdout:\n{}\nstderr:\n{}", read("out"), read("err"))
    }

    /// What `make run` keeps in `.data/dev-tokens.json`.
    fn dev_tokens(&self) -> Value {
        let text = std::fs::read_to_string(self.path(".data/dev-tokens.json"))
            .expect("make run keeps its tokens");
        serde_json::from_str(&text).unwrap()
    }
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
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

/// Waits, at most `bound`, until GET `url` answers 200.
async fn until_ok(url: &str, bound: Duration, what: &str, log: impl Fn() -> String) {
    let http = reqwest::Client::new();
    let mut poll = Poll::every(Duration::from_millis(100), bound);
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        if poll.expired() {
            panic!("{what} within {bound:?}:\n{}", log());
        }
        poll.tick(what).await;
    }
}

/// `make run`: the README's `dev` line started in the checkout, ready to serve.
async fn make_run(checkout: &Checkout, name: &str) -> (Server, String) {
    let listen = free_address();
    let server = checkout.spawn(
        name,
        &["dev".to_owned()],
        &[("VENDORFLOW_LISTEN", listen.clone())],
    );
    let api = format!("http://{listen}");
    until_ok(
        &format!("{api}/readyz"),
        Duration::from_secs(60),
        "make run serves",
        || checkout.output_of(name),
    )
    .await;
    (server, api)
}

/// Stops `make run` as Ctrl-C does; it ends cleanly.
async fn stop(checkout: &Checkout, name: &str, mut server: Server) {
    let status = server.interrupt(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "{name} ended {status}:\n{}",
        checkout.output_of(name)
    );
}

// ----- The runs the examples act on. -----

/// Clearing vendors onboarded through the API, each run waiting for `terminal_approved`.
struct Runs {
    waiting: VecDeque<Uuid>,
    external_ids: Vec<String>,
}

async fn waiting_runs(api: &str, token: &str, count: usize) -> Runs {
    let http = reqwest::Client::new();
    let mut waiting = VecDeque::new();
    let mut external_ids = Vec::new();
    for n in 0..count {
        let external_id = format!("readme-seller-{n}");
        let answer = http
            .post(format!("{api}/v1/onboardings"))
            .bearer_auth(token)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({"vendor": {
                "external_id": external_id, "legal_name": format!("Readme Seller {n}"),
                "corporate_number": common::corporate_number(9000 + n),
                "business_type": "company", "email": format!("seller{n}@example.co.il"),
                "phone": "052-123-4567", "mode": "clearing",
                "bank_account": {"bank": 12, "branch": 571, "account": "041116"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "onboarding {n}");
        let body: Value = answer.json().await.unwrap();
        waiting.push_back(Uuid::try_parse(body["run_id"].as_str().unwrap()).unwrap());
        external_ids.push(external_id);
    }
    let mut poll = Poll::every(Duration::from_millis(100), Duration::from_secs(60));
    for run in &waiting {
        loop {
            let status: Value = http
                .get(format!("{api}/v1/runs/{run}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["status"] == "waiting" {
                break;
            }
            assert!(
                !["failed", "paused", "succeeded", "cancelled"]
                    .contains(&status["status"].as_str().unwrap_or_default()),
                "{status}"
            );
            poll.tick("the onboardings wait for the terminal's approval")
                .await;
        }
    }
    Runs {
        waiting,
        external_ids,
    }
}

/// Pauses `run` (as an operator would before the example) and waits until it is paused.
async fn paused(db: &TestDatabase, run: Uuid) -> Uuid {
    let mut conn = db.pool.acquire().await.unwrap();
    engine::ops::pause(
        &mut conn,
        run.into(),
        &engine::Actor::operator("readme test"),
        "for the example",
    )
    .await
    .unwrap();
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(30));
    while store::runs::get(&mut conn, run)
        .await
        .unwrap()
        .unwrap()
        .status
        != "paused"
    {
        poll.tick("the run pauses").await;
    }
    run
}

// ----- Running the examples. -----

/// How an example is run.
enum Kind {
    /// Runs to its end and exits 0.
    OneShot,
    /// `make run` itself: the test started it from this line before anything else.
    MakeRun,
    /// Runs until Ctrl-C: it must become ready, then end cleanly when interrupted.
    Server,
}

fn kind(args: &[String]) -> Kind {
    match args[0].as_str() {
        "dev" => Kind::MakeRun,
        "sandbox" | "serve" | "api" | "worker" => Kind::Server,
        "migrate" | "marketplaces" | "tokens" | "keys" | "webhooks" | "bench" | "runs"
        | "vendors" | "demo" | "openapi" => Kind::OneShot,
        other => panic!(
            "the README shows `vendorflow {other}`, which this test does not know how to run: \
             add it to `kind`"
        ),
    }
}

fn is_placeholder(word: &str) -> bool {
    word.contains('…')
        || (!word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
}

/// What the test knows while running the examples.
struct Context<'a> {
    db: &'a TestDatabase,
    marketplace: String,
    api: String,
    backend_token: String,
    receiver: String,
    runs: Runs,
    last_token_id: Option<String>,
    last_endpoint_id: Option<String>,
}

impl Context<'_> {
    /// `args` with its placeholders replaced by real values.
    async fn substitute(&mut self, args: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (index, word) in args.iter().enumerate() {
            if !is_placeholder(word) {
                out.push(word.clone());
                continue;
            }
            let flag = index.checked_sub(1).map(|i| args[i].as_str());
            let value = match (flag, word.as_str()) {
                (Some("--marketplace"), "ID") => self.marketplace.clone(),
                (Some("--workflow"), "WORKFLOW") => "vendor_onboarding".to_owned(),
                (Some("--status"), "STATUS") => "waiting".to_owned(),
                (Some("--step" | "--from"), "STEP") => "await_terminal_approval".to_owned(),
                (Some("--vendor"), "VENDOR") => self.runs.external_ids[0].clone(),
                (Some("--stuck-minutes"), "N") => "1".to_owned(),
                (Some("--limit"), "N") => "20".to_owned(),
                (Some("--vendors"), "N") => "2".to_owned(),
                (Some("--payload"), "JSON") => r#"{"approved_by": "Upay"}"#.to_owned(),
                (Some("--api"), "URL") => self.api.clone(),
                (Some("--token"), "TOKEN") => self.backend_token.clone(),
                (Some("--url"), "https://…") => self.receiver.clone(),
                (_, "TOKEN_ID") => self
                    .last_token_id
                    .clone()
                    .expect("TOKEN_ID after a `tokens create` example"),
                (_, "ENDPOINT_ID") => self
                    .last_endpoint_id
                    .clone()
                    .expect("ENDPOINT_ID after a `webhooks create` example"),
                (_, "RUN_ID") => {
                    let run = self
                        .runs
                        .waiting
                        .pop_front()
                        .expect("enough waiting runs for the examples");
                    // Retry and resume are examples for a paused run; the others act on a
                    // run waiting for its signal.
                    let run = match args[1].as_str() {
                        "retry" | "resume" => paused(self.db, run).await,
                        _ => run,
                    };
                    run.to_string()
                }
                (flag, word) => panic!(
                    "the README's placeholder `{word}` (after {flag:?}) is unknown to this \
                     test: add it to `substitute`"
                ),
            };
            out.push(value);
        }
        out
    }
}

/// Checks what a one-shot example said, beyond its exit status.
fn check_one_shot(args: &[String], output: &Output, context: &mut Context<'_>) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let subcommand = args[..2.min(args.len())].join(" ");
    // It said where it found the development setup, in one line on stderr.
    let uses_database =
        !matches!(subcommand.as_str(), "keys generate" | "openapi") && args[0] != "demo";
    if uses_database {
        let found: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("vendorflow: using the development database"))
            .collect();
        assert_eq!(found.len(), 1, "{subcommand}: {stderr}");
        let needs_key = matches!(
            subcommand.as_str(),
            "keys rotate" | "webhooks create" | "webhooks rotate-secret"
        ) || (subcommand == "vendors import"
            && !args.contains(&"--dry-run".to_owned()));
        assert_eq!(
            found[0].contains("the development master key in .data/dev-master-key"),
            needs_key,
            "{subcommand}: {}",
            found[0]
        );
    }
    match subcommand.as_str() {
        "tokens create" => {
            let id = stderr
                .lines()
                .find_map(|line| line.strip_prefix("token id "))
                .and_then(|rest| rest.split_whitespace().next())
                .expect("tokens create prints the token's id");
            context.last_token_id = Some(id.to_owned());
            assert!(stderr.contains("named shop backend"), "{stderr}");
            assert!(stdout.trim().starts_with("vf_backend_"), "{stdout}");
        }
        "webhooks create" => {
            let id = stderr
                .lines()
                .find_map(|line| line.strip_prefix("endpoint "))
                .and_then(|rest| rest.split_whitespace().next())
                .expect("webhooks create prints the endpoint's id");
            context.last_endpoint_id = Some(id.to_owned());
            assert!(stdout.trim().starts_with("whsec_"), "{stdout}");
        }
        "webhooks rotate-secret" => assert!(stdout.trim().starts_with("whsec_"), "{stdout}"),
        "webhooks list" | "webhooks show" => {
            let id = context.last_endpoint_id.as_deref().expect("an endpoint");
            assert!(stdout.contains(id), "{stdout}");
            assert!(!stdout.contains("whsec_"), "{stdout}");
        }
        "runs retry" => assert!(stdout.contains("was paused, so it is resumed"), "{stdout}"),
        "runs signal" => assert!(stdout.contains("delivered"), "{stdout}"),
        "runs resume" => assert!(stdout.contains("is pending"), "{stdout}"),
        "runs list" => assert!(stdout.contains("by status:") || stdout.contains("\"counts\"")),
        "openapi" => {
            let document: Value = serde_json::from_str(&stdout).expect("openapi prints JSON");
            assert!(
                document["openapi"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("3."))
            );
            assert!(document["paths"]["/v1/onboardings"]["post"].is_object());
        }
        _ if args[0] == "demo" => {
            assert!(stdout.contains("vendor(s) ready"), "{stdout}");
            if !args.contains(&"--token".to_owned()) {
                assert!(
                    stderr.contains("the development token `dev backend`"),
                    "{stderr}"
                );
            }
        }
        _ => {}
    }
}

/// Runs a server example (with `env`), waits until it is ready, interrupts it, and checks that
/// it ended cleanly.
async fn check_server(checkout: &Checkout, args: &[String], production: &[(&str, String)]) {
    let name = format!("server-{}", args[0]);
    let mut args = args.to_vec();
    let mut env: Vec<(&str, String)> = Vec::new();
    let ready: String;
    match args[0].as_str() {
        "sandbox" => {
            // The README's fixed port may be taken on this machine: a free one instead.
            let listen = free_address();
            let at = args.iter().position(|a| a == "--listen").unwrap() + 1;
            args[at] = listen.clone();
            ready = format!("http://{listen}/_sandbox/ledger");
        }
        "serve" | "api" => {
            let listen = free_address();
            env.extend(production.iter().cloned());
            env.push(("VENDORFLOW_LISTEN", listen.clone()));
            ready = format!("http://{listen}/readyz");
        }
        "worker" => {
            let metrics = free_address();
            env.extend(production.iter().cloned());
            env.push(("VENDORFLOW_METRICS_LISTEN", metrics.clone()));
            ready = format!("http://{metrics}/metrics");
        }
        other => panic!("not a server: {other}"),
    }
    let mut server = checkout.spawn(&name, &args, &env);
    until_ok(
        &ready,
        Duration::from_secs(60),
        &format!("{name} is ready"),
        || checkout.output_of(&name),
    )
    .await;
    let status = server.interrupt(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "{name} ended {status}:\n{}",
        checkout.output_of(&name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_line_example_of_the_readme_works_as_printed_while_make_run_is_up() {
    let (commands, csv) = readme_examples();
    let examples: Vec<(String, Vec<String>)> = commands
        .iter()
        .flat_map(|line| expand(line).into_iter().map(|args| (line.clone(), args)))
        .collect();
    assert!(
        examples.iter().any(|(_, args)| args == &["dev"]),
        "the README shows `make run`'s command"
    );

    let db = TestDatabase::create().await;
    let checkout = Checkout::new(&db.url);
    std::fs::write(checkout.path("vendors.csv"), csv).unwrap();
    // `make run` is up.
    let (dev, api) = make_run(&checkout, "dev").await;
    let kept = checkout.dev_tokens();
    let backend_token = kept["backend"]["token"].as_str().unwrap().to_owned();
    let runs = waiting_runs(&api, &backend_token, 12).await;

    // Where the webhook example's endpoint sends (the README's `https://…`).
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/hooks", receiver.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        axum::serve(receiver, app).await
    });

    // `serve`, `api` and `worker` with the production settings they are documented to need, on
    // a database of their own and a sandbox as the provider.
    let production_db = TestDatabase::create().await;
    let provider = sandbox::spawn(sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let production = vec![
        ("DATABASE_URL", production_db.url.clone()),
        (
            "VENDORFLOW_MASTER_KEY",
            store::secrets::MasterKey::generate()
                .to_base64()
                .expose_secret()
                .to_owned(),
        ),
        ("VENDORFLOW_PROVIDER_URL", provider.base_url.clone()),
        (
            "VENDORFLOW_PROVIDER_COMPANY_ID",
            provider.marketplace_company_id().to_string(),
        ),
        (
            "VENDORFLOW_PROVIDER_API_KEY",
            provider.marketplace_api_key().to_owned(),
        ),
    ];

    let mut context = Context {
        db: &db,
        marketplace: kept["marketplace_id"].as_str().unwrap().to_owned(),
        api: api.clone(),
        backend_token,
        receiver: receiver_url,
        runs,
        last_token_id: None,
        last_endpoint_id: None,
    };
    for (line, printed) in &examples {
        let args = context.substitute(printed).await;
        println!("README example: vendorflow {}", args.join(" "));
        match kind(&args) {
            Kind::MakeRun => {}
            Kind::Server => check_server(&checkout, &args, &production).await,
            Kind::OneShot => {
                let mut args = args;
                if args[0] == "bench" {
                    // 20,000 workflows take minutes in a debug build: the same command, smaller.
                    args.extend(["--workflows".to_owned(), "100".to_owned()]);
                }
                let output = checkout.run(&args).await;
                assert!(
                    output.status.success(),
                    "README: {line}\nran: vendorflow {}\n{}",
                    args.join(" "),
                    describe(&output)
                );
                check_one_shot(&args, &output, &mut context);
            }
        }
    }

    // The webhook endpoint changes are in the dashboard's audit log, on the command line's
    // channel: the two `create` lines (with and without `--event`), and each change of the last
    // endpoint.
    let endpoints: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, result FROM vendorflow.admin_audit
         WHERE channel = 'cli' AND target_kind = 'endpoint' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let endpoints: Vec<&str> = endpoints
        .iter()
        .map(|(action, _)| action.as_str())
        .collect();
    assert_eq!(
        endpoints,
        [
            "create_endpoint",
            "create_endpoint",
            "update_endpoint",
            "disable_endpoint",
            "enable_endpoint",
            "rotate_endpoint_secret",
            "rotate_endpoint_secret",
            "delete_endpoint",
        ]
    );
    // The run actions are in the dashboard's audit log, on the command line's channel.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, result FROM vendorflow.admin_audit
         WHERE channel = 'cli' AND target_kind = 'run' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = audited.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "resume",
            "resume",
            "resume_from",
            "pause",
            "cancel",
            "signal",
            "signal"
        ],
        "{audited:?}"
    );
    assert!(audited.iter().all(|(_, result)| result == "ok"));

    stop(&checkout, "dev", dev).await;
}

// ----- `make run` across restarts, and the hints. -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_keeps_its_tokens_private_and_reuses_them_across_restarts() {
    let db = TestDatabase::create().await;
    let checkout = Checkout::new(&db.url);
    let live = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM vendorflow.api_tokens WHERE revoked_at IS NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };

    let (first, _) = make_run(&checkout, "first").await;
    let kept = checkout.dev_tokens();
    stop(&checkout, "first", first).await;
    assert_eq!(live().await, 3);
    #[cfg(unix)]
    for file in [".data/dev-tokens.json", ".data/dev-master-key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(checkout.path(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let backend = kept["backend"]["token"].as_str().unwrap();
    assert!(checkout.output_of("first").contains(backend));
    // Never in the logs: only on make run's standard output and in the private file.
    assert!(
        !std::fs::read_to_string(checkout.path("first.err"))
            .unwrap()
            .contains(backend)
    );

    // A token an earlier version minted at every start (named `dev`) is retired.
    let marketplace = Uuid::try_parse(kept["marketplace_id"].as_str().unwrap()).unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    store::tokens::create(&mut conn, marketplace, store::tokens::Role::Operator, "dev")
        .await
        .unwrap();
    drop(conn);

    let (second, _) = make_run(&checkout, "second").await;
    stop(&checkout, "second", second).await;
    let again = checkout.dev_tokens();
    for field in ["marketplace_id", "backend", "operator", "viewer"] {
        assert_eq!(
            again[field], kept[field],
            "the same {field} at the next start"
        );
    }
    assert!(checkout.output_of("second").contains(backend));
    assert_eq!(live().await, 3);

    // A revoked token is replaced at the next start; the others stay.
    let revoked = checkout
        .run(&[
            "tokens".to_owned(),
            "revoke".to_owned(),
            kept["backend"]["id"].as_str().unwrap().to_owned(),
        ])
        .await;
    assert!(revoked.status.success(), "{}", describe(&revoked));
    let (third, _) = make_run(&checkout, "third").await;
    stop(&checkout, "third", third).await;
    let renewed = checkout.dev_tokens();
    assert_ne!(renewed["backend"], kept["backend"]);
    assert_eq!(renewed["backend"]["name"], "dev backend");
    assert_eq!(renewed["operator"], kept["operator"]);
    assert_eq!(renewed["viewer"], kept["viewer"]);
    assert!(
        checkout
            .output_of("third")
            .contains("new backend token(s) minted")
    );
    assert_eq!(live().await, 3);
}

#[tokio::test]
async fn without_the_development_setup_the_hints_name_a_command_that_works() {
    let words = |line: &str| -> Vec<String> { shell_words(line) };

    // Outside a checkout: set DATABASE_URL, or run from the checkout.
    let elsewhere = TempDir::new();
    let output = Command::new(env!("CARGO_BIN_EXE_vendorflow"))
        .args(words("runs list"))
        .current_dir(&elsewhere.path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DATABASE_URL") && stderr.contains("run this from the vendorflow checkout"),
        "{stderr}"
    );

    // In a checkout where `make run` has not made its key yet: `make run` makes it.
    let db = TestDatabase::create().await;
    let checkout = Checkout::new(&db.url);
    let output = checkout.run(&words("keys rotate")).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(".data/dev-master-key is missing): `make run` makes it"),
        "{stderr}"
    );
    assert!(!stderr.contains("keys generate"), "{stderr}");

    // A database that is not the development one never gets the development key.
    std::fs::create_dir_all(checkout.path(".data")).unwrap();
    std::fs::write(
        checkout.path(".data/dev-master-key"),
        store::secrets::MasterKey::generate()
            .to_base64()
            .expose_secret(),
    )
    .unwrap();
    let other = TestDatabase::create().await;
    let mut command = checkout.command(&words("keys rotate"));
    command.env("DATABASE_URL", &other.url);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("set it to the master key the service runs with"),
        "{stderr}"
    );

    // And `demo` outside a checkout says where its token comes from.
    let output = Command::new(env!("CARGO_BIN_EXE_vendorflow"))
        .args(words("demo"))
        .current_dir(&elsewhere.path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("run `make run` first"),
        "{}",
        describe(&output)
    );
}
