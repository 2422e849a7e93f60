//! The chaos run's processes, each a child of this very executable: `vendorflow sandbox` (the
//! provider), `vendorflow api` and the `vendorflow worker`s, configured through the environment
//! exactly as a deployment would be, each writing JSON logs to its own file (a restarted worker
//! gets a new file). It kills a worker with SIGKILL, restarts it, restarts a service that exited
//! on its own, and stops them all.
//!
//! It must not pass the driver's own environment on (children start from an empty environment,
//! so no `DATABASE_URL`, proxy or log setting of the shell leaks in) and must not leave a process
//! running: every child is killed (SIGKILL) and reaped when its handle is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

/// What to start.
pub struct Plan {
    pub exe: PathBuf,
    pub root: PathBuf,
    pub logs: PathBuf,
    pub database_url: String,
    pub master_key: SecretString,
    pub workflows: PathBuf,
    pub sandbox_port: u16,
    pub api_port: u16,
    pub workers: usize,
    pub seed: u64,
}

/// One service: its command line, its child while it runs, and its log files.
struct Service {
    name: String,
    args: Vec<String>,
    /// Whether it is one of vendorflow's own processes (its logs are searched for canaries).
    ours: bool,
    child: Option<Child>,
    starts: usize,
    logs: Vec<PathBuf>,
}

/// The running topology.
pub struct Topology {
    plan: Plan,
    sandbox: Service,
    api: Service,
    workers: Vec<Service>,
}

