//! A long-running process started while PostgreSQL is down waits for it: the real `vendorflow
//! serve` is pointed at a port where nothing listens, logs each retry (JSON lines, through
//! `tracing`), and once a database answers there (a small TCP forwarder to the test cluster,
//! started by the test) carries on and serves. With `VENDORFLOW_DATABASE_WAIT` it gives up.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Poll, Server, TempDir};
use serde_json::Value;
use testkit::TestDatabase;

/// A port nothing listens on (bound and released: nothing else on this machine takes it in the
/// moment the test needs).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `url` with its host and port replaced by `127.0.0.1:port`; returns it and the original
/// `host:port`.
fn through_port(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
    let (address, database) = rest.split_once('/').unwrap();
    let at = if credentials.is_empty() { "" } else { "@" };
    (
        format!("{scheme}://{credentials}{at}127.0.0.1:{port}/{database}"),
        address.to_owned(),
    )
}

/// Copies bytes from `from` to `to` until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer) {
        if read == 0 || to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _closed = to.shutdown(Shutdown::Write);
}

/// Forwards every connection accepted on `listener` to `target`, on plain threads, for the rest
/// of the test process.
fn forward(listener: TcpListener, target: String) {
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (client_in, server_in) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || pipe(client_in, server));
            std::thread::spawn(move || pipe(server_in, client));
        }
    });
}

/// The JSON lines of the log file so far.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["message"] == message)
        .collect()
}

const RETRYING: &str = "PostgreSQL is not reachable yet; retrying";

/// `vendorflow serve` against `database_url`, logging JSON to `log`.
fn serve(database_url: &str, listen: u16, log: &Path, extra: &[(&str, &str)]) -> Server {
    let master_key = store::secrets::MasterKey::generate().to_base64();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vendorflow"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("VENDORFLOW_LISTEN", format!("127.0.0.1:{listen}"))
        .env(
            "VENDORFLOW_MASTER_KEY",
            secrecy::ExposeSecret::expose_secret(&master_key),
        )
        // No run is enqueued: the provider is never called.
        .env("VENDORFLOW_PROVIDER_URL", "http://127.0.0.1:9")
        .env("VENDORFLOW_PROVIDER_COMPANY_ID", "1000")
        .env("VENDORFLOW_PROVIDER_API_KEY", "unused")
        .env(
            "VENDORFLOW_WORKFLOWS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
        )
        .env("VENDORFLOW_LOG_FORMAT", "json")
        .env("VENDORFLOW_LOG", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (name, value) in extra {
        command.env(name, value);
    }
    Server::new(command.spawn().expect("start vendorflow serve"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_started_while_postgres_is_down_retries_then_carries_on_when_it_answers() {
    let db = TestDatabase::create().await;
    let port = free_port();
    let (url, cluster) = through_port(&db.url, port);
    let listen = free_port();
    let dir = TempDir::new();
    let log = dir.path.join("serve.log");
    let _server = serve(&url, listen, &log, &[]);
    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{listen}/healthz");

    // It keeps trying, a JSON warning per try, with a growing pause, and serves nothing yet.
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(30));
    let retries = loop {
        let lines = log_lines(&log);
        let retries: Vec<Value> = with_message(&lines, RETRYING)
            .into_iter()
            .cloned()
            .collect();
        if retries.len() >= 2 {
            break retries;
        }
        poll.tick("two retries are logged").await;
    };
    for (n, retry) in retries.iter().take(2).enumerate() {
        assert_eq!(retry["level"], "WARN", "{retry}");
        assert_eq!(retry["attempt"], n + 1, "{retry}");
        assert_eq!(retry["port"], port, "{retry}");
        assert!(
            retry["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{retry}"
        );
    }
    let first_pause = retries[0]["retry_in_ms"].as_u64().unwrap();
    let second_pause = retries[1]["retry_in_ms"].as_u64().unwrap();
    assert!(first_pause > 0 && second_pause > first_pause, "{retries:?}");
    assert!(http.get(&health).send().await.is_err());
    // The database URL never reaches the logs.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&url), "{text}");

    // PostgreSQL "comes back" on that port.
    forward(
        TcpListener::bind(("127.0.0.1", port)).expect("the port is still free"),
        cluster,
    );
    let ready = format!("http://127.0.0.1:{listen}/readyz");
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    while !http
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        poll.tick("serve answers /readyz once PostgreSQL answers")
            .await;
    }
    let lines = log_lines(&log);
    let carried_on = with_message(&lines, "PostgreSQL is reachable; carrying on");
    assert_eq!(carried_on.len(), 1, "{lines:?}");
    assert!(carried_on[0]["tries"].as_u64().unwrap() >= 3, "{lines:?}");
    assert_eq!(with_message(&lines, "vendorflow starting").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_wait_gives_up_naming_its_setting() {
    let db = TestDatabase::create().await;
    let (url, _) = through_port(&db.url, free_port());
    let dir = TempDir::new();
    let log = dir.path.join("serve.log");
    let mut server = serve(
        &url,
        free_port(),
        &log,
        &[("VENDORFLOW_DATABASE_WAIT", "1s")],
    );
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(30));
    let status = loop {
        if let Some(status) = server.try_wait() {
            break status;
        }
        poll.tick("serve gives up").await;
    };
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("VENDORFLOW_DATABASE_WAIT"), "{text}");
    assert!(
        !with_message(&log_lines(&log), RETRYING).is_empty(),
        "{text}"
    );
}
