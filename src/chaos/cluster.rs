//! The chaos run's own PostgreSQL cluster, through `scripts/pg.sh` with another data folder and a
//! free port (`VENDORFLOW_PG_DIR`, `VENDORFLOW_PG_PORT`) and PostgreSQL's durable defaults
//! (`VENDORFLOW_PG_DURABLE=1`): start, a fast stop and start again, a plain dump, and stop.
//!
//! It must not touch the development cluster of `make db/start` (another folder and port), and
//! it stops its cluster when dropped, so an error or an interrupted run leaves none running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A cluster under `data`, listening on 127.0.0.1 at `port`.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    running: AtomicBool,
}

impl Cluster {
    /// The cluster of the repository at `root`, with its data in `data`; `scripts/pg.sh` writes
    /// what it says to `logs/pg.sh.log`.
    pub fn new(root: &Path, data: &Path, logs: &Path, port: u16) -> Cluster {
        Cluster {
            root: root.to_owned(),
            data: data.to_owned(),
            log: logs.join("pg.sh.log"),
            port,
            running: AtomicBool::new(false),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `vendorflow` database (no password: the cluster trusts local connections).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/vendorflow", self.port)
    }

    fn script(&self, action: &str) -> std::process::Command {
        let mut command = std::process::Command::new("bash");
        command
            .arg(self.root.join("scripts/pg.sh"))
            .arg(action)
            .current_dir(&self.root)
            .env("VENDORFLOW_PG_DIR", &self.data)
            .env("VENDORFLOW_PG_PORT", self.port.to_string())
            .env("VENDORFLOW_PG_DURABLE", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs `scripts/pg.sh action` on a blocking thread, its output appended to the log (or
    /// dropped before the log's folder exists).
    async fn run(&self, action: &str) -> anyhow::Result<()> {
        let mut command = self.script(action);
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            Ok(file) => {
                command.stdout(file.try_clone()?).stderr(file);
            }
            Err(_) => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let status = tokio::task::spawn_blocking(move || command.status())
            .await?
            .with_context(|| format!("running scripts/pg.sh {action}"))?;
        if !status.success() {
            bail!(
                "scripts/pg.sh {action} failed ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Stops a cluster left by an earlier run and deletes its data.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.run("reset").await
    }

    /// Creates the cluster when needed and starts it.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.running.store(true, Ordering::SeqCst);
        self.run("start").await
    }

    /// Stops it (fast: sessions are disconnected, the cluster shuts down cleanly).
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.run("stop").await?;
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// A fast stop, `down` of downtime, and a start; returns how long it was down.
    pub async fn restart(&self, down: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.run("stop").await?;
        tokio::time::sleep(down).await;
        self.start().await?;
        Ok(started.elapsed())
    }

    /// Writes a plain-text `pg_dump` of the `vendorflow` database to `to`.
    pub async fn dump(&self, to: &Path) -> anyhow::Result<()> {
        let file =
            std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
        let mut command = self.script("dump");
        command.stdout(file).stderr(Stdio::inherit());
        let status = tokio::task::spawn_blocking(move || command.status())
            .await?
            .context("running scripts/pg.sh dump")?;
        if !status.success() {
            bail!("pg_dump of the chaos database failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running.load(Ordering::SeqCst) {
            // Blocking is fine here: this only happens while the run is being torn down.
            let _stopped = self
                .script("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