impl Topology {
    /// Starts the sandbox, the API and the workers, and waits (bounded) until the sandbox and
    /// the API answer and every worker has logged its start.
    pub async fn start(plan: Plan) -> anyhow::Result<Topology> {
        let listen = |port: u16| format!("127.0.0.1:{port}");
        let mut topology = Topology {
            sandbox: Service::new(
                "sandbox",
                &[
                    "sandbox",
                    "--listen",
                    &listen(plan.sandbox_port),
                    "--terminal-approval",
                    "immediate",
                    "--seed",
                    &plan.seed.to_string(),
                ],
                false,
            ),
            api: Service::new("api", &["api"], true),
            workers: (1..=plan.workers)
                .map(|n| Service::new(&format!("worker-{n}"), &["worker"], true))
                .collect(),
            plan,
        };
        topology.spawn(Role::Sandbox)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let sandbox = format!(
            "http://127.0.0.1:{}/_sandbox/health",
            topology.plan.sandbox_port
        );
        topology.wait_for(&http, &sandbox, Role::Sandbox).await?;
        topology.spawn(Role::Api)?;
        for index in 0..topology.workers.len() {
            topology.spawn(Role::Worker(index))?;
        }
        let api = format!("http://127.0.0.1:{}/readyz", topology.plan.api_port);
        topology.wait_for(&http, &api, Role::Api).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        for index in 0..topology.workers.len() {
            loop {
                let worker = &mut topology.workers[index];
                let log = worker.logs.last().cloned().unwrap_or_default();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("vendorflow starting") {
                    break;
                }
                if let Some(child) = worker.child.as_mut()
                    && let Some(status) = child.try_wait()?
                {
                    bail!(
                        "{} exited at start ({status}); see {}",
                        worker.name,
                        log.display()
                    );
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{} did not start within 30s; see {}",
                        worker.name,
                        log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(topology)
    }

    /// Polls `url` until it answers 2xx, for at most 30 s, failing early if the service exits.
    async fn wait_for(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        role: Role,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            let service = self.service(role);
            let log = service.logs.last().cloned().unwrap_or_default();
            if let Some(child) = service.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited at start ({status}); see {}",
                    service.name,
                    log.display()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer {url} within 30s; see {}",
                    service.name,
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn service(&mut self, role: Role) -> &mut Service {
        match role {
            Role::Sandbox => &mut self.sandbox,
            Role::Api => &mut self.api,
            Role::Worker(index) => &mut self.workers[index],
        }
    }

    /// The environment of a service: the deployment's settings and nothing else.
    fn environment(&self, role: Role) -> Vec<(&'static str, String)> {
        let plan = &self.plan;
        let mut env = vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("VENDORFLOW_LOG_FORMAT", "json".to_owned()),
        ];
        if role == Role::Sandbox {
            env.push(("VENDORFLOW_LOG", "info".to_owned()));
            return env;
        }
        env.extend([
            (
                "VENDORFLOW_LOG",
                "debug,sqlx=warn,hyper=info,hyper_util=info,reqwest=info,h2=info,tower=info"
                    .to_owned(),
            ),
            ("VENDORFLOW_DATABASE_URL", plan.database_url.clone()),
            ("VENDORFLOW_DATABASE_MAX_CONNECTIONS", "10".to_owned()),
            ("VENDORFLOW_LISTEN", format!("127.0.0.1:{}", plan.api_port)),
            (
                "VENDORFLOW_MASTER_KEY",
                plan.master_key.expose_secret().to_owned(),
            ),
            (
                "VENDORFLOW_PROVIDER_URL",
                format!("http://127.0.0.1:{}", plan.sandbox_port),
            ),
            (
                "VENDORFLOW_PROVIDER_COMPANY_ID",
                sandbox::DEV_MARKETPLACE_COMPANY_ID.to_string(),
            ),
            (
                "VENDORFLOW_PROVIDER_API_KEY",
                sandbox::DEV_MARKETPLACE_API_KEY.to_owned(),
            ),
            ("VENDORFLOW_PROVIDER_SANDBOX_EXTENSIONS", "true".to_owned()),
            ("VENDORFLOW_PROVIDER_TIMEOUT", "2s".to_owned()),
            ("VENDORFLOW_WEBHOOKS_ALLOW_PRIVATE", "true".to_owned()),
            ("VENDORFLOW_SHUTDOWN_GRACE", "5s".to_owned()),
            // A short lease: a killed worker's runs are rescued within seconds, and every step
            // slower than a third of it lives on its heartbeat.
            ("VENDORFLOW_WORKER_LEASE", "6s".to_owned()),
            (
                "VENDORFLOW_WORKFLOWS_DIR",
                plan.workflows.display().to_string(),
            ),
        ]);
        env
    }

    /// Starts a service's next generation, logging to a file of its own.
    fn spawn(&mut self, role: Role) -> anyhow::Result<()> {
        let env = self.environment(role);
        let exe = self.plan.exe.clone();
        let root = self.plan.root.clone();
        let logs = self.plan.logs.clone();
        let service = self.service(role);
        service.starts += 1;
        let log = logs.join(format!("{}.{}.log", service.name, service.starts));
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exe)
            .args(&service.args)
            .env_clear()
            .envs(env)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", service.name))?;
        service.child = Some(child);
        service.logs.push(log);
        Ok(())
    }

    /// SIGKILLs worker `index` and reaps it.
    pub async fn kill_worker(&mut self, index: usize) -> anyhow::Result<()> {
        let worker = &mut self.workers[index];
        if let Some(mut child) = worker.child.take() {
            child
                .kill()
                .with_context(|| format!("killing {}", worker.name))?;
            reap(&mut child).await;
        }
        Ok(())
    }

    /// Starts worker `index` again.
    pub fn restart_worker(&mut self, index: usize) -> anyhow::Result<()> {
        self.spawn(Role::Worker(index))
    }

    /// Restarts every service that exited on its own; returns what exited, and how.
    pub fn revive(&mut self) -> Vec<String> {
        let mut exits = Vec::new();
        let roles: Vec<Role> = [Role::Sandbox, Role::Api]
            .into_iter()
            .chain((0..self.workers.len()).map(Role::Worker))
            .collect();
        for role in roles {
            let service = self.service(role);
            let Some(child) = service.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            let log = service
                .logs
                .last()
                .and_then(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut exit = format!("{} exited by itself ({status}; log {log})", service.name);
            service.child = None;
            if let Err(error) = self.spawn(role) {
                exit.push_str(&format!("; restart failed: {error:#}"));
            }
            exits.push(exit);
        }
        exits
    }

    /// SIGKILLs every process and reaps it (the run has settled: nothing is in flight).
    pub async fn stop(&mut self) {
        let mut children: Vec<Child> = Vec::new();
        for service in self
            .workers
            .iter_mut()
            .chain([&mut self.api, &mut self.sandbox])
        {
            children.extend(service.child.take());
        }
        for child in &mut children {
            let _killed = child.kill();
        }
        for mut child in children {
            reap(&mut child).await;
        }
    }

    /// The log files of vendorflow's own processes (API and workers, every generation).
    pub fn service_logs(&self) -> Vec<PathBuf> {
        std::iter::once(&self.api)
            .chain(&self.workers)
            .chain(std::iter::once(&self.sandbox))
            .filter(|service| service.ours)
            .flat_map(|service| service.logs.iter().cloned())
            .collect()
    }

    /// How many times the workers were started, all generations together.
    pub fn worker_starts(&self) -> usize {
        self.workers.iter().map(|worker| worker.starts).sum()
    }
}

/// Waits (at most 10 s, without blocking the runtime) for a killed child to be reaped.
async fn reap(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for Service {
    /// A service still running when the run ends (an error, an interruption) is killed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _killed = child.kill();
            let _reaped = child.wait();
        }
    }
}

impl Service {
    fn new(name: &str, args: &[&str], ours: bool) -> Service {
        Service {
            name: name.to_owned(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            ours,
            child: None,
            starts: 0,
            logs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sandbox,
    Api,
    Worker(usize),
}
